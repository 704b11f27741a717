/**
 * The Linux fast path's packet engine: one thread, run to completion. It blocks in poll(2) on
 * the TUN fd, the UDP fd and a wake fd (an eventfd the control plane writes), and per wake-up
 * moves a round of packets each way through the DataPlaneCore's pipeline:
 *
 *   TUN -> UDP  read up to TUN_READS packets, each into a large pool slot behind its 10-byte
 *               virtio header. A TCP super-packet (gso_type TCPV4/6) is decided once
 *               (Pipeline.superTarget: validate, route, MTU), cut by the TSO splitter (headers in
 *               an arena, payloads in place) and its segments go to the peer in GSO messages;
 *               one the pipeline does not approve is cut and each segment, copied into a small
 *               slot, takes the per-packet path (fromDevice), as does every other packet (a
 *               NEEDS_CSUM one after its checksum is completed). One sendmmsg per round.
 *   UDP -> TUN  recvmmsg up to RX_MESSAGES chunks with UDP_GRO (a chunk: same-size datagrams of
 *               one sender), cut at the segment size; each datagram is copied (copyWithin) into
 *               a pool slot, tagged with its peer (sockaddr -> peer index) and goes through
 *               fromTransport (GUE, validate, source check, route: per inner packet). What the
 *               pipeline gives the device is coalesced per flow and written once per super-packet
 *               (FastTunWriter); hub forwards and ICMP errors go out through the same sender.
 *
 * Everything here is preallocated: pools, SysMemory (iovecs, mmsghdrs, sockaddrs, virtio
 * headers, the receive area), typed arrays; nothing is allocated per packet (bench/zero-alloc
 * and test/endpoint/fast-engine.test.ts count). The fds need not be a real TUN and UDP socket:
 * the warm-up and the bench put a datagram socketpair in the TUN's place (fast-rig.ts).
 */
import { copyBytes } from '../base/bytes.ts';
import { DropReason } from '../base/drop-reason.ts';
import type { PacketBuffer } from '../base/pool.ts';
import {
  SegmentList,
  SEGMENT_HEADER_STRIDE,
  SPLIT_BAD_GSO,
  SPLIT_BAD_HEADER,
  SPLIT_TOO_MANY,
  SPLIT_UNSUPPORTED,
  completePartialChecksum,
  TsoSplitter,
} from '../device/tso-split.ts';
import type { Libc } from '../sys/libc.ts';
import { EAGAIN, EBADFD, EFAULT, EINTR, errnoName, MSG_TRUNC, POLLERR, POLLHUP, POLLIN, POLLNVAL } from '../sys/linux.ts';
import { AddressTable, SysClock, type SysMemory } from '../sys/memory.ts';
import { MmsgVector } from '../sys/msg.ts';
import { PollSet } from '../sys/poll.ts';
import {
  VIRTIO_NET_HDR_GSO_ECN,
  VIRTIO_NET_HDR_GSO_NONE,
  VIRTIO_NET_HDR_GSO_TCPV4,
  VIRTIO_NET_HDR_GSO_TCPV6,
  VNET_HDR_LEN,
  VnetHdr,
} from '../sys/virtio-net-hdr.ts';
import type { GsoUdpSocket } from '../transport/udp-gso.ts';
import { BATCH_MAX } from '../route/router.ts';
import type { DataPlaneCore } from './dataplane-core.ts';
import { BASE_LARGE, BASE_MEM, PoolAddresses } from './fast-memory.ts';
import { UnderlayIndex } from './fast-sources.ts';
import { FastTunWriter } from './fast-tun-writer.ts';
import { FastUdpSender } from './fast-udp-sender.ts';

/** TUN reads per round (each up to a 64 KiB super-packet). */
export const TUN_READS = 32;
/** GRO chunks per recvmmsg. */
export const RX_MESSAGES = 16;
/** Bytes per receive chunk: the largest GRO chunk (one UDP datagram's worth) fits. */
export const RX_CHUNK = 65536;
/** Segments one super-packet may be cut into (a 64 KiB packet at MSS 256). */
export const SEGMENTS_MAX = 256;

const POLL_TUN = 0;
const POLL_UDP = 1;
const POLL_WAKE = 2;

export interface EngineIo {
  libc: Libc;
  mem: SysMemory;
  /** TUN fd opened with IFF_VNET_HDR and offloads (or a stand-in: see the module comment). */
  tunFd: number;
  udp: GsoUdpSocket;
  /** fd that wakes the engine for control work (an eventfd), or -1. */
  wakeFd: number;
}

