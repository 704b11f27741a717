/**
 * Fast path, UDP out: the datagrams the pipeline sends, and the segments of TCP super-packets
 * cut by the TSO splitter, packed into GSO messages and sent with one sendmmsg per flush.
 *
 * Packing (UDP_SEGMENT): consecutive datagrams to the same destination of one size S join one
 * message, which the kernel cuts back at S; a shorter datagram may end a message (the last
 * segment of a GSO send may be short) and closes it; a message holds at most
 * UDP_GSO_MAX_SEGMENTS datagrams and UDP_MAX_PAYLOAD_V4 bytes (one UDP datagram's worth: a 64 KiB
 * TCP super-packet cut at MTU 1400 takes two messages), and at most IOV_PER_MESSAGE iovecs (a
 * segment is one iovec, or two: its header from the splitter's arena and its payload in place).
 * Without UDP_SEGMENT every datagram is its own message (still one sendmmsg per flush).
 *
 * Ownership (PacketSender): send() takes p in every case; the slot is held until the flush
 * (the kernel copies the bytes in sendmmsg) and released there, sent or not. Send errors at
 * flush time are counted as drops (SendFailed); EAGAIN (socket buffer full) waits for POLLOUT a
 * few milliseconds before giving up, so a burst is paced by the socket instead of dropped.
 */
import { DropReason, type DropCounters } from '../base/drop-reason.ts';
import type { PacketBuffer } from '../base/pool.ts';
import type { Libc } from '../sys/libc.ts';
import { EAGAIN, EINTR, EINVAL, EIO, EMSGSIZE, POLLOUT } from '../sys/linux.ts';
import type { SysMemory } from '../sys/memory.ts';
import { IOVEC_SIZE, MmsgVector, writeIovecAt } from '../sys/msg.ts';
import { PollSet } from '../sys/poll.ts';
import type { PeerEndpoint } from '../transport/peer-endpoints.ts';
import { UDP_GSO_MAX_SEGMENTS, UDP_MAX_PAYLOAD_V4, type GsoUdpSocket } from '../transport/udp-gso.ts';
import type { UnderlayIndex } from './fast-sources.ts';
import type { PacketSender } from './pipeline.ts';
import type { PoolAddresses } from './fast-memory.ts';

/** iovecs per message: two per segment (header + payload) for a full GSO message. */
export const IOV_PER_MESSAGE = 2 * UDP_GSO_MAX_SEGMENTS;
/** Destination of a message built by sendToEndpoint (never joined by another datagram). */
const TO_ADDRESS = -2;
/** How long a full socket buffer is waited for, per flush, before the rest is dropped. */
const EAGAIN_WAIT_MS = 20;

export interface UdpSenderStats {
  /** Datagrams and bytes handed to the kernel. */
  txPackets: number;
  txBytes: number;
  /** sendmmsg calls and messages (a GSO message carries several datagrams). */
  calls: number;
  messages: number;
  /** Datagrams that went in messages of two or more. */
  gsoDatagrams: number;
  /** Datagrams lost to send errors. */
  txErrors: number;
  /** Times the socket buffer was full. */
  eagain: number;
}

export class FastUdpSender implements PacketSender {
  readonly vec: MmsgVector;
  readonly stats: UdpSenderStats = { txPackets: 0, txBytes: 0, calls: 0, messages: 0, gsoDatagrams: 0, txErrors: 0, eagain: 0 };
  /** UDP_SEGMENT in use (turned off for good if the kernel refuses a GSO message). */
  gso: boolean;
  /** Called once with a line when GSO had to be turned off. */
  onWarning: (line: string) => void = () => {};
  /**
   * A send failed in the socket (ENETUNREACH when a route went away, EMSGSIZE, ENOBUFS ...):
   * errno, the peer index it went to (negative: an address that is no peer's) and the datagrams lost.
   */
  onSendError: (errno: number, peer: number, datagrams: number) => void = () => {};
  private readonly maxMessages: number;
  private n = 0;
  private readonly mDest: Int32Array;
  private readonly mSeg: Int32Array;
  private readonly mCount: Int32Array;
  private readonly mBytes: Int32Array;
  private readonly mIov: Int32Array;
  private readonly mClosed: Uint8Array;
  private held: PacketBuffer[];
  private heldCount = 0;
  private readonly waitOut: PollSet;

