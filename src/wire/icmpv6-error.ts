/**
 * Building ICMPv6 messages in reply to a packet (RFC 4443): error messages that quote the
 * offending packet, the rules on when an error must not be sent, and echo replies in place.
 *
 * - Size (RFC 4443 2.4(c)): the error quotes as much of the invoking packet as fits without
 *   the whole error packet (IPv6 header + ICMPv6) exceeding the IPv6 minimum MTU, 1280 bytes.
 * - Never in reply to (RFC 4443 2.4(e)): an ICMPv6 error message or a Redirect; a packet whose
 *   source is unspecified or multicast; a packet sent to a multicast destination, except Packet
 *   Too Big and Parameter Problem code 2 for an option whose action bits are 10.
 * Rate limiting (2.4(f)) is the endpoint's job.
 *
 * Nothing here allocates per call; the one Ipv6Chain used to look into offending packets is
 * module-level scratch (the dataplane is single-threaded per isolate).
 */
import { DropReason } from '../base/drop-reason.ts';
import { adjust16, adjustSums, fold, pseudoHeaderSumV6, sumWords } from './checksum.ts';
import {
  ICMPV6_ECHO_REPLY,
  ICMPV6_ECHO_REQUEST,
  ICMPV6_HEADER_LEN,
  ICMPV6_PACKET_TOO_BIG,
  ICMPV6_PARAM_PROBLEM,
  ICMPV6_REDIRECT,
} from './icmpv6.ts';
import { Ipv6Chain, PARAM_PROBLEM_OPTION, walkIpv6Chain } from './ipv6-chain.ts';
import { OPTION_ACTION_DISCARD_ICMP } from './ipv6-ext.ts';
import { IPV6_DST, IPV6_HEADER_LEN, IPV6_SRC } from './ipv6.ts';
import { IP_PROTO_ICMPV6, IPV6_MIN_MTU, ipv6IsMulticast, ipv6IsUnspecified } from './ip.ts';

/** Largest quote: 1280 - 40 (IPv6) - 8 (ICMPv6 header) = 1232 bytes. */
export const ICMPV6_ERROR_MAX_QUOTE = IPV6_MIN_MTU - IPV6_HEADER_LEN - ICMPV6_HEADER_LEN;
/** Smallest error packet: headers only. */
export const ICMPV6_ERROR_MIN_LEN = IPV6_HEADER_LEN + ICMPV6_HEADER_LEN;
export const DEFAULT_ICMPV6_HOP_LIMIT = 64;

let scratch: Ipv6Chain | null = null;
function scratchChain(): Ipv6Chain {
  if (scratch === null) {
    scratch = new Ipv6Chain();
    scratch.maxHeaders = 64;
    scratch.maxBytes = 65535;
    scratch.acceptUnknownNextHeader = true;
    scratch.acceptRoutingType0 = true;
  }
  return scratch;
}

/**
 * May an ICMPv6 error (type, code) be sent about the IPv6 packet at buf[off, off+len)?
 * `param` is the Parameter Problem pointer (offset in that packet) when known: for code 2 it
 * lets a multicast-destined packet be answered only when the option's action bits are 10.
 * False for: packets too short to have addresses or not version 6, unspecified or multicast
 * sources, multicast destinations (except Packet Too Big / Parameter Problem code 2), and
 * packets that are ICMPv6 error messages or Redirects (including ones whose ICMPv6 type byte is
 * missing, as Linux does). Never throws.
 */
export function mayReplyWithIcmpv6Error(
  buf: Uint8Array,
  off: number,
  len: number,
  type: number,
  code: number,
  param = -1,
): boolean {
  if (off < 0 || len < IPV6_HEADER_LEN || off + len > buf.length) return false;
  if (buf[off]! >>> 4 !== 6) return false;
  const src = off + IPV6_SRC;
  if (ipv6IsUnspecified(buf, src) || ipv6IsMulticast(buf, src)) return false;
  if (ipv6IsMulticast(buf, off + IPV6_DST)) {
    if (type === ICMPV6_PACKET_TOO_BIG) {
      // allowed (RFC 4443 2.4(e.3))
    } else if (type === ICMPV6_PARAM_PROBLEM && code === PARAM_PROBLEM_OPTION) {
      if (param >= 0 && param < len && buf[off + param]! >>> 6 !== OPTION_ACTION_DISCARD_ICMP) return false;
    } else return false;
  }
  // Is the offending packet itself an ICMPv6 error or redirect?
  const c = scratchChain();
  walkIpv6Chain(buf, off, len, c);
  let proto = c.upperProtocol;
  let u = c.upperOffset;
  if (proto < 0 && buf[off + 6] === IP_PROTO_ICMPV6) {
    // The walk stopped early (say, a payload length beyond `len`): look right behind the header.
    proto = IP_PROTO_ICMPV6;
    u = off + IPV6_HEADER_LEN;
  }
  if (proto === IP_PROTO_ICMPV6 && !(c.isFragment && c.fragmentOffset !== 0)) {
    if (u >= off + len || u >= c.end) return false;
    const t = buf[u]!;
    if (t < 128 || t === ICMPV6_REDIRECT) return false;
  }
  return true;
}

