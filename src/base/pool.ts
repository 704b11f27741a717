/**
 * Packet buffer pool: fixed-size slots carved out of one preallocated slab, each with headroom in
 * front of the packet so outer headers (IPv4/IPv6 + UDP) can be prepended without a copy.
 *
 * Nothing here allocates per packet: the PacketBuffer handles are created once with the slab and
 * recycled through a free stack (Int32Array). `live` counts slots handed out and not yet released;
 * tests assert it returns to zero. Exhaustion returns null (the caller drops and counts), and a
 * double release is counted instead of thrown, because the dataplane never throws.
 */
import { copyBytes } from './bytes.ts';

export const DEFAULT_HEADROOM = 128;
export const DEFAULT_SLOT_SIZE = 2048;
/** Large enough for any IPv4/IPv6 datagram (65535 + jumbo-free IPv6 40-byte header) plus headroom. */
export const LARGE_SLOT_SIZE = 65536 + 128 + DEFAULT_HEADROOM;

export class PacketBuffer {
  /** The whole slot (headroom + data area). Packet bytes are buf[offset, offset + length). */
  readonly buf: Buffer;
  /** Start of the packet inside `buf`. */
  offset: number;
  /** Packet length in bytes. */
  length: number;
  /** Free-form per-packet metadata slot for the pipeline (e.g. ingress peer index). */
  tag = 0;

  constructor(
    readonly pool: BufferPool,
    readonly slot: number,
    buf: Buffer,
  ) {
    this.buf = buf;
    this.offset = pool.headroom;
    this.length = 0;
  }

  /** Bytes available in front of the packet. */
  get headroom(): number {
    return this.offset;
  }

  /** Bytes available behind the packet. */
  get tailroom(): number {
    return this.buf.length - this.offset - this.length;
  }

  /** Grow the packet at the front by n bytes; returns false (no change) when headroom is short. */
  prepend(n: number): boolean {
    if (n > this.offset) return false;
    this.offset -= n;
    this.length += n;
    return true;
  }

  /** Remove n bytes from the front; returns false when the packet is shorter. */
  consume(n: number): boolean {
    if (n > this.length) return false;
    this.offset += n;
    this.length -= n;
    return true;
  }

  /** Reset to an empty packet at the default headroom. */
  reset(): void {
    this.offset = this.pool.headroom;
    this.length = 0;
    this.tag = 0;
  }

  /** Copy `src` in as the packet (returns false if it does not fit). Allocates nothing. */
  fill(src: Uint8Array, srcOffset = 0, srcLength = src.length - srcOffset): boolean {
    this.offset = this.pool.headroom;
    if (srcLength > this.buf.length - this.offset || srcOffset + srcLength > src.length) return false;
    copyBytes(src, srcOffset, this.buf, this.offset, srcLength);
    this.length = srcLength;
    return true;
  }

  /** A view of the packet bytes. Allocates a Buffer object: for tests and control plane only. */
  bytes(): Buffer {
    return this.buf.subarray(this.offset, this.offset + this.length);
  }

  release(): void {
    this.pool.release(this);
  }
}

export interface PoolOptions {
  slotSize?: number;
  slots?: number;
  headroom?: number;
}

export class BufferPool {
  readonly slotSize: number;
  readonly slots: number;
  readonly headroom: number;
  /** The slab every slot lives in. SharedArrayBuffer so a reader worker can fill slots in place. */
  readonly slab: SharedArrayBuffer;
  /**
   * The whole slab as bytes: slot i's bytes are bytes[i * slotSize, (i + 1) * slotSize), so a
   * batch call can address the packets of many slots in one view (Router.lookupBatch).
   */
  readonly bytes: Uint8Array;
  private readonly handles: PacketBuffer[];
  private readonly free: Int32Array;
  private readonly inUse: Uint8Array;
  private freeTop: number;
  /** Slots currently handed out. */
  live = 0;
  /** Acquire calls that found the pool empty. */
  exhausted = 0;
  /** Release calls for a slot that was not live (a bug upstream; counted, not thrown). */
  badReleases = 0;

  constructor(opts: PoolOptions = {}) {
    this.slotSize = opts.slotSize ?? DEFAULT_SLOT_SIZE;
    this.slots = opts.slots ?? 4096;
    this.headroom = opts.headroom ?? DEFAULT_HEADROOM;
    if (this.headroom >= this.slotSize) throw new RangeError('headroom must be smaller than the slot');
    this.slab = new SharedArrayBuffer(this.slotSize * this.slots);
    this.bytes = new Uint8Array(this.slab);
    this.handles = new Array<PacketBuffer>(this.slots);
    this.free = new Int32Array(this.slots);
    this.inUse = new Uint8Array(this.slots);
    for (let i = 0; i < this.slots; i++) {
      const buf = Buffer.from(this.slab, i * this.slotSize, this.slotSize);
      this.handles[i] = new PacketBuffer(this, i, buf);
      this.free[i] = this.slots - 1 - i;
    }
    this.freeTop = this.slots;
  }

  /** Largest packet a slot holds at default headroom. */
  get capacity(): number {
    return this.slotSize - this.headroom;
  }

  /** A reset, empty packet buffer, or null when the pool is exhausted. */
  acquire(): PacketBuffer | null {
    if (this.freeTop === 0) {
      this.exhausted++;
      return null;
    }
    const slot = this.free[--this.freeTop]!;
    this.inUse[slot] = 1;
    this.live++;
    const p = this.handles[slot]!;
    p.reset();
    return p;
  }

  /** The handle of a slot by index (for a reader worker that filled the slot by index). */
  handle(slot: number): PacketBuffer {
    return this.handles[slot]!;
  }

  /** Return a packet buffer to its slot. */
  release(p: PacketBuffer): void {
    if (p.pool !== this || this.inUse[p.slot] !== 1) {
      this.badReleases++;
      return;
    }
    this.inUse[p.slot] = 0;
    this.free[this.freeTop++] = p.slot;
    this.live--;
  }

  /** Take a number of free slot indices out of the pool at once (for handing to a worker). */
  acquireSlots(out: Int32Array, count: number): number {
    let n = 0;
    while (n < count && this.freeTop > 0) {
      const slot = this.free[--this.freeTop]!;
      this.inUse[slot] = 1;
      this.live++;
      out[n++] = slot;
    }
    return n;
  }

  isLive(slot: number): boolean {
    return this.inUse[slot] === 1;
  }
}

/**
 * Two size classes: MTU-sized slots for the common case and a few 64 KiB slots for reassembled
 * datagrams and big local replies. `acquire(n)` picks the smallest class that fits n bytes.
 */
export class PacketPools {
  readonly small: BufferPool;
  readonly large: BufferPool;

  constructor(opts: { small?: PoolOptions; large?: PoolOptions } = {}) {
    this.small = new BufferPool({ slotSize: DEFAULT_SLOT_SIZE, slots: 4096, ...opts.small });
    this.large = new BufferPool({ slotSize: LARGE_SLOT_SIZE, slots: 64, ...opts.large });
  }

  acquire(bytes: number): PacketBuffer | null {
    if (bytes <= this.small.capacity) return this.small.acquire();
    if (bytes <= this.large.capacity) return this.large.acquire();
    return null;
  }

  get live(): number {
    return this.small.live + this.large.live;
  }
}
