/**
 * The datagrams a Reassembler (reassembly.ts) holds in progress, and the fragment ranges each one
 * has received. Nothing here knows IPv4 or IPv6: the Reassembler builds the key and reads the
 * headers; this file keeps the state and its limits.
 *
 * - Datagram: one datagram in progress, with its received ranges (sorted, non-overlapping) and
 *   the rules on adding one: an exact duplicate, any other overlap, conflicting ends, an empty
 *   non-last fragment (addRange).
 * - DatagramTable: a fixed table of preallocated Datagram entries found through an open-
 *   addressing hash table over typed arrays (keys are compared as bytes; the hash is keyed with a
 *   random seed so outsiders cannot aim collisions), one large pool slot per datagram, oldest-
 *   first lists per family (creation order is deadline order), and the caps on datagrams in
 *   progress and on memory (the oldest datagram is evicted first, counted with its reason).
 *
 * No allocation per fragment: entries, keys and the hash table are allocated once; a Datagram's
 * range arrays grow once per entry and are reused when the entry is.
 */
import { randomBytes } from 'node:crypto';
import { type DropCounters, DropReason } from '../base/drop-reason.ts';
import type { BufferPool, PacketBuffer } from '../base/pool.ts';

/** "No entry" in the table, the lists and the hash table. */
export const NO = -1;
/** Key length in 32-bit words: 40 bytes (family, protocol, 0, 0, id(4), src(16), dst(16)). */
export const KEY_WORDS = 10;

/** What Datagram.addRange made of a fragment. */
export const RANGE_HELD = 0;
/** The same [start, end) was already held (or a repeated empty last fragment). */
export const RANGE_DUPLICATE = 1;
/** Overlaps a held range without being the same: the datagram must be dropped (RFC 5722). */
export const RANGE_OVERLAP = 2;
/** Two different last fragments, or data beyond the last fragment: drop the datagram. */
export const RANGE_CONFLICTING_END = 3;
/** No data and not the last fragment: drop the fragment (the datagram stays). */
export const RANGE_EMPTY = 4;

export class Datagram {
  slot: PacketBuffer | null = null;
  family = 4;
  created = 0;
  deadline = 0;
  /** Data length once the last fragment arrived, else -1. */
  finalLen = -1;
  /** Data bytes held (no overlaps are kept, so this is the coverage). */
  received = 0;
  maxEnd = 0;
  hasFirst = false;
  /** Data bytes of the offset-0 fragment. */
  firstLen = 0;
  /** v4: header length of the first fragment; v6: unfragmentable part length (40 + ext). */
  hdrLen = 0;
  /** v6: offset (from the packet start) of the next-header byte that names the fragment header. */
  prevNh = 0;
  /** v6: next header after the fragment header in the first fragment. */
  nextHeader = 0;
  /** Fragments held, sorted by start, non-overlapping. */
  starts = new Int32Array(16);
  ends = new Int32Array(16);
  n = 0;
  prev = NO;
  next = NO;
  hash = 0;
  tablePos = NO;

  /** Every data byte arrived, the last fragment and the first one included. */
  get complete(): boolean {
    return this.finalLen >= 0 && this.received === this.finalLen && this.hasFirst;
  }

  /**
   * Record a fragment's data range [start, end) (`last`: it has no more fragments after it).
   * RANGE_HELD when it was added (copy its bytes in then), else why not (nothing changed).
   */
  addRange(start: number, end: number, last: boolean): number {
    if (last) {
      // An exact duplicate of the last fragment is fine; anything else conflicts.
      if ((this.finalLen >= 0 && this.finalLen !== end) || this.maxEnd > end) return RANGE_CONFLICTING_END;
    } else if (this.finalLen >= 0 && end > this.finalLen) {
      return RANGE_CONFLICTING_END;
    }
    if (end > start) {
      const n = this.n;
      let at = n;
      if (n > 0 && start < this.ends[n - 1]!) {
        // Binary search: the first held fragment that ends after `start`.
        let lo = 0;
        let hi = n - 1;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (this.ends[mid]! > start) hi = mid;
          else lo = mid + 1;
        }
        at = lo;
        if (this.starts[at]! < end) {
          return this.starts[at] === start && this.ends[at] === end ? RANGE_DUPLICATE : RANGE_OVERLAP;
        }
      }
      if (n === this.starts.length) {
        // Grows once per entry (entries are recycled): not in steady state.
        const s = new Int32Array(n * 2);
        const t = new Int32Array(n * 2);
        s.set(this.starts);
        t.set(this.ends);
        this.starts = s;
        this.ends = t;
      }
      if (at < n) {
        this.starts.copyWithin(at + 1, at, n);
        this.ends.copyWithin(at + 1, at, n);
      }
      this.starts[at] = start;
      this.ends[at] = end;
      this.n = n + 1;
      this.received += end - start;
      if (end > this.maxEnd) this.maxEnd = end;
    } else if (!last) {
      return RANGE_EMPTY;
    } else if (this.finalLen === end) {
      return RANGE_DUPLICATE; // a repeated empty last fragment
    }
    if (last) this.finalLen = end;
    return RANGE_HELD;
  }
}

