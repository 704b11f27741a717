/**
 * Poptrie (Asai & Ohara, SIGCOMM 2015): a compressed multibit trie for longest-prefix match over
 * IPv4 or IPv6 keys, in typed arrays, with incremental add/remove and allocation-free lookup
 * straight out of a packet buffer. Why it is used, with measured figures: see the note in trie.ts.
 * Split along the line between writing and reading the trie:
 *   poptrie-core.ts  the layout (top level, node records, leaf runs; described there) and the
 *                    update walks
 *   poptrie.ts       (this file) the lookups, one address or many, which read the core's arrays
 *                    directly, and the fast paths in front of the walk with their upkeep on
 *                    insert/remove: the /32 buckets (v6-bucket.ts) and the /48 hash (hash48.ts)
 *
 * IPv6 fast path: /32 buckets (v6-bucket.ts; on with `buckets`, as the Router's IPv6 tables
 * have it). Every /32 holding prefixes of length >= 32 has a bucket: a bit in a presence filter,
 * a tagged 4-byte index slot, and a block with the /32's prefixes of length 33..64 (bits 32-63,
 * shift, value; longest first), one marker per /64 with longer prefixes below, and a base (the
 * longest prefix <= /32 over the /32). A lookup probes it first: filter word and home slot, read
 * together; the block (its key confirms the slot); a scan of ~5 entries: two dependent loads into
 * ~2.5 MB instead of the top level and 5-6 node levels in 25 MB. No bucket (nothing of length
 * >= 32 under the /32: random addresses, addresses under a /29): a small second Poptrie holding
 * only the prefixes shorter than /32 answers (18-bit top, ~1.3 MB). A marker, or a bucket of more
 * than 32 entries: the walk of this trie. Updates keep the buckets as the trie keeps its leaves
 * (insert, and remove with the cover); whether longer prefixes remain under a /64 is read off
 * the removal walk. The /48 hash is not kept beside the buckets.
 * Measured 2026-11-22 on the 200k bench table. Route bench, the old trie (commit a6c8030: /48
 * hash) and this one alternating, two runs each, load ~1.1 (best of 3 per row):
 *   in-table single 2.7, 2.6 -> 12.8, 15.8 M/s   batch (lookupBatch6) 3.3, 3.6 -> 12.6, 14.2
 *   random single 28.1, 37.7 -> 22.9, 37.3         batch 23.9, 25.1 -> 30.1, 27.4
 *   4096 hot destinations 12.0, 13.0 -> 26.7, 28.9
 *   updates /128 147, 130 -> 116, 130 k/s          /64 294, 251 -> 217, 212 k/s
 *   build 1.14, 1.09 -> 1.17, 1.31 s               IPv6 structure 25 -> 27 MB
 * (earlier runs of the new one: in-table single 10.4 and 13.8, batch 12.2 and 14.7.)
 * How it got there (scratch runs, variants interleaved in one process, medians of 7-15 runs;
 * this VM swings up to 2x with its neighbours, and its fast cache is 2-4 MB: a dependent random
 * load measured 15 ns in 2-4 MB arrays at times, 150 ns at others):
 * - Bucket probed after the first node level (as the /48 hash was): in-table 6.9-7.2 M/s;
 *   probed first: 10.6, but random 21.5 -> 11.8 (an absent key walks ~4 index slots at load
 *   0.6); the presence filter (64 KB) in front: random 17.6.
 * - Index slots [key, offset] (8 bytes) without filter: random 9.8; tagged 4-byte slots with the
 *   key confirmed in the block, and the filter: kept.
 * - Constants imported from v6-bucket.ts are read through a call per use under tsx (a third of
 *   the batch time in a profile): the hot ones are copied here (a test checks they agree).
 * - The ~3% of in-table addresses without a bucket (under /29s) walking this trie cost as much
 *   as all the others (an inline replica: 24 M/s without them, 11 with): the short-prefix trie
 *   took in-table single 8.8 -> 11.1 and random up; its top at 16/18/20 bits: random 20/23/27,
 *   in-table alike: 18.
 * - lookupMany as gather passes (filter words and slots of all lanes; then the blocks and their
 *   second cache line; then the scans; the short lanes in one batch call), three variants: always
 *   20-40% below a plain loop of lookupBytes in the same process (7.4 vs 10.7, 6.0 vs 10.5 M/s):
 *   the branches of a bucket lookup are predictable, so the CPU overlaps consecutive lookups by
 *   itself and the passes only add work. So with buckets lookupMany is that loop. Also no gain:
 *   touch passes then single lookups (6.5 vs 7.8), 4 lookups unrolled per iteration, a
 *   branch-free scan of a fixed 8 entries (6.3-7.6 vs 8.0-8.9), DataView reads of the address
 *   (2x slower).
 * - lookupBytes was too big for V8 to inline (probe32 + the walk; --trace-turbo-inlining:
 *   "Cannot consider lookupBytes"), so every RouteTable.lookup6 paid a call: now lookupBytes is
 *   the bucket probe and a call of walkBytes (the walk) when the bucket cannot answer, and it
 *   inlines. Scratch 2026-11-22 (Router, 200k table, best of 5, before/after alternating in
 *   separate processes, 11 pairs, load 1.1-1.5; the last 5 pairs under a loaded neighbour):
 *   hot (4096 destinations) 35.1-38.4 -> 39.7-43.5 M/s in the 6 quiet pairs (new ahead in 9 of
 *   11 pairs; loaded: 19-38 vs 20-42); random single 33-34 -> 36-41 quiet (9 of 11), batch
 *   32-34 -> 26-39; in-table single 11.0-17.6 -> 9.8-20.6 and batch 9.4-17.3 -> 10.8-17.3: the
 *   memory-bound case is within the noise (new ahead in 7 of 11). Updates untouched: /128
 *   101-149 vs 86-139 k/s, /64 148-198 vs 148-220.
 *   Tried, no consistent win (4 pairs): the filter test as (f >>> pos) & 1 and the slot tag
 *   compared as (x ^ h << (32 - shift)) >>> 22 (one op less each). Where the rest goes: an
 *   in-table address scans 3.3 entries on average (1-8, unpredictable, so the loop exit is a
 *   likely branch miss); 3% have no bucket, 5% fall to the base, none hit the scan limit.
 * - The /48 hash kept beside the buckets slowed every update of length >= 48 and only helped
 *   buckets past the scan limit: dropped.
 * - Updates: the markers are what the buckets cost /128 updates (first round without their upkeep
 *   118-130 k/s, with it 100-105 before the two fixes below; warm rounds 163-176 vs 188-204).
 *   A second trie walk to learn whether longer prefixes remain under the /64 cost 0.75-1.7 us
 *   cold: now read off the removal walk (deeperAt). Inserts and removes scan a bucket only up to
 *   the first entry of a greater rank. Tried: a spare entry per block against moves: no change.
 *   Left: lazy marker removal (a stale marker only sends its /64 to the walk) with a bounded
 *   clean-up would take the remove side off; not done.
 *
 * Tried and not kept (2026-11-22): a packed read-only copy for lookups (a subclass; each node one
 * self-contained block [header, child pointers, leaves], subtrees written depth first so a /32
 * allocation is a few hundred contiguous bytes, patched from this trie after every update).
 * Scratch run, 200k bench table, in-table addresses bucketed by levels walked (ns/lookup, this
 * trie vs the packed copy): 4 levels 460-478 vs 341-357, 5 levels 669-682 vs 466-509. So
 * contiguity alone saves only the TLB part: each level is still a ~110 ns cache-line miss
 * inside one page. Adding a prefetch hint (each child pointer says how many 64-byte lines its
 * subtree spans, <= 16; a lookup loads them all at once after the /48 probe, independent loads
 * that overlap): 5 levels 191-224 ns vs 420-441. Route bench, plain then packed, minutes apart
 * (load ~2): in-table single 2.2 -> 4.9 and 2.4 -> 3.6 M/s, batch 3.1 -> 4.7 and 3.3 -> 3.7,
 * random 26 -> 48 and 37 -> 43; but /128 updates 146 -> 111 and 162 -> 97 k/s (goal >= 100k),
 * /64 307 -> 162 and 301 -> 141, IPv6 structure 25 -> 50 MB (RSS both tables +191 -> +206).
 * The patch walks the copy's path too (more misses per update); with free-list reuse instead
 * of bump allocation + compaction, updates got faster in isolation but the build layout
 * scattered and the lookup gain vanished (2.2 -> 2.2 M/s, /128 87 k/s). Copying only the
 * levels above bit 48 (a walk that reaches a deeper node asks this trie): raw /128 updates
 * 132-141 vs 161 k/s, /64 on par, but through the bench 155 -> 106 k/s and in-table 3.0 -> 2.9
 * M/s; the same table in one process, alternating: single 2.3-2.8 -> 2.9-3.6 M/s, batch 3.0-4.1
 * -> 2.4-3.4 (worse). Figures swing 2x run to run here. Not switched: the gain is not robust
 * and the update floor is at risk. What would keep both: this layout (blocks with pointers, depth-first
 * placement, the line hint) as the only copy, updated in place, not a shadow of this trie.
 */

