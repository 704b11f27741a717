/**
 * The e2e bench's readers (bench/e2e/parse.ts) on outputs captured from the real tools on this
 * machine (test/fixtures/bench/): iperf3 3.12 -J over a bare veth and through the tunnels, iputils
 * ping, /proc/PID/stat of a node endpoint, an openvpn process and a process named "ipf (x) y".
 * Oracles: the numbers iperf3 and ping print themselves, and the kernel's getrusage.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  cpuSeconds,
  cpuSecondsPerGB,
  Iperf3Error,
  median,
  parseIperf3,
  parsePing,
  parseProcStat,
  percentile,
  reportedDataPath,
  dataPathKind,
  summarizeRtts,
} from '../../bench/e2e/parse.ts';

const FIX = join(import.meta.dirname, '../fixtures/bench');
const fixture = (name: string): string => readFileSync(join(FIX, name), 'utf8');

describe('parseIperf3', () => {
  it('TCP, one stream over the veth: the receiver\'s totals and the sender\'s retransmits', () => {
    const r = parseIperf3(fixture('iperf3-tcp-veth.json'));
    expect(r).toEqual({
      kind: 'tcp',
      streams: 1,
      bitsPerSecond: 18193659795.09196,
      bytes: 2275672064,
      seconds: 1.000644,
      retransmits: 0,
    });
  });

  it('TCP, four streams: the sums over the streams', () => {
    const r = parseIperf3(fixture('iperf3-tcp-4streams-veth.json'));
    expect(r.kind).toBe('tcp');
    if (r.kind !== 'tcp') return;
    expect(r.streams).toBe(4);
    expect(r.retransmits).toBe(5264);
    expect(r.bytes).toBe(2589720576);
    // oracle: the per-stream receiver bytes iperf3 printed add up to the sum we read
    const j = JSON.parse(fixture('iperf3-tcp-4streams-veth.json')) as { end: { streams: { receiver: { bytes: number } }[] } };
    expect(j.end.streams.reduce((a, s) => a + s.receiver.bytes, 0)).toBe(r.bytes);
  });

  it('TCP through OpenVPN: thousands of retransmits, receiver Mbit/s', () => {
    const r = parseIperf3(fixture('iperf3-tcp-openvpn.json'));
    expect(r).toMatchObject({ kind: 'tcp', retransmits: 27865, bytes: 270161400 });
    expect(r.bitsPerSecond / 1e6).toBeCloseTo(720.25, 2);
  });

  it('UDP: delivered = counted - lost; loss counts the tail the receiver never saw', () => {
    const r = parseIperf3(fixture('iperf3-udp-veth.json'));
    expect(r.kind).toBe('udp');
    if (r.kind !== 'udp') return;
    expect(r.datagramBytes).toBe(1300);
    expect(r.sent).toBe(140248);
    expect(r.delivered).toBe(139729 - 54269);
    // oracle: the receiver's byte count is delivered datagrams x 1300
    expect(r.delivered * 1300).toBe(r.bytes);
    expect(r.pps).toBeCloseTo(85460 / 1.002063, 6);
    expect(r.lossPercent).toBeCloseTo((100 * (140248 - 85460)) / 140248, 9);
    // iperf3's own lost_percent ignores the lost tail: ours is a little higher
    expect(r.lossPercent).toBeGreaterThan(38.6950259540243);
  });

  it('UDP through ipferry (80% loss at a 2 Gbit/s offer)', () => {
    const r = parseIperf3(fixture('iperf3-udp-ipferry.json'));
    if (r.kind !== 'udp') throw new Error('not udp');
    expect(r.delivered).toBe(327864 - 263405);
    expect(r.delivered * 1300).toBe(r.bytes);
    expect(r.sent).toBe(328508);
    expect(r.pps).toBeCloseTo(64459 / 3.040296, 6);
  });

  it('an iperf3 error is thrown with its own text; broken output says so', () => {
    expect(() => parseIperf3(fixture('iperf3-refused.json'))).toThrow(Iperf3Error);
    expect(() => parseIperf3(fixture('iperf3-refused.json'))).toThrow('unable to connect to server: Connection refused');
    expect(() => parseIperf3('')).toThrow('no output');
    expect(() => parseIperf3('iperf3: error - unable to connect')).toThrow(/not JSON: iperf3: error/);
    expect(() => parseIperf3('{"start":{}}')).toThrow(/no end\.sum_received/);
  });
});

/** ping's own "rtt min/avg/max/mdev" line: the oracle for what we compute from the replies. */
function pingSummary(text: string): { min: number; avg: number; max: number } {
  const m = /= ([\d.]+)\/([\d.]+)\/([\d.]+)\//.exec(text)!;
  return { min: Number(m[1]), avg: Number(m[2]), max: Number(m[3]) };
}