const addrScratch = new Uint8Array(16);

/**
 * Build a complete ICMPv6 error packet (IPv6 header + ICMPv6 header + quote, checksum filled)
 * at out[outOff...] about the offending IPv6 packet offending[offOff, offOff+offLen), sent from
 * srcAddr[srcAddrOff, +16) to the offending packet's source. `param` is the MTU (Packet Too Big),
 * the pointer (Parameter Problem) or ignored (0 on the wire) for the other types.
 *
 * The quote is as much of the offending packet as fits in 1280 bytes total (and in `out`); a
 * quote is cut at the offending packet's own end (40 + payload length) when that is shorter than
 * offLen. Returns the bytes written, or 0 when RFC 4443 2.4(e) forbids the error (see
 * mayReplyWithIcmpv6Error), the offending packet is not IPv6, or `out` has no room for the
 * 48 header bytes. `out` may be the offending packet's own buffer (regions may overlap).
 */
export function buildIcmpv6Error(
  out: Uint8Array,
  outOff: number,
  type: number,
  code: number,
  param: number,
  offending: Uint8Array,
  offOff: number,
  offLen: number,
  srcAddr: Uint8Array,
  srcAddrOff: number,
  hopLimit = DEFAULT_ICMPV6_HOP_LIMIT,
): number {
  if (!mayReplyWithIcmpv6Error(offending, offOff, offLen, type, code, param)) return 0;
  const room = out.length - outOff;
  if (outOff < 0 || room < ICMPV6_ERROR_MIN_LEN) return 0;
  const total = IPV6_HEADER_LEN + ((offending[offOff + 4]! << 8) | offending[offOff + 5]!);
  let q = offLen < total ? offLen : total;
  if (q > ICMPV6_ERROR_MAX_QUOTE) q = ICMPV6_ERROR_MAX_QUOTE;
  if (q > room - ICMPV6_ERROR_MIN_LEN) q = room - ICMPV6_ERROR_MIN_LEN;

  // Read what we need from the offending packet before anything in `out` is written.
  const so = offOff + IPV6_SRC;
  for (let i = 0; i < 16; i++) addrScratch[i] = offending[so + i]!;
  const qo = outOff + ICMPV6_ERROR_MIN_LEN;
  if (out === offending) out.copyWithin(qo, offOff, offOff + q);
  else for (let i = 0; i < q; i++) out[qo + i] = offending[offOff + i]!;

  const icmpLen = ICMPV6_HEADER_LEN + q;
  const o = outOff;
  out[o] = 0x60;
  out[o + 1] = 0;
  out[o + 2] = 0;
  out[o + 3] = 0;
  out[o + 4] = icmpLen >>> 8;
  out[o + 5] = icmpLen & 0xff;
  out[o + 6] = IP_PROTO_ICMPV6;
  out[o + 7] = hopLimit;
  for (let i = 0; i < 16; i++) out[o + IPV6_SRC + i] = srcAddr[srcAddrOff + i]!;
  for (let i = 0; i < 16; i++) out[o + IPV6_DST + i] = addrScratch[i]!;
  const m = o + IPV6_HEADER_LEN;
  out[m] = type;
  out[m + 1] = code;
  out[m + 2] = 0;
  out[m + 3] = 0;
  const p = type === ICMPV6_PACKET_TOO_BIG || type === ICMPV6_PARAM_PROBLEM ? param >>> 0 : 0;
  out[m + 4] = p >>> 24;
  out[m + 5] = (p >>> 16) & 0xff;
  out[m + 6] = (p >>> 8) & 0xff;
  out[m + 7] = p & 0xff;
  const sum = sumWords(out, m, icmpLen, pseudoHeaderSumV6(out, o + IPV6_SRC, o + IPV6_DST, IP_PROTO_ICMPV6, icmpLen));
  const cs = ~fold(sum) & 0xffff;
  out[m + 2] = cs >>> 8;
  out[m + 3] = cs & 0xff;
  return IPV6_HEADER_LEN + icmpLen;
}

