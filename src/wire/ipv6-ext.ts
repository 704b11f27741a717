/**
 * IPv6 extension headers (RFC 8200 section 4): views over the individual headers, and the option
 * TLV scan for Hop-by-Hop / Destination Options. (Next Header numbers are in ip.ts, IP_PROTO_*.)
 *
 * The chain walker that goes from the fixed header to the upper layer is in ipv6-chain.ts; this
 * file only knows single headers. Everything here reads straight out of the packet buffer and
 * never allocates (except parse()/describe(), which are for tests and the control plane).
 *
 * Generic shape shared by Hop-by-Hop, Routing, Destination Options (and Mobility, HIP, Shim6,
 * 253/254, RFC 7045):
 *  0                   1                   2                   3
 * |  Next Header  |  Hdr Ext Len  |  (header specific ...)       |   length = (Hdr Ext Len + 1) * 8
 * AH (RFC 4302): same first two bytes, but length = (Payload Len + 2) * 4.
 * Fragment: fixed 8 bytes, see Ipv6FragmentHeader.
 */
import { WireView } from './view.ts';
import { DropReason } from '../base/drop-reason.ts';
import {
  IP_PROTO_AH,
  IP_PROTO_DEST_OPTS,
  IP_PROTO_ESP,
  IP_PROTO_EXPERIMENT1,
  IP_PROTO_EXPERIMENT2,
  IP_PROTO_FRAGMENT,
  IP_PROTO_GRE,
  IP_PROTO_HIP,
  IP_PROTO_HOP_BY_HOP,
  IP_PROTO_ICMPV6,
  IP_PROTO_IPIP,
  IP_PROTO_IPV6,
  IP_PROTO_MOBILITY,
  IP_PROTO_NONE,
  IP_PROTO_ROUTING,
  IP_PROTO_SHIM6,
  IP_PROTO_TCP,
  IP_PROTO_UDP,
} from './ip.ts';

/** DropReason.None read once (an imported enum can cost a getter call per use under tsx/CJS). */
const R_NONE: DropReason = DropReason.None;

/** True for the Next Header values IANA lists as IPv6 extension headers (RFC 7045). */
export function isIpv6ExtensionHeader(nh: number): boolean {
  return (
    nh === IP_PROTO_HOP_BY_HOP ||
    nh === IP_PROTO_ROUTING ||
    nh === IP_PROTO_FRAGMENT ||
    nh === IP_PROTO_ESP ||
    nh === IP_PROTO_AH ||
    nh === IP_PROTO_DEST_OPTS ||
    nh === IP_PROTO_MOBILITY ||
    nh === IP_PROTO_HIP ||
    nh === IP_PROTO_SHIM6 ||
    nh === IP_PROTO_EXPERIMENT1 ||
    nh === IP_PROTO_EXPERIMENT2
  );
}

/** Short name of a Next Header value for describe() output. */
export function nextHeaderName(nh: number): string {
  switch (nh) {
    case IP_PROTO_HOP_BY_HOP: return 'HBH';
    case IP_PROTO_IPIP: return 'IPIP';
    case IP_PROTO_TCP: return 'TCP';
    case IP_PROTO_UDP: return 'UDP';
    case IP_PROTO_IPV6: return 'IP6';
    case IP_PROTO_ROUTING: return 'srcrt';
    case IP_PROTO_FRAGMENT: return 'frag';
    case IP_PROTO_GRE: return 'GRE';
    case IP_PROTO_ESP: return 'ESP';
    case IP_PROTO_AH: return 'AH';
    case IP_PROTO_ICMPV6: return 'ICMP6';
    case IP_PROTO_NONE: return 'no next header';
    case IP_PROTO_DEST_OPTS: return 'DSTOPT';
    case IP_PROTO_MOBILITY: return 'mobility';
    default: return `ip-proto-${nh}`;
  }
}

