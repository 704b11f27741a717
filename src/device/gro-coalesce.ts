/**
 * GRO coalesce: merge in-order TCP segments of one flow from a batch of received packets into
 * super-packets a TUN with IFF_VNET_HDR accepts in one write (virtio gso_type TCPV4/TCPV6), so
 * the kernel's TCP receives ~48 segments per system call instead of one.
 *
 * Usage per batch (all packets of a batch live in one buffer, e.g. a pool slab):
 *
 *   gro.reset(slab);
 *   for each received packet: gro.add(off, len);        // returns its entry, or -1: batch full
 *   gro.finish();                                        // headers of merged entries rewritten
 *   for (let e = 0; e < gro.count; e++) {
 *     const n = gro.writeIovecs(e, mem, iovOff, slabAddr, arenaAddr);   // [vnet][head][payloads]
 *     tun.writev(mem.addr(iovOff), n);
 *   }
 *
 * Entries keep the order of their first packet. An entry is either one packet passed through
 * (a plain virtio header with hdr_len = its length; never all-zero) or a head packet followed by
 * the payloads of the segments merged into it (zero-copy: the payloads stay where they are).
 *
 * A segment joins the flow's open entry only when, like Linux's tcp_gro_receive and
 * wireguard-go's tcpGRO: same addresses and ports; IPv4 without options and not a fragment,
 * same TOS, TTL and DF/reserved bits (IPv6: same version/class/flow label word and hop limit);
 * same ACK number, window, data offset and option bytes, options only NOP/EOL/timestamps;
 * flags ACK with optional PSH and ECE equal to the head's (CWR only on the head; SYN, FIN,
 * RST, URG never merge); its sequence number continues the entry; its payload is no larger than
 * the head's (gso_size), and after a shorter one or one with PSH nothing more is appended;
 * at most GRO_MAX_SEGMENTS segments and 65535 bytes of IP length. Each candidate's IPv4 header
 * checksum and TCP checksum are verified first: the kernel trusts a NEEDS_CSUM packet and will
 * not check them again, so a bad segment passes through unmerged (and the kernel drops it).
 * A TCP packet that does not merge closes its flow's open entry, so no later segment overtakes
 * it.
 *
 * A merged head gets: IPv4 total length and a fresh header checksum (IPv6 payload length), PSH
 * if the last merged segment had it, and in the TCP checksum field the folded, NOT complemented
 * pseudo-header sum over the full TCP length; its virtio header: NEEDS_CSUM, gso_type
 * TCPV4/TCPV6 (| ECN when the head carries CWR), hdr_len, gso_size = the head's payload,
 * csum_start = IP header length, csum_offset = 16.
 *
 * No allocation per packet: typed arrays sized at construction, views re-pointed, a small open
 * addressing flow table cleared per batch through the list of slots it used.
 */
import { copyBytes } from '../base/bytes.ts';
import { DropReason } from '../base/drop-reason.ts';
import { fold16, sumShort, sumWordsWide } from '../wire/checksum.ts';
import { IP_PROTO_TCP } from '../wire/ip.ts';
import { IPV4_HEADER_LEN, IPV4_SRC, Ipv4Packet } from '../wire/ipv4.ts';
import { IPV6_HEADER_LEN, IPV6_SRC, Ipv6Packet } from '../wire/ipv6.ts';
import {
  TCP_ACK, TCP_CWR, TCP_ECE, TCP_HEADER_LEN, TCP_OPT_EOL, TCP_OPT_NOP, TCP_OPT_TIMESTAMP, TCP_PSH,
  TcpPacket,
} from '../wire/tcp.ts';
import { EMPTY_BYTES } from '../wire/view.ts';
import type { SysMemory } from '../sys/memory.ts';
import { IOVEC_SIZE, writeIovec } from '../sys/msg.ts';
import {
  VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_ECN, VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_TCPV6, VnetHdr,
  VNET_HDR_LEN, VNET_TCP_CSUM_OFFSET,
} from '../sys/virtio-net-hdr.ts';

const R_NONE: DropReason = DropReason.None;

/** Segments merged into one super-packet at most. */
export const GRO_MAX_SEGMENTS = 64;
/** Bytes per virtio header in the arena (10 used). */
export const GRO_VNET_STRIDE = 16;

// entry state bits
const ST_V6 = 1;
const ST_MERGEABLE = 2; // a TCP candidate that may take more segments
const ST_PSH = 4; // the last merged segment carried PSH
const ST_CWR = 8; // the head carries CWR