import { Hash48, hash48, H_OCC, probe48 } from './hash48.ts';
import { PoptrieCore } from './poptrie-core.ts';
import { V6Buckets } from './v6-bucket.ts';

// The core's layout constants and popcount (poptrie-core.ts) as local copies for the lookups:
// imported, the split measured 3-10% slower lookups (in-table, random and hot, two quiet rounds
// each against the one-file version); test/route/trie.test.ts checks the copies agree.
const PTR = 0x80000000 | 0;
const VALUE_MASK = 0x7fffff;
const LEN_SHIFT = 23;
/** Population count of a 32-bit integer (the core's pop). */
function pop(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}
/** The copies above (tests). */
export const CORE_LAYOUT = { PTR, VALUE_MASK, LEN_SHIFT, pop };
/** Lookups walked in lock-step by lookupMany. */
const LANES = 64;
// The /32 bucket layout (v6-bucket.ts) as local constants: an imported binding costs a call per
// read on the hot path under tsx (measured: a third of the batch time). test/route/v6-bucket.test.ts
// checks they agree.
const BK_SHIFT = 24;
const BK_MARK = 0x800000;
const BK_SCAN_MAX = 32;
const BK_COUNT = 0xffff;
const BK_OFFSET = 0x3fffff;
const BK_HASH = 0x9e3779b1 | 0;
const BK_CNT = 1;
const BK_BASE = 2;
const BK_ENTRIES = 3;
/** The layout constants this file copies from v6-bucket.ts (tests). */
export const BUCKET_LAYOUT = { BK_SHIFT, BK_MARK, BK_SCAN_MAX, BK_COUNT, BK_OFFSET, BK_HASH, BK_CNT, BK_BASE, BK_ENTRIES };
/** Largest value a trie can store. */
export const MAX_POPTRIE_VALUE = VALUE_MASK - 1;
/** Prefix length of a `matchKey` result (0 also for no match). */
export function matchLength(m: number): number {
  return m >>> LEN_SHIFT;
}
/** Value of a `matchKey` result, -1 for no match. */
export function matchValue(m: number): number {
  return (m & VALUE_MASK) - 1;
}

