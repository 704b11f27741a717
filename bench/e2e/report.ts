/**
 * What the end-to-end bench measured, turned into its tables and chart: medians over the rounds,
 * ratios to OpenVPN, CPU seconds per GB per endpoint process, the rounds one by one, and the
 * per-hop table. Pure (data in, markdown and SVG out), so it can be checked without namespaces.
 */
import { barChartSvg, type ChartPanel } from './chart.ts';
import {
  cpuSecondsPerGB,
  median,
  percentile,
  summarizeRtts,
  type Iperf3Tcp,
  type Iperf3Udp,
  type PingRun,
  type RttSummary,
} from './parse.ts';

/** One iperf3 transfer and the CPU seconds each endpoint process used during it. */
export interface Transfer<T> {
  run: T | null;
  /** Per endpoint process (same order as PathResult.processes); null when not sampled. */
  cpuSeconds: (number | null)[];
}

export interface RoundResult {
  round: number;
  sparse: PingRun | null;
  dense: PingRun | null;
  tcp1: Transfer<Iperf3Tcp>;
  tcp4: Transfer<Iperf3Tcp>;
  udp: Transfer<Iperf3Udp>;
}

export interface HopRow {
  /** e.g. "fresh" or "after the rounds". */
  when: string;
  /** Delays in µs: gwA TUN -> UDP (request), gwB UDP -> TUN (request), gwB TUN -> UDP (reply), gwA UDP -> TUN (reply). */
  gwAOut: number[];
  gwBIn: number[];
  gwBOut: number[];
  gwAIn: number[];
}

export interface PathResult {
  key: string;
  /** Row name in the tables. */
  label: string;
  /** Bar label in the chart. */
  short: string;
  color: string;
  kind: 'reference' | 'ipferry' | 'openvpn';
  /** Endpoint processes whose CPU is counted (gateway names); empty for the reference rows. */
  processes: { gw: string }[];
  /** Why the path was not measured, if it was not. */
  down: string | null;
  rounds: RoundResult[];
  hops: HopRow[];
}

export interface ReportInput {
  paths: PathResult[];
  rounds: number;
  transferSeconds: number;
  udpArgs: readonly string[];
  sparse: { count: number; interval: number };
  dense: { count: number; interval: number };
  date: string;
  machine: string;
  /** How ipferry ran, one phrase ("compiled CLI: node dist/cli.js up"). */
  cliText: string;
  /** How it was measured (lines of text, after the tables). */
  method: string[];
  /** What happened in this run (failures, endpoint counters), one bullet each. */
  notes: string[];
  chartName: string;
}

/** Medians over the rounds of one path. */
export interface PathSummary {
  tcp1: number | null;
  tcp1Retr: number | null;
  tcp4: number | null;
  tcp4Retr: number | null;
  /** Delivered datagrams per second, and loss in percent. */
  udpPps: number | null;
  udpLoss: number | null;
  sparse: RttSummary | null;
  dense: RttSummary | null;
  /** CPU seconds per GB per endpoint process, per transfer kind. */
  cpuPerGB: { tcp1: (number | null)[]; tcp4: (number | null)[]; udp: (number | null)[] };
  /** Rounds with a TCP 1-stream figure, of all rounds. */
  n: number;
}

function med(xs: (number | null | undefined)[]): number | null {
  const v = xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  return v.length === 0 ? null : median(v);
}

