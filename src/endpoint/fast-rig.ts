/**
 * A fast-path engine on stand-in fds in one thread, traffic made and drained in the same
 * thread: for the worker's warm-up (the engine's own code, I/O included, is hot before the
 * first real packet), bench/zero-alloc.bench.ts (10M packets, heap and GC counts) and
 * test/endpoint/fast-engine.test.ts.
 *
 * In the TUN's place: a datagram socketpair (one datagram = one TUN read or write, virtio header
 * first). In the peer's place: a UDP socket on 127.0.0.1 (GSO out, GRO in, as over a veth); every
 * peer of the core is pointed at it. Traffic goes to loopback only.
 *
 * Rounds, built once from the config (a peer prefix as the far side, the interface address as
 * the near side, each family the config has both of) and re-sent unchanged:
 *  - tunToPeer: a TCP super-packet as a TUN with TSO hands it out (64,000 bytes at the MSS of
 *    the peer's MTU: 48 segments at MTU 1400) plus two plain packets (a NEEDS_CSUM ACK and a
 *    UDP datagram);
 *  - peerToTun: the peer sends 46 in-order TCP segments in one GSO message (the engine receives
 *    them as one GRO chunk and writes one coalesced super-packet) and a UDP datagram.
 * Both sides are drained after every round; counters say what arrived.
 */
import type { PacketPools } from '../base/pool.ts';
import type { Libc } from '../sys/libc.ts';
import { AF_UNIX, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_NONBLOCK, SOL_SOCKET, SO_RCVBUFFORCE, SO_SNDBUFFORCE } from '../sys/linux.ts';
import { AddressTable, SysMemory } from '../sys/memory.ts';
import { MmsgVector, writeIovecAt } from '../sys/msg.ts';
import {
  VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_TCPV6, VnetHdr, VNET_HDR_LEN, VNET_TCP_CSUM_OFFSET,
} from '../sys/virtio-net-hdr.ts';
import { GsoUdpSocket } from '../transport/udp-gso.ts';
import { fold16, sumShort } from '../wire/checksum.ts';
import { IP_PROTO_TCP, IP_PROTO_UDP, readV4 } from '../wire/ip.ts';
import { IPV4_DST, IPV4_HEADER_LEN, IPV4_SRC, Ipv4Packet } from '../wire/ipv4.ts';
import { IPV6_DST, IPV6_HEADER_LEN, IPV6_SRC, writeIpv6Header } from '../wire/ipv6.ts';
import { TCP_ACK, TCP_HEADER_LEN, TcpPacket } from '../wire/tcp.ts';
import { UDP_HEADER_LEN, UdpPacket } from '../wire/udp.ts';
import { EMPTY_BYTES } from '../wire/view.ts';
import type { DataPlaneCore } from './dataplane-core.ts';
import { FastEngine } from './fast-engine.ts';

const LOOPBACK = Uint8Array.of(127, 0, 0, 1);
const SUPER_PAYLOAD = 64_000;
/** Segments the peer sends per GSO message (46 * 1400 bytes fit one datagram's 65507). */
const PEER_SEGMENTS = 46;
const UDP_PAYLOAD = 1200;
const SOCKET_BUFFER = 8 << 20;

interface FamilyTraffic {
  /** TUN side: [vnet][super-packet], [vnet][ACK], [vnet][UDP] — addresses (boxed once) and lengths. */
  tunAt: AddressTable;
  tunLen: number[];
  /** Peer side: one GSO message (PEER_SEGMENTS segments of segLen) and one plain datagram. */
  peerOff: number;
  peerSegLen: number;
  peerUdpOff: number;
  peerUdpLen: number;
}

export interface RigCounts {
  /** Datagrams the peer received (GRO chunks cut back into datagrams). */
  peerReceived: number;
  /** Packets the TUN side received (a coalesced write counts once) and their IP packets. */
  tunWrites: number;
  /** Packets handed in: TUN side reads the engine will make, peer datagrams sent. */
  tunSent: number;
  peerSent: number;
}

