/**
 * IPv6 header chain walker: from the fixed header through the extension headers to the
 * upper-layer header (RFC 8200 section 4), with limits, without allocating.
 *
 * The caller owns an Ipv6Chain (one per pipeline stage), sets its limits once, and passes it to
 * walkIpv6Chain() for every packet; the walk fills in the result fields and returns a DropReason.
 * No exception ever leaves the walk: every malformed chain is a reason, with the ICMPv6
 * Parameter Problem code and pointer that RFC 8200 / RFC 7112 / RFC 8883 would report (or -1 for
 * a silent drop, the way Linux drops truncated headers).
 *
 * Rules enforced:
 * - Hop-by-Hop only directly after the fixed header (RFC 8200 4.1): BadExtHeaderOrder, code 1.
 * - At most `maxHeaders` extension headers (ExtHeaderChainTooLong, RFC 8883 code 8 "too many
 *   extension headers") and at most `maxBytes` of them (ExtHeaderTooManyBytes, RFC 8883 code 7
 *   "extension header chain too long"); the pointer is the first header over the limit.
 * - Every header lies inside the packet (payload length) else BadExtHeaderLength (silent), or,
 *   for a first fragment, FragmentIncompleteChain with code 3 (RFC 7112).
 * - Routing type 0 (RFC 5095) -> BadRoutingHeader, code 0 pointing at the Routing Type.
 * - AH length (RFC 4302): (len + 2) * 4, at least 12 and a multiple of 8 for IPv6.
 * - Fragment header: M=1 with a payload not a multiple of 8 -> FragmentBadLength (code 0, pointer
 *   to the Payload Length); offset + data > 65535 -> FragmentTooBig (code 0, pointer to the
 *   Fragment Offset), RFC 8200 4.5.
 * - ESP (50), No Next Header (59), Mobility (135) and HIP (139) end the chain: ESP is opaque,
 *   59 has nothing after it, Mobility/HIP carry 59 themselves and are messages in their own right.
 * - Next Header values IANA has not assigned (146..252, 255) -> UnknownNextHeader, code 1,
 *   unless `acceptUnknownNextHeader` is set (a pure forwarder may choose to be transparent).
 * Headers may otherwise repeat and appear in any order (RFC 8200 4.1 "should", not "must").
 */
import { DropReason } from '../base/drop-reason.ts';
import { FRAG_HEADER_LEN as EXT_FRAG_HEADER_LEN, hasHomeAddressOption, ROUTING_TYPE_0 as EXT_ROUTING_TYPE_0 } from './ipv6-ext.ts';
import {
  IP_PROTO_AH,
  IP_PROTO_DEST_OPTS,
  IP_PROTO_ESP,
  IP_PROTO_FRAGMENT,
  IP_PROTO_HIP,
  IP_PROTO_HOP_BY_HOP,
  IP_PROTO_ICMPV6,
  IP_PROTO_MOBILITY,
  IP_PROTO_NONE,
  IP_PROTO_ROUTING,
  IP_PROTO_SHIM6,
  IP_PROTO_TCP,
  IP_PROTO_UDP,
  IP_PROTO_EXPERIMENT1,
  IP_PROTO_EXPERIMENT2,
  IPV6_MIN_MTU,
} from './ip.ts';
import { IPV6_DST, IPV6_HEADER_LEN, IPV6_NEXT_HEADER, IPV6_PAYLOAD_LENGTH } from './ipv6.ts';

// Wire constants copied into module-local consts once, at load: when this module is loaded
// through tsx from CommonJS code every imported binding becomes a getter call (measured: 3-4x
// slower walk), and even as ESM live bindings local consts measured ~15% faster. The values
// themselves come from ipv6.ts, ipv6-ext.ts and ip.ts.
const HDR_LEN = IPV6_HEADER_LEN;
const OFF_PAYLOAD_LENGTH = IPV6_PAYLOAD_LENGTH;
const OFF_NEXT_HEADER = IPV6_NEXT_HEADER;
const OFF_DST = IPV6_DST;
const NH_HOP_BY_HOP = IP_PROTO_HOP_BY_HOP;
const NH_TCP = IP_PROTO_TCP;
const NH_UDP = IP_PROTO_UDP;
const NH_ROUTING = IP_PROTO_ROUTING;
const NH_FRAGMENT = IP_PROTO_FRAGMENT;
const NH_ESP = IP_PROTO_ESP;
const NH_AH = IP_PROTO_AH;
const NH_ICMPV6 = IP_PROTO_ICMPV6;
const NH_NONE = IP_PROTO_NONE;
const NH_DEST_OPTS = IP_PROTO_DEST_OPTS;
const FRAG_HEADER_LEN = EXT_FRAG_HEADER_LEN;
const ROUTING_TYPE_0 = EXT_ROUTING_TYPE_0;
// The hot-path DropReason, read once (an imported enum is a getter too).
const R_NONE: DropReason = DropReason.None;

