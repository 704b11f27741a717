import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AddressTable } from '../../src/mobility/address-table.ts';
import { BindingCache, CareOfChange } from '../../src/mobility/binding-cache.ts';
import { ExpiryHeap } from '../../src/mobility/expiry-heap.ts';
import { TokenBuckets } from '../../src/mobility/rate-limit.ts';
import { ReplayVerdict, ReplayWindow } from '../../src/tunnel/replay.ts';
import { SeededRandom } from '../../src/mobility/clock.ts';
import { ControlCounter } from '../../src/tunnel/control.ts';
import { FakeClock, v4 } from './harness.ts';

describe('AddressTable', () => {
  it('maps IPv4 and IPv6 addresses to values, by bytes at an offset and by number', () => {
    const t = new AddressTable(4);
    const six = Uint8Array.from(Buffer.from('fd770000000000000000000000000005', 'hex'));
    t.set(4, v4('10.77.0.5'), 0, 7);
    t.set(6, six, 0, 9);
    const pkt = Buffer.concat([Buffer.alloc(16), Buffer.from(v4('10.77.0.5'))]);
    expect(t.get(4, pkt, 16)).toBe(7);
    expect(t.getV4(0x0a4d0005)).toBe(7);
    expect(t.get(6, six, 0)).toBe(9);
    // an IPv4 address and an IPv6 one starting with the same 4 bytes are different keys
    expect(t.get(6, Uint8Array.from([10, 77, 0, 5, ...Array(12).fill(0)]), 0)).toBe(-1);
    expect(t.getV4(0x0a4d0006)).toBe(-1);
    t.set(4, v4('10.77.0.5'), 0, 8);
    expect(t.size).toBe(2);
    expect(t.getV4(0x0a4d0005)).toBe(8);
  });

  it('agrees with a Map under random inserts and deletes (growth and backward-shift deletion)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 300 }), fc.boolean()), { maxLength: 600 }), (ops) => {
        const t = new AddressTable(2);
        const ref = new Map<string, number>();
        const addr = (n: number, six: boolean) => {
          const b = new Uint8Array(six ? 16 : 4);
          b[0] = 10;
          b[b.length - 1] = n & 0xff;
          b[b.length - 2] = n >> 8;
          return b;
        };
        ops.forEach(([del, n, six], i) => {
          const a = addr(n, six);
          const k = `${six}${n}`;
          if (del) {
            expect(t.delete(six ? 6 : 4, a, 0)).toBe(ref.get(k) ?? -1);
            ref.delete(k);
          } else {
            t.set(six ? 6 : 4, a, 0, i);
            ref.set(k, i);
          }
        });
        expect(t.size).toBe(ref.size);
        for (let n = 0; n <= 300; n++) {
          for (const six of [false, true]) expect(t.get(six ? 6 : 4, addr(n, six), 0)).toBe(ref.get(`${six}${n}`) ?? -1);
        }
      }),
      { numRuns: 60 },
    );
  });
});

describe('ExpiryHeap', () => {
  it('pops in time order under moves and removals', () => {
    const h = new ExpiryHeap(64);
    const rnd = new SeededRandom(3);
    const keys = new Map<number, number>();
    for (let i = 0; i < 500; i++) {
      const slot = Math.floor(rnd.next() * 64);
      if (rnd.next() < 0.2) {
        h.remove(slot);
        keys.delete(slot);
      } else {
        const t = Math.floor(rnd.next() * 1000);
        h.set(slot, t);
        keys.set(slot, t);
      }
    }
    const order: number[] = [];
    while (h.size > 0) {
      const s = h.peek();
      order.push(h.peekTime());
      expect(keys.get(s)).toBe(h.peekTime());
      h.remove(s);
    }
    expect(order).toEqual([...keys.values()].sort((a, b) => a - b));
    expect(h.peekTime()).toBe(Infinity);
  });
});

