/**
 * The route store and the exact-prefix index, sized for full internet tables (~1M IPv4 + ~200k
 * IPv6 routes):
 * - Routes live in a struct of arrays indexed by a small integer route id (no object per route):
 *   table, family, prefix words, length, type, metric, nexthop group, use counters.
 * - The routes of one (table, prefix) form a list sorted by metric (insertion order among equal
 *   metrics); its head, the lowest metric, is the route the table's trie points at. Removing the
 *   head exposes the next one.
 * - An open-addressing hash (linear probing over an Int32Array, no tombstones) maps (table,
 *   family, length, prefix) to that head: exact add/remove, and the search for the covering
 *   prefix whose entries a removal restores (table.ts).
 * What the store does not know: tries (table.ts), nexthops (nexthops.ts), tables by name and
 * rules (policy.ts).
 */
import { formatAddress } from '../wire/address-text.ts';
import type { Family, Prefix } from '../wire/address-text.ts';
import { MAX_TRIE_VALUE } from './lpm/trie.ts';
import { RouteError } from './types.ts';

/** link(): the route is its prefix's first (the prefix is new to the index). */
export const LINK_NEW = 0;
/** link(): the route has the lowest metric of its prefix: it is the new head. */
export const LINK_HEAD = 1;
/** link(): the route sits behind the head. */
export const LINK_BEHIND = 2;
/** unlink(): the route was its prefix's last (the prefix left the index). */
export const UNLINK_GONE = -1;
/** unlink(): the route was not the head (the head is unchanged). */
export const UNLINK_BEHIND = -2;

/** Load a prefix's bytes into four big-endian words (IPv4 in word 0); throws on host bits set. */
export function loadPrefixKey(p: Prefix, out: Uint32Array): void {
  const words = p.family === 4 ? 1 : 4;
  for (let w = 0; w < 4; w++) {
    if (w >= words) {
      out[w] = 0;
      continue;
    }
    const b = w * 4;
    const v = ((p.bytes[b]! << 24) | (p.bytes[b + 1]! << 16) | (p.bytes[b + 2]! << 8) | p.bytes[b + 3]!) >>> 0;
    const bits = Math.max(0, Math.min(32, p.length - w * 32));
    const m = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    if ((v & ~m) !== 0) {
      throw new RouteError(`host bits set in ${formatAddress(p.bytes, 0, p.family)}/${p.length}`);
    }
    out[w] = v;
  }
}

export class RouteStore {
  // ---- per route (id): read directly by the lookups (these arrays are replaced when they grow) ----
  table = new Uint32Array(0);
  fam = new Uint8Array(0);
  len = new Uint8Array(0);
  /** Prefix as four big-endian words per route (IPv4 in word 0, the rest 0). */
  key = new Uint32Array(0);
  type = new Uint8Array(0);
  metric = new Uint32Array(0);
  /** Nexthop group id (nexthops.ts), -1 for none. */
  group = new Int32Array(0);
  /** Next route of the same prefix (higher or equal metric), -1 at the end. */
  next = new Int32Array(0);
  live = new Uint8Array(0);
  /** Per-route use counters, interleaved [packets, bytes] (one cache line per route). */
  count = new Float64Array(0);
  /** Ids below this have been handed out. */
  top = 0;
  /** Called after grow() replaced the arrays (the lookup keeps direct references to some). */
  onGrow: (() => void) | null = null;
  private cap = 0;
  private readonly freeIds: number[] = [];

  // ---- exact-prefix index: slot -> head route id, -1 empty ----
  slots = new Int32Array(1 << 10).fill(-1);
  private used = 0;
  /** Scratch key for the index. */
  private readonly k = new Uint32Array(4);

  constructor() {
    this.grow(1024);
  }

  /** Number of routes stored. */
  get size(): number {
    return this.top - this.freeIds.length;
  }

  isLive(id: number): boolean {
    return id >= 0 && id < this.top && this.live[id] === 1;
  }

  /** A fresh route id (its attributes are the caller's to set). */
  alloc(): number {
    const id = this.freeIds.pop();
    if (id !== undefined) return id;
    if (this.top >= MAX_TRIE_VALUE) throw new RouteError('route table full');
    if (this.top >= this.cap) this.grow(this.top + 1);
    return this.top++;
  }

  /** Give an unlinked route's id back (its nexthop group is the caller's to release). */
  free(id: number): void {
    this.live[id] = 0;
    this.group[id] = -1;
    this.freeIds.push(id);
  }

  private grow(n: number): void {
    const cap = Math.max(n, Math.ceil(this.cap * 1.5));
    const g = <T extends Uint8Array | Uint32Array | Int32Array | Float64Array>(old: T, ctor: new (n: number) => T, per = 1): T => {
      const a = new ctor(cap * per);
      a.set(old as never);
      return a;
    };
    this.table = g(this.table, Uint32Array);
    this.fam = g(this.fam, Uint8Array);
    this.len = g(this.len, Uint8Array);
    this.key = g(this.key, Uint32Array, 4);
    this.type = g(this.type, Uint8Array);
    this.metric = g(this.metric, Uint32Array);
    this.group = g(this.group, Int32Array);
    this.next = g(this.next, Int32Array);
    this.live = g(this.live, Uint8Array);
    this.count = g(this.count, Float64Array, 2);
    this.cap = cap;
    this.onGrow?.();
  }

  // ---------------------------------------------------------------- metric lists