/** ICMPv6 Parameter Problem codes (RFC 4443, RFC 7112, RFC 8883). */
export const PARAM_PROBLEM_HEADER_FIELD = 0;
export const PARAM_PROBLEM_NEXT_HEADER = 1;
export const PARAM_PROBLEM_OPTION = 2;
export const PARAM_PROBLEM_INCOMPLETE_CHAIN = 3;
export const PARAM_PROBLEM_EXT_HEADER_TOO_BIG = 6;
export const PARAM_PROBLEM_CHAIN_TOO_LONG = 7;
export const PARAM_PROBLEM_TOO_MANY_HEADERS = 8;
export const PARAM_PROBLEM_TOO_MANY_OPTIONS = 9;

export const DEFAULT_MAX_EXT_HEADERS = 8;
/** Extension-header bytes allowed: the fixed header plus the chain fit in the IPv6 minimum MTU. */
export const DEFAULT_MAX_EXT_BYTES = IPV6_MIN_MTU - HDR_LEN;

// What each Next Header value is to the walker.
const K_UPPER = 0;
const K_OPTS = 1; // Hop-by-Hop / Destination Options / generic (len+1)*8 header
const K_ROUTING = 2;
const K_FRAGMENT = 3;
const K_AH = 4;
const K_END = 5; // ESP, No Next Header, Mobility, HIP: the chain stops here
const K_UNASSIGNED = 6;

const KIND = new Uint8Array(256);
for (let i = 146; i <= 252; i++) KIND[i] = K_UNASSIGNED;
KIND[255] = K_UNASSIGNED;
KIND[NH_HOP_BY_HOP] = K_OPTS;
KIND[NH_DEST_OPTS] = K_OPTS;
KIND[IP_PROTO_SHIM6] = K_OPTS; // Shim6 (RFC 5533): generic length
KIND[IP_PROTO_EXPERIMENT1] = K_OPTS; // experimentation (RFC 4727): generic length per RFC 7045
KIND[IP_PROTO_EXPERIMENT2] = K_OPTS;
KIND[NH_ROUTING] = K_ROUTING;
KIND[NH_FRAGMENT] = K_FRAGMENT;
KIND[NH_AH] = K_AH;
KIND[NH_ESP] = K_END;
KIND[NH_NONE] = K_END;
KIND[IP_PROTO_MOBILITY] = K_END; // Mobility (RFC 6275): its Payload Proto is always 59
KIND[IP_PROTO_HIP] = K_END; // HIP (RFC 7401): same

/** Smallest upper-layer header a first fragment must carry (as Linux's ipv6_frag_thdr_truncated). */
function upperMinLength(proto: number): number {
  switch (proto) {
    case NH_TCP: return 20;
    case NH_UDP: return 8;
    case NH_ICMPV6: return 8;
    case NH_NONE: return 0;
    case NH_ESP: return 8;
    default: return 1;
  }
}

/**
 * Result of walking one packet's header chain. All offsets are absolute offsets into the buffer
 * that was walked; -1 means "not present". Reused across packets: walkIpv6Chain() resets every
 * result field, and never touches the limits.
 */
export class Ipv6Chain {
  // --- limits (set once by the owner)
  /** Most extension headers walked (RFC 8883 "too many extension headers"). */
  maxHeaders = DEFAULT_MAX_EXT_HEADERS;
  /** Most bytes of extension headers walked (RFC 8883 "extension header chain too long"). */
  maxBytes = DEFAULT_MAX_EXT_BYTES;
  /** Accept Next Header values IANA has not assigned as upper layers instead of dropping. */
  acceptUnknownNextHeader = false;
  /** Accept routing type 0 with segments left > 0 (never: RFC 5095); with 0 segments it is ignored. */
  acceptRoutingType0 = false;
  /**
   * Where the unfragmentable part ends. false (default), RFC 8200 4.5: fixed header, Hop-by-Hop,
   * and everything up to and including a Routing header (plus a Destination Options header with
   * a Home Address option, RFC 6275 6.3). true, Linux (ip6_find_1stfragopt): also Destination
   * Options headers seen before any Routing header, stopping at the first other header; use it
   * to write fragments laid out byte for byte like the kernel's.
   */
  linuxFragmentLayout = false;