export interface DatagramTableOptions {
  /** Where each datagram's slot comes from. */
  large: BufferPool;
  maxDatagrams: number;
  /** Bytes of pool slots the datagrams may hold together. */
  memoryLimit: number;
  /** Evictions are counted here with their reason. */
  drops: DropCounters;
}

export class DatagramTable {
  /** The key to find or create: filled by the caller before hashKey() / find() / create(). */
  readonly keyBytes = new Uint8Array(KEY_WORDS * 4);
  /** Bytes of pool slots held right now. */
  memory = 0;
  inProgress = 0;
  evicted = 0;
  /** Why the last create() returned NO (not counted: the caller rejects with it). */
  failReason: DropReason = DropReason.None;
  /** Bytes of one slot (= the largest datagram buffer). */
  readonly slotBytes: number;

  private readonly keyWords = new Int32Array(this.keyBytes.buffer);
  private readonly entries: Datagram[];
  private readonly freeList: Int32Array;
  private freeTop: number;
  private readonly keys: Int32Array;
  private readonly table: Int32Array;
  private readonly mask: number;
  private readonly seed: number;
  /** Oldest-first lists per family (index 0: v4, 1: v6): creation order == deadline order. */
  private readonly head = new Int32Array([NO, NO]);
  private readonly tail = new Int32Array([NO, NO]);
  private readonly large: BufferPool;
  private readonly maxDatagrams: number;
  private readonly memoryLimit: number;
  private readonly drops: DropCounters;

