/**
 * struct iovec, msghdr, mmsghdr and cmsghdr (x86-64 / arm64 LP64 layouts), and MmsgVector: a
 * vector of mmsghdrs with their iovec arrays, sockaddr space and control buffers laid out once
 * in SysMemory, for sendmsg/sendmmsg/recvmmsg batches with no allocation per call.
 *
 *   struct iovec   { void *iov_base; size_t iov_len; }                               16 bytes
 *   struct msghdr  { void *name; socklen_t namelen; (pad) struct iovec *iov; size_t iovlen;
 *                    void *control; size_t controllen; int flags; (pad) }             56 bytes
 *   struct mmsghdr { struct msghdr msg_hdr; unsigned int msg_len; (pad) }            64 bytes
 *   struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; data... }       16 + data
 *
 * UDP GSO/GRO control messages (linux/udp.h): UDP_SEGMENT (level SOL_UDP, type 103) carries the
 * segment size as a u16 on send; UDP_GRO (type 104) carries it as an int on receive.
 */
import { SOL_UDP, UDP_GRO, UDP_SEGMENT } from './linux.ts';
import { AddressTable, type SysMemory } from './memory.ts';

export const IOVEC_SIZE = 16;
export const IOV_BASE = 0;
export const IOV_LEN = 8;

export const MSGHDR_SIZE = 56;
export const MSG_NAME = 0;
export const MSG_NAMELEN = 8;
export const MSG_IOV = 16;
export const MSG_IOVLEN = 24;
export const MSG_CONTROL = 32;
export const MSG_CONTROLLEN = 40;
export const MSG_FLAGS = 48;

export const MMSGHDR_SIZE = 64;
/** msg_len: bytes sent/received for this message (u32 after the msghdr). */
export const MMSG_LEN = 56;

export const CMSGHDR_SIZE = 16;
export const CMSG_LEN_FIELD = 0;
export const CMSG_LEVEL = 8;
export const CMSG_TYPE = 12;
export const CMSG_DATA = 16;

/** CMSG_ALIGN: control messages are padded to 8 bytes on LP64. */
export function cmsgAlign(n: number): number {
  return (n + 7) & ~7;
}
/** CMSG_LEN(n): header plus n data bytes (the cmsg_len value). */
export function cmsgLen(n: number): number {
  return CMSGHDR_SIZE + n;
}
/** CMSG_SPACE(n): bytes a control message with n data bytes takes in the buffer. */
export function cmsgSpace(n: number): number {
  return CMSGHDR_SIZE + cmsgAlign(n);
}

/** Control space for one UDP_SEGMENT (u16) or UDP_GRO (int) message: CMSG_SPACE(4) = 24. */
export const UDP_CMSG_SPACE = cmsgSpace(4);
/** sockaddr space per message: sizeof(struct sockaddr_in6). */
export const NAME_SPACE = 28;

export function writeIovec(mem: SysMemory, off: number, addr: number, len: number): void {
  mem.putU64(off + IOV_BASE, addr);
  mem.putU64(off + IOV_LEN, len);
}

const TWO32 = 4294967296;

/**
 * An iovec at dv[off] for base + rel, len bytes: for the hot path, where `base` comes boxed out
 * of an AddressTable and rel/len are small integers, so no call passes a computed address
 * (which V8 would box: an allocation per call).
 */
export function writeIovecAt(dv: DataView, off: number, base: number, rel: number, len: number): void {
  const a = base + rel;
  const lo = a >>> 0;
  dv.setUint32(off, lo, true);
  dv.setUint32(off + 4, (a - lo) / TWO32, true);
  dv.setUint32(off + IOV_LEN, len, true);
  dv.setUint32(off + IOV_LEN + 4, 0, true);
}

