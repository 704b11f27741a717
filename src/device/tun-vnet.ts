/**
 * VnetTun: a Linux TUN opened for the fast path, at the level of raw fd operations.
 *
 * Opened with IFF_TUN | IFF_NO_PI | IFF_VNET_HDR (optionally IFF_MULTI_QUEUE) and offloads
 * switched on with TUNSETOFFLOAD (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 by default), so every
 * read returns a 10-byte virtio_net_hdr followed by an IP packet that may be a TCP super-packet
 * of up to 64 KiB (gso_type TCPV4/TCPV6, gso_size = MSS), and every write must start with such a
 * header (VnetHdr.writePlain for a plain packet; a GSO header for a coalesced one).
 *
 * Everything here takes addresses (numbers) of memory that does not move: pool slabs
 * (libc.address(pool.bytes) + offset) or SysMemory regions. The fd is non-blocking: wait for it
 * in a PollSet. Interface configuration (addresses, MTU, up, namespace) is not done here: use
 * iproute2 as tun.ts does; the fd stays valid when the interface moves to another namespace.
 *
 * Reads: `read` one packet, or `readBatch` until EAGAIN or the batch is full (a TUN has no
 * recvmmsg). Writes: `write` of a contiguous [vnet header][packet] (the header can sit in the
 * slot's headroom), `writePacket` with the header elsewhere (2 iovecs), `writev` for a
 * coalesced super-packet ([vnet + headers][payload] ...).
 */
import type { Libc } from '../sys/libc.ts';
import {
  errnoName, EAGAIN, IFF_MULTI_QUEUE, IFF_NO_PI, IFF_TUN, IFF_VNET_HDR, O_CLOEXEC, O_NONBLOCK, O_RDWR,
  TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, TUNGETIFF, TUNGETVNETHDRSZ, TUNSETIFF, TUNSETOFFLOAD,
} from '../sys/linux.ts';
import type { SysMemory } from '../sys/memory.ts';
import { IOVEC_SIZE, writeIovec } from '../sys/msg.ts';
import { IFREQ_SIZE, ifreqFlags, ifreqName, writeIfreq } from '../sys/ifreq.ts';
import { VNET_HDR_LEN } from '../sys/virtio-net-hdr.ts';
import { TunError, type TunOpener } from './tun-setup.ts';

export const TUN_DEFAULT_OFFLOADS = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
/** Largest read: virtio header + the largest IP packet (IPv6 40 + 65535 payload). */
export const VNET_TUN_MAX_READ = VNET_HDR_LEN + 40 + 65535;

export interface VnetTunOptions {
  /** Interface name (at most 15 bytes); '' or absent: the kernel picks tunN. */
  name?: string;
  /** TUNSETOFFLOAD flags; default TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6. */
  offloads?: number;
  /** IFF_MULTI_QUEUE: more fds can attach to the same interface later (one per thread). */
  multiQueue?: boolean;
  /** Path of the clone device (tests point it elsewhere to see the failure). */
  devicePath?: string;
}

export type VnetTunResult = { ok: true; tun: VnetTun } | { ok: false; reason: string };

/** Reasons open() gives when the kernel refused the virtio header or the offloads (the portable path can still run). */
const OFFLOAD_REFUSALS = /offloads refused|did not keep IFF_VNET_HDR|virtio header size/;

export class VnetTun {
  /** errno of the last failed call (0 after success). */
  lastErrno = 0;
  private readonly iovOff: number;
  private closed = false;

  private constructor(
    readonly libc: Libc,
    readonly mem: SysMemory,
    readonly fd: number,
    /** Interface name the kernel reports. */
    readonly name: string,
    /** Interface flags the kernel reports (TUNGETIFF). */
    readonly flags: number,
    readonly offloads: number,
  ) {
    this.iovOff = mem.alloc(2 * IOVEC_SIZE);
  }

