/**
 * TSO split: cut a TCP super-packet read from a TUN with offloads on (virtio gso_type TCPV4 or
 * TCPV6) into segments of gso_size payload bytes, each a complete, valid IP packet; and
 * completePartialChecksum for the non-GSO packets the kernel hands over with NEEDS_CSUM.
 *
 * Zero-copy output. A segment is [its header][its payload]: the headers (IP + TCP, copied from
 * the super-packet and adjusted) go to a header arena, one per SEGMENT_HEADER_STRIDE bytes; the
 * payloads stay where they are in the super-packet. SegmentList says where each part lies, so
 * a sender can hand both to the kernel as two iovecs per segment (sendmsg with UDP_SEGMENT: the
 * kernel cuts the concatenation at the segment size), and copySegment() writes one contiguous
 * segment when a copy is wanted (portable path, tests).
 *
 * Per segment, like Linux's tcp_gso_segment and wireguard-go's gsoSplit:
 * - IPv4: total length, identification = first + i (mod 2^16), a fresh header checksum;
 *   IPv6: payload length;
 * - TCP: sequence = first + i * gso_size; FIN and PSH only on the last segment, CWR only on the
 *   first; the checksum computed fully: pseudo-header (addresses summed once per super-packet,
 *   the length per segment) + TCP header + payload (sumWordsWide).
 *
 * The checksum choice, measured (bench/offload.bench.ts, 64,000-byte super-packets, 48-49
 * segments, 14.3-14.6 us per split of which ~6.5 us is summing the payload): seeding each
 * segment from the partial sum the kernel leaves in the field (its folded pseudo-header sum over
 * the super-packet's TCP length, checked against the fixtures) and taking the length difference
 * out would replace one pseudo-header address sum per super-packet, 4 ns (IPv4) or 14 ns (IPv6),
 * with ~2 ns: 0.02-0.10% of a split, below the run-to-run noise. The per-segment work is the
 * same either way. We compute fully: the result does not depend on what the kernel put in the
 * field, and a super-packet from anywhere splits the same way.
 *
 * hdr_len is not trusted (on the forward path the kernel reports the whole linear part): the
 * header length is csum_start + the TCP data offset. IPv6 extension headers between the fixed
 * header and TCP are not supported (SPLIT_UNSUPPORTED: the caller drops and counts; TCP only
 * carries them when a socket asks for them, e.g. IPV6_HOPOPTS).
 *
 * Nothing here allocates per packet: views are re-pointed, sums stay small integers.
 */
import { copyBytes } from '../base/bytes.ts';
import { DropReason } from '../base/drop-reason.ts';
import { IP_PROTO_TCP } from '../wire/ip.ts';
import { IPV4_HEADER_LEN, IPV4_SRC, Ipv4Packet } from '../wire/ipv4.ts';
import { IPV6_HEADER_LEN, IPV6_SRC, Ipv6Packet } from '../wire/ipv6.ts';
import { TCP_CWR, TCP_FIN, TCP_HEADER_LEN, TCP_PSH, TcpPacket } from '../wire/tcp.ts';
import { fold16, sumShort, sumWordsWide } from '../wire/checksum.ts';
import { EMPTY_BYTES } from '../wire/view.ts';
import {
  VIRTIO_NET_HDR_GSO_ECN, VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_TCPV6, VNET_TCP_CSUM_OFFSET,
  type VnetHdr,
} from '../sys/virtio-net-hdr.ts';

/** DropReason.None read once (an imported enum can cost a getter call per use under tsx/CJS). */
const R_NONE: DropReason = DropReason.None;

/** Bytes reserved per segment header in the arena (IPv4 60 + TCP 60 fit). */
export const SEGMENT_HEADER_STRIDE = 128;

/** split() failures (negative results). */
export const SPLIT_BAD_GSO = -1; // gso_type not TCPV4/TCPV6, or not matching the IP version; gso_size 0
export const SPLIT_BAD_HEADER = -2; // lengths, csum_start/offset or the TCP header inconsistent
export const SPLIT_UNSUPPORTED = -3; // IPv6 extension headers, a header past the stride
export const SPLIT_TOO_MANY = -4; // more segments than the SegmentList holds