describe('parsePing', () => {
  for (const [name, count, tolerance] of [
    ['ping-sparse-veth.txt', 20, 0.001],
    ['ping-dense-veth.txt', 50, 0.001],
    ['ping-sparse-ipferry.txt', 100, 0.005],
  ] as const) {
    it(`${name}: every reply read; min/avg/max agree with ping's own summary`, () => {
      const text = fixture(name);
      const r = parsePing(text);
      expect(r.transmitted).toBe(count);
      expect(r.received).toBe(count);
      expect(r.rtts).toHaveLength(count);
      const s = summarizeRtts(r.rtts)!;
      const oracle = pingSummary(text);
      // ping prints each time to 3 significant digits (15.4 ms for 15.402) and sums its
      // unrounded microseconds: agreement within that rounding
      expect(Math.abs(Math.min(...r.rtts) - oracle.min)).toBeLessThanOrEqual(tolerance);
      expect(Math.abs(Math.max(...r.rtts) - oracle.max)).toBeLessThanOrEqual(tolerance);
      expect(Math.abs(s.avg - oracle.avg)).toBeLessThanOrEqual(tolerance);
    });
  }

  it('all lost: no replies, totals from the statistics line', () => {
    const r = parsePing(fixture('ping-unreachable.txt'));
    expect(r).toEqual({ transmitted: 5, received: 0, rtts: [] });
    expect(summarizeRtts(r.rtts)).toBeNull();
  });

  it('duplicates are not counted twice', () => {
    const text = [
      '64 bytes from 10.0.0.2: icmp_seq=1 ttl=64 time=0.100 ms',
      '64 bytes from 10.0.0.2: icmp_seq=1 ttl=64 time=0.300 ms (DUP!)',
      '64 bytes from 10.0.0.2: icmp_seq=2 ttl=64 time=12.5 ms',
      '2 packets transmitted, 2 received, +1 duplicates, 0% packet loss, time 1001ms',
    ].join('\n');
    expect(parsePing(text)).toEqual({ transmitted: 2, received: 2, rtts: [0.1, 12.5] });
  });
});

describe('statistics', () => {
  it('nearest-rank p99 of 100 values is the 99th smallest; of 5, the largest', () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted input
    expect(percentile(xs, 99)).toBe(99);
    expect(percentile(xs, 90)).toBe(90);
    expect(percentile([3, 1, 2, 5, 4], 99)).toBe(5);
    expect(percentile([7], 99)).toBe(7);
  });

  it('median: middle value, or the mean of the two middle ones', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });

  it('summarizeRtts of the ipferry fixture: p99 is the second largest of 100', () => {
    const rtts = parsePing(fixture('ping-sparse-ipferry.txt')).rtts;
    const sorted = [...rtts].sort((a, b) => a - b);
    expect(summarizeRtts(rtts)!.p99).toBe(sorted[98]);
  });
});

describe('parseProcStat', () => {
  it('node and openvpn endpoint processes: utime and stime are fields 14 and 15', () => {
    expect(parseProcStat(fixture('proc-stat-ipferry-node.txt'))).toEqual({ utime: 26, stime: 4 });
    expect(parseProcStat(fixture('proc-stat-openvpn.txt'))).toEqual({ utime: 0, stime: 0 });
  });

  it('a command name with spaces and parentheses does not shift the fields', () => {
    const text = fixture('proc-stat-paren-comm.txt');
    expect(text.startsWith('2186 (ipf (x) y) R ')).toBe(true);
    expect(parseProcStat(text)).toEqual({ utime: 3, stime: 0 });
  });

  it("this process's own line agrees with the kernel's getrusage (process.cpuUsage)", () => {
    let x = 0;
    for (let i = 0; i < 3e7; i++) x += i % 7; // some CPU time to read
    expect(x).toBeGreaterThan(0);
    const before = process.cpuUsage();
    const ticks = parseProcStat(readFileSync('/proc/self/stat', 'utf8'));
    const after = process.cpuUsage();
    const hz = 100; // USER_HZ on Linux
    const statSec = (ticks.utime + ticks.stime) / hz;
    // /proc counts whole ticks (10 ms), rounded down: within a tick or two of getrusage
    expect(statSec).toBeGreaterThanOrEqual((before.user + before.system) / 1e6 - 0.03);
    expect(statSec).toBeLessThanOrEqual((after.user + after.system) / 1e6 + 0.001);
  });

  it('garbage is refused', () => {
    expect(() => parseProcStat('no parenthesis')).toThrow();
    expect(() => parseProcStat('1 (x) S 1 2')).toThrow();
  });

  it('cpuSeconds and cpuSecondsPerGB', () => {
    const s = cpuSeconds({ utime: 100, stime: 50 }, { utime: 250, stime: 100 }, 100);
    expect(s).toBe(2);
    expect(cpuSecondsPerGB(s, 500e6)).toBe(4);
    expect(cpuSecondsPerGB(s, 0)).toBeNull();
  });
});

describe('reportedDataPath', () => {
  // the start line and snapshot field of src/endpoint/endpoint.ts (data-plane boundary, issue 9)
  const upLine =
    '2026-12-06T01:20:00.000Z info ferry0: up: ferry0 mtu 1400, listening on 203.0.113.10:6080, 1 peer(s), data path: portable (disabled by IPFERRY_NO_FFI)\n';
  const before = '2026-12-06T00:51:12.000Z info ferry0: up: ferry0 mtu 1400, listening on 203.0.113.10:6080, 1 peer(s)\n';

  it('the snapshot field wins; else the up line; an endpoint that says nothing gives null', () => {
    expect(reportedDataPath(upLine, { dataplane: 'fast (vnet TUN, UDP GSO/GRO, worker)' })).toBe('fast (vnet TUN, UDP GSO/GRO, worker)');
    expect(reportedDataPath(upLine, { interface: 'ferry0' })).toBe('portable (disabled by IPFERRY_NO_FFI)');
    expect(reportedDataPath(upLine, null)).toBe('portable (disabled by IPFERRY_NO_FFI)');
    expect(reportedDataPath(before, { interface: 'ferry0', device: 'tun' })).toBeNull();
    // a warning elsewhere in the log is not the up line
    expect(reportedDataPath(`warning: data path: fast refused\n${before}`, null)).toBeNull();
  });

  it('dataPathKind: the first word', () => {
    expect(dataPathKind('portable (fast path not built yet)')).toBe('portable');
    expect(dataPathKind('fast (vnet TUN, UDP GSO/GRO, worker)')).toBe('fast');
    expect(dataPathKind('fast')).toBe('fast');
  });
});
