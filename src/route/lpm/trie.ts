/**
 * Longest-prefix match over IPv4 or IPv6 keys: a multibit trie (controlled prefix expansion) whose
 * nodes live in typed arrays (Int32Array), with incremental add/remove and allocation-free lookup straight out
 * of a packet buffer.
 *
 * A trie has a fixed stride schedule: level i consumes `strides[i]` bits (4, 8, 16 or 24; a level
 * never crosses a 32-bit word of the key, nor a byte unless it is 16/24 bits and byte-aligned).
 * Every node of level i is 2^stride Uint32 entries in that level's pool. An entry is either
 *   - a leaf: bit 31 clear, bits 23..30 = length of the prefix that owns it (0..128),
 *     bits 0..22 = value + 1 (0 = no prefix), or
 *   - a pointer: bit 31 set, bits 0..30 = index of the child node in the next level's pool.
 * A prefix ending inside a level is expanded over the 2^(end-len) entries it covers; an entry is
 * overwritten by a prefix at least as long as its owner (so longer prefixes survive shorter
 * ones arriving later), pushed down into existing children the same way. Removal rewrites the
 * entries the prefix owns with its covering prefix (the caller tells which: it keeps the exact
 * prefix index) and folds children that became uniform back into their parent entry.
 * DIR-24-8 is the schedule [24, 8]; the lookup for that schedule is specialised.
 *
 * Why these structures (bench/route.bench.ts, per CPU second, best of 3, on the shared 2-core
 * EPYC VM (L2 1 MiB/core, L3 32 MiB shared, 4 KiB pages: no huge pages from JS); figures swing
 * 2x between runs with the other work on the machine, so the bench prints every run and a
 * calibration row):
 * - IPv4: DIR-24-8 ([24, 8], this file) answers in one load (two for the rare > /24). Over 1M
 *   prefixes: 20-26 M/s random, 18-22 M/s in-table, 105-120 M/s on 4096 hot destinations; the
 *   calibration (a bare random read of a 64 MiB Uint32Array, same addresses, same run) measured
 *   21-45 M/s, so it runs at the memory ceiling of a one-load 64 MiB table here. Build 1M in
 *   1.2-1.4 s, /32 and /24 updates 210-270k/s and 370-510k/s. Small tables use [16,8,8] (256 KiB
 *   root) and switch to DIR-24-8 at 16k IPv4 prefixes.
 *   Tried and lost: a Poptrie for IPv4 (poptrie.ts, same 1M table, separate processes): 17 MB
 *   instead of 64 MB, but 8-10 M/s random, 7-8 M/s in-table, 45-67 M/s hot with an 18-bit top
 *   (3-4 M/s in-table with a 16-bit top, 6 M/s with 20): three dependent loads (top, node,
 *   leaf) each missing L2 cost more than one independent miss into 64 MiB, and the popcount
 *   work doubles the hot-path cost. A batch call that issues all first-level loads of 64
 *   addresses before using them: 24-25 M/s in-table vs 20 M/s one by one (dropped: not better
 *   than four lookups written side by side in the caller's loop, which measured 41-46 M/s
 *   straight on the trie, 18-26 M/s through RouteTable.lookup4 in the bench: V8 inlines less
 *   through the extra call). Pools as direct fields (d0/d1) instead of pools[i]: one load less.
 *   Tried next (second session, same 1M table, separate processes, ranges over runs) and lost:
 *   - Huge pages: GLIBC_TUNABLES=glibc.malloc.hugetlb=1 gives the 64 MiB array 2 MiB pages
 *     (AnonHugePages 65536 kB) and the same random-read rate (27-29 vs 31-32 M/s): under the
 *     VM's nested paging the host's pages decide. Random reads by array size, one process:
 *     4 MiB 123-248 M/s, 8 MiB 95-274, 16 MiB 32-52, 32-64 MiB 28-33. So a table that fits in
 *     ~8 MiB could be fast, one of 16 MiB or more cannot.
 *   - Compressed copies of the DIR-24-8 for lookups, re-encoded per /16 after each update (the
 *     1M table has 55.9k non-uniform /16s, 1.70M runs of equal entries, 1.03M (/16, route) pairs):
 *     (a) per /16 8 groups of [32-bit run bitmap, base] + Int32 runs (popcount of the bitmap
 *     gives the run): 20 MiB, 17-23 M/s vs 17-20 for DIR-24-8 in the same process; (b) the same
 *     with each /16's groups and runs in one block: 14.5 MB, 14-20 M/s; (c) blocks of bitmaps,
 *     Uint8 run -> local id and Int32 route ids, 8.3 MB in all: 8-16 M/s random, 7-28 in-table
 *     (DIR-24-8: 19-25 / 19-26), and 47 M/s on 4096 hot destinations where DIR-24-8 gives
 *     109-114. The decoding (popcount, byte indices, three dependent loads) costs ~20 ns per
 *     lookup in JS with every line cached, so a compressed layout cannot reach 50 M/s here
 *     either; the access pattern alone (three dependent loads inside a block of an 8 MiB array,
 *     no decoding) measured 50-67 M/s. Not kept: DIR-24-8 stays, memory-bound at 19-30 M/s
 *     one by one and up to ~40 batched on this VM.
 * - IPv6 (200k internet-like prefixes): a Poptrie (poptrie.ts) with an 18-bit direct top level:
 *   21 MB (the stride trie below took 83 MB), random addresses 40-46 M/s (was 11-21), in-table
 *   1.7-2.5 M/s (was 1.0-1.4), 4096 hot destinations 11-12.5 M/s (was 1.4-1.9), build 0.9-1.0 s,
 *   /64 updates 190-236k/s (was 177-229k), /128 updates 104-109k/s (was 53-61k). In-table
 *   addresses walk top + 5 nodes + a leaf (/48s sit at bits 42-47), each a likely L2+TLB miss in
 *   a 21 MB structure (about 70 ns each here, measured by shrinking the destination set: 30 M/s
 *   on 16 destinations, 12 M/s on 4096, 2 M/s on 64k): that, not compute, keeps a single walk
 *   below the 10 M/s goal. Top levels of 16/20/24 bits measured the same in-table (1.5-2.1 M/s;
 *   24 bits costs 64 MB). Four walks side by side in the loop do not overlap (1.5-2.1 M/s: the
 *   data-dependent loop exits stop the CPU running ahead); the batch call lookupMany (16 walks
 *   advanced level by level in lock-step) reaches 2.5-3.4 M/s.
 *   The stride schedule below (16-bit root, 8-bit levels to /32, 4-bit levels to /64, 8-bit
 *   after) stays available: it was the IPv6 structure before the Poptrie.
 * - Batch lookups (RouteTable.lookupBatch4/6, Router.lookupBatch; bursts of 32, as DPDK/VPP
 *   route a burst of packets), same runs, figures swinging up to 2x with the load of the shared
 *   machine (the calibration row itself ranged 12-43 M/s between runs):
 *   IPv4: the DIR-24-8 walk inlined in table.ts in three passes (indices; a tight gather of the
 *   first-level entries; the rare second level): 39-40 M/s random, 23 M/s in-table in the bench
 *   (30-45 both in a process holding only the IPv4 table) vs 16-25 one by one. Eight lookups
 *   written side by side per iteration: 28-32 M/s; four: 25-29 (more code per load, fewer loads
 *   in flight). A bare gather from a precomputed index array reaches 48-50 M/s on 64 MiB, 63-73
 *   on 16-32 MiB: the 50 M/s goal sits at this VM's ceiling for any one-miss-per-lookup table.
 *   IPv6: a hash of the /48 prefixes (the dominant length; 4 Int32 per slot: key, value, "longer
 *   prefixes below" flag kept from the trie) answers an address inside a /48 with nothing longer
 *   below in one probe. It is probed only after the first node level, so addresses that end
 *   there (most addresses outside the table) do not pay it: probing it first took random
 *   lookups from 40 to 10-17 M/s. Single in-table 1.5-2.2 -> 2.1-3.4 M/s; lookupMany rewritten
 *   as branch-free gathers per level then a decision pass (and the hash probe in between):
 *   batch in-table 2.3-2.7 -> 3.0-5.4 M/s, random 19-29 M/s. Cost: +4 MB (IPv6 21 -> 25 MB).
 *   Still short of 10 M/s in-table: the 45% of in-table addresses outside a /48 walk 6 levels,
 *   and each level costs ~10 ns of JS work even when cached (4096 hot destinations: 12-17 M/s).
 *   Where the time goes (scratch runs, same 200k table, 1M in-table addresses): addresses under
 *   a /48 (55%) answer at 12 M/s single (top + first node + one hash probe, ~80 ns); the other
 *   45% at 1.3 M/s (/32: 2.9, /40-/44: 1.4): every further level is a load into the 25 MB pool
 *   that costs ~130 ns on this VM (TLB misses under nested paging; no huge pages from JS), and
 *   the batch call gets little overlap out of them (hot batch 14 M/s: its own JS work caps it).
 *   Tried next and lost (not kept):
 *   - A jump hash from the first 30 bits to the node at bit 30 (40k entries, 1 MB), probed with
 *     the /48 hash: batch in-table 3.8 -> 4.0-5.1 M/s, batch random 26 -> 9 M/s; with jumps to
 *     the nodes at bits 30, 36 and 42 (330k entries, 16 MB) probed together: single in-table
 *     2.6 -> 2.8-3.0 M/s. Too little for the upkeep (node records move when a parent's
 *     children block is rebuilt).
 *   - Keeping /48s without longer prefixes out of the trie (hash only): 388k -> 172k nodes,
 *     25 -> 15 MB, in-table 2.2-2.6 -> 2.6-3.1 M/s single, 3.3-3.5 -> 3.6-4.3 batch.
 *   - Linear search on lengths with all probes issued together (one hash of the 174k prefixes
 *     longer than /32, 8 MB, 8 probes; a 3.5 MB Poptrie of the rest): in-table 2.4-3.1 M/s,
 *     random 36 -> 2.4-2.8 M/s.
 *   So the 10 M/s in-table goal needs an in-table lookup to cost about one such miss: a layout
 *   where a whole /32 allocation's subtree (nodes and leaves) sits in one or two pages, not a
 *   cleverer index in front of the same scattered pool.
 *   What met it (second session; details and figures in the poptrie.ts note): /32 buckets
 *   (v6-bucket.ts), one small block per /32 listing its prefixes /33-/64 longest first, behind
 *   a 64 KB presence filter and a 256 KB index (~2.5 MB in all), probed before the trie walk,
 *   plus a small trie of the prefixes shorter than /32; they replace the /48 hash. Route bench,
 *   old and new alternating: in-table single 2.6-2.7 -> 12.8-15.8 M/s, batch 3.3-3.6 ->
 *   12.6-14.2; random unchanged (23-38); /128 updates 130-147 -> 116-130 k/s, /64 251-294 ->
 *   212-217.
 * - Updates: IPv6 removal finds the covering prefix from the sibling half's longest match (one
 *   trie walk) instead of a hash probe per populated length; a host route's fresh chain is
 *   written record by record (no 64-entry decode/encode per level) and folds the same way.
 *   /128 updates through Router with 1M IPv4 + 200k IPv6 routes: first (cold) round 66-85k ->
 *   129-133k/s, warm rounds 85-113k -> 184-243k/s; /64 140-233k -> 200-334k/s.
 * - Int32Array pools: pointer entries use the sign bit so loads stay small integers in V8.
 */