// flags that are allowed on a candidate besides ACK
const MERGE_FLAGS_OK = TCP_ACK | TCP_PSH | TCP_ECE | TCP_CWR;

export interface GroStats {
  /** Packets offered. */
  packets: number;
  /** Packets merged into an earlier head. */
  merged: number;
  /** TCP candidates whose IPv4 header or TCP checksum was wrong (passed through unmerged). */
  badChecksum: number;
}

export class GroCoalescer {
  /** Entries of the current batch. */
  count = 0;
  readonly stats: GroStats = { packets: 0, merged: 0, badChecksum: 0 };
  /** The batch's buffer. */
  buf: Uint8Array = EMPTY_BYTES;
  /** Virtio headers: entry e's at arena[arenaBase + e * GRO_VNET_STRIDE]. */
  readonly arena: Uint8Array;
  readonly arenaBase: number;

  /** Head packet of entry e: buf[headOff[e], headOff[e] + headLen[e]) (its own length). */
  readonly headOff: Int32Array;
  readonly headLen: Int32Array;
  /** IP length of the whole entry after finish() (head + merged payloads). */
  readonly total: Int32Array;
  /** Packets in entry e (1 = passed through as it came). */
  readonly segs: Int32Array;
  private readonly ipHl: Int32Array;
  private readonly tcpHl: Int32Array;
  private readonly gso: Int32Array;
  private readonly nextSeq: Float64Array;
  private readonly state: Int32Array;
  private readonly firstRange: Int32Array;
  private readonly lastRange: Int32Array;
  /** Merged payloads: range r is buf[rangeOff[r], rangeOff[r] + rangeLen[r]), next in rangeNext[r]. */
  readonly rangeOff: Int32Array;
  readonly rangeLen: Int32Array;
  readonly rangeNext: Int32Array;
  private ranges = 0;

  private readonly slots: Int32Array;
  private readonly slotMask: number;
  private readonly usedSlots: Int32Array;
  private used = 0;

  private readonly v4 = new Ipv4Packet();
  private readonly v6 = new Ipv6Packet();
  private readonly tcp = new TcpPacket();
  private readonly vnet = new VnetHdr();

  /**
   * @param maxPackets packets per batch (add returns -1 beyond it)
   * @param arena      where the virtio headers go: maxPackets * GRO_VNET_STRIDE bytes from
   *                   arenaBase; pass a SysMemory region so iovecs can point at them.
   */
  constructor(
    readonly maxPackets = 1024,
    arena?: Uint8Array,
    arenaBase = 0,
  ) {
    this.arena = arena ?? new Uint8Array(new ArrayBuffer(maxPackets * GRO_VNET_STRIDE));
    this.arenaBase = arena ? arenaBase : 0;
    if (this.arenaBase + maxPackets * GRO_VNET_STRIDE > this.arena.length) throw new RangeError('virtio header arena too small');
    this.headOff = new Int32Array(maxPackets);
    this.headLen = new Int32Array(maxPackets);
    this.total = new Int32Array(maxPackets);
    this.segs = new Int32Array(maxPackets);
    this.ipHl = new Int32Array(maxPackets);
    this.tcpHl = new Int32Array(maxPackets);
    this.gso = new Int32Array(maxPackets);
    this.nextSeq = new Float64Array(maxPackets);
    this.state = new Int32Array(maxPackets);
    this.firstRange = new Int32Array(maxPackets);
    this.lastRange = new Int32Array(maxPackets);
    this.rangeOff = new Int32Array(maxPackets);
    this.rangeLen = new Int32Array(maxPackets);
    this.rangeNext = new Int32Array(maxPackets);
    let size = 16;
    while (size < maxPackets * 2) size <<= 1;
    this.slots = new Int32Array(size).fill(-1);
    this.slotMask = size - 1;
    this.usedSlots = new Int32Array(maxPackets);
  }

  /** Start a batch whose packets all live in `buf`. */
  reset(buf: Uint8Array): void {
    for (let i = 0; i < this.used; i++) this.slots[this.usedSlots[i]!] = -1;
    this.used = 0;
    this.count = 0;
    this.ranges = 0;
    this.buf = buf;
  }

  /** Offset of entry e's virtio header in `arena`. */
  vnetOff(e: number): number {
    return this.arenaBase + e * GRO_VNET_STRIDE;
  }

