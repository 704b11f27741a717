/**
 * TCP header (RFC 9293) view: the fields a tunnel touches. Ports, sequence numbers, data offset,
 * flags, window, checksum (IPv4/IPv6 pseudo-header), urgent pointer, an allocation-free option
 * walk, and MSS clamping with the RFC 1624 incremental checksum update.
 *
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * |          Source Port          |       Destination Port        |
 * |                        Sequence Number                        |
 * |                    Acknowledgment Number                      |
 * |  Data |       |C|E|U|A|P|R|S|F|                               |
 * | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
 * |           Checksum            |         Urgent Pointer        |
 * |                    Options                    |    Padding    |
 */
import { WireView } from './view.ts';
import { DropReason } from '../base/drop-reason.ts';
import { adjust16, fold, pseudoHeaderSumV4, pseudoHeaderSumV6, sumWords } from './checksum.ts';
import { IP_PROTO_TCP } from './ip.ts';

export const TCP_HEADER_LEN = 20;

const F_SRC_PORT = 0;
const F_DST_PORT = 2;
const F_SEQ = 4;
const F_ACK = 8;
const F_DATA_OFF = 12;
const F_FLAGS = 13;
const F_WINDOW = 14;
const F_CHECKSUM = 16;
const F_URGENT = 18;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;
export const TCP_ECE = 0x40;
export const TCP_CWR = 0x80;
/** Accurate ECN / the old NS bit: low bit of byte 12 (exposed as flag bit 8). */
export const TCP_AE = 0x100;

export const TCP_OPT_EOL = 0;
export const TCP_OPT_NOP = 1;
export const TCP_OPT_MSS = 2;
export const TCP_OPT_WSCALE = 3;
export const TCP_OPT_SACK_PERM = 4;
export const TCP_OPT_SACK = 5;
export const TCP_OPT_TIMESTAMP = 8;

export interface TcpRepr {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  /** Flag bits (TCP_SYN | TCP_ACK ...), 9 bits. */
  flags: number;
  window: number;
  urgent: number;
  /** Raw option bytes (padded to 4 by emit). */
  options: Uint8Array;
  payloadLength: number;
}

export class TcpPacket extends WireView {
  private u16(f: number): number {
    return (this.buf[this.off + f]! << 8) | this.buf[this.off + f + 1]!;
  }
  private w16(f: number, v: number): void {
    this.buf[this.off + f] = v >>> 8;
    this.buf[this.off + f + 1] = v;
  }
  private u32(f: number): number {
    const b = this.buf;
    const o = this.off + f;
    return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
  }
  private w32(f: number, v: number): void {
    const o = this.off + f;
    this.buf[o] = v >>> 24;
    this.buf[o + 1] = v >>> 16;
    this.buf[o + 2] = v >>> 8;
    this.buf[o + 3] = v;
  }

