/**
 * ICMPv4 (RFC 792) view and builders.
 *
 * Parsing: type/code/checksum and the 4-byte rest-of-header read per type (echo id/seq,
 * fragmentation-needed next-hop MTU per RFC 1191, parameter-problem pointer, redirect gateway),
 * the quoted datagram of error messages.
 *
 * Building: error messages per RFC 792 and RFC 1812 section 4.3.2.3 (quote the offending IP
 * header and as much of its payload as fits in a 576-byte datagram), the RFC 1812 4.3.2.7
 * "never send an error about ..." decision as mayReplyWithIcmpError(), and echo replies in place.
 */
import { WireView } from './view.ts';
import { DropReason } from '../base/drop-reason.ts';
import { adjust16, checksum, fold, sumWords } from './checksum.ts';
import { IPV4_HEADER_LEN } from './ipv4.ts';
import {
  IP_PROTO_ICMP,
  IP_PROTO_TCP,
  IP_PROTO_UDP,
  IPV4_MIN_DATAGRAM,
  isClassEV4,
  isLoopbackV4,
  isMulticastV4,
  isThisNetworkV4,
  readV4,
  v4Text,
  writeV4,
} from './ip.ts';

export const ICMPV4_HEADER_LEN = 8;
/** RFC 1812 4.3.2.3: an ICMP error datagram (IP header included) is at most 576 bytes. */
export const ICMPV4_ERROR_MAX_LEN = IPV4_MIN_DATAGRAM;

export const ICMP_ECHO_REPLY = 0;
export const ICMP_DEST_UNREACHABLE = 3;
export const ICMP_SOURCE_QUENCH = 4;
export const ICMP_REDIRECT = 5;
export const ICMP_ECHO_REQUEST = 8;
export const ICMP_ROUTER_ADVERT = 9;
export const ICMP_ROUTER_SOLICIT = 10;
export const ICMP_TIME_EXCEEDED = 11;
export const ICMP_PARAM_PROBLEM = 12;
export const ICMP_TIMESTAMP = 13;
export const ICMP_TIMESTAMP_REPLY = 14;
export const ICMP_INFO_REQUEST = 15;
export const ICMP_INFO_REPLY = 16;
export const ICMP_ADDRESS_MASK = 17;
export const ICMP_ADDRESS_MASK_REPLY = 18;
/** Highest type Linux knows (NR_ICMP_TYPES); above it a type counts as an error message. */
export const ICMP_MAX_KNOWN_TYPE = 18;

/** Destination unreachable codes (RFC 792, RFC 1122, RFC 1812). */
export const ICMP_UNREACH_NET = 0;
export const ICMP_UNREACH_HOST = 1;
export const ICMP_UNREACH_PROTOCOL = 2;
export const ICMP_UNREACH_PORT = 3;
export const ICMP_UNREACH_FRAG_NEEDED = 4;
export const ICMP_UNREACH_SOURCE_ROUTE = 5;
export const ICMP_UNREACH_NET_UNKNOWN = 6;
export const ICMP_UNREACH_HOST_UNKNOWN = 7;
export const ICMP_UNREACH_NET_PROHIBITED = 9;
export const ICMP_UNREACH_HOST_PROHIBITED = 10;
export const ICMP_UNREACH_ADMIN_PROHIBITED = 13;
/** Time exceeded codes. */
export const ICMP_EXC_TTL = 0;
export const ICMP_EXC_FRAGTIME = 1;

const F_TYPE = 0;
const F_CODE = 1;
const F_CHECKSUM = 2;
const F_REST = 4;

/** True for the ICMPv4 error types (3, 4, 5, 11, 12). */
export function isIcmpv4ErrorType(type: number): boolean {
  return (
    type === ICMP_DEST_UNREACHABLE ||
    type === ICMP_SOURCE_QUENCH ||
    type === ICMP_REDIRECT ||
    type === ICMP_TIME_EXCEEDED ||
    type === ICMP_PARAM_PROBLEM
  );
}

