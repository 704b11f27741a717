/**
 * IPv4 header (RFC 791) view over (buf, off, len), smoltcp wire style: field offsets as
 * constants, getters/setters straight on the bytes, check() before any use, parse() to a plain
 * Ipv4Repr (tests, control plane), static emit(), describe() like tcpdump.
 *
 * Dataplane use is allocation-free: keep one Ipv4Packet per stage and re-point it with wrap();
 * addresses are uint32 numbers (srcAddr/dstAddr) or byte offsets (srcOffset/dstOffset) for
 * zero-copy compares; validate() = check() + header checksum.
 *
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * |Version|  IHL  |   DSCP    |ECN|          Total Length         |
 * |         Identification        |Flags|      Fragment Offset    |
 * |  Time to Live |    Protocol   |         Header Checksum       |
 * |                       Source Address                          |
 * |                    Destination Address                        |
 * |                    Options                    |    Padding    |
 */
import { WireView } from './view.ts';
import { DropReason } from '../base/drop-reason.ts';
import { adjust16, adjust32, checksum } from './checksum.ts';
import { describeOptions, validateOptions } from './ipv4-options.ts';
import { describeUdpBody } from './udp.ts';
import { describeTcpSegment } from './tcp.ts';
import { describeIcmpv4Body } from './icmpv4.ts';

export const IPV4_HEADER_LEN = 20;
export const IPV4_MAX_HEADER_LEN = 60;
export const IPV4_MAX_LEN = 65535;
/** Minimum MTU every IPv4 link must carry (RFC 791). */
export const IPV4_MIN_MTU = 68;

export const F_VER_IHL = 0;
export const F_TOS = 1;
export const F_TOTAL_LENGTH = 2;
export const F_IDENT = 4;
export const F_FLAGS_FRAG = 6;
export const F_TTL = 8;
export const F_PROTOCOL = 9;
export const F_CHECKSUM = 10;
export const F_SRC = 12;
export const F_DST = 16;

/** Flag bits in the 16-bit flags/fragment-offset word. */
export const IPV4_FLAG_RESERVED = 0x8000;
export const IPV4_FLAG_DF = 0x4000;
export const IPV4_FLAG_MF = 0x2000;
export const IPV4_FRAG_OFFSET_MASK = 0x1fff;

export const IP_PROTO_ICMP = 1;
export const IP_PROTO_IGMP = 2;
export const IP_PROTO_IPIP = 4;
export const IP_PROTO_TCP = 6;
export const IP_PROTO_UDP = 17;
export const IP_PROTO_IPV6 = 41;
export const IP_PROTO_GRE = 47;
export const IP_PROTO_ESP = 50;
export const IP_PROTO_AH = 51;
export const IP_PROTO_ICMPV6 = 58;
export const IP_PROTO_DCCP = 33;
export const IP_PROTO_SCTP = 132;
export const IP_PROTO_UDPLITE = 136;

// --- address classes (uint32 addresses) ---

