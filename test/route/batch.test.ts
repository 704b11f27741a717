import { describe, expect, it } from 'vitest';
import { Poptrie } from '../../src/route/lpm/poptrie.ts';
import { Router } from '../../src/route/router.ts';
import type { Nexthop } from '../../src/route/types.ts';
import type { Family, Prefix } from '../../src/wire/address-text.ts';
import { addressGen, cover, ipv4Packet, ipv6Packet, keyOf, maskBytes, matches, randomPrefix, refLookup, rng, words } from './helpers.ts';


/** Addresses at scattered offsets of one slab (as pool slots are), lookups in one batch call. */
function batchSlab(addrs: Uint8Array[], w: number, rand: () => number): { slab: Uint8Array; offs: Int32Array } {
  const slab = new Uint8Array(addrs.length * (w + 40) + 64);
  const offs = new Int32Array(addrs.length);
  const order = addrs.map((_, i) => i).sort(() => rand() - 0.5);
  order.forEach((i, slot) => {
    offs[i] = slot * (w + 40) + 1 + Math.floor(rand() * 30);
    slab.set(addrs[i]!, offs[i]!);
  });
  return { slab, offs };
}

describe('Poptrie IPv6 fast paths (/48 hash; /32 buckets) against brute force', () => {
  /** Prefix lengths around /48 (and all others now and then), under a few /32 allocations. */
  function gen48(rand: () => number, bases: Uint8Array[]): () => Uint8Array {
    return () => {
      const a = bases[Math.floor(rand() * bases.length)]!.slice();
      // /48s from a small set below each base (so /48s repeat, nest and collide), random rest
      a[4] = Math.floor(rand() * 4);
      a[5] = Math.floor(rand() * 24);
      for (let i = 6; i < 16; i++) a[i] = rand() < 0.5 ? 0 : Math.floor(rand() * 256);
      return a;
    };
  }
  const LENS = [0, 16, 29, 32, 36, 40, 44, 46, 47, 48, 48, 48, 48, 48, 49, 52, 56, 64, 96, 127, 128];

  it('random /29-/128 around /48s: interleaved add/replace/remove, single and batch lookups (/48 hash, buckets, plain)', () => {
    for (let seed = 1; seed <= 4; seed++) {
      const rand = rng(seed * 31337);
      const bases = Array.from({ length: 3 }, () => {
        const b = new Uint8Array(16);
        b[0] = 0x20;
        b[1] = 1 + Math.floor(rand() * 200);
        b[2] = Math.floor(rand() * 256);
        b[3] = Math.floor(rand() * 256);
        return b;
      });
      const gen = gen48(rand, bases);
      const fast = new Poptrie(128, 18, true, false);
      const bk = new Poptrie(128, 18, true, true);
      const plain = new Poptrie(128, 18);
      const present = new Map<string, { p: Prefix; v: number }>();
      let next = 0;
      for (let step = 0; step < 1500; step++) {
        const r = rand();
        if (r < 0.45 || present.size === 0) {
          const len = rand() < 0.1 ? Math.floor(rand() * 129) : LENS[Math.floor(rand() * LENS.length)]!;
          const p: Prefix = { family: 6, bytes: maskBytes(gen(), len), length: len };
          const v = next++;
          fast.insert(words(p.bytes), len, v);
          bk.insert(words(p.bytes), len, v);
          plain.insert(words(p.bytes), len, v);
          present.set(keyOf(p), { p, v });
        } else if (r < 0.75) {
          const all = [...present.values()];
          const { p } = all[Math.floor(rand() * all.length)]!;
          present.delete(keyOf(p));
          const [cl, cv] = cover(present, p);
          fast.remove(words(p.bytes), p.length, cl, cv);
          bk.remove(words(p.bytes), p.length, cl, cv);
          plain.remove(words(p.bytes), p.length, cl, cv);
        } else {
          const addrs = Array.from({ length: 1 + Math.floor(rand() * 90) }, gen);
          const { slab, offs } = batchSlab(addrs, 16, rand);
          const out = new Int32Array(addrs.length);
          fast.lookupMany(slab, offs, addrs.length, out);
          const outPlain = new Int32Array(addrs.length);
          plain.lookupMany(slab, offs, addrs.length, outPlain);
          const outBk = new Int32Array(addrs.length);
          bk.lookupMany(slab, offs, addrs.length, outBk);
          addrs.forEach((a, k) => {
            const want = refLookup(present, a);
            const single = fast.lookupBytes(slab, offs[k]!);
            const singleBk = bk.lookupBytes(slab, offs[k]!);
            if (out[k] !== want || single !== want || outPlain[k] !== want || outBk[k] !== want || singleBk !== want) {
              throw new Error(
                `seed ${seed} step ${step}: ${Buffer.from(a).toString('hex')} batch ${out[k]} single ${single} plain ${outPlain[k]} buckets ${outBk[k]}/${singleBk} want ${want}`,
              );
            }
          });
        }
      }
      for (const { p } of [...present.values()].sort(() => rand() - 0.5)) {
        present.delete(keyOf(p));
        const [cl, cv] = cover(present, p);
        fast.remove(words(p.bytes), p.length, cl, cv);
        bk.remove(words(p.bytes), p.length, cl, cv);
      }
      expect(fast.nodeCounts()[1]).toBe(0);
      expect(fast.lookupBytes(gen(), 0)).toBe(-1);
      expect(bk.nodeCounts()[1]).toBe(0);
      expect(bk.bucketStats()!.buckets).toBe(0);
      expect(bk.lookupBytes(gen(), 0)).toBe(-1);
    }
  });

  for (const buckets of [false, true])
  it(`longer prefixes appearing and disappearing under a /48, the /48 removed and re-added (${buckets ? 'buckets' : '/48 hash'})`, () => {
    const t = new Poptrie(128, 18, true, buckets);
    const p48 = Uint8Array.from([0x20, 0x01, 0x0d, 0xb8, 0x12, 0x34, ...new Array(10).fill(0)]);
    const inside = p48.slice();
    inside[6] = 0xab;
    inside[15] = 1;
    const other = p48.slice();
    other[6] = 0x01;
    const look = (a: Uint8Array) => {
      const out = new Int32Array(2);
      const slab = new Uint8Array(40);
      slab.set(a, 3);
      slab.set(a, 21);
      t.lookupMany(slab, Int32Array.of(3, 21), 2, out);
      expect(out[0]).toBe(out[1]);
      expect(t.lookupBytes(a, 0)).toBe(out[0]);
      return out[0];
    };
    t.insert(words(maskBytes(p48, 32)), 32, 1);
    t.insert(words(p48), 48, 2);
    expect(look(inside)).toBe(2);
    const p64 = maskBytes(inside, 64);
    t.insert(words(p64), 64, 3); // deeper appears: the hash entry must stop answering alone
    expect(look(inside)).toBe(3);
    expect(look(other)).toBe(2);
    t.insert(words(p64), 64, 4); // replace below
    expect(look(inside)).toBe(4);
    t.insert(words(p48), 48, 5); // replace the /48 itself
    expect(look(other)).toBe(5);
    expect(look(inside)).toBe(4);
    t.remove(words(p64), 64, 48, 5); // deeper disappears: the hash answers again
    expect(look(inside)).toBe(5);
    const p128 = inside.slice();
    t.insert(words(p128), 128, 6);
    t.insert(words(maskBytes(inside, 56)), 56, 7);
    t.remove(words(p128), 128, 56, 7); // one of two deeper prefixes leaves
    expect(look(inside)).toBe(7);
    expect(look(other)).toBe(5);
    t.remove(words(p48), 48, 32, 1); // the /48 leaves while a /56 stays below
    expect(look(other)).toBe(1);
    expect(look(inside)).toBe(7);
    t.insert(words(p48), 48, 8); // the /48 comes back above an existing deeper prefix
    expect(look(inside)).toBe(7);
    expect(look(other)).toBe(8);
    t.remove(words(maskBytes(inside, 56)), 56, 48, 8);
    expect(look(inside)).toBe(8);
  });

  for (const buckets of [false, true])
  it(`many /48s in a small hash: colliding slots, removal of each last /48 of a probe run, grow and shrink (${buckets ? 'buckets' : '/48 hash'})`, () => {
    const rand = rng(99);
    const t = new Poptrie(128, 18, true, buckets);
    const present = new Map<string, { p: Prefix; v: number }>();
    const base = Uint8Array.from([0x2a, 0x00, 0x14, 0x50, ...new Array(12).fill(0)]);
    const p48 = (i: number): Prefix => {
      const b = base.slice();
      b[4] = i >> 8;
      b[5] = i & 255;
      return { family: 6, bytes: b, length: 48 };
    };
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 3000; i++) {
        const p = p48(Math.floor(rand() * 5000));
        if (present.has(keyOf(p))) continue;
        const v = round * 10000 + i;
        t.insert(words(p.bytes), 48, v);
        present.set(keyOf(p), { p, v });
      }
      const check = () => {
        const addrs = Array.from({ length: 200 }, () => {
          const a = p48(Math.floor(rand() * 5000)).bytes;
          a[15] = 7;
          return a;
        });
        const { slab, offs } = batchSlab(addrs, 16, rand);
        const out = new Int32Array(addrs.length);
        t.lookupMany(slab, offs, addrs.length, out);
        addrs.forEach((a, k) => expect(out[k]).toBe(refLookup(present, a)));
      };
      check();
      const all = [...present.values()].sort(() => rand() - 0.5);
      for (let i = 0; i < all.length; i++) {
        present.delete(keyOf(all[i]!.p));
        t.remove(words(all[i]!.p.bytes), 48, 0, -1);
        if (i % 500 === 0) check();
      }
      check();
      expect(t.nodeCounts()[1]).toBe(0);
    }
  });
});