  constructor(
    private readonly libc: Libc,
    private readonly mem: SysMemory,
    private readonly sock: GsoUdpSocket,
    private readonly index: UnderlayIndex,
    private readonly pools: PoolAddresses,
    private readonly drops: DropCounters,
    maxMessages = 64,
  ) {
    this.maxMessages = maxMessages;
    this.vec = new MmsgVector(mem, maxMessages, IOV_PER_MESSAGE);
    this.mDest = new Int32Array(maxMessages);
    this.mSeg = new Int32Array(maxMessages);
    this.mCount = new Int32Array(maxMessages);
    this.mBytes = new Int32Array(maxMessages);
    this.mIov = new Int32Array(maxMessages);
    this.mClosed = new Uint8Array(maxMessages);
    this.held = new Array<PacketBuffer>(maxMessages * UDP_GSO_MAX_SEGMENTS);
    this.gso = sock.gso;
    this.waitOut = new PollSet(libc, mem, 1);
    this.waitOut.add(sock.fd, POLLOUT);
  }

  /** Datagrams waiting for the flush. */
  get pending(): number {
    let k = 0;
    for (let m = 0; m < this.n; m++) k += this.mCount[m]!;
    return k;
  }

  send(p: PacketBuffer, peer: number): DropReason {
    if (this.index.nameLength(peer) === 0) {
      p.release();
      return DropReason.UnknownPeer;
    }
    this.hold(p);
    this.segment(peer, this.pools.baseOf(p), this.pools.slabOffset(p), p.length, this.pools.baseOf(p), 0, 0);
    return DropReason.None;
  }

  sendToEndpoint(p: PacketBuffer, to: PeerEndpoint): DropReason {
    if (!this.index.reachable(to)) {
      p.release();
      return DropReason.SendFailed;
    }
    this.hold(p);
    if (this.n === this.maxMessages) this.sendAll();
    const m = this.open(TO_ADDRESS, p.length);
    const len = this.index.writeName(this.mem.u8, this.vec.nameOffOf(m), to.family, to.bytes, to.port);
    this.vec.setNameLen(m, len);
    writeIovecAt(this.mem.dv, this.vec.iovOffOf(m, 0), this.pools.baseOf(p), this.pools.slabOffset(p), p.length);
    this.mIov[m] = 1;
    this.mCount[m] = 1;
    this.mBytes[m] = p.length;
    this.mClosed[m] = 1;
    return DropReason.None;
  }

  /** Keep p until the flush (its bytes go out in the next sendmmsg). */
  hold(p: PacketBuffer): void {
    if (this.heldCount === this.held.length) this.held.length *= 2;
    this.held[this.heldCount++] = p;
  }