export interface Icmpv4Repr {
  type: number;
  code: number;
  /** The rest-of-header word (bytes 4..7) as uint32. */
  rest: number;
  /** Echo identifier / sequence (echo and timestamp types), else 0. */
  ident: number;
  seq: number;
  /** Next-hop MTU of a fragmentation-needed message (type 3 code 4), else 0. */
  mtu: number;
  /** Parameter-problem pointer (type 12), else 0. */
  pointer: number;
  /** Bytes after the 8-byte header (echo data or the quoted datagram). */
  payloadLength: number;
}

export class Icmpv4Packet extends WireView {
  get type(): number {
    return this.buf[this.off + F_TYPE]!;
  }
  set type(v: number) {
    this.buf[this.off + F_TYPE] = v;
  }
  get code(): number {
    return this.buf[this.off + F_CODE]!;
  }
  set code(v: number) {
    this.buf[this.off + F_CODE] = v;
  }
  get checksum(): number {
    return (this.buf[this.off + F_CHECKSUM]! << 8) | this.buf[this.off + F_CHECKSUM + 1]!;
  }
  set checksum(v: number) {
    this.buf[this.off + F_CHECKSUM] = v >>> 8;
    this.buf[this.off + F_CHECKSUM + 1] = v;
  }
  /** Bytes 4..7 as uint32. */
  get rest(): number {
    return readV4(this.buf, this.off + F_REST);
  }
  set rest(v: number) {
    writeV4(this.buf, this.off + F_REST, v);
  }
  /** Echo / timestamp identifier (bytes 4-5). */
  get echoIdent(): number {
    return (this.buf[this.off + 4]! << 8) | this.buf[this.off + 5]!;
  }
  set echoIdent(v: number) {
    this.buf[this.off + 4] = v >>> 8;
    this.buf[this.off + 5] = v;
  }
  /** Echo / timestamp sequence number (bytes 6-7). */
  get echoSeq(): number {
    return (this.buf[this.off + 6]! << 8) | this.buf[this.off + 7]!;
  }
  set echoSeq(v: number) {
    this.buf[this.off + 6] = v >>> 8;
    this.buf[this.off + 7] = v;
  }
  /** Next-hop MTU of fragmentation needed (RFC 1191: bytes 6-7; 0 from pre-1191 routers). */
  get nextHopMtu(): number {
    return (this.buf[this.off + 6]! << 8) | this.buf[this.off + 7]!;
  }
  set nextHopMtu(v: number) {
    this.buf[this.off + 6] = v >>> 8;
    this.buf[this.off + 7] = v;
  }
  /** Parameter-problem pointer (byte 4): octet of the quoted header in error. */
  get pointer(): number {
    return this.buf[this.off + 4]!;
  }
  set pointer(v: number) {
    this.buf[this.off + 4] = v;
  }
  /** Redirect gateway address (bytes 4..7). */
  get gateway(): number {
    return this.rest;
  }
  get payloadOffset(): number {
    return this.off + ICMPV4_HEADER_LEN;
  }
  get payloadLength(): number {
    return this.len - ICMPV4_HEADER_LEN;
  }
  get isError(): boolean {
    return isIcmpv4ErrorType(this.type);
  }
  /** The quoted datagram of an error message (starts at payloadOffset). */
  get quotedOffset(): number {
    return this.off + ICMPV4_HEADER_LEN;
  }
  get quotedLength(): number {
    return this.len - ICMPV4_HEADER_LEN;
  }

  /**
   * Truncated (< 8 bytes), BadIcmpChecksum, then for error types BadIcmpLength unless the
   * quote holds at least a whole IPv4 header (version 4, IHL >= 5, the IHL bytes present), as
   * Linux's icmp_unreach() requires.
   */
  check(): DropReason {
    if (this.len < ICMPV4_HEADER_LEN) return DropReason.Truncated;
    if (!this.verifyChecksum()) return DropReason.BadIcmpChecksum;
    if (isIcmpv4ErrorType(this.type)) {
      const q = this.off + ICMPV4_HEADER_LEN;
      const ql = this.len - ICMPV4_HEADER_LEN;
      if (ql < IPV4_HEADER_LEN) return DropReason.BadIcmpLength;
      const vi = this.buf[q]!;
      if (vi >> 4 !== 4 || (vi & 15) < 5 || (vi & 15) * 4 > ql) return DropReason.BadIcmpLength;
    }
    return DropReason.None;
  }

