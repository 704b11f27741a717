/**
 * Kernel TUN device (Linux): read by a worker thread straight into pool slots, written from the
 * main thread with write(2). Creating and configuring the interface (the tuntap2 addon and
 * iproute2) is tun-setup.ts; openTun() below does that, then wraps the fd in a TunDevice.
 *
 * Reading. A worker (tun-reader-worker.mjs) loops a blocking read(2) into pool slots of the
 * shared slab and publishes (slot, length) pairs in a shared ring; main takes them in batches,
 * hands them to the pipeline and gives the worker fresh slots through a second ring. The worker
 * wakes main with Atomics.notify only when main has said it is idle (MAIN_WAITING), and main
 * waits with Atomics.waitAsync: one wake-up per batch, never a message per packet. (A MessagePort
 * message per wake-up measured no better, and NAPI-style setImmediate polling while busy worse:
 * on 2 cores the spinning main thread starves the reader.) Out of free slots, the worker waits
 * for a refill instead of reading and dropping (stats.rxStalls; the kernel queue holds or drops
 * meanwhile), and main retries the refill every 2 ms while the pipeline holds the whole pool.
 *
 * Shutdown. A read(2) blocked on an idle TUN is not woken by closing the fd (the read holds its
 * own reference), nor by setting the link down, nor by Worker.terminate() (that only takes effect
 * when the read returns), and Node joins worker threads on exit, so a blocked reader would hang
 * process exit. Deleting the interface does wake it: the kernel detaches the queue and the read
 * fails with EFAULT (measured ~30 ms). So close() sets STOP, runs `ip link del`, waits for the
 * worker to exit, then closes the fd and returns the worker's slots to the pool; an 'exit' hook
 * does the same synchronously if the process exits without close().
 */
