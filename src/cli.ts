#!/usr/bin/env node
/**
 * The `ipferry` command. package.json's "bin" points at the compiled form, dist/cli.js, which
 * plain `node` runs. From the sources, with tsx (a devDependency):
 *
 *   node --import tsx src/cli.ts --help        (or: npx tsx src/cli.ts --help)
 *
 * test/control/cli-helper.ts runs it that way, so `npm test` needs no build.
 */
import { main } from './control/cli.ts';

// `ipferry show | head`: a reader that goes away is not an error worth a stack trace.
for (const s of [process.stdout, process.stderr]) {
  s.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}

process.exitCode = await main(process.argv.slice(2));
