/**
 * struct virtio_net_hdr (linux/virtio_net.h, 10 bytes, little-endian): the header a TUN opened
 * with IFF_VNET_HDR puts in front of every packet it hands out and expects in front of every
 * packet written to it.
 *
 *   u8  flags        NEEDS_CSUM: the checksum at csum_start + csum_offset holds only the
 *                    pseudo-header sum (folded, not complemented); the rest is still to be summed
 *   u8  gso_type     NONE / TCPV4 / TCPV6 / UDP_L4, | ECN when the first segment carries CWR
 *   u16 hdr_len      bytes of IP + transport header (do not trust it on read: on the forward
 *                    path the kernel reports the whole linear part; derive it from csum_start
 *                    and the TCP data offset)
 *   u16 gso_size     payload bytes per segment (the MSS)
 *   u16 csum_start   where the transport header starts (= IP header length)
 *   u16 csum_offset  where its checksum field is, from csum_start (TCP 16, UDP 6)
 *
 * Writing: never an all-zero header on a plain packet: about 2% of such writes failed with
 * EINVAL on this machine; hdr_len = packet length fixed it (see writePlain).
 */

export const VNET_HDR_LEN = 10;
export const VNET_FLAGS = 0;
export const VNET_GSO_TYPE = 1;
export const VNET_HDR_LEN_FIELD = 2;
export const VNET_GSO_SIZE = 4;
export const VNET_CSUM_START = 6;
export const VNET_CSUM_OFFSET = 8;

export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
export const VIRTIO_NET_HDR_F_DATA_VALID = 2;

export const VIRTIO_NET_HDR_GSO_NONE = 0;
export const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
export const VIRTIO_NET_HDR_GSO_UDP = 3;
export const VIRTIO_NET_HDR_GSO_TCPV6 = 4;
export const VIRTIO_NET_HDR_GSO_UDP_L4 = 5;
export const VIRTIO_NET_HDR_GSO_ECN = 0x80;

/** Offset of the checksum field inside a TCP header (csum_offset for TCP). */
export const VNET_TCP_CSUM_OFFSET = 16;

/** A view over the 10 header bytes at (buf, off); re-point it with wrap(). */
export class VnetHdr {
  buf: Uint8Array;
  off: number;

  constructor(buf: Uint8Array = new Uint8Array(VNET_HDR_LEN), off = 0) {
    this.buf = buf;
    this.off = off;
  }

  wrap(buf: Uint8Array, off: number): this {
    this.buf = buf;
    this.off = off;
    return this;
  }

  private u16(f: number): number {
    return this.buf[this.off + f]! | (this.buf[this.off + f + 1]! << 8);
  }
  private w16(f: number, v: number): void {
    this.buf[this.off + f] = v;
    this.buf[this.off + f + 1] = v >>> 8;
  }

  get flags(): number {
    return this.buf[this.off + VNET_FLAGS]!;
  }
  set flags(v: number) {
    this.buf[this.off + VNET_FLAGS] = v;
  }
  get gsoType(): number {
    return this.buf[this.off + VNET_GSO_TYPE]!;
  }
  set gsoType(v: number) {
    this.buf[this.off + VNET_GSO_TYPE] = v;
  }
  get hdrLen(): number {
    return this.u16(VNET_HDR_LEN_FIELD);
  }
  set hdrLen(v: number) {
    this.w16(VNET_HDR_LEN_FIELD, v);
  }
  get gsoSize(): number {
    return this.u16(VNET_GSO_SIZE);
  }
  set gsoSize(v: number) {
    this.w16(VNET_GSO_SIZE, v);
  }
  get csumStart(): number {
    return this.u16(VNET_CSUM_START);
  }
  set csumStart(v: number) {
    this.w16(VNET_CSUM_START, v);
  }
  get csumOffset(): number {
    return this.u16(VNET_CSUM_OFFSET);
  }
  set csumOffset(v: number) {
    this.w16(VNET_CSUM_OFFSET, v);
  }
  get needsCsum(): boolean {
    return (this.buf[this.off + VNET_FLAGS]! & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0;
  }

  /** Write all six fields. */
  set(flags: number, gsoType: number, hdrLen: number, gsoSize: number, csumStart: number, csumOffset: number): void {
    this.flags = flags;
    this.gsoType = gsoType;
    this.hdrLen = hdrLen;
    this.gsoSize = gsoSize;
    this.csumStart = csumStart;
    this.csumOffset = csumOffset;
  }

  /** The header for a plain packet of `packetLength` bytes: no GSO, no checksum work, hdr_len set. */
  writePlain(packetLength: number): void {
    this.set(0, VIRTIO_NET_HDR_GSO_NONE, packetLength, 0, 0, 0);
  }

  /** "vnet flags 1 gso tcpv4 hdr_len 52 gso_size 1348 csum 20+16". Control plane / tests. */
  describe(): string {
    const t = this.gsoType & ~VIRTIO_NET_HDR_GSO_ECN;
    const name =
      t === VIRTIO_NET_HDR_GSO_NONE ? 'none'
      : t === VIRTIO_NET_HDR_GSO_TCPV4 ? 'tcpv4'
      : t === VIRTIO_NET_HDR_GSO_TCPV6 ? 'tcpv6'
      : t === VIRTIO_NET_HDR_GSO_UDP ? 'udp'
      : t === VIRTIO_NET_HDR_GSO_UDP_L4 ? 'udp_l4'
      : `type ${t}`;
    const ecn = this.gsoType & VIRTIO_NET_HDR_GSO_ECN ? '|ecn' : '';
    return `vnet flags ${this.flags} gso ${name}${ecn} hdr_len ${this.hdrLen} gso_size ${this.gsoSize} csum ${this.csumStart}+${this.csumOffset}`;
  }
}