export interface EngineStats {
  tunReads: number;
  superPackets: number;
  /** IP packets read from the TUN (a super-packet counts its segments) and bytes. */
  tunRxPackets: number;
  tunRxBytes: number;
  /** Super-packets cut and sent per segment through fromDevice (the pipeline did not approve them at once). */
  superSlowPath: number;
  udpRxPackets: number;
  udpRxBytes: number;
  udpRxChunks: number;
  udpRxTruncated: number;
  rxNoBuffer: number;
  polls: number;
  /** Exceptions out of a round (a bug: counted, the round's packets released, the engine goes on). */
  errors: number;
}

/** What a round hands the control plane: the device is gone. */
/** The TUN stopped: why, and whether the interface was deleted (POLLERR/POLLHUP, EBADFD/EFAULT on read). */
export type DownHandler = (reason: string, deleted: boolean) => void;

function splitDrop(code: number): DropReason {
  switch (code) {
    case SPLIT_BAD_GSO:
      return DropReason.OffloadBadGso;
    case SPLIT_BAD_HEADER:
      return DropReason.OffloadBadHeader;
    case SPLIT_UNSUPPORTED:
      return DropReason.OffloadUnsupported;
    case SPLIT_TOO_MANY:
      return DropReason.OffloadTooManySegments;
    default:
      return DropReason.OffloadBadHeader;
  }
}

export class FastEngine {
  readonly stats: EngineStats = {
    tunReads: 0, superPackets: 0, tunRxPackets: 0, tunRxBytes: 0, superSlowPath: 0, udpRxPackets: 0, udpRxBytes: 0,
    udpRxChunks: 0, udpRxTruncated: 0, rxNoBuffer: 0, polls: 0, errors: 0,
  };
  readonly sender: FastUdpSender;
  readonly writer: FastTunWriter;
  readonly index: UnderlayIndex;
  readonly addrs: PoolAddresses;
  /** Called once when the TUN reports an error or hangs up (deleted interface). */
  onDown: DownHandler = () => {};
  /** Exceptions out of a round are reported here (rate-limiting is the caller's). */
  onError: (e: unknown) => void = () => {};

  private readonly libc: Libc;
  private readonly mem: SysMemory;
  private readonly tunFd: number;
  private readonly udp: GsoUdpSocket;
  private readonly poll: PollSet;
  private readonly vnet = new VnetHdr();
  private readonly splitter = new TsoSplitter();
  private readonly segLists: SegmentList[];
  private segUsed = 0;
  /** Packets for fromDevice / fromTransport, owned by the engine until handed over. */
  private readonly devBatch: PacketBuffer[];
  private devCount = 0;
  private readonly rxBatch: PacketBuffer[];
  private rxCount = 0;
  /**
   * The packet the engine holds in hand (acquired, not yet passed on: to a batch, the sender,
   * the pipeline, or released): released by abandonRound() when something throws, so every
   * slot is released exactly once whatever throws where.
   */
  private inHand: PacketBuffer | null = null;
  /** A segment's slot in hand while the super-packet it is cut from is in hand too. */
  private inHand2: PacketBuffer | null = null;
  private readonly rxVec: MmsgVector;
  /** The receive area: RX_MESSAGES chunks of RX_CHUNK bytes in the small pool's slab (see the constructor). */
  private readonly rxSlots: Int32Array;
  private readonly rxArea: number;
  /** Per large slot: where a TUN read goes (the virtio header ends at the slot's headroom). */
  private readonly readAt: AddressTable;
  private tunDown = false;
  private readonly largeCap: number;

