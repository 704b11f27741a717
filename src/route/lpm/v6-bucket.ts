/**
 * The /32 bucket fast path of the IPv6 Poptrie (poptrie.ts): for every /32 under which the trie
 * holds prefixes of length 32..128, one small contiguous block listing those prefixes' bits 32-63,
 * so an address inside the table is answered by one index probe and a scan of a few Int32 in one
 * or two cache lines, instead of the 5-7 dependent loads of a Poptrie walk into a 25 MB pool.
 *
 * Layout (Int32Arrays, small so the fast path stays cached: for the 200k-prefix bench table 40k
 * buckets, 174k entries, index 256 KB + filter 64 KB + blocks 2 MB in use of a 4 MB pool):
 * - `index`: open addressing, linear probing, one Int32 per slot: (tag << 22) | block offset,
 *   0 = empty. h = imul(key, 0x9e3779b1) (the key is the /32's bits 0-31); the home slot is
 *   h >>> shift, the tag the next 10 bits of h. Load <= 3/4 (64k slots, 256 KB, for 40k
 *   buckets), and a presence filter in front of it (`filter`).
 * - `pool`: blocks [key, count | capacity << 16, base, bits_0, word_0, bits_1, word_1, ...]
 *   (capacity 2, 4, 6, ... entries; one free list per capacity; offsets below 2^22):
 *   base  = the trie leaf ((length << 23) | (value + 1)) of the longest prefix of length <= 32
 *           covering the /32, 0 for none;
 *   entry = a prefix of length 33..64: bits = its bits 32-63 (masked), word = (64 - len) << 24 |
 *           (value + 1); or a marker for prefixes longer than /64: bits = bits 32-63 of the /64
 *           above them, word = BK_MARK (an address inside that /64 must take the trie walk).
 *   Entries are sorted longest first (markers, then /64, /63, ... /33), so the first entry with
 *   ((a ^ bits) >>> (word >>> 24)) === 0 (a = the address's bits 32-63) is the longest match
 *   among lengths 33..64: its value, or for a marker "ask the trie"; no entry matching: the base.
 *   Buckets with more than BK_SCAN_MAX entries are kept but not scanned (the trie answers);
 *   past CAP_MAX entries a bucket overflows (count BK_OVERFLOW, entries no longer kept).
 * Lookups read `index`/`pool` directly (inlined in poptrie.ts); both arrays are replaced when they
 * grow, so read them again per call.
 *
 * Updates mirror the trie's insert(key, len, value) / remove(key, len, cover): a bucket holds the
 * exact set of prefixes 33..64 under its /32 (a repeated insert replaces the value), one marker
 * per /64 that has longer prefixes below it (on removal the trie tells whether any is left), and
 * a base kept as the trie keeps its leaves: a prefix of length <= 32 set over the /32 replaces a
 * base no longer than itself, its removal puts its cover back. A bucket exists while it holds
 * entries or a /32 prefix.
 */

/** Entry word: shift (64 - prefix length) in bits 24-28, payload in bits 0-23. */
export const BK_SHIFT = 24;
/** Payload of a marker entry (prefixes longer than /64 below this /64: take the trie walk). */
export const BK_MARK = 0x800000;
/** Entry count bits of a block's count word (the block's capacity is above them). */
export const BK_COUNT = 0xffff;
/** Buckets with more entries than this are not scanned by lookups (they take the trie walk). */
export const BK_SCAN_MAX = 32;
/** Block offset bits of an index slot (a tag above them). */
export const BK_OFFSET = 0x3fffff;
/** Bits of the tag in an index slot. */
export const BK_TAG_BITS = 10;
/** Multiplier of the index hash. */
export const BK_HASH = 0x9e3779b1 | 0;
/** Block layout: key, count | capacity << 16, base, then the entries. */
export const BK_KEY = 0;
export const BK_CNT = 1;
export const BK_BASE = 2;
export const BK_ENTRIES = 3;
const INDEX_MIN = 1024;
/** Base word: (prefix length << 23) | (value + 1), as a trie leaf. */
const BASE_LEN_SHIFT = 23;
/**
 * Largest capacity of a block (entries). A /32 that would hold more overflows: its count reads
 * BK_OVERFLOW from then on (lookups under it walk the trie; its entries are no longer kept, so
 * it stays so while it exists), instead of ever longer scans and O(n) inserts.
 */
