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
 * Why this structure (bench/route.bench.ts, per CPU second, on the shared 2-core EPYC VM with a
 * load average of 10-13 from other work, so absolute figures are depressed and noisy):
 * - IPv4: DIR-24-8 ([24, 8]) answers in one load (two for the rare > /24): 15.5 M/s random and
 *   12.8 M/s in-table addresses over 1M prefixes, 38 M/s on 4096 hot destinations; a bare random
 *   read of a 64 MiB Uint32Array measured 23.6 M/s in the same run, so it runs at the memory
 *   ceiling of any 64 MiB table here. Build 1M in 2.1 s, /32 and /24 updates 213k/s and 250k/s.
 *   Small tables use [16,8,8] (256 KiB root) and switch to DIR-24-8 at 16k IPv4 prefixes.
 * - IPv6 (200k internet-like prefixes): the stride-8 schedule [16,8,...] took 368 MB (a 1 KiB
 *   node per sparse /40), over budget; this schedule (16-bit root, 8-bit levels to /32, 4-bit
 *   levels to /64, 8-bit after) takes 82 MB and 1.0 s to build, /64 updates 177k/s. All
 *   schedules measured the same in-table rate (~1-1.7 M/s, memory-latency bound: 6-7 dependent
 *   misses); random addresses 9 M/s (they end at the root). A compressed layout (Poptrie-style
 *   bitmaps + popcount, whole table in a few MB, cache resident) is the way to the 10 M/s goal.
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
  private readonly dir24: boolean;
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
      let e = this.pools[0]![(buf[off]! << 16) | (buf[off + 1]! << 8) | buf[off + 2]!]!;
      if (e & PTR) e = this.pools[1]![((e & ~PTR) << 8) | buf[off + 3]!]!;
      return (e & VALUE_MASK) - 1;
    }
    return this.lookupBytes(buf, off);
  }

  /**
   * Longest matches for `n` addresses at buf[offs[k]..] into out[k] (value or -1). DIR-24-8 issues
   * all first-level loads of a batch before using any (they are independent, so their cache and
   * TLB misses overlap); other schedules loop over lookupBytes.
   */
  lookupMany(buf: Uint8Array, offs: Int32Array, n: number, out: Int32Array): void {
    if (!this.dir24) {
      for (let k = 0; k < n; k++) out[k] = this.lookupBytes(buf, offs[k]!);
      return;
    }
    const p0 = this.pools[0]!;
    const p1 = this.pools[1]!;
    for (let k = 0; k < n; k++) {
      const off = offs[k]!;
      out[k] = p0[(buf[off]! << 16) | (buf[off + 1]! << 8) | buf[off + 2]!]!;
    }
    for (let k = 0; k < n; k++) {
      let e = out[k]!;
      if (e & PTR) e = p1[((e & ~PTR) << 8) | buf[offs[k]! + 3]!]!;
      out[k] = (e & VALUE_MASK) - 1;
    }
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
