import { describe, expect, it } from 'vitest';
import { BUCKET_LAYOUT, Poptrie } from '../../src/route/lpm/poptrie.ts';
import * as bucket from '../../src/route/lpm/v6-bucket.ts';
import type { Prefix } from '../../src/wire/address-text.ts';
import { cover, keyOf, maskBytes, refLookup, rng, words } from './helpers.ts';

/** A trie with /32 buckets, the prefixes present, and lookups checked three ways against brute force. */
function harness() {
  const t = new Poptrie(128, 18, true);
  const present = new Map<string, { p: Prefix; v: number }>();
  const add = (bytes: Uint8Array, len: number, v: number) => {
    const p: Prefix = { family: 6, bytes: maskBytes(bytes, len), length: len };
    t.insert(words(p.bytes), len, v);
    present.set(keyOf(p), { p, v });
  };
  const del = (bytes: Uint8Array, len: number) => {
    const p: Prefix = { family: 6, bytes: maskBytes(bytes, len), length: len };
    if (!present.delete(keyOf(p))) throw new Error(`not present: ${keyOf(p)}`);
    const [cl, cv] = cover(present, p);
    t.remove(words(p.bytes), len, cl, cv);
  };
  /** Single, batch (at odd offsets of one slab) and brute force agree; returns the answers. */
  const look = (...addrs: Uint8Array[]): number[] => {
    const slab = new Uint8Array(addrs.length * 19 + 3);
    const offs = Int32Array.from(addrs, (_, k) => 3 + k * 19);
    addrs.forEach((a, k) => slab.set(a, offs[k]!));
    const out = new Int32Array(addrs.length);
    t.lookupMany(slab, offs, addrs.length, out);
    return addrs.map((a, k) => {
      const want = refLookup(present, a);
      const single = t.lookupBytes(slab, offs[k]!);
      if (single !== want || out[k] !== want) throw new Error(`${Buffer.from(a).toString('hex')}: single ${single} batch ${out[k]} want ${want}`);
      return want;
    });
  };
  return { t, present, add, del, look };
}

const addr = (hex: string) => Uint8Array.from(Buffer.from(hex.padEnd(32, '0'), 'hex'));
const w0 = (hex: string) => words(addr(hex))[0]!;

