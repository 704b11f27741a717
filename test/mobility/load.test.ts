/**
 * The in-process load runs at CI size (10k nodes; bench/mobility.bench.ts runs 100k and reports
 * the figures). Asserted: correctness and memory bounds, never timing.
 */
import { describe, expect, it } from 'vitest';
import { reconnectStorm, registrationBurst } from '../support/mobility-load.ts';

describe('home agent under load (10k nodes)', () => {
  it('registers 10k distinct nodes back to back: every update verified, every node acked, bounded memory', () => {
    const r = registrationBurst(10_000);
    expect(r.registered).toBe(10_000);
    expect(r.acksSent).toBe(10_000);
    expect(r.cacheBytes).toBeLessThan(2 * 2 ** 20); // ~129 bytes per binding
    expect(r.haBytes).toBeLessThan(25 * 2 ** 20); // 100k in < 256 MB, with room
  });

  it('10k nodes starting at once through a bounded queue all get registered (retries with full jitter)', () => {
    const r = reconnectStorm(10_000, { queue: 1024 });
    expect(r.registered).toBe(10_000);
    expect(r.updatesLost).toBeGreaterThan(0); // the queue did overflow: the retries did the work
    expect(r.allRegisteredMs).toBeLessThan(Infinity);
  });
});
