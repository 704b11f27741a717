// `npm run bench:compiled [-- WORD ...]`: the benchmarks on compiled JavaScript, for the
// "compiled vs loader" columns beside `npm run bench` (tsx). Compiles src/ and bench/ with
// tsconfig.bench.json into node_modules/.cache/ipferry-bench/ (inside the repo, so bare imports
// resolve from node_modules), then runs bench/run.js there with plain node --expose-gc, as
// `npm run bench` runs bench/run.ts under tsx. It never writes bench/RESULTS.md.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('..', import.meta.url));
const out = join(repo, 'node_modules/.cache/ipferry-bench');
rmSync(out, { recursive: true, force: true });

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
process.stdout.write(`compiling src/ and bench/ into ${out}\n`);
let r = spawnSync(process.execPath, [tsc, '-p', join(repo, 'tsconfig.bench.json')], { stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
// Files under node_modules/ get no package scope from the repo: say they are ES modules.
writeFileSync(join(out, 'package.json'), '{ "type": "module" }\n');
// Packet fixtures the benchmarks read relative to the test helpers.
mkdirSync(join(out, 'test'), { recursive: true });
symlinkSync(join(repo, 'test/fixtures'), join(out, 'test/fixtures'));

r = spawnSync(process.execPath, ['--expose-gc', join(out, 'bench/run.js'), ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(r.status ?? (r.signal ? 1 : 0));