  get srcPort(): number {
    return this.u16(F_SRC_PORT);
  }
  set srcPort(v: number) {
    this.w16(F_SRC_PORT, v);
  }
  get dstPort(): number {
    return this.u16(F_DST_PORT);
  }
  set dstPort(v: number) {
    this.w16(F_DST_PORT, v);
  }
  get seq(): number {
    return this.u32(F_SEQ);
  }
  set seq(v: number) {
    this.w32(F_SEQ, v);
  }
  get ack(): number {
    return this.u32(F_ACK);
  }
  set ack(v: number) {
    this.w32(F_ACK, v);
  }
  /** Header length in bytes (data offset * 4). */
  get headerLength(): number {
    return (this.buf[this.off + F_DATA_OFF]! >> 4) * 4;
  }
  set headerLength(bytes: number) {
    const o = this.off + F_DATA_OFF;
    this.buf[o] = (((bytes >> 2) & 0xf) << 4) | (this.buf[o]! & 0x0f);
  }
  /** All 9 flag bits: CWR..FIN in the low byte, AE in bit 8. */
  get flags(): number {
    return ((this.buf[this.off + F_DATA_OFF]! & 1) << 8) | this.buf[this.off + F_FLAGS]!;
  }
  set flags(v: number) {
    const o = this.off + F_DATA_OFF;
    this.buf[o] = (this.buf[o]! & 0xfe) | ((v >> 8) & 1);
    this.buf[o + 1] = v;
  }
  get fin(): boolean {
    return (this.buf[this.off + F_FLAGS]! & TCP_FIN) !== 0;
  }
  get syn(): boolean {
    return (this.buf[this.off + F_FLAGS]! & TCP_SYN) !== 0;
  }
  get rst(): boolean {
    return (this.buf[this.off + F_FLAGS]! & TCP_RST) !== 0;
  }
  get psh(): boolean {
    return (this.buf[this.off + F_FLAGS]! & TCP_PSH) !== 0;
  }
  get ackFlag(): boolean {
    return (this.buf[this.off + F_FLAGS]! & TCP_ACK) !== 0;
  }
  get urg(): boolean {
    return (this.buf[this.off + F_FLAGS]! & TCP_URG) !== 0;
  }
  get ece(): boolean {
    return (this.buf[this.off + F_FLAGS]! & TCP_ECE) !== 0;
  }
  get cwr(): boolean {
    return (this.buf[this.off + F_FLAGS]! & TCP_CWR) !== 0;
  }
  get window(): number {
    return this.u16(F_WINDOW);
  }
  set window(v: number) {
    this.w16(F_WINDOW, v);
  }
  get checksum(): number {
    return this.u16(F_CHECKSUM);
  }
  set checksum(v: number) {
    this.w16(F_CHECKSUM, v);
  }
  get urgent(): number {
    return this.u16(F_URGENT);
  }
  set urgent(v: number) {
    this.w16(F_URGENT, v);
  }
  get optionsOffset(): number {
    return this.off + TCP_HEADER_LEN;
  }
  get optionsLength(): number {
    return this.headerLength - TCP_HEADER_LEN;
  }
  get payloadOffset(): number {
    return this.off + this.headerLength;
  }
  get payloadLength(): number {
    return this.len - this.headerLength;
  }

  /**
   * Truncated when fewer than 20 bytes; BadTcpHeaderLength when the data offset is < 5 words or
   * runs past the segment. Options are not validated here (a tunnel forwards what it does not
   * understand; see checkOptions()).
   */
  check(): DropReason {
    if (this.len < TCP_HEADER_LEN) return DropReason.Truncated;
    const h = this.headerLength;
    if (h < TCP_HEADER_LEN || h > this.len) return DropReason.BadTcpHeaderLength;
    return DropReason.None;
  }

  /** Strict option validation: TLV lengths inside the header, known options with their sizes. */
  checkOptions(): DropReason {
    const end = this.off + this.headerLength;
    let p = this.off + TCP_HEADER_LEN;
    const b = this.buf;
    while (p < end) {
      const k = b[p]!;
      if (k === TCP_OPT_EOL) break;
      if (k === TCP_OPT_NOP) {
        p++;
        continue;
      }
      if (p + 1 >= end) return DropReason.BadTcpOption;
      const l = b[p + 1]!;
      if (l < 2 || p + l > end) return DropReason.BadTcpOption;
      if (
        (k === TCP_OPT_MSS && l !== 4) ||
        (k === TCP_OPT_WSCALE && l !== 3) ||
        (k === TCP_OPT_SACK_PERM && l !== 2) ||
        (k === TCP_OPT_TIMESTAMP && l !== 10) ||
        (k === TCP_OPT_SACK && (l < 10 || (l - 2) % 8 !== 0))
      ) {
        return DropReason.BadTcpOption;
      }
      p += l;
    }
    return DropReason.None;
  }

  /**
   * Offset (in buf) of the first option of `kind`, or -1. Lenient like Linux's
   * tcp_parse_options(): a malformed length ends the walk.
   */
  findOption(kind: number): number {
    const end = this.off + this.headerLength;
    let p = this.off + TCP_HEADER_LEN;
    const b = this.buf;
    while (p < end) {
      const k = b[p]!;
      if (k === TCP_OPT_EOL) return -1;
      if (k === TCP_OPT_NOP) {
        p++;
        continue;
      }
      if (p + 1 >= end) return -1;
      const l = b[p + 1]!;
      if (l < 2 || p + l > end) return -1;
      if (k === kind) return p;
      p += l;
    }
    return -1;
  }

  /** The MSS option value, or -1 when there is none (or it is malformed). */
  get mss(): number {
    const p = this.findOption(TCP_OPT_MSS);
    if (p < 0 || this.buf[p + 1] !== 4) return -1;
    return (this.buf[p + 2]! << 8) | this.buf[p + 3]!;
  }

