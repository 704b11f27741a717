/**
 * The event gate alone, with a clock the test moves: per key the first occurrence at once, the
 * rest as one counted line per interval; the all-keys budget bounds lines (summaries included)
 * however many keys flood at once, and what it holds back is counted, never lost from the sum.
 */
import { describe, expect, it } from 'vitest';
import type { DataPlaneEvent } from '../../src/endpoint/dataplane.ts';
import { EventGate } from '../../src/endpoint/event-gate.ts';

function gate(opts: { intervalMs?: number; burst?: number; perSecond?: number } = {}) {
  const lines: DataPlaneEvent[] = [];
  const g = new EventGate({ ...opts, emit: (e) => lines.push(e) });
  const hit = (kind: number, key: number, now: number): void => {
    if (g.hit(kind, key, now)) g.line({ event: 'auth-failure', peer: key, count: 1, periodMs: 0 });
  };
  return { g, lines, hit };
}

describe('EventGate', () => {
  it('one key: first at once, then one line per interval with the count, by the next hit or by flush', () => {
    const { g, lines, hit } = gate({ intervalMs: 10_000 });
    for (let t = 0; t < 5_000; t++) hit(1, 7, 1_000_000 + t); // 5000 in 5 s
    expect(lines.map((l) => l.count)).toEqual([1]);
    hit(1, 7, 1_010_000); // the interval is over: this one carries the 4999 before it
    expect(lines.map((l) => [l.count, l.periodMs])).toEqual([
      [1, 0],
      [5000, 10_000],
    ]);
    hit(1, 7, 1_012_000);
    g.flush(1_015_000); // not yet
    expect(lines).toHaveLength(2);
    g.flush(1_020_000);
    expect(lines.map((l) => l.count)).toEqual([1, 5000, 1]);
    g.flush(1_040_000); // nothing pending: nothing
    expect(lines).toHaveLength(3);
  });

  it('kinds and keys are limited apart', () => {
    const { lines, hit } = gate();
    for (let i = 0; i < 100; i++) {
      hit(1, 1, 1000 + i);
      hit(1, 2, 1000 + i);
      hit(2, 1, 1000 + i);
    }
    expect(lines).toHaveLength(3);
  });

  it('a flood of distinct keys: lines bounded by the budget, the rest counted in one events-suppressed line', () => {
    const { g, lines, hit } = gate({ burst: 20, perSecond: 2 });
    const N = 100_000;
    for (let i = 0; i < N; i++) hit(1, i, 5_000_000 + Math.floor(i / 100)); // 100k keys over 1 s
    const first = lines.length;
    expect(first).toBeLessThanOrEqual(20 + 2);
    g.flush(5_002_000);
    const sup = lines.filter((l) => l.event === 'events-suppressed');
    expect(sup).toHaveLength(1);
    // every occurrence is a line of its own, or counted in a summary, or in the suppressed line
    expect(lines.reduce((n, l) => n + l.count, 0)).toBe(N);
    expect(lines.length).toBeLessThan(40);
  });
});
