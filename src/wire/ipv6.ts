/**
 * IPv6 fixed header (RFC 8200 section 3) view over (buf, off, len), smoltcp wire style: field
 * offsets as constants, getters/setters straight on the bytes, check() before any use, parse()
 * to a plain Ipv6Repr (tests, control plane), emit(), describe() like tcpdump.
 *
 * Dataplane use is allocation-free: keep one Ipv6Packet per stage and re-point it with wrap();
 * addresses stay in the buffer and are compared/tested/copied by offset with the ipv6Addr*
 * helpers below. The extension-header chain is walked by walkIpv6Chain (ipv6-chain.ts).
 *
 *  0                   1                   2                   3
 * |Version| Traffic Class |           Flow Label                  |
 * |         Payload Length        |  Next Header  |   Hop Limit   |
 * |                     Source Address (16)                       |
 * |                  Destination Address (16)                     |
 */
import { WireView } from './view.ts';
import { DropReason } from '../base/drop-reason.ts';
import { formatAddress } from './address-text.ts';
import { nextHeaderName } from './ipv6-ext.ts';

/** DropReason.None read once (an imported enum can cost a getter call per use under tsx/CJS). */
const R_NONE: DropReason = DropReason.None;

export const IPV6_HEADER_LEN = 40;
/** Largest packet without a jumbogram: 40 + 65535. */
export const IPV6_MAX_LEN = 40 + 65535;
export const IPV6_ADDR_LEN = 16;

// --- field offsets
export const IPV6_VER_TC_FLOW = 0;
export const IPV6_PAYLOAD_LENGTH = 4;
export const IPV6_NEXT_HEADER = 6;
export const IPV6_HOP_LIMIT = 7;
export const IPV6_SRC = 8;
export const IPV6_DST = 24;

// ---------------------------------------------------------------- addresses as byte ranges
/** a[aOff, +16) equals b[bOff, +16). */
export function ipv6AddrEqual(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number): boolean {
  for (let i = 0; i < 16; i++) if (a[aOff + i] !== b[bOff + i]) return false;
  return true;
}

/** Lexicographic (numeric) order of two addresses: negative, 0 or positive. */
export function ipv6AddrCompare(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number): number {
  for (let i = 0; i < 16; i++) {
    const d = a[aOff + i]! - b[bOff + i]!;
    if (d !== 0) return d;
  }
  return 0;
}

/** Copy 16 bytes. */
export function ipv6AddrCopy(src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number): void {
  for (let i = 0; i < 16; i++) dst[dstOff + i] = src[srcOff + i]!;
}

/**
 * Hot-path shortcut for the checked IPv6 header at b[off]: the offset of its payload when the
 * fixed header's Next Header is `protocol` (no extension headers in between), else -1. The same
 * answer as `v.nextHeader === protocol ? v.payloadOff : -1` on a view, without re-pointing one
 * (see ipv4UnfragmentedPayload).
 */
export function ipv6DirectPayload(b: Uint8Array, off: number, protocol: number): number {
  return b[off + IPV6_NEXT_HEADER] === protocol ? off + IPV6_HEADER_LEN : -1;
}

/**
 * Text for what follows the fixed header of the (length-checked) IPv6 packet at buf[off, off+len):
 * everything after "IP6 ", addresses included (`src`/`dst` are formatted). describe.ts passes one
 * that walks the extension headers and knows ICMPv6, UDP and TCP.
 */
export type Ipv6PayloadText = (buf: Uint8Array, off: number, len: number, src: string, dst: string) => string;

// ---------------------------------------------------------------- representation
export interface Ipv6Repr {
  trafficClass: number;
  flowLabel: number;
  payloadLength: number;
  nextHeader: number;
  hopLimit: number;
  /** 16 bytes each (copies: parse() is not for the hot path). */
  src: Uint8Array;
  dst: Uint8Array;
}

