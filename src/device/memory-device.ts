/**
 * In-memory packet device with the TUN device's interface, for unit tests and the userspace mode.
 *
 * - `inject(bytes)` delivers a packet as if the kernel had routed it into the TUN: it is copied
 *   into a pool slot, queued, and handed to the batch handler from a later event-loop turn
 *   (setImmediate), in batches, like the TUN reader.
 * - `write(p)` is what the pipeline sends "to the kernel": checked as the kernel checks a TUN
 *   write (IP version 4 or 6, else EINVAL), then handed to the sink: a peer device (`connect`,
 *   `MemoryDevice.pair`), a function (`setSink`, e.g. a userspace host stack), or by default a
 *   bounded queue read with `takeWritten()`.
 *
 * Steady state allocates nothing per packet when connected to a peer or a sink function; the
 * default written-queue copies each packet (it is for tests).
 */
import { BufferPool, type PacketBuffer } from '../base/pool.ts';
import { ipVersion } from '../wire/ip.ts';
import { newDeviceStats, type BatchHandler, type DeviceStats, type DownHandler, type HandlerErrorHandler, type PacketDevice } from './device.ts';

/** Receives written packets; the bytes are valid only during the call. */
export type WriteSink = (buf: Uint8Array, offset: number, length: number) => void;

export interface MemoryDeviceOptions {
  name?: string;
  mtu?: number;
  /** Pool injected packets are copied into; default a private pool of 1024 slots. */
  pool?: BufferPool;
  /** Largest batch handed to the handler (default 64). */
  batchSize?: number;
  /** Packets queued for delivery before further injects are dropped (default 1024). */
  queueLimit?: number;
  /** Packets kept for takeWritten() before the oldest is dropped (default 1024). */
  writtenLimit?: number;
}

export class MemoryDevice implements PacketDevice {
  readonly name: string;
  readonly mtu: number;
  readonly pool: BufferPool;
  readonly stats: DeviceStats = newDeviceStats();
  /** Written packets dropped from the full takeWritten() queue (oldest first). */
  writtenDropped = 0;
  /** Last write error code ('EINVAL', 'EBADF'), for diagnostics. */
  lastTxError = '';

  private readonly batchSize: number;
  private readonly queue: (PacketBuffer | undefined)[];
  private qHead = 0;
  private qCount = 0;
  private readonly batch: PacketBuffer[];
  private readonly writtenLimit: number;
  private written: Buffer[] = [];
  private sink: WriteSink | null = null;
  private onBatch: BatchHandler | null = null;
  private onHandlerError: HandlerErrorHandler | undefined;
  private scheduled = false;
  private closed = false;

  constructor(opts: MemoryDeviceOptions = {}) {
    this.name = opts.name ?? 'mem0';
    this.mtu = opts.mtu ?? 1500;
    this.pool = opts.pool ?? new BufferPool({ slots: 1024 });
    this.batchSize = Math.max(1, opts.batchSize ?? 64);
    this.queue = new Array<PacketBuffer | undefined>(Math.max(1, opts.queueLimit ?? 1024));
    this.batch = new Array<PacketBuffer>(this.batchSize);
    this.writtenLimit = Math.max(0, opts.writtenLimit ?? 1024);
  }

  /** Two devices back to back: what one writes, the other receives. */
  static pair(a: MemoryDeviceOptions = {}, b: MemoryDeviceOptions = {}): [MemoryDevice, MemoryDevice] {
    const da = new MemoryDevice({ name: 'mem0', ...a });
    const db = new MemoryDevice({ name: 'mem1', ...b });
    da.connect(db);
    db.connect(da);
    return [da, db];
  }

  /** Send what this device writes into `peer` (as `peer.inject`). One way; see pair(). */
  connect(peer: MemoryDevice): void {
    this.sink = (buf, off, len) => {
      peer.inject(buf, off, len);
    };
  }

  /** Hand written packets to `sink` (null: back to the takeWritten() queue). */
  setSink(sink: WriteSink | null): void {
    this.sink = sink;
  }

  /** Packets queued for delivery. */
  get pending(): number {
    return this.qCount;
  }

