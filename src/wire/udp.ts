/**
 * UDP header (RFC 768) view: ports, length, checksum with the IPv4 (RFC 768) or IPv6
 * (RFC 8200 section 8.1) pseudo-header.
 *
 * Checksum rules: over IPv4 a zero field means "no checksum" (verify passes); over IPv6 it is
 * mandatory (a zero field fails verification). A computed 0x0000 is transmitted as 0xffff.
 *
 *   0      7 8     15 16    23 24    31
 *  +--------+--------+--------+--------+
 *  |   source port   |    dest port    |
 *  +--------+--------+--------+--------+
 *  |     length      |    checksum     |
 *  +--------+--------+--------+--------+
 */
import { WireView } from './view.ts';
import { DropReason } from '../base/drop-reason.ts';
import { fold, pseudoHeaderSumV4, pseudoHeaderSumV6, sumWords } from './checksum.ts';
import { IP_PROTO_UDP } from './ip.ts';

export const UDP_HEADER_LEN = 8;

/** Port offsets (the same in TCP, SCTP, DCCP and UDP-Lite headers). */
export const F_SRC_PORT = 0;
export const F_DST_PORT = 2;
const F_LENGTH = 4;
const F_CHECKSUM = 6;

export interface UdpRepr {
  srcPort: number;
  dstPort: number;
  /** Payload bytes (length field minus 8). */
  payloadLength: number;
}

export class UdpPacket extends WireView {
  get srcPort(): number {
    return (this.buf[this.off + F_SRC_PORT]! << 8) | this.buf[this.off + F_SRC_PORT + 1]!;
  }
  set srcPort(v: number) {
    this.buf[this.off + F_SRC_PORT] = v >>> 8;
    this.buf[this.off + F_SRC_PORT + 1] = v;
  }
  get dstPort(): number {
    return (this.buf[this.off + F_DST_PORT]! << 8) | this.buf[this.off + F_DST_PORT + 1]!;
  }
  set dstPort(v: number) {
    this.buf[this.off + F_DST_PORT] = v >>> 8;
    this.buf[this.off + F_DST_PORT + 1] = v;
  }
  /** The length field: header + payload. */
  get length(): number {
    return (this.buf[this.off + F_LENGTH]! << 8) | this.buf[this.off + F_LENGTH + 1]!;
  }
  set length(v: number) {
    this.buf[this.off + F_LENGTH] = v >>> 8;
    this.buf[this.off + F_LENGTH + 1] = v;
  }
  get checksum(): number {
    return (this.buf[this.off + F_CHECKSUM]! << 8) | this.buf[this.off + F_CHECKSUM + 1]!;
  }
  set checksum(v: number) {
    this.buf[this.off + F_CHECKSUM] = v >>> 8;
    this.buf[this.off + F_CHECKSUM + 1] = v;
  }
  get payloadOffset(): number {
    return this.off + UDP_HEADER_LEN;
  }
  get payloadLength(): number {
    return this.length - UDP_HEADER_LEN;
  }

  /**
   * Length consistency against the bytes the IP layer says are ours (this.len): Truncated when
   * fewer than 8 bytes, BadUdpLength when the length field is < 8 or exceeds the IP payload.
   * A length shorter than the IP payload is accepted (the rest is trailing padding, as Linux
   * trims it). IPv6 jumbograms (length 0, RFC 2675) are not supported.
   */
  check(): DropReason {
    if (this.len < UDP_HEADER_LEN) return DropReason.Truncated;
    const l = this.length;
    if (l < UDP_HEADER_LEN || l > this.len) return DropReason.BadUdpLength;
    return DropReason.None;
  }

  /** Sum for the checksum over header + payload with the IPv4 pseudo-header (addresses in addrBuf). */
  private sumV4(addrBuf: Uint8Array, srcOff: number, dstOff: number): number {
    const l = this.length;
    return sumWords(this.buf, this.off, l, pseudoHeaderSumV4(addrBuf, srcOff, dstOff, IP_PROTO_UDP, l));
  }
  private sumV6(addrBuf: Uint8Array, srcOff: number, dstOff: number): number {
    const l = this.length;
    return sumWords(this.buf, this.off, l, pseudoHeaderSumV6(addrBuf, srcOff, dstOff, IP_PROTO_UDP, l));
  }

