/**
 * Fast path, TUN out: the packets the pipeline hands to the device, coalesced per receive round
 * (GroCoalescer: in-order TCP segments of one flow become one super-packet with a GSO virtio
 * header) and written with one writev per entry — the kernel's TCP then takes ~48 segments per
 * system call. Everything else goes through unmerged with a plain virtio header.
 *
 * take(p) (PacketWriter): the pipeline's usual path; p (a small-pool slot) is held until the
 * flush at the end of the round, then released. write(p) (ICMP errors, fragments we built,
 * large-pool packets): the pending entries are written first, so nothing overtakes what came
 * before, then p alone; the caller keeps p.
 *
 * A TCP segment whose checksum is wrong is written unmerged (the coalescer verifies every
 * candidate: the kernel trusts NEEDS_CSUM super-packets) and the kernel drops it; it is
 * counted here as BadTcpChecksum.
 */
import { DropReason, type DropCounters } from '../base/drop-reason.ts';
import type { PacketBuffer } from '../base/pool.ts';
import { GRO_MAX_SEGMENTS, GRO_VNET_STRIDE, GroCoalescer } from '../device/gro-coalesce.ts';
import type { Libc } from '../sys/libc.ts';
import { EINTR } from '../sys/linux.ts';
import { AddressTable, type SysMemory } from '../sys/memory.ts';
import { IOVEC_SIZE, writeIovecAt } from '../sys/msg.ts';
import { VNET_HDR_LEN, VnetHdr } from '../sys/virtio-net-hdr.ts';
import { BASE_MEM, BASE_SMALL, type PoolAddresses } from './fast-memory.ts';
import type { PacketWriter } from './pipeline.ts';

export interface TunWriterStats {
  /** IP packets written (a coalesced super-packet counts its segments) and their bytes. */
  txPackets: number;
  txBytes: number;
  /** writev calls, and those that carried a coalesced super-packet. */
  writes: number;
  coalescedWrites: number;
  /** Packets lost to write errors (EIO when the link is down, EINVAL ...). */
  txErrors: number;
}

export class FastTunWriter implements PacketWriter {
  readonly gro: GroCoalescer;
  readonly stats: TunWriterStats = { txPackets: 0, txBytes: 0, writes: 0, coalescedWrites: 0, txErrors: 0 };
  /** errno of the last failed write (0: none yet). */
  lastErrno = 0;
  private readonly iovOff: number;
  /** The iovec array's address, boxed once (no garbage per writev). */
  private readonly iovAt = new AddressTable(1);
  private readonly plainOff: number;
  private readonly plain: VnetHdr;
  private readonly held: PacketBuffer[];
  private heldCount = 0;
  private heldBytes = 0;
  private badSeen = 0;

  constructor(
    private readonly libc: Libc,
    private readonly mem: SysMemory,
    /** The TUN fd (or what stands in for it: a datagram socket of a socketpair). */
    private readonly fd: number,
    private readonly pools: PoolAddresses,
    private readonly drops: DropCounters,
    readonly maxPackets = 1024,
  ) {
    const arena = mem.alloc(maxPackets * GRO_VNET_STRIDE);
    this.gro = new GroCoalescer(maxPackets, mem.u8, arena);
    this.gro.reset(pools.pools.small.bytes);
    this.iovOff = mem.alloc((GRO_MAX_SEGMENTS + 2) * IOVEC_SIZE);
    this.iovAt.set(0, mem.addr(this.iovOff));
    this.plainOff = mem.alloc(16);
    this.plain = new VnetHdr(mem.u8, this.plainOff);
    this.held = new Array<PacketBuffer>(maxPackets);
  }

  /** Packets waiting for the flush. */
  get pending(): number {
    return this.heldCount;
  }

  take(p: PacketBuffer): boolean {
    if (p.pool !== this.pools.pools.small) {
      const ok = this.write(p);
      p.release();
      return ok;
    }
    if (this.gro.count === this.maxPackets) this.flush();
    // held first: from the call on p is ours, released at the flush or by discard(), also if add() throws
    this.held[this.heldCount++] = p;
    this.heldBytes += p.length;
    this.gro.add(this.pools.slabOffset(p), p.length);
    return true;
  }

  write(p: PacketBuffer): boolean {
    this.flush();
    this.plain.writePlain(p.length);
    const iov = this.iovOff;
    const dv = this.mem.dv;
    writeIovecAt(dv, iov, this.pools.bases.get(BASE_MEM), this.plainOff, VNET_HDR_LEN);
    writeIovecAt(dv, iov + IOVEC_SIZE, this.pools.baseOf(p), this.pools.slabOffset(p), p.length);
    if (!this.writev(2, p.length + VNET_HDR_LEN)) {
      this.stats.txErrors++;
      return false;
    }
    this.stats.txPackets++;
    this.stats.txBytes += p.length;
    return true;
  }

  /** Write every pending entry (one writev each), then release the held slots. */
  flush(): void {
    const gro = this.gro;
    if (gro.count > 0) {
      gro.finish();
      const mem = this.mem;
      const bases = this.pools.bases;
      let failed = 0;
      for (let e = 0; e < gro.count; e++) {
        const n = gro.writeIovecs(e, mem, this.iovOff, bases.get(BASE_SMALL), bases.get(BASE_MEM));
        const segs = gro.segs[e]!;
        if (this.writev(n, gro.total[e]! + VNET_HDR_LEN)) {
          if (segs > 1) this.stats.coalescedWrites++;
          this.stats.txPackets += segs;
        } else {
          failed += segs;
        }
      }
      this.stats.txBytes += this.heldBytes; // approximate when a write failed
      if (failed > 0) {
        this.stats.txErrors += failed;
        for (let k = 0; k < failed; k++) this.drops.count(DropReason.DeviceWriteFailed);
      }
      const bad = gro.stats.badChecksum;
      for (; this.badSeen < bad; this.badSeen++) this.drops.count(DropReason.BadTcpChecksum);
      gro.reset(this.pools.pools.small.bytes);
    }
    const held = this.held;
    for (let i = 0; i < this.heldCount; i++) held[i]!.release();
    this.heldCount = 0;
    this.heldBytes = 0;
  }

  /** Release what is held without writing (stop). */
  discard(): void {
    this.gro.reset(this.pools.pools.small.bytes);
    for (let i = 0; i < this.heldCount; i++) this.held[i]!.release();
    this.heldCount = 0;
    this.heldBytes = 0;
  }

  private writev(iovs: number, expect: number): boolean {
    this.stats.writes++;
    for (;;) {
      const r = this.libc.writev(this.fd, this.iovAt.get(0), iovs);
      if (r === expect) return true;
      if (r < 0) {
        const e = this.libc.errno();
        if (e === EINTR) continue;
        this.lastErrno = e;
      }
      return false;
    }
  }
}
