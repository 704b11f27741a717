/**
 * The tools the end-to-end bench drives, inside the namespaces of one SiteTopology: iperf3
 * (a one-shot server per run), ping, and CPU samples of endpoint processes from /proc. Every
 * run has a count and a timeout; every child goes through topo.spawn/runAsync, so destroy()
 * (also on Ctrl-C) kills what is still running. What they print is read by ./parse.ts.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { runIperf3 as topologyIperf3, type SiteTopology } from '../../examples/site-topology.ts';
import { Iperf3Error, parseIperf3, parsePing, parseProcStat, type Iperf3Run, type PingRun, type ProcCpu } from './parse.ts';

/** Raw tool output: the bench can keep it (E2E_KEEP=DIR) to become fixtures or to debug a row. */
export type Keep = (name: string, text: string) => void;

/**
 * iperf3 from `clientNs` to a one-shot server in `serverNs` (examples/site-topology.ts runIperf3:
 * retries until the server listens, kills it after), read in full by parseIperf3. `args` go to
 * the client (['-t', '3', '-P', '4'], ['-u', '-b', '2G', '-l', '1300'], ...). Throws on failure.
 */
export async function runIperf3(
  topo: SiteTopology,
  serverNs: string,
  clientNs: string,
  serverAddr: string,
  args: readonly string[],
  keep?: Keep,
): Promise<Iperf3Run> {
  let raw: string;
  try {
    raw = (await topologyIperf3(topo, serverNs, clientNs, serverAddr, [...args])).raw;
  } catch (e) {
    keep?.(`iperf3 ${args.join(' ')}`, (e as Error).message);
    throw e;
  }
  keep?.(`iperf3 ${args.join(' ')}`, raw);
  try {
    return parseIperf3(raw);
  } catch (e) {
    throw new Iperf3Error(`iperf3 ${args.join(' ')} -> ${serverAddr}: ${(e as Error).message}`);
  }
}

/** `ping -n -c COUNT -i INTERVAL` from a namespace (replies wait at most 1 s each). */
export async function runPing(topo: SiteTopology, ns: string, addr: string, count: number, interval: number, keep?: Keep): Promise<PingRun> {
  const r = await topo.runAsync(ns, ['ping', '-n', '-c', String(count), '-i', String(interval), '-W', '1', addr], (count * interval + 15) * 1000);
  keep?.(`ping -i ${interval}`, r.stdout + r.stderr);
  return parsePing(r.stdout);
}

/** utime + stime of a process so far, or null when it is gone. */
export function readProcCpu(pid: number): ProcCpu | null {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

/** Clock ticks per second of /proc/PID/stat's times (`getconf CLK_TCK`; 100 on Linux). */
export function clockTicksPerSecond(): number {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return Number.isInteger(n) && n > 0 ? n : 100;
}

/**
 * Whether this kernel charges interrupt and softirq time apart from the task it interrupted
 * (CONFIG_IRQ_TIME_ACCOUNTING, read from /proc/config.gz): when off, packet processing that runs
 * in softirq while an endpoint is on the CPU counts as that endpoint's stime. null = unknown.
 */
export function irqTimeAccounting(): boolean | null {
  try {
    const config = gunzipSync(readFileSync('/proc/config.gz')).toString('latin1');
    if (/^CONFIG_IRQ_TIME_ACCOUNTING=y$/m.test(config)) return true;
    if (/^# CONFIG_IRQ_TIME_ACCOUNTING is not set$/m.test(config)) return false;
    return null;
  } catch {
    return null;
  }
}

/** Busy and total jiffies of all CPUs so far (/proc/stat's first line: all but idle and iowait are busy). */
export function machineCpu(): { busy: number; total: number } | null {
  try {
    const first = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const f = first.trim().split(/\s+/).slice(1).map(Number);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0); // user..steal (guest is inside user)
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return null;
  }
}
