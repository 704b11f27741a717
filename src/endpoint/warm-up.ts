/**
 * JIT warm-up: at a tunnel's usual packet rates (a ping every 50 ms, say) the forwarding code
 * would stay in V8's interpreter for a long time, and each packet would pay for it in latency
 * (measured: ~0.6 ms of a ~1.5 ms RTT through two endpoints, bench/latency.bench.ts). So before
 * an endpoint starts, typical packets — UDP, ICMP echo, TCP SYN with MSS, both families, both
 * directions — are pushed through a throwaway pipeline built from the same config (never
 * started: no socket, no device). Prototype methods share their feedback and optimized code
 * across instances, so the real pipeline starts hot.
 */
import type { Config } from '../config/config.ts';
import { DropReason } from '../base/drop-reason.ts';
import type { PacketBuffer, PacketPools } from '../base/pool.ts';
import type { Transport } from '../transport/transport.ts';
import type { PacketDevice } from '../device/device.ts';
import { ICMP_ECHO_REQUEST, ICMPV4_HEADER_LEN, Icmpv4Packet } from '../wire/icmpv4.ts';
import { ICMPV6_ECHO_REQUEST, Icmpv6Packet } from '../wire/icmpv6.ts';
import { IP_PROTO_ICMP, IP_PROTO_ICMPV6, IP_PROTO_TCP, IP_PROTO_UDP, readV4 } from '../wire/ip.ts';
import { IPV4_DST, IPV4_HEADER_LEN, IPV4_SRC, Ipv4Packet } from '../wire/ipv4.ts';
import { IPV6_DST, IPV6_HEADER_LEN, IPV6_SRC, writeIpv6Header } from '../wire/ipv6.ts';
import { TCP_HEADER_LEN, TCP_OPT_MSS, TCP_SYN, TcpPacket } from '../wire/tcp.ts';
import { UDP_HEADER_LEN, UdpPacket } from '../wire/udp.ts';
import { EMPTY_BYTES } from '../wire/view.ts';
import type { Pipeline } from './pipeline.ts';

const PAYLOAD = 64;
const TTL = 64;
const SRC_PORT = 40000;
const DST_PORT = 5201;

/** Kinds of packets per family: UDP, ICMP echo request, TCP SYN with an MSS option. */
const UDP = 0;
const ECHO = 1;
const SYN = 2;
/** MSS option: kind, length 4, 1460. */
const MSS_1460 = Uint8Array.from([TCP_OPT_MSS, 4, 1460 >> 8, 1460 & 0xff]);

function upperLength(kind: number): number {
  if (kind === UDP) return UDP_HEADER_LEN + PAYLOAD;
  if (kind === ECHO) return ICMPV4_HEADER_LEN + PAYLOAD; // ICMPv6's echo header is as long
  return TCP_HEADER_LEN + MSS_1460.length;
}

function protocolOf(kind: number, family: 4 | 6): number {
  if (kind === UDP) return IP_PROTO_UDP;
  if (kind === ECHO) return family === 4 ? IP_PROTO_ICMP : IP_PROTO_ICMPV6;
  return IP_PROTO_TCP;
}

function buildV4(kind: number, src: Uint8Array, dst: Uint8Array): Buffer {
  const upper = upperLength(kind);
  const b = Buffer.alloc(IPV4_HEADER_LEN + upper);
  Ipv4Packet.emit(
    {
      src: readV4(src, 0),
      dst: readV4(dst, 0),
      protocol: protocolOf(kind, 4),
      ttl: TTL,
      dscp: 0,
      ecn: 0,
      ident: 0,
      dontFragment: true,
      moreFragments: false,
      fragOffset: 0,
      payloadLength: upper,
      options: EMPTY_BYTES,
    },
    b,
    0,
  );
  fillUpper(b, IPV4_HEADER_LEN, kind, 4);
  return b;
}

function buildV6(kind: number, src: Uint8Array, dst: Uint8Array): Buffer {
  const upper = upperLength(kind);
  const b = Buffer.alloc(IPV6_HEADER_LEN + upper);
  writeIpv6Header(b, 0, upper, protocolOf(kind, 6), TTL, src, 0, dst, 0);
  fillUpper(b, IPV6_HEADER_LEN, kind, 6);
  return b;
}

