/**
 * The pure half of the end-to-end bench: what the tools print, read into numbers. iperf3's JSON
 * (`-J`), ping's text, /proc/PID/stat, and the summary statistics the tables use. No I/O here,
 * so test/bench/parse.test.ts checks every function on outputs captured from the real tools.
 */

/** One iperf3 TCP run, as the client's JSON reports it. */
export interface Iperf3Tcp {
  kind: 'tcp';
  streams: number;
  /** What the receiver got: bits per second over its own interval, and bytes. */
  bitsPerSecond: number;
  bytes: number;
  seconds: number;
  /** Sender retransmits (all streams). */
  retransmits: number;
}

/** One iperf3 UDP run. */
export interface Iperf3Udp {
  kind: 'udp';
  streams: number;
  /** Datagram payload size (`-l`). */
  datagramBytes: number;
  /** Delivered: bits per second and bytes the receiver got. */
  bitsPerSecond: number;
  bytes: number;
  seconds: number;
  /** Datagrams the sender sent, and the receiver got (counted minus lost). */
  sent: number;
  delivered: number;
  /** Delivered datagrams per second of the receiver's interval. */
  pps: number;
  /** 100 * (sent - delivered) / sent: also counts datagrams lost after the last one received. */
  lossPercent: number;
}

export type Iperf3Run = Iperf3Tcp | Iperf3Udp;

interface Iperf3Sum {
  seconds?: number;
  bytes?: number;
  bits_per_second?: number;
  retransmits?: number;
  packets?: number;
  lost_packets?: number;
}

interface Iperf3Json {
  error?: string;
  start?: { test_start?: { protocol?: string; num_streams?: number; blksize?: number } };
  end?: { sum_sent?: Iperf3Sum; sum_received?: Iperf3Sum; sum?: Iperf3Sum };
}

/** iperf3's own error text ("unable to connect to server: Connection refused"), or a parse failure. */
export class Iperf3Error extends Error {}

/**
 * Read `iperf3 -c ... -J` output. Throws Iperf3Error with iperf3's "error" field when the run
 * failed, or when the JSON lacks the receiver's totals.
 */
export function parseIperf3(text: string): Iperf3Run {
  let j: Iperf3Json;
  try {
    j = JSON.parse(text) as Iperf3Json;
  } catch {
    const first = text.trim().split('\n')[0] ?? '';
    throw new Iperf3Error(first === '' ? 'no output' : `not JSON: ${first.slice(0, 120)}`);
  }
  if (typeof j.error === 'string') throw new Iperf3Error(j.error);
  const ts = j.start?.test_start;
  const rx = j.end?.sum_received;
  const tx = j.end?.sum_sent;
  if (ts === undefined || rx === undefined || tx === undefined || rx.bytes === undefined || rx.seconds === undefined) {
    throw new Iperf3Error('no end.sum_received / end.sum_sent / start.test_start in the JSON');
  }
  const seconds = rx.seconds;
  const bytes = rx.bytes;
  const bitsPerSecond = rx.bits_per_second ?? (seconds > 0 ? (8 * bytes) / seconds : 0);
  const streams = ts.num_streams ?? 1;
  if (ts.protocol === 'UDP') {
    const datagramBytes = ts.blksize ?? 0;
    // The receiver's "packets" counts up to the highest sequence number seen; lost_packets are
    // the gaps below it. The sender's count also covers a tail lost after the last arrival.
    const delivered = (rx.packets ?? 0) - (rx.lost_packets ?? 0);
    const sent = tx.packets ?? rx.packets ?? 0;
    return {
      kind: 'udp',
      streams,
      datagramBytes,
      bitsPerSecond,
      bytes,
      seconds,
      sent,
      delivered,
      pps: seconds > 0 ? delivered / seconds : 0,
      lossPercent: sent > 0 ? (100 * (sent - delivered)) / sent : 0,
    };
  }
  return { kind: 'tcp', streams, bitsPerSecond, bytes, seconds, retransmits: tx.retransmits ?? 0 };
}