  /** IPv4: true when the checksum is absent (0) or correct. Call after check(). */
  verifyChecksumV4(addrBuf: Uint8Array, srcOff: number, dstOff: number): boolean {
    if (this.checksum === 0) return true;
    return fold(this.sumV4(addrBuf, srcOff, dstOff)) === 0xffff;
  }
  /** IPv6: true only when present and correct (zero is invalid, RFC 8200 section 8.1). */
  verifyChecksumV6(addrBuf: Uint8Array, srcOff: number, dstOff: number): boolean {
    if (this.checksum === 0) return false;
    return fold(this.sumV6(addrBuf, srcOff, dstOff)) === 0xffff;
  }
  /** Compute and store the checksum (IPv4 pseudo-header); a computed 0 is stored as 0xffff. */
  fillChecksumV4(addrBuf: Uint8Array, srcOff: number, dstOff: number): number {
    this.checksum = 0;
    const c = ~fold(this.sumV4(addrBuf, srcOff, dstOff)) & 0xffff;
    return (this.checksum = c === 0 ? 0xffff : c);
  }
  fillChecksumV6(addrBuf: Uint8Array, srcOff: number, dstOff: number): number {
    this.checksum = 0;
    const c = ~fold(this.sumV6(addrBuf, srcOff, dstOff)) & 0xffff;
    return (this.checksum = c === 0 ? 0xffff : c);
  }

  parse(): UdpRepr | DropReason {
    const r = this.check();
    if (r !== DropReason.None) return r;
    return { srcPort: this.srcPort, dstPort: this.dstPort, payloadLength: this.payloadLength };
  }

  /** Write the 8-byte header (checksum 0: fill it after the payload is in place). Returns 8. */
  static emit(repr: UdpRepr, buf: Uint8Array, off: number): number {
    const p = new UdpPacket(buf, off, UDP_HEADER_LEN + repr.payloadLength);
    p.srcPort = repr.srcPort;
    p.dstPort = repr.dstPort;
    p.length = UDP_HEADER_LEN + repr.payloadLength;
    p.checksum = 0;
    return UDP_HEADER_LEN;
  }

  /** "UDP 5000 > 53 length 12" (without addresses). Never throws. */
  describe(): string {
    if (this.len < UDP_HEADER_LEN) return `UDP [truncated ${this.len}]`;
    const bad = this.check() !== DropReason.None ? ' [bad length]' : '';
    return `UDP ${this.srcPort} > ${this.dstPort}, length ${this.length - UDP_HEADER_LEN}${bad}`;
  }
}

// A Buffer, so that views in a Buffer-based pool only ever see one receiver map.

/**
 * tcpdump's body for a UDP datagram inside IP: "10.0.0.1.5000 > 10.0.0.2.53: UDP, length 4".
 * `src`/`dst` are the formatted addresses. Never throws.
 */
export function describeUdpBody(
  buf: Uint8Array,
  off: number,
  len: number,
  src: string,
  dst: string,
  /** False for a first fragment: the length field covers bytes not present. */
  complete = true,
): string {
  if (len < UDP_HEADER_LEN) return `${src} > ${dst}: UDP [truncated]`;
  const sp = (buf[off]! << 8) | buf[off + 1]!;
  const dp = (buf[off + 2]! << 8) | buf[off + 3]!;
  const l = (buf[off + 4]! << 8) | buf[off + 5]!;
  const bad = l < UDP_HEADER_LEN || (complete && l > len) ? ` [bad udp length ${l}]` : '';
  return `${src}.${sp} > ${dst}.${dp}: UDP, length ${l - UDP_HEADER_LEN}${bad}`;
}