const CAP_MAX = 4096;
/** Count of an overflowed bucket. */
export const BK_OVERFLOW = 0xffff;

export class V6Buckets {
  /** (tag << 22) | block offset per slot; see the file comment. */
  index: Int32Array;
  /** 32 - log2(slots). */
  shift: number;
  /** Blocks; offset 0 is reserved. */
  pool: Int32Array;
  /**
   * Presence filter, 8-16 bits per bucket: bit (h >>> fshift) is set when a bucket's key has
   * that hash prefix (bits of dropped buckets are cleared by the next rebuild). An address
   * outside every bucket (e.g. a random one) usually stops at this small bitmap (64 KB for 40k
   * buckets) instead of walking an index probe run to an empty slot (~4 slots at load 0.6).
   */
  filter: Int32Array;
  /** 32 - log2(filter bits). */
  fshift: number;
  /** Buckets in use. */
  used = 0;
  private dropped = 0;
  /**
   * Set when the pool outgrows the 22-bit block offsets (16 MB: tables far beyond today's ~200k
   * IPv6 prefixes): the owner must stop using this structure (it is no longer complete).
   */
  full = false;
  private poolHigh = 1;
  /** Free blocks by capacity. */
  private readonly free: number[][] = [];

  /**
   * `cover32(w0)`: the base of a new bucket, from the trie: the leaf of the longest prefix of
   * length <= 32 covering /32 w0, 0 for none (or when longer prefixes cover the whole /32: no
   * address reaches the base then, and removals of those prefixes put their cover there).
   */
  constructor(private readonly cover32: (w0: number) => number) {
    this.index = new Int32Array(INDEX_MIN);
    this.shift = 32 - Math.log2(INDEX_MIN);
    this.pool = new Int32Array(16 * 1024);
    this.filter = new Int32Array(1 << 10);
    this.fshift = 17;
  }

  /** A filter of 8-16 bits per bucket (at least 2^15 bits), from the index. */
  private rebuildFilter(): void {
    const bits = Math.min(27, Math.max(15, 32 - Math.clz32(Math.max(1, this.used) * 8 - 1)));
    const F = this.filter.length === 1 << (bits - 5) ? this.filter.fill(0) : new Int32Array(1 << (bits - 5));
    const fshift = 32 - bits;
    const I = this.index;
    for (let j = 0; j < I.length; j++) {
      if (I[j] === 0) continue;
      const pos = Math.imul(this.pool[I[j]! & BK_OFFSET]!, BK_HASH) >>> fshift;
      F[pos >>> 5] |= 1 << (pos & 31);
    }
    this.filter = F;
    this.fshift = fshift;
    this.dropped = 0;
  }

  byteSize(): number {
    return this.index.byteLength + this.pool.byteLength + this.filter.byteLength;
  }

  /** Block offset of the bucket of /32 `w0`, 0 when there is none. */
  find(w0: number): number {
    w0 |= 0;
    const I = this.index;
    const mask = I.length - 1;
    const h = Math.imul(w0, BK_HASH);
    const tag = (h >>> (this.shift - BK_TAG_BITS)) & ((1 << BK_TAG_BITS) - 1);
    for (let j = h >>> this.shift; ; j = (j + 1) & mask) {
      const x = I[j]!;
      if (x === 0) return 0;
      if (x >>> 22 === tag && this.pool[x & BK_OFFSET] === w0) return x & BK_OFFSET;
    }
  }

