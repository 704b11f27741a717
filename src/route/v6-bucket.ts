/**
 * The /32 bucket fast path of the IPv6 Poptrie (poptrie.ts): for every /32 under which the trie
 * holds prefixes of length 32..128, one small contiguous block listing those prefixes' bits 32-63,
 * so an address inside the table is answered by one hash probe and a scan of a few Int32 in one or
 * two cache lines, instead of the 5-7 dependent loads of a Poptrie walk into a 25 MB pool.
 *
 * Layout (all Int32Array, kept small so the whole fast path stays in the L3 cache):
 * - `index`: open addressing, linear probing, 2 Int32 per slot: [bits 0-31 of the /32, offset of
 *   its block in `pool` (0 = empty slot)]. Fibonacci hash of the key (`bucketSlot`). Load <= 1/2.
 * - `pool`: blocks of 16 << c Int32 (64-byte units; size classes c = 0, 1, 2, ..., free list each):
 *     [count, base, bits_0, word_0, bits_1, word_1, ...]
 *   base  = value + 1 of the /32 prefix itself, 0 when there is none;
 *   entry = a prefix of length 33..64: bits = its bits 32-63 (masked), word = (64 - len) << 24 |
 *           (value + 1); or a marker for prefixes longer than /64: bits = bits 32-63 of the /64
 *           above them, word = BK_MARK (an address inside that /64 must take the trie walk).
 *   Entries are sorted longest first (markers, then /64, /63, ... /33), so the first entry with
 *   ((a ^ bits) >>> (word >>> 24)) === 0 (a = the address's bits 32-63) is the longest match
 *   among lengths 32..64: its value, or for a marker "ask the trie". No entry matching: base when
 *   non-zero, else "ask the trie" (the answer is a prefix shorter than /32, or none).
 * Lookups read `index`/`pool` directly (inlined in poptrie.ts); both arrays are replaced when they
 * grow, so read them again per call.
 *
 * Updates mirror the trie's insert(key, len, value) / remove(key, len, ...): a bucket holds the
 * exact set of prefixes 32..64 under its /32 (a repeated insert replaces the value), plus one
 * marker per /64 that has longer prefixes below it (the caller tells on removal whether any is
 * left: the trie knows). A bucket without entries and base goes away.
 */

/** Entry word: shift (64 - prefix length) in bits 24-28, payload in bits 0-23. */
export const BK_SHIFT = 24;
/** Payload of a marker entry (prefixes longer than /64 below this /64: take the trie walk). */
export const BK_MARK = 0x800000;
/** Payload bits of an entry word (value + 1, or BK_MARK). */
export const BK_PAYLOAD = 0xffffff;
/** Entry count bits of a block header (the block's capacity is above them). */
export const BK_COUNT = 0xffff;
/** Buckets with more entries than this are not scanned by lookups (they take the trie walk). */
export const BK_SCAN_MAX = 24;
const INDEX_MIN = 1024;
/** Base word: (prefix length << 23) | (value + 1), as a trie leaf. */
const BASE_LEN_SHIFT = 23;
/** Largest capacity of a block (entries): a /32 holding more prefixes keeps the rest out. */
const CAP_MAX = 0x7fff;

/** Index slot (0 .. 2^k - 1) of a /32 key for an index of 2^k slots: `shift` = 32 - k. */
export function bucketSlot(w0: number, shift: number): number {
  return Math.imul(w0, 0x9e3779b1) >>> shift;
}

export class V6Buckets {
  /** [key, block offset] per slot; see the file comment. */
  index: Int32Array;
  /** 32 - log2(slots): the argument of `bucketSlot`. */
  shift: number;
  /** Blocks; offset 0 is reserved (0 = empty slot). */
  pool: Int32Array;
  /**
   * Presence filter, 8+ bits per bucket: bit (h >>> fshift) is set when a bucket's key has hash
   * h = bucketHash(key) with those top bits (bits of dropped buckets are cleared only by the
   * next rebuild). A lookup outside every bucket (e.g. a random address) usually stops at this
   * small bitmap (64 KB for 40k buckets, in L2) instead of missing in the index.
   */
  filter: Int32Array;
  /** 32 - log2(filter bits). */
  fshift: number;
  /** Buckets in use. */
  used = 0;
  private dropped = 0;
  private poolHigh = 2;
  /** Free blocks by capacity. */
  private readonly free: number[][] = [];

  /**
   * `cover32(w0)`: the base of a new bucket, from the trie: the leaf ((length << 23) | (value +
   * 1)) of the longest prefix of length <= 32 covering /32 w0, 0 for none (or when longer
   * prefixes cover the whole /32: no address reaches the base then).
   */
  constructor(private readonly cover32: (w0: number) => number) {
    this.index = new Int32Array(INDEX_MIN * 2);
    this.shift = 32 - Math.log2(INDEX_MIN);
    this.pool = new Int32Array(16 * 1024);
    this.filter = new Int32Array(0);
    this.fshift = 0;
    this.rebuildFilter();
  }