export class FastRig {
  readonly mem: SysMemory;
  readonly engine: FastEngine;
  readonly counts: RigCounts = { peerReceived: 0, tunWrites: 0, tunSent: 0, peerSent: 0 };
  readonly peer: GsoUdpSocket;
  private readonly engineUdp: GsoUdpSocket;
  private readonly tunFd: number;
  private readonly driverFd: number;
  private readonly traffic: FamilyTraffic[] = [];
  private readonly txVec: MmsgVector;
  private readonly rxVec: MmsgVector;
  private readonly drainOff: number;
  private readonly drainAt = new AddressTable(1);
  /** The SysMemory base, boxed (iovecs are written as base + offset). */
  private readonly memAt = new AddressTable(1);
  private closed = false;

  /** Throws when the stand-ins cannot be made (no socketpair, no loopback UDP). */
  constructor(
    readonly libc: Libc,
    readonly core: DataPlaneCore,
  ) {
    const mem = new SysMemory(libc, FastEngine.memoryNeeded() + (2 << 20));
    this.mem = mem;
    const pair = mem.alloc(8);
    if (libc.socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, mem.addr(pair)) < 0) {
      throw new Error(`socketpair: errno ${libc.errno()}`);
    }
    this.tunFd = mem.getI32(pair);
    this.driverFd = mem.getI32(pair + 4);
    for (const fd of [this.tunFd, this.driverFd]) {
      mem.putI32(pair, SOCKET_BUFFER);
      libc.setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, mem.addr(pair), 4);
      libc.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, mem.addr(pair), 4);
    }
    const open = (): GsoUdpSocket => {
      const r = GsoUdpSocket.open(libc, mem, { family: 4, address: LOOPBACK, port: 0, gro: true, sendBuffer: SOCKET_BUFFER, receiveBuffer: SOCKET_BUFFER });
      if (!r.ok) throw new Error(`loopback UDP: ${r.reason}`);
      return r.sock;
    };
    this.engineUdp = open();
    this.peer = open();
    for (let i = 0; i < core.peers.length; i++) {
      if (core.peers[i] !== undefined) core.setPeerEndpoint(i, { family: 4, address: LOOPBACK, port: this.peer.port });
    }
    this.engine = new FastEngine(core, { libc, mem, tunFd: this.tunFd, udp: this.engineUdp, wakeFd: -1 });
    this.txVec = new MmsgVector(mem, 2, 1);
    this.rxVec = new MmsgVector(mem, 16, 1);
    this.drainOff = mem.alloc(16 * 65536, 64);
    this.drainAt.set(0, mem.addr(this.drainOff));
    this.memAt.set(0, mem.base);
    for (let i = 0; i < 16; i++) {
      this.rxVec.setIov(i, 0, mem.addr(this.drainOff + i * 65536), 65536);
      this.rxVec.setIovCount(i, 1);
    }
    this.buildTraffic();
  }

  /** The engine's UDP port on 127.0.0.1 (where a peer sends to). */
  get enginePort(): number {
    return this.engineUdp.port;
  }

  /** Families with traffic (0 when the config has no peer prefix and interface address of one family). */
  get families(): number {
    return this.traffic.length;
  }

  /** The pools the engine uses (the core's). */
  get pools(): PacketPools {
    return this.core.pools;
  }

  /** One round TUN -> peer for every family: write, let the engine move it, drain the peer. */
  tunToPeer(): void {
    const libc = this.libc;
    for (const t of this.traffic) {
      for (let k = 0; k < t.tunLen.length; k++) {
        if (libc.write(this.driverFd, t.tunAt.get(k), t.tunLen[k]!) > 0) this.counts.tunSent++;
      }
    }
    this.pump();
  }

  /** One round peer -> TUN for every family: a GSO message of TCP segments and a UDP datagram. */
  peerToTun(): void {
    const vec = this.txVec;
    for (const t of this.traffic) {
      const dv = this.mem.dv;
      writeIovecAt(dv, vec.iovOffOf(0, 0), this.memAt.get(0), t.peerOff, t.peerSegLen * PEER_SEGMENTS);
      vec.setIovCount(0, 1);
      vec.setSegmentSize(0, t.peerSegLen);
      writeIovecAt(dv, vec.iovOffOf(1, 0), this.memAt.get(0), t.peerUdpOff, t.peerUdpLen);
      vec.setIovCount(1, 1);
      vec.clearControl(1);
      const n = this.peer.sendmmsg(vec, this.peer.gso ? 2 : 1);
      if (n > 0) this.counts.peerSent += (n >= 1 ? PEER_SEGMENTS : 0) + (n >= 2 ? 1 : 0);
    }
    this.pump();
  }

  /** Let the engine run until both sides are quiet, draining what comes out. */
  pump(): void {
    for (let idle = 0; idle < 3; ) {
      this.engine.runOnce(0);
      const got = this.drain();
      idle = got === 0 ? idle + 1 : 0;
    }
  }

  /** Read what the engine sent to the peer and wrote to the TUN; returns how much. */
  private drain(): number {
    let got = 0;
    for (;;) {
      const n = this.peer.recvmmsg(this.rxVec, 16);
      if (n <= 0) break;
      for (let i = 0; i < n; i++) {
        const len = this.rxVec.received(i);
        const seg = this.rxVec.groSegmentSize(i) || len;
        this.counts.peerReceived += Math.ceil(len / seg);
        got++;
      }
    }
    for (;;) {
      const r = this.libc.read(this.driverFd, this.drainAt.get(0), 65536);
      if (r < 0) break; // EAGAIN: drained
      this.counts.tunWrites++;
      got++;
    }
    return got;
  }

  /** Stop the engine (slots back to the pool) and close the stand-in fds. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.engine.close();
    this.engineUdp.close();
    this.peer.close();
    this.libc.close(this.tunFd);
    this.libc.close(this.driverFd);
  }

  // ---------------------------------------------------------------- traffic, built once

  private buildTraffic(): void {
    const cfg = this.core.config;
    for (const family of [4, 6] as const) {
      const remote = cfg.peers[0]?.routes.find((r) => r.family === family);
      const local = cfg.interface.address.find((a) => a.family === family);
      if (remote === undefined || local === undefined) continue;
      const far = Uint8Array.from(remote.bytes);
      far[far.length - 1]! |= 1;
      const near = local.bytes;
      const mem = this.mem;
      const ihl = family === 4 ? IPV4_HEADER_LEN : IPV6_HEADER_LEN;
      const mss = Math.min(cfg.peers[0]!.mtu, cfg.interface.mtu) - ihl - TCP_HEADER_LEN;
      // TUN side: the super-packet (NEEDS_CSUM, pseudo-header sum in the field, as Linux hands it out)
      const superLen = ihl + TCP_HEADER_LEN + SUPER_PAYLOAD;
      const s = mem.alloc(VNET_HDR_LEN + superLen + 8, 8) + 6; // IP 4-byte aligned past the 10-byte header
      this.tcp(family, mem.u8, s + VNET_HDR_LEN, near, far, 1, SUPER_PAYLOAD, false);
      new VnetHdr(mem.u8, s).set(
        VIRTIO_NET_HDR_F_NEEDS_CSUM,
        family === 4 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6,
        ihl + TCP_HEADER_LEN,
        mss,
        ihl,
        VNET_TCP_CSUM_OFFSET,
      );
      // a bare ACK with NEEDS_CSUM and a UDP datagram, plain headers
      const ackLen = ihl + TCP_HEADER_LEN;
      const a = mem.alloc(VNET_HDR_LEN + ackLen + 8, 8) + 6;
      this.tcp(family, mem.u8, a + VNET_HDR_LEN, near, far, 7, 0, false);
      new VnetHdr(mem.u8, a).set(VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, ackLen, 0, ihl, VNET_TCP_CSUM_OFFSET);
      const udpLen = ihl + UDP_HEADER_LEN + UDP_PAYLOAD;
      const u = mem.alloc(VNET_HDR_LEN + udpLen + 8, 8) + 6;
      this.udp(family, mem.u8, u + VNET_HDR_LEN, near, far);
      new VnetHdr(mem.u8, u).writePlain(udpLen);
      // peer side: in-order segments with valid checksums, contiguous at a fixed stride
      const segLen = ihl + TCP_HEADER_LEN + mss;
      const p = mem.alloc(segLen * PEER_SEGMENTS, 8);
      for (let i = 0; i < PEER_SEGMENTS; i++) this.tcp(family, mem.u8, p + i * segLen, far, near, 1 + i * mss, mss, true);
      const pu = mem.alloc(udpLen, 8);
      this.udp(family, mem.u8, pu, far, near);
      const tunAt = new AddressTable(3);
      [s, a, u].forEach((off, k) => tunAt.set(k, mem.addr(off)));
      this.traffic.push({
        tunAt,
        tunLen: [VNET_HDR_LEN + superLen, VNET_HDR_LEN + ackLen, VNET_HDR_LEN + udpLen],
        peerOff: p,
        peerSegLen: segLen,
        peerUdpOff: pu,
        peerUdpLen: udpLen,
      });
    }
    // the peer sends to the engine's socket
    for (let i = 0; i < 2; i++) this.txVec.setNameLen(i, this.writeEngineName(this.txVec.nameOffOf(i)));
  }

  private writeEngineName(off: number): number {
    const u8 = this.mem.u8;
    u8.fill(0, off, off + 16);
    u8[off] = 2; // AF_INET, little-endian
    u8[off + 2] = this.engineUdp.port >>> 8;
    u8[off + 3] = this.engineUdp.port & 0xff;
    u8.set(LOOPBACK, off + 4);
    return 16;
  }

  /** IP + TCP (ACK) + payload at b[off]; `full`: a complete checksum, else the pseudo-header sum only. */
  private tcp(family: 4 | 6, b: Uint8Array, off: number, src: Uint8Array, dst: Uint8Array, seq: number, payload: number, full: boolean): void {
    const ihl = this.ip(family, b, off, src, dst, IP_PROTO_TCP, TCP_HEADER_LEN + payload);
    const t = off + ihl;
    TcpPacket.emit({ srcPort: 40000, dstPort: 5201, seq, ack: 1, flags: TCP_ACK, window: 65000, urgent: 0, options: EMPTY_BYTES, payloadLength: payload }, b, t);
    for (let i = 0; i < payload; i++) b[t + TCP_HEADER_LEN + i] = (seq + i) & 0xff;
    const tcp = new TcpPacket(b, t, TCP_HEADER_LEN + payload);
    const so = off + (family === 4 ? IPV4_SRC : IPV6_SRC);
    const dO = off + (family === 4 ? IPV4_DST : IPV6_DST);
    if (full) {
      if (family === 4) tcp.fillChecksumV4(b, so, dO);
      else tcp.fillChecksumV6(b, so, dO);
    } else {
      tcp.checksum = fold16(sumShort(b, so, family === 4 ? 8 : 32, IP_PROTO_TCP + TCP_HEADER_LEN + payload));
    }
  }

  private udp(family: 4 | 6, b: Uint8Array, off: number, src: Uint8Array, dst: Uint8Array): void {
    const ihl = this.ip(family, b, off, src, dst, IP_PROTO_UDP, UDP_HEADER_LEN + UDP_PAYLOAD);
    const u = new UdpPacket(b, off + ihl, UDP_HEADER_LEN + UDP_PAYLOAD);
    u.srcPort = 40001;
    u.dstPort = 5202;
    u.length = UDP_HEADER_LEN + UDP_PAYLOAD;
    if (family === 4) u.fillChecksumV4(b, off + IPV4_SRC, off + IPV4_DST);
    else u.fillChecksumV6(b, off + IPV6_SRC, off + IPV6_DST);
  }

  private ip(family: 4 | 6, b: Uint8Array, off: number, src: Uint8Array, dst: Uint8Array, proto: number, payload: number): number {
    if (family === 6) {
      writeIpv6Header(b, off, payload, proto, 64, src, 0, dst, 0);
      return IPV6_HEADER_LEN;
    }
    return Ipv4Packet.emit(
      {
        src: readV4(src, 0), dst: readV4(dst, 0), protocol: proto, ttl: 64, dscp: 0, ecn: 0, ident: 0x4242, dontFragment: true,
        moreFragments: false, fragOffset: 0, payloadLength: payload, options: EMPTY_BYTES,
      },
      b,
      off,
    );
  }
}