  /**
   * Set prefix (w0, w1)/len to `value` (len >= 32); for len > 64 (value unused) make sure the
   * marker of the /64 (w0, w1) is there.
   */
  insert(w0: number, w1: number, len: number, value: number): void {
    w0 |= 0;
    let p = this.find(w0);
    if (p === 0) p = this.create(w0);
    if (p === 0) return;
    let P = this.pool;
    if (len === 32) {
      P[p + BK_BASE] = (32 << BASE_LEN_SHIFT) | (value + 1);
      return;
    }
    let bits: number;
    let word: number;
    if (len > 64) {
      bits = w1 | 0;
      word = BK_MARK;
    } else {
      const sh = 64 - len;
      bits = sh === 0 ? w1 | 0 : (w1 >>> sh) << sh;
      word = (sh << BK_SHIFT) | (value + 1);
    }
    const c = P[p + BK_CNT]!;
    const cnt = c & BK_COUNT;
    if (cnt === BK_OVERFLOW) return;
    const end = p + BK_ENTRIES + 2 * cnt;
    // Same prefix already present (among the entries of its rank): replace its value (a marker
    // stays as it is). Else it goes in before the first entry of a greater rank.
    const rank = entryRank(word);
    let at = end;
    for (let q = p + BK_ENTRIES; q < end; q += 2) {
      const r = entryRank(P[q + 1]!);
      if (r > rank) {
        at = q;
        break;
      }
      if (r === rank && P[q] === bits) {
        P[q + 1] = word;
        return;
      }
    }
    const cap = c >>> 16;
    if (cnt === cap) {
      if (cap === CAP_MAX) {
        P[p + BK_CNT] = (c & ~BK_COUNT) | BK_OVERFLOW;
        return;
      }
      const np = this.move(p, cap < 8 ? cap + 2 : Math.min(CAP_MAX, cap + ((cap >>> 1) & ~1)));
      if (np === 0) {
        this.full = true;
        return;
      }
      at += np - p;
      p = np;
      P = this.pool;
    }
    // (Loops, not copyWithin: a builtin call costs more than moving a few Int32.)
    for (let q = p + BK_ENTRIES + 2 * cnt - 1; q >= at; q--) P[q + 2] = P[q]!;
    P[at] = bits;
    P[at + 1] = word;
    P[p + BK_CNT] = P[p + BK_CNT]! + 1;
  }

  /**
   * Remove prefix (w0, w1)/len (len >= 32); `coverLeaf` is the trie leaf of the longest shorter
   * prefix present, 0 for none, and becomes the base when that prefix is not longer than /32.
   * For len > 64, `deeperLeft` tells whether prefixes longer than /64 remain under the /64 (then
   * its marker stays).
   */
  remove(w0: number, w1: number, len: number, coverLeaf: number, deeperLeft: boolean): void {
    w0 |= 0;
    let p = this.find(w0);
    if (p === 0) return;
    let P = this.pool;
    if (coverLeaf >>> BASE_LEN_SHIFT <= 32) P[p + BK_BASE] = coverLeaf;
    if (len > 32 && (len <= 64 || !deeperLeft)) {
      let bits: number;
      let rank: number;
      if (len > 64) {
        bits = w1 | 0;
        rank = entryRank(BK_MARK);
      } else {
        const sh = 64 - len;
        bits = sh === 0 ? w1 | 0 : (w1 >>> sh) << sh;
        rank = entryRank(sh << BK_SHIFT);
      }
      const c = P[p + BK_CNT]!;
      const cnt = c & BK_COUNT;
      const end = cnt === BK_OVERFLOW ? 0 : p + BK_ENTRIES + 2 * cnt;
      for (let q = p + BK_ENTRIES; q < end; q += 2) {
        const r = entryRank(P[q + 1]!);
        if (r > rank) break;
        if (r === rank && P[q] === bits) {
          for (let z = q; z < end - 2; z++) P[z] = P[z + 2]!;
          P[p + BK_CNT] = c - 1;
          const n = cnt - 1;
          if (n + 4 <= c >>> 16) {
            const np = this.move(p, Math.max(2, n + (n & 1)));
            if (np !== 0) {
              p = np;
              P = this.pool;
            }
          }
          break;
        }
      }
    }
    if ((P[p + BK_CNT]! & BK_COUNT) === 0 && P[p + BK_BASE]! >>> BASE_LEN_SHIFT < 32) this.drop(p);
  }