  constructor(
    readonly core: DataPlaneCore,
    io: EngineIo,
  ) {
    this.libc = io.libc;
    this.mem = io.mem;
    this.tunFd = io.tunFd;
    this.udp = io.udp;
    const mem = io.mem;
    this.addrs = new PoolAddresses(io.libc, core.pools, mem);
    this.index = new UnderlayIndex(io.udp.family, BATCH_MAX);
    this.index.batchMem = mem.u8;
    this.index.follow(core.endpoints);
    this.sender = new FastUdpSender(io.libc, mem, io.udp, this.index, this.addrs, core.drops);
    this.writer = new FastTunWriter(io.libc, mem, io.tunFd, this.addrs, core.drops);
    this.segLists = [];
    for (let i = 0; i < TUN_READS; i++) {
      this.segLists.push(new SegmentList(SEGMENTS_MAX, mem.u8, mem.alloc(SEGMENTS_MAX * SEGMENT_HEADER_STRIDE)));
    }
    this.devBatch = new Array<PacketBuffer>(BATCH_MAX);
    this.rxBatch = new Array<PacketBuffer>(BATCH_MAX);
    // The receive area lives in the small pool's slab, in slots taken for the engine's life:
    // a datagram is then copied into its own slot with copyWithin inside one buffer (native
    // memmove, no object per call; a memcpy through the FFI with a computed source address
    // would box that address per packet: see AddressTable). A fresh pool hands out slots
    // 0, 1, 2 ... in order: the area is contiguous.
    const small = core.pools.small;
    const need = Math.ceil((RX_MESSAGES * RX_CHUNK) / small.slotSize);
    this.rxSlots = new Int32Array(need);
    const got = small.acquireSlots(this.rxSlots, need);
    let contiguous = got === need;
    for (let i = 1; contiguous && i < need; i++) contiguous = this.rxSlots[i] === this.rxSlots[0]! + i;
    if (!contiguous) {
      for (let i = 0; i < got; i++) small.release(small.handle(this.rxSlots[i]!));
      throw new Error(`fast path: ${need} contiguous pool slots for the receive area not available (the pool must be fresh)`);
    }
    this.rxArea = this.rxSlots[0]! * small.slotSize;
    this.rxVec = new MmsgVector(mem, RX_MESSAGES, 1);
    for (let i = 0; i < RX_MESSAGES; i++) {
      this.rxVec.setIov(i, 0, this.addrs.smallBase + this.rxArea + i * RX_CHUNK, RX_CHUNK);
      this.rxVec.setIovCount(i, 1);
    }
    const large = core.pools.large;
    this.readAt = new AddressTable(large.slots);
    for (let s = 0; s < large.slots; s++) this.readAt.set(s, this.addrs.largeBase + s * large.slotSize + large.headroom - VNET_HDR_LEN);
    this.poll = new PollSet(io.libc, mem, 3);
    this.poll.add(io.tunFd, POLLIN);
    this.poll.add(io.udp.fd, POLLIN);
    this.poll.add(io.wakeFd, POLLIN);
    this.largeCap = large.slotSize - large.headroom + VNET_HDR_LEN;
    core.pipeline.device = this.writer;
    core.pipeline.transport = this.sender;
    core.pipeline.clockSource = new SysClock(io.libc, mem);
  }

  /** Small-pool slots the engine holds for its life as the receive area (not packets: reports leave them out of the live count). */
  get reservedSlots(): number {
    return this.rxSlots.length;
  }

  /** SysMemory the engine needs for its structures (size the SysMemory with this and some room). */
  static memoryNeeded(): number {
    return TUN_READS * SEGMENTS_MAX * SEGMENT_HEADER_STRIDE + (1 << 20);
  }

  /**
   * One wait and one round: blocks in poll up to `timeoutMs` (-1: until something happens),
   * then moves what is ready. Returns true when the wake fd was ready (the caller drains it
   * and does its control work).
   *
   * No busy-poll before blocking: measured on this 2-vCPU VM (gwA's per-hop latency, 60 pings
   * at -i 0.05, p50): spinning 200 us after a round made the reply hop 283 us against 75 us
   * without (the spinning thread takes the CPU the far side and the kernel need); 50 us made
   * the RTT's best case 0.23 against 0.18 ms and back-to-back pings 0.21 against 0.12 ms.
   */
  runOnce(timeoutMs: number): boolean {
    const poll = this.poll;
    this.stats.polls++;
    const r = poll.wait(timeoutMs);
    if (r <= 0) return false;
    const tr = poll.revents(POLL_TUN);
    if ((tr & POLLIN) !== 0) {
      this.round(true);
    } else if ((tr & (POLLERR | POLLHUP | POLLNVAL)) !== 0) {
      // a deleted interface leaves its fd in error (POLLERR): as the portable path words it
      this.deviceGone(`poll revents 0x${tr.toString(16)}`, true);
    }
    if ((poll.revents(POLL_UDP) & POLLIN) !== 0) this.round(false);
    return (poll.revents(POLL_WAKE) & POLLIN) !== 0;
  }

  /** One direction's round, exceptions contained (counted, the round's packets released). */
  private round(fromTun: boolean): void {
    try {
      if (fromTun) this.readTun();
      else this.readUdp();
    } catch (e) {
      this.stats.errors++;
      this.abandonRound();
      this.onError(e);
    }
  }

  // ---------------------------------------------------------------- TUN -> UDP