describe('RouteTable batch lookups', () => {
  for (const family of [4, 6] as const) {
    it(`IPv${family}: lookupBatch == single lookups == brute force, through table growth and churn`, () => {
      const rand = rng(family * 4099);
      const gen = addressGen(rand, family, 6);
      const router = new Router();
      const routes = new Map<string, { p: Prefix; v: number }>();
      const tab = router.table('main');
      const w = family === 4 ? 4 : 16;
      // Past 16384 IPv4 routes the table switches to DIR-24-8: go past it once.
      const target = family === 4 ? 17000 : 3000;
      let steps = 0;
      const check = () => {
        const addrs = Array.from({ length: 1 + Math.floor(rand() * 100) }, gen);
        const { slab, offs } = batchSlab(addrs, w, rand);
        const out = new Int32Array(addrs.length);
        if (family === 4) tab.lookupBatch4(slab, offs, addrs.length, out);
        else tab.lookupBatch6(slab, offs, addrs.length, out);
        addrs.forEach((a, k) => {
          const single = family === 4 ? tab.lookup4(slab, offs[k]!) : tab.lookup6(slab, offs[k]!);
          const want = refLookup(routes, a);
          if (out[k] !== want || single !== want) throw new Error(`step ${steps}: ${Buffer.from(a).toString('hex')} batch ${out[k]} single ${single} want ${want}`);
        });
      };
      while (routes.size < target) {
        const p = randomPrefix(rand, gen, family);
        if (family === 4 && p.length < 8) continue;
        if (routes.has(keyOf(p))) continue;
        routes.set(keyOf(p), { p, v: router.add({ prefix: p, dev: 'tun0' }) });
        if (++steps % 997 === 0) check();
      }
      check();
      for (let i = 0; i < 3000; i++) {
        if (rand() < 0.5) {
          const all = [...routes.values()];
          const victim = all[Math.floor(rand() * all.length)]!;
          router.remove(victim.v);
          routes.delete(keyOf(victim.p));
        } else {
          const p = randomPrefix(rand, gen, family);
          if (family === 4 && p.length < 8) continue;
          if (routes.has(keyOf(p))) continue;
          routes.set(keyOf(p), { p, v: router.add({ prefix: p, dev: 'tun1' }) });
        }
        if (i % 50 === 0) check();
      }
      // empty table and a table without this family
      const out4 = new Int32Array(2).fill(7);
      router.table('empty').lookupBatch4(new Uint8Array(8), Int32Array.of(0, 4), 2, out4);
      expect([...out4]).toEqual([-1, -1]);
      const out = new Int32Array(2).fill(7);
      router.table('empty').lookupBatch6(new Uint8Array(32), Int32Array.of(0, 16), 2, out);
      expect([...out]).toEqual([-1, -1]);
    });
  }
});