/**
 * Turn the echo request at buf[off, off+len) into its echo reply in place: addresses swapped,
 * type 129, checksum adjusted incrementally (RFC 1624), hop limit set, flow label cleared,
 * traffic class kept (as Linux does). Extension headers in the request are dropped from the
 * reply (the ICMPv6 message is moved up behind the fixed header). When the request went to a
 * multicast address, `srcAddr` (our unicast address) becomes the reply's source and is required.
 * The reply's length is 40 + its payload length. Returns None, or why no reply is possible:
 * the chain walk's reason, BadIcmpType (not an unfragmented echo request), BadIcmpLength,
 * BadIcmpChecksum, BadSourceAddress (request from :: or multicast, or to multicast without
 * srcAddr).
 */
export function echoReplyInPlace(
  buf: Uint8Array,
  off: number,
  len: number,
  hopLimit = DEFAULT_ICMPV6_HOP_LIMIT,
  srcAddr: Uint8Array | null = null,
  srcAddrOff = 0,
): DropReason {
  const c = scratchChain();
  const r = walkIpv6Chain(buf, off, len, c);
  if (r !== DropReason.None) return r;
  if (c.upperProtocol !== IP_PROTO_ICMPV6 || (c.isFragment && !c.isAtomicFragment)) return DropReason.BadIcmpType;
  let u = c.upperOffset;
  const icmpLen = c.end - u;
  if (icmpLen < ICMPV6_HEADER_LEN) return DropReason.BadIcmpLength;
  if (buf[u] !== ICMPV6_ECHO_REQUEST) return DropReason.BadIcmpType;
  const sa = off + IPV6_SRC;
  const da = off + IPV6_DST;
  if (ipv6IsUnspecified(buf, sa) || ipv6IsMulticast(buf, sa)) return DropReason.BadSourceAddress;
  const toMulticast = ipv6IsMulticast(buf, da);
  if (toMulticast && srcAddr === null) return DropReason.BadSourceAddress;
  const pseudo = pseudoHeaderSumV6(buf, sa, da, IP_PROTO_ICMPV6, icmpLen);
  if (fold(sumWords(buf, u, icmpLen, pseudo)) !== 0xffff) return DropReason.BadIcmpChecksum;

  if (u !== off + IPV6_HEADER_LEN) {
    buf.copyWithin(off + IPV6_HEADER_LEN, u, u + icmpLen);
    u = off + IPV6_HEADER_LEN;
    buf[off + 4] = icmpLen >>> 8;
    buf[off + 5] = icmpLen & 0xff;
    buf[off + 6] = IP_PROTO_ICMPV6;
  }
  // Swapping the addresses leaves the pseudo-header sum unchanged.
  for (let i = 0; i < 16; i++) {
    const t = buf[sa + i]!;
    buf[sa + i] = buf[da + i]!;
    buf[da + i] = t;
  }
  let cs = (buf[u + 2]! << 8) | buf[u + 3]!;
  if (toMulticast && srcAddr !== null) {
    const oldSum = sumWords(buf, sa, 16);
    for (let i = 0; i < 16; i++) buf[sa + i] = srcAddr[srcAddrOff + i]!;
    cs = adjustSums(cs, oldSum, sumWords(buf, sa, 16));
  }
  const code = buf[u + 1]!;
  buf[u] = ICMPV6_ECHO_REPLY;
  cs = adjust16(cs, (ICMPV6_ECHO_REQUEST << 8) | code, (ICMPV6_ECHO_REPLY << 8) | code);
  buf[u + 2] = cs >>> 8;
  buf[u + 3] = cs & 0xff;
  buf[off + 1]! &= 0xf0;
  buf[off + 2] = 0;
  buf[off + 3] = 0;
  buf[off + 7] = hopLimit;
  return DropReason.None;
}
