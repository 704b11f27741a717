import { describe, expect, it } from 'vitest';
import { StrideTrie, V4_STRIDES_LARGE, V4_STRIDES_SMALL, V6_STRIDES } from '../../src/route/trie.ts';
import type { Family, Prefix } from '../../src/wire/address-text.ts';
import { addressGen, matches, randomPrefix, rng } from './helpers.ts';

function words(bytes: Uint8Array): Uint32Array {
  const w = new Uint32Array(4);
  for (let i = 0; i < bytes.length; i++) w[i >> 2]! |= bytes[i]! << (24 - 8 * (i & 3));
  return w;
}

const keyOf = (p: Prefix) => `${p.length}/${Buffer.from(p.bytes).toString('hex')}`;

/** Brute-force reference: the longest present prefix's value. */
function refLookup(present: Map<string, { p: Prefix; v: number }>, addr: Uint8Array): number {
  let best = -1;
  let bestLen = -1;
  for (const { p, v } of present.values()) {
    if (p.length > bestLen && matches(p, addr)) {
      best = v;
      bestLen = p.length;
    }
  }
  return best;
}

function cover(present: Map<string, { p: Prefix; v: number }>, p: Prefix): [number, number] {
  let best: [number, number] = [0, -1];
  for (const { p: q, v } of present.values()) {
    if (q.length < p.length && q.length >= best[0] && matches(q, p.bytes) && (best[1] < 0 || q.length > best[0])) best = [q.length, v];
  }
  return best;
}

const cases: [string, Family, readonly number[]][] = [
  ['IPv4 DIR-24-8', 4, V4_STRIDES_LARGE],
  ['IPv4 16-8-8', 4, V4_STRIDES_SMALL],
  ['IPv6 default schedule', 6, V6_STRIDES],
  ['IPv6 stride 8', 6, Array(16).fill(8)],
];

describe('StrideTrie against brute force', () => {
  for (const [name, family, strides] of cases) {
    it(`${name}: random nested prefixes, interleaved add/replace/remove/lookup`, () => {
      // DIR-24-8 pays up to 2^24 writes per short prefix: fewer rounds keep the test quick.
      const rounds = strides[0] === 24 ? 1 : 4;
      for (let seed = 1; seed <= rounds; seed++) {
        const rand = rng(seed * 7919 + family);
        const gen = addressGen(rand, family);
        const trie = new StrideTrie(family === 4 ? 32 : 128, strides);
        const present = new Map<string, { p: Prefix; v: number }>();
        let nextValue = 0;
        for (let step = 0; step < 1500; step++) {
          const r = rand();
          if (r < 0.45 || present.size === 0) {
            const p = randomPrefix(rand, gen, family);
            const v = nextValue++;
            trie.insert(words(p.bytes), p.length, v); // insert of a present prefix replaces
            present.set(keyOf(p), { p, v });
          } else if (r < 0.75) {
            const all = [...present.values()];
            const { p } = all[Math.floor(rand() * all.length)]!;
            present.delete(keyOf(p));
            const [cl, cv] = cover(present, p);
            trie.remove(words(p.bytes), p.length, cl, cv);
          } else {
            for (let q = 0; q < 10; q++) {
              const a = gen();
              const buf = new Uint8Array(a.length + 3);
              buf.set(a, 3);
              const want = refLookup(present, a);
              const got = family === 4 ? trie.lookup4(buf, 3) : trie.lookupBytes(buf, 3);
              if (got !== want) throw new Error(`seed ${seed} step ${step}: lookup ${Buffer.from(a).toString('hex')} got ${got} want ${want}`);
              expect(trie.lookupKey(words(a))).toBe(want);
            }
          }
        }
        // Remove everything: the trie folds back to a bare root.
        for (const { p } of [...present.values()].sort((a, b) => b.p.length - a.p.length)) {
          present.delete(keyOf(p));
          const [cl, cv] = cover(present, p);
          trie.remove(words(p.bytes), p.length, cl, cv);
        }
        expect(trie.nodeCounts().slice(1).every((n) => n === 0)).toBe(true);
        expect(trie.lookupKey(words(gen()))).toBe(-1);
      }
    });
  }

  it('rejects bad stride schedules', () => {
    expect(() => new StrideTrie(32, [16, 16, 8])).toThrow(/add up/);
    expect(() => new StrideTrie(32, [4, 8, 8, 8, 4])).toThrow(/aligned/);
    expect(() => new StrideTrie(32, [12, 20])).toThrow(/unsupported/);
  });
});