/** The median of each measure over a path's rounds (RTT: the median of each round's avg and p99). */
export function summarize(p: PathResult): PathSummary {
  const rs = p.rounds;
  const rtt = (pick: (r: RoundResult) => PingRun | null): RttSummary | null => {
    const s = rs.map((r) => {
      const pr = pick(r);
      return pr === null ? null : summarizeRtts(pr.rtts);
    });
    const avg = med(s.map((x) => x?.avg));
    const p99 = med(s.map((x) => x?.p99));
    const n = s.reduce((a, x) => a + (x?.n ?? 0), 0);
    return avg === null || p99 === null ? null : { avg, p99, n };
  };
  const cpu = <T extends { bytes: number }>(pick: (r: RoundResult) => Transfer<T>) =>
    p.processes.map((_, i) =>
      med(
        rs.map((r) => {
          const t = pick(r);
          const c = t.cpuSeconds[i];
          return t.run === null || c === null || c === undefined ? null : cpuSecondsPerGB(c, t.run.bytes);
        }),
      ),
    );
  return {
    tcp1: med(rs.map((r) => (r.tcp1.run ? r.tcp1.run.bitsPerSecond / 1e6 : null))),
    tcp1Retr: med(rs.map((r) => r.tcp1.run?.retransmits)),
    tcp4: med(rs.map((r) => (r.tcp4.run ? r.tcp4.run.bitsPerSecond / 1e6 : null))),
    tcp4Retr: med(rs.map((r) => r.tcp4.run?.retransmits)),
    udpPps: med(rs.map((r) => r.udp.run?.pps)),
    udpLoss: med(rs.map((r) => r.udp.run?.lossPercent)),
    sparse: rtt((r) => r.sparse),
    dense: rtt((r) => r.dense),
    cpuPerGB: { tcp1: cpu((r) => r.tcp1), tcp4: cpu((r) => r.tcp4), udp: cpu((r) => r.udp) },
    n: rs.filter((r) => r.tcp1.run !== null).length,
  };
}

/** Sum over the endpoint processes, null unless every one has a figure. */
export function cpuSum(xs: (number | null)[]): number | null {
  if (xs.length === 0 || xs.some((x) => x === null)) return null;
  return (xs as number[]).reduce((a, b) => a + b, 0);
}

const dash = '–';
const num = (x: number | null | undefined, digits: number): string => (x === null || x === undefined ? dash : x.toFixed(digits));
const ms = (x: number | null | undefined): string => num(x, 3);
const ratio = (x: number | null, ref: number | null): string => (x === null || ref === null || ref === 0 ? dash : `${(x / ref).toFixed(2)}x`);
const rttCell = (s: RttSummary | null): string => (s === null ? dash : `${ms(s.avg)} / ${ms(s.p99)}`);
const hopCell = (xs: number[]): string =>
  xs.length === 0 ? dash : `${median(xs).toFixed(0)} / ${percentile(xs, 90).toFixed(0)} (${xs.length})`;