  /**
   * A prefix (w0)/len shorter than /32 was set (`removing` false: its leaf is `leaf`) or removed
   * (`removing` true: `leaf` is its cover's leaf, 0 for none): the base of every bucket under it
   * that it owns changes, as the trie's entries do.
   */
  setShort(w0: number, len: number, leaf: number, removing: boolean): void {
    const span = len === 0 ? 2 ** 32 : 2 ** (32 - len);
    const P = this.pool;
    if (span <= this.used * 2) {
      const first = len === 0 ? 0 : ((w0 >>> (32 - len)) << (32 - len)) | 0;
      for (let k = 0; k < span; k++) {
        const p = this.find((first + k) | 0);
        if (p !== 0) setBase(P, p, len, leaf, removing);
      }
    } else {
      const I = this.index;
      for (let j = 0; j < I.length; j++) {
        const p = I[j]! & BK_OFFSET;
        if (p !== 0 && (len === 0 || ((P[p]! ^ w0) >>> (32 - len)) === 0)) setBase(P, p, len, leaf, removing);
      }
    }
  }

  /**
   * A bucket as [len, bits 32-63, value] rows (diagnostics, tests): first the base ([its length,
   * 0, value], [0, 0, -1] for none), then the entries; markers read [65, bits, -1].
   */
  entries(w0: number): number[][] {
    const p = this.find(w0 | 0);
    if (p === 0) return [];
    const P = this.pool;
    const rows: number[][] = [];
    rows.push([P[p + BK_BASE]! >>> BASE_LEN_SHIFT, 0, (P[p + BK_BASE]! & 0x7fffff) - 1]);
    const cnt = P[p + BK_CNT]! & BK_COUNT;
    if (cnt === BK_OVERFLOW) return rows;
    for (let q = p + BK_ENTRIES; q < p + BK_ENTRIES + 2 * cnt; q += 2) {
      const w = P[q + 1]!;
      rows.push(w === BK_MARK ? [65, P[q]! >>> 0, -1] : [64 - (w >>> BK_SHIFT), P[q]! >>> 0, (w & 0x7fffff) - 1]);
    }
    return rows;
  }

  /** Buckets, entries, Int32s their blocks hold, index slots, overflowed buckets (diagnostics). */
  stats(): { buckets: number; entries: number; int32s: number; slots: number; overflowed: number } {
    let entries = 0;
    let int32s = 0;
    let overflowed = 0;
    const I = this.index;
    for (let j = 0; j < I.length; j++) {
      const p = I[j]! & BK_OFFSET;
      if (p === 0) continue;
      const cnt = this.pool[p + BK_CNT]! & BK_COUNT;
      if (cnt === BK_OVERFLOW) overflowed++;
      else entries += cnt;
      int32s += BK_ENTRIES + 2 * (this.pool[p + BK_CNT]! >>> 16);
    }
    return { buckets: this.used, entries, int32s, slots: I.length, overflowed };
  }

  /** A new empty bucket for w0 (its base from the trie); 0 when the pool is full. */
  private create(w0: number): number {
    // Load factor up to 3/4: slots are 4 bytes, a probe run stays within one or two lines.
    if ((this.used + 1) * 4 > this.index.length * 3) this.resize(this.index.length * 2);
    const p = this.alloc(2);
    if (p === 0) {
      this.full = true;
      return 0;
    }
    const P = this.pool;
    P[p + BK_KEY] = w0;
    P[p + BK_CNT] = 2 << 16;
    P[p + BK_BASE] = this.cover32(w0);
    this.place(p);
    this.used++;
    if (this.used * 8 > this.filter.length << 5) this.rebuildFilter();
    else {
      const pos = Math.imul(w0, BK_HASH) >>> this.fshift;
      this.filter[pos >>> 5] |= 1 << (pos & 31);
    }
    return p;
  }

