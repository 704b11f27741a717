/**
 * `npm run fuzz [-- --packets N --seed S --budget SECONDS --checked]`: run the packet fuzzer
 * (test/fuzz/fuzz.ts) and print a summary; `--checked`: bounds-checked packets (slower). Exit
 * code 1 on any exception or a pool that did not return to zero.
 */
import { runFuzz } from './fuzz.ts';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v < 0) {
    process.stderr.write(`fuzz: --${name} needs a non-negative number\n`);
    process.exit(2);
  }
  return v;
}

const packets = arg('packets', 1_000_000);
const seed = arg('seed', Date.now() & 0x7fffffff);
const budget = arg('budget', 0);
const checked = process.argv.includes('--checked');
process.stdout.write(`fuzz: ${packets} packets, seed ${seed}${budget ? `, budget ${budget} s` : ''}${checked ? ', bounds-checked' : ''}\n`);
const r = runFuzz({
  packets,
  seed,
  checked,
  timeBudgetMs: budget ? budget * 1000 : undefined,
  onProgress: (n) => {
    if (n % 100_000 === 0 && n > 0) process.stdout.write(`  ${n}\n`);
  },
});
process.stdout.write(
  `packets ${r.packets} in ${r.ms} ms (${Math.round(r.packets / (r.ms / 1000))} pps); exceptions ${r.exceptions}; ` +
    `datagrams completed ${r.completed}; fragments made ${r.fragmentsMade}; time exceeded ${r.timeExceeded}; ` +
    `pool live after ${r.liveAfter}${r.timedOut ? '; STOPPED BY TIME BUDGET' : ''}\n`,
);
process.stdout.write(`drops: ${JSON.stringify(r.drops)}\n`);
for (const s of r.samples) process.stdout.write(`EXCEPTION ${s.error}\n  packet ${s.packet}\n`);
process.exit(r.exceptions === 0 && r.liveAfter === 0 ? 0 : 1);
