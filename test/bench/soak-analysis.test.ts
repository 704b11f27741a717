import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { longestGap, outageAround, parsePingLog, rssSlope, unexpectedErrors } from '../../bench/soak/analysis.ts';

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/bench/${name}`, import.meta.url), 'utf8');

describe('soak analysis', () => {
  it('rssSlope: least squares over the last 80% (the warm-up left out)', () => {
    // a warm-up climb of 50 MiB in 20 s, then 2 KiB/s (120 KiB/min) with +-3 KiB noise
    const samples = Array.from({ length: 100 }, (_, t) => ({ t, kb: t < 20 ? 100_000 + t * 2560 : 151_200 + (t - 20) * 2 + (t % 2 === 0 ? 3 : -3) }));
    const s = rssSlope(samples);
    expect(s.n).toBe(80);
    expect(s.spanS).toBe(79);
    expect(s.kbPerMin).toBeCloseTo(120, 0);
    expect(rssSlope(samples, 1).kbPerMin).toBeGreaterThan(500); // the warm-up in the fit
    expect(rssSlope([]).kbPerMin).toBe(0);
    expect(rssSlope([{ t: 0, kb: 2048 }], 1)).toEqual({ kbPerMin: 0, n: 1, spanS: 0, meanMb: 2 });
  });

  it('parsePingLog reads ping -D -O (a real outage: 5 probes unanswered)', () => {
    const p = parsePingLog(fixture('ping-D-O-outage.txt'));
    expect(p.sent).toBe(12);
    expect(p.received).toBe(7);
    expect(p.replies[0]).toBe(1796522363139);
    expect(longestGap(p.replies, 0, Infinity)).toBe(1796522365175 - 1796522363951);
    // the addresses went away at ~363.95 and came back (the "endpoint up") at ~365.0
    const o = outageAround(p.replies, 1796522364000, 1796522365000);
    expect(o).toEqual({ lastBefore: 1796522363951, firstAfter: 1796522365175, gapMs: 1224, upToTrafficMs: 175 });
    expect(outageAround(p.replies, 1796522366000, 1796522366000)).toEqual({ lastBefore: 1796522365379, firstAfter: null, gapMs: null, upToTrafficMs: null });
  });

  it('unexpectedErrors: stack traces, uncaught/unhandled, fatal and error-level lines, minus the expected ones', () => {
    const log = [
      '2026-12-06T01:47:29.936Z info ferry0: up: ferry0 mtu 1400',
      '2026-12-06T01:47:29.937Z warn ferry0: warning: udp: sending to peer far failed: EINVAL; further send errors toward it are logged at most every 10 s',
      '2026-12-06T01:47:35.312Z error ferry0: device ferry0 went down: TUN ferry0: interface ferry0 was deleted; stopping with exit code 1',
      '2026-12-06T01:47:36.000Z error ferry0: fatal: something else',
      'TypeError: Cannot read properties of undefined',
      '    at Pipeline.fromDevice (/work/src/endpoint/pipeline.ts:120:7)',
      '2026-12-06T01:47:37.000Z warn ferry0: warning: 3 more unheard internal error(s)',
    ].join('\n');
    expect(unexpectedErrors(log, [/interface ferry0 was deleted; stopping with exit code 1/])).toEqual([
      '2026-12-06T01:47:36.000Z error ferry0: fatal: something else',
      'TypeError: Cannot read properties of undefined',
      '    at Pipeline.fromDevice (/work/src/endpoint/pipeline.ts:120:7)',
      '2026-12-06T01:47:37.000Z warn ferry0: warning: 3 more unheard internal error(s)',
    ]);
  });
});
