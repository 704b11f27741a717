/**
 * IPv4 and IPv6 fragment reassembly.
 *
 * One engine for both families. Datagrams in progress live in a fixed table of preallocated
 * entries, found through an open-addressing hash table over typed arrays (keys are compared as
 * bytes: IPv4 (src, dst, protocol, id), IPv6 (src, dst, id); the hash is keyed with a random seed so
 * outsiders cannot aim collisions). Fragment payload is copied straight into one large pool slot
 * per datagram at REASM_DATA_BASE + fragment offset; the offset-0 fragment's header is kept right in
 * front of the data, so the finished datagram is rebuilt in place and handed back as ONE
 * PacketBuffer without a second copy.
 *
 * Rules (each rejection is a DropReason, counted, never an exception):
 * - any order; an exact duplicate (same start and end) is discarded silently and counted;
 * - ANY other overlap drops the whole datagram and forgets it (RFC 5722 for IPv6, Linux for IPv4);
 * - a datagram that would exceed 65535 bytes (IPv4 total length / IPv6 payload length) is dropped;
 * - conflicting ends (two different last fragments, data beyond the last fragment) drop it;
 * - non-last fragments must carry a non-zero multiple of 8 bytes;
 * - RFC 1858 for TCP over IPv4: a fragment at offset 8 bytes is dropped, and a first fragment
 *   shorter than the TCP flags (14 bytes) is dropped;
 * - RFC 7112 / RFC 8200 4.5: an IPv6 first fragment must hold the whole header chain up to and
 *   including the upper-layer header (TCP 20, UDP 8, ICMPv6 8 bytes) — else FragmentIncompleteChain
 *   (the caller may answer with ICMPv6 parameter problem code 3, pointer 0);
 * - RFC 6946: an IPv6 atomic fragment (offset 0, M = 0) is returned at once with its fragment
 *   header removed, never looked up in or mixed with the datagrams in progress;
 * - a per-datagram timer from the first fragment seen: 30 s for IPv4 (Linux ipfrag_time), 60 s for
 *   IPv6 (RFC 8200); expiry calls `onTimeExceeded` with the offset-0 fragment as received, only when
 *   that fragment had arrived (RFC 792 / RFC 8200: time exceeded, code 1);
 * - a memory cap (default 4 MiB, like Linux ipfrag_high_thresh, counting the whole pool slot each
 *   datagram holds) and a cap on datagrams in progress; the oldest datagram is evicted first.
 *
 * Clock: injectable `now()` in milliseconds; no timers, no closures per datagram: call poll(now)
 * every second or so (submit also expires what is due).
 *
 * Ownership: the engine never owns the caller's fragment buffers (it copies), and a completed
 * datagram is returned as a PacketBuffer the caller now owns and must release.
 */
import { randomBytes } from 'node:crypto';
import { DropCounters, DropReason } from '../base/drop-reason.ts';
import type { BufferPool, PacketBuffer, PacketPools } from '../base/pool.ts';
import { copyBytes } from '../base/bytes.ts';
import { ipv4HeaderChecksum } from '../wire/checksum.ts';

/** Where fragment offset 0 lands inside the reassembly slot (room for the header in front). */
export const REASM_DATA_BASE = 256;
export const IPV4_REASM_TIMEOUT_MS = 30_000;
export const IPV6_REASM_TIMEOUT_MS = 60_000;
/** Linux net.ipv4.ipfrag_high_thresh default. */
export const DEFAULT_REASM_MEMORY = 4 * 1024 * 1024;
export const DEFAULT_REASM_DATAGRAMS = 1024;
/** RFC 1858: a TCP first fragment must reach past the flags byte (offset 13). */
export const TCP_TINY_FIRST_FRAGMENT = 14;

