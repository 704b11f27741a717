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

/**
 * Addresses to pass to FFI calls, kept as V8 heap numbers. An address (a ~47-bit number, never
 * a small integer) computed right before a call, or read from a class field, is boxed into a new
 * HeapNumber for every call: 16 bytes of garbage per call, per packet on the hot path. One read
 * out of an array whose elements are tagged (it also holds a non-number) is passed as the
 * object it already is. Measured on Node 20 (read(2) on a bad fd, 2M calls, 1 MiB semi-space):
 * computed address 31 scavenges, class field 32, double array 31, AddressTable 0 (and 18% faster).
 */
export class AddressTable {
  /** [null, address 0, address 1, ...]: the null keeps the elements tagged. */
  private readonly a: (number | null)[];

  constructor(n: number) {
    this.a = [null];
    for (let i = 0; i < n; i++) this.a.push(0.5); // a heap number, never a small integer
  }

  get size(): number {
    return this.a.length - 1;
  }

  /** Set entry i (setup time: boxes the number once). */
  set(i: number, address: number): void {
    this.a[i + 1] = address;
  }

  /** Entry i, as the heap number it is (pass it straight to the call; do no arithmetic on it). */
  get(i: number): number {
    return this.a[i + 1] as number;
  }
}

/** CLOCK_REALTIME for clock_gettime(2). */
export const CLOCK_REALTIME = 0;

/**
 * The wall clock in epoch milliseconds written into a Float64Array, with no allocation:
 * Date.now() returns a fresh heap number on every call (its value is no small integer), so a
 * dataplane sampling the time once per batch would allocate once per batch. clock_gettime(2)
 * through the FFI (vDSO: no system call) writes a timespec into SysMemory; the milliseconds are
 * computed and stored without the double ever crossing a call.
 */
export class SysClock {
  private readonly ts: number;
  private readonly at = new AddressTable(1);

  constructor(
    private readonly libc: Libc,
    private readonly mem: SysMemory,
  ) {
    this.ts = mem.alloc(16);
    this.at.set(0, mem.addr(this.ts));
  }

  /** out[0] = now, epoch ms (fractional). */
  sample(out: Float64Array): void {
    this.libc.clock_gettime(CLOCK_REALTIME, this.at.get(0));
    const dv = this.mem.dv;
    const o = this.ts;
    out[0] = (dv.getUint32(o, true) + dv.getUint32(o + 4, true) * TWO32) * 1000 + dv.getUint32(o + 8, true) / 1e6;
  }
}
