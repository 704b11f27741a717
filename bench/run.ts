/**
 * `npm run bench`: runs every bench/*.bench.ts in one process, one after the other, prints each
 * section as it finishes and writes them all to bench/RESULTS.md with the machine and date.
 *
 * A bench module default-exports `async () => BenchSection`. Each section prints our figure
 * side by side with the baselines named in its issue, measured in the same run.
 * `npm run bench -- route checksum` runs only the sections whose file name contains a word.
 * `npm run bench:compiled` runs this file compiled to JavaScript under plain node
 * (bench/run-compiled.mjs): then it reads *.bench.js and never writes RESULTS.md.
 * A section may also hand back files (the e2e chart): written into bench/ beside RESULTS.md when
 * RESULTS.md is written, else into tmp/bench/ (git-ignored), so a filtered run leaves bench/ alone.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchDate, machineText } from './machine.ts';

export interface BenchSection {
  title: string;
  /** Markdown body: a table of figures with baselines, and a line on how it was measured. */
  markdown: string;
  /** Files to write beside RESULTS.md (name relative to bench/, e.g. "e2e.svg"). */
  files?: { name: string; content: string }[];
}

const here = dirname(fileURLToPath(import.meta.url));
/** Compiled to JavaScript (bench:compiled), or TypeScript under the tsx loader (bench). */
const compiled = import.meta.url.endsWith('.js');
const filters = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith(compiled ? '.bench.js' : '.bench.ts'))
  .filter((f) => filters.length === 0 || filters.some((w) => f.includes(w)))
  .sort();

const machine = machineText();
const sections: string[] = [];
const outFiles: { name: string; content: string }[] = [];
process.stdout.write(`${compiled ? 'compiled JavaScript under plain node' : 'TypeScript under the tsx loader'}; ${machine}\n`);
for (const f of files) {
  const mod = (await import(join(here, f))) as { default: () => Promise<BenchSection> };
  process.stdout.write(`\n== ${f}\n`);
  const s = await mod.default();
  const text = `## ${s.title}\n\n${s.markdown.trim()}\n`;
  process.stdout.write(text);
  sections.push(text);
  outFiles.push(...(s.files ?? []));
}
const writesResults = !compiled && filters.length === 0;
const fileDir = writesResults ? here : join(here, '..', 'tmp', 'bench');
if (outFiles.length > 0) mkdirSync(fileDir, { recursive: true });
for (const f of outFiles) {
  writeFileSync(join(fileDir, f.name), f.content);
  process.stdout.write(`wrote ${join(fileDir, f.name)}\n`);
}

if (compiled) {
  process.stdout.write('\n(compiled run: bench/RESULTS.md not rewritten)\n');
} else if (writesResults) {
  const header = `# Bench results\n\nWritten by \`npm run bench\` on ${benchDate()}; machine: ${machine}.\nEvery figure and its baselines come from the same run.\n`;
  writeFileSync(join(here, 'RESULTS.md'), [header, ...sections].join('\n'));
  process.stdout.write('\nwrote bench/RESULTS.md\n');
} else {
  process.stdout.write('\n(filtered run: bench/RESULTS.md not rewritten)\n');
}