/** The upper-layer header at b[u] (payload zeros), checksum filled for the addresses in b. */
function fillUpper(b: Buffer, u: number, kind: number, family: 4 | 6): void {
  const len = b.length - u;
  const srcOff = family === 4 ? IPV4_SRC : IPV6_SRC;
  const dstOff = family === 4 ? IPV4_DST : IPV6_DST;
  if (kind === UDP) {
    const udp = new UdpPacket(b, u, len);
    udp.srcPort = SRC_PORT;
    udp.dstPort = DST_PORT;
    udp.length = len;
    if (family === 4) udp.fillChecksumV4(b, srcOff, dstOff);
    else udp.fillChecksumV6(b, srcOff, dstOff);
  } else if (kind === ECHO && family === 4) {
    Icmpv4Packet.emit({ type: ICMP_ECHO_REQUEST, code: 0, rest: 0, ident: 0x7777, seq: 1, mtu: 0, pointer: 0, payloadLength: PAYLOAD }, b, u);
    new Icmpv4Packet(b, u, len).fillChecksum();
  } else if (kind === ECHO) {
    const m = new Icmpv6Packet(b, u, len);
    m.emit({ type: ICMPV6_ECHO_REQUEST, code: 0, identifier: 0x7777, sequence: 1, bodyLength: PAYLOAD });
    m.fillChecksum(srcOff, dstOff, b);
  } else {
    TcpPacket.emit({ srcPort: SRC_PORT, dstPort: DST_PORT, seq: 1, ack: 0, flags: TCP_SYN, window: 64240, urgent: 0, options: MSS_1460, payloadLength: 0 }, b, u);
    const tcp = new TcpPacket(b, u, len);
    if (family === 4) tcp.fillChecksumV4(b, srcOff, dstOff);
    else tcp.fillChecksumV6(b, srcOff, dstOff);
  }
}

/** An address inside a prefix: its first host (the network address + 1). */
function inside(p: { bytes: Uint8Array }): Uint8Array {
  const a = Uint8Array.from(p.bytes);
  a[a.length - 1]! |= 1;
  return a;
}

/**
 * Push about `budget` packets of the mix through `pipeline` (a throwaway one: the device and
 * transport are replaced by sinks here). Returns how many packets went through.
 */
export function exercisePipeline(pipeline: Pipeline, pools: PacketPools, config: Config, budget: number): number {
  const packets: { bytes: Buffer; peer: number }[] = [];
  config.peers.forEach((peer, index) => {
    for (const family of [4, 6] as const) {
      const remote = peer.routes.find((r) => r.family === family);
      const local = config.interface.address.find((a) => a.family === family);
      if (remote === undefined || local === undefined) continue;
      const there = inside(remote);
      for (let kind = 0; kind < 3; kind++) {
        const build = family === 4 ? buildV4 : buildV6;
        packets.push({ bytes: build(kind, local.bytes, there), peer: -1 }); // from the TUN to the peer
        packets.push({ bytes: build(kind, there, local.bytes), peer: index }); // from the peer to the TUN
      }
    }
  });
  if (packets.length === 0) return 0;
  const rounds = Math.ceil(budget / packets.length);
  pipeline.device = { mtu: config.interface.mtu, write: () => true } as unknown as PacketDevice;
  pipeline.transport = {
    send(p: PacketBuffer) {
      p.release();
      return DropReason.None;
    },
  } as unknown as Transport;
  const batch: PacketBuffer[] = [];
  let n = 0;
  for (let r = 0; r < rounds; r++) {
    for (const { bytes, peer } of packets) {
      const p = pools.small.acquire();
      if (p === null) return n;
      p.fill(bytes);
      p.tag = peer;
      batch[0] = p;
      if (peer < 0) pipeline.fromDevice(batch, 1);
      else pipeline.fromTransport(batch, 1);
      n++;
    }
  }
  pipeline.device = null;
  pipeline.transport = null;
  return n;
}