  verifyChecksum(): boolean {
    return fold(sumWords(this.buf, this.off, this.len)) === 0xffff;
  }

  fillChecksum(): number {
    this.checksum = 0;
    return (this.checksum = checksum(this.buf, this.off, this.len));
  }

  parse(): Icmpv4Repr | DropReason {
    const r = this.check();
    if (r !== DropReason.None) return r;
    const t = this.type;
    const echo = t === ICMP_ECHO_REQUEST || t === ICMP_ECHO_REPLY || t === ICMP_TIMESTAMP || t === ICMP_TIMESTAMP_REPLY;
    return {
      type: t,
      code: this.code,
      rest: this.rest,
      ident: echo ? this.echoIdent : 0,
      seq: echo ? this.echoSeq : 0,
      mtu: t === ICMP_DEST_UNREACHABLE && this.code === ICMP_UNREACH_FRAG_NEEDED ? this.nextHopMtu : 0,
      pointer: t === ICMP_PARAM_PROBLEM ? this.pointer : 0,
      payloadLength: this.payloadLength,
    };
  }

  /**
   * Write the 8-byte header from repr (rest-of-header from rest, or from ident/seq, mtu or
   * pointer for those types) with checksum 0. Fill the checksum after the payload is in place
   * (fillChecksum on a view of 8 + payloadLength bytes). Returns 8.
   */
  static emit(repr: Icmpv4Repr, buf: Uint8Array, off: number): number {
    buf[off] = repr.type;
    buf[off + 1] = repr.code;
    buf[off + 2] = 0;
    buf[off + 3] = 0;
    let rest = repr.rest >>> 0;
    const t = repr.type;
    if (t === ICMP_ECHO_REQUEST || t === ICMP_ECHO_REPLY || t === ICMP_TIMESTAMP || t === ICMP_TIMESTAMP_REPLY) {
      rest = (((repr.ident & 0xffff) << 16) | (repr.seq & 0xffff)) >>> 0;
    } else if (t === ICMP_DEST_UNREACHABLE && repr.code === ICMP_UNREACH_FRAG_NEEDED) {
      rest = repr.mtu & 0xffff;
    } else if (t === ICMP_PARAM_PROBLEM) {
      rest = ((repr.pointer & 0xff) << 24) >>> 0;
    }
    writeV4(buf, off + 4, rest);
    return ICMPV4_HEADER_LEN;
  }

  /** "ICMP echo request, id 1, seq 1, length 64" (no addresses). Never throws. */
  describe(): string {
    return describeIcmpv4Body(this.buf, this.off, this.len, '', '');
  }
}

// A Buffer, so that views in a Buffer-based pool only ever see one receiver map.

function unreachText(code: number, b: Uint8Array, q: number, ql: number, mtu: number): string {
  // Quoted destination and transport for tcpdump-like text.
  const haveIp = ql >= IPV4_HEADER_LEN && b[q]! >> 4 === 4;
  const dst = haveIp ? v4Text(readV4(b, q + 16)) : '?';
  const hl = haveIp ? (b[q]! & 15) * 4 : 0;
  const proto = haveIp ? b[q + 9]! : -1;
  switch (code) {
    case ICMP_UNREACH_NET:
      return `net ${dst} unreachable`;
    case ICMP_UNREACH_HOST:
      return `host ${dst} unreachable`;
    case ICMP_UNREACH_PROTOCOL:
      return `${dst} protocol ${proto} unreachable`;
    case ICMP_UNREACH_PORT: {
      if (haveIp && hl >= 20 && ql >= hl + 4 && (proto === IP_PROTO_UDP || proto === IP_PROTO_TCP)) {
        const port = (b[q + hl + 2]! << 8) | b[q + hl + 3]!;
        return `${dst} ${proto === IP_PROTO_UDP ? 'udp' : 'tcp'} port ${port} unreachable`;
      }
      return `${dst} port unreachable`;
    }
    case ICMP_UNREACH_FRAG_NEEDED:
      return `${dst} unreachable - need to frag (mtu ${mtu})`;
    case ICMP_UNREACH_SOURCE_ROUTE:
      return `${dst} unreachable - source route failed`;
    case ICMP_UNREACH_NET_PROHIBITED:
    case ICMP_UNREACH_HOST_PROHIBITED:
    case ICMP_UNREACH_ADMIN_PROHIBITED:
      return `${dst} unreachable - admin prohibited (code ${code})`;
    default:
      return `${dst} unreachable - code ${code}`;
  }
}

