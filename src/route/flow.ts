/**
 * The flow fields routing needs (addresses, protocol, ports, fragment flag, IPv6 flow label),
 * read from an IP packet in place into a reusable FlowKey, and the ECMP flow hash.
 * No allocation: one FlowKey per Router, overwritten per packet.
 */

const PROTO_TCP = 6;
const PROTO_UDP = 17;
const PROTO_DCCP = 33;
const PROTO_SCTP = 132;
const PROTO_UDPLITE = 136;

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
    const fam = family === 0 ? buf[off]! >>> 4 : family;
    if (fam === 4) {
      if (end - off < 20) return false;
      const ihl = (buf[off]! & 15) << 2;
      this.src[0] = ((buf[off + 12]! << 24) | (buf[off + 13]! << 16) | (buf[off + 14]! << 8) | buf[off + 15]!) >>> 0;
      this.dst[0] = ((buf[off + 16]! << 24) | (buf[off + 17]! << 16) | (buf[off + 18]! << 8) | buf[off + 19]!) >>> 0;
      this.src[1] = this.src[2] = this.src[3] = 0;
      this.dst[1] = this.dst[2] = this.dst[3] = 0;
      this.proto = buf[off + 9]!;
      this.length = (buf[off + 2]! << 8) | buf[off + 3]!;
      this.fragment = (((buf[off + 6]! << 8) | buf[off + 7]!) & 0x3fff) !== 0;
      const p = off + (ihl < 20 ? 20 : ihl);
      if (!this.fragment && hasPorts(this.proto) && p + 4 <= end) {
        this.sport = (buf[p]! << 8) | buf[p + 1]!;
        this.dport = (buf[p + 2]! << 8) | buf[p + 3]!;
      }
      this.family = 4;
      return true;
    }
    if (fam === 6) {
      if (end - off < 40) return false;
      for (let w = 0; w < 4; w++) {
        const s = off + 8 + w * 4;
        const d = off + 24 + w * 4;
        this.src[w] = ((buf[s]! << 24) | (buf[s + 1]! << 16) | (buf[s + 2]! << 8) | buf[s + 3]!) >>> 0;
        this.dst[w] = ((buf[d]! << 24) | (buf[d + 1]! << 16) | (buf[d + 2]! << 8) | buf[d + 3]!) >>> 0;
      }
      this.flowLabel = ((buf[off + 1]! & 15) << 16) | (buf[off + 2]! << 8) | buf[off + 3]!;
      this.length = 40 + ((buf[off + 4]! << 8) | buf[off + 5]!);
      let nh = buf[off + 6]!;
      let p = off + 40;
      // Walk at most 8 extension headers (hop-by-hop, routing, destination options, AH, fragment).
      for (let n = 0; n < 8 && p + 8 <= end; n++) {
        if (nh === 0 || nh === 43 || nh === 60) {
          const next = buf[p]!;
          p += (buf[p + 1]! + 1) << 3;
          nh = next;
        } else if (nh === 51) {
          const next = buf[p]!;
          p += (buf[p + 1]! + 2) << 2;
          nh = next;
        } else if (nh === 44) {
          if (((buf[p + 2]! << 8) | buf[p + 3]!) & 0xfff9) this.fragment = true;
          nh = buf[p]!;
          p += 8;
        } else {
          break;
        }
      }
      this.proto = nh;
      if (!this.fragment && hasPorts(nh) && p + 4 <= end) {
        this.sport = (buf[p]! << 8) | buf[p + 1]!;
        this.dport = (buf[p + 2]! << 8) | buf[p + 3]!;
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
