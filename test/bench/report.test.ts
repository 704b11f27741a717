/**
 * The e2e bench's tables (bench/e2e/report.ts): medians over rounds, ratios to OpenVPN, CPU
 * seconds per GB per endpoint, a path that did not come up. Rounds built from the captured
 * iperf3/ping fixtures with scaled throughputs, so every expected figure is worked out by hand.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseIperf3, parsePing, type Iperf3Tcp, type Iperf3Udp, type PingRun } from '../../bench/e2e/parse.ts';
import { renderReport, summarize, type PathResult, type RoundResult } from '../../bench/e2e/report.ts';

const FIX = join(import.meta.dirname, '../fixtures/bench');
const tcp = parseIperf3(readFileSync(join(FIX, 'iperf3-tcp-veth.json'), 'utf8')) as Iperf3Tcp;
const udp = parseIperf3(readFileSync(join(FIX, 'iperf3-udp-veth.json'), 'utf8')) as Iperf3Udp;
const ping = parsePing(readFileSync(join(FIX, 'ping-sparse-veth.txt'), 'utf8'));

const tcpAt = (mbit: number, bytes: number): Iperf3Tcp => ({ ...tcp, bitsPerSecond: mbit * 1e6, bytes });
const pingAt = (ms: number): PingRun => ({ ...ping, rtts: ping.rtts.map(() => ms) });

function round(i: number, mbit: number, rtt: number, cpu: number[]): RoundResult {
  const t = { run: tcpAt(mbit, 1e9), cpuSeconds: cpu };
  return { round: i, sparse: pingAt(rtt), dense: pingAt(rtt / 2), tcp1: t, tcp4: t, udp: { run: udp, cpuSeconds: cpu } };
}

function path(key: string, kind: PathResult['kind'], rounds: RoundResult[], gws: string[]): PathResult {
  return { key, label: key, short: key, color: '#000', kind, processes: gws.map((gw) => ({ gw })), down: null, rounds, hops: [] };
}

const paths: PathResult[] = [
  path('routed', 'reference', [round(1, 10000, 0.1, []), round(2, 12000, 0.1, []), round(3, 11000, 0.1, [])], []),
  // medians: TCP 1500 Mbit/s, RTT 0.6 ms, CPU 3 and 4 s per GB (1e9 bytes each round)
  path('ipferry', 'ipferry', [round(1, 1400, 0.6, [3, 4]), round(2, 1500, 0.5, [2, 5]), round(3, 1600, 0.7, [4, 4])], ['gwA', 'gwB']),
  path('openvpn', 'openvpn', [round(1, 1000, 0.35, [5, 5]), round(2, 900, 0.3, [6, 6]), round(3, 1100, 0.4, [4, 4])], ['gwA', 'gwB']),
  { ...path('broken', 'ipferry', [], ['gwA', 'gwB']), down: 'endpoint exited (2)' },
];

describe('summarize', () => {
  it('medians per measure over the rounds; CPU per GB per endpoint', () => {
    const s = summarize(paths[1]!);
    expect(s.tcp1).toBe(1500);
    expect(s.sparse!.avg).toBeCloseTo(0.6, 12);
    expect(s.dense!.avg).toBeCloseTo(0.3, 12);
    expect(s.cpuPerGB.tcp1).toEqual([3, 4]);
    // UDP: the fixture's delivered bytes, 0.111098 GB per round
    expect(s.cpuPerGB.udp[0]).toBeCloseTo(3 / 0.111098, 9);
    expect(s.udpPps).toBeCloseTo(udp.pps, 9);
    expect(s.n).toBe(3);
  });
});

describe('renderReport', () => {
  const { markdown, svg } = renderReport({
    paths,
    rounds: 3,
    transferSeconds: 3,
    udpArgs: ['-u', '-b', '2G', '-l', '1300'],
    sparse: { count: 20, interval: 0.05 },
    dense: { count: 20, interval: 0.002 },
    date: '2026-12-06',
    machine: '2 x test cpu',
    cliText: 'compiled CLI',
    method: ['How: by hand.'],
    notes: ['a note'],
    chartName: 'e2e.svg',
  });
  const row = (table: string, label: string): string[] => {
    const start = markdown.indexOf(table);
    const line = markdown.slice(start).split('\n').find((l) => l.startsWith(`| ${label} |`))!;
    return line.split('|').slice(1, -1).map((c) => c.trim());
  };

  it('medians table: Mbit/s, RTT avg / p99, CPU per endpoint; the path that did not come up says why', () => {
    const r = row('Medians of 3', 'ipferry');
    expect(r[1]).toBe('1500 (0)');
    expect(r[4]).toBe('0.600 / 0.600');
    expect(r[6]).toBe('gwA 3.00, gwB 4.00');
    expect(row('Medians of 3', 'broken')[1]).toBe('not measured: endpoint exited (2)');
  });

  it('ratios to OpenVPN: throughput, RTT, overhead over routed, CPU of both endpoints', () => {
    const r = row('Ratios to OpenVPN', 'ipferry');
    expect(r[1]).toBe('1.50x'); // 1500 / 1000
    expect(r[4]).toBe('1.71x'); // 0.6 / 0.35
    expect(r[6]).toBe('2.00x'); // (0.6 - 0.1) / (0.35 - 0.1)
    expect(r[8]).toBe('0.70x'); // (3 + 4) / (5 + 5)
    expect(row('Ratios to OpenVPN', 'openvpn')[1]).toBe('1.00x');
  });

  it('links the chart with date and machine, keeps the notes, and the chart has every measured path', () => {
    expect(markdown).toContain('](e2e.svg)');
    expect(markdown).toContain('2026-12-06, 2 x test cpu');
    expect(markdown).toContain('- a note');
    expect(markdown.indexOf('How: by hand.')).toBeLessThan(markdown.indexOf('- a note'));
    expect(svg).toContain('2026-12-06 · 2 x test cpu');
    expect(svg.match(/>ipferry</g)?.length).toBe(6); // one bar label per panel
    expect(svg).not.toContain('>broken<');
  });
});