export function renderReport(input: ReportInput): { markdown: string; svg: string } {
  const paths = input.paths;
  const sums = new Map(paths.map((p) => [p.key, summarize(p)] as const));
  const ovpn = paths.find((p) => p.kind === 'openvpn' && p.down === null);
  const ov = ovpn ? sums.get(ovpn.key)! : null;
  const routed = paths.find((p) => p.key === 'routed' && p.down === null);
  const rt = routed ? sums.get(routed.key)! : null;
  const udpText = `${input.udpArgs.join(' ')}`;
  const out: string[] = [];

  out.push(
    `Medians of ${input.rounds} interleaved rounds (${input.date}, ${input.machine}); every path up at once on the same veth.`,
    '',
    `| path | TCP 1 stream, Mbit/s (retr) | TCP 4 streams, Mbit/s (retr) | UDP ${udpText}: delivered kpps (loss) | RTT ms -i ${input.sparse.interval}, avg / p99 | RTT ms -i ${input.dense.interval}, avg / p99 | CPU s/GB, TCP 1 stream (${'per endpoint'}) |`,
    '|---|---|---|---|---|---|---|',
  );
  for (const p of paths) {
    if (p.down !== null) {
      out.push(`| ${p.label} | not measured: ${p.down.replace(/\|/g, '/')} | | | | | |`);
      continue;
    }
    const s = sums.get(p.key)!;
    const cpu = p.processes.length === 0 ? 'n/a' : p.processes.map((pr, i) => `${pr.gw} ${num(s.cpuPerGB.tcp1[i], 2)}`).join(', ');
    out.push(
      `| ${p.label} | ${num(s.tcp1, 0)} (${num(s.tcp1Retr, 0)}) | ${num(s.tcp4, 0)} (${num(s.tcp4Retr, 0)}) | ` +
        `${s.udpPps === null ? dash : (s.udpPps / 1e3).toFixed(1)} (${num(s.udpLoss, 1)}%) | ${rttCell(s.sparse)} | ${rttCell(s.dense)} | ${cpu} |`,
    );
  }

  out.push(
    '',
    'Ratios to OpenVPN in the same run (throughput: higher is better; RTT and CPU: lower is better). RTT overhead = the',
    "path's RTT minus the routed row's (same namespaces and hops, no tunnel), over OpenVPN's overhead.",
    '',
    '| path | TCP 1 stream | TCP 4 streams | UDP delivered pps | RTT avg sparse | RTT avg back to back | RTT overhead sparse | RTT overhead back to back | CPU s/GB, both endpoints, TCP 1 stream |',
    '|---|---|---|---|---|---|---|---|---|',
  );
  const overhead = (s: RttSummary | null, r: RttSummary | null): number | null => (s === null || r === null ? null : s.avg - r.avg);
  for (const p of paths) {
    if (p.down !== null || ov === null) continue;
    const s = sums.get(p.key)!;
    out.push(
      `| ${p.label} | ${ratio(s.tcp1, ov.tcp1)} | ${ratio(s.tcp4, ov.tcp4)} | ${ratio(s.udpPps, ov.udpPps)} | ` +
        `${ratio(s.sparse?.avg ?? null, ov.sparse?.avg ?? null)} | ${ratio(s.dense?.avg ?? null, ov.dense?.avg ?? null)} | ` +
        `${p.key === 'routed' || p.key === 'bare' ? dash : ratio(overhead(s.sparse, rt?.sparse ?? null), overhead(ov.sparse, rt?.sparse ?? null))} | ` +
        `${p.key === 'routed' || p.key === 'bare' ? dash : ratio(overhead(s.dense, rt?.dense ?? null), overhead(ov.dense, rt?.dense ?? null))} | ` +
        `${p.processes.length === 0 ? 'n/a' : ratio(cpuSum(s.cpuPerGB.tcp1), cpuSum(ov.cpuPerGB.tcp1))} |`,
    );
  }
  if (ov === null) out.push('| (no OpenVPN row in this run: no ratios) | | | | | | | | |');

  out.push(
    '',
    'CPU seconds per GB delivered, per endpoint process (medians):',
    '',
    '| path | endpoint | TCP 1 stream | TCP 4 streams | UDP |',
    '|---|---|---|---|---|',
  );
  for (const p of paths) {
    if (p.down !== null) continue;
    const s = sums.get(p.key)!;
    p.processes.forEach((pr, i) => {
      out.push(`| ${p.label} | ${pr.gw} | ${num(s.cpuPerGB.tcp1[i], 2)} | ${num(s.cpuPerGB.tcp4[i], 2)} | ${num(s.cpuPerGB.udp[i], 2)} |`);
    });
  }

  out.push(
    '',
    'Each round (the spread is the noise):',
    '',
    '| path | round | TCP 1, Mbit/s | TCP 4, Mbit/s | UDP kpps | RTT avg sparse | RTT avg back to back | CPU s/GB TCP 1 (per endpoint) |',
    '|---|---|---|---|---|---|---|---|',
  );
  for (const p of paths) {
    for (const r of p.rounds) {
      const cpu =
        p.processes.length === 0 || r.tcp1.run === null
          ? p.processes.length === 0
            ? 'n/a'
            : dash
          : r.tcp1.cpuSeconds.map((c) => num(c === null ? null : cpuSecondsPerGB(c, r.tcp1.run!.bytes), 2)).join(' / ');
      out.push(
        `| ${p.label} | ${r.round} | ${num(r.tcp1.run ? r.tcp1.run.bitsPerSecond / 1e6 : null, 0)} | ${num(r.tcp4.run ? r.tcp4.run.bitsPerSecond / 1e6 : null, 0)} | ` +
          `${num(r.udp.run ? r.udp.run.pps / 1e3 : null, 1)} | ${ms(r.sparse ? summarizeRtts(r.sparse.rtts)?.avg : null)} | ` +
          `${ms(r.dense ? summarizeRtts(r.dense.rtts)?.avg : null)} | ${cpu} |`,
      );
    }
  }

  const hopPaths = paths.filter((p) => p.hops.length > 0);
  if (hopPaths.length > 0) {
    out.push(
      '',
      `Per hop inside the gateways, µs median / p90 (n), from tcpdump -tt in both gateways while pinging (-i ${input.sparse.interval}):`,
      '',
      '| tunnel | when | gwA TUN -> UDP (request) | gwB UDP -> TUN (request) | gwB TUN -> UDP (reply) | gwA UDP -> TUN (reply) |',
      '|---|---|---|---|---|---|',
    );
    for (const p of hopPaths) {
      for (const h of p.hops) out.push(`| ${p.label} | ${h.when} | ${hopCell(h.gwAOut)} | ${hopCell(h.gwBIn)} | ${hopCell(h.gwBOut)} | ${hopCell(h.gwAIn)} |`);
    }
  }

  out.push('', `![ipferry vs OpenVPN, ${input.date}, ${input.machine}](${input.chartName}) (chart: ${input.chartName}, ${input.date}, ${input.machine})`);
  if (input.method.length > 0) out.push('', ...input.method);
  if (input.notes.length > 0) out.push('', ...input.notes.map((n) => `- ${n}`));

  return { markdown: out.join('\n'), svg: chart(input, sums) };
}