/**
 * tcpdump's body for an ICMP message inside IP, e.g.
 * "192.168.10.10 > 192.168.20.20: ICMP echo request, id 1, seq 1, length 64" (length = ICMP
 * message bytes, as tcpdump prints it). Never throws.
 */
export function describeIcmpv4Body(
  buf: Uint8Array,
  off: number,
  len: number,
  src: string,
  dst: string,
  /** False for a first fragment: the checksum covers bytes not present, so it is not judged. */
  complete = true,
): string {
  const head = src === '' && dst === '' ? 'ICMP' : `${src} > ${dst}: ICMP`;
  if (len < ICMPV4_HEADER_LEN) return `${head} [truncated ${len}]`;
  const p = new Icmpv4Packet(buf, off, len);
  const t = p.type;
  const c = p.code;
  const q = off + ICMPV4_HEADER_LEN;
  const ql = len - ICMPV4_HEADER_LEN;
  let s: string;
  switch (t) {
    case ICMP_ECHO_REQUEST:
    case ICMP_ECHO_REPLY:
      s = `echo ${t === ICMP_ECHO_REQUEST ? 'request' : 'reply'}, id ${p.echoIdent}, seq ${p.echoSeq}`;
      break;
    case ICMP_DEST_UNREACHABLE:
      s = unreachText(c, buf, q, ql, p.nextHopMtu);
      break;
    case ICMP_SOURCE_QUENCH:
      s = 'source quench';
      break;
    case ICMP_REDIRECT: {
      const qd = ql >= IPV4_HEADER_LEN ? v4Text(readV4(buf, q + 16)) : '?';
      s = `redirect ${qd} to ${c === 0 ? 'net' : 'host'} ${v4Text(p.gateway)}`;
      break;
    }
    case ICMP_TIME_EXCEEDED:
      s = c === ICMP_EXC_FRAGTIME ? 'ip reassembly time exceeded' : c === ICMP_EXC_TTL ? 'time exceeded in-transit' : `time exceeded code ${c}`;
      break;
    case ICMP_PARAM_PROBLEM:
      s = `parameter problem - octet ${p.pointer}`;
      break;
    case ICMP_TIMESTAMP:
    case ICMP_TIMESTAMP_REPLY:
      s = `time stamp ${t === ICMP_TIMESTAMP ? 'query' : 'reply'} id ${p.echoIdent} seq ${p.echoSeq}`;
      break;
    case ICMP_ROUTER_ADVERT:
      s = 'router advertisement';
      break;
    case ICMP_ROUTER_SOLICIT:
      s = 'router solicitation';
      break;
    default:
      s = `type-#${t}`;
      if (c !== 0) s += ` code ${c}`;
  }
  const bad = !complete || p.verifyChecksum() ? '' : ` (wrong icmp cksum ${p.checksum.toString(16)})`;
  return `${head} ${s}, length ${len}${bad}`;
}

/**
 * RFC 1812 4.3.2.7 (and Linux icmp_send()): may an ICMP error be sent about the IPv4 datagram at
 * buf[off, off+len)? False for: not a readable IPv4 header; a non-first fragment; an ICMP error
 * message (or an ICMP type above 18, which Linux treats as one, or an ICMP header not present);
 * a destination that is multicast or 255.255.255.255; a source that does not name a single
 * host (0.0.0.0/8, 127/8, multicast, class E incl. 255.255.255.255). Subnet-directed
 * broadcasts are not known here: the caller checks its own interface prefixes.
 */