  /**
   * One datagram to peer `peer`: len1 bytes at base1 + off1, then len2 at base2 + off2 (len2 0:
   * one iovec). Bases boxed (PoolAddresses.bases), offsets small integers. The memory must
   * stay put until the flush (hold() its buffer).
   */
  segment(peer: number, base1: number, off1: number, len1: number, base2: number, off2: number, len2: number): void {
    const len = len1 + len2;
    const iovs = len2 > 0 ? 2 : 1;
    let m = this.n - 1;
    const join =
      this.gso &&
      m >= 0 &&
      this.mDest[m] === peer &&
      this.mClosed[m] === 0 &&
      len <= this.mSeg[m]! &&
      this.mCount[m]! < UDP_GSO_MAX_SEGMENTS &&
      this.mBytes[m]! + len <= UDP_MAX_PAYLOAD_V4 &&
      this.mIov[m]! + iovs <= IOV_PER_MESSAGE;
    if (!join) {
      if (this.n === this.maxMessages) this.sendAll(); // the held buffers stay: the datagram at hand may be one of theirs
      m = this.open(peer, len);
      const names = this.index.nameBytes;
      const from = this.index.nameOffset(peer);
      const nl = this.index.nameLength(peer);
      const u8 = this.mem.u8;
      const to = this.vec.nameOffOf(m);
      for (let i = 0; i < nl; i++) u8[to + i] = names[from + i]!;
      this.vec.setNameLen(m, nl);
    }
    const j = this.mIov[m]!;
    const o = this.vec.iovOffOf(m, j);
    writeIovecAt(this.mem.dv, o, base1, off1, len1);
    if (len2 > 0) writeIovecAt(this.mem.dv, o + IOVEC_SIZE, base2, off2, len2);
    this.mIov[m] = j + iovs;
    this.mCount[m]!++;
    this.mBytes[m]! += len;
    if (len < this.mSeg[m]!) this.mClosed[m] = 1;
  }

  private open(dest: number, segSize: number): number {
    const m = this.n++;
    this.mDest[m] = dest;
    this.mSeg[m] = segSize;
    this.mCount[m] = 0;
    this.mBytes[m] = 0;
    this.mIov[m] = 0;
    this.mClosed[m] = 0;
    return m;
  }

  /** Send everything collected (one sendmmsg, more when the kernel takes part), release the held slots. */
  flush(): void {
    this.sendAll();
    const held = this.held;
    for (let i = 0; i < this.heldCount; i++) held[i]!.release();
    this.heldCount = 0;
  }

  /** Send the collected messages; the held slots stay held (flush releases them). */
  private sendAll(): void {
    const n = this.n;
    if (n > 0) {
      const vec = this.vec;
      for (let m = 0; m < n; m++) {
        vec.setIovCount(m, this.mIov[m]!);
        if (this.mCount[m]! > 1) vec.setSegmentSize(m, this.mSeg[m]!);
        else vec.clearControl(m);
      }
      let sent = 0;
      let waited = 0;
      while (sent < n) {
        this.stats.calls++;
        const r = this.libc.sendmmsg(this.sock.fd, vec.msgAddr(sent), n - sent, 0);
        if (r > 0) {
          for (let m = sent; m < sent + r; m++) this.sentMessage(m);
          sent += r;
          continue;
        }
        const e = this.libc.errno();
        if (e === EINTR) continue;
        if (e === EAGAIN) {
          this.stats.eagain++;
          if (waited < EAGAIN_WAIT_MS) {
            waited += 5;
            this.waitOut.wait(5);
            continue;
          }
        } else if (this.mCount[sent]! > 1 && (e === EIO || e === EINVAL || e === EMSGSIZE) && this.gso) {
          // the kernel refuses GSO here: from now on one datagram per message
          this.gso = false;
          this.onWarning(`warning: UDP GSO send refused (errno ${e}): sending one datagram per message from now on`);
        }
        // this message is lost; go on with the next
        this.onSendError(e, this.mDest[sent]!, this.mCount[sent]!);
        this.stats.txErrors += this.mCount[sent]!;
        for (let k = 0; k < this.mCount[sent]!; k++) this.drops.count(DropReason.SendFailed);
        sent++;
      }
      this.n = 0;
    }
  }

  private sentMessage(m: number): void {
    const c = this.mCount[m]!;
    this.stats.messages++;
    this.stats.txPackets += c;
    this.stats.txBytes += this.mBytes[m]!;
    if (c > 1) this.stats.gsoDatagrams += c;
  }

  /** Release everything held without sending (stop). */
  discard(): void {
    this.n = 0;
    for (let i = 0; i < this.heldCount; i++) this.held[i]!.release();
    this.heldCount = 0;
  }
}