  /** Put block p (its key written) into the index. */
  private place(p: number): void {
    const I = this.index;
    const mask = I.length - 1;
    const h = Math.imul(this.pool[p]!, BK_HASH);
    let j = h >>> this.shift;
    while (I[j] !== 0) j = (j + 1) & mask;
    I[j] = (((h >>> (this.shift - BK_TAG_BITS)) & ((1 << BK_TAG_BITS) - 1)) << 22) | p;
  }

  /** Slot of block p in the index. */
  private slotOf(p: number): number {
    const I = this.index;
    const mask = I.length - 1;
    let j = Math.imul(this.pool[p]!, BK_HASH) >>> this.shift;
    while ((I[j]! & BK_OFFSET) !== p) j = (j + 1) & mask;
    return j;
  }

  /** Move the bucket at p into a block of capacity `cap`; returns the new offset (0: full). */
  private move(p: number, cap: number): number {
    const np = this.alloc(cap);
    if (np === 0) return 0;
    const P = this.pool;
    const c = P[p + BK_CNT]!;
    for (let z = 0, n = BK_ENTRIES + 2 * (c & BK_COUNT); z < n; z++) P[np + z] = P[p + z]!;
    P[np + BK_CNT] = (c & BK_COUNT) | (cap << 16);
    const j = this.slotOf(p);
    this.index[j] = (this.index[j]! & ~BK_OFFSET) | np;
    this.release(p);
    return np;
  }

  /** Delete the bucket at p: free the block, backward-shift the index run. */
  private drop(p: number): void {
    const I = this.index;
    const mask = I.length - 1;
    let hole = this.slotOf(p);
    this.release(p);
    for (let i = (hole + 1) & mask; ; i = (i + 1) & mask) {
      const x = I[i]!;
      if (x === 0) break;
      const home = Math.imul(this.pool[x & BK_OFFSET]!, BK_HASH) >>> this.shift;
      const inRange = hole <= i ? home > hole && home <= i : home > hole || home <= i;
      if (!inRange) {
        I[hole] = x;
        hole = i;
      }
    }
    I[hole] = 0;
    this.used--;
    if (++this.dropped * 4 > this.used + 1024) this.rebuildFilter();
    if (this.used * 8 < I.length && I.length > INDEX_MIN) this.resize(I.length >>> 1);
  }

  /** Rehash into an index of `slots` slots. */
  private resize(slots: number): void {
    const old = this.index;
    this.index = new Int32Array(slots);
    this.shift = 32 - Math.log2(slots);
    for (let q = 0; q < old.length; q++) if (old[q] !== 0) this.place(old[q]! & BK_OFFSET);
  }

  /** A block of capacity `cap` (its words are written by the caller); 0 when the pool is full. */
  private alloc(cap: number): number {
    const f = this.free[cap];
    if (f !== undefined && f.length > 0) return f.pop()!;
    const at = this.poolHigh;
    const end = at + BK_ENTRIES + 2 * cap;
    if (end > BK_OFFSET) return 0;
    this.poolHigh = end;
    if (end > this.pool.length) {
      const bigger = new Int32Array(Math.min(BK_OFFSET + 1, Math.max(this.pool.length * 2, end)));
      bigger.set(this.pool);
      this.pool = bigger;
    }
    return at;
  }

  private release(p: number): void {
    const cap = this.pool[p + BK_CNT]! >>> 16;
    while (this.free.length <= cap) this.free.push([]);
    this.free[cap]!.push(p);
  }
}

function setBase(P: Int32Array, p: number, len: number, leaf: number, removing: boolean): void {
  const l = P[p + BK_BASE]! >>> BASE_LEN_SHIFT;
  if (removing ? l === len : l <= len) P[p + BK_BASE] = leaf;
}

/** Sort rank of an entry word: markers first, then by shift (longest prefix first). */
function entryRank(word: number): number {
  return word === BK_MARK ? -1 : word >>> BK_SHIFT;
}