export function mayReplyWithIcmpError(buf: Uint8Array, off: number, len = buf.length - off): boolean {
  if (len < IPV4_HEADER_LEN || off < 0) return false;
  const vi = buf[off]!;
  if (vi >> 4 !== 4) return false;
  const hl = (vi & 15) * 4;
  if (hl < IPV4_HEADER_LEN) return false;
  if ((((buf[off + 6]! & 0x1f) << 8) | buf[off + 7]!) !== 0) return false;
  const src = readV4(buf, off + 12);
  const dst = readV4(buf, off + 16);
  if (isMulticastV4(dst) || dst === 0xffffffff) return false;
  if (isThisNetworkV4(src) || isLoopbackV4(src) || isMulticastV4(src) || isClassEV4(src)) return false;
  if (buf[off + 9] === IP_PROTO_ICMP) {
    if (hl >= len) return false; // ICMP type not present
    const t = buf[off + hl]!;
    if (t > ICMP_MAX_KNOWN_TYPE || isIcmpv4ErrorType(t)) return false;
  }
  return true;
}

/**
 * Build a complete ICMPv4 error datagram (IPv4 header + ICMP header + quote) at out[outOff]:
 * - IPv4: version 4, IHL 5, TOS = (offending TOS & 0x1e) | 0xc0 (internetwork control
 *   precedence, as Linux), DF clear, the given ident and ttl, protocol 1, src = srcAddr,
 *   dst = the offending packet's source; header checksum filled.
 * - ICMP: type/code; `param` is the next-hop MTU for type 3 code 4 (bytes 6-7), the pointer for
 *   type 12 (byte 4), the gateway for type 5 (bytes 4-7), ignored otherwise; checksum filled.
 * - Quote: the offending datagram from its IP header on, at most its total length, cut so the
 *   whole error is <= 576 bytes (RFC 1812 4.3.2.3) and fits in `out`.
 * Returns the bytes written (0 when out cannot hold a 28-byte header plus a 20-byte quote).
 * Does not decide whether an error may be sent: call mayReplyWithIcmpError() first.
 */
export function buildIcmpv4Error(
  out: Uint8Array,
  outOff: number,
  type: number,
  code: number,
  param: number,
  offending: Uint8Array,
  offOff: number,
  offLen: number,
  srcAddr: number,
  ttl = 64,
  ident = 0,
): number {
  const room = out.length - outOff;
  if (room < IPV4_HEADER_LEN + ICMPV4_HEADER_LEN + IPV4_HEADER_LEN || offLen < 0) return 0;
  let quote = Math.min(offLen, offending.length - offOff);
  if (quote >= 4 && offending[offOff]! >> 4 === 4) {
    const tl = (offending[offOff + 2]! << 8) | offending[offOff + 3]!;
    if (tl >= IPV4_HEADER_LEN && tl < quote) quote = tl; // drop trailing link padding
  }
  const maxQuote = Math.min(ICMPV4_ERROR_MAX_LEN, room) - IPV4_HEADER_LEN - ICMPV4_HEADER_LEN;
  if (quote > maxQuote) quote = maxQuote;
  if (quote < 0) quote = 0;
  const total = IPV4_HEADER_LEN + ICMPV4_HEADER_LEN + quote;
  const o = outOff;
  const offTos = offending.length - offOff > 1 ? offending[offOff + 1]! : 0;
  const offSrc = offending.length - offOff >= 16 ? readV4(offending, offOff + 12) : 0;
  out[o] = 0x45;
  out[o + 1] = (offTos & 0x1e) | 0xc0;
  out[o + 2] = total >>> 8;
  out[o + 3] = total;
  out[o + 4] = ident >>> 8;
  out[o + 5] = ident;
  out[o + 6] = 0;
  out[o + 7] = 0;
  out[o + 8] = ttl;
  out[o + 9] = IP_PROTO_ICMP;
  out[o + 10] = 0;
  out[o + 11] = 0;
  writeV4(out, o + 12, srcAddr >>> 0);
  writeV4(out, o + 16, offSrc);
  const ic = o + IPV4_HEADER_LEN;
  out[ic] = type;
  out[ic + 1] = code;
  out[ic + 2] = 0;
  out[ic + 3] = 0;
  let rest = 0;
  if (type === ICMP_DEST_UNREACHABLE && code === ICMP_UNREACH_FRAG_NEEDED) rest = param & 0xffff;
  else if (type === ICMP_PARAM_PROBLEM) rest = ((param & 0xff) << 24) >>> 0;
  else if (type === ICMP_REDIRECT) rest = param >>> 0;
  writeV4(out, ic + 4, rest);
  // TypedArray.set is specified overlap-safe (quoting from the same slab is fine).
  out.set(offending.subarray(offOff, offOff + quote), ic + ICMPV4_HEADER_LEN);
  const icsum = checksum(out, ic, ICMPV4_HEADER_LEN + quote);
  out[ic + 2] = icsum >>> 8;
  out[ic + 3] = icsum;
  const hcsum = checksum(out, o, IPV4_HEADER_LEN);
  out[o + 10] = hcsum >>> 8;
  out[o + 11] = hcsum;
  return total;
}