/** One ping run: the echo replies' round-trip times (ms, in order) and the totals line. */
export interface PingRun {
  transmitted: number;
  received: number;
  /** Round-trip times of the replies, duplicates (DUP!) left out. */
  rtts: number[];
}

/** Read iputils `ping -n` output (per-reply lines and the statistics line). */
export function parsePing(text: string): PingRun {
  const rtts: number[] = [];
  for (const line of text.split('\n')) {
    if (/\bDUP!/.test(line)) continue;
    const m = /\bicmp_seq=\d+ .*\btime=([\d.]+) ms/.exec(line);
    if (m) rtts.push(Number(m[1]));
  }
  const totals = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(text);
  return {
    transmitted: totals ? Number(totals[1]) : rtts.length,
    received: totals ? Number(totals[2]) : rtts.length,
    rtts,
  };
}

/** Summary of round-trip times: count, average, and the 99th percentile (nearest rank). */
export interface RttSummary {
  n: number;
  avg: number;
  p99: number;
}

export function summarizeRtts(rtts: readonly number[]): RttSummary | null {
  if (rtts.length === 0) return null;
  let sum = 0;
  for (const r of rtts) sum += r;
  return { n: rtts.length, avg: sum / rtts.length, p99: percentile(rtts, 99) };
}

/** The nearest-rank percentile: the smallest value with at least p% of the values at or below it. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length, Math.max(1, rank)) - 1]!;
}

/** The median (the mean of the two middle values for an even count); NaN for none. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** CPU time a process has used, in clock ticks (utime + stime of /proc/PID/stat, all its threads). */
export interface ProcCpu {
  utime: number;
  stime: number;
}

/**
 * Read /proc/PID/stat. The command name (field 2) sits in parentheses and may itself hold spaces
 * and parentheses, so the fields are counted from the LAST ')': utime and stime are fields 14
 * and 15 (proc(5)), the 12th and 13th after the name.
 */
export function parseProcStat(text: string): ProcCpu {
  const close = text.lastIndexOf(')');
  if (close < 0) throw new Error('not a /proc/PID/stat line (no ")")');
  const rest = text.slice(close + 1).trim().split(/\s+/);
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isInteger(utime) || !Number.isInteger(stime)) throw new Error('not a /proc/PID/stat line (utime/stime)');
  return { utime, stime };
}

/** CPU seconds between two samples of the same process (ticks per second: `getconf CLK_TCK`). */
export function cpuSeconds(before: ProcCpu, after: ProcCpu, ticksPerSecond: number): number {
  return (after.utime + after.stime - before.utime - before.stime) / ticksPerSecond;
}

/** CPU seconds per gigabyte (1e9 bytes) delivered; null when nothing was delivered. */
export function cpuSecondsPerGB(cpuSec: number, bytes: number): number | null {
  return bytes > 0 ? cpuSec / (bytes / 1e9) : null;
}

/**
 * Which data path an ipferry endpoint says it runs, or null when it does not say: the snapshot's
 * `dataplane` (`ipferry show all --json`: "fast (vnet TUN, UDP GSO/GRO, worker)", "portable
 * (<why not fast>)"), else the "data path: ..." of its "up:" log line.
 */
export function reportedDataPath(log: string, show: Record<string, unknown> | null): string | null {
  const v = show?.dataplane;
  if (typeof v === 'string' && v.trim() !== '') return v.trim();
  const up = log.split('\n').find((l) => /\bup: /.test(l)) ?? '';
  const m = /\bdata path: (.+)$/.exec(up);
  return m ? m[1]!.trim() : null;
}

/** The short name of a reported data path: its first word ("portable (fast path not built yet)" -> "portable"). */
export function dataPathKind(reported: string): string {
  return reported.split(/[\s(]/)[0] || reported;
}