describe('IPv6 /32 buckets', () => {
  it('poptrie.ts copies the layout constants of v6-bucket.ts', () => {
    const { BK_SHIFT, BK_MARK, BK_SCAN_MAX, BK_COUNT, BK_OFFSET, BK_HASH, BK_CNT, BK_BASE, BK_ENTRIES } = bucket;
    expect(BUCKET_LAYOUT).toEqual({ BK_SHIFT, BK_MARK, BK_SCAN_MAX, BK_COUNT, BK_OFFSET, BK_HASH, BK_CNT, BK_BASE, BK_ENTRIES });
  });

  it('prefixes longer than /64 leave a marker on their /64 while any of them is left (children and /65-/66 leaves)', () => {
    const h = harness();
    const net = '20010db8aaaa';
    h.add(addr(net), 48, 1);
    h.add(addr(`${net}00010000`), 64, 2);
    const hostA = addr(`${net}0001000000000000000a`);
    const hostB = addr(`${net}0001000000000000000b`);
    const other = addr(`${net}00010000ffff`);
    h.add(hostA, 128, 3);
    h.add(hostB, 128, 4);
    expect(h.look(hostA, hostB, other)).toEqual([3, 4, 2]);
    expect(h.t.bucketRows(w0(net))!.filter((r) => r[0] === 65)).toHaveLength(1);
    h.del(hostA, 128);
    expect(h.look(hostA, hostB, other)).toEqual([2, 4, 2]);
    expect(h.t.bucketRows(w0(net))!.filter((r) => r[0] === 65)).toHaveLength(1);
    h.del(hostB, 128);
    expect(h.look(hostA, hostB, other)).toEqual([2, 2, 2]);
    expect(h.t.bucketRows(w0(net))!.map((r) => r[0])).toEqual([0, 64, 48]);
    // /65 and /66 end in the node covering bits 60-65: leaves of longer prefixes, not children
    const half = addr(`${net}00018`);
    h.add(half, 65, 5);
    expect(h.look(half, other)).toEqual([5, 2]);
    h.add(half, 66, 6);
    h.del(half, 65);
    expect(h.t.bucketRows(w0(net))!.filter((r) => r[0] === 65)).toHaveLength(1);
    expect(h.look(half, other)).toEqual([6, 2]);
    h.del(half, 66);
    expect(h.t.bucketRows(w0(net))!.filter((r) => r[0] === 65)).toHaveLength(0);
    expect(h.look(half, other)).toEqual([2, 2]);
    // a host route replaced (same prefix again, new value) and then removed once
    h.add(hostA, 128, 7);
    h.add(hostA, 128, 8);
    expect(h.look(hostA)).toEqual([8]);
    h.del(hostA, 128);
    expect(h.t.bucketRows(w0(net))!.filter((r) => r[0] === 65)).toHaveLength(0);
    expect(h.look(hostA)).toEqual([2]);
  });

  it('the base: the /32 itself, or the longest shorter prefix, also when longer prefixes cover the whole /32 for a while', () => {
    const h = harness();
    const net = '2a001450';
    const lo = addr(`${net}1234`);
    const hi = addr(`${net}8234`);
    h.add(addr(net), 33, 1); // the lower half
    h.add(addr(`${net}8000`), 33, 2); // the upper half: no address of the /32 reaches the base
    expect(h.look(lo, hi)).toEqual([1, 2]);
    h.add(addr('2a001450'), 28, 3);
    h.add(addr('2a001450'), 29, 4);
    expect(h.look(lo, hi)).toEqual([1, 2]);
    h.del(addr(`${net}8000`), 33);
    expect(h.look(lo, hi)).toEqual([1, 4]);
    h.add(addr(net), 32, 5);
    expect(h.look(lo, hi)).toEqual([1, 5]);
    expect(h.t.bucketRows(w0(net))![0]).toEqual([32, 0, 5]);
    h.del(addr(net), 32);
    expect(h.look(lo, hi)).toEqual([1, 4]);
    h.del(addr('2a001450'), 29);
    expect(h.look(lo, hi)).toEqual([1, 3]);
    h.del(addr('2a001450'), 28);
    expect(h.look(lo, hi)).toEqual([1, -1]);
    h.add(addr(''), 0, 6); // a default route: every bucket's base (the index is scanned)
    expect(h.look(lo, hi, addr('3fff'))).toEqual([1, 6, 6]);
    h.add(addr('2a00'), 16, 7);
    expect(h.look(lo, hi, addr('3fff'))).toEqual([1, 7, 6]);
    h.del(addr(''), 0);
    expect(h.look(lo, hi, addr('3fff'))).toEqual([1, 7, -1]);
    h.del(addr(net), 33);
    expect(h.t.bucketStats()!.buckets).toBe(0);
    expect(h.look(lo, hi)).toEqual([7, 7]);
  });

  it('a /32 with more prefixes than a lookup scans answers through the trie, and again from the bucket when it shrinks', () => {
    const h = harness();
    const net = '2a0b0c0d';
    const rand = rng(5);
    const inside: Uint8Array[] = [];
    for (let i = 0; i < 60; i++) {
      const a = addr(`${net}${(i * 997).toString(16).padStart(4, '0')}`);
      a[6] = Math.floor(rand() * 256);
      a[15] = 1;
      inside.push(a);
      h.add(a, i % 3 === 0 ? 56 : 48, i);
    }
    expect(h.t.bucketRows(w0(net))!.length - 1).toBeGreaterThan(bucket.BK_SCAN_MAX);
    h.look(...inside);
    for (let i = 0; i < 60; i += 2) {
      h.del(inside[i]!, i % 3 === 0 ? 56 : 48);
      h.look(...inside);
    }
    expect(h.t.bucketRows(w0(net))!.length - 1).toBeLessThanOrEqual(bucket.BK_SCAN_MAX);
  });

  it('a /32 with more prefixes than a block holds overflows: lookups under it walk the trie from then on', () => {
    const h = harness();
    const net = '2a0e0f00';
    const ps: Uint8Array[] = [];
    for (let i = 0; i < 4200; i++) {
      const a = addr(`${net}${i.toString(16).padStart(4, '0')}`);
      ps.push(a);
      h.add(a, 48, i);
    }
    expect(h.t.bucketStats()!.overflowed).toBe(1);
    const rand = rng(3);
    const probe = () => h.look(...Array.from({ length: 30 }, () => ps[Math.floor(rand() * ps.length)]!), addr(`${net}ffff`));
    probe();
    h.add(addr(net), 32, 9999);
    h.add(addr(`${net}00010002`), 64, 9998);
    probe();
    h.look(addr(`${net}00010002`), addr(`${net}00010003`));
    for (let i = 0; i < ps.length; i += 3) h.del(ps[i]!, 48);
    probe();
    h.del(addr(net), 32);
    probe();
  });

  it('thousands of /32s: the index and filter grow and shrink, buckets go away with their last prefix', () => {
    const rand = rng(77);
    const h = harness();
    const nets = Array.from({ length: 3000 }, (_, i) => {
      const a = new Uint8Array(16);
      a[0] = 0x2a;
      a[1] = i & 31;
      a[2] = Math.floor(rand() * 256);
      a[3] = Math.floor(rand() * 256);
      return a;
    });
    const lens = [32, 36, 40, 44, 48, 48, 48, 56, 64, 128];
    const added: [Uint8Array, number][] = [];
    const seen = new Set<string>();
    for (let i = 0; i < 6000; i++) {
      const a = nets[Math.floor(rand() * nets.length)]!.slice();
      for (let j = 4; j < 16; j++) a[j] = Math.floor(rand() * 256);
      const len = lens[Math.floor(rand() * lens.length)]!;
      const k = `${len}/${Buffer.from(maskBytes(a, len)).toString('hex')}`;
      if (seen.has(k)) continue;
      seen.add(k);
      h.add(a, len, i);
      added.push([a, len]);
    }
    const probe = () => {
      const addrs = Array.from({ length: 60 }, () => {
        const [a] = added[Math.floor(rand() * added.length)]!;
        const b = a.slice();
        for (let j = 6 + Math.floor(rand() * 10); j < 16; j++) b[j] = Math.floor(rand() * 256);
        return b;
      });
      h.look(...addrs);
    };
    probe();
    const peak = h.t.bucketStats()!;
    expect(peak.buckets).toBeGreaterThan(2000);
    for (let i = added.length - 1; i >= 0; i--) {
      h.del(added[i]![0], added[i]![1]);
      if (i % 500 === 0) probe();
    }
    const end = h.t.bucketStats()!;
    expect(end.buckets).toBe(0);
    expect(end.slots).toBeLessThan(peak.slots);
    // the structures shrank back (the filter was rebuilt with few or no buckets: a few KB)
    expect(h.t.byteSize()).toBeLessThan(4 << 20);
    expect(h.t.nodeCounts()[1]).toBe(0);
  });

  it('one /48 flapping in an otherwise empty table: the filter rebuilt with no bucket stays small', () => {
    const h = harness();
    const p = addr('2001db80001');
    // (the filter is rebuilt every 257 removals here: the last one with no bucket left)
    for (let i = 0; i < 514; i++) {
      h.add(p, 48, i);
      h.del(p, 48);
    }
    expect(h.t.bucketStats()!.buckets).toBe(0);
    expect(h.t.byteSize()).toBeLessThan(4 << 20);
    h.add(p, 48, 1);
    expect(h.look(p, addr('2001db80002'))).toEqual([1, -1]);
  });

  it('random churn with every prefix length against brute force', () => {
    for (let seed = 1; seed <= 3; seed++) {
      const rand = rng(seed * 7919);
      const h = harness();
      const bases = Array.from({ length: 4 }, () => Uint8Array.from({ length: 16 }, () => Math.floor(rand() * 256)));
      const gen = () => {
        const a = bases[Math.floor(rand() * bases.length)]!.slice();
        // few distinct /32s and /64s (buckets, markers and covers collide), random rest
        a[3] = Math.floor(rand() * 3);
        a[7] = Math.floor(rand() * 3);
        for (let j = 8; j < 16; j++) if (rand() < 0.3) a[j] = Math.floor(rand() * 256);
        return a;
      };
      for (let step = 0; step < 1500; step++) {
        const r = rand();
        if (r < 0.5 || h.present.size === 0) {
          const len = Math.floor(rand() * 129);
          h.add(gen(), len, step);
        } else if (r < 0.8) {
          const all = [...h.present.values()];
          const { p } = all[Math.floor(rand() * all.length)]!;
          h.del(p.bytes, p.length);
        } else h.look(...Array.from({ length: 20 }, gen));
      }
    }
  });
});