/** Pointer flag of an entry (the sign bit: pools are Int32Array so entries stay small integers). */
const PTR = 0x80000000 | 0;
const VALUE_MASK = 0x7fffff;
const DEPTH_SHIFT = 23;
/** Largest value a trie can store (route ids are below this). */
export const MAX_TRIE_VALUE = VALUE_MASK - 1;

/** DIR-24-8. */
export const V4_STRIDES_LARGE: readonly number[] = [24, 8];
/** Small IPv4 tables: 256 KiB root. */
export const V4_STRIDES_SMALL: readonly number[] = [16, 8, 8];
/**
 * IPv6: 16-bit root, 8-bit levels to /32 (allocations are dense there), 4-bit levels from /32 to
 * /64 (the /48 population lives here and is sparse: 64-byte nodes keep it small), then 8-bit
 * levels to /128 (host routes are few).
 */
export const V6_STRIDES: readonly number[] = [16, 8, 8, 4, 4, 4, 4, 4, 4, 4, 4, 8, 8, 8, 8, 8, 8, 8, 8];
/** IPv6 tables are Poptries (poptrie.ts) with this many bits in the direct-pointing top level. */
export const V6_TOP_BITS = 18;

/** How a level's index is read from the address bytes. */
const K16 = 0;
const K8 = 1;
const KHI = 2;
const KLO = 3;
const K24 = 4;

