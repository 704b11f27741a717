/**
 * Property tests: fragment random datagrams to random MTUs, shuffle and duplicate the fragments,
 * and reassembly must give back the original bytes exactly; any overlap drops the datagram; the
 * pools return to zero live slots after every case.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { DropReason } from '../../src/base/drop-reason.ts';
import { PacketPools, type PacketBuffer } from '../../src/base/pool.ts';
import { Fragmenter } from '../../src/frag/fragment.ts';
import { Reassembler, ReassemblyStatus } from '../../src/frag/reassembly.ts';
import { udpLike, v4, v6 } from './packets.ts';

const pools = new PacketPools({ small: { slots: 4096 }, large: { slots: 48 } }); // MTU > 1920 fragments use large slots
const fragmenter = new Fragmenter({ pool: pools });
let clock = 0;
const reasm = new Reassembler({ pools, now: () => clock });

afterEach(() => {
  reasm.clear();
  expect(pools.live).toBe(0);
});

function rng(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

/** Fragments as owned copies (then released back to the pool), shuffled with duplicates. */
function takeShuffled(seed: number, dupRate: number): Buffer[] {
  const list: Buffer[] = [];
  for (let i = 0; i < fragmenter.count; i++) list.push(Buffer.from(fragmenter.out[i]!.bytes()));
  fragmenter.releaseAll();
  const rand = rng(seed);
  const n = list.length;
  for (let i = 0; i < n; i++) if (rand() < dupRate) list.push(list[i]!);
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [list[i], list[j]] = [list[j]!, list[i]!];
  }
  return list;
}

function feed(list: Buffer[], family: 4 | 6): PacketBuffer[] {
  const done: PacketBuffer[] = [];
  for (const b of list) {
    const out = family === 4 ? reasm.submitV4(b, 0, b.length) : reasm.submitV6(b, 0, b.length);
    if (out) done.push(out);
    else expect([ReassemblyStatus.Held, ReassemblyStatus.Duplicate]).toContain(reasm.lastStatus);
  }
  return done;
}

const size = fc.oneof(fc.integer({ min: 0, max: 65507 }), fc.integer({ min: 0, max: 3000 }), fc.constantFrom(0, 1, 7, 8, 65507));