export enum ReassemblyStatus {
  /** Not a fragment (IPv4 MF = 0 and offset 0; IPv6 without a fragment header): use it as is. */
  NotFragment = 0,
  /** Accepted and held; the datagram is not complete yet. */
  Held = 1,
  /** The datagram is complete (or an IPv6 atomic fragment was unwrapped): a buffer was returned. */
  Complete = 2,
  /** An exact duplicate of a fragment already held: discarded, counted. */
  Duplicate = 3,
  /** Rejected: see `lastReason` (already counted in `drops`). */
  Dropped = 4,
}

export interface ReassemblyOptions {
  /** `large` slots hold datagrams in progress; `acquire(n)` is used for atomic fragments. */
  pools: PacketPools;
  /** Milliseconds, monotonic. Default: performance.now(). */
  now?: () => number;
  timeoutV4Ms?: number;
  timeoutV6Ms?: number;
  /** Bytes of pool slots held by datagrams in progress (default 4 MiB). */
  memoryLimit?: number;
  /** Datagrams in progress (default 1024). */
  maxDatagrams?: number;
  /** Where drops are counted (share the pipeline's counters); a private one by default. */
  drops?: DropCounters;
  /**
   * Reassembly timed out and the first fragment had arrived: build an ICMP time exceeded
   * (code 1) quoting buf[offset, offset+length) — the offset-0 fragment exactly as it arrived.
   * The bytes are valid only during the call. May be called from poll() and from submit*().
   */
  onTimeExceeded?: (family: 4 | 6, buf: Buffer, offset: number, length: number) => void;
}

const NO = -1;
const KEY_WORDS = 10; // 40 bytes: family, proto, 0, 0, id(4), src(16), dst(16)

class Datagram {
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
}

export class Reassembler {
  readonly drops: DropCounters;
  /** Last submit's outcome and reason (None unless Dropped). */
  lastStatus: ReassemblyStatus = ReassemblyStatus.NotFragment;
  lastReason: DropReason = DropReason.None;
  /**
   * After an IPv6 drop that RFC 8200 4.5 / RFC 7112 answer with ICMPv6 Parameter Problem: its
   * code (0 header field, 3 incomplete chain) and pointer (from the start of the IPv6 header);
   * -1 otherwise (silent drop). Check mayReplyWithIcmpv6Error before sending.
   */
  icmpCode = -1;
  icmpPointer = -1;
  /** Bytes of pool slots held right now. */
  memory = 0;
  inProgress = 0;
  completed = 0;
  duplicates = 0;
  timedOut = 0;
  evicted = 0;
  timeExceededDue = 0;

  private readonly pools: PacketPools;
  private readonly large: BufferPool;
  private readonly clock: () => number;
  private readonly timeoutV4: number;
  private readonly timeoutV6: number;
  private readonly memoryLimit: number;
  private readonly maxDatagrams: number;
  private readonly onTimeExceeded: ReassemblyOptions['onTimeExceeded'];
  private readonly slotBytes: number;

  private readonly entries: Datagram[];
  private readonly freeList: Int32Array;
  private freeTop: number;
  private readonly keys: Int32Array;
  private readonly table: Int32Array;
  private readonly mask: number;
  private readonly seed: number;
  private readonly keyBytes = new Uint8Array(KEY_WORDS * 4);
  private readonly keyWords = new Int32Array(this.keyBytes.buffer);
  /** Oldest-first lists per family (index 0: v4, 1: v6): creation order == deadline order. */
  private readonly head = new Int32Array([NO, NO]);
  private readonly tail = new Int32Array([NO, NO]);

