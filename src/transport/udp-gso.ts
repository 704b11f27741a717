/**
 * GsoUdpSocket: a UDP socket for the fast path at the level of raw fd operations: sendmsg /
 * sendmmsg with UDP_SEGMENT (GSO: one call hands the kernel many datagrams of one size) and
 * recvmmsg with UDP_GRO (the kernel hands back runs of same-size datagrams from one sender as one
 * chunk of up to ~64 KiB, with the segment size in a control message).
 *
 * The messages themselves are MmsgVectors (src/sys/msg.ts) the caller fills with addresses of
 * memory that does not move; this class owns the fd, its options and the calls:
 *
 *   const r = GsoUdpSocket.open(libc, mem, { family: 4, address: Uint8Array.of(10,0,0,1), port: 6080, gro: true });
 *   const tx = new MmsgVector(mem, 2, 2 * 64);          // 2 messages, up to 128 iovecs each
 *   ... tx.setIov(0, k, addr, len); tx.setIovCount(0, n); tx.setSegmentSize(0, 1400);
 *   r.sock.sendmmsg(tx, 1);
 *   const rx = new MmsgVector(mem, 16, 1);               // 16 chunks of up to 64 KiB
 *   const n = r.sock.recvmmsg(rx, 16);                   // rx.received(i), rx.groSegmentSize(i)
 *
 * Limits: a datagram (so one GSO message) carries at most 65507 bytes over IPv4 (65527 over
 * IPv6), so a 64 KiB TCP super-packet cut at MTU 1400 needs two messages; the kernel also caps
 * the segments per GSO message (UDP_MAX_SEGMENTS, 64 on older kernels).
 */
import type { Libc } from '../sys/libc.ts';
import {
  AF_INET, AF_INET6, EAGAIN, errnoName, IPPROTO_IPV6, IPV6_V6ONLY, SO_RCVBUFFORCE, SO_SNDBUFFORCE,
  SOCK_CLOEXEC, SOCK_DGRAM, SOCK_NONBLOCK, SOL_SOCKET, SOL_UDP, UDP_GRO, UDP_SEGMENT,
} from '../sys/linux.ts';
import type { SysMemory } from '../sys/memory.ts';
import type { MmsgVector } from '../sys/msg.ts';
import { NAME_SPACE } from '../sys/msg.ts';
import { sockaddrPort, writeSockaddrIn, writeSockaddrIn6 } from '../sys/sockaddr.ts';

/** Most bytes in one UDP datagram over IPv4 (65535 - 20 - 8) and over IPv6 (65535 - 8). */
export const UDP_MAX_PAYLOAD_V4 = 65507;
export const UDP_MAX_PAYLOAD_V6 = 65527;
/** Segments per GSO message the kernel accepts everywhere we run (UDP_MAX_SEGMENTS >= 64). */
export const UDP_GSO_MAX_SEGMENTS = 64;

export interface GsoUdpOptions {
  family: 4 | 6;
  /** Local address to bind: 4 or 16 bytes (all zero: any). */
  address: Uint8Array;
  /** Local port (0: the kernel picks; see .port). */
  port: number;
  /** Enable UDP_GRO on receive (default true). */
  gro?: boolean;
  /** SO_SNDBUFFORCE / SO_RCVBUFFORCE in bytes (needs CAP_NET_ADMIN; ignored when refused). */
  sendBuffer?: number;
  receiveBuffer?: number;
  /** IPv6 only: false = also carry IPv4 (peers as ::ffff:a.b.c.d). Default true. */
  v6only?: boolean;
}

export type GsoUdpResult = { ok: true; sock: GsoUdpSocket } | { ok: false; reason: string };

export class GsoUdpSocket {
  /** errno of the last failed call (EAGAIN is reported too: the caller decides). */
  lastErrno = 0;
  private readonly scratch: number;
  private closed = false;

  private constructor(
    readonly libc: Libc,
    readonly mem: SysMemory,
    readonly fd: number,
    readonly family: 4 | 6,
    /** The bound port. */
    readonly port: number,
    /** UDP_SEGMENT is available (probed with setsockopt). */
    readonly gso: boolean,
    /** UDP_GRO is on. */
    readonly gro: boolean,
    scratch: number,
  ) {
    this.scratch = scratch;
  }

  /** Wrap a socket opened by open() in another thread of this process (fds are process-wide). */
  static adopt(libc: Libc, mem: SysMemory, fd: number, family: 4 | 6, port: number, gso: boolean, gro: boolean): GsoUdpSocket {
    return new GsoUdpSocket(libc, mem, fd, family, port, gso, gro, mem.alloc(NAME_SPACE + 8));
  }

