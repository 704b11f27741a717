import { describe, expect, it } from 'vitest';
import { MemoryDevice } from '../../src/device/memory-device.ts';
import type { PacketBuffer } from '../../src/base/pool.ts';
import { BufferPool } from '../../src/base/pool.ts';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A minimal IPv4 header-only packet of `len` bytes with a marker in the identification field. */
function v4(len: number, id: number): Uint8Array {
  const b = new Uint8Array(len);
  b[0] = 0x45;
  b[2] = len >> 8;
  b[3] = len & 0xff;
  b[4] = id >> 8;
  b[5] = id & 0xff;
  return b;
}

function collect(dev: MemoryDevice): { ids: number[]; batches: number[] } {
  const out = { ids: [] as number[], batches: [] as number[] };
  dev.start((batch: PacketBuffer[], count: number) => {
    out.batches.push(count);
    for (let i = 0; i < count; i++) {
      const p = batch[i]!;
      out.ids.push((p.buf[p.offset + 4]! << 8) | p.buf[p.offset + 5]!);
      p.release();
    }
  });
  return out;
}

describe('MemoryDevice', () => {
  it('delivers injected packets asynchronously, in order, in batches, into pool slots', async () => {
    const pool = new BufferPool({ slots: 64 });
    const dev = new MemoryDevice({ pool, batchSize: 4 });
    const got = collect(dev);
    for (let i = 0; i < 10; i++) expect(dev.inject(v4(20 + i, i))).toBe(true);
    expect(got.ids).toEqual([]); // never synchronous
    expect(pool.live).toBe(10);
    await tick();
    expect(got.ids).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(got.batches).toEqual([4, 4, 2]);
    expect(dev.stats.rxPackets).toBe(10);
    expect(dev.stats.rxBatches).toBe(3);
    expect(dev.stats.rxBytes).toBe(10 * 20 + 45);
    expect(pool.live).toBe(0);
  });

  it('packet bytes and headroom match what was injected', async () => {
    const pool = new BufferPool({ slots: 8, headroom: 64 });
    const dev = new MemoryDevice({ pool });
    const pkt = v4(60, 7);
    pkt[59] = 0xab;
    let seen: Buffer | null = null;
    let headroom = -1;
    dev.start((batch, count) => {
      for (let i = 0; i < count; i++) {
        seen = Buffer.from(batch[i]!.bytes());
        headroom = batch[i]!.headroom;
        batch[i]!.release();
      }
    });
    dev.inject(new Uint8Array([9, 9, ...pkt, 9]), 2, 60);
    await tick();
    expect(seen).toEqual(Buffer.from(pkt));
    expect(headroom).toBe(64);
  });

  it('queues before start() and delivers on start', async () => {
    const dev = new MemoryDevice();
    dev.inject(v4(20, 1));
    dev.inject(v4(20, 2));
    await tick();
    expect(dev.pending).toBe(2);
    const got = collect(dev);
    await tick();
    expect(got.ids).toEqual([1, 2]);
  });

  it('flush() delivers synchronously', () => {
    const dev = new MemoryDevice();
    const got = collect(dev);
    dev.inject(v4(20, 5));
    dev.flush();
    expect(got.ids).toEqual([5]);
  });

  it('counts drops: pool exhausted, queue full, too big for the MTU', async () => {
    const pool = new BufferPool({ slots: 2 });
    const dev = new MemoryDevice({ pool, mtu: 100 });
    expect(dev.inject(v4(20, 1))).toBe(true);
    expect(dev.inject(v4(20, 2))).toBe(true);
    expect(dev.inject(v4(20, 3))).toBe(false);
    expect(dev.stats.rxDropsPoolExhausted).toBe(1);
    expect(dev.inject(v4(101, 4))).toBe(false);
    expect(dev.stats.rxDropsOther).toBe(1);

    const small = new MemoryDevice({ queueLimit: 1 });
    expect(small.inject(v4(20, 1))).toBe(true);
    expect(small.inject(v4(20, 2))).toBe(false);
    expect(small.stats.rxDropsOther).toBe(1);
    await small.close();
    await dev.close();
    expect(pool.live).toBe(0);
  });

  it('write() keeps copies for takeWritten(), bounded, and does not take ownership', () => {
    const pool = new BufferPool({ slots: 4 });
    const dev = new MemoryDevice({ pool, writtenLimit: 2 });
    const p = pool.acquire()!;
    p.fill(v4(20, 1));
    expect(dev.write(p)).toBe(true);
    p.buf[p.offset + 5] = 2;
    expect(dev.write(p)).toBe(true);
    p.buf[p.offset + 5] = 3;
    expect(dev.write(p)).toBe(true);
    expect(pool.live).toBe(1); // still ours
    p.release();
    const w = dev.takeWritten();
    expect(w.map((b) => b[5])).toEqual([2, 3]);
    expect(dev.writtenDropped).toBe(1);
    expect(dev.takeWritten()).toEqual([]);
    expect(dev.stats.txPackets).toBe(3);
    expect(dev.stats.txBytes).toBe(60);
  });

  it('write() rejects what the kernel TUN rejects (EINVAL), counts, never throws', async () => {
    const dev = new MemoryDevice();
    expect(dev.writeBytes(new Uint8Array([0x00, 1, 2, 3]), 0, 4)).toBe(false);
    expect(dev.lastTxError).toBe('EINVAL');
    expect(dev.writeBytes(new Uint8Array(0), 0, 0)).toBe(false);
    expect(dev.writeBytes(new Uint8Array(4), 2, 10)).toBe(false);
    expect(dev.writeBytes(Uint8Array.of(0x60, 0, 0, 0), 0, 4)).toBe(true);
    expect(dev.stats.txErrors).toBe(3);
    await dev.close();
    expect(dev.writeBytes(Uint8Array.of(0x45), 0, 1)).toBe(false);
    expect(dev.lastTxError).toBe('EBADF');
    expect(dev.stats.txErrors).toBe(4);
  });

  it('pair(): what one writes the other receives, both ways, each in its own pool', async () => {
    const poolA = new BufferPool({ slots: 16 });
    const poolB = new BufferPool({ slots: 16 });
    const [a, b] = MemoryDevice.pair({ pool: poolA }, { pool: poolB });
    const gotA = collect(a);
    const gotB = collect(b);
    const p = poolA.acquire()!;
    p.fill(v4(40, 11));
    a.write(p);
    p.release();
    b.writeBytes(v4(20, 22), 0, 20);
    await tick();
    expect(gotB.ids).toEqual([11]);
    expect(gotA.ids).toEqual([22]);
    expect(poolA.live + poolB.live).toBe(0);
  });

  it('setSink() hands written bytes to a function (a userspace host stack)', () => {
    const dev = new MemoryDevice();
    const seen: number[] = [];
    dev.setSink((buf, off, len) => seen.push(len, buf[off]!));
    dev.writeBytes(v4(28, 0), 0, 28);
    expect(seen).toEqual([28, 0x45]);
    expect(dev.takeWritten()).toEqual([]);
  });

  it('a handler that re-injects does not starve the event loop', async () => {
    const dev = new MemoryDevice();
    let rounds = 0;
    dev.start((batch, count) => {
      for (let i = 0; i < count; i++) {
        const p = batch[i]!;
        if (rounds++ < 1000) dev.inject(p.buf, p.offset, p.length);
        p.release();
      }
    });
    dev.inject(v4(20, 1));
    dev.flush();
    expect(rounds).toBe(1);
    let timerRan = false;
    setTimeout(() => (timerRan = true), 0);
    while (rounds < 1001) await tick();
    expect(timerRan).toBe(true);
    expect(dev.pool.live).toBe(0);
  });

  it('close() releases undelivered packets and stops delivery', async () => {
    const pool = new BufferPool({ slots: 8 });
    const dev = new MemoryDevice({ pool });
    const got = collect(dev);
    dev.inject(v4(20, 1));
    dev.inject(v4(20, 2));
    await dev.close();
    expect(pool.live).toBe(0);
    await tick();
    expect(got.ids).toEqual([]);
    expect(dev.inject(v4(20, 3))).toBe(false);
  });
});