  constructor(opts: ReassemblyOptions) {
    this.pools = opts.pools;
    this.large = opts.pools.large;
    this.clock = opts.now ?? (() => performance.now());
    this.timeoutV4 = opts.timeoutV4Ms ?? IPV4_REASM_TIMEOUT_MS;
    this.timeoutV6 = opts.timeoutV6Ms ?? IPV6_REASM_TIMEOUT_MS;
    this.memoryLimit = opts.memoryLimit ?? DEFAULT_REASM_MEMORY;
    this.maxDatagrams = Math.max(1, opts.maxDatagrams ?? DEFAULT_REASM_DATAGRAMS);
    this.drops = opts.drops ?? new DropCounters();
    this.onTimeExceeded = opts.onTimeExceeded;
    this.slotBytes = this.large.slotSize;

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

  // ------------------------------------------------------------------ IPv4

  /**
   * Offer one IPv4 packet (buf[off, off+len); run the IPv4 header check first). Returns the
   * completed datagram (caller owns it) or null; `lastStatus` tells NotFragment / Held /
   * Duplicate / Dropped (`lastReason`). The input buffer is never kept.
   */
  submitV4(buf: Uint8Array, off: number, len: number): PacketBuffer | null {
    this.lastReason = DropReason.None;
    if (len < 20 || off < 0 || off + len > buf.length) return this.reject(DropReason.Truncated);
    const vihl = buf[off]!;
    if (vihl >> 4 !== 4) return this.reject(DropReason.BadVersion);
    const ihl = (vihl & 15) << 2;
    if (ihl < 20) return this.reject(DropReason.BadIhl);
    const total = (buf[off + 2]! << 8) | buf[off + 3]!;
    if (total < ihl || total > len) return this.reject(DropReason.BadTotalLength);
    const fo = (buf[off + 6]! << 8) | buf[off + 7]!;
    const mf = (fo & 0x2000) !== 0;
    const offset8 = fo & 0x1fff;
    if (!mf && offset8 === 0) {
      this.lastStatus = ReassemblyStatus.NotFragment;
      return null;
    }
    const start = offset8 << 3;
    const dataLen = total - ihl;
    const end = start + dataLen;
    const proto = buf[off + 9]!;
    if (proto === 6) {
      // RFC 1858: offset 1 could rewrite the TCP flags; a first fragment must hold them.
      if (offset8 === 1) return this.reject(DropReason.FragmentTiny);
      if (start === 0 && dataLen < TCP_TINY_FIRST_FRAGMENT) return this.reject(DropReason.FragmentTiny);
    }
    if (mf && (dataLen === 0 || (dataLen & 7) !== 0)) return this.reject(DropReason.FragmentBadLength);

    const now = this.clock();
    this.expireDue(now);

    const kb = this.keyBytes;
    kb.fill(0);
    kb[0] = 4;
    kb[1] = proto;
    kb[6] = buf[off + 4]!;
    kb[7] = buf[off + 5]!;
    for (let i = 0; i < 4; i++) {
      kb[8 + i] = buf[off + 12 + i]!;
      kb[24 + i] = buf[off + 16 + i]!;
    }
    const hash = this.hashKey();
    let e = this.find(hash);

    // Ping of death: the reassembled total length would pass 65535 (or the slot).
    if (ihl + end > 65535 || REASM_DATA_BASE + end > this.slotBytes) {
      if (e !== NO) this.free(e);
      return this.reject(DropReason.FragmentTooBig);
    }
    if (e === NO) {
      e = this.create(hash, 4, now);
      if (e === NO) return null; // reason set by create()
    }
    const d = this.entries[e]!;
    const st = this.insert(e, d, buf, off + ihl, dataLen, start, end, !mf);
    if (st !== ReassemblyStatus.Held) return null;
    if (start === 0) {
      // Keep the first fragment's header right in front of the data (rebuilt on completion).
      if (ihl > REASM_DATA_BASE) {
        this.free(e);
        return this.reject(DropReason.FragmentTooBig);
      }
      d.hasFirst = true;
      d.hdrLen = ihl;
      d.firstLen = dataLen;
      copyBytes(buf, off, d.slot!.buf, REASM_DATA_BASE - ihl, ihl);
    }
    if (d.finalLen >= 0 && d.received === d.finalLen && d.hasFirst) return this.completeV4(e, d);
    return null;
  }

  private completeV4(e: number, d: Datagram): PacketBuffer | null {
    const hdr = d.hdrLen;
    const total = hdr + d.finalLen;
    if (total > 65535) {
      this.free(e);
      return this.reject(DropReason.FragmentTooBig);
    }
    const p = d.slot!;
    const b = p.buf;
    const hs = REASM_DATA_BASE - hdr;
    b[hs + 2] = total >>> 8;
    b[hs + 3] = total & 0xff;
    b[hs + 6] &= 0x40; // keep DF, clear MF and the offset
    b[hs + 7] = 0;
    b[hs + 10] = 0;
    b[hs + 11] = 0;
    const c = ipv4HeaderChecksum(b, hs);
    b[hs + 10] = c >>> 8;
    b[hs + 11] = c & 0xff;
    p.offset = hs;
    p.length = total;
    d.slot = null;
    this.memory -= this.slotBytes;
    this.free(e);
    this.completed++;
    this.lastStatus = ReassemblyStatus.Complete;
    return p;
  }

  // ------------------------------------------------------------------ IPv6

  /**
   * Offer one IPv6 packet (buf[off, off+len); run the IPv6 header check first). The extension
   * chain is walked (hop-by-hop / routing / destination options) to the fragment header; a
   * packet without one is NotFragment. Returns a completed datagram (fragment header removed,
   * next header and payload length fixed; caller owns it) or null, like submitV4.
   */
  submitV6(buf: Uint8Array, off: number, len: number): PacketBuffer | null {
    this.lastReason = DropReason.None;
    this.icmpCode = -1;
    this.icmpPointer = -1;
    if (len < 40 || off < 0 || off + len > buf.length) return this.reject(DropReason.Truncated);
    if (buf[off]! >> 4 !== 6) return this.reject(DropReason.BadVersion);
    const plen = (buf[off + 4]! << 8) | buf[off + 5]!;
    const pktEnd = off + 40 + plen;
    if (pktEnd > off + len) return this.reject(DropReason.BadPayloadLength);

    // Walk the unfragmentable part to the fragment header.
    let nh = buf[off + 6]!;
    let prevNh = off + 6;
    let pos = off + 40;
    let hops = 0;
    while (nh !== 44) {
      if (nh !== 0 && nh !== 43 && nh !== 60) {
        this.lastStatus = ReassemblyStatus.NotFragment;
        return null;
      }
      if (nh === 0 && hops !== 0) return this.reject(DropReason.BadExtHeaderOrder);
      if (++hops > MAX_EXT_HEADERS) return this.reject(DropReason.ExtHeaderChainTooLong);
      if (pos + 2 > pktEnd) return this.reject(DropReason.Truncated);
      const hl = (buf[pos + 1]! + 1) << 3;
      if (pos + hl > pktEnd) return this.reject(DropReason.BadExtHeaderLength);
      prevNh = pos;
      nh = buf[pos]!;
      pos += hl;
    }
    if (pos + 8 > pktEnd) return this.reject(DropReason.Truncated);
    const unfrag = pos - off;
    const fnh = buf[pos]!;
    const fo = (buf[pos + 2]! << 8) | buf[pos + 3]!;
    const start = fo & 0xfff8;
    const more = (fo & 1) !== 0;
    const dataOff = pos + 8;
    const dataLen = pktEnd - dataOff;
    const end = start + dataLen;

    if (start === 0) {
      // RFC 7112: the first fragment holds the whole chain through the upper-layer header.
      const r = chainComplete(buf, dataOff, pktEnd, fnh);
      if (r !== DropReason.None) {
        if (r === DropReason.FragmentIncompleteChain) {
          this.icmpCode = 3;
          this.icmpPointer = 0;
        }
        return this.reject(r);
      }
      if (!more) return this.atomic(buf, off, prevNh - off, unfrag, fnh, dataOff, dataLen);
    }
    if (more && (dataLen === 0 || (dataLen & 7) !== 0)) {
      this.icmpCode = 0;
      this.icmpPointer = 4; // Payload Length
      return this.reject(DropReason.FragmentBadLength);
    }

    const now = this.clock();
    this.expireDue(now);

    const kb = this.keyBytes;
    kb[0] = 6;
    kb[1] = 0;
    kb[2] = 0;
    kb[3] = 0;
    for (let i = 0; i < 4; i++) kb[4 + i] = buf[pos + 4 + i]!;
    for (let i = 0; i < 32; i++) kb[8 + i] = buf[off + 8 + i]!;
    const hash = this.hashKey();
    let e = this.find(hash);

    if (unfrag - 40 + end > 65535 || REASM_DATA_BASE + end > this.slotBytes) {
      if (e !== NO) this.free(e);
      this.icmpCode = 0;
      this.icmpPointer = unfrag + 2; // Fragment Offset
      return this.reject(DropReason.FragmentTooBig);
    }
    if (e === NO) {
      e = this.create(hash, 6, now);
      if (e === NO) return null;
    }
    const d = this.entries[e]!;
    const st = this.insert(e, d, buf, dataOff, dataLen, start, end, !more);
    if (st !== ReassemblyStatus.Held) return null;
    if (start === 0) {
      if (unfrag + 8 > REASM_DATA_BASE) {
        this.free(e);
        return this.reject(DropReason.FragmentTooBig);
      }
      d.hasFirst = true;
      d.hdrLen = unfrag;
      d.prevNh = prevNh - off;
      d.nextHeader = fnh;
      d.firstLen = dataLen;
      copyBytes(buf, off, d.slot!.buf, REASM_DATA_BASE - unfrag - 8, unfrag + 8);
    }
    if (d.finalLen >= 0 && d.received === d.finalLen && d.hasFirst) return this.completeV6(e, d);
    return null;
  }

  private completeV6(e: number, d: Datagram): PacketBuffer | null {
    const unfrag = d.hdrLen;
    const plen = unfrag - 40 + d.finalLen;
    if (plen > 65535) {
      this.free(e);
      return this.reject(DropReason.FragmentTooBig);
    }
    const p = d.slot!;
    const b = p.buf;
    const hs = REASM_DATA_BASE - unfrag - 8;
    b[hs + d.prevNh] = d.nextHeader;
    b.copyWithin(hs + 8, hs, hs + unfrag);
    const ns = hs + 8;
    b[ns + 4] = plen >>> 8;
    b[ns + 5] = plen & 0xff;
    p.offset = ns;
    p.length = unfrag + d.finalLen;
    d.slot = null;
    this.memory -= this.slotBytes;
    this.free(e);
    this.completed++;
    this.lastStatus = ReassemblyStatus.Complete;
    return p;
  }

  /** RFC 6946: an atomic fragment is the whole datagram; unwrap it into its own buffer. */
  private atomic(
    buf: Uint8Array,
    off: number,
    prevNhRel: number,
    unfrag: number,
    fnh: number,
    dataOff: number,
    dataLen: number,
  ): PacketBuffer | null {
    const total = unfrag + dataLen;
    const p = this.pools.acquire(total);
    if (p === null) return this.reject(DropReason.PoolExhausted);
    const b = p.buf;
    const o = p.offset;
    if (o + total > b.length) {
      p.release();
      return this.reject(DropReason.FragmentTooBig);
    }
    copyBytes(buf, off, b, o, unfrag);
    copyBytes(buf, dataOff, b, o + unfrag, dataLen);
    b[o + prevNhRel] = fnh;
    const plen = total - 40;
    b[o + 4] = plen >>> 8;
    b[o + 5] = plen & 0xff;
    p.length = total;
    this.completed++;
    this.lastStatus = ReassemblyStatus.Complete;
    return p;
  }

  // ------------------------------------------------------------------ shared

  /**
   * Insert one fragment's data [start, end) into datagram e. Returns Held when accepted (the
   * caller then records first-fragment facts), Duplicate, or Dropped (entry freed).
   */
  private insert(
    e: number,
    d: Datagram,
    src: Uint8Array,
    dataOff: number,
    dataLen: number,
    start: number,
    end: number,
    last: boolean,
  ): ReassemblyStatus {
    if (last) {
      if ((d.finalLen >= 0 && d.finalLen !== end) || d.maxEnd > end) {
        // An exact duplicate of the last fragment is fine; anything else conflicts.
        this.free(e);
        this.reject(DropReason.FragmentConflictingEnd);
        return ReassemblyStatus.Dropped;
      }
    } else if (d.finalLen >= 0 && end > d.finalLen) {
      this.free(e);
      this.reject(DropReason.FragmentConflictingEnd);
      return ReassemblyStatus.Dropped;
    }

    if (dataLen > 0) {
      const n = d.n;
      let at = n;
      if (n > 0 && start < d.ends[n - 1]!) {
        // Binary search: the first held fragment that ends after `start`.
        let lo = 0;
        let hi = n - 1;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (d.ends[mid]! > start) hi = mid;
          else lo = mid + 1;
        }
        at = lo;
        if (d.starts[at]! < end) {
          if (d.starts[at] === start && d.ends[at] === end) {
            this.duplicates++;
            this.drops.count(DropReason.FragmentDuplicate);
            this.lastStatus = ReassemblyStatus.Duplicate;
            return ReassemblyStatus.Duplicate;
          }
          this.free(e);
          this.reject(DropReason.FragmentOverlap);
          return ReassemblyStatus.Dropped;
        }
      }
      if (n === d.starts.length) {
        // Grows once per entry (entries are recycled): not in steady state.
        const s = new Int32Array(n * 2);
        const t = new Int32Array(n * 2);
        s.set(d.starts);
        t.set(d.ends);
        d.starts = s;
        d.ends = t;
      }
      if (at < n) {
        d.starts.copyWithin(at + 1, at, n);
        d.ends.copyWithin(at + 1, at, n);
      }
      d.starts[at] = start;
      d.ends[at] = end;
      d.n = n + 1;
      copyBytes(src, dataOff, d.slot!.buf, REASM_DATA_BASE + start, dataLen);
      d.received += dataLen;
      if (end > d.maxEnd) d.maxEnd = end;
    } else if (!last) {
      this.reject(DropReason.FragmentBadLength);
      return ReassemblyStatus.Dropped;
    } else if (d.finalLen === end) {
      // A repeated empty last fragment.
      this.duplicates++;
      this.drops.count(DropReason.FragmentDuplicate);
      this.lastStatus = ReassemblyStatus.Duplicate;
      return ReassemblyStatus.Duplicate;
    }
    if (last) d.finalLen = end;
    this.lastStatus = ReassemblyStatus.Held;
    return ReassemblyStatus.Held;
  }