  /**
   * On SYN and SYN-ACK only: when the MSS option exceeds maxMss, rewrite it to maxMss and update
   * the checksum incrementally (RFC 1624 eqn. 3). Handles an option at an odd offset (after a
   * single NOP) by updating the two 16-bit words the value straddles. Returns true when changed.
   * Works on the first fragment of a fragmented segment too (the update is incremental).
   */
  clampMss(maxMss: number): boolean {
    if (this.len < TCP_HEADER_LEN || (this.buf[this.off + F_FLAGS]! & TCP_SYN) === 0) return false;
    const h = this.headerLength;
    if (h < TCP_HEADER_LEN || h > this.len) return false;
    const p = this.findOption(TCP_OPT_MSS);
    if (p < 0 || this.buf[p + 1] !== 4) return false;
    const v = p + 2;
    const b = this.buf;
    const old = (b[v]! << 8) | b[v + 1]!;
    if (old <= maxMss) return false;
    const m = maxMss & 0xffff;
    let c = this.checksum;
    if (((v - this.off) & 1) === 0) {
      c = adjust16(c, old, m);
      b[v] = m >>> 8;
      b[v + 1] = m;
    } else {
      // Value bytes at odd offsets: words are (b[v-1], b[v]) and (b[v+1], b[v+2]).
      const w1 = (b[v - 1]! << 8) | b[v]!;
      const w2 = (b[v + 1]! << 8) | b[v + 2]!;
      b[v] = m >>> 8;
      b[v + 1] = m;
      c = adjust16(c, w1, (b[v - 1]! << 8) | b[v]!);
      c = adjust16(c, w2, (b[v + 1]! << 8) | b[v + 2]!);
    }
    this.checksum = c;
    return true;
  }

  private sumV4(addrBuf: Uint8Array, srcOff: number, dstOff: number): number {
    return sumWords(this.buf, this.off, this.len, pseudoHeaderSumV4(addrBuf, srcOff, dstOff, IP_PROTO_TCP, this.len));
  }
  private sumV6(addrBuf: Uint8Array, srcOff: number, dstOff: number): number {
    return sumWords(this.buf, this.off, this.len, pseudoHeaderSumV6(addrBuf, srcOff, dstOff, IP_PROTO_TCP, this.len));
  }
  /** Verify over the whole segment (this.len bytes) with the IPv4 pseudo-header. */
  verifyChecksumV4(addrBuf: Uint8Array, srcOff: number, dstOff: number): boolean {
    return fold(this.sumV4(addrBuf, srcOff, dstOff)) === 0xffff;
  }
  verifyChecksumV6(addrBuf: Uint8Array, srcOff: number, dstOff: number): boolean {
    return fold(this.sumV6(addrBuf, srcOff, dstOff)) === 0xffff;
  }
  fillChecksumV4(addrBuf: Uint8Array, srcOff: number, dstOff: number): number {
    this.checksum = 0;
    return (this.checksum = ~fold(this.sumV4(addrBuf, srcOff, dstOff)) & 0xffff);
  }
  fillChecksumV6(addrBuf: Uint8Array, srcOff: number, dstOff: number): number {
    this.checksum = 0;
    return (this.checksum = ~fold(this.sumV6(addrBuf, srcOff, dstOff)) & 0xffff);
  }

  parse(): TcpRepr | DropReason {
    const r = this.check();
    if (r !== DropReason.None) return r;
    return {
      srcPort: this.srcPort,
      dstPort: this.dstPort,
      seq: this.seq,
      ack: this.ack,
      flags: this.flags,
      window: this.window,
      urgent: this.urgent,
      options: this.buf.slice(this.optionsOffset, this.optionsOffset + this.optionsLength),
      payloadLength: this.payloadLength,
    };
  }

  /** Header bytes emit() writes for repr (options padded to 4). */
  static headerLength(repr: TcpRepr): number {
    return TCP_HEADER_LEN + ((repr.options.length + 3) & ~3);
  }