describe('fragment -> shuffle + duplicate -> reassemble is the identity', () => {
  it('IPv4: sizes 0..65507, MTU 68..9000', () => {
    fc.assert(
      fc.property(size, fc.integer({ min: 68, max: 9000 }), fc.integer(), fc.double({ min: 0, max: 0.5, noNaN: true }), fc.integer({ min: 0, max: 0xffff }), (n, mtu, seed, dup, id) => {
        const orig = v4({ payload: udpLike(8 + n, seed), id });
        expect(fragmenter.fragmentV4(orig, 0, orig.length, mtu)).toBe(DropReason.None);
        if (fragmenter.count === 0) {
          expect(orig.length).toBeLessThanOrEqual(mtu);
          return;
        }
        for (let i = 0; i < fragmenter.count; i++) expect(fragmenter.out[i]!.length).toBeLessThanOrEqual(mtu);
        const done = feed(takeShuffled(seed, dup), 4);
        expect(done.length).toBeGreaterThanOrEqual(1);
        for (const p of done) {
          expect(p.bytes().equals(orig)).toBe(true);
          p.release();
        }
        reasm.clear(); // duplicates that arrived after completion start a new datagram
      }),
      { numRuns: 300 },
    );
  });

  it('IPv6: sizes 0..65487, MTU 1280..9000, with and without extension headers', () => {
    fc.assert(
      fc.property(
        size,
        fc.integer({ min: 1280, max: 9000 }),
        fc.integer(),
        fc.double({ min: 0, max: 0.5, noNaN: true }),
        fc.constantFrom<Array<[number, number]>>([], [[0, 8]], [[0, 16], [43, 24]], [[60, 8]], [[0, 8], [60, 8], [43, 24], [60, 16]]),
        (n, mtu, seed, dup, ext) => {
          let extLen = 0;
          for (const [, l] of ext) extLen += l;
          const body = Math.min(8 + n, 65535 - extLen);
          const orig = v6({ payload: udpLike(body, seed), ext });
          expect(fragmenter.fragmentV6(orig, 0, orig.length, mtu)).toBe(DropReason.None);
          if (fragmenter.count === 0) {
            expect(orig.length).toBeLessThanOrEqual(mtu);
            return;
          }
          for (let i = 0; i < fragmenter.count; i++) expect(fragmenter.out[i]!.length).toBeLessThanOrEqual(mtu);
          const done = feed(takeShuffled(seed, dup), 6);
          expect(done.length).toBeGreaterThanOrEqual(1);
          for (const p of done) {
            expect(p.bytes().equals(orig)).toBe(true);
            p.release();
          }
          reasm.clear();
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('any overlap drops the whole datagram', () => {
  it('IPv4 and IPv6', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2000, max: 20000 }), fc.integer(), fc.boolean(), fc.nat(), fc.integer({ min: 1, max: 7 }), (n, seed, six, pick, shift) => {
        const orig = six ? v6({ payload: udpLike(n, seed) }) : v4({ payload: udpLike(n, seed) });
        const mtu = 1280;
        if (six) fragmenter.fragmentV6(orig, 0, orig.length, mtu);
        else fragmenter.fragmentV4(orig, 0, orig.length, mtu);
        const list = takeShuffled(seed, 0);
        const k = 1 + (pick % (list.length - 1)); // submit k fragments, then an overlapping one
        feed(list.slice(0, k), six ? 6 : 4);
        expect(reasm.inProgress).toBe(1);
        // Shift one held fragment by 8*shift bytes (staying inside 0..end): overlaps, not equal.
        const hdr = six ? 42 : 6;
        const moreBit = six ? 1 : 0x2000;
        const held = list.slice(0, k).filter((b) => (b.readUInt16BE(hdr) & moreBit) !== 0);
        if (held.length === 0) return reasm.clear();
        const victim = Buffer.from(held[pick % held.length]!);
        const fo = victim.readUInt16BE(hdr);
        if (six) {
          const off = fo & 0xfff8;
          const moved = off >= shift * 8 ? off - shift * 8 : off + shift * 8;
          victim.writeUInt16BE(moved | 1, hdr);
        } else {
          const off8 = fo & 0x1fff;
          const moved = off8 >= shift ? off8 - shift : off8 + shift;
          victim.writeUInt16BE(0x2000 | moved, hdr);
          victim.writeUInt16BE(0, 10);
        }
        const out = six ? reasm.submitV6(victim, 0, victim.length) : reasm.submitV4(victim, 0, victim.length);
        expect(out).toBeNull();
        expect(reasm.lastStatus).toBe(ReassemblyStatus.Dropped);
        expect([DropReason.FragmentOverlap, DropReason.FragmentConflictingEnd, DropReason.FragmentTiny]).toContain(reasm.lastReason);
        // Nothing completes afterwards: the held fragments were forgotten.
        const rest = feed(list.slice(k), six ? 6 : 4);
        expect(rest).toHaveLength(0);
        reasm.clear();
      }),
      { numRuns: 150 },
    );
  });
});

describe('limits hold under interleaved datagrams', () => {
  it('memory and datagram caps are never exceeded; completed datagrams are exact; pools drain', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 5 }),
        fc.array(fc.record({ size: fc.integer({ min: 100, max: 6000 }), six: fc.boolean(), id: fc.integer({ min: 0, max: 3 }) }), { minLength: 2, maxLength: 12 }),
        fc.integer(),
        (memSlots, maxDatagrams, specs, seed) => {
          const local = new Reassembler({
            pools,
            now: () => clock,
            memoryLimit: memSlots * pools.large.slotSize,
            maxDatagrams,
          });
          const originals = new Map<string, Buffer>();
          const all: Array<{ b: Buffer; six: boolean }> = [];
          for (const [k, s] of specs.entries()) {
            const orig = s.six
              ? v6({ payload: udpLike(s.size, seed + k) })
              : v4({ payload: udpLike(s.size, seed + k), id: 1000 + k });
            s.six ? fragmenter.fragmentV6(orig, 0, orig.length, 1280) : fragmenter.fragmentV4(orig, 0, orig.length, 576);
            if (fragmenter.count === 0) continue;
            originals.set(orig.toString('hex'), orig);
            for (let i = 0; i < fragmenter.count; i++) all.push({ b: Buffer.from(fragmenter.out[i]!.bytes()), six: s.six });
            fragmenter.releaseAll();
          }
          const rand = rng(seed);
          for (let i = all.length - 1; i > 0; i--) {
            const j = Math.floor(rand() * (i + 1));
            [all[i], all[j]] = [all[j]!, all[i]!];
          }
          for (const { b, six } of all) {
            clock += 1;
            const out = six ? local.submitV6(b, 0, b.length) : local.submitV4(b, 0, b.length);
            expect(local.memory).toBeLessThanOrEqual(memSlots * pools.large.slotSize);
            expect(local.inProgress).toBeLessThanOrEqual(maxDatagrams);
            if (out) {
              expect(originals.has(Buffer.from(out.bytes()).toString('hex'))).toBe(true);
              out.release();
            }
          }
          local.clear();
          expect(local.memory).toBe(0);
        },
      ),
      { numRuns: 100 },
    );
  });
});
