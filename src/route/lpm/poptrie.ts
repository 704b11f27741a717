/**
 * Poptrie (Asai & Ohara, SIGCOMM 2015): a compressed multibit trie for longest-prefix match over
 * IPv4 or IPv6 keys, in typed arrays, with incremental add/remove and allocation-free lookup
 * straight out of a packet buffer. Why it is used, with measured figures: see the note in trie.ts.
 *
 * Layout
 * - A direct-pointing top level of 2^T Int32 entries (T = `topBits`, e.g. 16 or 18) indexed by the
 *   first T bits of the key. An entry is a leaf (sign bit clear) or PTR | record index.
 * - Below it, 6-bit strides: a node covers 64 entries but stores only
 *     vec      64-bit bitmap: which entries are child nodes,
 *     leafvec  64-bit bitmap: where a new run of equal leaves starts (leaf entries only, in order;
 *              children in between do not break a run),
 *   the children of a node contiguous in `nodes` (one block, in entry order) and its distinct leaf
 *   runs contiguous in `leaves`. The child for entry i is base1 + popcount(vec below i); the leaf
 *   is base0 + popcount(leafvec up to i) - 1. 64-bit maps are two Int32 halves (A = entries
 *   0..31, B = 32..63); the base of the B half is stored pre-added so a lookup needs one popcount
 *   (the classic SWAR bit trick, no BigInt).
 * - A node record is 8 Int32 (32 bytes): [vecA, vecB, leafA, leafB, base1A, base1B, base0A,
 *   base0B] with base1B = base1A + popcount(vecA) and base0B = base0A + popcount(leafA).
 * - Key bits past the end of the address (the last stride may overhang: 18 + 6*19 = 132 for IPv6)
 *   read as anything: a prefix always expands over all of them.
 * - A leaf is (prefix length << 23) | (value + 1), 0 = no prefix: the length is what lets an
 *   update overwrite exactly the entries a prefix owns (a longer prefix survives a shorter one
 *   arriving later) without a second, uncompressed copy of the trie.
 *
 * Updates work on the compressed nodes directly: the affected node is decoded into a 64-entry
 * scratch row, changed, and encoded back (its leaf block is rewritten in place when the run count
 * is unchanged, else moved; its children block is reallocated only when a child is created or
 * folded, which copies the 32-byte child records, not their subtrees). Blocks come from exact-size
 * free lists (1..64). Removal folds nodes that became uniform (no children, one leaf run).
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

import { V6Buckets } from './v6-bucket.ts';

const PTR = 0x80000000 | 0;
/** shrinkEntries results. */
const SHRUNK = 1;
const SHRUNK_FOLDED = 2;
const VALUE_MASK = 0x7fffff;
const LEN_SHIFT = 23;
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
/** Hash slot layout (Int32 each): [key bits 0-31, key bits 32-47 | H_OCC, value + 1, deeper]. */
const H_OCC = 0x10000;
const H_MIN = 1024;
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