import { closeSync, writeSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { BufferPool, type PacketBuffer } from '../base/pool.ts';
import { startWorker } from '../base/worker-module.ts';
import { newDeviceStats, type BatchHandler, type DeviceStats, type DownHandler, type HandlerErrorHandler, type PacketDevice } from './device.ts';
import { CTL, STATE_EXITED, STATE_RUNNING, STATE_STARTING, pow2AtLeast, type ReaderWorkerData } from './ring.ts';
import { createTunInterface, deleteInterface, deleteInterfaceSync, type TunInterfaceOptions } from './tun-setup.ts';

export { TunError, validInterfaceName, type TunErrorCode, type TunInterfaceOptions } from './tun-setup.ts';

/** The interface (tun-setup.ts) and how the device reads it. */
export interface TunOptions extends TunInterfaceOptions {
  /** Pool the reader fills; default a private pool of 1024 slots. */
  pool?: BufferPool;
  /** Slots parked at the reader worker (default 512, at most pool.slots / 2). */
  readAhead?: number;
  /** Largest batch handed to the handler (default 64). */
  batchSize?: number;
  /** Packets delivered per event-loop turn before yielding to other I/O (default 1024). */
  turnBudget?: number;
}

const ERRNO_NAMES = new Map<number, string>(Object.entries(osConstants.errno).map(([k, v]) => [v, k]));
function errnoName(n: number): string {
  return ERRNO_NAMES.get(n) ?? `errno ${n}`;
}

/**
 * Create, configure and open a TUN device. Rejects with a TunError (one-line message) when the
 * device cannot be created or configured; nothing is left behind in that case.
 */
export async function openTun(opts: TunOptions = {}): Promise<TunDevice> {
  const pool = opts.pool ?? new BufferPool({ slots: 1024 });
  const tun = await createTunInterface(opts, pool.capacity);
  return new TunDevice(tun.fd, tun.name, tun.mtu, opts.netns, pool, opts);
}

type WaitAsync = (
  ta: Int32Array,
  index: number,
  value: number,
  timeout?: number,
) => { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

/** Linux EBADFD ("file descriptor in bad state"), missing from os.constants.errno. */
const EBADFD = 77;

/** The reader worker: plain JavaScript (its header says why); startWorker() finds it in dist/ too. */
const READER_WORKER = new URL('./tun-reader-worker.mjs', import.meta.url);
const EXIT_WAIT_MS = 2000;
const STARVE_RETRY_MS = 2;

export class TunDevice implements PacketDevice {
  readonly pool: BufferPool;
  private readonly _stats: DeviceStats = newDeviceStats();
  private readonly ctl: Int32Array;
  private readonly rx: Int32Array;
  private readonly free: Int32Array;
  private readonly ctlSab: SharedArrayBuffer;
  private readonly rxSab: SharedArrayBuffer;
  private readonly freeSab: SharedArrayBuffer;
  private readonly mask: number;
  private readonly readAhead: number;
  private readonly batchSize: number;
  private readonly turnBudget: number;
  private readonly batch: PacketBuffer[];
  private readonly tmp: Int32Array;
  private rxTail = 0;
  private freeHead = 0;
  /** Slots given to the worker and not yet come back through the rx ring. */
  private parked = 0;
  private worker: Worker | null = null;
  private workerExited: Promise<void> | null = null;
  private onBatch: BatchHandler | null = null;
  private onDown: DownHandler | undefined;
  private onHandlerError: HandlerErrorHandler | undefined;
  private started = false;
  private closed = false;
  private fdOpen = true;
  private closing: Promise<void> | null = null;
  private immediatePending = false;
  private starveTimer: NodeJS.Timeout | null = null;
  private workerError = '';
  /** Last write error code (e.g. 'EINVAL', 'EIO'), for diagnostics. */
  lastTxError = '';
  /** Set when close() could not stop the reader (its slots are then not returned). */
  readerStuck = false;

  /** Use openTun(). */
  constructor(
    readonly fd: number,
    readonly name: string,
    readonly mtu: number,
    readonly netns: string | undefined,
    pool: BufferPool,
    opts: TunOptions = {},
  ) {
    this.pool = pool;
    this.readAhead = Math.max(1, Math.min(opts.readAhead ?? 512, Math.floor(pool.slots / 2)));
    this.batchSize = Math.max(1, opts.batchSize ?? 64);
    this.turnBudget = Math.max(this.batchSize, opts.turnBudget ?? 1024);
    const capacity = pow2AtLeast(this.readAhead + 1);
    this.mask = capacity - 1;
    this.ctlSab = new SharedArrayBuffer(CTL.SIZE * 4);
    this.rxSab = new SharedArrayBuffer(capacity * 8);
    this.freeSab = new SharedArrayBuffer(capacity * 4);
    this.ctl = new Int32Array(this.ctlSab);
    this.rx = new Int32Array(this.rxSab);
    this.free = new Int32Array(this.freeSab);
    this.ctl[CTL.HELD_SLOT] = -1;
    this.batch = new Array<PacketBuffer>(this.batchSize);
    this.tmp = new Int32Array(this.readAhead);
  }

  get stats(): DeviceStats {
    this._stats.rxStalls = Atomics.load(this.ctl, CTL.STALLS);
    return this._stats;
  }

  /** Transient read errors the reader retried (EINTR/EAGAIN). */
  get readRetries(): number {
    return Atomics.load(this.ctl, CTL.READ_RETRIES);
  }

  /** Slots currently parked at the reader worker (counted as live in the pool). */
  get parkedSlots(): number {
    return this.parked;
  }

  start(onBatch: BatchHandler, onDown?: DownHandler, onError?: HandlerErrorHandler): void {
    if (this.started) throw new Error(`TUN ${this.name}: start() called twice`);
    if (this.closed) throw new Error(`TUN ${this.name}: start() after close()`);
    this.started = true;
    this.onBatch = onBatch;
    this.onDown = onDown;
    this.onHandlerError = onError;
    this.refill();
    const data: ReaderWorkerData = {
      fd: this.fd,
      slab: this.pool.slab,
      slotSize: this.pool.slotSize,
      headroom: this.pool.headroom,
      ctl: this.ctlSab,
      rx: this.rxSab,
      free: this.freeSab,
      capacity: this.mask + 1,
      layout: CTL,
      states: { starting: STATE_STARTING, running: STATE_RUNNING, exited: STATE_EXITED },
    };
    const w = startWorker(READER_WORKER, { workerData: data, stdout: false, stderr: false });
    this.worker = w;
    w.unref();
    this.workerExited = new Promise<void>((resolve) => {
      w.once('exit', () => {
        resolve();
        this.readerGone();
      });
    });
    w.on('error', (e: Error) => {
      // e.g. the worker script failed to load; reported through 'exit' -> readerGone -> onDown
      this.workerError = e.message.split('\n')[0]!;
    });
    process.on('exit', this.exitHook);
    this.armWait();
  }

  write(p: PacketBuffer): boolean {
    return this.writeBytes(p.buf, p.offset, p.length);
  }

  writeBytes(buf: Uint8Array, offset: number, length: number): boolean {
    if (!this.fdOpen) {
      this._stats.txErrors++;
      this.lastTxError = 'EBADF';
      return false;
    }
    try {
      writeSync(this.fd, buf, offset, length);
    } catch (e) {
      this._stats.txErrors++;
      this.lastTxError = (e as NodeJS.ErrnoException).code ?? 'EIO';
      return false;
    }
    this._stats.txPackets++;
    this._stats.txBytes += length;
    return true;
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  // ---- reader side ----

  private readonly onWake = (): void => {
    this.drain();
  };

  private readonly onImmediate = (): void => {
    this.immediatePending = false;
    this.drain();
  };

  private drain(): void {
    if (this.closed) return;
    const ctl = this.ctl;
    const rx = this.rx;
    const pool = this.pool;
    const headroom = pool.headroom;
    const batch = this.batch;
    const stats = this._stats;
    const mask = this.mask;
    let budget = this.turnBudget;
    let tail = this.rxTail;
    let head = Atomics.load(ctl, CTL.RX_HEAD);
    while (head !== tail && budget > 0) {
      const max = budget < this.batchSize ? budget : this.batchSize;
      let count = 0;
      let bytes = 0;
      while (head !== tail && count < max) {
        const i = (tail & mask) << 1;
        const p = pool.handle(rx[i]!);
        const len = rx[i + 1]!;
        p.offset = headroom;
        p.length = len;
        p.tag = 0;
        batch[count++] = p;
        bytes += len;
        tail = (tail + 1) | 0;
      }
      this.rxTail = tail;
      Atomics.store(ctl, CTL.RX_TAIL, tail);
      this.parked -= count;
      this.refill();
      stats.rxPackets += count;
      stats.rxBytes += bytes;
      stats.rxBatches++;
      budget -= count;
      try {
        this.onBatch!(batch, count);
      } catch (e) {
        // Not into the promise that woke us (an unhandled rejection ends the process), and the
        // reader keeps being drained: count, report, carry on. The handler owned the batch.
        this.handlerError(e);
      }
      if (this.closed) return;
      head = Atomics.load(ctl, CTL.RX_HEAD);
    }
    if (budget <= 0) {
      // More than a turn's worth: let other I/O run, then continue. (Polling with setImmediate
      // whenever a drain found packets, NAPI-style, measured worse on 2 cores: the spinning main
      // thread takes CPU from the reader and the sender, for no larger batches.)
      this.scheduleImmediate();
      return;
    }
    this.refill();
    if (this.parked === 0) this.startStarveTimer();
    this.armWait();
  }

  private handlerError(e: unknown): void {
    this._stats.rxHandlerErrors++;
    try {
      this.onHandlerError?.(e);
    } catch {
      /* the reporter must not throw */
    }
  }

  /**
   * The worker holds no slot and the pool had none to give: the pipeline holds them all. Nothing
   * tells us when it releases one, so retry the refill every STARVE_RETRY_MS until it works.
   */
  private startStarveTimer(): void {
    if (this.starveTimer || this.closed) return;
    this.starveTimer = setTimeout(this.onStarveTimer, STARVE_RETRY_MS);
    this.starveTimer.unref();
  }

  private readonly onStarveTimer = (): void => {
    this.starveTimer = null;
    if (this.closed) return;
    this.refill();
    if (this.parked === 0) this.startStarveTimer();
  };

  private scheduleImmediate(): void {
    if (this.immediatePending) return;
    this.immediatePending = true;
    setImmediate(this.onImmediate);
  }

  /** Tell the worker we are idle and wait for its notify (or deliver at once if work is there). */
  private armWait(): void {
    const ctl = this.ctl;
    Atomics.store(ctl, CTL.MAIN_WAITING, 1);
    const head = Atomics.load(ctl, CTL.RX_HEAD);
    if (head !== this.rxTail || Atomics.load(ctl, CTL.STATE) === STATE_EXITED) {
      Atomics.store(ctl, CTL.MAIN_WAITING, 0);
      if (head !== this.rxTail) this.scheduleImmediate();
      return;
    }
    const r = waitAsync(ctl, CTL.RX_HEAD, head);
    if (r.async) r.value.then(this.onWake, this.onWake);
    else this.scheduleImmediate();
  }

  /** Top the worker's free ring up to readAhead slots (as many as the pool can give). */
  private refill(): void {
    const want = this.readAhead - this.parked;
    if (want <= 0 || !this.fdOpen || Atomics.load(this.ctl, CTL.STATE) === STATE_EXITED) return;
    const n = this.pool.acquireSlots(this.tmp, want);
    if (n === 0) return;
    let h = this.freeHead;
    const free = this.free;
    const mask = this.mask;
    for (let i = 0; i < n; i++) {
      free[h & mask] = this.tmp[i]!;
      h = (h + 1) | 0;
    }
    this.freeHead = h;
    Atomics.store(this.ctl, CTL.FREE_HEAD, h);
    this.parked += n;
    if (Atomics.load(this.ctl, CTL.WORKER_WAITING) === 1) Atomics.notify(this.ctl, CTL.FREE_HEAD, 1);
  }

  /** The worker exited: on request (close) or because its read failed (interface deleted). */
  private readerGone(): void {
    process.off('exit', this.exitHook);
    if (this.closed) return;
    // Deliver what it published before it stopped, then report.
    this.drain();
    const errno = Atomics.load(this.ctl, CTL.ERRNO);
    const why = errno === osConstants.errno.EFAULT || errno === EBADFD
      ? `interface ${this.name} was deleted`
      : errno !== 0
        ? `read failed with ${errnoName(errno)}`
        : this.workerError
          ? `reader failed: ${this.workerError}`
          : 'reader stopped';
    const cb = this.onDown;
    this.onDown = undefined;
    cb?.(`TUN ${this.name}: ${why}`);
  }

  private readonly exitHook = (): void => {
    // Process exit without close(): Node joins worker threads at exit, and ours may be blocked in
    // read(2). Deleting the interface wakes it (synchronously here: 'exit' handlers cannot wait).
    Atomics.store(this.ctl, CTL.STOP, 1);
    if (Atomics.load(this.ctl, CTL.STATE) === STATE_EXITED) return;
    deleteInterfaceSync(this.name, this.netns);
  };

  private async doClose(): Promise<void> {
    this.closed = true;
    Atomics.store(this.ctl, CTL.STOP, 1);
    Atomics.notify(this.ctl, CTL.FREE_HEAD); // a worker waiting for a slot
    if (this.starveTimer) clearTimeout(this.starveTimer);
    this.starveTimer = null;
    // Delete the interface first: that is what wakes a read blocked on an idle device.
    await deleteInterface(this.name, this.netns).catch(() => undefined);
    let exited = true;
    if (this.worker && this.workerExited) {
      let timer: NodeJS.Timeout | undefined;
      exited = await Promise.race([
        this.workerExited.then(() => true),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), EXIT_WAIT_MS);
        }),
      ]);
      clearTimeout(timer);
      if (!exited) {
        this.readerStuck = true;
        void this.worker.terminate().catch(() => undefined);
      }
    }
    process.off('exit', this.exitHook);
    this.fdOpen = false;
    try {
      closeSync(this.fd);
    } catch {
      /* already closed */
    }
    if (exited) this.reclaim();
  }

  /** Return every slot the device holds (published but undelivered, parked, held) to the pool. */
  private reclaim(): void {
    const ctl = this.ctl;
    const pool = this.pool;
    const mask = this.mask;
    const head = Atomics.load(ctl, CTL.RX_HEAD);
    for (let t = this.rxTail; t !== head; t = (t + 1) | 0) pool.release(pool.handle(this.rx[(t & mask) << 1]!));
    this.rxTail = head;
    const fh = this.freeHead;
    for (let t = Atomics.load(ctl, CTL.FREE_TAIL); t !== fh; t = (t + 1) | 0) pool.release(pool.handle(this.free[t & mask]!));
    Atomics.store(ctl, CTL.FREE_TAIL, fh);
    const held = Atomics.load(ctl, CTL.HELD_SLOT);
    if (held >= 0) pool.release(pool.handle(held));
    Atomics.store(ctl, CTL.HELD_SLOT, -1);
    this.parked = 0;
  }
}