describe('Router.lookupBatch', () => {
  it('answers and counts like lookup() per packet: mixed families, local/main/default tables, throw, ECMP, bad headers, policy rules', () => {
    const rand = rng(2024);
    const gen4 = addressGen(rand, 4, 4);
    const gen6 = addressGen(rand, 6, 4);
    const router = new Router();
    const ids: number[] = [];
    const addRandom = () => {
      const fam: Family = rand() < 0.5 ? 4 : 6;
      const p = randomPrefix(rand, fam === 4 ? gen4 : gen6, fam);
      const r = rand();
      const table = r < 0.1 ? 'local' : r < 0.2 ? 'default' : 'main';
      const t = rand();
      try {
        if (t < 0.1) ids.push(router.add({ prefix: p, table, type: 'throw' }));
        else if (t < 0.15) ids.push(router.add({ prefix: p, table, type: 'blackhole' }));
        else if (t < 0.4)
          ids.push(router.add({ prefix: p, table, metric: Math.floor(rand() * 3), nexthops: [{ dev: 'tun0', weight: 1 + Math.floor(rand() * 3) }, { dev: 'tun1' }, { dev: 'tun2' }] }));
        else ids.push(router.add({ prefix: p, table, metric: Math.floor(rand() * 3), dev: `tun${Math.floor(rand() * 3)}` }));
      } catch {
        /* e.g. duplicate local type combos: irrelevant here */
      }
    };
    const packets = (count: number) => {
      const slab = new Uint8Array(count * 80);
      const offs = new Int32Array(count);
      const ends = new Int32Array(count);
      for (let k = 0; k < count; k++) {
        const o = k * 80 + Math.floor(rand() * 8);
        const r = rand();
        const pkt =
          r < 0.5
            ? ipv4Packet(`10.0.0.${k & 255}`, gen4().join('.'), rand() < 0.5 ? 6 : 17, Math.floor(rand() * 65536), 80, rand() < 0.1 ? 0x2000 : 0)
            : ipv6Packet(gen6(), gen6(), 17, Math.floor(rand() * 65536), 443, rand() < 0.3 ? Math.floor(rand() * 0xfffff) : 0);
        slab.set(pkt, o);
        offs[k] = o;
        ends[k] = o + pkt.length;
        if (rand() < 0.05) ends[k] = o + Math.floor(rand() * 20); // truncated header
        if (rand() < 0.03) slab[o] = 0x55; // bad version
      }
      return { slab, offs, ends };
    };
    const compare = (count: number) => {
      const { slab, offs, ends } = packets(count);
      const route = new Int32Array(count);
      const type = new Uint8Array(count);
      const nh: (Nexthop | null)[] = new Array(count).fill(null);
      router.resetCounters();
      router.lookupBatch(slab, offs, ends, count, route, type, nh);
      const batchCounts = ids.map((id) => (router.isLive(id) ? [router.packetsOf(id), router.bytesOf(id)] : [0, 0]));
      router.resetCounters();
      for (let k = 0; k < count; k++) {
        const id = router.lookup(slab, offs[k]!, 0, ends[k]!);
        if (route[k] !== id || type[k] !== router.lastType || nh[k] !== router.lastNexthop) {
          throw new Error(`packet ${k}: batch ${route[k]}/${type[k]}/${nh[k]?.dev} single ${id}/${router.lastType}/${router.lastNexthop?.dev}`);
        }
      }
      for (let k = 0; k < count; k++) {
        if (route[k]! >= 0) seen.routed++;
        if (nh[k] !== null && router.nexthopsOf(route[k]!).length > 1) seen.ecmp++;
        if (route[k]! >= 0 && router.tableOf(route[k]!) !== 254) seen.otherTable++;
      }
      const singleCounts = ids.map((id) => (router.isLive(id) ? [router.packetsOf(id), router.bytesOf(id)] : [0, 0]));
      expect(batchCounts).toEqual(singleCounts);
    };
    const seen = { routed: 0, ecmp: 0, otherTable: 0 };
    for (let round = 0; round < 30; round++) {
      for (let i = 0; i < 40; i++) addRandom();
      for (let i = 0; i < 10 && ids.length > 0; i++) router.remove(ids[Math.floor(rand() * ids.length)]!);
      compare(1 + Math.floor(rand() * 150));
      if (round === 10) router.addRule({ priority: 100, from: '10.0.0.0/25', table: 'default' }); // selector: per-packet path
      if (round === 15) router.addRule({ priority: 200, ipproto: 'tcp', action: 'unreachable' });
      if (round === 20) {
        router.removeRule(100);
        router.removeRule(200);
      }
      if (round === 25) router.addRule({ priority: 300, table: 'extra' }); // unconditional: batch path, new table
      if (round === 26) router.add({ prefix: 'default', family: 6, table: 'extra', dev: 'tunX' });
    }
    expect(seen.routed).toBeGreaterThan(300);
    expect(seen.ecmp).toBeGreaterThan(50);
    expect(seen.otherTable).toBeGreaterThan(20);
  });
});
