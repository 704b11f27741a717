import { describe, expect, it } from 'vitest';
import { CORE_LAYOUT, Poptrie } from '../../src/route/lpm/poptrie.ts';
import * as core from '../../src/route/lpm/poptrie-core.ts';
import { StrideTrie, V4_STRIDES_LARGE, V4_STRIDES_SMALL, V6_STRIDES } from '../../src/route/lpm/trie.ts';
import type { Family, Prefix } from '../../src/wire/address-text.ts';
import { addressGen, cover, keyOf, matches, randomPrefix, refLookup, rng, words } from './helpers.ts';

type Lpm = Pick<StrideTrie, 'insert' | 'remove' | 'lookup4' | 'lookupBytes' | 'lookupKey' | 'nodeCounts'>;

const cases: [string, Family, () => Lpm, number][] = [
  ['IPv4 DIR-24-8', 4, () => new StrideTrie(32, V4_STRIDES_LARGE), 1],
  ['IPv4 16-8-8', 4, () => new StrideTrie(32, V4_STRIDES_SMALL), 4],
  ['IPv6 default schedule', 6, () => new StrideTrie(128, V6_STRIDES), 4],
  ['IPv6 stride 8', 6, () => new StrideTrie(128, Array(16).fill(8)), 4],
  ['IPv4 Poptrie top 16', 4, () => new Poptrie(32, 16), 4],
  ['IPv4 Poptrie top 18', 4, () => new Poptrie(32, 18), 4],
  ['IPv4 Poptrie top 8', 4, () => new Poptrie(32, 8), 4],
  ['IPv6 Poptrie top 18', 6, () => new Poptrie(128, 18), 4],
  ['IPv6 Poptrie top 16', 6, () => new Poptrie(128, 16), 4],
  ['IPv6 Poptrie top 8', 6, () => new Poptrie(128, 8), 4],
];

describe('LPM structures against brute force', () => {
  for (const [name, family, make, rounds] of cases) {
    it(`${name}: random nested prefixes, interleaved add/replace/remove/lookup`, () => {
      // DIR-24-8 pays up to 2^24 writes per short prefix: fewer rounds keep the test quick.
      for (let seed = 1; seed <= rounds; seed++) {
        const rand = rng(seed * 7919 + family);
        const gen = addressGen(rand, family);
        const trie = make();
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

describe('Poptrie', () => {
  it('deep host routes under /48s: churn reuses freed blocks and folds back to a bare top level', () => {
    const rand = rng(4242);
    const trie = new Poptrie(128, 18);
    const present = new Map<string, { p: Prefix; v: number }>();
    const bases = Array.from({ length: 8 }, () => {
      const b = new Uint8Array(16);
      b[0] = 0x2a;
      for (let i = 1; i < 6; i++) b[i] = Math.floor(rand() * 256);
      return b;
    });
    const make = (len: number): Prefix => {
      const b = bases[Math.floor(rand() * bases.length)]!.slice();
      for (let i = 6; i < 16; i++) b[i] = Math.floor(rand() * 4) * 64 + (i === 15 ? Math.floor(rand() * 2) : 0);
      for (let bit = len; bit < 128; bit++) b[bit >> 3]! &= ~(1 << (7 - (bit & 7)));
      return { family: 6, bytes: b, length: len };
    };
    let size = 0;
    for (let round = 0; round < 3; round++) {
      const lens = [32, 48, 56, 64, 96, 120, 127, 128];
      for (let n = 0; n < 400; n++) {
        const p = make(lens[Math.floor(rand() * lens.length)]!);
        const v = n + round * 1000;
        trie.insert(words(p.bytes), p.length, v);
        present.set(keyOf(p), { p, v });
      }
      for (let q = 0; q < 300; q++) {
        const a = make(128).bytes;
        a[15]! ^= Math.floor(rand() * 256);
        expect(trie.lookupBytes(a, 0)).toBe(refLookup(present, a));
      }
      for (const { p } of [...present.values()].sort(() => rand() - 0.5)) {
        present.delete(keyOf(p));
        const [cl, cv] = cover(present, p);
        trie.remove(words(p.bytes), p.length, cl, cv);
      }
      expect(trie.nodeCounts()[1]).toBe(0);
      if (round === 0) size = trie.byteSize();
      else expect(trie.byteSize()).toBe(size);
    }
  });

  it('nodes whose entries are all children, or start with a child', () => {
    const trie = new Poptrie(32, 18);
    const present = new Map<string, { p: Prefix; v: number }>();
    const add = (a: number, len: number, v: number) => {
      const p: Prefix = { family: 4, bytes: Uint8Array.of(a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255), length: len };
      trie.insert(words(p.bytes), len, v);
      present.set(keyOf(p), { p, v });
    };
    const check = () => {
      for (let x = 0; x < 64 * 256; x += 37) {
        const a = (0x0a000000 + x * 4) >>> 0;
        const b = Uint8Array.of(a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255);
        expect(trie.lookup4(b, 0)).toBe(refLookup(present, b));
      }
    };
    add(0x0a000000, 8, 1);
    for (let i = 0; i < 64; i++) add(0x0a000000 + i * 256 + 128, 25, 100 + i); // every /24 of 10.0.0.0/18 gets a child
    check();
    add(0x0a000000, 20, 2); // overwrite leaves of an all-children node
    check();
    for (let i = 1; i < 64; i++) {
      const p: Prefix = { family: 4, bytes: Uint8Array.of(10, 0, i, 128), length: 25 };
      present.delete(keyOf(p));
      const [cl, cv] = cover(present, p);
      trie.remove(words(p.bytes), 25, cl, cv); // entry 0 stays a child, the rest fold to leaves
      if (i % 16 === 0) check();
    }
    check();
  });

  it('lookupMany answers like lookupBytes / lookup4', () => {
    for (const family of [4, 6] as const) {
      const rand = rng(77 + family);
      const gen = addressGen(rand, family);
      const trie = new Poptrie(family === 4 ? 32 : 128, 18);
      for (let n = 0; n < 500; n++) {
        const p = randomPrefix(rand, gen, family);
        trie.insert(words(p.bytes), p.length, n);
      }
      const w = family === 4 ? 4 : 16;
      const count = 100;
      const buf = new Uint8Array(count * (w + 1));
      const offs = new Int32Array(count);
      for (let k = 0; k < count; k++) {
        offs[k] = k * (w + 1) + 1;
        buf.set(gen(), offs[k]!);
      }
      const out = new Int32Array(count);
      trie.lookupMany(buf, offs, count, out);
      for (let k = 0; k < count; k++) {
        expect(out[k]).toBe(family === 4 ? trie.lookup4(buf, offs[k]!) : trie.lookupBytes(buf, offs[k]!));
      }
    }
  });
});

describe('Poptrie lookups (poptrie.ts) and core (poptrie-core.ts) share one layout', () => {
  it('the lookups\' local copies of the layout constants and popcount equal the core\'s', () => {
    expect([CORE_LAYOUT.PTR, CORE_LAYOUT.VALUE_MASK, CORE_LAYOUT.LEN_SHIFT]).toEqual([core.PTR, core.VALUE_MASK, core.LEN_SHIFT]);
    const rand = rng(77);
    for (let i = 0; i < 5000; i++) {
      const x = i < 64 ? (i < 32 ? 1 << i : -1 >>> (i - 32)) | 0 : (Math.floor(rand() * 2 ** 32) | 0);
      let bits = 0;
      for (let b = 0; b < 32; b++) bits += (x >>> b) & 1;
      expect([x, CORE_LAYOUT.pop(x), core.pop(x)]).toEqual([x, bits, bits]);
    }
  });
});