  // --- result
  reason: DropReason = R_NONE;
  /** ICMPv6 Parameter Problem code for `reason`, or -1 when the packet is to be dropped silently. */
  icmpCode = -1;
  /** Parameter Problem pointer: offset from the start of the IPv6 header, or -1. */
  icmpPointer = -1;
  /** Offset of the IPv6 fixed header that was walked. */
  start = 0;
  /** End of the packet according to its Payload Length (start + 40 + payload length). */
  end = 0;
  /** Upper-layer protocol: 6, 17, 58, ... or 50 (ESP, opaque), 59 (none), 135, 139; -1 before a walk. */
  upperProtocol = -1;
  /** Offset of the upper-layer header (for a non-first fragment: of the fragment data). */
  upperOffset = -1;
  /** Offset of the Next Header byte that names the upper layer (fixed header or last ext header). */
  upperNextHeaderOffset = -1;
  /**
   * Offset of the 16-byte final destination, the address the upper-layer pseudo-header uses
   * (RFC 8200 8.1): the Destination Address, or with a Routing header with segments left the
   * last address of its route (type 0 last entry, type 2 home address, type 4 SRH segment[0]).
   */
  finalDestinationOffset = -1;
  /** Extension headers walked. */
  headerCount = 0;
  /**
   * End of the unfragmentable part (RFC 8200 4.5): where a Fragment header is to be inserted,
   * or, when the packet already is a fragment, the offset of its (first) Fragment header.
   */
  unfragmentableEnd = -1;
  /** The Next Header byte to rewrite to 44 when inserting a Fragment header there. */
  unfragmentableNextHeaderOffset = -1;
  hopByHopOffset = -1;
  /** First Destination Options header (before a Routing header, if any). */
  destOptsOffset = -1;
  routingOffset = -1;
  routingType = -1;
  segmentsLeft = -1;
  ahOffset = -1;
  /** First Fragment header, -1 when the packet is not a fragment. */
  fragmentHeaderOffset = -1;
  /** That header's Fragment Offset in bytes. */
  fragmentOffset = 0;
  moreFragments = false;
  fragmentId = 0;
  /** Next Header of the Fragment header (the first fragmentable header or upper layer). */
  fragmentNextHeader = -1;
  /**
   * True when the whole chain and at least the fixed part of the upper-layer header (TCP 20,
   * UDP 8, ICMPv6 8, other 1, none 0) lie inside this packet. False for non-first fragments
   * (their chain continues in the first fragment). For a first fragment this is RFC 7112.
   */
  headerChainComplete = false;

  /** The packet is a fragment (a Fragment header was found). */
  get isFragment(): boolean {
    return this.fragmentHeaderOffset >= 0;
  }
  /** First fragment (offset 0, M=1): the one that must carry the whole chain (RFC 7112). */
  get isFirstFragment(): boolean {
    return this.fragmentHeaderOffset >= 0 && this.fragmentOffset === 0 && this.moreFragments;
  }
  /** RFC 6946 atomic fragment: offset 0 and M=0, to be processed on its own. */
  get isAtomicFragment(): boolean {
    return this.fragmentHeaderOffset >= 0 && this.fragmentOffset === 0 && !this.moreFragments;
  }
  /** Length of the unfragmentable part (fixed header included). */
  get unfragmentableLength(): number {
    return this.unfragmentableEnd - this.start;
  }
  /** Bytes from the upper-layer header to the end of the packet. */
  get upperLength(): number {
    return this.end - this.upperOffset;
  }
}

function fail(c: Ipv6Chain, reason: DropReason, code: number, pointerAbs: number): DropReason {
  c.reason = reason;
  c.icmpCode = code;
  c.icmpPointer = pointerAbs < 0 ? -1 : pointerAbs - c.start;
  return reason;
}

/**
 * Walk the header chain of the IPv6 packet at buf[off, off+len). Returns the DropReason (also in
 * `c.reason`); on None, `c.upperProtocol`/`c.upperOffset` locate the upper layer. Checks the
 * version and that Payload Length fits in `len` (bytes after the payload length are ignored).
 */