export class StrideTrie {
  readonly bits: number;
  readonly strides: readonly number[];
  private readonly starts: number[];
  /** Per level: the node pool. Level 0 holds exactly one node. */
  private readonly pools: Int32Array[];
  /** Per level: nodes handed out (high-water mark). */
  private readonly tops: number[];
  private readonly free: number[][];
  /** Per level: byte offset of the level's bits within the address, and how to read them. */
  private readonly lvByte: Uint8Array;
  private readonly lvKind: Uint8Array;
  /** True for the DIR-24-8 schedule ([24, 8] over 32 bits): d0/d1 below are its two levels. */
  readonly dir24: boolean;
  /**
   * DIR-24-8 only: the two pools as direct fields (one load less per lookup than pools[i]). Read
   * by batch lookups that inline the walk (table.ts); d1 is replaced when it grows, so read it
   * again per batch, never keep it.
   */
  d0: Int32Array;
  d1: Int32Array;
  /** Number of prefixes inserted (maintained by the caller's add/remove pairing). */
  prefixes = 0;

  constructor(bits: 32 | 128, strides: readonly number[]) {
    let sum = 0;
    this.starts = [];
    for (const k of strides) {
      if (![4, 8, 16, 24].includes(k)) throw new Error(`unsupported stride ${k}`);
      if ((sum & 31) + k > 32) throw new Error(`stride ${k} at bit ${sum} crosses a 32-bit word`);
      if (k >= 8 && sum % 8 !== 0) throw new Error(`stride ${k} at bit ${sum} is not byte aligned`);
      this.starts.push(sum);
      sum += k;
    }
    if (sum !== bits) throw new Error(`strides add up to ${sum}, not ${bits}`);
    this.bits = bits;
    this.strides = strides.slice();
    this.pools = strides.map((k, i) => new Int32Array(i === 0 ? 1 << k : (1 << k) * 16));
    this.tops = strides.map((_, i) => (i === 0 ? 1 : 0));
    this.free = strides.map(() => []);
    this.lvByte = new Uint8Array(strides.length);
    this.lvKind = new Uint8Array(strides.length);
    strides.forEach((k, i) => {
      const s = this.starts[i]!;
      this.lvByte[i] = s >> 3;
      this.lvKind[i] = k === 24 ? K24 : k === 16 ? K16 : k === 8 ? K8 : s % 8 === 0 ? KHI : KLO;
    });
    this.dir24 = bits === 32 && strides.length === 2 && strides[0] === 24;
    this.d0 = this.pools[0]!;
    this.d1 = this.pools[1] ?? this.d0;
  }

