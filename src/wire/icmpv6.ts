/**
 * ICMPv6 (RFC 4443) message view: type, code, checksum over the IPv6 pseudo-header, echo
 * identifier/sequence, Packet Too Big MTU, Parameter Problem pointer; parse/emit; describe()
 * like tcpdump. Building error messages (quoting the offending packet within the 1280-byte
 * limit) and echo replies is in icmpv6-error.ts.
 *
 *  0                   1                   2                   3
 * |     Type      |     Code      |          Checksum             |
 * |  Identifier / MTU / Pointer / unused (32 bits)                |
 * |  echo data, or as much of the invoking packet as fits         |
 */
import { WireView } from './view.ts';
import { DropReason } from '../base/drop-reason.ts';
import { formatAddress } from './address-text.ts';
import { fold, pseudoHeaderSumV6, sumWords } from './checksum.ts';
import {
  IP_PROTO_AH,
  IP_PROTO_DEST_OPTS,
  IP_PROTO_FRAGMENT,
  IP_PROTO_HOP_BY_HOP,
  IP_PROTO_ICMPV6,
  IP_PROTO_ROUTING,
  IP_PROTO_TCP,
  IP_PROTO_UDP,
} from './ip.ts';

/** DropReason.None read once (an imported enum can cost a getter call per use under tsx/CJS). */
const R_NONE: DropReason = DropReason.None;

export {
  PARAM_PROBLEM_HEADER_FIELD,
  PARAM_PROBLEM_NEXT_HEADER,
  PARAM_PROBLEM_OPTION,
  PARAM_PROBLEM_INCOMPLETE_CHAIN,
  PARAM_PROBLEM_EXT_HEADER_TOO_BIG,
  PARAM_PROBLEM_CHAIN_TOO_LONG,
  PARAM_PROBLEM_TOO_MANY_HEADERS,
  PARAM_PROBLEM_TOO_MANY_OPTIONS,
} from './ipv6-chain.ts';

// --- field offsets
export const ICMPV6_TYPE = 0;
export const ICMPV6_CODE = 1;
export const ICMPV6_CHECKSUM = 2;
/** 32-bit word: identifier+sequence (echo), MTU (packet too big), pointer (parameter problem). */
export const ICMPV6_REST = 4;
/** Header length of echo and error messages; the body (echo data / invoking packet) follows. */
export const ICMPV6_HEADER_LEN = 8;
/** The smallest ICMPv6 message: type, code, checksum. */
export const ICMPV6_MIN_LEN = 4;

// --- types
export const ICMPV6_DEST_UNREACHABLE = 1;
export const ICMPV6_PACKET_TOO_BIG = 2;
export const ICMPV6_TIME_EXCEEDED = 3;
export const ICMPV6_PARAM_PROBLEM = 4;
export const ICMPV6_ECHO_REQUEST = 128;
export const ICMPV6_ECHO_REPLY = 129;
export const ICMPV6_MLD_QUERY = 130;
export const ICMPV6_MLD_REPORT = 131;
export const ICMPV6_MLD_DONE = 132;
export const ICMPV6_ROUTER_SOLICIT = 133;
export const ICMPV6_ROUTER_ADVERT = 134;
export const ICMPV6_NEIGHBOR_SOLICIT = 135;
export const ICMPV6_NEIGHBOR_ADVERT = 136;
export const ICMPV6_REDIRECT = 137;
export const ICMPV6_MLD2_REPORT = 143;

// --- destination unreachable codes (RFC 4443 3.1)
export const UNREACH_NO_ROUTE = 0;
export const UNREACH_ADMIN_PROHIBITED = 1;
export const UNREACH_BEYOND_SCOPE = 2;
export const UNREACH_ADDRESS = 3;
export const UNREACH_PORT = 4;
export const UNREACH_POLICY_FAILED = 5;
export const UNREACH_REJECT_ROUTE = 6;

// --- time exceeded codes (RFC 4443 3.3)
export const TIME_EXCEEDED_HOP_LIMIT = 0;
export const TIME_EXCEEDED_REASSEMBLY = 1;

/** Error messages have types 0..127 (RFC 4443 2.1). */
export function isIcmpv6Error(type: number): boolean {
  return type < 128;
}