/** Write a whole msghdr (addresses absolute; 0 for NULL). msg_flags is cleared. */
export function writeMsghdr(
  mem: SysMemory,
  off: number,
  nameAddr: number,
  nameLen: number,
  iovAddr: number,
  iovLen: number,
  controlAddr: number,
  controlLen: number,
): void {
  mem.putU64(off + MSG_NAME, nameAddr);
  mem.putU32(off + MSG_NAMELEN, nameLen);
  mem.putU32(off + MSG_NAMELEN + 4, 0);
  mem.putU64(off + MSG_IOV, iovAddr);
  mem.putU64(off + MSG_IOVLEN, iovLen);
  mem.putU64(off + MSG_CONTROL, controlAddr);
  mem.putU64(off + MSG_CONTROLLEN, controlLen);
  mem.putU32(off + MSG_FLAGS, 0);
  mem.putU32(off + MSG_FLAGS + 4, 0);
}

/** Write a control message header; returns the offset of its data. */
export function writeCmsgHeader(mem: SysMemory, off: number, level: number, type: number, dataLen: number): number {
  mem.putU64(off + CMSG_LEN_FIELD, cmsgLen(dataLen));
  mem.putI32(off + CMSG_LEVEL, level);
  mem.putI32(off + CMSG_TYPE, type);
  return off + CMSG_DATA;
}

/**
 * Find the first control message of (level, type) in the control buffer at `ctlOff` holding
 * `ctlLen` bytes (the msg_controllen the kernel wrote back). Returns the offset of its data and
 * its data length through `out`, or -1. Like CMSG_FIRSTHDR/CMSG_NXTHDR: stops at a malformed
 * length.
 */
export function findCmsg(mem: SysMemory, ctlOff: number, ctlLen: number, level: number, type: number): number {
  let p = ctlOff;
  const end = ctlOff + ctlLen;
  while (p + CMSGHDR_SIZE <= end) {
    const len = mem.getU64(p + CMSG_LEN_FIELD);
    if (len < CMSGHDR_SIZE || p + len > end) return -1;
    if (mem.getI32(p + CMSG_LEVEL) === level && mem.getI32(p + CMSG_TYPE) === type) return p + CMSG_DATA;
    p += cmsgAlign(len);
  }
  return -1;
}

/**
 * `count` mmsghdrs, each with `iovPerMsg` iovecs, a 28-byte sockaddr area and `ctlSpace` bytes of
 * control buffer, all in one SysMemory region set up once. The msghdr pointers (name, iov,
 * control) are fixed at construction; per batch a caller only fills iovecs, counts and lengths.
 *
 * Send:    setIov(i, 0, addr, len) ...; setIovCount(i, n); setSegmentSize(i, mss) or
 *          clearControl(i); setNameLen(i, 0) for a connected socket; sendmmsg(fd, addr, k, 0).
 * Receive: setIov(i, 0, addr, cap); setIovCount(i, 1); prepareReceive(i) before EVERY call
 *          (the kernel overwrites msg_namelen and msg_controllen); then received(i),
 *          groSegmentSize(i), flags(i).
 */
export class MmsgVector {
  readonly count: number;
  readonly iovPerMsg: number;
  readonly ctlSpace: number;
  /** Offsets in mem of the mmsghdr array, the iovec arrays, the names and the control areas. */
  readonly vecOff: number;
  readonly iovOff: number;
  readonly nameOff: number;
  readonly ctlOff: number;
  /** Each message's address, boxed once (AddressTable: no garbage per call). */
  private readonly msgAddrs: AddressTable;

  constructor(
    readonly mem: SysMemory,
    count: number,
    iovPerMsg: number,
    ctlSpace = UDP_CMSG_SPACE,
  ) {
    this.count = count;
    this.iovPerMsg = iovPerMsg;
    this.ctlSpace = cmsgAlign(ctlSpace);
    this.vecOff = mem.alloc(count * MMSGHDR_SIZE);
    this.iovOff = mem.alloc(count * iovPerMsg * IOVEC_SIZE);
    this.nameOff = mem.alloc(count * NAME_SPACE);
    this.ctlOff = this.ctlSpace > 0 ? mem.alloc(count * this.ctlSpace) : 0;
    this.msgAddrs = new AddressTable(count);
    for (let i = 0; i < count; i++) this.msgAddrs.set(i, mem.addr(this.vecOff + i * MMSGHDR_SIZE));
    for (let i = 0; i < count; i++) {
      writeMsghdr(
        mem,
        this.msgOff(i),
        mem.addr(this.nameOffOf(i)),
        0,
        mem.addr(this.iovOffOf(i, 0)),
        0,
        this.ctlSpace > 0 ? mem.addr(this.ctlOffOf(i)) : 0,
        0,
      );
    }
  }