/** Population count of a 32-bit integer. */
function pop(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

/** Slot hash of a /48 key (bits 0-31, bits 32-47 | H_OCC). */
function hash48(w0: number, w1: number): number {
  let h = Math.imul(w0 ^ 0x2545f491, 0x9e3779b1) ^ Math.imul(w1, 0x85ebca6b);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  return h ^ (h >>> 13);
}

/** Value of the /48 hash entry for the address at buf[off] when it answers alone, else -1. */
function probe48(H: Int32Array, buf: Uint8Array, off: number): number {
  const w0 = (buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!;
  const w1 = (buf[off + 4]! << 8) | buf[off + 5]! | H_OCC;
  const mask = (H.length >>> 2) - 1;
  for (let j = hash48(w0, w1) & mask; ; j = (j + 1) & mask) {
    const q = j << 2;
    const w = H[q + 1]!;
    if (w === 0) return -1;
    if (w === w1 && H[q] === w0) return H[q + 3] === 0 ? H[q + 2]! - 1 : -1;
  }
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

export class Poptrie {
  readonly bits: 32 | 128;
  readonly topBits: number;
  /** Number of prefixes inserted (maintained by the caller's add/remove pairing). */
  prefixes = 0;
  private readonly top: Int32Array;
  private nodes: Int32Array;
  private leaves: Int32Array;
  private nodeHigh = 0;
  private leafHigh = 0;
  private readonly nodeFree: number[][] = [];
  private readonly leafFree: number[][] = [];
  private live = 0;
  /** Scratch rows, one per depth, for decoding nodes during updates. */
  private readonly rows: Int32Array[] = [];
  private readonly runs = new Int32Array(64);
  private readonly laneRec = new Int32Array(LANES);
  private readonly laneIdx = new Int32Array(LANES);
  private readonly laneVec = new Int32Array(LANES);
  private readonly laneBit = new Int32Array(LANES);
  private readonly leafAt = new Int32Array(LANES);
  private readonly leafLane = new Int32Array(LANES);
  /**
   * The /48 fast path (IPv6 only, see `fast48`): an open-addressing hash (linear probing, 4 Int32
   * per slot) with one slot per /48 prefix present, holding its value and whether prefixes
   * longer than /48 exist below it. null when off.
   */
  private hash: Int32Array | null = null;
  private hashUsed = 0;
  /** The /32 bucket fast path (IPv6 only, see `buckets` and v6-bucket.ts). null when off. */
  private bk: V6Buckets | null = null;
  /**
   * With buckets: the prefixes shorter than /32 again, in a small trie of their own (16-bit
   * top), which answers every address under a /32 without a bucket (nothing of length >= 32
   * there) from a few hundred KB that stay cached, instead of a walk of the big trie.
   */
  private short: Poptrie | null = null;

  private readonly coverKey = new Uint32Array(4);
  /** Set by removeTrie for a prefix longer than /64: whether longer ones remain under its /64. */
  private deeperLeft = false;
  /** A standalone record created for a new child, copied into its parent's block by encode(). */
  private temp = -1;
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
    if (topBits < 8 || topBits > 24) throw new Error(`unsupported top level of ${topBits} bits`);
    if (fast48 && !buckets) {
      if (bits !== 128 || (48 - topBits) % 6 !== 0) throw new Error(`no /48 fast path for ${bits} bits with a ${topBits}-bit top`);
      this.hash = new Int32Array(H_MIN * 4);
    }
    if (buckets) {
      if (bits !== 128) throw new Error('/32 buckets are for IPv6 tries only');
      this.bk = new V6Buckets((w0) => this.cover32(w0));
      this.short = new Poptrie(128, 18);
    }
    this.bits = bits;
    this.topBits = topBits;
    this.top = new Int32Array(1 << topBits);
    this.nodes = new Int32Array(8 * 1024);
    this.leaves = new Int32Array(4096);
    for (let n = 0; n <= 64; n++) {
      this.nodeFree.push([]);
      this.leafFree.push([]);
    }
    const levels = Math.ceil((bits - topBits) / 6);
    for (let d = 0; d <= levels + 1; d++) this.rows.push(new Int32Array(64));
    this.twoByteLimit = bits - 8;
  }

  /** Bytes held by the typed arrays. */
  byteSize(): number {
    return this.top.byteLength + this.nodes.byteLength + this.leaves.byteLength + (this.hash?.byteLength ?? 0) + (this.bk?.byteSize() ?? 0) + (this.short?.byteSize() ?? 0);
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
    let H = this.hash;
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
    const H = this.hash;
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

  // ---------------------------------------------------------------- updates

  /** The 6 key bits at bit position s (bits past the key read as 0). */
  private index(key: Uint32Array, s: number): number {
    const w = s >>> 5;
    const o = s & 31;
    if (o <= 26) return (key[w]! >>> (26 - o)) & 63;
    const lo = (w + 1) * 32 < this.bits ? key[w + 1]! >>> (58 - o) : 0;
    return ((key[w]! << (o - 26)) | lo) & 63;
  }

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
      if (len === 48) this.hashPut(key[0]! | 0, w1, value + 1, this.deeper48(key));
      else {
        const q = this.hashFind(key[0]! | 0, w1);
        if (q >= 0) this.hash[q + 3] = 1;
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
      const q = this.hashFind(key[0]! | 0, w1);
      if (q < 0) return;
      if (len === 48) this.hashDelete(q >>> 2);
      else this.hash[q + 3] = this.deeper48(key);
    }
  }

  // ---------------------------------------------------------------- /48 hash

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

  /** The leaf at entry i of the node at `rec` (which must be a leaf entry). */
  private leafOf(rec: number, i: number): number {
    const n = this.nodes;
    const r = rec << 3;
    const h = i >>> 5;
    return this.leaves[n[r + 6 + h]! + pop(n[r + 2 + h]! & (((1 << i) << 1) - 1)) - 1]!;
  }

  /** The buckets outgrew their offsets: lookups go back to the trie walk (and the /48 hash). */
  private dropBuckets(): void {
    this.bk = null;
    this.short = null;
  }

  /**
   * For the node at `rec` covering bits s..s+5 with s < 64 <= s + 6 on key's path: true when it
   * holds a prefix longer than /64 under key's /64 (among the entries of that /64: a child, or a
   * leaf of a longer prefix).
   */
  private deeperAt(rec: number, key: Uint32Array, s: number): boolean {
    const span = 1 << (s + 6 - 64);
    const first = this.index(key, s) & ~(span - 1);
    const n = this.nodes;
    const r = rec << 3;
    for (let i = first; i < first + span; i++) {
      const h = i >>> 5;
      const bit = 1 << i;
      if ((n[r + h]! & bit) !== 0) return true;
      const leaf = this.leaves[n[r + 6 + h]! + pop(n[r + 2 + h]! & ((bit << 1) - 1)) - 1]!;
      if (leaf >>> LEN_SHIFT > 64) return true;
    }
    return false;
  }

  /** Index (in Int32s) of the slot holding the /48 key, or -1. */
  private hashFind(w0: number, w1: number): number {
    const H = this.hash!;
    const mask = (H.length >>> 2) - 1;
    for (let j = hash48(w0, w1) & mask; ; j = (j + 1) & mask) {
      const q = j << 2;
      const w = H[q + 1]!;
      if (w === 0) return -1;
      if (w === w1 && H[q] === w0) return q;
    }
  }

  private hashPut(w0: number, w1: number, val: number, deeper: number): void {
    let q = this.hashFind(w0, w1);
    if (q < 0) {
      if ((this.hashUsed + 1) * 2 > this.hash!.length >>> 2) this.hashResize((this.hash!.length >>> 2) * 2);
      const H = this.hash!;
      const mask = (H.length >>> 2) - 1;
      let j = hash48(w0, w1) & mask;
      while (H[(j << 2) + 1] !== 0) j = (j + 1) & mask;
      q = j << 2;
      H[q] = w0;
      H[q + 1] = w1;
      this.hashUsed++;
    }
    this.hash![q + 2] = val;
    this.hash![q + 3] = deeper;
  }

  private hashResize(slots: number): void {
    const old = this.hash!;
    const H = new Int32Array(slots * 4);
    const mask = slots - 1;
    for (let q = 0; q < old.length; q += 4) {
      if (old[q + 1] === 0) continue;
      let j = hash48(old[q]!, old[q + 1]!) & mask;
      while (H[(j << 2) + 1] !== 0) j = (j + 1) & mask;
      H.set(old.subarray(q, q + 4), j << 2);
    }
    this.hash = H;
  }

  /** Delete slot j (backward shift: linear probing without tombstones). */
  private hashDelete(j: number): void {
    const H = this.hash!;
    const mask = (H.length >>> 2) - 1;
    let hole = j;
    for (let i = (j + 1) & mask; ; i = (i + 1) & mask) {
      const q = i << 2;
      if (H[q + 1] === 0) break;
      const home = hash48(H[q]!, H[q + 1]!) & mask;
      const inRange = hole <= i ? home > hole && home <= i : home > hole || home <= i;
      if (!inRange) {
        H.copyWithin(hole << 2, q, q + 4);
        hole = i;
      }
    }
    H.fill(0, hole << 2, (hole << 2) + 4);
    this.hashUsed--;
    if (this.hashUsed * 8 < H.length >>> 2 && H.length >>> 2 > H_MIN) this.hashResize((H.length >>> 2) >>> 1);
  }

  private insertTrie(key: Uint32Array, len: number, value: number): void {
    const leaf = (len << LEN_SHIFT) | (value + 1);
    const T = this.topBits;
    const ti = key[0]! >>> (32 - T);
    const top = this.top;
    if (len <= T) {
      const span = 1 << (T - len);
      const first = ti & ~(span - 1);
      for (let j = first; j < first + span; j++) {
        const e = top[j]!;
        if (e < 0) this.overwrite(e & ~PTR, 1, len, leaf);
        else if (e >>> LEN_SHIFT <= len) top[j] = leaf;
      }
      return;
    }
    let e = top[ti]!;
    if (e >= 0) {
      const rec = this.standalone(e);
      this.temp = -1; // a top-level node keeps its own one-record block
      top[ti] = e = PTR | rec;
    }
    this.insertAt(e & ~PTR, 1, T, key, len, leaf);
  }

  private insertAt(rec: number, d: number, s: number, key: Uint32Array, len: number, leaf: number): void {
    // Leaf of a node created by this insert (all 64 entries equal: no need to decode it), or -1.
    let fresh = -1;
    for (;;) {
      const E = this.rows[d]!;
      const i = this.index(key, s);
      const end = s + 6;
      if (len > end && fresh >= 0) {
        // A node this insert just created (all 64 entries `fresh`, one-run leaf block) gets its
        // only child at i: written straight into the record, the child keeping its own
        // one-record block as the children block (no decode/encode of 64 entries per level of
        // a host route's fresh chain, no copy).
        const child = this.standalone(fresh);
        this.temp = -1;
        const n = this.nodes;
        const r = rec << 3;
        const vecA = i < 32 ? 1 << i : 0;
        n[r] = vecA;
        n[r + 1] = i < 32 ? 0 : 1 << i;
        n[r + 2] = i === 0 ? 2 : 1; // the one leaf run starts at the first leaf entry
        n[r + 3] = 0;
        n[r + 4] = child;
        n[r + 5] = child + pop(vecA);
        n[r + 7] = n[r + 6]! + 1;
        rec = child;
        d++;
        s = end;
        continue;
      }
      if (len > end && fresh < 0) {
        const c = this.childAt(rec, i);
        if (c >= 0) {
          rec = c;
          d++;
          s = end;
          continue;
        }
      }
      if (fresh >= 0) E.fill(fresh);
      else this.decode(rec, E);
      if (len <= end) {
        const span = 1 << (end - len);
        const first = i & ~(span - 1);
        let changed = false;
        for (let j = first; j < first + span; j++) {
          const e = E[j]!;
          if (e < 0) this.overwrite(e & ~PTR, d + 1, len, leaf);
          else if (e >>> LEN_SHIFT <= len && e !== leaf) {
            E[j] = leaf;
            changed = true;
          }
        }
        if (changed) this.encode(rec, E, false);
        return;
      }
      // E[i] is a leaf: push it down into a new child.
      fresh = E[i]!;
      E[i] = PTR | this.standalone(fresh);
      this.encode(rec, E, true);
      rec = E[i]! & ~PTR;
      d++;
      s = end;
    }
  }

  /** Record index of the child at entry i of the node at `rec`, or -1 when the entry is a leaf. */
  private childAt(rec: number, i: number): number {
    const r = rec << 3;
    const h = i >>> 5;
    const bit = 1 << i;
    const v = this.nodes[r + h]!;
    return (v & bit) === 0 ? -1 : this.nodes[r + 4 + h]! + pop(v & (bit - 1));
  }

  /** Give every entry of the subtree at `rec` owned by a prefix no longer than `len` the leaf. */
  private overwrite(rec: number, d: number, len: number, leaf: number): void {
    const E = this.rows[d]!;
    this.decode(rec, E);
    let changed = false;
    for (let j = 0; j < 64; j++) {
      const e = E[j]!;
      if (e < 0) this.overwrite(e & ~PTR, d + 1, len, leaf);
      else if (e >>> LEN_SHIFT <= len && e !== leaf) {
        E[j] = leaf;
        changed = true;
      }
    }
    if (changed) this.encode(rec, E, false);
  }

  private removeTrie(key: Uint32Array, len: number, coverLen: number, coverValue: number): void {
    const cover = coverValue < 0 ? 0 : (coverLen << LEN_SHIFT) | (coverValue + 1);
    this.deeperLeft = false;
    const T = this.topBits;
    const ti = key[0]! >>> (32 - T);
    const top = this.top;
    if (len <= T) {
      const span = 1 << (T - len);
      const first = ti & ~(span - 1);
      for (let j = first; j < first + span; j++) {
        const e = top[j]!;
        if (e < 0) {
          const rec = e & ~PTR;
          this.shrink(rec, 1, len, cover);
          if (this.uniform(rec)) top[j] = this.foldTop(rec);
        } else if (e >>> LEN_SHIFT === len) top[j] = cover;
      }
      return;
    }
    const e = top[ti]!;
    if (e >= 0) return;
    const rec = e & ~PTR;
    if (this.removeAt(rec, 1, T, key, len, cover)) top[ti] = this.foldTop(rec);
  }

  /** Returns true when the node at `rec` is now uniform. */
  private removeAt(rec: number, d: number, s: number, key: Uint32Array, len: number, cover: number): boolean {
    const E = this.rows[d]!;
    const i = this.index(key, s);
    const end = s + 6;
    if (len <= end) {
      this.decode(rec, E);
      const span = 1 << (end - len);
      const first = i & ~(span - 1);
      const r = this.shrinkEntries(E, first, first + span, d, len, cover);
      if (r !== 0) this.encode(rec, E, r === SHRUNK_FOLDED);
    } else {
      const c = this.childAt(rec, i);
      if (c >= 0 && this.removeAt(c, d + 1, end, key, len, cover)) {
        const n = this.nodes;
        const r = rec << 3;
        if (
          pop(n[r]!) + pop(n[r + 1]!) === 1 &&
          pop(n[r + 2]!) + pop(n[r + 3]!) === 1 &&
          this.leaves[n[r + 6]!] === this.leaves[n[(c << 3) + 6]!]
        ) {
          // Its only child folded into the node's only leaf run: the node is uniform now (the
          // usual case when a host route's chain folds), written straight into the record.
          this.release(c);
          this.nodeFree[1]!.push(c);
          n[r] = 0;
          n[r + 1] = 0;
          n[r + 2] = 1;
          n[r + 3] = 0;
          n[r + 4] = 0;
          n[r + 5] = 0;
          n[r + 7] = n[r + 6]! + 1;
        } else {
          this.decode(rec, E);
          E[i] = this.release(c);
          this.encode(rec, E, true);
        }
      }
    }
    if (len > 64 && s < 64 && end >= 64) this.deeperLeft = this.deeperAt(rec, key, s);
    return this.uniform(rec);
  }

  /** Entries of the subtree at `rec` owned by a prefix of exactly `len` get `cover`. */
  private shrink(rec: number, d: number, len: number, cover: number): void {
    const E = this.rows[d]!;
    this.decode(rec, E);
    const r = this.shrinkEntries(E, 0, 64, d, len, cover);
    if (r !== 0) this.encode(rec, E, r === SHRUNK_FOLDED);
  }

  /**
   * Decoded entries E[from..to) of a node at depth d: those owned by a prefix of exactly `len`
   * get `cover`, children are shrunk the same way and folded when uniform. Returns 0 (nothing
   * changed), SHRUNK (leaves changed) or SHRUNK_FOLDED (a child folded too).
   */
  private shrinkEntries(E: Int32Array, from: number, to: number, d: number, len: number, cover: number): number {
    let r = 0;
    for (let j = from; j < to; j++) {
      const e = E[j]!;
      if (e < 0) {
        const c = e & ~PTR;
        this.shrink(c, d + 1, len, cover);
        if (this.uniform(c)) {
          E[j] = this.release(c);
          r = SHRUNK_FOLDED;
        }
      } else if (e >>> LEN_SHIFT === len) {
        E[j] = cover;
        if (r === 0) r = SHRUNK;
      }
    }
    return r;
  }

  private uniform(rec: number): boolean {
    const r = rec << 3;
    const n = this.nodes;
    return n[r] === 0 && n[r + 1] === 0 && pop(n[r + 2]!) + pop(n[r + 3]!) === 1;
  }

  /** Free a uniform node's leaf block (its record lives in its parent's block); returns its leaf. */
  private release(rec: number): number {
    const r = rec << 3;
    const leaf = this.leaves[this.nodes[r + 6]!]!;
    this.freeLeaves(this.nodes[r + 6]!, 1);
    this.live--;
    return leaf;
  }

  private foldTop(rec: number): number {
    const leaf = this.release(rec);
    this.nodeFree[1]!.push(rec);
    return leaf;
  }

  /** A new node (own one-record block) whose 64 entries are all `leaf`. */
  private standalone(leaf: number): number {
    const rec = this.allocNodes(1);
    const lb = this.allocLeaves(1);
    this.leaves[lb] = leaf;
    const r = rec << 3;
    const n = this.nodes;
    n[r] = 0;
    n[r + 1] = 0;
    n[r + 2] = 1;
    n[r + 3] = 0;
    n[r + 4] = 0;
    n[r + 5] = 0;
    n[r + 6] = lb;
    n[r + 7] = lb + 1;
    this.live++;
    this.temp = rec;
    return rec;
  }

  /** Expand the node at `rec` into E: PTR | child record, or the leaf. */
  private decode(rec: number, E: Int32Array): void {
    const n = this.nodes;
    const leaves = this.leaves;
    const r = rec << 3;
    // Leaf runs first (a run starts at each leafvec bit and lasts to the next one; children
    // inside a run are written over it next), then the children (few) in bit order.
    let li = n[r + 6]!;
    // Before the first run start there are only children: any value will do.
    let cur = n[r + 2]! === 0 && n[r + 3]! === 0 ? 0 : leaves[li]!;
    let start = 0;
    for (let h = 0; h < 2; h++) {
      let lv = n[r + 2 + h]!;
      while (lv !== 0) {
        const low = lv & -lv;
        const at = (h << 5) | (31 - Math.clz32(low));
        if (at > start) E.fill(cur, start, at);
        cur = leaves[li++]!;
        start = at;
        lv ^= low;
      }
    }
    E.fill(cur, start, 64);
    let child = n[r + 4]!;
    for (let h = 0; h < 2; h++) {
      let v = n[r + h]!;
      while (v !== 0) {
        const low = v & -v;
        E[(h << 5) | (31 - Math.clz32(low))] = PTR | child++;
        v ^= low;
      }
    }
  }

  /**
   * Write E back as the node at `rec`. With `childrenChanged`, the children block is rebuilt from
   * the records E points at (E is updated to the new positions).
   */
  private encode(rec: number, E: Int32Array, childrenChanged: boolean): void {
    const runs = this.runs;
    let vecA = 0;
    let vecB = 0;
    let leafA = 0;
    let leafB = 0;
    let nc = 0;
    let nl = 0;
    let prev = -1;
    for (let i = 0; i < 64; i++) {
      const e = E[i]!;
      if (e < 0) {
        if (i < 32) vecA |= 1 << i;
        else vecB |= 1 << i;
        nc++;
      } else if (e !== prev) {
        if (i < 32) leafA |= 1 << i;
        else leafB |= 1 << i;
        runs[nl++] = e;
        prev = e;
      }
    }
    let r = rec << 3;
    let n = this.nodes;
    let lb = n[r + 6]!;
    const oldNl = pop(n[r + 2]!) + pop(n[r + 3]!);
    if (nl !== oldNl) {
      const nb = this.allocLeaves(nl);
      this.freeLeaves(lb, oldNl);
      lb = nb;
    }
    const leaves = this.leaves;
    for (let k = 0; k < nl; k++) leaves[lb + k] = runs[k]!;
    n = this.nodes;
    let cb = n[r + 4]!;
    if (childrenChanged) {
      const oldNc = pop(n[r]!) + pop(n[r + 1]!);
      const oldCb = cb;
      cb = nc > 0 ? this.allocNodes(nc) : 0;
      n = this.nodes;
      let k = cb;
      for (let i = 0; i < 64; i++) {
        const e = E[i]!;
        if (e >= 0) continue;
        const src = e & ~PTR;
        n.copyWithin(k << 3, src << 3, (src << 3) + 8);
        E[i] = PTR | k;
        if (src === this.temp) {
          this.nodeFree[1]!.push(src);
          this.temp = -1;
        }
        k++;
      }
      if (oldNc > 0) this.nodeFree[oldNc]!.push(oldCb);
    }
    r = rec << 3;
    n[r] = vecA;
    n[r + 1] = vecB;
    n[r + 2] = leafA;
    n[r + 3] = leafB;
    n[r + 4] = cb;
    n[r + 5] = cb + pop(vecA);
    n[r + 6] = lb;
    n[r + 7] = lb + pop(leafA);
  }

  private allocNodes(count: number): number {
    const f = this.nodeFree[count]!;
    if (f.length > 0) return f.pop()!;
    const at = this.nodeHigh;
    this.nodeHigh += count;
    if (this.nodeHigh * 8 > this.nodes.length) {
      const bigger = new Int32Array(Math.max(this.nodes.length * 2, this.nodeHigh * 8));
      bigger.set(this.nodes);
      this.nodes = bigger;
    }
    return at;
  }

  private allocLeaves(count: number): number {
    const f = this.leafFree[count]!;
    if (f.length > 0) return f.pop()!;
    const at = this.leafHigh;
    this.leafHigh += count;
    if (this.leafHigh > this.leaves.length) {
      const bigger = new Int32Array(Math.max(this.leaves.length * 2, this.leafHigh));
      bigger.set(this.leaves);
      this.leaves = bigger;
    }
    return at;
  }

  private freeLeaves(at: number, count: number): void {
    if (count > 0) this.leafFree[count]!.push(at);
  }
}