  /** Write the header (checksum 0: fill after the payload is in place). Returns header bytes. */
  static emit(repr: TcpRepr, buf: Uint8Array, off: number): number {
    const hl = TcpPacket.headerLength(repr);
    const p = new TcpPacket(buf, off, hl + repr.payloadLength);
    p.srcPort = repr.srcPort;
    p.dstPort = repr.dstPort;
    p.seq = repr.seq;
    p.ack = repr.ack;
    buf[off + F_DATA_OFF] = 0;
    p.headerLength = hl;
    p.flags = repr.flags;
    p.window = repr.window;
    p.checksum = 0;
    p.urgent = repr.urgent;
    buf.set(repr.options, off + TCP_HEADER_LEN);
    for (let i = TCP_HEADER_LEN + repr.options.length; i < hl; i++) buf[off + i] = 0;
    return hl;
  }

  /** "TCP 40000 > 80 Flags [S], seq 1, win 64240, options [mss 1460], length 0". Never throws. */
  describe(): string {
    return `TCP ${describeTcpSegment(this.buf, this.off, this.len, '', '')}`;
  }
}

// A Buffer, so that views in a Buffer-based pool only ever see one receiver map.

function flagText(f: number): string {
  let s = '';
  if (f & TCP_FIN) s += 'F';
  if (f & TCP_SYN) s += 'S';
  if (f & TCP_RST) s += 'R';
  if (f & TCP_PSH) s += 'P';
  if (f & TCP_URG) s += 'U';
  if (f & TCP_ECE) s += 'E';
  if (f & TCP_CWR) s += 'W';
  if (f & TCP_ACK) s += '.';
  if (f & TCP_AE) s += 'A';
  return s === '' ? 'none' : s;
}

function optionsText(b: Uint8Array, p: number, end: number): string {
  const parts: string[] = [];
  while (p < end) {
    const k = b[p]!;
    if (k === TCP_OPT_EOL) {
      parts.push('eol');
      break;
    }
    if (k === TCP_OPT_NOP) {
      parts.push('nop');
      p++;
      continue;
    }
    const l = p + 1 < end ? b[p + 1]! : 0;
    if (l < 2 || p + l > end) {
      parts.push(`opt-${k} [bad length ${l}]`);
      break;
    }
    const u16 = (o: number) => (b[o]! << 8) | b[o + 1]!;
    const u32 = (o: number) => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
    if (k === TCP_OPT_MSS && l === 4) parts.push(`mss ${u16(p + 2)}`);
    else if (k === TCP_OPT_WSCALE && l === 3) parts.push(`wscale ${b[p + 2]}`);
    else if (k === TCP_OPT_SACK_PERM && l === 2) parts.push('sackOK');
    else if (k === TCP_OPT_TIMESTAMP && l === 10) parts.push(`TS val ${u32(p + 2)} ecr ${u32(p + 6)}`);
    else if (k === TCP_OPT_SACK) {
      const blocks: string[] = [];
      for (let q = p + 2; q + 8 <= p + l; q += 8) blocks.push(`{${u32(q)}:${u32(q + 4)}}`);
      parts.push(`sack ${blocks.length} ${blocks.join('')}`);
    } else parts.push(`opt-${k}:len ${l}`);
    p += l;
  }
  return parts.join(',');
}

/**
 * tcpdump's body for a TCP segment:
 * "10.0.0.1.40000 > 10.0.0.2.80: Flags [S], seq 1, win 64240, options [mss 1460], length 0".
 * With empty src/dst, only "40000 > 80: ...". Never throws.
 */
export function describeTcpSegment(buf: Uint8Array, off: number, len: number, src: string, dst: string): string {
  const s = src === '' ? '' : `${src}.`;
  const d = dst === '' ? '' : `${dst}.`;
  if (len < TCP_HEADER_LEN) return src === '' ? `[truncated ${len}]` : `${src} > ${dst}: tcp [truncated ${len}]`;
  const p = new TcpPacket(buf, off, len);
  const hl = p.headerLength;
  let out = `${s}${p.srcPort} > ${d}${p.dstPort}: Flags [${flagText(p.flags)}], seq ${p.seq}`;
  if (p.ackFlag) out += `, ack ${p.ack}`;
  out += `, win ${p.window}`;
  if (p.urg) out += `, urg ${p.urgent}`;
  if (hl < TCP_HEADER_LEN || hl > len) return `${out} [bad hdr length ${hl}]`;
  if (hl > TCP_HEADER_LEN) out += `, options [${optionsText(buf, off + TCP_HEADER_LEN, off + hl)}]`;
  return `${out}, length ${len - hl}`;
}