  private readTun(): void {
    const libc = this.libc;
    const large = this.core.pools.large;
    const largeBytes = large.bytes;
    const readAt = this.readAt;
    const headroom = large.headroom;
    const pipeline = this.core.pipeline;
    const st = this.stats;
    this.segUsed = 0;
    for (let k = 0; k < TUN_READS; k++) {
      const p = large.acquire();
      if (p === null) {
        st.rxNoBuffer++;
        break;
      }
      this.inHand = p;
      const slotOff = p.slot * large.slotSize;
      const n = libc.read(this.tunFd, readAt.get(p.slot), this.largeCap);
      if (n < 0) {
        const e = libc.errno();
        this.inHand = null;
        p.release();
        if (e === EAGAIN || e === EINTR) break;
        this.deviceGone(`read failed with ${errnoName(e)}`, e === EBADFD || e === EFAULT);
        break;
      }
      st.tunReads++;
      if (n <= VNET_HDR_LEN) {
        this.inHand = null;
        pipeline.dropFromIo(p, DropReason.Truncated);
        continue;
      }
      const ipLen = n - VNET_HDR_LEN;
      p.offset = headroom;
      p.length = ipLen;
      p.tag = 0;
      const h = this.vnet.wrap(largeBytes, slotOff + headroom - VNET_HDR_LEN);
      const gso = h.gsoType & ~VIRTIO_NET_HDR_GSO_ECN;
      if (gso === VIRTIO_NET_HDR_GSO_NONE) {
        if (h.needsCsum && !completePartialChecksum(p.buf, headroom, ipLen, h.csumStart, h.csumOffset)) {
          this.inHand = null;
          pipeline.dropFromIo(p, DropReason.OffloadBadHeader);
          continue;
        }
        st.tunRxPackets++;
        st.tunRxBytes += ipLen;
        this.toDevBatch(p);
      } else if (gso === VIRTIO_NET_HDR_GSO_TCPV4 || gso === VIRTIO_NET_HDR_GSO_TCPV6) {
        this.superPacket(p, h, slotOff + headroom, ipLen);
      } else {
        this.inHand = null;
        pipeline.dropFromIo(p, DropReason.OffloadBadGso);
      }
    }
    this.deliverDev();
    this.sender.flush();
    this.writer.flush();
    this.segUsed = 0;
  }

  /** Queue p (the packet in hand) for fromDevice. */
  private toDevBatch(p: PacketBuffer): void {
    this.devBatch[this.devCount++] = p;
    this.inHand = null;
    if (this.devCount === BATCH_MAX) this.deliverDev();
  }

  /** Hand the queued device packets to the pipeline (ownership passes with the call). */
  private deliverDev(): void {
    const n = this.devCount;
    if (n === 0) return;
    this.devCount = 0;
    this.core.pipeline.fromDevice(this.devBatch, n);
  }

  private superPacket(p: PacketBuffer, h: VnetHdr, ipOff: number, ipLen: number): void {
    const st = this.stats;
    const pipeline = this.core.pipeline;
    const b = p.buf;
    st.superPackets++;
    // segment length for the MTU decision: IP + TCP header + gso_size (checked again by the splitter)
    const cs = h.csumStart;
    const doffAt = p.offset + cs + 12;
    const doff = cs + 13 < ipLen ? (b[doffAt]! >> 4) << 2 : 0;
    const fam = b[p.offset]! >> 4 === 6 ? 6 : 4;
    // keep the order of what this round read: queued packets go to the pipeline first
    this.deliverDev();
    const peer = pipeline.superTarget(p, fam, cs + doff + h.gsoSize);
    if (this.segUsed === this.segLists.length) {
      this.sender.flush(); // frees the header arenas of the super-packets sent so far
      this.segUsed = 0;
    }
    const segs = this.segLists[this.segUsed]!;
    const n = this.splitter.split(this.core.pools.large.bytes, ipOff, ipLen, h, segs);
    if (n < 0) {
      this.inHand = null;
      pipeline.dropFromIo(p, splitDrop(n));
      return;
    }
    const bytes = ipLen + (n - 1) * segs.hdrLen;
    st.tunRxPackets += n;
    st.tunRxBytes += bytes;
    if (peer !== null) {
      this.segUsed++;
      const sender = this.sender;
      const memBase = this.addrs.bases.get(BASE_MEM);
      const largeBase = this.addrs.bases.get(BASE_LARGE);
      const hl = segs.hdrLen;
      sender.hold(p); // first: the sender owns p from here, also if a segment() throws
      this.inHand = null;
      for (let i = 0; i < n; i++) sender.segment(peer.index, memBase, segs.hdrOff(i), hl, largeBase, segs.payOff[i]!, segs.payLen[i]!);
      pipeline.sentSegments(peer, n, bytes);
      return;
    }
    // not decided at once: each segment on its own through the pipeline
    st.superSlowPath++;
    const small = this.core.pools.small;
    for (let i = 0; i < n; i++) {
      const q = small.acquire();
      if (q === null) {
        this.core.drops.count(DropReason.PoolExhausted);
        continue;
      }
      this.inHand2 = q;
      q.length = segs.copySegment(i, q.buf, q.offset);
      this.devBatch[this.devCount++] = q;
      this.inHand2 = null;
      if (this.devCount === BATCH_MAX) this.deliverDev();
    }
    this.inHand = null;
    p.release();
  }