// ---------------------------------------------------------------- generic header fields
export const EXT_NEXT_HEADER = 0;
export const EXT_HDR_EXT_LEN = 1;
/** Smallest extension header (all TLV-length headers are multiples of 8, the fragment header is 8). */
export const EXT_MIN_LEN = 8;

/** Length in bytes of a (Hdr Ext Len + 1) * 8 header starting at `off` (caller checked off+1 < end). */
export function extHeaderLength(buf: Uint8Array, off: number): number {
  return (buf[off + 1]! + 1) << 3;
}

/** Length in bytes of an AH header at `off`: (Payload Len + 2) * 4 (RFC 4302 section 2.2). */
export function ahHeaderLength(buf: Uint8Array, off: number): number {
  return (buf[off + 1]! + 2) << 2;
}

// ---------------------------------------------------------------- options (HBH / DestOpts)
export const OPT_PAD1 = 0x00;
export const OPT_PADN = 0x01;
/** RFC 2473 section 5.1 Tunnel Encapsulation Limit (Destination Options of an IPv6 tunnel packet). */
export const OPT_TUNNEL_ENCAP_LIMIT = 0x04;
/** RFC 2711 Router Alert (Hop-by-Hop only), 2-byte value. */
export const OPT_ROUTER_ALERT = 0x05;
/** RFC 2675 Jumbo Payload (Hop-by-Hop only), 4-byte length. */
export const OPT_JUMBO_PAYLOAD = 0xc2;
/** RFC 6275 Home Address (Destination Options), 16-byte address. */
export const OPT_HOME_ADDRESS = 0xc9;

/** The action encoded in the two high bits of an option type (RFC 8200 section 4.2). */
export const OPTION_ACTION_SKIP = 0;
/** Discard the packet silently. */
export const OPTION_ACTION_DISCARD = 1;
/** Discard and send Parameter Problem code 2, even when the destination is multicast. */
export const OPTION_ACTION_DISCARD_ICMP = 2;
/** Discard and send Parameter Problem code 2 only when the destination is not multicast. */
export const OPTION_ACTION_DISCARD_ICMP_UNICAST = 3;

export function optionAction(type: number): number {
  return (type >>> 6) & 3;
}

/** Third-highest bit: the option data may change en route (RFC 8200 section 4.2). */
export function optionMayChange(type: number): boolean {
  return (type & 0x20) !== 0;
}

/** Linux's default limit on non-padding options per header (net.ipv6.max_hbh_opts_number). */
export const DEFAULT_MAX_OPTIONS = 8;

/**
 * Result of scanIpv6Options(). The caller owns one and passes it in (no allocation per packet).
 * Offsets are absolute offsets in the buffer; -1 means "not present".
 */
export class Ipv6OptionScan {
  reason: DropReason = DropReason.None;
  /** Router Alert value (RFC 2711) or -1. */
  routerAlert = -1;
  /** Jumbo Payload length (RFC 2675) or -1. */
  jumboPayloadLength = -1;
  /** Tunnel Encapsulation Limit (RFC 2473) or -1. */
  tunnelEncapLimit = -1;
  /** Offset of the 16-byte Home Address in a Home Address option (RFC 6275) or -1. */
  homeAddressOffset = -1;
  /** Type of the unrecognized option that stopped the scan, or -1. */
  unknownType = -1;
  /** Offset of that option's type byte (Parameter Problem code 2 points here), or -1. */
  unknownOffset = -1;
  /** OPTION_ACTION_* of the unrecognized option (0 when none). */
  action = OPTION_ACTION_SKIP;
  /** Offset of the byte a Parameter Problem code 0 should point at (bad option length), or -1. */
  errorOffset = -1;
  /** Non-padding options seen. */
  optionCount = 0;

  reset(): void {
    this.reason = DropReason.None;
    this.routerAlert = -1;
    this.jumboPayloadLength = -1;
    this.tunnelEncapLimit = -1;
    this.homeAddressOffset = -1;
    this.unknownType = -1;
    this.unknownOffset = -1;
    this.action = OPTION_ACTION_SKIP;
    this.errorOffset = -1;
    this.optionCount = 0;
  }
}