/**
 * Turn the checked ICMP echo request at buf[off] (a whole IPv4 datagram) into its echo reply in
 * place: swap source and destination, type 8 -> 0 with the RFC 1624 incremental ICMP checksum,
 * TTL set to `ttl`, IP options removed (the ICMP message moves up; RFC 1122 3.2.2.6 lets a host
 * drop options it does not reverse). Returns the reply's total length, or 0 (unchanged) when the
 * datagram is not an unfragmented echo request whose ICMP header is present.
 */
export function buildEchoReply(buf: Uint8Array, off: number, ttl = 64): number {
  if (off < 0 || buf.length - off < IPV4_HEADER_LEN + ICMPV4_HEADER_LEN) return 0;
  const vi = buf[off]!;
  const hl = (vi & 15) * 4;
  const tl = (buf[off + 2]! << 8) | buf[off + 3]!;
  if (vi >> 4 !== 4 || hl < IPV4_HEADER_LEN || tl < hl + ICMPV4_HEADER_LEN || tl > buf.length - off) return 0;
  if (buf[off + 9] !== IP_PROTO_ICMP) return 0;
  if (((buf[off + 6]! & 0x3f) | buf[off + 7]!) !== 0) return 0; // a fragment: reassemble first
  const ic = off + hl;
  if (buf[ic] !== ICMP_ECHO_REQUEST) return 0;
  const oldWord = (buf[ic]! << 8) | buf[ic + 1]!;
  buf[ic] = ICMP_ECHO_REPLY;
  const c = adjust16((buf[ic + 2]! << 8) | buf[ic + 3]!, oldWord, (ICMP_ECHO_REPLY << 8) | buf[ic + 1]!);
  buf[ic + 2] = c >>> 8;
  buf[ic + 3] = c;
  let total = tl;
  if (hl > IPV4_HEADER_LEN) {
    buf.copyWithin(off + IPV4_HEADER_LEN, ic, off + tl);
    total = tl - (hl - IPV4_HEADER_LEN);
    buf[off] = 0x45;
    buf[off + 2] = total >>> 8;
    buf[off + 3] = total;
  }
  for (let i = 0; i < 4; i++) {
    const t = buf[off + 12 + i]!;
    buf[off + 12 + i] = buf[off + 16 + i]!;
    buf[off + 16 + i] = t;
  }
  buf[off + 8] = ttl;
  buf[off + 10] = 0;
  buf[off + 11] = 0;
  const h = checksum(buf, off, IPV4_HEADER_LEN);
  buf[off + 10] = h >>> 8;
  buf[off + 11] = h;
  return total;
}
