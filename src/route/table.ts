/**
 * One routing table: an IPv4 and an IPv6 trie mapping every address to the head route id of its
 * longest matching prefix (lpm/), created on first use, kept in step with the route store's
 * metric lists (store.ts), and the single and batch longest-prefix lookups of an address at a
 * byte offset. The IPv4 trie starts as [16,8,8] and switches to DIR-24-8 once the table is large.
 */
import { matchLength, matchValue, Poptrie } from './lpm/poptrie.ts';
import { StrideTrie, V4_STRIDES_LARGE, V4_STRIDES_SMALL, V6_TOP_BITS } from './lpm/trie.ts';
import type { RouteStore } from './store.ts';

/** Batch lookups work through bursts in chunks of this many (scratch arrays are this long). */
export const BATCH_MAX = 64;

/** A table switches its IPv4 trie from [16,8,8] to DIR-24-8 above this many IPv4 prefixes. */
export const V4_LARGE_THRESHOLD = 16384;

export class RouteTable {
  v4: StrideTrie | null = null;
  v6: Poptrie | null = null;
  count4 = 0;
  count6 = 0;
  /** Prefixes present per length (removal looks for the covering prefix only at these). */
  readonly lengths4 = new Uint32Array(33);
  readonly lengths6 = new Uint32Array(129);
  /** Scratch of lookupBatch4: first-level indices of one chunk. */
  private readonly idx = new Int32Array(BATCH_MAX);
  /** Scratch key of the covering-prefix search. */
  private readonly cover = new Uint32Array(4);
  constructor(
    readonly id: number,
    readonly name: string,
  ) {}

  // ---------------------------------------------------------------- lookup (no allocation)

  /** Route id (the lowest-metric route of the longest matching prefix) or -1. */
  lookup4(buf: Uint8Array, addrOff: number): number {
    return this.v4 === null ? -1 : this.v4.lookup4(buf, addrOff);
  }

  lookup6(buf: Uint8Array, addrOff: number): number {
    return this.v6 === null ? -1 : this.v6.lookupBytes(buf, addrOff);
  }

  /**
   * Batch of IPv4 lookups: out[k] = lookup4(buf, offs[k]) for k < n (route id or -1). The
   * addresses may sit anywhere in `buf` (e.g. one pool slab: offs = slot offset + 16), so one call
   * serves a burst of packets. Allocation-free; any n (bursts above BATCH_MAX go in chunks).
   * The DIR-24-8 walk is written out here in three passes over the burst: all first-level
   * indices, then a tight gather of the first-level entries (nothing in that loop depends on a
   * previous load, so the CPU keeps many cache/TLB misses in flight), then the rare second level
   * and the decoding. Measured (1M prefixes, 2-core shared VM, burst 32): 39-45 M/s random,
   * 23-45 in-table (load-dependent), where eight lookups written side by side per iteration gave
   * 28-32 and four 25-29 (the longer loop body keeps fewer loads in flight), one by one 15-25.
   * Details in the trie.ts note.
   */
  lookupBatch4(buf: Uint8Array, offs: Int32Array, n: number, out: Int32Array): void {
    const t = this.v4;
    if (t === null) {
      out.fill(-1, 0, n);
      return;
    }
    if (!t.dir24) {
      for (let k = 0; k < n; k++) out[k] = t.lookupBytes(buf, offs[k]!);
      return;
    }
    const d0 = t.d0;
    const d1 = t.d1;
    const idx = this.idx;
    for (let k0 = 0; k0 < n; k0 += BATCH_MAX) {
      const k1 = k0 + BATCH_MAX < n ? k0 + BATCH_MAX : n;
      for (let k = k0; k < k1; k++) {
        const o = offs[k]!;
        idx[k - k0] = (buf[o]! << 16) | (buf[o + 1]! << 8) | buf[o + 2]!;
      }
      for (let k = k0; k < k1; k++) out[k] = d0[idx[k - k0]!]!;
      for (let k = k0; k < k1; k++) {
        let e = out[k]!;
        if (e < 0) e = d1[((e & 0x7fffffff) << 8) | buf[offs[k]! + 3]!]!;
        out[k] = (e & 0x7fffff) - 1;
      }
    }
  }