/**
 * Walk the option TLVs of a Hop-by-Hop or Destination Options header at buf[off, off+hdrLen)
 * (hdrLen from extHeaderLength, already checked to lie inside the packet). Returns the reason
 * (also stored in `scan.reason`):
 * - BadOptionLength: an option runs past the header, or a known option has the wrong length
 *   (`errorOffset` = its length byte);
 * - BadOption: PadN with non-zero bytes or more than 7 bytes of consecutive padding (RFC 4942
 *   3.1.1; what Linux enforces);
 * - UnrecognizedOption: an option this scan does not know whose action bits are not 00:
 *   `unknownType`, `unknownOffset` and `action` say what RFC 8200 4.2 wants done;
 * - TooManyOptions: more than `maxOptions` non-padding options (RFC 8883; Linux default 8).
 * Unknown options with action 00 are skipped. Pad1/PadN/Router Alert/Jumbo/Tunnel Encapsulation
 * Limit/Home Address are recognised; which header may carry which is the caller's policy.
 */
export function scanIpv6Options(
  buf: Uint8Array,
  off: number,
  hdrLen: number,
  scan: Ipv6OptionScan,
  maxOptions = DEFAULT_MAX_OPTIONS,
): DropReason {
  scan.reset();
  const end = off + hdrLen;
  let i = off + 2;
  let padRun = 0;
  while (i < end) {
    const type = buf[i]!;
    if (type === OPT_PAD1) {
      i++;
      if (++padRun > 7) return fail(scan, DropReason.BadOption, i - 1);
      continue;
    }
    if (i + 2 > end) return fail(scan, DropReason.BadOptionLength, i);
    const olen = buf[i + 1]!;
    const data = i + 2;
    if (data + olen > end) return fail(scan, DropReason.BadOptionLength, i + 1);
    if (type === OPT_PADN) {
      padRun += olen + 2;
      if (padRun > 7) return fail(scan, DropReason.BadOption, i);
      for (let k = 0; k < olen; k++) if (buf[data + k] !== 0) return fail(scan, DropReason.BadOption, data + k);
      i = data + olen;
      continue;
    }
    padRun = 0;
    if (++scan.optionCount > maxOptions) return fail(scan, DropReason.TooManyOptions, i);
    switch (type) {
      case OPT_ROUTER_ALERT:
        if (olen !== 2) return fail(scan, DropReason.BadOptionLength, i + 1);
        scan.routerAlert = (buf[data]! << 8) | buf[data + 1]!;
        break;
      case OPT_JUMBO_PAYLOAD:
        if (olen !== 4) return fail(scan, DropReason.BadOptionLength, i + 1);
        scan.jumboPayloadLength =
          ((buf[data]! << 24) | (buf[data + 1]! << 16) | (buf[data + 2]! << 8) | buf[data + 3]!) >>> 0;
        break;
      case OPT_TUNNEL_ENCAP_LIMIT:
        if (olen !== 1) return fail(scan, DropReason.BadOptionLength, i + 1);
        scan.tunnelEncapLimit = buf[data]!;
        break;
      case OPT_HOME_ADDRESS:
        if (olen !== 16) return fail(scan, DropReason.BadOptionLength, i + 1);
        scan.homeAddressOffset = data;
        break;
      default: {
        const action = (type >>> 6) & 3;
        if (action !== OPTION_ACTION_SKIP) {
          scan.unknownType = type;
          scan.unknownOffset = i;
          scan.action = action;
          scan.errorOffset = i;
          scan.reason = DropReason.UnrecognizedOption;
          return DropReason.UnrecognizedOption;
        }
      }
    }
    i = data + olen;
  }
  return R_NONE;
}

function fail(scan: Ipv6OptionScan, reason: DropReason, at: number): DropReason {
  scan.reason = reason;
  scan.errorOffset = at;
  return reason;
}

