import { describe, expect, it } from 'vitest';
import { Router } from '../../src/route/router.ts';
import type { Prefix } from '../../src/wire/address-text.ts';
import { maskBytes, matches, rng } from './helpers.ts';

/**
 * IPv6 removal restores the covering prefix found through the sibling half's longest match
 * (table.ts removePrefix), falling back to the search by length when the sibling holds something
 * longer. Tables here are dense around a few bases so siblings, host routes next to host routes,
 * /127s and prefixes on both sides of every length are common; every removal is followed by
 * lookups of the removed prefix's own address and its sibling (single == batch == brute force).
 */
interface Ref {
  id: number;
  p: Prefix;
  metric: number;
  seq: number;
}

function ref(routes: Ref[], a: Uint8Array): number {
  let best: Ref | null = null;
  for (const r of routes) {
    if (!matches(r.p, a)) continue;
    if (!best || r.p.length > best.p.length || (r.p.length === best.p.length && (r.metric < best.metric || (r.metric === best.metric && r.seq < best.seq)))) best = r;
  }
  return best ? best.id : -1;
}

const LENGTHS = [0, 16, 29, 32, 36, 40, 44, 46, 47, 48, 56, 63, 64, 96, 120, 126, 127, 128];

describe('IPv6 covering prefix on removal', () => {
  it('host routes, siblings and nested prefixes: interleaved add/replace/remove against brute force', () => {
    for (let seed = 1; seed <= 4; seed++) {
      const rand = rng(seed * 7919);
      const bases = Array.from({ length: 3 }, () => Uint8Array.from({ length: 16 }, () => Math.floor(rand() * 256)));
      const gen = (): Uint8Array => {
        const a = bases[Math.floor(rand() * bases.length)]!.slice();
        // flip one or two bits near a length of interest, so prefixes nest and have siblings
        const flips = 1 + Math.floor(rand() * 2);
        for (let f = 0; f < flips; f++) {
          const near = LENGTHS[Math.floor(rand() * LENGTHS.length)]!;
          const bit = Math.min(127, Math.max(0, near - 1 + Math.floor(rand() * 3) - 1));
          a[bit >> 3]! ^= 1 << (7 - (bit & 7));
        }
        return a;
      };
      const router = new Router();
      const tab = () => router.table('main');
      let routes: Ref[] = [];
      let seq = 0;
      const offs = new Int32Array(2);
      const out = new Int32Array(2);
      const check = (a: Uint8Array, where: string): void => {
        const buf = new Uint8Array(32);
        buf.set(a, 0);
        const b = a.slice();
        b[15]! ^= 1;
        buf.set(b, 16);
        offs[0] = 0;
        offs[1] = 16;
        tab().lookupBatch6(buf, offs, 2, out);
        for (let q = 0; q < 2; q++) {
          const addr = buf.subarray(q * 16, q * 16 + 16);
          const want = ref(routes, addr);
          const single = tab().lookup6(buf, q * 16);
          if (single !== want || out[q] !== want) {
            throw new Error(`seed ${seed} ${where}: ${Buffer.from(addr).toString('hex')} single ${single} batch ${out[q]} want ${want}`);
          }
        }
      };
      for (let step = 0; step < 1500; step++) {
        const r = rand();
        if (r < 0.45 || routes.length === 0) {
          const len = rand() < 0.3 ? 128 : LENGTHS[Math.floor(rand() * LENGTHS.length)]!;
          const p: Prefix = { family: 6, bytes: maskBytes(gen(), len), length: len };
          const metric = Math.floor(rand() * 2) * 10;
          const id = router.add({ prefix: p, metric, dev: 'tun0' });
          routes.push({ id, p, metric, seq: seq++ });
        } else if (r < 0.55) {
          const old = routes[Math.floor(rand() * routes.length)]!;
          const id = router.replace({ prefix: old.p, metric: old.metric, dev: 'tun1' });
          const victim = routes
            .filter((x) => x.p.length === old.p.length && Buffer.compare(x.p.bytes, old.p.bytes) === 0 && x.metric === old.metric)
            .sort((a, b) => a.seq - b.seq)[0]!;
          routes = routes.filter((x) => x !== victim);
          routes.push({ id, p: old.p, metric: old.metric, seq: seq++ });
        } else {
          const victim = routes[Math.floor(rand() * routes.length)]!;
          expect(router.remove(victim.id)).toBe(true);
          routes = routes.filter((x) => x !== victim);
          // the removed prefix's own address, and the address just past its sibling boundary
          check(victim.p.bytes, `step ${step} after removing /${victim.p.length}`);
          if (victim.p.length > 0) {
            const s = victim.p.bytes.slice();
            const bit = victim.p.length - 1;
            s[bit >> 3]! ^= 1 << (7 - (bit & 7));
            check(s, `step ${step} sibling of removed /${victim.p.length}`);
          }
        }
        if (step % 10 === 0) check(gen(), `step ${step}`);
      }
      router.clear();
    }
  });
});