/** Plain representation of the fixed part of an ICMPv6 message. */
export interface Icmpv6Repr {
  type: number;
  code: number;
  /** Echo request/reply. */
  identifier?: number;
  sequence?: number;
  /** Packet Too Big. */
  mtu?: number;
  /** Parameter Problem: offset in the invoking packet. */
  pointer?: number;
  /** Bytes after the 8-byte header (echo data or the quoted packet). */
  bodyLength: number;
}

export class Icmpv6Packet extends WireView {
  /**
   * Length checks: Truncated below 4 bytes; BadIcmpLength for an echo or error message shorter
   * than its 8-byte header. Unknown types pass (RFC 4443 2.4(b): the caller decides).
   */
  check(): DropReason {
    if (this.len < ICMPV6_MIN_LEN || this.off + this.len > this.buf.length) return DropReason.Truncated;
    const t = this.buf[this.off]!;
    if ((t < 128 || t === ICMPV6_ECHO_REQUEST || t === ICMPV6_ECHO_REPLY) && this.len < ICMPV6_HEADER_LEN) {
      return DropReason.BadIcmpLength;
    }
    return R_NONE;
  }

  get msgType(): number {
    return this.buf[this.off]!;
  }
  set msgType(v: number) {
    this.buf[this.off] = v;
  }
  get code(): number {
    return this.buf[this.off + ICMPV6_CODE]!;
  }
  set code(v: number) {
    this.buf[this.off + ICMPV6_CODE] = v;
  }
  get checksum(): number {
    return (this.buf[this.off + 2]! << 8) | this.buf[this.off + 3]!;
  }
  set checksum(v: number) {
    this.buf[this.off + 2] = v >>> 8;
    this.buf[this.off + 3] = v & 0xff;
  }
  get isError(): boolean {
    return this.buf[this.off]! < 128;
  }
  /** The 32-bit word at bytes 4..7. */
  get rest(): number {
    const b = this.buf;
    const o = this.off + ICMPV6_REST;
    return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
  }
  set rest(v: number) {
    const b = this.buf;
    const o = this.off + ICMPV6_REST;
    b[o] = v >>> 24;
    b[o + 1] = (v >>> 16) & 0xff;
    b[o + 2] = (v >>> 8) & 0xff;
    b[o + 3] = v & 0xff;
  }
  get identifier(): number {
    return (this.buf[this.off + 4]! << 8) | this.buf[this.off + 5]!;
  }
  set identifier(v: number) {
    this.buf[this.off + 4] = v >>> 8;
    this.buf[this.off + 5] = v & 0xff;
  }
  get sequence(): number {
    return (this.buf[this.off + 6]! << 8) | this.buf[this.off + 7]!;
  }
  set sequence(v: number) {
    this.buf[this.off + 6] = v >>> 8;
    this.buf[this.off + 7] = v & 0xff;
  }
  /** Packet Too Big MTU. */
  get mtu(): number {
    return this.rest;
  }
  set mtu(v: number) {
    this.rest = v;
  }
  /** Parameter Problem pointer. */
  get pointer(): number {
    return this.rest;
  }
  set pointer(v: number) {
    this.rest = v;
  }
  /** Offset of the body: echo data, or the invoking packet of an error. */
  get bodyOffset(): number {
    return this.off + ICMPV6_HEADER_LEN;
  }
  get bodyLength(): number {
    return this.len > ICMPV6_HEADER_LEN ? this.len - ICMPV6_HEADER_LEN : 0;
  }

  /** Unfolded pseudo-header + message sum; addresses at srcOff/dstOff in `addrBuf`. */
  private sum(srcOff: number, dstOff: number, addrBuf: Uint8Array): number {
    return sumWords(this.buf, this.off, this.len, pseudoHeaderSumV6(addrBuf, srcOff, dstOff, IP_PROTO_ICMPV6, this.len));
  }

  /** True when the checksum is right for source/destination addresses at srcOff/dstOff. */
  verifyChecksum(srcOff: number, dstOff: number, addrBuf: Uint8Array = this.buf): boolean {
    return fold(this.sum(srcOff, dstOff, addrBuf)) === 0xffff;
  }

