/** The machine line every bench report carries (bench/RESULTS.md's header, the e2e chart). */
import { cpus, totalmem } from 'node:os';

export function machineText(): string {
  return `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, Linux`;
}

/** Today's date, YYYY-MM-DD (UTC). */
export function benchDate(): string {
  return new Date().toISOString().slice(0, 10);
}