/**
 * True when an options header at buf[off, off+hdrLen) holds a Home Address option (RFC 6275),
 * which makes a Destination Options header part of the unfragmentable part. Malformed TLVs
 * simply end the search (validation is scanIpv6Options' job).
 */
export function hasHomeAddressOption(buf: Uint8Array, off: number, hdrLen: number): boolean {
  const end = off + hdrLen;
  let i = off + 2;
  while (i < end) {
    const type = buf[i]!;
    if (type === OPT_PAD1) {
      i++;
      continue;
    }
    if (i + 2 > end) return false;
    if (type === OPT_HOME_ADDRESS) return true;
    i += 2 + buf[i + 1]!;
  }
  return false;
}

// ---------------------------------------------------------------- Hop-by-Hop / Destination Options view
export interface Ipv6OptionsRepr {
  nextHeader: number;
  /** Total header length in bytes (a multiple of 8, >= 8). */
  length: number;
}

/** View over a Hop-by-Hop or Destination Options header. */
export class Ipv6OptionsHeader extends WireView {
  /** Truncated when the fixed two bytes are missing, BadExtHeaderLength when the header runs past `len`. */
  check(): DropReason {
    if (this.len < 2) return DropReason.Truncated;
    if (this.headerLength > this.len) return DropReason.BadExtHeaderLength;
    return R_NONE;
  }

  get nextHeader(): number {
    return this.buf[this.off]!;
  }
  set nextHeader(v: number) {
    this.buf[this.off] = v;
  }
  get hdrExtLen(): number {
    return this.buf[this.off + 1]!;
  }
  set hdrExtLen(v: number) {
    this.buf[this.off + 1] = v;
  }
  /** Header length in bytes: (Hdr Ext Len + 1) * 8. */
  get headerLength(): number {
    return (this.buf[this.off + 1]! + 1) << 3;
  }

  /** Scan the option TLVs (after check()). See scanIpv6Options. */
  scan(result: Ipv6OptionScan, maxOptions = DEFAULT_MAX_OPTIONS): DropReason {
    return scanIpv6Options(this.buf, this.off, this.headerLength, result, maxOptions);
  }

  parse(): Ipv6OptionsRepr {
    return { nextHeader: this.nextHeader, length: this.headerLength };
  }

  /**
   * Write the header: next header, length, and padding filling the option area (Pad1 for one
   * byte, PadN otherwise; a 6-byte gap is one PadN of 4 zero bytes). Options are added by the
   * caller over the padding. Note: a header longer than 8 bytes left as padding only has a pad
   * run over 7 bytes, which scanIpv6Options (like Linux) rejects.
   */
  emit(repr: Ipv6OptionsRepr): void {
    const b = this.buf;
    const o = this.off;
    const units = (repr.length >>> 3) - 1;
    b[o] = repr.nextHeader;
    b[o + 1] = units;
    writePadding(b, o + 2, repr.length - 2);
  }

  describe(): string {
    return `opts(next ${this.nextHeader}, len ${this.headerLength})`;
  }
}

/** Fill buf[off, off+n) with Pad1/PadN options (n may be any size; PadN runs of at most 257). */
export function writePadding(buf: Uint8Array, off: number, n: number): void {
  let i = off;
  let left = n;
  while (left > 0) {
    if (left === 1) {
      buf[i] = OPT_PAD1;
      return;
    }
    const run = Math.min(left, 257);
    buf[i] = OPT_PADN;
    buf[i + 1] = run - 2;
    buf.fill(0, i + 2, i + run);
    i += run;
    left -= run;
  }
}

// ---------------------------------------------------------------- Routing header
export const RH_TYPE = 2;
export const RH_SEGMENTS_LEFT = 3;
/** Type 0 (source route), deprecated by RFC 5095. */
export const ROUTING_TYPE_0 = 0;
/** Type 2 (Mobile IPv6, RFC 6275 6.4): one home address, segments left 1. */
export const ROUTING_TYPE_2 = 2;
/** Type 4 (Segment Routing Header, RFC 8754). */
export const ROUTING_TYPE_SRH = 4;

