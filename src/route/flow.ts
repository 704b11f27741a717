/**
 * The flow fields routing needs (addresses, protocol, ports, fragment flag, IPv6 flow label, and
 * where the destination address sits for the table lookup), read from an IP packet in place into
 * a reusable FlowKey, and the ECMP flow hash. No allocation: one FlowKey per lookup engine,
 * overwritten per packet.
 *
 * This is the one place routing reads IP headers. The field offsets and protocol numbers below
 * are module-local copies of the wire/ constants named beside each (an imported binding costs a
 * read through the module record per use on this per-packet path, see wire/ipv6-chain.ts);
 * test/route/header-fields.test.ts checks every copy against its wire/ source.
 */

// IPv4 (wire/ipv4.ts)
const V4_HEADER_LEN = 20; // IPV4_HEADER_LEN
const V4_TOTAL_LENGTH = 2; // F_TOTAL_LENGTH
const V4_FLAGS_FRAG = 6; // F_FLAGS_FRAG
const V4_FRAGMENT = 0x3fff; // IPV4_FLAG_MF | IPV4_FRAG_OFFSET_MASK: any fragment
const V4_PROTOCOL = 9; // F_PROTOCOL
const V4_SRC = 12; // F_SRC
const V4_DST = 16; // F_DST
// IPv6 (wire/ipv6.ts, wire/ipv6-ext.ts)
const V6_HEADER_LEN = 40; // IPV6_HEADER_LEN
const V6_PAYLOAD_LENGTH = 4; // IPV6_PAYLOAD_LENGTH
const V6_NEXT_HEADER = 6; // IPV6_NEXT_HEADER
const V6_SRC = 8; // IPV6_SRC
const V6_DST = 24; // IPV6_DST
const EXT_NEXT_HEADER = 0; // EXT_NEXT_HEADER
const EXT_HDR_EXT_LEN = 1; // EXT_HDR_EXT_LEN
const EXT_MIN_LEN = 8; // EXT_MIN_LEN
const FRAG_HEADER_LEN = 8; // FRAG_HEADER_LEN
const FRAG_OFFSET_FLAGS = 2; // FRAG_OFFSET_FLAGS
const FRAG_FRAGMENT = 0xfff9; // FRAG_OFFSET_MASK | FRAG_M_FLAG: any fragment
const NH_HOP_BY_HOP = 0; // NH_HOP_BY_HOP
const NH_ROUTING = 43; // NH_ROUTING
const NH_FRAGMENT = 44; // NH_FRAGMENT
const NH_AH = 51; // NH_AH
const NH_DEST_OPTS = 60; // NH_DEST_OPTS
// Transport ports (wire/udp.ts; TCP, SCTP, DCCP and UDP-Lite have them at the same offsets)
const PORT_SRC = 0; // F_SRC_PORT
const PORT_DST = 2; // F_DST_PORT
// Protocols with ports (wire/ipv4.ts IP_PROTO_*)
const PROTO_TCP = 6;
const PROTO_UDP = 17;
const PROTO_DCCP = 33;
const PROTO_SCTP = 132;
const PROTO_UDPLITE = 136;
/** Extension headers walked at most (hop-by-hop, routing, destination options, AH, fragment). */
const MAX_EXT_HEADERS = 8;