export class Ipv6Packet extends WireView {
  /**
   * Fixed-header checks before any field is trusted:
   * Truncated (< 40 bytes or the view runs past the buffer), BadVersion (not 6),
   * BadPayloadLength (40 + payload length > len). Bytes after the payload are allowed
   * (link padding); use totalLength, not len. A zero payload length is accepted
   * (jumbograms are not supported: their Hop-by-Hop header then lies past the payload and the
   * chain walk rejects it).
   */
  check(): DropReason {
    const b = this.buf;
    const o = this.off;
    if (this.len < IPV6_HEADER_LEN || o < 0 || o + this.len > b.length) return DropReason.Truncated;
    if (b[o]! >>> 4 !== 6) return DropReason.BadVersion;
    if (IPV6_HEADER_LEN + ((b[o + 4]! << 8) | b[o + 5]!) > this.len) return DropReason.BadPayloadLength;
    return R_NONE;
  }

  get version(): number {
    return this.buf[this.off]! >>> 4;
  }
  set version(v: number) {
    this.buf[this.off] = ((v & 0x0f) << 4) | (this.buf[this.off]! & 0x0f);
  }
  /** DSCP (6 bits) + ECN (2 bits). */
  get trafficClass(): number {
    return ((this.buf[this.off]! & 0x0f) << 4) | (this.buf[this.off + 1]! >>> 4);
  }
  set trafficClass(v: number) {
    const b = this.buf;
    const o = this.off;
    b[o] = (b[o]! & 0xf0) | ((v >>> 4) & 0x0f);
    b[o + 1] = ((v & 0x0f) << 4) | (b[o + 1]! & 0x0f);
  }
  get dscp(): number {
    return this.trafficClass >>> 2;
  }
  get ecn(): number {
    return this.trafficClass & 3;
  }
  get flowLabel(): number {
    const b = this.buf;
    const o = this.off;
    return ((b[o + 1]! & 0x0f) << 16) | (b[o + 2]! << 8) | b[o + 3]!;
  }
  set flowLabel(v: number) {
    const b = this.buf;
    const o = this.off;
    b[o + 1] = (b[o + 1]! & 0xf0) | ((v >>> 16) & 0x0f);
    b[o + 2] = (v >>> 8) & 0xff;
    b[o + 3] = v & 0xff;
  }
  get payloadLength(): number {
    return (this.buf[this.off + 4]! << 8) | this.buf[this.off + 5]!;
  }
  set payloadLength(v: number) {
    this.buf[this.off + 4] = (v >>> 8) & 0xff;
    this.buf[this.off + 5] = v & 0xff;
  }
  get nextHeader(): number {
    return this.buf[this.off + IPV6_NEXT_HEADER]!;
  }
  set nextHeader(v: number) {
    this.buf[this.off + IPV6_NEXT_HEADER] = v;
  }
  get hopLimit(): number {
    return this.buf[this.off + IPV6_HOP_LIMIT]!;
  }
  set hopLimit(v: number) {
    this.buf[this.off + IPV6_HOP_LIMIT] = v;
  }
  /** Absolute offset of the source address in buf. */
  get srcOff(): number {
    return this.off + IPV6_SRC;
  }
  /** Absolute offset of the destination address in buf. */
  get dstOff(): number {
    return this.off + IPV6_DST;
  }
  /** Absolute offset of the first byte after the fixed header. */
  get payloadOff(): number {
    return this.off + IPV6_HEADER_LEN;
  }
  /** 40 + payload length: the packet's length on the wire. */
  get totalLength(): number {
    return IPV6_HEADER_LEN + this.payloadLength;
  }

  srcEquals(b: Uint8Array, o: number): boolean {
    return ipv6AddrEqual(this.buf, this.off + IPV6_SRC, b, o);
  }
  dstEquals(b: Uint8Array, o: number): boolean {
    return ipv6AddrEqual(this.buf, this.off + IPV6_DST, b, o);
  }
  /** Overwrite the source address from b[o, o+16). Upper-layer checksums are the caller's. */
  setSrc(b: Uint8Array, o: number): void {
    ipv6AddrCopy(b, o, this.buf, this.off + IPV6_SRC);
  }
  setDst(b: Uint8Array, o: number): void {
    ipv6AddrCopy(b, o, this.buf, this.off + IPV6_DST);
  }

