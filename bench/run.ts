/**
 * `npm run bench`: runs every bench/*.bench.ts in one process, one after the other, prints each
 * section as it finishes and writes them all to bench/RESULTS.md with the machine and date.
 *
 * A bench module default-exports `async () => BenchSection`. Each section prints our figure
 * side by side with the baselines named in its issue, measured in the same run.
 * `npm run bench -- route checksum` runs only the sections whose file name contains a word.
 * `npm run bench:compiled` runs this file compiled to JavaScript under plain node
 * (bench/run-compiled.mjs): then it reads *.bench.js and never writes RESULTS.md.
 */
import { readdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface BenchSection {
  title: string;
  /** Markdown body: a table of figures with baselines, and a line on how it was measured. */
  markdown: string;
}

const here = dirname(fileURLToPath(import.meta.url));
/** Compiled to JavaScript (bench:compiled), or TypeScript under the tsx loader (bench). */
const compiled = import.meta.url.endsWith('.js');
const filters = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith(compiled ? '.bench.js' : '.bench.ts'))
  .filter((f) => filters.length === 0 || filters.some((w) => f.includes(w)))
  .sort();

const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, Linux`;
const sections: string[] = [];
process.stdout.write(`${compiled ? 'compiled JavaScript under plain node' : 'TypeScript under the tsx loader'}; ${machine}\n`);
for (const f of files) {
  const mod = (await import(join(here, f))) as { default: () => Promise<BenchSection> };
  process.stdout.write(`\n== ${f}\n`);
  const s = await mod.default();
  const text = `## ${s.title}\n\n${s.markdown.trim()}\n`;
  process.stdout.write(text);
  sections.push(text);
}

if (compiled) {
  process.stdout.write('\n(compiled run: bench/RESULTS.md not rewritten)\n');
} else if (filters.length === 0) {
  const header = `# Bench results\n\nWritten by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}; machine: ${machine}.\nEvery figure and its baselines come from the same run.\n`;
  writeFileSync(join(here, 'RESULTS.md'), [header, ...sections].join('\n'));
  process.stdout.write('\nwrote bench/RESULTS.md\n');
} else {
  process.stdout.write('\n(filtered run: bench/RESULTS.md not rewritten)\n');
}