  // ---------------------------------------------------------------- UDP -> TUN

  private readUdp(): void {
    const n = this.udp.recvmmsg(this.rxVec, RX_MESSAGES);
    if (n <= 0) return;
    const vec = this.rxVec;
    const mem = this.mem;
    const pools = this.core.pools;
    const small = pools.small;
    const smallBytes = small.bytes;
    const index = this.index;
    const st = this.stats;
    st.udpRxChunks += n;
    for (let i = 0; i < n; i++) {
      const len = vec.received(i);
      if ((vec.flags(i) & MSG_TRUNC) !== 0) {
        st.udpRxTruncated++;
        this.core.drops.count(DropReason.Truncated);
        continue;
      }
      const gro = vec.groSegmentSize(i);
      const seg = gro > 0 ? gro : len;
      const nameOff = vec.nameOffOf(i);
      const peer = index.lookup(mem.u8, nameOff);
      const chunk = this.rxArea + i * RX_CHUNK;
      for (let off = 0; off < len; off += seg) {
        const dl = len - off < seg ? len - off : seg;
        st.udpRxPackets++;
        st.udpRxBytes += dl;
        const q = pools.acquire(dl);
        if (q === null) {
          st.rxNoBuffer++;
          this.core.drops.count(DropReason.PoolExhausted);
          continue;
        }
        this.inHand = q;
        const from = chunk + off;
        if (q.pool === small) smallBytes.copyWithin(q.slot * small.slotSize + q.offset, from, from + dl);
        else copyBytes(smallBytes, from, q.buf, q.offset, dl);
        q.length = dl;
        q.tag = peer;
        const k = this.rxCount++;
        this.rxBatch[k] = q;
        this.inHand = null;
        index.batchName[k] = nameOff;
        if (k + 1 === BATCH_MAX) this.deliverRx();
      }
    }
    this.deliverRx();
    this.writer.flush();
    this.sender.flush();
  }

  private deliverRx(): void {
    const n = this.rxCount;
    if (n === 0) return;
    this.rxCount = 0;
    this.core.pipeline.fromTransport(this.rxBatch, n, this.index);
  }

  // ---------------------------------------------------------------- failures and stop

  /** After an exception: release what the engine still owns, send nothing half-built. */
  private abandonRound(): void {
    if (this.inHand !== null) this.inHand.release();
    if (this.inHand2 !== null) this.inHand2.release();
    this.inHand = this.inHand2 = null;
    for (let i = 0; i < this.devCount; i++) this.devBatch[i]!.release();
    this.devCount = 0;
    for (let i = 0; i < this.rxCount; i++) this.rxBatch[i]!.release();
    this.rxCount = 0;
    this.segUsed = 0;
    this.sender.discard();
    this.writer.discard();
  }

  private deviceGone(why: string, deleted: boolean): void {
    if (this.tunDown) return;
    this.tunDown = true;
    this.poll.set(POLL_TUN, -1, 0); // poll ignores negative fds
    this.onDown(why, deleted);
  }

  /** Flush what is pending (a control message queued a send) outside a round. */
  flushPending(): void {
    try {
      this.sender.flush();
      this.writer.flush();
    } catch (e) {
      this.stats.errors++;
      this.abandonRound();
      this.onError(e);
    }
  }

  /** Stop: release every slot the engine holds, stop following the endpoints record. The fds are the caller's. */
  close(): void {
    this.abandonRound();
    const small = this.core.pools.small;
    for (let i = 0; i < this.rxSlots.length; i++) if (small.isLive(this.rxSlots[i]!)) small.release(small.handle(this.rxSlots[i]!));
    this.index.unfollow();
    this.core.pipeline.device = null;
    this.core.pipeline.transport = null;
    this.core.pipeline.clockSource = null;
  }
}