  /** Compute and store the checksum (RFC 4443 2.3: IPv6 pseudo-header, next header 58). */
  fillChecksum(srcOff: number, dstOff: number, addrBuf: Uint8Array = this.buf): void {
    this.buf[this.off + 2] = 0;
    this.buf[this.off + 3] = 0;
    this.checksum = ~fold(this.sum(srcOff, dstOff, addrBuf)) & 0xffff;
  }

  parse(): Icmpv6Repr {
    const t = this.msgType;
    const r: Icmpv6Repr = { type: t, code: this.code, bodyLength: this.bodyLength };
    if (this.len >= ICMPV6_HEADER_LEN) {
      if (t === ICMPV6_ECHO_REQUEST || t === ICMPV6_ECHO_REPLY) {
        r.identifier = this.identifier;
        r.sequence = this.sequence;
      } else if (t === ICMPV6_PACKET_TOO_BIG) r.mtu = this.mtu;
      else if (t === ICMPV6_PARAM_PROBLEM) r.pointer = this.pointer;
    }
    return r;
  }

  /** Write type, code, the 32-bit word and a zero checksum (fill it after the body is in place). */
  emit(repr: Icmpv6Repr): void {
    this.msgType = repr.type;
    this.code = repr.code;
    this.checksum = 0;
    let rest = 0;
    if (repr.type === ICMPV6_ECHO_REQUEST || repr.type === ICMPV6_ECHO_REPLY) {
      rest = (((repr.identifier ?? 0) & 0xffff) * 65536 + ((repr.sequence ?? 0) & 0xffff)) >>> 0;
    } else if (repr.type === ICMPV6_PACKET_TOO_BIG) rest = repr.mtu ?? 0;
    else if (repr.type === ICMPV6_PARAM_PROBLEM) rest = repr.pointer ?? 0;
    this.rest = rest;
  }

  /** tcpdump's body: "ICMP6, echo request, id 1, seq 1, length 64". Never throws. */
  describe(): string {
    return describeIcmpv6Body(this.buf, this.off, this.len);
  }
}

const TYPE_NAMES: Record<number, string> = {
  1: 'destination unreachable',
  2: 'packet too big',
  3: 'time exceeded in-transit',
  4: 'parameter problem',
  128: 'echo request',
  129: 'echo reply',
  130: 'multicast listener query',
  131: 'multicast listener report',
  132: 'multicast listener done',
  133: 'router solicitation',
  134: 'router advertisement',
  135: 'neighbor solicitation',
  136: 'neighbor advertisement',
  137: 'redirect',
  143: 'multicast listener report v2',
};

const UNREACH_NAMES = [
  'unreachable route',
  'unreachable prohibited',
  'beyond scope',
  'unreachable address',
  'unreachable port',
  'failed ingress/egress policy',
  'reject route',
];

/** Format 16 bytes at buf[off] if they are all there, else "?". */
function addr(buf: Uint8Array, off: number, end: number): string {
  return off + 16 <= end ? formatAddress(buf, off, 6) : '?';
}

/**
 * Find the upper layer of a quoted (possibly truncated) IPv6 packet at buf[off, end): returns
 * the offset and stores the protocol in `quotedProto[0]`, or -1 (describe only).
 */
function quotedUpper(buf: Uint8Array, off: number, end: number, proto: Int32Array): number {
  if (off + 40 > end) return -1;
  let nh = buf[off + 6]!;
  let p = off + 40;
  for (let n = 0; n < 16 && p < end; n++) {
    if (nh === IP_PROTO_HOP_BY_HOP || nh === IP_PROTO_DEST_OPTS || nh === IP_PROTO_ROUTING) {
      if (p + 2 > end) return -1;
      const l = (buf[p + 1]! + 1) << 3;
      nh = buf[p]!;
      p += l;
    } else if (nh === IP_PROTO_FRAGMENT) {
      if (p + 4 > end) return -1;
      if ((((buf[p + 2]! << 8) | buf[p + 3]!) & 0xfff8) !== 0) return -1;
      nh = buf[p]!;
      p += 8;
    } else if (nh === IP_PROTO_AH) {
      if (p + 2 > end) return -1;
      const l = (buf[p + 1]! + 2) << 2;
      nh = buf[p]!;
      p += l;
    } else {
      proto[0] = nh;
      return p;
    }
  }
  return -1;
}

