import { describe, expect, it } from 'vitest';
import { BufferPool, PacketPools } from '../../src/base/pool.ts';

describe('BufferPool', () => {
  it('hands out slots with headroom and counts live slots back to zero', () => {
    const pool = new BufferPool({ slotSize: 256, slots: 4, headroom: 32 });
    const a = pool.acquire()!;
    const b = pool.acquire()!;
    expect(pool.live).toBe(2);
    expect(a.offset).toBe(32);
    expect(a.fill(Buffer.from([1, 2, 3]))).toBe(true);
    expect(a.prepend(8)).toBe(true);
    expect(a.offset).toBe(24);
    expect(a.length).toBe(11);
    expect(a.bytes().subarray(8)).toEqual(Buffer.from([1, 2, 3]));
    expect(a.prepend(100)).toBe(false);
    a.release();
    b.release();
    expect(pool.live).toBe(0);
  });

  it('returns null when exhausted and counts bad releases instead of throwing', () => {
    const pool = new BufferPool({ slotSize: 128, slots: 2, headroom: 16 });
    const a = pool.acquire()!;
    pool.acquire();
    expect(pool.acquire()).toBeNull();
    expect(pool.exhausted).toBe(1);
    a.release();
    a.release();
    expect(pool.badReleases).toBe(1);
    expect(pool.live).toBe(1);
  });

  it('slots do not overlap and are reused in LIFO order', () => {
    const pool = new BufferPool({ slotSize: 64, slots: 3, headroom: 8 });
    const ps = [pool.acquire()!, pool.acquire()!, pool.acquire()!];
    ps.forEach((p, i) => p.buf.fill(i + 1));
    ps.forEach((p, i) => expect(p.buf.every((x) => x === i + 1)).toBe(true));
    ps[1]!.release();
    expect(pool.acquire()!.slot).toBe(ps[1]!.slot);
  });

  it('PacketPools picks the size class', () => {
    const pools = new PacketPools({ small: { slots: 2 }, large: { slots: 1 } });
    const s = pools.acquire(1500)!;
    const l = pools.acquire(65535)!;
    expect(s.pool).toBe(pools.small);
    expect(l.pool).toBe(pools.large);
    expect(pools.acquire(70000)).toBeNull();
    s.release();
    l.release();
    expect(pools.live).toBe(0);
  });
});