  /** Address of the mmsghdr array (for sendmmsg/recvmmsg) */
  get addr(): number {
    return this.msgAddrs.get(0);
  }
  /** Address of message i's msghdr (for sendmsg/recvmsg; sendmmsg from message i on). */
  msgAddr(i: number): number {
    return this.msgAddrs.get(i);
  }
  msgOff(i: number): number {
    return this.vecOff + i * MMSGHDR_SIZE;
  }
  iovOffOf(i: number, j: number): number {
    return this.iovOff + (i * this.iovPerMsg + j) * IOVEC_SIZE;
  }
  nameOffOf(i: number): number {
    return this.nameOff + i * NAME_SPACE;
  }
  ctlOffOf(i: number): number {
    return this.ctlOff + i * this.ctlSpace;
  }

  setIov(i: number, j: number, addr: number, len: number): void {
    const o = this.iovOffOf(i, j);
    this.mem.putU64(o + IOV_BASE, addr);
    this.mem.putU64(o + IOV_LEN, len);
  }
  setIovCount(i: number, n: number): void {
    this.mem.putU64(this.msgOff(i) + MSG_IOVLEN, n);
  }
  /** msg_namelen: 0 for a connected socket, 16 / 28 with a sockaddr written at nameOffOf(i). */
  setNameLen(i: number, n: number): void {
    this.mem.putU32(this.msgOff(i) + MSG_NAMELEN, n);
  }
  nameLen(i: number): number {
    return this.mem.getU32(this.msgOff(i) + MSG_NAMELEN);
  }
  setControlLen(i: number, n: number): void {
    this.mem.putU64(this.msgOff(i) + MSG_CONTROLLEN, n);
  }
  controlLen(i: number): number {
    return this.mem.getU64(this.msgOff(i) + MSG_CONTROLLEN);
  }
  clearControl(i: number): void {
    this.mem.putU64(this.msgOff(i) + MSG_CONTROLLEN, 0);
  }

  /** One UDP_SEGMENT control message: the kernel cuts this message's data into `size` chunks. */
  setSegmentSize(i: number, size: number): void {
    const c = this.ctlOffOf(i);
    const d = writeCmsgHeader(this.mem, c, SOL_UDP, UDP_SEGMENT, 2);
    this.mem.putU16(d, size);
    this.mem.putU64(this.msgOff(i) + MSG_CONTROLLEN, cmsgSpace(2));
  }

  /** Before each receive call: full name and control space, flags and length cleared. */
  prepareReceive(i: number): void {
    const m = this.msgOff(i);
    this.mem.putU32(m + MSG_NAMELEN, NAME_SPACE);
    this.mem.putU64(m + MSG_CONTROLLEN, this.ctlSpace);
    this.mem.putU32(m + MSG_FLAGS, 0);
    this.mem.putU32(m + MMSG_LEN, 0);
  }

  /** msg_len: bytes sent or received by message i in the last call. */
  received(i: number): number {
    return this.mem.getU32(this.msgOff(i) + MMSG_LEN);
  }
  /** msg_flags the kernel returned (MSG_TRUNC, MSG_CTRUNC ...). */
  flags(i: number): number {
    return this.mem.getI32(this.msgOff(i) + MSG_FLAGS);
  }

  /** The UDP_GRO segment size of received message i, or 0 when it came as a single datagram. */
  groSegmentSize(i: number): number {
    const d = findCmsg(this.mem, this.ctlOffOf(i), this.controlLen(i), SOL_UDP, UDP_GRO);
    return d < 0 ? 0 : this.mem.getI32(d);
  }
}