const quotedProto = new Int32Array(1);

/**
 * tcpdump-style one-liner for the ICMPv6 message at buf[off, off+len), e.g.
 * "ICMP6, echo request, id 42600, seq 1, length 64",
 * "ICMP6, packet too big, mtu 1280, length 1240",
 * "ICMP6, destination unreachable, unreachable port, fd00:10::1 udp port 9, length 73".
 * Never throws, whatever the bytes.
 */
export function describeIcmpv6Body(buf: Uint8Array, off: number, len: number): string {
  const end = Math.min(off + len, buf.length);
  if (len < ICMPV6_MIN_LEN || off + ICMPV6_MIN_LEN > end) return `ICMP6, [|icmp6] length ${len}`;
  const t = buf[off]!;
  const code = buf[off + 1]!;
  let s = `ICMP6, ${TYPE_NAMES[t] ?? `unknown icmp6 type (${t})`}`;
  const has8 = off + 8 <= end;
  const q = off + 8; // quoted packet
  switch (t) {
    case ICMPV6_ECHO_REQUEST:
    case ICMPV6_ECHO_REPLY:
      if (!has8) return `${s} [|icmp6]`;
      s += `, id ${(buf[off + 4]! << 8) | buf[off + 5]!}, seq ${(buf[off + 6]! << 8) | buf[off + 7]!}`;
      break;
    case ICMPV6_PACKET_TOO_BIG:
      if (!has8) return `${s} [|icmp6]`;
      s += `, mtu ${(((buf[off + 4]! << 24) | (buf[off + 5]! << 16) | (buf[off + 6]! << 8) | buf[off + 7]!) >>> 0)}`;
      break;
    case ICMPV6_TIME_EXCEEDED:
      if (code === TIME_EXCEEDED_HOP_LIMIT) s += ` for ${addr(buf, q + 24, end)}`;
      else if (code === TIME_EXCEEDED_REASSEMBLY) s += ' (reassembly)';
      else s += `, unknown code (${code})`;
      break;
    case ICMPV6_DEST_UNREACHABLE: {
      s += `, ${UNREACH_NAMES[code] ?? `unknown unreach code (${code})`}`;
      if (code === UNREACH_PORT) {
        const u = quotedUpper(buf, q, end, quotedProto);
        if (u >= 0 && u + 4 <= end) {
          const dport = (buf[u + 2]! << 8) | buf[u + 3]!;
          const p = quotedProto[0]!;
          const dst = addr(buf, q + 24, end);
          if (p === IP_PROTO_UDP) s += `, ${dst} udp port ${dport}`;
          else if (p === IP_PROTO_TCP) s += `, ${dst} tcp port ${dport}`;
          else s += `, ${dst} protocol ${p} port ${dport} unreachable`;
        }
      } else if (code === UNREACH_BEYOND_SCOPE) {
        s += ` ${addr(buf, q + 24, end)}, source address ${addr(buf, q + 8, end)}`;
      } else if (code <= UNREACH_ADDRESS) {
        s += ` ${addr(buf, q + 24, end)}`;
      }
      break;
    }
    case ICMPV6_PARAM_PROBLEM: {
      if (!has8) return `${s} [|icmp6]`;
      const ptr = ((buf[off + 4]! << 24) | (buf[off + 5]! << 16) | (buf[off + 6]! << 8) | buf[off + 7]!) >>> 0;
      if (code === 0) s += `, erroneous - octet ${ptr}`;
      else if (code === 1) s += `, next header - octet ${ptr}`;
      else if (code === 2) s += `, option - octet ${ptr}`;
      else if (code === 3) s += `, incomplete header chain - octet ${ptr}`;
      else s += `, code-#${code}`;
      break;
    }
    case ICMPV6_MLD2_REPORT:
      if (has8) s += `, ${(buf[off + 6]! << 8) | buf[off + 7]!} group record(s)`;
      break;
    case ICMPV6_NEIGHBOR_SOLICIT:
      s += `, who has ${addr(buf, off + 8, end)}`;
      break;
    case ICMPV6_NEIGHBOR_ADVERT:
      s += `, tgt is ${addr(buf, off + 8, end)}`;
      break;
    default:
      break;
  }
  return `${s}, length ${len}`;
}

