/**
 * CI fuzz: one million random and mutated packets through IPv4/IPv6 check + parse + chain walk +
 * upper-layer views + reassembly (+ fragmentation of what parses). Zero exceptions, and every
 * pool slot back at the end. About 20 s on a 2-core machine; `npm run fuzz` runs more/other seeds.
 * Then 150,000 more in bounds-checked mode (a read outside a packet throws: see
 * test/support/checked-bytes.ts; test/fuzz/mutations.test.ts shows it catches deleted checks).
 */
import { describe, expect, it } from 'vitest';
import { runFuzz } from './fuzz.ts';

describe('packet fuzz', () => {
  it('1,000,000 random and mutated packets: no exception escapes, pools back to zero', () => {
    const r = runFuzz({ packets: 1_000_000, seed: 0x1f2e3d });
    if (r.exceptions > 0) console.error(r.samples);
    expect(r.samples).toEqual([]);
    expect(r.exceptions).toBe(0);
    expect(r.packets).toBe(1_000_000);
    expect(r.liveAfter).toBe(0);
    // The run did reach the interesting paths.
    expect(r.completed).toBeGreaterThan(100);
    expect(r.fragmentsMade).toBeGreaterThan(1000);
    expect(r.drops.FragmentOverlap ?? 0).toBeGreaterThan(0);
    expect(r.drops.FragmentTimeout ?? 0).toBeGreaterThan(0);
    expect(r.timeExceeded).toBeGreaterThan(0);
  }, 180_000);

  it('150,000 packets bounds-checked: no read or write outside a packet, pools back to zero', () => {
    const r = runFuzz({ packets: 150_000, seed: 0x5eed01, checked: true });
    if (r.exceptions > 0) console.error(r.samples);
    expect(r.samples).toEqual([]);
    expect(r.exceptions).toBe(0);
    expect(r.packets).toBe(150_000);
    expect(r.liveAfter).toBe(0);
    expect(r.completed).toBeGreaterThan(10);
    expect(r.timeExceeded).toBeGreaterThan(0);
  }, 180_000);
});