  /**
   * Put route `id` (attributes set) into its prefix's metric-sorted list, after the routes of
   * equal metric (like `ip route append`). Returns LINK_NEW, LINK_HEAD or LINK_BEHIND.
   */
  link(id: number): number {
    const k = this.loadKey(id);
    const head = this.findHead(this.table[id]!, this.fam[id]!, this.len[id]!, k);
    this.next[id] = -1;
    if (head < 0) {
      this.indexInsert(id);
      return LINK_NEW;
    }
    const metric = this.metric[id]!;
    if (metric < this.metric[head]!) {
      this.next[id] = head;
      this.slots[this.slotOf(head)] = id;
      return LINK_HEAD;
    }
    let prev = head;
    while (this.next[prev]! >= 0 && this.metric[this.next[prev]!]! <= metric) prev = this.next[prev]!;
    this.next[id] = this.next[prev]!;
    this.next[prev] = id;
    return LINK_BEHIND;
  }

  /**
   * Take route `id` out of its prefix's list. Returns the new head when `id` was the head and
   * routes remain, UNLINK_GONE when it was the last (the index forgets the prefix), else
   * UNLINK_BEHIND.
   */
  unlink(id: number): number {
    const s = this.slotOf(id);
    const head = this.slots[s]!;
    if (head === id) {
      const next = this.next[id]!;
      if (next >= 0) {
        this.slots[s] = next;
        return next;
      }
      this.indexDelete(s);
      return UNLINK_GONE;
    }
    let prev = head;
    while (this.next[prev] !== id) prev = this.next[prev]!;
    this.next[prev] = this.next[id]!;
    return UNLINK_BEHIND;
  }

  // ---------------------------------------------------------------- exact-prefix index

  /** Head route id for the exact prefix (key words `k`), or -1. */
  findHead(table: number, fam: number, len: number, k: Uint32Array): number {
    const mask = this.slots.length - 1;
    for (let s = this.hashKey(table, fam, len, k) & mask; ; s = (s + 1) & mask) {
      const id = this.slots[s]!;
      if (id < 0) return -1;
      if (this.sameKey(id, table, fam, len, k)) return id;
    }
  }

  private loadKey(id: number): Uint32Array {
    const k = this.k;
    const b = id * 4;
    k[0] = this.key[b]!;
    k[1] = this.key[b + 1]!;
    k[2] = this.key[b + 2]!;
    k[3] = this.key[b + 3]!;
    return k;
  }

  private hashKey(table: number, fam: number, len: number, k: Uint32Array): number {
    let h = Math.imul(table ^ 0x9e3779b9, 0x85ebca6b) ^ ((fam << 8) | len);
    for (let w = 0; w < 4; w++) {
      h = Math.imul(h ^ k[w]!, 0xcc9e2d51);
      h ^= h >>> 15;
    }
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return (h ^ (h >>> 16)) >>> 0;
  }

  private sameKey(id: number, table: number, fam: number, len: number, k: Uint32Array): boolean {
    if (this.table[id] !== table || this.fam[id] !== fam || this.len[id] !== len) return false;
    const b = id * 4;
    return this.key[b] === k[0] && this.key[b + 1] === k[1] && this.key[b + 2] === k[2] && this.key[b + 3] === k[3];
  }

  /** Index slot holding the head of route id's prefix, or -1. */
  private slotOf(id: number): number {
    const k = this.loadKey(id);
    const mask = this.slots.length - 1;
    for (let s = this.hashKey(this.table[id]!, this.fam[id]!, this.len[id]!, k) & mask; ; s = (s + 1) & mask) {
      const at = this.slots[s]!;
      if (at < 0) return -1;
      if (this.sameKey(at, this.table[id]!, this.fam[id]!, this.len[id]!, k)) return s;
    }
  }

  private indexInsert(id: number): void {
    if ((this.used + 1) * 2 > this.slots.length) this.rehash(this.slots.length * 2);
    const k = this.loadKey(id);
    const mask = this.slots.length - 1;
    let s = this.hashKey(this.table[id]!, this.fam[id]!, this.len[id]!, k) & mask;
    while (this.slots[s]! >= 0) s = (s + 1) & mask;
    this.slots[s] = id;
    this.used++;
  }

  private rehash(size: number): void {
    const old = this.slots;
    this.slots = new Int32Array(size).fill(-1);
    this.used = 0;
    for (let i = 0; i < old.length; i++) if (old[i]! >= 0) this.indexInsert(old[i]!);
  }

  /** Delete slot s with backward-shift (linear probing, no tombstones). */
  private indexDelete(s: number): void {
    const mask = this.slots.length - 1;
    let hole = s;
    for (let j = (s + 1) & mask; ; j = (j + 1) & mask) {
      const id = this.slots[j]!;
      if (id < 0) break;
      const home = this.hashKey(this.table[id]!, this.fam[id]!, this.len[id]!, this.loadKey(id)) & mask;
      // Move id into the hole if its home is not in (hole, j] cyclically.
      const inRange = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (!inRange) {
        this.slots[hole] = id;
        hole = j;
      }
    }
    this.slots[hole] = -1;
    this.used--;
  }

  // ---------------------------------------------------------------- read back

  prefixOf(id: number): Prefix {
    const fam = this.fam[id]! as Family;
    const bytes = new Uint8Array(fam === 4 ? 4 : 16);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (this.key[id * 4 + (i >> 2)]! >>> (24 - 8 * (i & 3))) & 255;
    return { family: fam, bytes, length: this.len[id]! };
  }

  /** Bytes of the route arrays and of the index. */
  byteSize(): { store: number; index: number } {
    const store =
      this.table.byteLength +
      this.fam.byteLength +
      this.len.byteLength +
      this.key.byteLength +
      this.type.byteLength +
      this.metric.byteLength +
      this.group.byteLength +
      this.next.byteLength +
      this.live.byteLength +
      this.count.byteLength;
    return { store, index: this.slots.byteLength };
  }
}
