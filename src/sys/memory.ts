/**
 * SysMemory: one SharedArrayBuffer slab for everything the kernel reads or writes through a
 * pointer (iovec and msghdr arrays, control-message buffers, sockaddrs, pollfds, ifreqs, virtio
 * headers). A SharedArrayBuffer's backing store never moves, so its base address is taken once
 * and every struct is addressed as base + offset: no koffi.address() per call, and none of the
 * stale-address trouble of small Buffers (V8 moves typed arrays of 64 bytes or less).
 *
 * Regions are carved at setup time by a bump allocator (alloc) and live as long as the slab.
 * Pointers (64-bit, little-endian on x86-64 and arm64) are written as two 32-bit halves so no
 * BigInt is made per write.
 */
import type { Libc } from './libc.ts';

export const DEFAULT_SYS_MEMORY = 256 * 1024;
const TWO32 = 4294967296;

export class SysMemory {
  readonly sab: SharedArrayBuffer;
  readonly u8: Uint8Array;
  readonly dv: DataView;
  /** Address of u8[0]. */
  readonly base: number;
  private top = 0;

  constructor(libc: Libc, size = DEFAULT_SYS_MEMORY) {
    this.sab = new SharedArrayBuffer(size);
    this.u8 = new Uint8Array(this.sab);
    this.dv = new DataView(this.sab);
    this.base = libc.address(this.u8);
  }

  /** Bytes not yet allocated. */
  get free(): number {
    return this.u8.length - this.top;
  }

  /** A zeroed region of `size` bytes aligned to `align`: its offset. Throws when the slab is full. */
  alloc(size: number, align = 8): number {
    const off = (this.top + align - 1) & ~(align - 1);
    if (off + size > this.u8.length) {
      throw new RangeError(`SysMemory: ${size} bytes do not fit (${this.free} free of ${this.u8.length})`);
    }
    this.top = off + size;
    this.u8.fill(0, off, off + size);
    return off;
  }

  /** Address of offset `off`. */
  addr(off: number): number {
    return this.base + off;
  }

  /** Write a 64-bit pointer or size (a non-negative integer below 2^53) at `off`. */
  putU64(off: number, v: number): void {
    const lo = v >>> 0;
    this.dv.setUint32(off, lo, true);
    this.dv.setUint32(off + 4, (v - lo) / TWO32, true);
  }

  /** Read a 64-bit value written by the kernel (exact below 2^53). */
  getU64(off: number): number {
    return this.dv.getUint32(off, true) + this.dv.getUint32(off + 4, true) * TWO32;
  }

  putU32(off: number, v: number): void {
    this.dv.setUint32(off, v, true);
  }
  getU32(off: number): number {
    return this.dv.getUint32(off, true);
  }
  putI32(off: number, v: number): void {
    this.dv.setInt32(off, v, true);
  }
  getI32(off: number): number {
    return this.dv.getInt32(off, true);
  }
  putU16(off: number, v: number): void {
    this.dv.setUint16(off, v, true);
  }
  getU16(off: number): number {
    return this.dv.getUint16(off, true);
  }
}