  /** Bytes held by the node pools. */
  byteSize(): number {
    let n = 0;
    for (const p of this.pools) n += p.byteLength;
    return n;
  }

  /** Nodes in use per level (for diagnostics and benches). */
  nodeCounts(): number[] {
    return this.tops.map((t, i) => t - this.free[i]!.length);
  }

  private index(key: Uint32Array, level: number): number {
    const s = this.starts[level]!;
    const k = this.strides[level]!;
    return (key[s >>> 5]! >>> (32 - (s & 31) - k)) & ((1 << k) - 1);
  }

  private alloc(level: number, fill: number): number {
    const size = 1 << this.strides[level]!;
    let node = this.free[level]!.pop();
    if (node === undefined) {
      node = this.tops[level]!++;
      let pool = this.pools[level]!;
      if ((node + 1) * size > pool.length) {
        const bigger = new Int32Array(pool.length * 2);
        bigger.set(pool);
        this.pools[level] = pool = bigger;
        if (level === 1) this.d1 = bigger;
      }
    }
    this.pools[level]!.fill(fill, node * size, (node + 1) * size);
    return node;
  }

  /**
   * Set `key/len` to `value` (0 <= value <= MAX_TRIE_VALUE). Setting an existing prefix again
   * replaces its value.
   */
  insert(key: Uint32Array, len: number, value: number): void {
    const leaf = (len << DEPTH_SHIFT) | (value + 1);
    let level = 0;
    let node = 0;
    for (;;) {
      const k = this.strides[level]!;
      const end = this.starts[level]! + k;
      const base = node * (1 << k);
      const i = this.index(key, level);
      if (len <= end) {
        const span = 1 << (end - len);
        const first = i & ~(span - 1);
        this.expand(level, base + first, span, len, leaf);
        return;
      }
      const pool = this.pools[level]!;
      const e = pool[base + i]!;
      if (e & PTR) {
        node = e & ~PTR;
      } else {
        const child = this.alloc(level + 1, e);
        this.pools[level]![base + i] = PTR | child;
        node = child;
      }
      level++;
    }
  }

  /** Write `leaf` over entries [from, from+count) of `level` owned by prefixes no longer than len. */
  private expand(level: number, from: number, count: number, len: number, leaf: number): void {
    const pool = this.pools[level]!;
    for (let j = from; j < from + count; j++) {
      const e = pool[j]!;
      if (e & PTR) {
        const child = e & ~PTR;
        const size = 1 << this.strides[level + 1]!;
        this.expand(level + 1, child * size, size, len, leaf);
      } else if (e >>> DEPTH_SHIFT <= len) {
        pool[j] = leaf;
      }
    }
  }