  constructor(opts: DatagramTableOptions) {
    this.large = opts.large;
    this.slotBytes = opts.large.slotSize;
    this.maxDatagrams = opts.maxDatagrams;
    this.memoryLimit = opts.memoryLimit;
    this.drops = opts.drops;
    const n = this.maxDatagrams;
    this.entries = new Array<Datagram>(n);
    this.freeList = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      this.entries[i] = new Datagram();
      this.freeList[i] = n - 1 - i;
    }
    this.freeTop = n;
    this.keys = new Int32Array(n * KEY_WORDS);
    let size = 16;
    while (size < n * 2) size *= 2;
    this.table = new Int32Array(size).fill(NO);
    this.mask = size - 1;
    this.seed = randomBytes(4).readInt32LE(0);
  }

  entry(e: number): Datagram {
    return this.entries[e]!;
  }

  /** Hash of the key in keyBytes. */
  hashKey(): number {
    const w = this.keyWords;
    let h = this.seed;
    for (let i = 0; i < KEY_WORDS; i++) {
      h = Math.imul(h ^ w[i]!, 0x9e3779b1);
      h ^= h >>> 15;
    }
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return (h ^ (h >>> 16)) | 0;
  }

  /** The datagram with the key in keyBytes (and this hash of it), or NO. */
  find(hash: number): number {
    const t = this.table;
    const w = this.keyWords;
    const keys = this.keys;
    let pos = hash & this.mask;
    for (;;) {
      const e = t[pos]!;
      if (e === NO) return NO;
      if (this.entries[e]!.hash === hash) {
        const k = e * KEY_WORDS;
        let same = true;
        for (let i = 0; i < KEY_WORDS; i++) {
          if (keys[k + i] !== w[i]) {
            same = false;
            break;
          }
        }
        if (same) return e;
      }
      pos = (pos + 1) & this.mask;
    }
  }

  /**
   * A new datagram for the key in keyBytes with a slot of its own, expiring at now + timeoutMs,
   * evicting the oldest if a limit is reached. NO when there is no room (failReason says why).
   */
  create(hash: number, family: 4 | 6, now: number, timeoutMs: number): number {
    while (this.inProgress >= this.maxDatagrams) {
      if (!this.evictOldest(DropReason.FragmentTableFull)) break;
    }
    while (this.memory + this.slotBytes > this.memoryLimit) {
      if (!this.evictOldest(DropReason.FragmentMemoryLimit)) return this.fail(DropReason.FragmentMemoryLimit);
    }
    let slot = this.large.acquire();
    while (slot === null) {
      // The pipeline holds the rest of the large pool: give up our oldest datagram.
      if (!this.evictOldest(DropReason.PoolExhausted)) return this.fail(DropReason.PoolExhausted);
      slot = this.large.acquire();
    }
    if (this.freeTop === 0) {
      slot.release();
      return this.fail(DropReason.FragmentTableFull);
    }
    const e = this.freeList[--this.freeTop]!;
    const d = this.entries[e]!;
    d.slot = slot;
    d.family = family;
    d.created = now;
    d.deadline = now + timeoutMs;
    d.finalLen = -1;
    d.received = 0;
    d.maxEnd = 0;
    d.hasFirst = false;
    d.firstLen = 0;
    d.hdrLen = 0;
    d.prevNh = 0;
    d.nextHeader = 0;
    d.n = 0;
    d.hash = hash;
    this.keys.set(this.keyWords, e * KEY_WORDS);
    // Table insert (linear probing).
    let pos = hash & this.mask;
    while (this.table[pos] !== NO) pos = (pos + 1) & this.mask;
    this.table[pos] = e;
    d.tablePos = pos;
    // Append to the family's oldest-first list.
    const f = family === 4 ? 0 : 1;
    d.prev = this.tail[f]!;
    d.next = NO;
    if (d.prev !== NO) this.entries[d.prev]!.next = e;
    else this.head[f] = e;
    this.tail[f] = e;
    this.memory += this.slotBytes;
    this.inProgress++;
    return e;
  }

  /** Take datagram e's slot out (a completed datagram: the caller owns it now). */
  takeSlot(e: number): PacketBuffer {
    const d = this.entries[e]!;
    const p = d.slot!;
    d.slot = null;
    this.memory -= this.slotBytes;
    return p;
  }

  /** Forget datagram e and release its slot (if it still has one). */
  free(e: number): void {
    const d = this.entries[e]!;
    if (d.slot !== null) {
      d.slot.release();
      d.slot = null;
      this.memory -= this.slotBytes;
    }
    const f = d.family === 4 ? 0 : 1;
    if (d.prev !== NO) this.entries[d.prev]!.next = d.next;
    else this.head[f] = d.next;
    if (d.next !== NO) this.entries[d.next]!.prev = d.prev;
    else this.tail[f] = d.prev;
    d.prev = d.next = NO;
    this.tableRemove(d.tablePos);
    d.tablePos = NO;
    this.freeList[this.freeTop++] = e;
    this.inProgress--;
  }

  /** The oldest datagram (either family) whose deadline has passed at `now`, or NO. */
  oldestDue(now: number): number {
    for (let f = 0; f < 2; f++) {
      const e = this.head[f]!;
      if (e !== NO && this.entries[e]!.deadline <= now) return e;
    }
    return NO;
  }

  /** The oldest datagram of a family (0: v4, 1: v6), or NO. */
  oldest(familyIndex: number): number {
    return this.head[familyIndex]!;
  }

  /** Backward-shift deletion for linear probing: no tombstones. */
  private tableRemove(pos: number): void {
    const t = this.table;
    const mask = this.mask;
    let i = pos;
    t[i] = NO;
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const e = t[j]!;
      if (e === NO) return;
      const k = this.entries[e]!.hash & mask;
      // Move e back to i unless its home k lies cyclically in (i, j].
      const inRange = i <= j ? k > i && k <= j : k > i || k <= j;
      if (!inRange) {
        t[i] = e;
        this.entries[e]!.tablePos = i;
        t[j] = NO;
        i = j;
      }
    }
  }

  private evictOldest(reason: DropReason): boolean {
    const a = this.head[0]!;
    const b = this.head[1]!;
    let e: number;
    if (a === NO) e = b;
    else if (b === NO) e = a;
    else e = this.entries[a]!.created <= this.entries[b]!.created ? a : b;
    if (e === NO) return false;
    this.free(e);
    this.evicted++;
    this.drops.count(reason);
    return true;
  }

  private fail(reason: DropReason): number {
    this.failReason = reason;
    return NO;
  }
}