export interface Ipv6RoutingRepr {
  nextHeader: number;
  /** Total header length in bytes (multiple of 8, >= 8). */
  length: number;
  routingType: number;
  segmentsLeft: number;
}

export class Ipv6RoutingHeader extends WireView {
  /**
   * Truncated when shorter than 4 bytes, BadExtHeaderLength when the header runs past `len`,
   * BadRoutingHeader for type 0 with segments left (RFC 5095: treated as an unrecognised type,
   * which RFC 8200 4.4 drops with a Parameter Problem pointing at the Routing Type).
   */
  check(): DropReason {
    if (this.len < 4) return DropReason.Truncated;
    if (this.headerLength > this.len) return DropReason.BadExtHeaderLength;
    if (this.routingType === ROUTING_TYPE_0 && this.segmentsLeft !== 0) return DropReason.BadRoutingHeader;
    return R_NONE;
  }

  get nextHeader(): number {
    return this.buf[this.off]!;
  }
  set nextHeader(v: number) {
    this.buf[this.off] = v;
  }
  get hdrExtLen(): number {
    return this.buf[this.off + 1]!;
  }
  get headerLength(): number {
    return (this.buf[this.off + 1]! + 1) << 3;
  }
  get routingType(): number {
    return this.buf[this.off + RH_TYPE]!;
  }
  set routingType(v: number) {
    this.buf[this.off + RH_TYPE] = v;
  }
  get segmentsLeft(): number {
    return this.buf[this.off + RH_SEGMENTS_LEFT]!;
  }
  set segmentsLeft(v: number) {
    this.buf[this.off + RH_SEGMENTS_LEFT] = v;
  }

  parse(): Ipv6RoutingRepr {
    return {
      nextHeader: this.nextHeader,
      length: this.headerLength,
      routingType: this.routingType,
      segmentsLeft: this.segmentsLeft,
    };
  }

  /** Writes the 4 generic bytes and zeroes the type-specific rest. */
  emit(repr: Ipv6RoutingRepr): void {
    const b = this.buf;
    const o = this.off;
    b[o] = repr.nextHeader;
    b[o + 1] = (repr.length >>> 3) - 1;
    b[o + 2] = repr.routingType;
    b[o + 3] = repr.segmentsLeft;
    b.fill(0, o + 4, o + repr.length);
  }

  describe(): string {
    return `srcrt (len=${this.hdrExtLen}, type=${this.routingType}, segleft=${this.segmentsLeft})`;
  }
}

// ---------------------------------------------------------------- Fragment header
/**
 *  0                   1                   2                   3
 * |  Next Header  |   Reserved    |      Fragment Offset    |Res|M|
 * |                         Identification                        |
 */
export const FRAG_HEADER_LEN = 8;
export const FRAG_OFFSET_FLAGS = 2;
export const FRAG_IDENT = 4;
export const FRAG_M_FLAG = 0x0001;
export const FRAG_OFFSET_MASK = 0xfff8;

export interface Ipv6FragmentRepr {
  nextHeader: number;
  /** Fragment offset in bytes (a multiple of 8). */
  offset: number;
  moreFragments: boolean;
  identification: number;
}

export class Ipv6FragmentHeader extends WireView {
  check(): DropReason {
    return this.len < FRAG_HEADER_LEN ? DropReason.Truncated : DropReason.None;
  }

