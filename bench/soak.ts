/**
 * `npm run soak` (root): the soak of bench/soak/soak.ts, 10 minutes by default, then the summary
 * printed and written to bench/SOAK.md.
 *
 *   npm run soak                      10 minutes, the data path ipferry chooses
 *   npm run soak -- --seconds 120     shorter (SOAK.md is written only for a full run unless --write)
 *   npm run soak -- --portable        IPFERRY_NO_FFI=1: the portable data path
 * Ctrl-C tears everything down (the namespaces and every process in them).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { machineText } from './machine.ts';
import { runSoak, soakMarkdown, soakSkipReason, writeSoak } from './soak/soak.ts';

const args = process.argv.slice(2);
const num = (flag: string, dflt: number): number => {
  const i = args.indexOf(flag);
  const v = i >= 0 ? Number(args[i + 1]) : dflt;
  if (!Number.isFinite(v) || v < 30 || v > 7200) throw new Error(`${flag} must be 30..7200 seconds`);
  return v;
};
const seconds = num('--seconds', 600);
const portable = args.includes('--portable');
const skip = soakSkipReason();
if (skip !== null) {
  process.stderr.write(`soak: ${skip}\n`);
  process.exit(2);
}
const t0 = Date.now();
const r = await runSoak({
  seconds,
  env: portable ? { IPFERRY_NO_FFI: '1' } : {},
  log: (l) => process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${l}\n`),
});
const md = soakMarkdown(r, machineText());
process.stdout.write(`\n${md}`);
if (seconds >= 600 || args.includes('--write')) {
  const file = join(fileURLToPath(new URL('.', import.meta.url)), 'SOAK.md');
  writeSoak(file, r, machineText());
  process.stdout.write(`wrote ${file}\n`);
}
const ok = r.endpoints.every((e) => e.poolInUse === 0 && e.unexpected.length === 0) && r.events.every((e) => e.outage.upToTrafficMs === null || e.outage.upToTrafficMs <= 2000);
process.exit(ok ? 0 : 1);