describe('BindingCache', () => {
  const A = v4('192.0.2.10');
  const B = v4('198.51.100.20');

  it('is capped: create() returns -1 when full and a freed slot is reused', () => {
    const c = new BindingCache(2, 5);
    expect(c.create(0, 0)).toBeGreaterThanOrEqual(0);
    expect(c.create(1, 0)).toBeGreaterThanOrEqual(0);
    expect(c.full).toBe(true);
    expect(c.create(2, 0)).toBe(-1);
    const s = c.slotOf(0);
    c.remove(s);
    expect(c.slotOf(0)).toBe(-1);
    expect(c.create(2, 0)).toBe(s);
    expect(c.size).toBe(2);
  });

  it('reports first / same / moved care-of, keeps the previous one for bicasting, orders expiry', () => {
    const c = new BindingCache(4, 4);
    const s0 = c.create(0, 1000);
    const s1 = c.create(1, 1000);
    expect(c.update(s0, 1000, 4, A, 0, 40000, 4, A, 0, 40000, 1, 60, 1, 200)).toBe(CareOfChange.First);
    expect(c.update(s1, 1000, 4, B, 0, 5000, 4, A, 0, 5000, 1, 30, 1, 200)).toBe(CareOfChange.First);
    expect(c.nat[s1]).toBe(1); // claimed A, observed B
    expect(c.update(s0, 2000, 4, A, 0, 40000, 0, A, 0, 0, 2, 60, 1, 200)).toBe(CareOfChange.Same);
    expect(c.update(s0, 3000, 4, A, 0, 40001, 0, A, 0, 0, 3, 60, 1, 200)).toBe(CareOfChange.Moved); // port change is a move
    expect(c.bicasting(s0, 3199)).toBe(true);
    expect(c.bicasting(s0, 3200)).toBe(false);
    expect(c.row(s0, 3000).bicastTo).toEqual({ family: 4, bytes: Uint8Array.from(A), port: 40000 });
    expect(c.nextExpiry()).toBe(31_000); // s1: 1000 + 30 s
    expect(c.expired(30_999)).toBe(-1);
    expect(c.expired(31_000)).toBe(s1);
    c.remove(s1);
    expect(c.nextExpiry()).toBe(63_000);
  });

  it('holds 100k bindings in well under 256 MB of typed arrays (fixed at construction)', () => {
    const c = new BindingCache(100_000, 100_000);
    expect(c.byteSize).toBeLessThan(20 * 2 ** 20);
  });
});

describe('replay counters', () => {
  it('ControlCounter (the one counter of keepalives and mobility messages) follows the clock in microseconds and never repeats', () => {
    const clock = new FakeClock(1000);
    const m = new ControlCounter(clock);
    expect(m.next()).toBe(1_000_000);
    expect(m.next()).toBe(1_000_001);
    clock.advance(1);
    expect(m.next()).toBe(1_001_000);
    clock.t = 500; // clock stepped back: still increasing
    expect(m.next()).toBe(1_001_001);
  });

  it('ReplayWindow with a freshness window: fresh, duplicate, old, stale, and it survives a sender restart', () => {
    const w = new ReplayWindow(2, 60_000);
    const now = 1_000_000;
    expect(w.checkCounter(0, now * 1000, now)).toBe(ReplayVerdict.Fresh);
    w.acceptCounter(0, now * 1000);
    expect(w.checkCounter(0, now * 1000, now)).toBe(ReplayVerdict.Duplicate);
    expect(w.checkCounter(0, now * 1000 - 1, now)).toBe(ReplayVerdict.Old);
    expect(w.checkCounter(1, (now - 60_001) * 1000, now)).toBe(ReplayVerdict.Stale);
    expect(w.checkCounter(1, (now + 60_001) * 1000, now)).toBe(ReplayVerdict.Stale);
    expect(w.checkCounter(1, (now - 59_000) * 1000, now)).toBe(ReplayVerdict.Fresh);
    // the sender restarts a second later: its clock-based counter is ahead
    expect(w.checkCounter(0, (now + 1000) * 1000, now + 1000)).toBe(ReplayVerdict.Fresh);
    expect(new ReplayWindow(1, 0).checkCounter(0, 1, now)).toBe(ReplayVerdict.Fresh); // no window
  });

  it('TokenBuckets refill at the rate up to the burst', () => {
    const b = new TokenBuckets(2, 10, 2);
    expect([b.take(0, 0), b.take(0, 0), b.take(0, 0)]).toEqual([true, true, false]);
    expect(b.take(1, 0)).toBe(true);
    expect(b.take(0, 99)).toBe(false);
    expect(b.take(0, 100)).toBe(true);
    expect(b.take(0, 10_000)).toBe(true);
    expect(b.take(0, 10_000)).toBe(true);
    expect(b.take(0, 10_000)).toBe(false);
    expect(new TokenBuckets(1, 0, 1).take(0, 0)).toBe(true);
  });
});