/** probe32: no bucket (nothing of length >= 32 under this /32: the walk ends above bit 36). */
const NO_BUCKET = -2;
/** probe32: the bucket cannot answer (too many entries, or prefixes longer than /64 here). */
const ASK_TRIE = -3;

/**
 * Answer of the /32 bucket (v6-bucket.ts) for the address at buf[off]: the value, -1 for no
 * route, or NO_BUCKET / ASK_TRIE.
 */
function probe32(F: Int32Array, fshift: number, I: Int32Array, shift: number, P: Int32Array, buf: Uint8Array, off: number): number {
  const w0 = (buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!;
  const h = Math.imul(w0, BK_HASH);
  const pos = h >>> fshift;
  let j = h >>> shift;
  // The filter word and the home slot are read together (the slot is wasted on a filter miss).
  const f = F[pos >>> 5]!;
  let x = I[j]!;
  if (((f >>> (pos & 31)) & 1) === 0) return NO_BUCKET;
  const tag = (h >>> (shift - 10)) & 1023;
  const mask = I.length - 1;
  for (; ; j = (j + 1) & mask, x = I[j]!) {
    if (x === 0) return NO_BUCKET;
    if (x >>> 22 !== tag) continue;
    const p = x & BK_OFFSET;
    if (P[p] !== w0) continue;
    const cnt = P[p + BK_CNT]! & BK_COUNT;
    if (cnt > BK_SCAN_MAX) return ASK_TRIE;
    const a1 = (buf[off + 4]! << 24) | (buf[off + 5]! << 16) | (buf[off + 6]! << 8) | buf[off + 7]!;
    for (let q = p + BK_ENTRIES, end = q + 2 * cnt; q < end; q += 2) {
      const w = P[q + 1]!;
      if (((a1 ^ P[q]!) >>> (w >>> BK_SHIFT)) === 0) return (w & BK_MARK) === 0 ? (w & VALUE_MASK) - 1 : ASK_TRIE;
    }
    return (P[p + BK_BASE]! & VALUE_MASK) - 1;
  }
}

export class Poptrie extends PoptrieCore {
  private readonly laneRec = new Int32Array(LANES);
  private readonly laneIdx = new Int32Array(LANES);
  private readonly laneVec = new Int32Array(LANES);
  private readonly laneBit = new Int32Array(LANES);
  private readonly leafAt = new Int32Array(LANES);
  private readonly leafLane = new Int32Array(LANES);
  /** The /48 fast path (IPv6 only, see `fast48` and hash48.ts). null when off. */
  private hash: Hash48 | null = null;
  /** The /32 bucket fast path (IPv6 only, see `buckets` and v6-bucket.ts). null when off. */
  private bk: V6Buckets | null = null;
  /**
   * With buckets: the prefixes shorter than /32 again, in a small trie of their own (16-bit
   * top), which answers every address under a /32 without a bucket (nothing of length >= 32
   * there) from a few hundred KB that stay cached, instead of a walk of the big trie.
   */
  private short: Poptrie | null = null;

  private readonly coverKey = new Uint32Array(4);
  /** Bit position below which two address bytes can be read for a stride (else one). */
  private readonly twoByteLimit: number;

  /**
   * `fast48` (IPv6 only; the top level must end on a 6-bit stride boundary at bit 48, e.g. 18):
   * keep a hash of the /48 prefixes, so an address inside a /48 with nothing longer below it is
   * answered by one probe instead of the 6-7 dependent loads of the walk.
   * `buckets` (IPv6 only, default: as fast48): keep the /32 buckets (v6-bucket.ts) instead, so
   * an address under a /32 holding prefixes of length 32..64 is answered by one index probe and a
   * scan of a few Int32, and the prefixes shorter than /32 in a small trie of their own; the /48
   * hash is then not kept (the buckets answer everything it would, its upkeep slowed updates).
   */
  constructor(bits: 32 | 128, topBits: number, fast48 = false, buckets = fast48) {
    super(bits, topBits);
    if (fast48 && !buckets) {
      if (bits !== 128 || (48 - topBits) % 6 !== 0) throw new Error(`no /48 fast path for ${bits} bits with a ${topBits}-bit top`);
      this.hash = new Hash48();
    }
    if (buckets) {
      if (bits !== 128) throw new Error('/32 buckets are for IPv6 tries only');
      this.bk = new V6Buckets((w0) => this.cover32(w0));
      this.short = new Poptrie(128, 18);
    }
    this.twoByteLimit = bits - 8;
  }

  /** Bytes held by the typed arrays. */
  byteSize(): number {
    return this.coreByteSize() + (this.hash?.slots.byteLength ?? 0) + (this.bk?.byteSize() ?? 0) + (this.short?.byteSize() ?? 0);
  }

  /** The /32 buckets' figures (diagnostics, tests, benches); null without buckets. */
  bucketStats(): { buckets: number; entries: number; int32s: number; slots: number; overflowed: number } | null {
    return this.bk === null ? null : this.bk.stats();
  }

  /** The rows of the bucket of /32 `w0` (see V6Buckets.entries); null without buckets. */
  bucketRows(w0: number): number[][] | null {
    return this.bk === null ? null : this.bk.entries(w0);
  }

  /** [top-level entries, nodes in use] (diagnostics, tests). */
  nodeCounts(): number[] {
    return [1, this.live];
  }

  // ---------------------------------------------------------------- lookup

  /** Longest match for the IPv4 address at buf[off..off+4). Returns value or -1. */
  lookup4(buf: Uint8Array, off: number): number {
    const a = (buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!;
    let s = this.topBits;
    const e = this.top[a >>> (32 - s)]!;
    if (e >= 0) return (e & VALUE_MASK) - 1;
    const nodes = this.nodes;
    let r = (e & ~PTR) << 3;
    for (;;) {
      const i = (s <= 26 ? a >>> (26 - s) : a << (s - 26)) & 63;
      const h = i >>> 5;
      const bit = 1 << i;
      const v = nodes[r + h]!;
      if ((v & bit) === 0) {
        return (this.leaves[nodes[r + 6 + h]! + pop(nodes[r + 2 + h]! & ((bit << 1) - 1)) - 1]! & VALUE_MASK) - 1;
      }
      r = (nodes[r + 4 + h]! + pop(v & (bit - 1))) << 3;
      s += 6;
    }
  }

  /** Longest match for the address at buf[off..off+bits/8). Returns value or -1. */
  lookupBytes(buf: Uint8Array, off: number): number {
    const bk = this.bk;
    if (bk !== null) {
      // The bucket first: it answers an address inside the table in two loads, a random one at
      // the filter; without a bucket the short-prefix trie answers.
      const hit = probe32(bk.filter, bk.fshift, bk.index, bk.shift, bk.pool, buf, off);
      if (hit >= -1) return hit;
      if (hit === NO_BUCKET) return this.short!.walkBytes(buf, off);
    }
    return this.walkBytes(buf, off);
  }

  /** The trie walk of lookupBytes (with the /48 hash when on), without the buckets. */
  private walkBytes(buf: Uint8Array, off: number): number {
    let H = this.hash === null ? null : this.hash.slots;
    let s = this.topBits;
    const e = this.top[((buf[off]! << 16) | (buf[off + 1]! << 8) | buf[off + 2]!) >>> (24 - s)]!;
    if (e >= 0) return (e & VALUE_MASK) - 1;
    const nodes = this.nodes;
    const lim = this.twoByteLimit;
    let r = (e & ~PTR) << 3;
    for (;;) {
      const b = off + (s >>> 3);
      const x = s < lim ? (buf[b]! << 8) | buf[b + 1]! : buf[b]! << 8;
      const i = (x >>> (10 - (s & 7))) & 63;
      const h = i >>> 5;
      const bit = 1 << i;
      const v = nodes[r + h]!;
      if ((v & bit) === 0) {
        return (this.leaves[nodes[r + 6 + h]! + pop(nodes[r + 2 + h]! & ((bit << 1) - 1)) - 1]! & VALUE_MASK) - 1;
      }
      r = (nodes[r + 4 + h]! + pop(v & (bit - 1))) << 3;
      // The /48 hash once the walk has gone past the first node level (addresses that end there,
      // e.g. most addresses outside the table, never pay the probe).
      if (s === this.topBits && H !== null) {
        const hit = probe48(H, buf, off);
        if (hit >= 0) return hit;
        H = null;
      }
      s += 6;
    }
  }

  /**
   * Longest matches for `n` addresses at buf[offs[k]..] into out[k] (value or -1), any n.
   * With buckets (IPv6): lookupBytes for each address (why: in the loop below). Without:
   * memory-level parallelism: per chunk of LANES addresses each step is a branch-free gather
   * over all active lanes (top entries; then per level the node words; the /48 hash slots after
   * the first node level) followed by a pass that decides with the data already in cache, so the
   * misses of all lanes are in flight together instead of queueing behind each lane's
   * data-dependent branches. Lanes the /48 hash answers stop there; the rest walk on in lock-step.
   */
  lookupMany(buf: Uint8Array, offs: Int32Array, n: number, out: Int32Array): void {
    const T = this.topBits;
    const top = this.top;
    const nodes = this.nodes;
    const leaves = this.leaves;
    const H = this.hash === null ? null : this.hash.slots;
    const hmask = H === null ? 0 : (H.length >>> 2) - 1;
    const bk = this.bk;
    const lim = this.twoByteLimit;
    const v4 = this.bits === 32;
    const rr = this.laneRec;
    const lane = this.laneIdx;
    const vv = this.laneVec;
    const bb = this.laneBit;
    const la = this.leafAt;
    const ll = this.leafLane;
    if (bk !== null) {
      // With buckets an address costs about two loads and predictable branches, so the CPU
      // already overlaps consecutive lookups: plain single lookups measured 20-40% faster than
      // gathering bucket slots and blocks lane by lane in passes (see the note at the top).
      for (let k = 0; k < n; k++) out[k] = this.lookupBytes(buf, offs[k]!);
      return;
    }
    for (let k0 = 0; k0 < n; k0 += LANES) {
      const k1 = n - k0 < LANES ? n : k0 + LANES;
      let act = 0;
      for (let k = k0; k < k1; k++) {
        const off = offs[k]!;
        vv[k - k0] = v4
          ? top[((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> (32 - T)]!
          : top[((buf[off]! << 16) | (buf[off + 1]! << 8) | buf[off + 2]!) >>> (24 - T)]!;
      }
      for (let k = k0; k < k1; k++) {
        const e = vv[k - k0]!;
        if (e >= 0) out[k] = (e & VALUE_MASK) - 1;
        else {
          rr[act] = (e & ~PTR) << 3;
          lane[act++] = k;
        }
      }
      for (let s = T; act > 0; s += 6) {
        const bo = s >>> 3;
        const sh = 10 - (s & 7);
        const two = s < lim;
        // Gather the node word of every lane.
        for (let a = 0; a < act; a++) {
          const b = offs[lane[a]!]! + bo;
          const x = two ? (buf[b]! << 8) | buf[b + 1]! : buf[b]! << 8;
          const i = (x >>> sh) & 63;
          bb[a] = i;
          vv[a] = nodes[rr[a]! + (i >>> 5)]!;
        }
        let next = 0;
        let nl = 0;
        for (let a = 0; a < act; a++) {
          const i = bb[a]!;
          const h = i >>> 5;
          const bit = 1 << i;
          const r = rr[a]!;
          const v = vv[a]!;
          if ((v & bit) === 0) {
            la[nl] = nodes[r + 6 + h]! + pop(nodes[r + 2 + h]! & ((bit << 1) - 1)) - 1;
            ll[nl++] = lane[a]!;
          } else {
            rr[next] = (nodes[r + 4 + h]! + pop(v & (bit - 1))) << 3;
            lane[next++] = lane[a]!;
          }
        }
        for (let q = 0; q < nl; q++) out[ll[q]!] = (leaves[la[q]!]! & VALUE_MASK) - 1;
        act = next;
        if (s === T && H !== null && act > 0) {
          // Gather the first hash slot of every lane still walking, then probe.
          for (let a = 0; a < act; a++) {
            const off = offs[lane[a]!]!;
            const w0 = (buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!;
            const j = hash48(w0, (buf[off + 4]! << 8) | buf[off + 5]! | H_OCC) & hmask;
            bb[a] = j;
            vv[a] = H[(j << 2) + 1]!;
          }
          next = 0;
          for (let a = 0; a < act; a++) {
            const k = lane[a]!;
            const off = offs[k]!;
            const w0 = (buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!;
            const w1 = (buf[off + 4]! << 8) | buf[off + 5]! | H_OCC;
            let hit = -1;
            for (let j = bb[a]!; ; j = (j + 1) & hmask) {
              const q = j << 2;
              const w = H[q + 1]!;
              if (w === 0) break;
              if (w === w1 && H[q] === w0) {
                if (H[q + 3] === 0) hit = H[q + 2]! - 1;
                break;
              }
            }
            if (hit >= 0) out[k] = hit;
            else {
              rr[next] = rr[a]!;
              lane[next++] = k;
            }
          }
          act = next;
        }
      }
    }
  }

  /** Longest match for a key given as big-endian words (tests, control plane). Returns value or -1. */
  lookupKey(key: Uint32Array): number {
    return (this.matchKey(key) & VALUE_MASK) - 1;
  }

  /**
   * Longest match for a key given as big-endian words, with its length: 0 for none, else
   * (prefix length << 23) | (value + 1) (see `matchLength` / `matchValue`). The trie walk alone
   * (every prefix is in the trie; the /48 hash only shortcuts lookups).
   */
  matchKey(key: Uint32Array): number {
    const e = this.top[key[0]! >>> (32 - this.topBits)]!;
    if (e >= 0) return e;
    let r = (e & ~PTR) << 3;
    for (let s = this.topBits; ; s += 6) {
      const i = this.index(key, s);
      const h = i >>> 5;
      const bit = 1 << i;
      const v = this.nodes[r + h]!;
      if ((v & bit) === 0) return this.leaves[this.nodes[r + 6 + h]! + pop(this.nodes[r + 2 + h]! & ((bit << 1) - 1)) - 1]!;
      r = (this.nodes[r + 4 + h]! + pop(v & (bit - 1))) << 3;
    }
  }

  // ---------------------------------------------------------------- updates (the core's walks, then the fast paths' upkeep)

  /**
   * Set `key/len` to `value` (0 <= value <= MAX_POPTRIE_VALUE). Setting an existing prefix again
   * replaces its value.
   */
  insert(key: Uint32Array, len: number, value: number): void {
    this.insertTrie(key, len, value);
    if (this.bk !== null) {
      if (len >= 32) this.bk.insert(key[0]!, key[1]!, len, value);
      else {
        this.short!.insert(key, len, value);
        this.bk.setShort(key[0]!, len, (len << LEN_SHIFT) | (value + 1), false);
      }
      if (this.bk.full) this.dropBuckets();
    }
    if (this.hash !== null && len >= 48) {
      const w1 = (key[1]! >>> 16) | H_OCC;
      if (len === 48) this.hash.put(key[0]! | 0, w1, value + 1, this.deeper48(key));
      else {
        const q = this.hash.find(key[0]! | 0, w1);
        if (q >= 0) this.hash.slots[q + 3] = 1;
      }
    }
  }

  /**
   * Remove `key/len`: its entries go back to `coverLen`/`coverValue` (the longest shorter prefix
   * present, or coverValue -1 for none). Nodes that become uniform fold into their parent.
   */
  remove(key: Uint32Array, len: number, coverLen: number, coverValue: number): void {
    this.removeTrie(key, len, coverLen, coverValue);
    if (this.bk !== null) {
      const cover = coverValue < 0 ? 0 : (coverLen << LEN_SHIFT) | (coverValue + 1);
      // (A host route leaving a /64 that keeps others, under a cover longer than /32: nothing in
      // the bucket changes.)
      if (len > 64 && this.deeperLeft && cover >>> LEN_SHIFT > 32) return;
      if (len >= 32) this.bk.remove(key[0]!, key[1]!, len, cover, this.deeperLeft);
      else {
        this.short!.remove(key, len, coverLen, coverValue);
        this.bk.setShort(key[0]!, len, cover, true);
      }
      if (this.bk.full) this.dropBuckets();
    }
    if (this.hash !== null && len >= 48) {
      const w1 = (key[1]! >>> 16) | H_OCC;
      const q = this.hash.find(key[0]! | 0, w1);
      if (q < 0) return;
      if (len === 48) this.hash.delete(q >>> 2);
      else this.hash.slots[q + 3] = this.deeper48(key);
    }
  }

  // ---------------------------------------------------------------- fast-path upkeep (walks of the core's trie)

  /** 1 when the trie has a node at bit 48 under key's /48 (prefixes longer than /48 there). */
  private deeper48(key: Uint32Array): number {
    const e = this.top[key[0]! >>> (32 - this.topBits)]!;
    if (e >= 0) return 0;
    let rec = e & ~PTR;
    for (let s = this.topBits; s < 48; s += 6) {
      const c = this.childAt(rec, this.index(key, s));
      if (c < 0) return 0;
      rec = c;
    }
    return 1;
  }

  /**
   * The leaf of the longest prefix of length <= 32 covering the /32 w0 (0 for none), from the
   * first trie entry under the /32 that such a prefix owns; 0 also when longer prefixes own all.
   */
  private cover32(w0: number): number {
    const key = this.coverKey;
    key[0] = w0;
    const e = this.top[key[0]! >>> (32 - this.topBits)]!;
    if (e >= 0) return e;
    let rec = e & ~PTR;
    let s = this.topBits;
    for (; s + 6 <= 32; s += 6) {
      const i = this.index(key, s);
      const c = this.childAt(rec, i);
      if (c < 0) return this.leafOf(rec, i);
      rec = c;
    }
    const span = 1 << (s + 6 - 32);
    return this.shortLeaf(rec, this.index(key, s) & ~(span - 1), span);
  }

  /** First leaf of a prefix of length <= 32 among entries [first, first+span) of a subtree, or 0. */
  private shortLeaf(rec: number, first: number, span: number): number {
    for (let i = first; i < first + span; i++) {
      const c = this.childAt(rec, i);
      if (c >= 0) {
        const l = this.shortLeaf(c, 0, 64);
        if (l !== 0) return l;
      } else {
        const l = this.leafOf(rec, i);
        if (l >>> LEN_SHIFT <= 32) return l;
      }
    }
    return 0;
  }

  /** The buckets outgrew their offsets: lookups go back to the trie walk (and the /48 hash). */
  private dropBuckets(): void {
    this.bk = null;
    this.short = null;
  }
}