  /**
   * Offer the packet buf[off, off + len). Returns the entry it went into (a new one or the one
   * it was merged into), or -1 when the batch is full (finish and write, then reset).
   */
  add(off: number, len: number): number {
    if (this.count === this.maxPackets) return -1;
    this.stats.packets++;
    const b = this.buf;
    if (off < 0 || len <= 0 || off + len > b.length) return this.passThrough(off, len, 0, -1);
    const version = b[off]! >> 4;
    let ihl: number;
    let v6: boolean;
    if (version === 4) {
      const ip = this.v4.wrap(b, off, len);
      if (len < IPV4_HEADER_LEN + TCP_HEADER_LEN || ip.protocol !== IP_PROTO_TCP) return this.passThrough(off, len, 0, -1);
      if (ip.check() !== R_NONE || ip.totalLength !== len || ip.isFragment) return this.passThrough(off, len, 0, -1);
      ihl = ip.headerLength;
      v6 = false;
    } else if (version === 6) {
      if (len < IPV6_HEADER_LEN + TCP_HEADER_LEN) return this.passThrough(off, len, 0, -1);
      const ip = this.v6.wrap(b, off, len);
      if (ip.nextHeader !== IP_PROTO_TCP || ip.payloadLength !== len - IPV6_HEADER_LEN) return this.passThrough(off, len, 0, -1);
      ihl = IPV6_HEADER_LEN;
      v6 = true;
    } else {
      return this.passThrough(off, len, 0, -1);
    }
    const t = this.tcp.wrap(b, off + ihl, len - ihl);
    const doff = t.headerLength;
    if (doff < TCP_HEADER_LEN || ihl + doff > len) return this.passThrough(off, len, 0, -1);
    // from here on the packet has a flow: a non-candidate closes the flow's open entry
    const hash = this.flowHash(off, v6, ihl);
    const open = this.lookup(hash, off, v6, ihl);
    const flags = t.flags;
    const pl = len - ihl - doff;
    let candidate =
      pl > 0 && (flags & TCP_ACK) !== 0 && (flags & ~MERGE_FLAGS_OK) === 0 && ihl === (v6 ? IPV6_HEADER_LEN : IPV4_HEADER_LEN) &&
      this.optionsMergeable(off + ihl + TCP_HEADER_LEN, off + ihl + doff);
    if (candidate && !this.checksumsValid(off, len, ihl, v6)) {
      this.stats.badChecksum++;
      candidate = false;
    }
    if (!candidate) {
      if (open >= 0) this.state[open]! &= ~ST_MERGEABLE;
      return this.passThrough(off, len, ihl, -1);
    }
    const seq = t.seq;
    if (open >= 0 && (flags & TCP_CWR) === 0 && this.canAppend(open, off, ihl, doff, pl, seq, flags)) {
      this.append(open, off + ihl + doff, pl, flags);
      return open;
    }
    if (open >= 0) this.state[open]! &= ~ST_MERGEABLE;
    const e = this.passThrough(off, len, ihl, hash);
    this.tcpHl[e] = doff;
    this.gso[e] = pl;
    this.nextSeq[e] = (seq + pl) >>> 0;
    this.state[e] = (v6 ? ST_V6 : 0) | ((flags & TCP_PSH) === 0 ? ST_MERGEABLE : 0) | ((flags & TCP_CWR) !== 0 ? ST_CWR : 0);
    return e;
  }

  /** Rewrite the headers of merged entries and write every entry's virtio header. */
  finish(): void {
    const b = this.buf;
    for (let e = 0; e < this.count; e++) {
      const h = this.vnet.wrap(this.arena, this.vnetOff(e));
      if (this.segs[e] === 1) {
        h.writePlain(this.headLen[e]!);
        this.total[e] = this.headLen[e]!;
        continue;
      }
      const off = this.headOff[e]!;
      const ihl = this.ipHl[e]!;
      const st = this.state[e]!;
      const total = this.total[e]!;
      const tcpLen = total - ihl;
      let addrSum: number;
      if (st & ST_V6) {
        this.v6.wrap(b, off, this.headLen[e]!).payloadLength = tcpLen;
        addrSum = sumShort(b, off + IPV6_SRC, 32, IP_PROTO_TCP);
      } else {
        const ip = this.v4.wrap(b, off, this.headLen[e]!);
        ip.totalLength = total;
        ip.checksum = 0;
        ip.checksum = ~fold16(sumShort(b, off, ihl)) & 0xffff; // small integers: nothing boxed
        addrSum = sumShort(b, off + IPV4_SRC, 8, IP_PROTO_TCP);
      }
      const t = this.tcp.wrap(b, off + ihl, this.headLen[e]! - ihl);
      if (st & ST_PSH) t.flags = t.flags | TCP_PSH;
      t.checksum = fold16(addrSum + tcpLen);
      h.set(
        VIRTIO_NET_HDR_F_NEEDS_CSUM,
        ((st & ST_V6) !== 0 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4) | ((st & ST_CWR) !== 0 ? VIRTIO_NET_HDR_GSO_ECN : 0),
        ihl + this.tcpHl[e]!,
        this.gso[e]!,
        ihl,
        VNET_TCP_CSUM_OFFSET,
      );
    }
  }