  /** Filter of 8-16 bits per bucket (at least 2^15), from the index. */
  private rebuildFilter(): void {
    const bits = Math.max(15, 32 - Math.clz32(Math.max(1, this.used) * 8 - 1));
    const F = this.filter.length === 1 << (bits - 5) ? this.filter.fill(0) : new Int32Array(1 << (bits - 5));
    const fshift = 32 - bits;
    const I = this.index;
    for (let j = 0; j < I.length; j += 2) {
      if (I[j + 1] === 0) continue;
      const pos = Math.imul(I[j]!, 0x9e3779b1) >>> fshift;
      F[pos >>> 5] |= 1 << (pos & 31);
    }
    this.filter = F;
    this.fshift = fshift;
    this.dropped = 0;
  }

  byteSize(): number {
    return this.index.byteLength + this.pool.byteLength;
  }

  /** Block offset of the bucket of /32 `w0`, 0 when there is none. */
  find(w0: number): number {
    const I = this.index;
    const mask = (I.length >>> 1) - 1;
    for (let j = bucketSlot(w0, this.shift); ; j = (j + 1) & mask) {
      const p = I[2 * j + 1]!;
      if (p === 0 || I[2 * j] === w0) return p;
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
    let P = this.pool;
    if (len === 32) {
      P[p + 1] = (32 << BASE_LEN_SHIFT) | (value + 1);
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
    const h = P[p]!;
    const cnt = h & BK_COUNT;
    const end = p + 2 + 2 * cnt;
    // Same prefix already present: replace its value (a marker stays as it is).
    const rank = entryRank(word);
    let at = end;
    for (let q = p + 2; q < end; q += 2) {
      const r = entryRank(P[q + 1]!);
      if (r === rank && P[q] === bits) {
        P[q + 1] = word;
        return;
      }
      if (r > rank && at === end) at = q;
    }
    const cap = h >>> 16;
    if (cnt === cap) {
      if (cap === CAP_MAX) return; // never reached by real tables; lookups skip such buckets
      const np = this.move(w0, p, cap < 8 ? cap + 2 : Math.min(CAP_MAX, cap + ((cap >>> 1) & ~1)));
      at += np - p;
      p = np;
      P = this.pool;
    }
    P.copyWithin(at + 2, at, p + 2 + 2 * cnt);
    P[at] = bits;
    P[at + 1] = word;
    P[p] = P[p]! + 1;
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
    if (coverLeaf >>> BASE_LEN_SHIFT <= 32) P[p + 1] = coverLeaf;
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
      const h = P[p]!;
      const cnt = h & BK_COUNT;
      const end = p + 2 + 2 * cnt;
      for (let q = p + 2; q < end; q += 2) {
        if (P[q] === bits && entryRank(P[q + 1]!) === rank) {
          P.copyWithin(q, q + 2, end);
          P[p] = h - 1;
          const cap = h >>> 16;
          const n = cnt - 1;
          if (n + 4 <= cap) {
            p = this.move(w0, p, Math.max(2, n + (n & 1)));
            P = this.pool;
          }
          break;
        }
      }
    }
    if ((P[p]! & BK_COUNT) === 0 && P[p + 1]! >>> BASE_LEN_SHIFT < 32) this.drop(w0, p);
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
        if (p !== 0) this.setBase(P, p, len, leaf, removing);
      }
    } else {
      const I = this.index;
      for (let j = 1; j < I.length; j += 2) {
        const p = I[j]!;
        if (p !== 0 && (len === 0 || ((I[j - 1]! ^ w0) >>> (32 - len)) === 0)) this.setBase(P, p, len, leaf, removing);
      }
    }
  }

  private setBase(P: Int32Array, p: number, len: number, leaf: number, removing: boolean): void {
    const l = P[p + 1]! >>> BASE_LEN_SHIFT;
    if (removing ? l === len : l <= len) P[p + 1] = leaf;
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
    rows.push([P[p + 1]! >>> BASE_LEN_SHIFT, 0, (P[p + 1]! & 0x7fffff) - 1]);
    for (let q = p + 2; q < p + 2 + 2 * (P[p]! & BK_COUNT); q += 2) {
      const w = P[q + 1]!;
      rows.push(w === BK_MARK ? [65, P[q]! >>> 0, -1] : [64 - (w >>> BK_SHIFT), P[q]! >>> 0, (w & BK_PAYLOAD) - 1]);
    }
    return rows;
  }

  /** Blocks in use and Int32s they hold, by walking the index (diagnostics). */
  stats(): { buckets: number; entries: number; int32s: number; slots: number } {
    let entries = 0;
    let int32s = 0;
    const I = this.index;
    for (let j = 1; j < I.length; j += 2) {
      const p = I[j]!;
      if (p === 0) continue;
      entries += this.pool[p]! & BK_COUNT;
      int32s += 2 + 2 * (this.pool[p]! >>> 16);
    }
    return { buckets: this.used, entries, int32s, slots: I.length >>> 1 };
  }

  private create(w0: number): number {
    // Load factor up to 3/4: slots are 8 bytes, so a probe run stays within one or two lines.
    if ((this.used + 1) * 4 > (this.index.length >>> 1) * 3) this.resize(this.index.length);
    const p = this.alloc(2);
    this.pool[p] = 2 << 16;
    this.pool[p + 1] = this.cover32(w0);
    const I = this.index;
    const mask = (I.length >>> 1) - 1;
    let j = bucketSlot(w0, this.shift);
    while (I[2 * j + 1] !== 0) j = (j + 1) & mask;
    I[2 * j] = w0;
    I[2 * j + 1] = p;
    this.used++;
    if (this.used * 8 > this.filter.length << 5) this.rebuildFilter();
    else {
      const pos = Math.imul(w0, 0x9e3779b1) >>> this.fshift;
      this.filter[pos >>> 5] |= 1 << (pos & 31);
    }
    return p;
  }

  /** Move the bucket of w0 at p into a block of capacity `cap`; returns the new offset. */
  private move(w0: number, p: number, cap: number): number {
    const np = this.alloc(cap);
    const P = this.pool;
    const h = P[p]!;
    P.copyWithin(np + 1, p + 1, p + 2 + 2 * (h & BK_COUNT));
    P[np] = (h & BK_COUNT) | (cap << 16);
    this.release(p);
    const I = this.index;
    const mask = (I.length >>> 1) - 1;
    for (let j = bucketSlot(w0, this.shift); ; j = (j + 1) & mask) {
      if (I[2 * j + 1] === p) {
        I[2 * j + 1] = np;
        return np;
      }
    }
  }

  /** Delete the bucket of w0 (block at p): free the block, backward-shift the index run. */
  private drop(w0: number, p: number): void {
    this.release(p);
    const I = this.index;
    const mask = (I.length >>> 1) - 1;
    let hole = bucketSlot(w0, this.shift);
    while (I[2 * hole + 1] !== p) hole = (hole + 1) & mask;
    for (let i = (hole + 1) & mask; ; i = (i + 1) & mask) {
      if (I[2 * i + 1] === 0) break;
      const home = bucketSlot(I[2 * i]!, this.shift);
      const inRange = hole <= i ? home > hole && home <= i : home > hole || home <= i;
      if (!inRange) {
        I[2 * hole] = I[2 * i]!;
        I[2 * hole + 1] = I[2 * i + 1]!;
        hole = i;
      }
    }
    I[2 * hole] = 0;
    I[2 * hole + 1] = 0;
    this.used--;
    if (++this.dropped * 4 > this.used + 1024) this.rebuildFilter();
    if (this.used * 8 < I.length >>> 1 && I.length >>> 1 > INDEX_MIN) this.resize(I.length >>> 2);
  }

  /** Rehash into an index of `slots` slots. */
  private resize(slots: number): void {
    const old = this.index;
    const I = new Int32Array(slots * 2);
    const shift = 32 - Math.log2(slots);
    const mask = slots - 1;
    for (let q = 0; q < old.length; q += 2) {
      if (old[q + 1] === 0) continue;
      let j = bucketSlot(old[q]!, shift);
      while (I[2 * j + 1] !== 0) j = (j + 1) & mask;
      I[2 * j] = old[q]!;
      I[2 * j + 1] = old[q + 1]!;
    }
    this.index = I;
    this.shift = shift;
  }

  /** A block of capacity `cap` (its header is written by the caller). */
  private alloc(cap: number): number {
    const f = this.free[cap];
    if (f !== undefined && f.length > 0) return f.pop()!;
    const at = this.poolHigh;
    this.poolHigh += 2 + 2 * cap;
    if (this.poolHigh > this.pool.length) {
      const bigger = new Int32Array(Math.max(this.pool.length * 2, this.poolHigh));
      bigger.set(this.pool);
      this.pool = bigger;
    }
    return at;
  }

  private release(p: number): void {
    const cap = this.pool[p]! >>> 16;
    while (this.free.length <= cap) this.free.push([]);
    this.free[cap]!.push(p);
  }
}

/** Sort rank of an entry word: markers first, then by shift (longest prefix first). */
function entryRank(word: number): number {
  return word === BK_MARK ? -1 : word >>> BK_SHIFT;
}