  get nextHeader(): number {
    return this.buf[this.off]!;
  }
  set nextHeader(v: number) {
    this.buf[this.off] = v;
  }
  /** Fragment offset in bytes (the 13-bit field times 8). */
  get fragmentOffset(): number {
    return ((this.buf[this.off + 2]! << 8) | this.buf[this.off + 3]!) & FRAG_OFFSET_MASK;
  }
  /** Set the offset in bytes (must be a multiple of 8, < 65536); keeps the M flag. */
  set fragmentOffset(bytes: number) {
    const w = (bytes & FRAG_OFFSET_MASK) | (this.buf[this.off + 3]! & 7);
    this.buf[this.off + 2] = w >>> 8;
    this.buf[this.off + 3] = w & 0xff;
  }
  get moreFragments(): boolean {
    return (this.buf[this.off + 3]! & FRAG_M_FLAG) !== 0;
  }
  set moreFragments(m: boolean) {
    if (m) this.buf[this.off + 3]! |= 1;
    else this.buf[this.off + 3]! &= 0xfe;
  }
  get identification(): number {
    const b = this.buf;
    const o = this.off + FRAG_IDENT;
    return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
  }
  set identification(v: number) {
    const b = this.buf;
    const o = this.off + FRAG_IDENT;
    b[o] = v >>> 24;
    b[o + 1] = (v >>> 16) & 0xff;
    b[o + 2] = (v >>> 8) & 0xff;
    b[o + 3] = v & 0xff;
  }

  parse(): Ipv6FragmentRepr {
    return {
      nextHeader: this.nextHeader,
      offset: this.fragmentOffset,
      moreFragments: this.moreFragments,
      identification: this.identification,
    };
  }

  emit(repr: Ipv6FragmentRepr): void {
    const b = this.buf;
    const o = this.off;
    b[o] = repr.nextHeader;
    b[o + 1] = 0;
    const w = (repr.offset & FRAG_OFFSET_MASK) | (repr.moreFragments ? 1 : 0);
    b[o + 2] = w >>> 8;
    b[o + 3] = w & 0xff;
    this.identification = repr.identification;
  }

  /** tcpdump -v style: "frag (0x0000abcd:0|1448)"; `dataLen` is the fragment's payload bytes. */
  describe(dataLen = this.len - FRAG_HEADER_LEN): string {
    return `frag (${this.fragmentOffset}|${dataLen})`;
  }
}

/** Write a fragment header at buf[off] without a view object. */
export function writeFragmentHeader(
  buf: Uint8Array,
  off: number,
  nextHeader: number,
  offsetBytes: number,
  more: boolean,
  identification: number,
): void {
  buf[off] = nextHeader;
  buf[off + 1] = 0;
  const w = (offsetBytes & FRAG_OFFSET_MASK) | (more ? 1 : 0);
  buf[off + 2] = w >>> 8;
  buf[off + 3] = w & 0xff;
  buf[off + 4] = identification >>> 24;
  buf[off + 5] = (identification >>> 16) & 0xff;
  buf[off + 6] = (identification >>> 8) & 0xff;
  buf[off + 7] = identification & 0xff;
}

// ---------------------------------------------------------------- AH (recognised, not verified)
export const AH_SPI = 4;
export const AH_SEQ = 8;
/** Smallest AH: 12 fixed bytes (ICV may be empty for null auth); IPv6 wants a multiple of 8. */
export const AH_MIN_LEN = 12;

export class Ipv6AuthHeader extends WireView {
  /** Truncated below 12 bytes; BadExtHeaderLength when shorter than 12 or past `len` or not 8-aligned. */
  check(): DropReason {
    if (this.len < AH_MIN_LEN) return DropReason.Truncated;
    const l = this.headerLength;
    if (l < AH_MIN_LEN || l > this.len || (l & 7) !== 0) return DropReason.BadExtHeaderLength;
    return R_NONE;
  }

  get nextHeader(): number {
    return this.buf[this.off]!;
  }
  /** (Payload Len + 2) * 4. */
  get headerLength(): number {
    return (this.buf[this.off + 1]! + 2) << 2;
  }
  get spi(): number {
    const b = this.buf;
    const o = this.off + AH_SPI;
    return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
  }
  get sequence(): number {
    const b = this.buf;
    const o = this.off + AH_SEQ;
    return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
  }

  describe(): string {
    return `AH(spi=0x${this.spi.toString(16).padStart(8, '0')},seq=0x${this.sequence.toString(16)})`;
  }
}