  /**
   * Create (or attach to, with multiQueue) a TUN interface. Never throws: a failure closes what
   * was opened and returns a one-line reason naming the step and errno.
   */
  static open(libc: Libc, mem: SysMemory, opts: VnetTunOptions = {}): VnetTunResult {
    const path = opts.devicePath ?? '/dev/net/tun';
    const name = opts.name ?? '';
    const offloads = opts.offloads ?? TUN_DEFAULT_OFFLOADS;
    const flags = IFF_TUN | IFF_NO_PI | IFF_VNET_HDR | (opts.multiQueue ? IFF_MULTI_QUEUE : 0);
    const ifr = mem.alloc(IFREQ_SIZE);
    if (!writeIfreq(mem.u8, ifr, name, flags)) return { ok: false, reason: `bad interface name "${name}"` };
    const fd = libc.open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC, 0);
    if (fd < 0) return { ok: false, reason: `open ${path}: ${errnoName(libc.errno())}` };
    const fail = (what: string): VnetTunResult => {
      const e = libc.errno();
      libc.close(fd);
      return { ok: false, reason: `${what}: ${errnoName(e)}` };
    };
    if (libc.ioctl(fd, TUNSETIFF, mem.addr(ifr)) < 0) return fail(`TUNSETIFF ${name || '(kernel name)'}`);
    if (libc.ioctl(fd, TUNGETIFF, mem.addr(ifr)) < 0) return fail('TUNGETIFF');
    const gotName = ifreqName(mem.u8, ifr);
    const gotFlags = ifreqFlags(mem.u8, ifr);
    if ((gotFlags & IFF_VNET_HDR) === 0) {
      libc.close(fd);
      return { ok: false, reason: `the kernel did not keep IFF_VNET_HDR (flags 0x${gotFlags.toString(16)})` };
    }
    const sz = ifr; // reuse the ifreq bytes for the int
    mem.putI32(sz, 0);
    if (libc.ioctl(fd, TUNGETVNETHDRSZ, mem.addr(sz)) < 0) return fail('TUNGETVNETHDRSZ');
    if (mem.getI32(sz) !== VNET_HDR_LEN) {
      libc.close(fd);
      return { ok: false, reason: `virtio header size ${mem.getI32(sz)}, expected ${VNET_HDR_LEN}` };
    }
    if (offloads !== 0 && libc.ioctl(fd, TUNSETOFFLOAD, offloads) < 0) {
      return fail(`TUNSETOFFLOAD 0x${offloads.toString(16)} (offloads refused)`);
    }
    return { ok: true, tun: new VnetTun(libc, mem, fd, gotName, gotFlags, offloads) };
  }

  /**
   * Wrap a TUN fd opened with IFF_VNET_HDR elsewhere (another thread of this process opened it
   * with open(); fds are process-wide). The caller vouches for the flags and offloads.
   */
  static adopt(libc: Libc, mem: SysMemory, fd: number, name: string, flags: number, offloads: number): VnetTun {
    return new VnetTun(libc, mem, fd, name, flags, offloads);
  }

  /** One packet (virtio header included) into [addr, addr+cap): its length, or -1 (lastErrno). */
  read(addr: number, cap: number): number {
    const n = this.libc.read(this.fd, addr, cap);
    if (n < 0) this.lastErrno = this.libc.errno();
    return n;
  }

  /**
   * Read up to `max` packets, packet i into [addrs[i], addrs[i] + cap), lengths into lens[i].
   * Stops at EAGAIN (the queue is empty) or another error (lastErrno, EAGAIN counts as none).
   * Returns how many were read.
   */
  readBatch(addrs: Float64Array, cap: number, lens: Int32Array, max: number): number {
    let i = 0;
    this.lastErrno = 0;
    while (i < max) {
      const n = this.libc.read(this.fd, addrs[i]!, cap);
      if (n < 0) {
        const e = this.libc.errno();
        this.lastErrno = e === EAGAIN ? 0 : e;
        break;
      }
      lens[i++] = n;
    }
    return i;
  }

  /** Write [vnet header][packet] from contiguous memory: bytes written or -1 (lastErrno). */
  write(addr: number, len: number): number {
    const n = this.libc.write(this.fd, addr, len);
    if (n < 0) this.lastErrno = this.libc.errno();
    return n;
  }

  /** Write the header at vnetAddr (10 bytes) and the packet elsewhere, in one writev. */
  writePacket(vnetAddr: number, pktAddr: number, pktLen: number): number {
    writeIovec(this.mem, this.iovOff, vnetAddr, VNET_HDR_LEN);
    writeIovec(this.mem, this.iovOff + IOVEC_SIZE, pktAddr, pktLen);
    return this.writev(this.mem.addr(this.iovOff), 2);
  }

  /** writev of `count` iovecs at iovAddr (the first one starting with the virtio header). */
  writev(iovAddr: number, count: number): number {
    const n = this.libc.writev(this.fd, iovAddr, count);
    if (n < 0) this.lastErrno = this.libc.errno();
    return n;
  }

  /** Close the fd (idempotent). The interface goes away with its last fd unless persistent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.libc.close(this.fd);
  }
}

/**
 * createTunInterface's opener for the fast path (tun-setup.ts): the interface is created here
 * with IFF_VNET_HDR and offloads; failures become TunErrors, ENOOFFLOAD when the kernel refused
 * the virtio header or the offloads (the portable path can still run).
 */
export function vnetTunOpener(libc: Libc, mem: SysMemory, offloads = TUN_DEFAULT_OFFLOADS): TunOpener {
  return (name) => {
    const r = VnetTun.open(libc, mem, { name: name ?? '', offloads });
    if (r.ok) return { fd: r.tun.fd, name: r.tun.name };
    if (OFFLOAD_REFUSALS.test(r.reason)) throw new TunError('ENOOFFLOAD', r.reason);
    const e = /: (E[A-Z0-9]+)$/.exec(r.reason)?.[1] ?? '';
    if (e === 'EPERM' || e === 'EACCES') throw new TunError('EPERM', 'not permitted to create a TUN device: run as root or with CAP_NET_ADMIN');
    if (r.reason.startsWith('open ') && (e === 'ENOENT' || e === 'ENODEV' || e === 'ENXIO')) {
      throw new TunError('ENOTUN', 'no /dev/net/tun: this kernel or container has no TUN device (modprobe tun, or give the container /dev/net/tun)');
    }
    if (e === 'EBUSY' || e === 'EEXIST') throw new TunError('EEXIST', `interface name ${name} is already in use`);
    throw new TunError('ESETUP', `cannot create a TUN device: ${r.reason}`);
  };
}