export function walkIpv6Chain(buf: Uint8Array, off: number, len: number, c: Ipv6Chain): DropReason {
  c.reason = R_NONE;
  c.icmpCode = -1;
  c.icmpPointer = -1;
  c.start = off;
  c.upperProtocol = -1;
  c.upperOffset = -1;
  c.upperNextHeaderOffset = -1;
  c.headerCount = 0;
  c.hopByHopOffset = -1;
  c.destOptsOffset = -1;
  c.routingOffset = -1;
  c.routingType = -1;
  c.segmentsLeft = -1;
  c.ahOffset = -1;
  c.fragmentHeaderOffset = -1;
  c.fragmentOffset = 0;
  c.moreFragments = false;
  c.fragmentId = 0;
  c.fragmentNextHeader = -1;
  c.headerChainComplete = false;
  c.unfragmentableEnd = off + HDR_LEN;
  c.unfragmentableNextHeaderOffset = off + OFF_NEXT_HEADER;
  c.finalDestinationOffset = off + OFF_DST;

  if (len < HDR_LEN || off < 0 || off + len > buf.length) {
    c.end = off;
    return fail(c, DropReason.Truncated, -1, -1);
  }
  if (buf[off]! >>> 4 !== 6) {
    c.end = off;
    return fail(c, DropReason.BadVersion, -1, -1);
  }
  const plen = (buf[off + OFF_PAYLOAD_LENGTH]! << 8) | buf[off + OFF_PAYLOAD_LENGTH + 1]!;
  const end = off + HDR_LEN + plen;
  c.end = end;
  if (HDR_LEN + plen > len) return fail(c, DropReason.BadPayloadLength, -1, -1);

  let nh = buf[off + OFF_NEXT_HEADER]!;
  let nhOff = off + OFF_NEXT_HEADER;
  let pos = off + HDR_LEN;
  const bytesEnd = pos + c.maxBytes;
  let count = 0;
  let fragSeen = false;
  // False once the unfragmentable part is final (a Fragment header; in Linux layout also any
  // header other than HBH / Routing / DestOpts-before-Routing).
  let unfragOpen = true;
  const linux = c.linuxFragmentLayout;

  for (;;) {
    const kind = KIND[nh]!;
    if (kind === K_UPPER || kind === K_END) break;
    if (kind === K_UNASSIGNED) {
      if (c.acceptUnknownNextHeader) break;
      return fail(c, DropReason.UnknownNextHeader, PARAM_PROBLEM_NEXT_HEADER, nhOff);
    }
    if (++count > c.maxHeaders) {
      c.headerCount = count - 1;
      return fail(c, DropReason.ExtHeaderChainTooLong, PARAM_PROBLEM_TOO_MANY_HEADERS, pos);
    }
    // Every extension header has its Next Header and length bytes first (fragment: 8 fixed).
    if (pos + 2 > end) return truncatedChain(c, nhOff);
    let hlen: number;
    if (kind === K_FRAGMENT) hlen = FRAG_HEADER_LEN;
    else if (kind === K_AH) {
      hlen = (buf[pos + 1]! + 2) << 2;
      if ((hlen & 7) !== 0) return fail(c, DropReason.BadExtHeaderLength, PARAM_PROBLEM_HEADER_FIELD, pos + 1);
    } else hlen = (buf[pos + 1]! + 1) << 3;
    if (pos + hlen > bytesEnd) {
      c.headerCount = count;
      return fail(c, DropReason.ExtHeaderTooManyBytes, PARAM_PROBLEM_CHAIN_TOO_LONG, pos);
    }
    if (pos + hlen > end) return truncatedChain(c, pos + 1);

    switch (kind) {
      case K_OPTS:
        if (nh === NH_HOP_BY_HOP) {
          if (pos !== off + HDR_LEN) {
            return fail(c, DropReason.BadExtHeaderOrder, PARAM_PROBLEM_NEXT_HEADER, nhOff);
          }
          c.hopByHopOffset = pos;
          c.unfragmentableEnd = pos + hlen;
          c.unfragmentableNextHeaderOffset = pos;
        } else if (nh === NH_DEST_OPTS) {
          if (c.destOptsOffset < 0) c.destOptsOffset = pos;
          // RFC 6275 6.3: a Destination Options header with a Home Address option belongs
          // before the Fragment header. Any other one is unfragmentable (RFC 8200) only when a
          // Routing header follows it, which the Routing case below takes care of.
          if (unfragOpen) {
            if (linux && c.routingOffset < 0) {
              c.unfragmentableEnd = pos + hlen;
              c.unfragmentableNextHeaderOffset = pos;
            } else if (hasHomeAddressOption(buf, pos, hlen)) {
              c.unfragmentableEnd = pos + hlen;
              c.unfragmentableNextHeaderOffset = pos;
            } else if (linux) unfragOpen = false;
          }
        } else if (linux) unfragOpen = false;
        break;
      case K_ROUTING: {
        const type = buf[pos + 2]!;
        const left = buf[pos + 3]!;
        if (c.routingOffset < 0) {
          c.routingOffset = pos;
          c.routingType = type;
          c.segmentsLeft = left;
        }
        if (type === ROUTING_TYPE_0 && left !== 0 && !c.acceptRoutingType0) {
          return fail(c, DropReason.BadRoutingHeader, PARAM_PROBLEM_HEADER_FIELD, pos + 2);
        }
        if (left !== 0 && c.routingOffset === pos) {
          // Final destination for the pseudo-header: type 0 last address (at 8 + 16 * (n - 1),
          // n = len / 2), type 2 the home address (at 8), SRH segment[0] (at 8).
          const fd = type === ROUTING_TYPE_0 ? pos + 8 + ((buf[pos + 1]! >>> 1) - 1) * 16 : pos + 8;
          if ((type === ROUTING_TYPE_0 || type === 2 || type === 4) && fd >= pos + 8 && fd + 16 <= pos + hlen) {
            c.finalDestinationOffset = fd;
          }
        }
        if (unfragOpen) {
          c.unfragmentableEnd = pos + hlen;
          c.unfragmentableNextHeaderOffset = pos;
        }
        break;
      }
      case K_AH:
        if (hlen < 16) {
          // 12 fixed bytes, padded to a multiple of 8 in IPv6: (len + 2) * 4 >= 16
          return fail(c, DropReason.BadExtHeaderLength, PARAM_PROBLEM_HEADER_FIELD, pos + 1);
        }
        if (c.ahOffset < 0) c.ahOffset = pos;
        if (linux) unfragOpen = false;
        break;
      case K_FRAGMENT: {
        const ow = (buf[pos + 2]! << 8) | buf[pos + 3]!;
        const fo = ow & 0xfff8;
        const more = (ow & 1) !== 0;
        if (!fragSeen) {
          // Already a fragment: its unfragmentable part is everything before this header
          // (RFC 8200 4.5 reassembly), whatever the layout rule would have chosen.
          unfragOpen = false;
          c.unfragmentableEnd = pos;
          c.unfragmentableNextHeaderOffset = nhOff;
          fragSeen = true;
          c.fragmentHeaderOffset = pos;
          c.fragmentOffset = fo;
          c.moreFragments = more;
          c.fragmentId =
            ((buf[pos + 4]! << 24) | (buf[pos + 5]! << 16) | (buf[pos + 6]! << 8) | buf[pos + 7]!) >>> 0;
          c.fragmentNextHeader = buf[pos]!;
          const dataLen = end - (pos + FRAG_HEADER_LEN);
          if (more && (dataLen & 7) !== 0) {
            return fail(c, DropReason.FragmentBadLength, PARAM_PROBLEM_HEADER_FIELD, off + OFF_PAYLOAD_LENGTH);
          }
          if (fo + dataLen > 65535) {
            return fail(c, DropReason.FragmentTooBig, PARAM_PROBLEM_HEADER_FIELD, pos + 2);
          }
          if (fo !== 0) {
            // Non-first fragment: what follows is the middle of the fragmentable part.
            c.headerCount = count;
            c.upperProtocol = buf[pos]!;
            c.upperOffset = pos + FRAG_HEADER_LEN;
            c.upperNextHeaderOffset = pos;
            return R_NONE;
          }
        }
        break;
      }
    }
    nhOff = pos;
    nh = buf[pos]!;
    pos += hlen;
  }
  c.headerCount = count;
  c.upperProtocol = nh;
  c.upperOffset = pos;
  c.upperNextHeaderOffset = nhOff;
  if (pos + upperMinLength(nh) <= end) c.headerChainComplete = true;
  else if (c.fragmentHeaderOffset >= 0 && c.fragmentOffset === 0 && c.moreFragments) {
    return fail(c, DropReason.FragmentIncompleteChain, PARAM_PROBLEM_INCOMPLETE_CHAIN, off);
  }
  return R_NONE;
}

/** A header runs past the payload: RFC 7112 for a first fragment, else a silent drop. */
function truncatedChain(c: Ipv6Chain, at: number): DropReason {
  if (c.fragmentHeaderOffset >= 0 && c.fragmentOffset === 0 && c.moreFragments) {
    return fail(c, DropReason.FragmentIncompleteChain, PARAM_PROBLEM_INCOMPLETE_CHAIN, c.start);
  }
  c.reason = DropReason.BadExtHeaderLength;
  c.icmpCode = -1;
  c.icmpPointer = at - c.start;
  return DropReason.BadExtHeaderLength;
}