  /**
   * Entry e as iovecs at mem[iovOff...]: [virtio header][head packet][merged payloads...].
   * bufAddr: address of buf[0]; arenaAddr: address of arena[0]. Returns the iovec count
   * (at most GRO_MAX_SEGMENTS + 1).
   */
  writeIovecs(e: number, mem: SysMemory, iovOff: number, bufAddr: number, arenaAddr: number): number {
    writeIovec(mem, iovOff, arenaAddr + this.vnetOff(e), VNET_HDR_LEN);
    writeIovec(mem, iovOff + IOVEC_SIZE, bufAddr + this.headOff[e]!, this.headLen[e]!);
    let n = 2;
    if (this.segs[e]! > 1) {
      for (let r = this.firstRange[e]!; r >= 0; r = this.rangeNext[r]!) {
        writeIovec(mem, iovOff + n * IOVEC_SIZE, bufAddr + this.rangeOff[r]!, this.rangeLen[r]!);
        n++;
      }
    }
    return n;
  }

  /** Entry e as one contiguous [virtio header][packet] at dst[dstOff...]; returns its length. */
  copyEntry(e: number, dst: Uint8Array, dstOff: number): number {
    copyBytes(this.arena, this.vnetOff(e), dst, dstOff, VNET_HDR_LEN);
    let p = dstOff + VNET_HDR_LEN;
    copyBytes(this.buf, this.headOff[e]!, dst, p, this.headLen[e]!);
    p += this.headLen[e]!;
    if (this.segs[e]! > 1) {
      for (let r = this.firstRange[e]!; r >= 0; r = this.rangeNext[r]!) {
        copyBytes(this.buf, this.rangeOff[r]!, dst, p, this.rangeLen[r]!);
        p += this.rangeLen[r]!;
      }
    }
    return p - dstOff;
  }

  // ---------------------------------------------------------------- internals

  /** A new entry holding this packet alone; hash >= 0 registers it as its flow's open entry. */
  private passThrough(off: number, len: number, ihl: number, hash: number): number {
    const e = this.count++;
    this.headOff[e] = off;
    this.headLen[e] = len;
    this.total[e] = len;
    this.segs[e] = 1;
    this.ipHl[e] = ihl;
    this.state[e] = 0;
    this.firstRange[e] = -1;
    this.lastRange[e] = -1;
    if (hash >= 0) this.insert(hash, e);
    return e;
  }

  private canAppend(e: number, off: number, ihl: number, doff: number, pl: number, seq: number, flags: number): boolean {
    const st = this.state[e]!;
    if ((st & ST_MERGEABLE) === 0) return false;
    if (this.segs[e]! >= GRO_MAX_SEGMENTS || this.total[e]! + pl > 65535) return false;
    if (seq !== this.nextSeq[e] || pl > this.gso[e]! || doff !== this.tcpHl[e] || ihl !== this.ipHl[e]) return false;
    const b = this.buf;
    const h = this.headOff[e]!;
    if ((st & ST_V6) !== 0) {
      // version / traffic class / flow label word, hop limit
      if (b[h] !== b[off] || b[h + 1] !== b[off + 1] || b[h + 2] !== b[off + 2] || b[h + 3] !== b[off + 3]) return false;
      if (b[h + 7] !== b[off + 7]) return false;
    } else {
      // TOS, DF/reserved bits, TTL
      if (b[h + 1] !== b[off + 1] || b[h + 6]! >> 5 !== b[off + 6]! >> 5 || b[h + 8] !== b[off + 8]) return false;
    }
    const th = h + ihl;
    const tp = off + ihl;
    // ack (8..11), then data offset byte, flags, window (12..15) compared apart from PSH / CWR
    for (let k = 8; k < 12; k++) if (b[th + k] !== b[tp + k]) return false;
    if (b[th + 12] !== b[tp + 12] || b[th + 14] !== b[tp + 14] || b[th + 15] !== b[tp + 15]) return false;
    const headFlags = b[th + 13]! & ~(TCP_PSH | TCP_CWR);
    if ((flags & 0xff & ~TCP_PSH) !== headFlags) return false;
    for (let k = TCP_HEADER_LEN; k < doff; k++) if (b[th + k] !== b[tp + k]) return false;
    return true;
  }