  /**
   * Remove `key/len`: its entries go back to `coverLen`/`coverValue` (the longest shorter prefix
   * present, or coverValue -1 for none). Children that become uniform fold into their parent.
   */
  remove(key: Uint32Array, len: number, coverLen: number, coverValue: number): void {
    const cover = coverValue < 0 ? 0 : (coverLen << DEPTH_SHIFT) | (coverValue + 1);
    this.removeAt(0, 0, key, len, cover);
  }

  /** Returns true when node `node` of `level` is now uniform (all entries the same leaf). */
  private removeAt(level: number, node: number, key: Uint32Array, len: number, cover: number): boolean {
    const k = this.strides[level]!;
    const size = 1 << k;
    const end = this.starts[level]! + k;
    const base = node * size;
    const i = this.index(key, level);
    if (len <= end) {
      const span = 1 << (end - len);
      const first = i & ~(span - 1);
      this.shrink(level, base + first, span, len, cover);
    } else {
      const e = this.pools[level]![base + i]!;
      if (e & PTR) {
        const child = e & ~PTR;
        if (this.removeAt(level + 1, child, key, len, cover)) this.fold(level, base + i, child);
      }
    }
    return level > 0 && this.uniform(level, base, size);
  }

  private shrink(level: number, from: number, count: number, len: number, cover: number): void {
    const pool = this.pools[level]!;
    for (let j = from; j < from + count; j++) {
      const e = pool[j]!;
      if (e & PTR) {
        const child = e & ~PTR;
        const size = 1 << this.strides[level + 1]!;
        this.shrink(level + 1, child * size, size, len, cover);
        if (this.uniform(level + 1, child * size, size)) this.fold(level, j, child);
      } else if (e >>> DEPTH_SHIFT === len) {
        pool[j] = cover;
      }
    }
  }

  private uniform(level: number, base: number, size: number): boolean {
    const pool = this.pools[level]!;
    const first = pool[base]!;
    if (first & PTR) return false;
    for (let j = base + 1; j < base + size; j++) if (pool[j] !== first) return false;
    return true;
  }

  /** Replace the pointer at pools[level][slot] by the (uniform) child's leaf; free the child. */
  private fold(level: number, slot: number, child: number): void {
    const size = 1 << this.strides[level + 1]!;
    this.pools[level]![slot] = this.pools[level + 1]![child * size]!;
    this.free[level + 1]!.push(child);
  }

  /** Longest match for a key given as words (tests, control plane). Returns value or -1. */
  lookupKey(key: Uint32Array): number {
    let level = 0;
    let node = 0;
    for (;;) {
      const k = this.strides[level]!;
      const e = this.pools[level]![node * (1 << k) + this.index(key, level)]!;
      if ((e & PTR) === 0) return (e & VALUE_MASK) - 1;
      node = e & ~PTR;
      level++;
    }
  }

  /** Longest match for the IPv4 address at buf[off..off+4). Returns value or -1. */
  lookup4(buf: Uint8Array, off: number): number {
    if (this.dir24) {
      let e = this.d0[(buf[off]! << 16) | (buf[off + 1]! << 8) | buf[off + 2]!]!;
      if (e & PTR) e = this.d1[((e & ~PTR) << 8) | buf[off + 3]!]!;
      return (e & VALUE_MASK) - 1;
    }
    return this.lookupBytes(buf, off);
  }

  /** Longest match for the address at buf[off..off+bits/8). Returns value or -1. */
  lookupBytes(buf: Uint8Array, off: number): number {
    const pools = this.pools;
    const kinds = this.lvKind;
    const bytes = this.lvByte;
    let level = 0;
    let node = 0;
    for (;;) {
      const o = off + bytes[level]!;
      let i: number;
      let shift: number;
      switch (kinds[level]) {
        case K16:
          i = (buf[o]! << 8) | buf[o + 1]!;
          shift = 16;
          break;
        case K8:
          i = buf[o]!;
          shift = 8;
          break;
        case KHI:
          i = buf[o]! >>> 4;
          shift = 4;
          break;
        case KLO:
          i = buf[o]! & 15;
          shift = 4;
          break;
        default:
          i = (buf[o]! << 16) | (buf[o + 1]! << 8) | buf[o + 2]!;
          shift = 24;
      }
      const e = pools[level]![node * (1 << shift) + i]!;
      if ((e & PTR) === 0) return (e & VALUE_MASK) - 1;
      node = e & ~PTR;
      level++;
    }
  }
}