  /**
   * Forwarding step (RFC 8200 3): HopLimitExpired, with nothing changed, when the hop limit is
   * 0 or 1 (the caller sends Time Exceeded code 0); otherwise decrement and None. IPv6 has no
   * header checksum and the hop limit is not in any pseudo-header, so nothing else changes.
   */
  decrementHopLimit(): DropReason {
    const i = this.off + IPV6_HOP_LIMIT;
    const h = this.buf[i]!;
    if (h <= 1) return DropReason.HopLimitExpired;
    this.buf[i] = h - 1;
    return R_NONE;
  }

  parse(): Ipv6Repr {
    const o = this.off;
    return {
      trafficClass: this.trafficClass,
      flowLabel: this.flowLabel,
      payloadLength: this.payloadLength,
      nextHeader: this.nextHeader,
      hopLimit: this.hopLimit,
      src: new Uint8Array(this.buf.subarray(o + IPV6_SRC, o + IPV6_SRC + 16)),
      dst: new Uint8Array(this.buf.subarray(o + IPV6_DST, o + IPV6_DST + 16)),
    };
  }

  /** Write the 40-byte fixed header from `repr` at this.off. */
  emit(repr: Ipv6Repr): void {
    writeIpv6Header(
      this.buf,
      this.off,
      repr.payloadLength,
      repr.nextHeader,
      repr.hopLimit,
      repr.src,
      0,
      repr.dst,
      0,
      repr.trafficClass,
      repr.flowLabel,
    );
  }

  /**
   * tcpdump-like one-liner: the fixed header, and what `payload` makes of the rest:
   * "IP6 fd00:10::1 > fd00:20::20: ICMP6 64" on its own; with describe.ts's payload text
   * (describeIpv6) "IP6 fd00:10::1 > fd00:20::20: ICMP6, echo request, id 1, seq 1, length 64".
   * Never throws (allocates: not for the hot path).
   */
  describe(payload: Ipv6PayloadText | null = null): string {
    const buf = this.buf;
    const off = this.off;
    const len = this.len;
    const avail = Math.max(0, Math.min(len, buf.length - off));
    if (off < 0 || avail < IPV6_HEADER_LEN) return `IP6 [|ip6] length ${len}`;
    if (buf[off]! >>> 4 !== 6) return `IP6 bad version ${buf[off]! >>> 4}, length ${len}`;
    const src = formatAddress(buf, off + IPV6_SRC, 6);
    const dst = formatAddress(buf, off + IPV6_DST, 6);
    const plen = this.payloadLength;
    if (IPV6_HEADER_LEN + plen > avail) {
      return `IP6 ${src} > ${dst}: [payload length ${plen} > ${avail - IPV6_HEADER_LEN}]`;
    }
    const text = payload === null ? null : payload(buf, off, avail, src, dst);
    return `IP6 ${text ?? `${src} > ${dst}: ${nextHeaderName(this.nextHeader)} ${plen}`}`;
  }
}

/** Write a fixed header without a view or repr object (addresses copied from byte ranges). */
export function writeIpv6Header(
  buf: Uint8Array,
  off: number,
  payloadLength: number,
  nextHeader: number,
  hopLimit: number,
  src: Uint8Array,
  srcOff: number,
  dst: Uint8Array,
  dstOff: number,
  trafficClass = 0,
  flowLabel = 0,
): void {
  buf[off] = 0x60 | ((trafficClass >>> 4) & 0x0f);
  buf[off + 1] = ((trafficClass & 0x0f) << 4) | ((flowLabel >>> 16) & 0x0f);
  buf[off + 2] = (flowLabel >>> 8) & 0xff;
  buf[off + 3] = flowLabel & 0xff;
  buf[off + 4] = (payloadLength >>> 8) & 0xff;
  buf[off + 5] = payloadLength & 0xff;
  buf[off + 6] = nextHeader;
  buf[off + 7] = hopLimit;
  // copyWithin-safe order is not needed: src/dst may alias buf only at other offsets
  for (let i = 0; i < 16; i++) buf[off + IPV6_SRC + i] = src[srcOff + i]!;
  for (let i = 0; i < 16; i++) buf[off + IPV6_DST + i] = dst[dstOff + i]!;
}
