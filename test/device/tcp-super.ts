/**
 * Test helper: TCP super-packets as a Linux TUN with offloads hands them out (virtio header with
 * NEEDS_CSUM, gso_type, gso_size, csum_start/offset; IP header complete; the TCP checksum field
 * holding only the folded pseudo-header sum over the whole TCP length), and plain segments with
 * valid checksums. Built with the wire emitters, addresses fixed per family.
 */
import { Ipv4Packet } from '../../src/wire/ipv4.ts';
import { writeIpv6Header } from '../../src/wire/ipv6.ts';
import { TcpPacket, TCP_ACK, TCP_CWR, TCP_FIN, TCP_PSH } from '../../src/wire/tcp.ts';
import { parseAddress } from '../../src/wire/address-text.ts';
import { fold, pseudoHeaderSumV4, pseudoHeaderSumV6 } from '../../src/wire/checksum.ts';
import {
  VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_TCPV6, VnetHdr, VNET_HDR_LEN,
} from '../../src/sys/virtio-net-hdr.ts';

export const SRC4 = 0x0a090101; // 10.9.1.1
export const DST4 = 0x0a090201; // 10.9.2.1
export const SRC6 = Uint8Array.from([0xfd, 0, 0, 0x91, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
export const DST6 = Uint8Array.from([0xfd, 0, 0, 0x92, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
/** NOP NOP TS(val, ecr): what Linux sends on an established connection. */
export function tsOption(val: number, ecr: number): Uint8Array {
  const o = new Uint8Array(12);
  o[0] = 1;
  o[1] = 1;
  o[2] = 8;
  o[3] = 10;
  new DataView(o.buffer).setUint32(4, val);
  new DataView(o.buffer).setUint32(8, ecr);
  return o;
}

export interface TcpSpec {
  v6: boolean;
  payload: Uint8Array;
  seq?: number;
  ack?: number;
  flags?: number;
  window?: number;
  options?: Uint8Array;
  ident?: number;
  ttl?: number;
  tos?: number;
  df?: boolean;
  srcPort?: number;
  dstPort?: number;
  /** Addresses: uint32 for IPv4, 16 bytes for IPv6 (default SRC4/DST4, SRC6/DST6). */
  src?: number | Uint8Array;
  dst?: number | Uint8Array;
}

/** 16 bytes of an IPv6 address in text. */
export function addr6(text: string): Uint8Array {
  return parseAddress(text).bytes;
}

/** The segments of a stream as a sender's TSO would cut them (FIN/PSH last, CWR first). */
export function streamSegments(spec: TcpSpec, mss: number): TcpSpec[] {
  const out: TcpSpec[] = [];
  const n = Math.ceil(spec.payload.length / mss);
  for (let i = 0; i < n; i++) {
    let f = spec.flags ?? TCP_ACK;
    if (i !== n - 1) f &= ~(TCP_FIN | TCP_PSH);
    if (i !== 0) f &= ~TCP_CWR;
    out.push({
      ...spec, payload: spec.payload.subarray(i * mss, (i + 1) * mss), seq: ((spec.seq ?? 1000) + i * mss) >>> 0, flags: f,
      ident: ((spec.ident ?? 0x1234) + i) & 0xffff,
    });
  }
  return out;
}

/** Write IP + TCP header + payload at buf[off]; returns [packet length, IP header length]. */
function writeTcp(spec: TcpSpec, buf: Uint8Array, off: number): [number, number] {
  const opts = spec.options ?? new Uint8Array(0);
  const thl = 20 + ((opts.length + 3) & ~3);
  const tcpLen = thl + spec.payload.length;
  let ihl: number;
  if (spec.v6) {
    const src = spec.src instanceof Uint8Array ? spec.src : SRC6;
    const dst = spec.dst instanceof Uint8Array ? spec.dst : DST6;
    writeIpv6Header(buf, off, tcpLen, 6, spec.ttl ?? 64, src, 0, dst, 0, spec.tos ?? 0, 0x12345);
    ihl = 40;
  } else {
    ihl = Ipv4Packet.emit(
      {
        src: typeof spec.src === 'number' ? spec.src : SRC4, dst: typeof spec.dst === 'number' ? spec.dst : DST4, protocol: 6, ttl: spec.ttl ?? 64, dscp: (spec.tos ?? 0) >> 2, ecn: (spec.tos ?? 0) & 3,
        ident: spec.ident ?? 0x1234, dontFragment: spec.df ?? true, moreFragments: false, fragOffset: 0,
        payloadLength: tcpLen, options: new Uint8Array(0),
      },
      buf,
      off,
    );
  }
  TcpPacket.emit(
    {
      srcPort: spec.srcPort ?? 40000, dstPort: spec.dstPort ?? 5201, seq: spec.seq ?? 1000, ack: spec.ack ?? 777,
      flags: spec.flags ?? TCP_ACK, window: spec.window ?? 502, urgent: 0, options: opts, payloadLength: spec.payload.length,
    },
    buf,
    off + ihl,
  );
  buf.set(spec.payload, off + ihl + thl);
  return [ihl + tcpLen, ihl];
}

function pseudo(spec: TcpSpec, buf: Uint8Array, off: number, tcpLen: number): number {
  return spec.v6
    ? pseudoHeaderSumV6(buf, off + 8, off + 24, 6, tcpLen)
    : pseudoHeaderSumV4(buf, off + 12, off + 16, 6, tcpLen);
}

/**
 * A super-packet at buf[off] with its virtio header at buf[off - 10], as the kernel writes it.
 * Returns the IP packet length.
 */
export function writeSuper(spec: TcpSpec, mss: number, buf: Uint8Array, off: number): number {
  const [len, ihl] = writeTcp(spec, buf, off);
  const t = new TcpPacket(buf, off + ihl, len - ihl);
  t.checksum = fold(pseudo(spec, buf, off, len - ihl));
  new VnetHdr(buf, off - VNET_HDR_LEN).set(
    VIRTIO_NET_HDR_F_NEEDS_CSUM,
    spec.v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4,
    ihl + t.headerLength,
    mss,
    ihl,
    16,
  );
  return len;
}

/** A plain, valid TCP segment at buf[off]; returns its length. */
export function writeSegment(spec: TcpSpec, buf: Uint8Array, off: number): number {
  const [len, ihl] = writeTcp(spec, buf, off);
  const t = new TcpPacket(buf, off + ihl, len - ihl);
  if (spec.v6) t.fillChecksumV6(buf, off + 8, off + 24);
  else t.fillChecksumV4(buf, off + 12, off + 16);
  return len;
}

/** Deterministic payload bytes. */
export function pattern(n: number, seed = 1): Uint8Array {
  const p = new Uint8Array(n);
  let x = seed * 2654435761;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    p[i] = x >>> 24;
  }
  return p;
}