/** The copies above, by their wire/ names (for the test that checks them). */
export const FLOW_HEADER_FIELDS = {
  IPV4_HEADER_LEN: V4_HEADER_LEN,
  F_TOTAL_LENGTH: V4_TOTAL_LENGTH,
  F_FLAGS_FRAG: V4_FLAGS_FRAG,
  IPV4_FRAGMENT: V4_FRAGMENT,
  F_PROTOCOL: V4_PROTOCOL,
  F_SRC: V4_SRC,
  F_DST: V4_DST,
  IPV6_HEADER_LEN: V6_HEADER_LEN,
  IPV6_PAYLOAD_LENGTH: V6_PAYLOAD_LENGTH,
  IPV6_NEXT_HEADER: V6_NEXT_HEADER,
  IPV6_SRC: V6_SRC,
  IPV6_DST: V6_DST,
  EXT_NEXT_HEADER,
  EXT_HDR_EXT_LEN,
  EXT_MIN_LEN,
  FRAG_HEADER_LEN,
  FRAG_OFFSET_FLAGS,
  FRAG_FRAGMENT,
  NH_HOP_BY_HOP,
  NH_ROUTING,
  NH_FRAGMENT,
  NH_AH,
  NH_DEST_OPTS,
  F_SRC_PORT: PORT_SRC,
  F_DST_PORT: PORT_DST,
  IP_PROTO_TCP: PROTO_TCP,
  IP_PROTO_UDP: PROTO_UDP,
  IP_PROTO_DCCP: PROTO_DCCP,
  IP_PROTO_SCTP: PROTO_SCTP,
  IP_PROTO_UDPLITE: PROTO_UDPLITE,
} as const;

function hasPorts(proto: number): boolean {
  return (
    proto === PROTO_TCP || proto === PROTO_UDP || proto === PROTO_SCTP || proto === PROTO_UDPLITE || proto === PROTO_DCCP
  );
}

export class FlowKey {
  /** 4 or 6; 0 when the packet could not be read (too short, bad version). */
  family = 0;
  /** Source and destination as big-endian words (IPv4 in word 0). */
  readonly src = new Uint32Array(4);
  readonly dst = new Uint32Array(4);
  /** Transport protocol (after IPv6 extension headers). */
  proto = 0;
  /** -1 when unknown (fragment, truncated, no ports for this protocol). */
  sport = -1;
  dport = -1;
  /** Any fragment (first or later). */
  fragment = false;
  /** IPv6 flow label, 0 if none. */
  flowLabel = 0;
  /** IP total length (bytes counted for the route). */
  length = 0;
  /** Offset in the buffer of the destination address (what the tables look up). */
  dstOffset = 0;