  private append(e: number, payOff: number, pl: number, flags: number): void {
    const r = this.ranges++;
    this.rangeOff[r] = payOff;
    this.rangeLen[r] = pl;
    this.rangeNext[r] = -1;
    if (this.lastRange[e]! >= 0) this.rangeNext[this.lastRange[e]!] = r;
    else this.firstRange[e] = r;
    this.lastRange[e] = r;
    this.segs[e]!++;
    this.total[e]! += pl;
    this.nextSeq[e] = (this.nextSeq[e]! + pl) >>> 0;
    this.stats.merged++;
    if ((flags & TCP_PSH) !== 0) this.state[e] = (this.state[e]! | ST_PSH) & ~ST_MERGEABLE;
    if (pl < this.gso[e]!) this.state[e]! &= ~ST_MERGEABLE;
  }

  /** Options only NOP / EOL / timestamps (other options never merge). */
  private optionsMergeable(p: number, end: number): boolean {
    const b = this.buf;
    while (p < end) {
      const k = b[p]!;
      if (k === TCP_OPT_NOP || k === TCP_OPT_EOL) {
        p++;
        continue;
      }
      if (k !== TCP_OPT_TIMESTAMP || p + 10 > end || b[p + 1] !== 10) return false;
      p += 10;
    }
    return true;
  }

  private checksumsValid(off: number, len: number, ihl: number, v6: boolean): boolean {
    const b = this.buf;
    if (!v6 && fold16(sumShort(b, off, ihl)) !== 0xffff) return false;
    const addrSum = v6 ? sumShort(b, off + IPV6_SRC, 32, IP_PROTO_TCP) : sumShort(b, off + IPV4_SRC, 8, IP_PROTO_TCP);
    return fold16(sumWordsWide(b, off + ihl, len - ihl, fold16(addrSum + len - ihl))) === 0xffff;
  }

  private flowHash(off: number, v6: boolean, ihl: number): number {
    const b = this.buf;
    let h = v6 ? 0x6b43a9b5 : 0x2545f491;
    const a = off + (v6 ? IPV6_SRC : IPV4_SRC);
    const n = v6 ? 32 : 8;
    for (let i = 0; i < n; i += 4) {
      h = Math.imul(h ^ ((b[a + i]! << 24) | (b[a + i + 1]! << 16) | (b[a + i + 2]! << 8) | b[a + i + 3]!), 0x9e3779b1);
      h ^= h >>> 15;
    }
    const t = off + ihl;
    h = Math.imul(h ^ ((b[t]! << 24) | (b[t + 1]! << 16) | (b[t + 2]! << 8) | b[t + 3]!), 0x85ebca6b);
    h ^= h >>> 13;
    return h & 0x7fffffff;
  }

  /** The open entry of this packet's flow, or -1. */
  private lookup(hash: number, off: number, v6: boolean, ihl: number): number {
    const mask = this.slotMask;
    for (let i = hash & mask, probes = 0; probes <= mask; i = (i + 1) & mask, probes++) {
      const e = this.slots[i]!;
      if (e < 0) return -1;
      if (this.sameFlow(e, off, v6, ihl)) return (this.state[e]! & ST_MERGEABLE) !== 0 ? e : -1;
    }
    return -1;
  }

  /** Register e as its flow's open entry (replacing an older one of the same flow). */
  private insert(hash: number, e: number): void {
    const mask = this.slotMask;
    const off = this.headOff[e]!;
    const v6 = this.buf[off]! >> 4 === 6;
    const ihl = this.ipHl[e]!;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const cur = this.slots[i]!;
      if (cur < 0) {
        this.slots[i] = e;
        this.usedSlots[this.used++] = i;
        return;
      }
      if (this.sameFlow(cur, off, v6, ihl)) {
        this.slots[i] = e;
        return;
      }
    }
  }

  private sameFlow(e: number, off: number, v6: boolean, ihl: number): boolean {
    const b = this.buf;
    const h = this.headOff[e]!;
    if (b[h]! >> 4 !== (v6 ? 6 : 4) || this.ipHl[e] !== ihl) return false;
    const a = v6 ? IPV6_SRC : IPV4_SRC;
    const n = v6 ? 32 : 8;
    for (let i = 0; i < n; i++) if (b[h + a + i] !== b[off + a + i]) return false;
    for (let i = 0; i < 4; i++) if (b[h + ihl + i] !== b[off + ihl + i]) return false;
    return true;
  }
}