export function splitFailureText(code: number): string {
  switch (code) {
    case SPLIT_BAD_GSO: return 'bad GSO type or size';
    case SPLIT_BAD_HEADER: return 'inconsistent IP/TCP header';
    case SPLIT_UNSUPPORTED: return 'unsupported header layout';
    case SPLIT_TOO_MANY: return 'too many segments';
    default: return `split result ${code}`;
  }
}

/** Where the segments of the last split are: headers in `hdr`, payloads in `src`. */
export class SegmentList {
  /** Segments of the last split. */
  count = 0;
  /** IP + TCP header bytes of every segment. */
  hdrLen = 0;
  /** The super-packet's buffer (the payloads are in it). */
  src: Uint8Array = EMPTY_BYTES;
  /** Payload of segment i: src[payOff[i], payOff[i] + payLen[i]). */
  readonly payOff: Int32Array;
  readonly payLen: Int32Array;

  /**
   * @param hdr  the header arena: capacity * SEGMENT_HEADER_STRIDE bytes from hdrBase; pass a
   *             SysMemory region so iovecs can point at the headers.
   */
  constructor(
    readonly capacity: number,
    readonly hdr: Uint8Array = new Uint8Array(new ArrayBuffer(capacity * SEGMENT_HEADER_STRIDE)),
    readonly hdrBase = 0,
  ) {
    if (hdrBase + capacity * SEGMENT_HEADER_STRIDE > hdr.length) throw new RangeError('header arena too small');
    this.payOff = new Int32Array(capacity);
    this.payLen = new Int32Array(capacity);
  }

  /** Offset of segment i's header in `hdr`. */
  hdrOff(i: number): number {
    return this.hdrBase + i * SEGMENT_HEADER_STRIDE;
  }

  /** Length of segment i as a packet. */
  length(i: number): number {
    return this.hdrLen + this.payLen[i]!;
  }

  /** Copy segment i as one contiguous packet to dst[dstOff...]; returns its length. */
  copySegment(i: number, dst: Uint8Array, dstOff: number): number {
    copyBytes(this.hdr, this.hdrOff(i), dst, dstOff, this.hdrLen);
    copyBytes(this.src, this.payOff[i]!, dst, dstOff + this.hdrLen, this.payLen[i]!);
    return this.hdrLen + this.payLen[i]!;
  }
}

export class TsoSplitter {
  private readonly inV4 = new Ipv4Packet();
  private readonly inV6 = new Ipv6Packet();
  private readonly inTcp = new TcpPacket();
  private readonly segV4 = new Ipv4Packet();
  private readonly segV6 = new Ipv6Packet();
  private readonly segTcp = new TcpPacket();

