import { describe, expect, it } from 'vitest';
import { RFC6275_BACKOFF, backoffBound, backoffDelay, refreshDelay, retryAfterDelay } from '../../src/mobility/backoff.ts';
import { SeededRandom } from '../../src/mobility/clock.ts';

describe('backoff (RFC 6275 schedule, full jitter)', () => {
  it('bounds double from 1 s (1.5 s for a first registration) and stop at 32 s', () => {
    const b = (k: number, init: number) => backoffBound(k, init, RFC6275_BACKOFF.maxMs);
    expect([0, 1, 2, 3, 4, 5, 6, 40].map((k) => b(k, 1000))).toEqual([1000, 2000, 4000, 8000, 16_000, 32_000, 32_000, 32_000]);
    expect([0, 1, 2, 3, 4, 5].map((k) => b(k, 1500))).toEqual([1500, 3000, 6000, 12_000, 24_000, 32_000]);
  });

  it('every delay lies in [floor, bound]; over many draws they fill the range (full jitter)', () => {
    const rnd = new SeededRandom(42);
    for (let k = 0; k < 8; k++) {
      const bound = backoffBound(k, 1000, 32_000);
      const d = Array.from({ length: 2000 }, () => backoffDelay(k, 1000, RFC6275_BACKOFF, rnd));
      expect(Math.min(...d)).toBeGreaterThanOrEqual(100);
      expect(Math.max(...d)).toBeLessThanOrEqual(bound);
      // spread: the lowest and highest tenth of the range are both hit
      expect(Math.min(...d)).toBeLessThan(100 + (bound - 100) * 0.1);
      expect(Math.max(...d)).toBeGreaterThan(bound - (bound - 100) * 0.1);
      const mean = d.reduce((a, b) => a + b, 0) / d.length;
      expect(Math.abs(mean - (100 + bound) / 2)).toBeLessThan((bound - 100) * 0.05);
    }
  });

  it('is deterministic for a seed', () => {
    const a = new SeededRandom(9);
    const b = new SeededRandom(9);
    const da = [0, 1, 2, 3].map((k) => backoffDelay(k, 1500, RFC6275_BACKOFF, a));
    const db = [0, 1, 2, 3].map((k) => backoffDelay(k, 1500, RFC6275_BACKOFF, b));
    expect(da).toEqual(db);
  });

  it('spreads a crowd: 10k nodes retrying at once do not come back in one wave', () => {
    const rnd = new SeededRandom(1);
    const hist = new Array(15).fill(0);
    for (let i = 0; i < 10_000; i++) hist[Math.floor(backoffDelay(0, 1500, RFC6275_BACKOFF, rnd) / 100)]++;
    expect(Math.max(...hist.slice(1))).toBeLessThan(1000); // about 720 per 100 ms, not 10k at 1.5 s
  });

  it('refresh at 50-80% of the lifetime; after 130 between retry-after and twice that', () => {
    const rnd = new SeededRandom(5);
    for (let i = 0; i < 1000; i++) {
      const r = refreshDelay(600_000, rnd);
      expect(r).toBeGreaterThanOrEqual(300_000);
      expect(r).toBeLessThanOrEqual(480_000);
      const w = retryAfterDelay(20, RFC6275_BACKOFF, rnd);
      expect(w).toBeGreaterThanOrEqual(20_000);
      expect(w).toBeLessThanOrEqual(40_000);
    }
    expect(retryAfterDelay(0, RFC6275_BACKOFF, rnd)).toBe(100);
  });
});