/** 0.0.0.0/8 ("this network"; 0.0.0.0 itself is the unspecified address). */
export function isThisNetworkV4(a: number): boolean {
  return a >>> 24 === 0;
}
export function isLoopbackV4(a: number): boolean {
  return a >>> 24 === 127;
}
export function isMulticastV4(a: number): boolean {
  return a >>> 28 === 0xe;
}
/** 240.0.0.0/4 (class E, reserved), which includes 255.255.255.255. */
export function isClassEV4(a: number): boolean {
  return a >>> 28 === 0xf;
}
export function isLimitedBroadcastV4(a: number): boolean {
  return a >>> 0 === 0xffffffff;
}
export function isLinkLocalV4(a: number): boolean {
  return a >>> 16 === 0xa9fe;
}
/** The four bytes at buf[off] as an unsigned 32-bit number. */
export function readV4(buf: Uint8Array, off: number): number {
  return ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
}
export function writeV4(buf: Uint8Array, off: number, a: number): void {
  buf[off] = a >>> 24;
  buf[off + 1] = a >>> 16;
  buf[off + 2] = a >>> 8;
  buf[off + 3] = a;
}
/** Dotted quad of a uint32 (display only). */
export function v4Text(a: number): string {
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

export interface Ipv4Repr {
  src: number;
  dst: number;
  protocol: number;
  ttl: number;
  dscp: number;
  ecn: number;
  ident: number;
  dontFragment: boolean;
  moreFragments: boolean;
  /** Fragment offset in bytes (a multiple of 8). */
  fragOffset: number;
  /** Bytes after the header (total length - header length). */
  payloadLength: number;
  /** Raw option bytes (empty when IHL = 5); emit pads them to a multiple of 4 with EOL. */
  options: Uint8Array;
}

// A Buffer, so that views in a Buffer-based pool only ever see one receiver map.

export class Ipv4Packet extends WireView {
  get version(): number {
    return this.buf[this.off]! >> 4;
  }
  set version(v: number) {
    this.buf[this.off] = ((v & 0xf) << 4) | (this.buf[this.off]! & 0x0f);
  }
  /** IHL in 32-bit words. */
  get ihl(): number {
    return this.buf[this.off]! & 0x0f;
  }
  set ihl(v: number) {
    this.buf[this.off] = (this.buf[this.off]! & 0xf0) | (v & 0x0f);
  }
  /** Header length in bytes (IHL * 4). */
  get headerLength(): number {
    return (this.buf[this.off]! & 0x0f) << 2;
  }
  /** The whole TOS byte (DSCP << 2 | ECN). */
  get tos(): number {
    return this.buf[this.off + F_TOS]!;
  }
  set tos(v: number) {
    this.buf[this.off + F_TOS] = v;
  }
  get dscp(): number {
    return this.buf[this.off + F_TOS]! >> 2;
  }
  set dscp(v: number) {
    this.buf[this.off + F_TOS] = ((v & 0x3f) << 2) | (this.buf[this.off + F_TOS]! & 3);
  }
  get ecn(): number {
    return this.buf[this.off + F_TOS]! & 3;
  }
  set ecn(v: number) {
    this.buf[this.off + F_TOS] = (this.buf[this.off + F_TOS]! & 0xfc) | (v & 3);
  }
  get totalLength(): number {
    return (this.buf[this.off + F_TOTAL_LENGTH]! << 8) | this.buf[this.off + F_TOTAL_LENGTH + 1]!;
  }
  set totalLength(v: number) {
    this.buf[this.off + F_TOTAL_LENGTH] = v >>> 8;
    this.buf[this.off + F_TOTAL_LENGTH + 1] = v;
  }
  get ident(): number {
    return (this.buf[this.off + F_IDENT]! << 8) | this.buf[this.off + F_IDENT + 1]!;
  }
  set ident(v: number) {
    this.buf[this.off + F_IDENT] = v >>> 8;
    this.buf[this.off + F_IDENT + 1] = v;
  }
  /** The raw 16-bit flags + fragment offset word. */
  get flagsFragWord(): number {
    return (this.buf[this.off + F_FLAGS_FRAG]! << 8) | this.buf[this.off + F_FLAGS_FRAG + 1]!;
  }
  set flagsFragWord(v: number) {
    this.buf[this.off + F_FLAGS_FRAG] = v >>> 8;
    this.buf[this.off + F_FLAGS_FRAG + 1] = v;
  }
  get reservedFlag(): boolean {
    return (this.buf[this.off + F_FLAGS_FRAG]! & 0x80) !== 0;
  }
  set reservedFlag(on: boolean) {
    const o = this.off + F_FLAGS_FRAG;
    this.buf[o] = on ? this.buf[o]! | 0x80 : this.buf[o]! & 0x7f;
  }
  get dontFragment(): boolean {
    return (this.buf[this.off + F_FLAGS_FRAG]! & 0x40) !== 0;
  }
  set dontFragment(on: boolean) {
    const o = this.off + F_FLAGS_FRAG;
    this.buf[o] = on ? this.buf[o]! | 0x40 : this.buf[o]! & 0xbf;
  }
  get moreFragments(): boolean {
    return (this.buf[this.off + F_FLAGS_FRAG]! & 0x20) !== 0;
  }
  set moreFragments(on: boolean) {
    const o = this.off + F_FLAGS_FRAG;
    this.buf[o] = on ? this.buf[o]! | 0x20 : this.buf[o]! & 0xdf;
  }
  /** Fragment offset in 8-byte units (the 13-bit field). */
  get fragOffsetRaw(): number {
    return ((this.buf[this.off + F_FLAGS_FRAG]! & 0x1f) << 8) | this.buf[this.off + F_FLAGS_FRAG + 1]!;
  }
  set fragOffsetRaw(v: number) {
    const o = this.off + F_FLAGS_FRAG;
    this.buf[o] = (this.buf[o]! & 0xe0) | ((v >>> 8) & 0x1f);
    this.buf[o + 1] = v;
  }
  /** Fragment offset in bytes (raw * 8). The setter takes bytes (a multiple of 8). */
  get fragOffset(): number {
    return this.fragOffsetRaw << 3;
  }
  set fragOffset(bytes: number) {
    this.fragOffsetRaw = bytes >>> 3;
  }
  /** MF set or offset non-zero. */
  get isFragment(): boolean {
    const o = this.off + F_FLAGS_FRAG;
    return ((this.buf[o]! & 0x3f) | this.buf[o + 1]!) !== 0;
  }
  get ttl(): number {
    return this.buf[this.off + F_TTL]!;
  }
  set ttl(v: number) {
    this.buf[this.off + F_TTL] = v;
  }
  get protocol(): number {
    return this.buf[this.off + F_PROTOCOL]!;
  }
  set protocol(v: number) {
    this.buf[this.off + F_PROTOCOL] = v;
  }
  get checksum(): number {
    return (this.buf[this.off + F_CHECKSUM]! << 8) | this.buf[this.off + F_CHECKSUM + 1]!;
  }
  set checksum(v: number) {
    this.buf[this.off + F_CHECKSUM] = v >>> 8;
    this.buf[this.off + F_CHECKSUM + 1] = v;
  }
  // Byte math written out (no helper call): once this getter is inlined nothing is left that
  // could return a boxed (> 2^31) number, so reading addresses never allocates.
  get srcAddr(): number {
    const b = this.buf;
    const o = this.off + F_SRC;
    return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
  }
  set srcAddr(a: number) {
    writeV4(this.buf, this.off + F_SRC, a);
  }
  get dstAddr(): number {
    const b = this.buf;
    const o = this.off + F_DST;
    return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
  }
  set dstAddr(a: number) {
    writeV4(this.buf, this.off + F_DST, a);
  }
  /** Offset in buf of the 4 source address bytes (pseudo-header sums, zero-copy compares). */
  get srcOffset(): number {
    return this.off + F_SRC;
  }
  get dstOffset(): number {
    return this.off + F_DST;
  }
  get optionsOffset(): number {
    return this.off + IPV4_HEADER_LEN;
  }
  get optionsLength(): number {
    return this.headerLength - IPV4_HEADER_LEN;
  }
  get payloadOffset(): number {
    return this.off + this.headerLength;
  }
  /** totalLength - headerLength (valid after check()). */
  get payloadLength(): number {
    return this.totalLength - this.headerLength;
  }

  /**
   * Structure check, in this order: Truncated (< 20 bytes, or the IHL header does not fit in the
   * buffer, or total length > buffer), BadVersion (!= 4), BadIhl (< 5), BadTotalLength (total
   * length < header length), then options (BadOptionLength / BadOption, see ipv4-options.ts).
   * Does not verify the header checksum (validate() does both). Allocates nothing.
   */
  check(): DropReason {
    const len = this.len;
    const o = this.off;
    const b = this.buf;
    // The view must lie inside its buffer: a wrong (off, len) is a truncated packet.
    if (len < IPV4_HEADER_LEN || o < 0 || o + len > b.length) return DropReason.Truncated;
    const vi = b[o]!;
    if (vi >> 4 !== 4) return DropReason.BadVersion;
    const hl = (vi & 0x0f) << 2;
    if (hl < IPV4_HEADER_LEN) return DropReason.BadIhl;
    if (hl > len) return DropReason.Truncated;
    const tl = (b[o + 2]! << 8) | b[o + 3]!;
    if (tl < hl) return DropReason.BadTotalLength;
    if (tl > len) return DropReason.Truncated;
    if (hl > IPV4_HEADER_LEN) return validateOptions(b, o + IPV4_HEADER_LEN, o + hl);
    return DropReason.None;
  }

  /** check() plus the header checksum (BadHeaderChecksum). The dataplane's one call. */
  validate(): DropReason {
    const r = this.check();
    if (r !== DropReason.None) return r;
    return this.sumHeader() === 0xffff ? DropReason.None : DropReason.BadHeaderChecksum;
  }

  /** Header checksum correct. Reads headerLength bytes; false when they are not all there. */
  verifyChecksum(): boolean {
    const o = this.off;
    const hl = (this.buf[o]! & 0x0f) << 2;
    if (o < 0 || hl < IPV4_HEADER_LEN || o + hl > this.buf.length) return false;
    return this.sumHeader() === 0xffff;
  }

  /**
   * Folded (not complemented) sum over the header. Int-only arithmetic on 16-bit words: at most
   * 30 words of 0xffff, far below 2^31, so V8 keeps everything in small integers. (A DataView
   * would read faster but needs `buf.buffer`, whose getter costs more than the whole sum.)
   */
  private sumHeader(): number {
    const b = this.buf;
    const o = this.off;
    const hl = (b[o]! & 0x0f) << 2;
    let s =
      ((b[o]! << 8) | b[o + 1]!) + ((b[o + 2]! << 8) | b[o + 3]!) +
      ((b[o + 4]! << 8) | b[o + 5]!) + ((b[o + 6]! << 8) | b[o + 7]!) +
      ((b[o + 8]! << 8) | b[o + 9]!) + ((b[o + 10]! << 8) | b[o + 11]!) +
      ((b[o + 12]! << 8) | b[o + 13]!) + ((b[o + 14]! << 8) | b[o + 15]!) +
      ((b[o + 16]! << 8) | b[o + 17]!) + ((b[o + 18]! << 8) | b[o + 19]!);
    for (let i = o + IPV4_HEADER_LEN; i < o + hl; i += 2) s += (b[i]! << 8) | b[i + 1]!;
    s = (s & 0xffff) + (s >>> 16);
    s = (s & 0xffff) + (s >>> 16);
    return s;
  }

  /** Compute and store the header checksum; returns it. */
  fillChecksum(): number {
    this.checksum = 0;
    const c = checksum(this.buf, this.off, this.headerLength);
    this.checksum = c;
    return c;
  }

  /**
   * Decrement TTL by one with the RFC 1624 incremental checksum update. Returns false (and
   * changes nothing) when the TTL is already 0 or 1: the packet must not be forwarded
   * (DropReason.TtlExpired, ICMP time exceeded code 0).
   */
  decrementTtl(): boolean {
    const o = this.off + F_TTL;
    const ttl = this.buf[o]!;
    if (ttl <= 1) return false;
    const proto = this.buf[o + 1]!;
    const oldWord = (ttl << 8) | proto;
    this.buf[o] = ttl - 1;
    this.checksum = adjust16(this.checksum, oldWord, oldWord - 0x100);
    return true;
  }

  /**
   * Rewrite the source address (NAT style) with incremental updates: the header checksum, and
   * for an unfragmented-or-first-fragment TCP/UDP packet the transport checksum too (its
   * pseudo-header covers the address). A UDP zero checksum stays zero; a computed 0 becomes 0xffff.
   */
  rewriteSrcAddr(addr: number): void {
    this.rewriteAddr(F_SRC, addr);
  }
  rewriteDstAddr(addr: number): void {
    this.rewriteAddr(F_DST, addr);
  }
  private rewriteAddr(field: number, addr: number): void {
    const old = readV4(this.buf, this.off + field);
    const a = addr >>> 0;
    writeV4(this.buf, this.off + field, a);
    this.checksum = adjust32(this.checksum, old, a);
    if (this.fragOffsetRaw !== 0) return;
    const proto = this.protocol;
    const l4 = this.payloadOffset;
    const avail = this.off + this.len - l4;
    if (proto === IP_PROTO_TCP && avail >= 18) {
      const c = (this.buf[l4 + 16]! << 8) | this.buf[l4 + 17]!;
      const n = adjust32(c, old, a);
      this.buf[l4 + 16] = n >>> 8;
      this.buf[l4 + 17] = n;
    } else if (proto === IP_PROTO_UDP && avail >= 8) {
      const c = (this.buf[l4 + 6]! << 8) | this.buf[l4 + 7]!;
      if (c === 0) return;
      let n = adjust32(c, old, a);
      if (n === 0) n = 0xffff;
      this.buf[l4 + 6] = n >>> 8;
      this.buf[l4 + 7] = n;
    }
  }

  /** A plain representation (runs validate(): check + header checksum). */
  parse(): Ipv4Repr | DropReason {
    const r = this.validate();
    if (r !== DropReason.None) return r;
    return {
      src: this.srcAddr,
      dst: this.dstAddr,
      protocol: this.protocol,
      ttl: this.ttl,
      dscp: this.dscp,
      ecn: this.ecn,
      ident: this.ident,
      dontFragment: this.dontFragment,
      moreFragments: this.moreFragments,
      fragOffset: this.fragOffset,
      payloadLength: this.payloadLength,
      options: this.buf.slice(this.optionsOffset, this.optionsOffset + this.optionsLength),
    };
  }

  /** Header bytes emit() writes for repr (20 + options padded to 4; options beyond 40 are cut). */
  static headerLength(repr: Ipv4Repr): number {
    return IPV4_HEADER_LEN + ((Math.min(repr.options.length, 40) + 3) & ~3);
  }

  /** Write the header for repr at buf[off] with its checksum; returns the header length. */
  static emit(repr: Ipv4Repr, buf: Uint8Array, off: number): number {
    const hl = Ipv4Packet.headerLength(repr);
    buf[off] = 0x40 | (hl >> 2);
    buf[off + F_TOS] = ((repr.dscp & 0x3f) << 2) | (repr.ecn & 3);
    const tl = hl + repr.payloadLength;
    buf[off + F_TOTAL_LENGTH] = tl >>> 8;
    buf[off + F_TOTAL_LENGTH + 1] = tl;
    buf[off + F_IDENT] = repr.ident >>> 8;
    buf[off + F_IDENT + 1] = repr.ident;
    const ff =
      (repr.dontFragment ? IPV4_FLAG_DF : 0) |
      (repr.moreFragments ? IPV4_FLAG_MF : 0) |
      ((repr.fragOffset >>> 3) & IPV4_FRAG_OFFSET_MASK);
    buf[off + F_FLAGS_FRAG] = ff >>> 8;
    buf[off + F_FLAGS_FRAG + 1] = ff;
    buf[off + F_TTL] = repr.ttl;
    buf[off + F_PROTOCOL] = repr.protocol;
    buf[off + F_CHECKSUM] = 0;
    buf[off + F_CHECKSUM + 1] = 0;
    writeV4(buf, off + F_SRC, repr.src);
    writeV4(buf, off + F_DST, repr.dst);
    const ol = Math.min(repr.options.length, 40);
    for (let i = 0; i < ol; i++) buf[off + IPV4_HEADER_LEN + i] = repr.options[i]!;
    for (let i = IPV4_HEADER_LEN + ol; i < hl; i++) buf[off + i] = 0;
    const c = checksum(buf, off, hl);
    buf[off + F_CHECKSUM] = c >>> 8;
    buf[off + F_CHECKSUM + 1] = c;
    return hl;
  }

  /**
   * One line like tcpdump:
   * "IP 192.168.10.10 > 192.168.20.20: ICMP echo request, id 1, seq 1, length 64
   *  (tos 0x0, ttl 64, id 17064, offset 0, flags [DF], proto ICMP (1), length 84)".
   * Malformed packets are described as far as they go, with the reason. Never throws.
   */
  describe(): string {
    const len = this.len;
    if (len < IPV4_HEADER_LEN) return `IP [truncated, ${len} bytes]`;
    if (this.version !== 4) return `IP [bad version ${this.version}]`;
    const b = this.buf;
    const src = v4Text(this.srcAddr);
    const dst = v4Text(this.dstAddr);
    const hl = this.headerLength;
    const tl = this.totalLength;
    const proto = this.protocol;
    const flags = this.dontFragment ? (this.moreFragments ? 'DF+MF' : 'DF') : this.moreFragments ? '+' : 'none';
    const r = this.check();
    let tail = `(tos 0x${this.tos.toString(16)}, ttl ${this.ttl}, id ${this.ident}, offset ${this.fragOffset}, flags [${flags}], proto ${protoName(proto)} (${proto}), length ${tl}`;
    if (r === DropReason.None && !this.verifyChecksum()) tail += `, bad cksum ${this.checksum.toString(16)}`;
    if (hl > IPV4_HEADER_LEN && hl <= len) tail += `, options (${describeOptions(b, this.off + IPV4_HEADER_LEN, this.off + hl)})`;
    tail += ')';
    if (r !== DropReason.None) return `IP ${src} > ${dst}: [${DropReason[r] ?? r}] ${tail}`;
    const po = this.off + hl;
    const pl = tl - hl;
    let body: string;
    if (this.fragOffsetRaw !== 0) {
      body = `${src} > ${dst}: ip-proto-${proto}`;
    } else if (proto === IP_PROTO_ICMP) {
      body = describeIcmpv4Body(b, po, pl, src, dst, !this.moreFragments);
    } else if (proto === IP_PROTO_UDP) {
      body = describeUdpBody(b, po, pl, src, dst, !this.moreFragments);
    } else if (proto === IP_PROTO_TCP) {
      body = describeTcpSegment(b, po, pl, src, dst);
    } else {
      body = `${src} > ${dst}: ${protoName(proto)}, length ${pl}`;
    }
    if (this.isFragment) {
      body += ` (frag ${this.ident}:${pl}@${this.fragOffset}${this.moreFragments ? '+' : ''})`;
    }
    return `IP ${body} ${tail}`;
  }
}

export function protoName(p: number): string {
  switch (p) {
    case IP_PROTO_ICMP:
      return 'ICMP';
    case IP_PROTO_IGMP:
      return 'IGMP';
    case IP_PROTO_IPIP:
      return 'IPIP';
    case IP_PROTO_TCP:
      return 'TCP';
    case IP_PROTO_UDP:
      return 'UDP';
    case IP_PROTO_IPV6:
      return 'IPv6';
    case IP_PROTO_GRE:
      return 'GRE';
    case IP_PROTO_ESP:
      return 'ESP';
    case IP_PROTO_AH:
      return 'AH';
    case IP_PROTO_ICMPV6:
      return 'ICMPv6';
    default:
      return `ip-proto-${p}`;
  }
}
