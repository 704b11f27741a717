/**
 * Fast path: where packet memory is, as addresses for the kernel. Pool slabs and SysMemory are
 * SharedArrayBuffers (they never move), so an address is a base, taken once, plus an offset.
 *
 * The bases are kept boxed in an AddressTable and hot code passes (base, offset) pairs, never a
 * computed address, across a call: V8 boxes a computed address (a ~47-bit double) into a new
 * heap number at every call it crosses — an allocation per packet (see sys/memory.ts).
 */
import type { PacketBuffer, PacketPools } from '../base/pool.ts';
import type { Libc } from '../sys/libc.ts';
import { AddressTable, type SysMemory } from '../sys/memory.ts';

export const BASE_SMALL = 0;
export const BASE_LARGE = 1;
export const BASE_MEM = 2;

export class PoolAddresses {
  readonly smallBase: number;
  readonly largeBase: number;
  /** BASE_SMALL, BASE_LARGE, BASE_MEM: the small and large slabs and the SysMemory, boxed. */
  readonly bases = new AddressTable(3);

  constructor(
    libc: Libc,
    readonly pools: PacketPools,
    mem: SysMemory,
  ) {
    this.smallBase = libc.address(pools.small.bytes);
    this.largeBase = libc.address(pools.large.bytes);
    this.bases.set(BASE_SMALL, this.smallBase);
    this.bases.set(BASE_LARGE, this.largeBase);
    this.bases.set(BASE_MEM, mem.base);
  }

  /** The boxed base of p's slab (pass it on as it is). */
  baseOf(p: PacketBuffer): number {
    return this.bases.get(p.pool === this.pools.small ? BASE_SMALL : BASE_LARGE);
  }

  /** Offset of p.buf[p.offset] in its pool's slab view (pool.bytes). */
  slabOffset(p: PacketBuffer): number {
    return p.slot * p.pool.slotSize + p.offset;
  }

  /** Address of the first packet byte of p (setup and tests; the hot path uses baseOf + slabOffset). */
  addressOf(p: PacketBuffer): number {
    return (p.pool === this.pools.small ? this.smallBase : this.largeBase) + this.slabOffset(p);
  }
}