  private reject(reason: DropReason): null {
    this.drops.count(reason);
    this.lastStatus = ReassemblyStatus.Dropped;
    this.lastReason = reason;
    return null;
  }

  private hashKey(): number {
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

  private find(hash: number): number {
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

  /** A new datagram for the key in keyWords, evicting the oldest if a limit is reached. */
  private create(hash: number, family: 4 | 6, now: number): number {
    while (this.inProgress >= this.maxDatagrams) {
      if (!this.evictOldest(DropReason.FragmentTableFull)) break;
    }
    while (this.memory + this.slotBytes > this.memoryLimit) {
      if (!this.evictOldest(DropReason.FragmentMemoryLimit)) {
        this.reject(DropReason.FragmentMemoryLimit);
        return NO;
      }
    }
    let slot = this.large.acquire();
    while (slot === null) {
      // The pipeline holds the rest of the large pool: give up our oldest datagram.
      if (!this.evictOldest(DropReason.PoolExhausted)) {
        this.reject(DropReason.PoolExhausted);
        return NO;
      }
      slot = this.large.acquire();
    }
    if (this.freeTop === 0) {
      slot.release();
      this.reject(DropReason.FragmentTableFull);
      return NO;
    }
    const e = this.freeList[--this.freeTop]!;
    const d = this.entries[e]!;
    d.slot = slot;
    d.family = family;
    d.created = now;
    d.deadline = now + (family === 4 ? this.timeoutV4 : this.timeoutV6);
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

  /** Forget datagram e and release its slot (if it still has one). */
  private free(e: number): void {
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

  private expireDue(now: number): number {
    let n = 0;
    for (let f = 0; f < 2; f++) {
      for (;;) {
        const e = this.head[f]!;
        if (e === NO || this.entries[e]!.deadline > now) break;
        this.expire(e);
        n++;
      }
    }
    return n;
  }

  private expire(e: number): void {
    const d = this.entries[e]!;
    this.timedOut++;
    this.drops.count(DropReason.FragmentTimeout);
    if (d.hasFirst && d.slot !== null) {
      this.timeExceededDue++;
      if (this.onTimeExceeded !== undefined) {
        const hs = REASM_DATA_BASE - d.hdrLen - (d.family === 6 ? 8 : 0);
        const len = REASM_DATA_BASE + d.firstLen - hs;
        this.onTimeExceeded(d.family === 4 ? 4 : 6, d.slot.buf, hs, len);
      }
    }
    this.free(e);
  }

  /**
   * Expire every datagram whose timer ran out (calling onTimeExceeded for those whose first
   * fragment had arrived). Returns how many expired. Call it about once a second.
   */
  poll(now: number = this.clock()): number {
    return this.expireDue(now);
  }

  /** Drop every datagram in progress (shutdown, tests); no ICMP. */
  clear(): void {
    for (let f = 0; f < 2; f++) {
      while (this.head[f] !== NO) this.free(this.head[f]!);
    }
  }
}

/** Hop-by-hop, routing, fragment, destination options, AH, mobility, HIP, shim6, experiments. */
const MAX_EXT_HEADERS = 16;

/**
 * RFC 7112 / RFC 8200 4.5 for a first fragment: walk the extension headers carried in the
 * fragmentable part (from nh at buf[pos]) and require the upper-layer header to be whole:
 * TCP 20 bytes, UDP 8, ICMPv6 8 (the sizes Linux checks). ESP (opaque) and no-next-header end it.
 */
function chainComplete(buf: Uint8Array, pos: number, end: number, nh: number): DropReason {
  for (let hops = 0; ; hops++) {
    if (hops > MAX_EXT_HEADERS) return DropReason.ExtHeaderChainTooLong;
    switch (nh) {
      case 0:
      case 43:
      case 60:
      case 135:
      case 139:
      case 140:
      case 253:
      case 254: {
        if (pos + 2 > end) return DropReason.FragmentIncompleteChain;
        const hl = (buf[pos + 1]! + 1) << 3;
        if (pos + hl > end) return DropReason.FragmentIncompleteChain;
        nh = buf[pos]!;
        pos += hl;
        continue;
      }
      case 51: {
        // AH: length in 4-byte units minus 2.
        if (pos + 2 > end) return DropReason.FragmentIncompleteChain;
        const hl = (buf[pos + 1]! + 2) << 2;
        if (pos + hl > end) return DropReason.FragmentIncompleteChain;
        nh = buf[pos]!;
        pos += hl;
        continue;
      }
      case 44:
        // A second fragment header inside a fragment: never legitimate.
        return DropReason.BadExtHeaderOrder;
      case 6:
        return pos + 20 <= end ? DropReason.None : DropReason.FragmentIncompleteChain;
      case 17:
      case 58:
        return pos + 8 <= end ? DropReason.None : DropReason.FragmentIncompleteChain;
      default:
        return DropReason.None;
    }
  }
}