  /**
   * Read the packet whose IP header starts at buf[off]; `end` bounds the packet (default
   * buf.length). `family` 0 = from the version nibble. Returns false (family = 0) when the header
   * is not there.
   */
  read(buf: Uint8Array, off: number, family = 0, end = buf.length): boolean {
    this.family = 0;
    this.sport = -1;
    this.dport = -1;
    this.fragment = false;
    this.flowLabel = 0;
    if (off < 0 || off >= end) return false;
    // Version: the high nibble of the first byte (both families).
    const fam = family === 0 ? buf[off]! >>> 4 : family;
    if (fam === 4) {
      if (end - off < V4_HEADER_LEN) return false;
      // IHL: the low nibble, in 32-bit words.
      const ihl = (buf[off]! & 15) << 2;
      const s = off + V4_SRC;
      const d = off + V4_DST;
      this.src[0] = ((buf[s]! << 24) | (buf[s + 1]! << 16) | (buf[s + 2]! << 8) | buf[s + 3]!) >>> 0;
      this.dst[0] = ((buf[d]! << 24) | (buf[d + 1]! << 16) | (buf[d + 2]! << 8) | buf[d + 3]!) >>> 0;
      this.src[1] = this.src[2] = this.src[3] = 0;
      this.dst[1] = this.dst[2] = this.dst[3] = 0;
      this.dstOffset = off + V4_DST;
      this.proto = buf[off + V4_PROTOCOL]!;
      this.length = (buf[off + V4_TOTAL_LENGTH]! << 8) | buf[off + V4_TOTAL_LENGTH + 1]!;
      this.fragment = (((buf[off + V4_FLAGS_FRAG]! << 8) | buf[off + V4_FLAGS_FRAG + 1]!) & V4_FRAGMENT) !== 0;
      const p = off + (ihl < V4_HEADER_LEN ? V4_HEADER_LEN : ihl);
      if (!this.fragment && hasPorts(this.proto) && p + 4 <= end) {
        this.sport = (buf[p + PORT_SRC]! << 8) | buf[p + PORT_SRC + 1]!;
        this.dport = (buf[p + PORT_DST]! << 8) | buf[p + PORT_DST + 1]!;
      }
      this.family = 4;
      return true;
    }
    if (fam === 6) {
      if (end - off < V6_HEADER_LEN) return false;
      for (let w = 0; w < 4; w++) {
        const s = off + V6_SRC + w * 4;
        const d = off + V6_DST + w * 4;
        this.src[w] = ((buf[s]! << 24) | (buf[s + 1]! << 16) | (buf[s + 2]! << 8) | buf[s + 3]!) >>> 0;
        this.dst[w] = ((buf[d]! << 24) | (buf[d + 1]! << 16) | (buf[d + 2]! << 8) | buf[d + 3]!) >>> 0;
      }
      this.dstOffset = off + V6_DST;
      // Flow label: the low 20 bits of the first word.
      this.flowLabel = ((buf[off + 1]! & 15) << 16) | (buf[off + 2]! << 8) | buf[off + 3]!;
      this.length = V6_HEADER_LEN + ((buf[off + V6_PAYLOAD_LENGTH]! << 8) | buf[off + V6_PAYLOAD_LENGTH + 1]!);
      let nh = buf[off + V6_NEXT_HEADER]!;
      let p = off + V6_HEADER_LEN;
      for (let n = 0; n < MAX_EXT_HEADERS && p + EXT_MIN_LEN <= end; n++) {
        if (nh === NH_HOP_BY_HOP || nh === NH_ROUTING || nh === NH_DEST_OPTS) {
          const next = buf[p + EXT_NEXT_HEADER]!;
          p += (buf[p + EXT_HDR_EXT_LEN]! + 1) << 3; // (Hdr Ext Len + 1) * 8
          nh = next;
        } else if (nh === NH_AH) {
          const next = buf[p + EXT_NEXT_HEADER]!;
          p += (buf[p + EXT_HDR_EXT_LEN]! + 2) << 2; // (Payload Len + 2) * 4
          nh = next;
        } else if (nh === NH_FRAGMENT) {
          if (((buf[p + FRAG_OFFSET_FLAGS]! << 8) | buf[p + FRAG_OFFSET_FLAGS + 1]!) & FRAG_FRAGMENT) this.fragment = true;
          nh = buf[p + EXT_NEXT_HEADER]!;
          p += FRAG_HEADER_LEN;
        } else {
          break;
        }
      }
      this.proto = nh;
      if (!this.fragment && hasPorts(nh) && p + 4 <= end) {
        this.sport = (buf[p + PORT_SRC]! << 8) | buf[p + PORT_SRC + 1]!;
        this.dport = (buf[p + PORT_DST]! << 8) | buf[p + PORT_DST + 1]!;
      }
      this.family = 6;
      return true;
    }
    return false;
  }

  /**
   * The ECMP hash of this flow (uint32): source and destination always; then for IPv6 with a flow
   * label the label and protocol, otherwise, unless a fragment, protocol and ports. Fragments hash
   * on addresses only, so every fragment of a datagram takes the same path.
   */
  hash(seed: number): number {
    let h = seed | 0;
    const words = this.family === 6 ? 4 : 1;
    for (let w = 0; w < words; w++) {
      h = mix(h, this.src[w]!);
      h = mix(h, this.dst[w]!);
    }
    if (this.flowLabel !== 0) {
      h = mix(h, this.flowLabel);
      h = mix(h, this.proto);
    } else if (!this.fragment) {
      h = mix(h, this.proto);
      h = mix(h, ((this.sport & 0xffff) << 16) | (this.dport & 0xffff));
    }
    return fmix(h ^ words);
  }
}

/** One murmur3 round (32-bit). */
function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** murmur3 finaliser: every input bit affects every output bit. */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