  /**
   * Split the super-packet buf[ipOff, ipOff + ipLen) described by `vnet` into `out`. Returns the
   * number of segments (>= 1) or a SPLIT_* code (< 0). The super-packet is not modified.
   */
  split(buf: Uint8Array, ipOff: number, ipLen: number, vnet: VnetHdr, out: SegmentList): number {
    const type = vnet.gsoType & ~VIRTIO_NET_HDR_GSO_ECN;
    const mss = vnet.gsoSize;
    const cs = vnet.csumStart;
    if (mss === 0 || ipLen < IPV4_HEADER_LEN || ipOff < 0 || ipOff + ipLen > buf.length) {
      return mss === 0 ? SPLIT_BAD_GSO : SPLIT_BAD_HEADER;
    }
    const version = buf[ipOff]! >> 4;
    let v6: boolean;
    if (type === VIRTIO_NET_HDR_GSO_TCPV4 && version === 4) {
      const ip = this.inV4.wrap(buf, ipOff, ipLen);
      if (ip.check() !== R_NONE || ip.totalLength !== ipLen || ip.protocol !== IP_PROTO_TCP) return SPLIT_BAD_HEADER;
      if (ip.headerLength !== cs || ip.isFragment) return SPLIT_BAD_HEADER;
      v6 = false;
    } else if (type === VIRTIO_NET_HDR_GSO_TCPV6 && version === 6) {
      if (ipLen < IPV6_HEADER_LEN) return SPLIT_BAD_HEADER;
      const ip = this.inV6.wrap(buf, ipOff, ipLen);
      if (ip.payloadLength !== ipLen - IPV6_HEADER_LEN) return SPLIT_BAD_HEADER;
      if (ip.nextHeader !== IP_PROTO_TCP || cs !== IPV6_HEADER_LEN) return SPLIT_UNSUPPORTED;
      v6 = true;
    } else {
      return SPLIT_BAD_GSO;
    }
    if (vnet.csumOffset !== VNET_TCP_CSUM_OFFSET || cs + TCP_HEADER_LEN > ipLen) return SPLIT_BAD_HEADER;
    const tcp = this.inTcp.wrap(buf, ipOff + cs, ipLen - cs);
    const doff = tcp.headerLength;
    if (doff < TCP_HEADER_LEN || cs + doff > ipLen) return SPLIT_BAD_HEADER;
    const hl = cs + doff;
    if (hl > SEGMENT_HEADER_STRIDE) return SPLIT_UNSUPPORTED;
    const payload = ipLen - hl;
    if (payload <= 0) return SPLIT_BAD_HEADER;
    const n = Math.ceil(payload / mss);
    if (n > out.capacity) return SPLIT_TOO_MANY;

    const seq0 = tcp.seq;
    const flags0 = tcp.flags;
    const id0 = v6 ? 0 : this.inV4.ident;
    // pseudo-header without its length: addresses (contiguous src, dst) + protocol
    const addrSum = v6
      ? sumShort(buf, ipOff + IPV6_SRC, 32, IP_PROTO_TCP)
      : sumShort(buf, ipOff + IPV4_SRC, 8, IP_PROTO_TCP);
    const arena = out.hdr;
    out.src = buf;
    out.hdrLen = hl;
    out.count = n;
    let po = ipOff + hl;
    for (let i = 0; i < n; i++) {
      const pl = i === n - 1 ? payload - i * mss : mss;
      const ho = out.hdrOff(i);
      copyBytes(buf, ipOff, arena, ho, hl);
      if (v6) {
        this.segV6.wrap(arena, ho, hl).payloadLength = hl - IPV6_HEADER_LEN + pl;
      } else {
        const ip = this.segV4.wrap(arena, ho, hl);
        ip.totalLength = hl + pl;
        ip.ident = (id0 + i) & 0xffff;
        // not ip.fillChecksum(): checksum() accumulates in a double, boxed across the call
        ip.checksum = 0;
        ip.checksum = ~fold16(sumShort(arena, ho, cs)) & 0xffff;
      }
      const th = this.segTcp.wrap(arena, ho + cs, doff);
      th.seq = (seq0 + i * mss) >>> 0;
      let f = flags0;
      if (i !== n - 1) f &= ~(TCP_FIN | TCP_PSH);
      if (i !== 0) f &= ~TCP_CWR;
      th.flags = f;
      th.checksum = 0;
      const s = sumWordsWide(buf, po, pl, fold16(sumShort(arena, ho + cs, doff, addrSum + doff + pl)));
      th.checksum = ~fold16(s) & 0xffff;
      out.payOff[i] = po;
      out.payLen[i] = pl;
      po += pl;
    }
    return n;
  }
}

/**
 * Finish a NEEDS_CSUM packet (virtio flags 1, no GSO): the field at csumStart + csumOffset holds
 * the pseudo-header sum; add the bytes from csumStart to the end and store the complement (0
 * stored as 0xffff, as Linux's skb_checksum_help does). Returns false, changing nothing, when
 * the offsets do not fit the packet.
 */
export function completePartialChecksum(
  buf: Uint8Array,
  ipOff: number,
  ipLen: number,
  csumStart: number,
  csumOffset: number,
): boolean {
  const at = ipOff + csumStart + csumOffset;
  if (csumStart < IPV4_HEADER_LEN || csumStart + csumOffset + 2 > ipLen || ipOff + ipLen > buf.length) return false;
  const seed = (buf[at]! << 8) | buf[at + 1]!;
  buf[at] = 0;
  buf[at + 1] = 0;
  const c = ~fold16(sumWordsWide(buf, ipOff + csumStart, ipLen - csumStart, seed)) & 0xffff;
  const v = c === 0 ? 0xffff : c;
  buf[at] = v >>> 8;
  buf[at + 1] = v;
  return true;
}