function chart(input: ReportInput, sums: Map<string, PathSummary>): string {
  const up = input.paths.filter((p) => p.down === null);
  // Clip the throughput panels at 1.6x the largest tunnel so tunnels stay readable beside the veth.
  const tunnelMax = (pick: (s: PathSummary) => number | null): number | undefined => {
    const v = up.filter((p) => p.kind !== 'reference').map((p) => pick(sums.get(p.key)!) ?? 0);
    const m = Math.max(0, ...v);
    return m > 0 ? 1.6 * m : undefined;
  };
  const panel = (title: string, unit: string, better: 'higher' | 'lower', digits: number, pick: (s: PathSummary) => number | null, clip = false): ChartPanel => ({
    title,
    unit,
    better,
    digits,
    ...(clip ? { clipAt: tunnelMax(pick) } : {}),
    bars: up.map((p) => ({ label: p.short, color: p.color, value: pick(sums.get(p.key)!) })),
  });
  return barChartSvg({
    title: 'ipferry vs OpenVPN 2.6 end to end (namespaces joined by one veth, kernel TCP/UDP/ICMP on both ends)',
    subtitle: `${input.date} · ${input.machine} · medians of ${input.rounds} interleaved rounds · ${input.cliText}`,
    panels: [
      panel('iperf3 TCP, 1 stream', 'Mbit/s', 'higher', 0, (s) => s.tcp1, true),
      panel('iperf3 TCP, 4 streams', 'Mbit/s', 'higher', 0, (s) => s.tcp4, true),
      panel(`iperf3 UDP ${input.udpArgs.filter((a) => a !== '-u').join(' ')}`, 'delivered kpps', 'higher', 1, (s) => (s.udpPps === null ? null : s.udpPps / 1e3), true),
      panel('CPU per GB, both endpoints, TCP 1 stream', 's/GB', 'lower', 2, (s) => cpuSum(s.cpuPerGB.tcp1)),
      panel(`ping RTT avg, -i ${input.sparse.interval}`, 'ms', 'lower', 3, (s) => s.sparse?.avg ?? null),
      panel(`ping RTT avg, -i ${input.dense.interval}`, 'ms', 'lower', 3, (s) => s.dense?.avg ?? null),
    ],
  });
}