  static open(libc: Libc, mem: SysMemory, opts: GsoUdpOptions): GsoUdpResult {
    const want = opts.family === 4 ? 4 : 16;
    if (opts.address.length !== want) return { ok: false, reason: `IPv${opts.family} address must be ${want} bytes` };
    const fd = libc.socket(opts.family === 4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return { ok: false, reason: `socket: ${errnoName(libc.errno())}` };
    const scratch = mem.alloc(NAME_SPACE + 8);
    const fail = (what: string): GsoUdpResult => {
      const e = libc.errno();
      libc.close(fd);
      return { ok: false, reason: `${what}: ${errnoName(e)}` };
    };
    const setInt = (level: number, name: number, v: number): boolean => {
      mem.putI32(scratch, v);
      return libc.setsockopt(fd, level, name, mem.addr(scratch), 4) === 0;
    };
    if (opts.family === 6 && !setInt(IPPROTO_IPV6, IPV6_V6ONLY, opts.v6only === false ? 0 : 1)) return fail('IPV6_V6ONLY');
    if (opts.sendBuffer) setInt(SOL_SOCKET, SO_SNDBUFFORCE, opts.sendBuffer);
    if (opts.receiveBuffer) setInt(SOL_SOCKET, SO_RCVBUFFORCE, opts.receiveBuffer);
    const len =
      opts.family === 4
        ? writeSockaddrIn(mem.u8, scratch, ((opts.address[0]! << 24) | (opts.address[1]! << 16) | (opts.address[2]! << 8) | opts.address[3]!) >>> 0, opts.port)
        : writeSockaddrIn6(mem.u8, scratch, opts.address, 0, opts.port);
    if (libc.bind(fd, mem.addr(scratch), len) < 0) return fail(`bind port ${opts.port}`);
    mem.putU32(scratch + NAME_SPACE, NAME_SPACE);
    if (libc.getsockname(fd, mem.addr(scratch), mem.addr(scratch + NAME_SPACE)) < 0) return fail('getsockname');
    const port = sockaddrPort(mem.u8, scratch);
    const gso = setInt(SOL_UDP, UDP_SEGMENT, 0);
    const gro = (opts.gro ?? true) && setInt(SOL_UDP, UDP_GRO, 1);
    if ((opts.gro ?? true) && !gro) return fail('UDP_GRO');
    return { ok: true, sock: new GsoUdpSocket(libc, mem, fd, opts.family, port, gso, gro, scratch) };
  }

  /**
   * connect(2) to a peer (4 or 16 address bytes): afterwards messages may go without a name
   * (msg_namelen 0) and plain write(2) works. Returns 0 or -1 (lastErrno).
   */
  connect(address: Uint8Array, port: number): number {
    const s = this.scratch;
    const len =
      this.family === 4
        ? writeSockaddrIn(this.mem.u8, s, ((address[0]! << 24) | (address[1]! << 16) | (address[2]! << 8) | address[3]!) >>> 0, port)
        : writeSockaddrIn6(this.mem.u8, s, address, 0, port);
    const r = this.libc.connect(this.fd, this.mem.addr(s), len);
    if (r < 0) this.lastErrno = this.libc.errno();
    return r;
  }

  /** sendmsg of message i of `vec`: bytes sent, or -1 (lastErrno). */
  sendmsg(vec: MmsgVector, i: number): number {
    const n = this.libc.sendmsg(this.fd, vec.msgAddr(i), 0);
    if (n < 0) this.lastErrno = this.libc.errno();
    return n;
  }

  /** sendmmsg of the first `count` messages: how many went (msg_len of each in vec), or -1. */
  sendmmsg(vec: MmsgVector, count: number): number {
    const n = this.libc.sendmmsg(this.fd, vec.addr, count, 0);
    if (n < 0) this.lastErrno = this.libc.errno();
    return n;
  }

  /**
   * recvmmsg into the first `count` messages of `vec` (their iovecs set by the caller); resets
   * each message's name and control lengths first (the kernel overwrites them). Returns how
   * many arrived, 0 when none was waiting (EAGAIN), or -1 on another error (lastErrno).
   */
  recvmmsg(vec: MmsgVector, count: number): number {
    for (let i = 0; i < count; i++) vec.prepareReceive(i);
    const n = this.libc.recvmmsg(this.fd, vec.addr, count, 0, 0);
    if (n < 0) {
      const e = this.libc.errno();
      this.lastErrno = e;
      return e === EAGAIN ? 0 : -1;
    }
    return n;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.libc.close(this.fd);
  }
}
