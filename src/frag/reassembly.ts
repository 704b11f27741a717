/**
 * IPv4 and IPv6 fragment reassembly.
 *
 * One engine for both families. Datagrams in progress live in a DatagramTable
 * (datagram-table.ts: preallocated entries, a seeded hash over the key bytes, the caps and
 * eviction; keys: IPv4 (src, dst, protocol, id), IPv6 (src, dst, id)); this file reads the
 * headers and applies the RFC rules. Fragment payload is copied straight into one large pool slot
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
import { DropCounters, DropReason } from '../base/drop-reason.ts';
import type { PacketBuffer, PacketPools } from '../base/pool.ts';
import { copyBytes } from '../base/bytes.ts';
import { ipv4HeaderChecksum } from '../wire/checksum.ts';
import { ICMPV6_HEADER_LEN, PARAM_PROBLEM_HEADER_FIELD, PARAM_PROBLEM_INCOMPLETE_CHAIN } from '../wire/icmpv6.ts';
import {
  IP_PROTO_AH,
  IP_PROTO_DEST_OPTS,
  IP_PROTO_EXPERIMENT1,
  IP_PROTO_EXPERIMENT2,
  IP_PROTO_FRAGMENT,
  IP_PROTO_HIP,
  IP_PROTO_HOP_BY_HOP,
  IP_PROTO_ICMPV6,
  IP_PROTO_MOBILITY,
  IP_PROTO_ROUTING,
  IP_PROTO_SHIM6,
  IP_PROTO_TCP,
  IP_PROTO_UDP,
  ipVersion,
} from '../wire/ip.ts';
import { IPV4_DST, IPV4_FLAG_DF, IPV4_HEADER_LEN, IPV4_IDENT, IPV4_SRC, Ipv4Packet } from '../wire/ipv4.ts';
import {
  ahHeaderLength,
  extHeaderLength,
  FRAG_HEADER_LEN,
  FRAG_IDENT,
  FRAG_OFFSET_FLAGS,
  Ipv6FragmentHeader,
} from '../wire/ipv6-ext.ts';
import { IPV6_HEADER_LEN, IPV6_NEXT_HEADER, IPV6_PAYLOAD_LENGTH, IPV6_SRC, Ipv6Packet } from '../wire/ipv6.ts';
import { TCP_HEADER_LEN } from '../wire/tcp.ts';
import { UDP_HEADER_LEN } from '../wire/udp.ts';
import {
  type Datagram,
  DatagramTable,
  NO,
  RANGE_CONFLICTING_END,
  RANGE_DUPLICATE,
  RANGE_EMPTY,
  RANGE_HELD,
  RANGE_OVERLAP,
} from './datagram-table.ts';

/** Where fragment offset 0 lands inside the reassembly slot (room for the header in front). */
export const REASM_DATA_BASE = 256;
export const IPV4_REASM_TIMEOUT_MS = 30_000;
export const IPV6_REASM_TIMEOUT_MS = 60_000;
/** Linux net.ipv4.ipfrag_high_thresh default. */
export const DEFAULT_REASM_MEMORY = 4 * 1024 * 1024;
export const DEFAULT_REASM_DATAGRAMS = 1024;
/** RFC 1858: a TCP first fragment must reach past the flags byte (offset 13). */
export const TCP_TINY_FIRST_FRAGMENT = 14;
/** Largest IPv4 total length / IPv6 payload length. */
const MAX_LENGTH = 65535;

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
  completed = 0;
  duplicates = 0;
  timedOut = 0;
  timeExceededDue = 0;

  private readonly pools: PacketPools;
  private readonly clock: () => number;
  private readonly timeoutV4: number;
  private readonly timeoutV6: number;
  private readonly onTimeExceeded: ReassemblyOptions['onTimeExceeded'];
  private readonly slotBytes: number;
  private readonly table: DatagramTable;
  private readonly v4 = new Ipv4Packet();
  private readonly out4 = new Ipv4Packet();
  private readonly v6 = new Ipv6Packet();
  private readonly out6 = new Ipv6Packet();
  private readonly frag = new Ipv6FragmentHeader();

  constructor(opts: ReassemblyOptions) {
    this.pools = opts.pools;
    this.clock = opts.now ?? (() => performance.now());
    this.timeoutV4 = opts.timeoutV4Ms ?? IPV4_REASM_TIMEOUT_MS;
    this.timeoutV6 = opts.timeoutV6Ms ?? IPV6_REASM_TIMEOUT_MS;
    this.drops = opts.drops ?? new DropCounters();
    this.onTimeExceeded = opts.onTimeExceeded;
    this.slotBytes = opts.pools.large.slotSize;
    this.table = new DatagramTable({
      large: opts.pools.large,
      maxDatagrams: Math.max(1, opts.maxDatagrams ?? DEFAULT_REASM_DATAGRAMS),
      memoryLimit: opts.memoryLimit ?? DEFAULT_REASM_MEMORY,
      drops: this.drops,
    });
  }

  /** Bytes of pool slots held right now. */
  get memory(): number {
    return this.table.memory;
  }
  /** Datagrams in progress. */
  get inProgress(): number {
    return this.table.inProgress;
  }
  /** Datagrams given up to make room (table full, memory limit, pool empty). */
  get evicted(): number {
    return this.table.evicted;
  }

  // ------------------------------------------------------------------ IPv4

  /**
   * Offer one IPv4 packet (buf[off, off+len); run the IPv4 header check first). Returns the
   * completed datagram (caller owns it) or null; `lastStatus` tells NotFragment / Held /
   * Duplicate / Dropped (`lastReason`). The input buffer is never kept.
   */
  submitV4(buf: Uint8Array, off: number, len: number): PacketBuffer | null {
    this.lastReason = DropReason.None;
    if (len < IPV4_HEADER_LEN || off < 0 || off + len > buf.length) return this.reject(DropReason.Truncated);
    const ip = this.v4.wrap(buf, off, len);
    if (ip.version !== 4) return this.reject(DropReason.BadVersion);
    const ihl = ip.headerLength;
    if (ihl < IPV4_HEADER_LEN) return this.reject(DropReason.BadIhl);
    const total = ip.totalLength;
    if (total < ihl || total > len) return this.reject(DropReason.BadTotalLength);
    const mf = ip.moreFragments;
    const offset8 = ip.fragOffsetRaw;
    if (!mf && offset8 === 0) {
      this.lastStatus = ReassemblyStatus.NotFragment;
      return null;
    }
    const start = offset8 << 3;
    const dataLen = total - ihl;
    const end = start + dataLen;
    const proto = ip.protocol;
    if (proto === IP_PROTO_TCP) {
      // RFC 1858: offset 1 could rewrite the TCP flags; a first fragment must hold them.
      if (offset8 === 1) return this.reject(DropReason.FragmentTiny);
      if (start === 0 && dataLen < TCP_TINY_FIRST_FRAGMENT) return this.reject(DropReason.FragmentTiny);
    }
    if (mf && (dataLen === 0 || (dataLen & 7) !== 0)) return this.reject(DropReason.FragmentBadLength);

    const now = this.clock();
    this.expireDue(now);

    const t = this.table;
    const kb = t.keyBytes;
    kb.fill(0);
    kb[0] = 4;
    kb[1] = proto;
    kb[6] = buf[off + IPV4_IDENT]!;
    kb[7] = buf[off + IPV4_IDENT + 1]!;
    for (let i = 0; i < 4; i++) {
      kb[8 + i] = buf[off + IPV4_SRC + i]!;
      kb[24 + i] = buf[off + IPV4_DST + i]!;
    }
    const hash = t.hashKey();
    let e = t.find(hash);

    // Ping of death: the reassembled total length would pass 65535 (or the slot).
    if (ihl + end > MAX_LENGTH || REASM_DATA_BASE + end > this.slotBytes) {
      if (e !== NO) t.free(e);
      return this.reject(DropReason.FragmentTooBig);
    }
    if (e === NO) {
      e = t.create(hash, 4, now, this.timeoutV4);
      if (e === NO) return this.reject(t.failReason);
    }
    const d = t.entry(e);
    const st = this.insert(e, d, buf, off + ihl, dataLen, start, end, !mf);
    if (st !== ReassemblyStatus.Held) return null;
    if (start === 0) {
      // Keep the first fragment's header right in front of the data (rebuilt on completion).
      if (ihl > REASM_DATA_BASE) {
        t.free(e);
        return this.reject(DropReason.FragmentTooBig);
      }
      d.hasFirst = true;
      d.hdrLen = ihl;
      d.firstLen = dataLen;
      copyBytes(buf, off, d.slot!.buf, REASM_DATA_BASE - ihl, ihl);
    }
    if (d.complete) return this.completeV4(e, d);
    return null;
  }

  private completeV4(e: number, d: Datagram): PacketBuffer | null {
    const hdr = d.hdrLen;
    const total = hdr + d.finalLen;
    if (total > MAX_LENGTH) {
      this.table.free(e);
      return this.reject(DropReason.FragmentTooBig);
    }
    const p = this.table.takeSlot(e);
    const b = p.buf;
    const hs = REASM_DATA_BASE - hdr;
    const ip = this.out4.wrap(b, hs, total);
    ip.totalLength = total;
    ip.flagsFragWord &= IPV4_FLAG_DF; // keep DF, clear MF and the offset
    ip.checksum = 0;
    ip.checksum = ipv4HeaderChecksum(b, hs);
    p.offset = hs;
    p.length = total;
    this.table.free(e);
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
    if (len < IPV6_HEADER_LEN || off < 0 || off + len > buf.length) return this.reject(DropReason.Truncated);
    if (ipVersion(buf, off) !== 6) return this.reject(DropReason.BadVersion);
    const pktEnd = off + this.v6.wrap(buf, off, len).totalLength;
    if (pktEnd > off + len) return this.reject(DropReason.BadPayloadLength);

    // Walk the unfragmentable part to the fragment header.
    let nh = buf[off + IPV6_NEXT_HEADER]!;
    let prevNh = off + IPV6_NEXT_HEADER;
    let pos = off + IPV6_HEADER_LEN;
    let hops = 0;
    while (nh !== IP_PROTO_FRAGMENT) {
      if (nh !== IP_PROTO_HOP_BY_HOP && nh !== IP_PROTO_ROUTING && nh !== IP_PROTO_DEST_OPTS) {
        this.lastStatus = ReassemblyStatus.NotFragment;
        return null;
      }
      if (nh === IP_PROTO_HOP_BY_HOP && hops !== 0) return this.reject(DropReason.BadExtHeaderOrder);
      if (++hops > MAX_EXT_HEADERS) return this.reject(DropReason.ExtHeaderChainTooLong);
      if (pos + 2 > pktEnd) return this.reject(DropReason.Truncated);
      const hl = extHeaderLength(buf, pos);
      if (pos + hl > pktEnd) return this.reject(DropReason.BadExtHeaderLength);
      prevNh = pos;
      nh = buf[pos]!;
      pos += hl;
    }
    if (pos + FRAG_HEADER_LEN > pktEnd) return this.reject(DropReason.Truncated);
    const unfrag = pos - off;
    const fh = this.frag.wrap(buf, pos, FRAG_HEADER_LEN);
    const fnh = fh.nextHeader;
    const start = fh.fragmentOffset;
    const more = fh.moreFragments;
    const dataOff = pos + FRAG_HEADER_LEN;
    const dataLen = pktEnd - dataOff;
    const end = start + dataLen;

    if (start === 0) {
      // RFC 7112: the first fragment holds the whole chain through the upper-layer header.
      const r = chainComplete(buf, dataOff, pktEnd, fnh);
      if (r !== DropReason.None) {
        if (r === DropReason.FragmentIncompleteChain) {
          this.icmpCode = PARAM_PROBLEM_INCOMPLETE_CHAIN;
          this.icmpPointer = 0;
        }
        return this.reject(r);
      }
      if (!more) return this.atomic(buf, off, prevNh - off, unfrag, fnh, dataOff, dataLen);
    }
    if (more && (dataLen === 0 || (dataLen & 7) !== 0)) {
      this.icmpCode = PARAM_PROBLEM_HEADER_FIELD;
      this.icmpPointer = IPV6_PAYLOAD_LENGTH;
      return this.reject(DropReason.FragmentBadLength);
    }

    const now = this.clock();
    this.expireDue(now);

    const t = this.table;
    const kb = t.keyBytes;
    kb[0] = 6;
    kb[1] = 0;
    kb[2] = 0;
    kb[3] = 0;
    for (let i = 0; i < 4; i++) kb[4 + i] = buf[pos + FRAG_IDENT + i]!;
    for (let i = 0; i < 32; i++) kb[8 + i] = buf[off + IPV6_SRC + i]!; // source and destination
    const hash = t.hashKey();
    let e = t.find(hash);

    if (unfrag - IPV6_HEADER_LEN + end > MAX_LENGTH || REASM_DATA_BASE + end > this.slotBytes) {
      if (e !== NO) t.free(e);
      this.icmpCode = PARAM_PROBLEM_HEADER_FIELD;
      this.icmpPointer = unfrag + FRAG_OFFSET_FLAGS; // the Fragment Offset field
      return this.reject(DropReason.FragmentTooBig);
    }
    if (e === NO) {
      e = t.create(hash, 6, now, this.timeoutV6);
      if (e === NO) return this.reject(t.failReason);
    }
    const d = t.entry(e);
    const st = this.insert(e, d, buf, dataOff, dataLen, start, end, !more);
    if (st !== ReassemblyStatus.Held) return null;
    if (start === 0) {
      if (unfrag + FRAG_HEADER_LEN > REASM_DATA_BASE) {
        t.free(e);
        return this.reject(DropReason.FragmentTooBig);
      }
      d.hasFirst = true;
      d.hdrLen = unfrag;
      d.prevNh = prevNh - off;
      d.nextHeader = fnh;
      d.firstLen = dataLen;
      copyBytes(buf, off, d.slot!.buf, REASM_DATA_BASE - unfrag - FRAG_HEADER_LEN, unfrag + FRAG_HEADER_LEN);
    }
    if (d.complete) return this.completeV6(e, d);
    return null;
  }

  private completeV6(e: number, d: Datagram): PacketBuffer | null {
    const unfrag = d.hdrLen;
    const plen = unfrag - IPV6_HEADER_LEN + d.finalLen;
    if (plen > MAX_LENGTH) {
      this.table.free(e);
      return this.reject(DropReason.FragmentTooBig);
    }
    const p = this.table.takeSlot(e);
    const b = p.buf;
    // The first fragment's headers and its fragment header sit in front of the data: drop the
    // fragment header by moving the unfragmentable part up over it.
    const hs = REASM_DATA_BASE - unfrag - FRAG_HEADER_LEN;
    b[hs + d.prevNh] = d.nextHeader;
    b.copyWithin(hs + FRAG_HEADER_LEN, hs, hs + unfrag);
    const ns = hs + FRAG_HEADER_LEN;
    this.out6.wrap(b, ns, unfrag + d.finalLen).payloadLength = plen;
    p.offset = ns;
    p.length = unfrag + d.finalLen;
    this.table.free(e);
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
    this.out6.wrap(b, o, total).payloadLength = total - IPV6_HEADER_LEN;
    p.length = total;
    this.completed++;
    this.lastStatus = ReassemblyStatus.Complete;
    return p;
  }

  // ------------------------------------------------------------------ shared

  /**
   * Add one fragment's data [start, end) to datagram e. Returns Held when accepted (data copied
   * in; the caller then records first-fragment facts), Duplicate, or Dropped (the datagram freed
   * for an overlap or conflicting ends; kept for an empty non-last fragment).
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
    switch (d.addRange(start, end, last)) {
      case RANGE_HELD:
        if (dataLen > 0) copyBytes(src, dataOff, d.slot!.buf, REASM_DATA_BASE + start, dataLen);
        this.lastStatus = ReassemblyStatus.Held;
        return ReassemblyStatus.Held;
      case RANGE_DUPLICATE:
        this.duplicates++;
        this.drops.count(DropReason.FragmentDuplicate);
        this.lastStatus = ReassemblyStatus.Duplicate;
        return ReassemblyStatus.Duplicate;
      case RANGE_OVERLAP:
        this.table.free(e);
        this.reject(DropReason.FragmentOverlap);
        return ReassemblyStatus.Dropped;
      case RANGE_CONFLICTING_END:
        this.table.free(e);
        this.reject(DropReason.FragmentConflictingEnd);
        return ReassemblyStatus.Dropped;
      case RANGE_EMPTY:
      default:
        this.reject(DropReason.FragmentBadLength);
        return ReassemblyStatus.Dropped;
    }
  }

  private reject(reason: DropReason): null {
    this.drops.count(reason);
    this.lastStatus = ReassemblyStatus.Dropped;
    this.lastReason = reason;
    return null;
  }

  private expireDue(now: number): number {
    let n = 0;
    for (let e = this.table.oldestDue(now); e !== NO; e = this.table.oldestDue(now)) {
      this.expire(e);
      n++;
    }
    return n;
  }

  private expire(e: number): void {
    const d = this.table.entry(e);
    this.timedOut++;
    this.drops.count(DropReason.FragmentTimeout);
    if (d.hasFirst && d.slot !== null) {
      this.timeExceededDue++;
      if (this.onTimeExceeded !== undefined) {
        const hs = REASM_DATA_BASE - d.hdrLen - (d.family === 6 ? FRAG_HEADER_LEN : 0);
        const len = REASM_DATA_BASE + d.firstLen - hs;
        this.onTimeExceeded(d.family === 4 ? 4 : 6, d.slot.buf, hs, len);
      }
    }
    this.table.free(e);
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
      for (let e = this.table.oldest(f); e !== NO; e = this.table.oldest(f)) this.table.free(e);
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
      case IP_PROTO_HOP_BY_HOP:
      case IP_PROTO_ROUTING:
      case IP_PROTO_DEST_OPTS:
      case IP_PROTO_MOBILITY:
      case IP_PROTO_HIP:
      case IP_PROTO_SHIM6:
      case IP_PROTO_EXPERIMENT1:
      case IP_PROTO_EXPERIMENT2: {
        if (pos + 2 > end) return DropReason.FragmentIncompleteChain;
        const hl = extHeaderLength(buf, pos);
        if (pos + hl > end) return DropReason.FragmentIncompleteChain;
        nh = buf[pos]!;
        pos += hl;
        continue;
      }
      case IP_PROTO_AH: {
        // AH: length in 4-byte units minus 2.
        if (pos + 2 > end) return DropReason.FragmentIncompleteChain;
        const hl = ahHeaderLength(buf, pos);
        if (pos + hl > end) return DropReason.FragmentIncompleteChain;
        nh = buf[pos]!;
        pos += hl;
        continue;
      }
      case IP_PROTO_FRAGMENT:
        // A second fragment header inside a fragment: never legitimate.
        return DropReason.BadExtHeaderOrder;
      case IP_PROTO_TCP:
        return pos + TCP_HEADER_LEN <= end ? DropReason.None : DropReason.FragmentIncompleteChain;
      case IP_PROTO_UDP:
        return pos + UDP_HEADER_LEN <= end ? DropReason.None : DropReason.FragmentIncompleteChain;
      case IP_PROTO_ICMPV6:
        return pos + ICMPV6_HEADER_LEN <= end ? DropReason.None : DropReason.FragmentIncompleteChain;
      default:
        return DropReason.None;
    }
  }
}