  start(onBatch: BatchHandler, _onDown?: DownHandler, onError?: HandlerErrorHandler): void {
    if (this.onBatch) throw new Error(`device ${this.name}: start() called twice`);
    if (this.closed) throw new Error(`device ${this.name}: start() after close()`);
    this.onBatch = onBatch;
    this.onHandlerError = onError;
    if (this.qCount > 0) this.schedule();
  }

  /**
   * Deliver `bytes[offset, offset + length)` as a received packet (copied into a pool slot).
   * Returns false, counted, when the device is closed, the packet exceeds the MTU or the pool
   * slot, the pool is exhausted or the queue is full.
   */
  inject(bytes: Uint8Array, offset = 0, length = bytes.length - offset): boolean {
    if (this.closed || length > this.mtu || length > this.pool.capacity || this.qCount === this.queue.length) {
      this.stats.rxDropsOther++;
      return false;
    }
    const p = this.pool.acquire();
    if (!p) {
      this.stats.rxDropsPoolExhausted++;
      return false;
    }
    p.fill(bytes, offset, length);
    this.queue[(this.qHead + this.qCount) % this.queue.length] = p;
    this.qCount++;
    if (this.onBatch) this.schedule();
    return true;
  }

  /**
   * Deliver what is queued now, synchronously (for tests that want no event-loop turn). Packets
   * injected by the handler meanwhile wait for the next turn, so a handler that re-injects
   * cannot loop forever.
   */
  flush(): void {
    if (!this.onBatch || this.closed) return;
    const q = this.queue;
    const batch = this.batch;
    const stats = this.stats;
    let budget = this.qCount;
    while (budget > 0 && this.qCount > 0 && !this.closed) {
      let count = 0;
      let bytes = 0;
      while (this.qCount > 0 && count < this.batchSize && count < budget) {
        const p = q[this.qHead]!;
        q[this.qHead] = undefined;
        this.qHead = (this.qHead + 1) % q.length;
        this.qCount--;
        batch[count++] = p;
        bytes += p.length;
      }
      stats.rxPackets += count;
      stats.rxBytes += bytes;
      stats.rxBatches++;
      budget -= count;
      try {
        this.onBatch(batch, count);
      } catch (e) {
        // as the TUN: count, report, keep delivering (the handler owned the batch)
        this.stats.rxHandlerErrors++;
        try {
          this.onHandlerError?.(e);
        } catch {
          /* the reporter must not throw */
        }
      }
    }
    if (this.qCount > 0 && !this.closed) this.schedule();
  }

  write(p: PacketBuffer): boolean {
    return this.writeBytes(p.buf, p.offset, p.length);
  }

  writeBytes(buf: Uint8Array, offset: number, length: number): boolean {
    if (this.closed) return this.txError('EBADF');
    // As the kernel's tun_get_user() with IFF_NO_PI: an empty packet or an IP version other
    // than 4 or 6 is EINVAL.
    if (length <= 0 || length > 65535 || offset < 0 || offset + length > buf.length) return this.txError('EINVAL');
    const v = ipVersion(buf, offset);
    if (v !== 4 && v !== 6) return this.txError('EINVAL');
    this.stats.txPackets++;
    this.stats.txBytes += length;
    if (this.sink) {
      try {
        this.sink(buf, offset, length);
      } catch {
        this.stats.txPackets--;
        this.stats.txBytes -= length;
        return this.txError('ESINK'); // write() never throws (device.ts)
      }
    } else if (this.writtenLimit > 0) {
      if (this.written.length >= this.writtenLimit) {
        this.written.shift();
        this.writtenDropped++;
      }
      this.written.push(Buffer.from(buf.subarray(offset, offset + length)));
    }
    return true;
  }

  /** Packets written so far (copies, oldest first), emptying the queue. */
  takeWritten(): Buffer[] {
    const w = this.written;
    this.written = [];
    return w;
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      while (this.qCount > 0) {
        this.queue[this.qHead]!.release();
        this.queue[this.qHead] = undefined;
        this.qHead = (this.qHead + 1) % this.queue.length;
        this.qCount--;
      }
    }
    return Promise.resolve();
  }

  private txError(code: string): boolean {
    this.stats.txErrors++;
    this.lastTxError = code;
    return false;
  }

  private readonly onImmediate = (): void => {
    this.scheduled = false;
    this.flush();
  };

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.onImmediate);
  }
}