  /**
   * Batch of IPv6 lookups: out[k] = lookup6(buf, offs[k]) for k < n, allocation-free, any n.
   * Answered by the Poptrie's /32 buckets (one index probe and a short scan, v6-bucket.ts);
   * addresses without a bucket by its short-prefix trie; the rest walk the Poptrie
   * (poptrie.ts lookupMany).
   */
  lookupBatch6(buf: Uint8Array, offs: Int32Array, n: number, out: Int32Array): void {
    if (this.v6 === null) out.fill(-1, 0, n);
    else this.v6.lookupMany(buf, offs, n, out);
  }

  byteSize(): number {
    return (this.v4?.byteSize() ?? 0) + (this.v6?.byteSize() ?? 0);
  }

  // ---------------------------------------------------------------- updates (store.link/unlink results)

  private trie(fam: number): StrideTrie | Poptrie {
    if (fam === 4) {
      if (this.v4 === null) this.v4 = new StrideTrie(32, V4_STRIDES_SMALL);
      return this.v4;
    }
    if (this.v6 === null) this.v6 = new Poptrie(128, V6_TOP_BITS, true);
    return this.v6;
  }

  /** A prefix new to this table (key words k), its head route `id`. */
  addPrefix(store: RouteStore, fam: number, k: Uint32Array, len: number, id: number): void {
    const trie = this.trie(fam);
    trie.insert(k, len, id);
    trie.prefixes++;
    (fam === 4 ? this.lengths4 : this.lengths6)[len]!++;
    if (fam === 4) {
      this.count4++;
      if (this.count4 > V4_LARGE_THRESHOLD && (trie as StrideTrie).strides[0] !== 24) this.rebuildV4(store);
    } else {
      this.count6++;
    }
  }

  /** The prefix's head route is now `id`. */
  setHead(fam: number, k: Uint32Array, len: number, id: number): void {
    this.trie(fam).insert(k, len, id);
  }

  /**
   * The prefix's last route left (the store's index no longer holds it): its addresses go back
   * to the covering prefix, the longest shorter prefix present in this table.
   */
  removePrefix(store: RouteStore, fam: number, k: Uint32Array, len: number): void {
    const trie = this.trie(fam);
    let coverLen = 0;
    let cover = -1;
    const c = this.cover;
    const lengths = fam === 4 ? this.lengths4 : this.lengths6;
    lengths[len]!--;
    // IPv6 shortcut: the prefixes no longer than len-1 that cover this prefix are exactly those
    // that cover its sibling half (flip bit len-1), so the sibling's longest match is the cover
    // whenever it is shorter than len (almost always for host routes): one trie walk instead
    // of a hash probe per populated length (up to ~10 for a /128; /128 updates 91 -> see
    // the trie.ts note). A longer sibling match falls back to the search by length.
    let l0 = len - 1;
    if (fam === 6 && len > 0) {
      for (let w = 0; w < 4; w++) c[w] = k[w]!;
      c[(len - 1) >>> 5] = (c[(len - 1) >>> 5]! ^ (1 << (31 - ((len - 1) & 31)))) >>> 0;
      const m = (trie as Poptrie).matchKey(c);
      if (matchLength(m) < len) {
        cover = matchValue(m);
        coverLen = cover < 0 ? 0 : matchLength(m);
        l0 = -1;
      }
    }
    for (let l = l0; l >= 0 && cover < 0; l--) {
      if (lengths[l] === 0) continue;
      for (let w = 0; w < 4; w++) {
        const bits = Math.max(0, Math.min(32, l - w * 32));
        c[w] = bits === 0 ? 0 : (k[w]! & (0xffffffff << (32 - bits))) >>> 0;
      }
      const h = store.findHead(this.id, fam, l, c);
      if (h >= 0) {
        cover = h;
        coverLen = l;
      }
    }
    trie.remove(k, len, coverLen, cover);
    trie.prefixes--;
    if (fam === 4) this.count4--;
    else this.count6--;
  }

  /** One-time switch of a growing table's IPv4 trie to DIR-24-8. */
  private rebuildV4(store: RouteStore): void {
    const trie = new StrideTrie(32, V4_STRIDES_LARGE);
    const k = new Uint32Array(4);
    const slots = store.slots;
    for (let s = 0; s < slots.length; s++) {
      const id = slots[s]!;
      if (id < 0 || store.table[id] !== this.id || store.fam[id] !== 4) continue;
      k[0] = store.key[id * 4]!;
      trie.insert(k, store.len[id]!, id);
      trie.prefixes++;
    }
    this.v4 = trie;
  }
}
