/**
 * Kernel TUN device (Linux): created with the tuntap2 library's native addon, read by a worker
 * thread straight into pool slots, written from the main thread with write(2).
 *
 * Setup. `@xiaobaidadada/node-tuntap2-wintun` provides what Node cannot do itself: the
 * TUNSETIFF ioctl (IFF_TUN | IFF_NO_PI) on an fd of /dev/net/tun, plus MTU / IPv4 / IPv6 / up
 * ioctls. We call its addon (the same binary its `LinuxTun` class wraps) on an fd we open
 * ourselves, because `LinuxTun` also attaches fs streams to the fd (the 28k pps read path, and a
 * stream close that closes our fd) and can neither name the device nor configure it inside
 * another network namespace. What the library cannot do goes through iproute2 (`ip`): rename
 * (the kernel names it tunN), a second IPv4 address, moving into a namespace, and everything
 * after a move (its ioctls act on the caller's namespace), and deleting the interface.
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
import { execFile, execFileSync } from 'node:child_process';
import { closeSync, existsSync, openSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { BufferPool, type PacketBuffer } from '../base/pool.ts';
import { startWorker } from '../base/worker-module.ts';
import { AddressTextError, formatAddress, parsePrefix, type Prefix } from '../wire/address-text.ts';
import { newDeviceStats, type BatchHandler, type DeviceStats, type DownHandler, type PacketDevice } from './device.ts';
import { CTL, STATE_EXITED, STATE_RUNNING, STATE_STARTING, pow2AtLeast, type ReaderWorkerData } from './ring.ts';

export type TunErrorCode =
  | 'ENOTSUP' // not Linux
  | 'ENOTUN' // no /dev/net/tun
  | 'EPERM' // not root / no CAP_NET_ADMIN
  | 'EEXIST' // interface name in use
  | 'EINVAL' // bad option (name, MTU, address)
  | 'ENOIP' // iproute2 missing
  | 'ESETUP'; // a configuration step failed

/** A TUN setup failure with a one-line `message` the CLI can print as it is. */
export class TunError extends Error {
  override name = 'TunError';
  constructor(
    readonly code: TunErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface TunOptions {
  /** Interface name (at most 15 characters); default: the kernel's tunN. */
  name?: string;
  /** MTU; default 1500. Must fit a pool slot (pool.capacity). */
  mtu?: number;
  /** Interface addresses with prefix length, e.g. ["10.0.0.1/30", "fd00::1/64"]. */
  addresses?: readonly string[];
  /** Bring the link up (default true). */
  up?: boolean;
  /**
   * Move the interface into this existing network namespace (`ip netns` name) right after
   * creating it and configure it there. The fd stays valid; the process stays where it is.
   */
  netns?: string;
  /** Pool the reader fills; default a private pool of 1024 slots. */
  pool?: BufferPool;
  /** Slots parked at the reader worker (default 512, at most pool.slots / 2). */
  readAhead?: number;
  /** Largest batch handed to the handler (default 64). */
  batchSize?: number;
  /** Packets delivered per event-loop turn before yielding to other I/O (default 1024). */
  turnBudget?: number;
}

interface TuntapAddon {
  tuntapInit(fd: number, isTap: boolean): string;
  tuntapSetUp(name: string): void;
  tuntapSetMtu(name: string, mtu: number): void;
  tuntapGetMtu(name: string): number;
  tuntapSetIpv4(name: string, addr: string, prefix: number): void;
  tuntapGetIfIndex(name: string): number;
  tuntapSetIpv6(ifIndex: number, addr: string, prefix: number): void;
}

let addon: TuntapAddon | undefined;
function loadAddon(): TuntapAddon {
  if (addon) return addon;
  const require = createRequire(import.meta.url);
  try {
    const mod = require('@xiaobaidadada/node-tuntap2-wintun/dist/src/ts/linux/Tuntap2Addon.js') as {
      default?: TuntapAddon;
    };
    if (!mod.default) throw new Error('no native addon for this platform');
    addon = mod.default;
    return addon;
  } catch (e) {
    throw new TunError('ENOTSUP', `cannot load the TUN library (@xiaobaidadada/node-tuntap2-wintun): ${oneLine(e)}`);
  }
}

function oneLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.split('\n').map((s) => s.trim()).filter(Boolean).join('; ');
}

const ERRNO_NAMES = new Map<number, string>(Object.entries(osConstants.errno).map(([k, v]) => [v, k]));
function errnoName(n: number): string {
  return ERRNO_NAMES.get(n) ?? `errno ${n}`;
}

/** Linux dev_valid_name(): 1..15 bytes, not "." or "..", no '/', ':' or whitespace. */
export function validInterfaceName(name: string): boolean {
  return (
    name.length > 0 &&
    Buffer.byteLength(name) <= 15 &&
    name !== '.' &&
    name !== '..' &&
    !/[/:\s]/.test(name)
  );
}

function ipCommand(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('ip', args, { timeout: 10_000 }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        return reject(new TunError('ENOIP', 'the ip command (iproute2) is needed to configure the TUN device'));
      }
      const text = String(stderr).trim().split('\n')[0] || err.message.split('\n')[0]!;
      reject(new Error(text));
    });
  });
}

function nsArgs(netns: string | undefined): string[] {
  return netns === undefined ? [] : ['-n', netns];
}

interface ParsedAddress {
  text: string;
  prefix: Prefix;
  addr: string;
}

function parseAddresses(list: readonly string[]): ParsedAddress[] {
  return list.map((text) => {
    let prefix: Prefix;
    try {
      prefix = parsePrefix(text, 'keep');
    } catch (e) {
      const why = e instanceof AddressTextError ? e.message : oneLine(e);
      throw new TunError('EINVAL', `interface address ${text}: ${why}`);
    }
    if (!text.includes('/')) throw new TunError('EINVAL', `interface address ${text}: needs a prefix length (e.g. /24)`);
    return { text: text.trim(), prefix, addr: formatAddress(prefix.bytes, 0, prefix.family) };
  });
}

/**
 * Create, configure and open a TUN device. Rejects with a TunError (one-line message) when the
 * device cannot be created or configured; nothing is left behind in that case.
 */
export async function openTun(opts: TunOptions = {}): Promise<TunDevice> {
  if (process.platform !== 'linux') {
    throw new TunError('ENOTSUP', `TUN devices are supported on Linux only (this is ${process.platform})`);
  }
  const pool = opts.pool ?? new BufferPool({ slots: 1024 });
  const mtu = opts.mtu ?? 1500;
  const name = opts.name;
  const netns = opts.netns;
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) {
    throw new TunError('EINVAL', `interface MTU ${mtu}: must be an integer from 68 to 65535`);
  }
  if (mtu > pool.capacity) {
    throw new TunError('EINVAL', `interface MTU ${mtu} is larger than a pool slot holds (${pool.capacity} bytes)`);
  }
  if (name !== undefined && !validInterfaceName(name)) {
    throw new TunError('EINVAL', `interface name "${name}": 1 to 15 characters, no '/', ':' or spaces`);
  }
  const addresses = parseAddresses(opts.addresses ?? []);
  if (netns !== undefined && !existsSync(`/run/netns/${netns}`)) {
    throw new TunError('EINVAL', `network namespace ${netns} does not exist`);
  }
  if (name !== undefined) {
    const inUse =
      netns === undefined
        ? existsSync(`/sys/class/net/${name}`)
        : await ipCommand(['-n', netns, 'link', 'show', 'dev', name]).then(
            () => true,
            () => false,
          );
    if (inUse) throw new TunError('EEXIST', `interface name ${name} is already in use`);
  }

  const lib = loadAddon();
  let fd: number;
  try {
    fd = openSync('/dev/net/tun', 'r+');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENODEV' || code === 'ENXIO') {
      throw new TunError('ENOTUN', 'no /dev/net/tun: this kernel or container has no TUN device (modprobe tun, or give the container /dev/net/tun)');
    }
    if (code === 'EACCES' || code === 'EPERM') {
      throw new TunError('EPERM', 'permission denied opening /dev/net/tun: run as root or with CAP_NET_ADMIN');
    }
    throw new TunError('ESETUP', `cannot open /dev/net/tun: ${oneLine(e)}`);
  }

  let kernelName: string;
  try {
    kernelName = lib.tuntapInit(fd, false);
  } catch (e) {
    closeSync(fd);
    const errno = (e as { errno?: number }).errno;
    if (errno === osConstants.errno.EPERM || errno === osConstants.errno.EACCES) {
      throw new TunError('EPERM', 'not permitted to create a TUN device: run as root or with CAP_NET_ADMIN');
    }
    throw new TunError('ESETUP', `cannot create a TUN device: ${oneLine(e)}`);
  }

  // From here on a failure closes the fd, which removes the (non-persistent) interface; but once
  // it has moved or been renamed we also delete it explicitly, so nothing is left behind.
  let current = kernelName;
  let where: string | undefined;
  try {
    if (name !== undefined && name !== kernelName) {
      try {
        await ipCommand(['link', 'set', 'dev', kernelName, 'name', name]);
      } catch (e) {
        if (e instanceof TunError) throw e;
        if (/exists/i.test((e as Error).message)) throw new TunError('EEXIST', `interface name ${name} is already in use`);
        throw new TunError('ESETUP', `cannot name the TUN device ${name}: ${(e as Error).message}`);
      }
      current = name;
    }
    if (netns !== undefined) {
      try {
        await ipCommand(['link', 'set', 'dev', current, 'netns', netns]);
      } catch (e) {
        if (e instanceof TunError) throw e;
        if (/exists/i.test((e as Error).message)) throw new TunError('EEXIST', `interface name ${current} is already in use in namespace ${netns}`);
        throw new TunError('ESETUP', `cannot move ${current} into namespace ${netns}: ${(e as Error).message}`);
      }
      where = netns;
    }
    await configure(lib, current, netns, mtu, addresses, opts.up ?? true);
  } catch (e) {
    try {
      closeSync(fd);
    } catch {
      /* already closed */
    }
    if (where !== undefined) await ipCommand(['-n', where, 'link', 'del', 'dev', current]).catch(() => undefined);
    throw e;
  }
  return new TunDevice(fd, current, mtu, netns, pool, opts);
}

async function configure(
  lib: TuntapAddon,
  name: string,
  netns: string | undefined,
  mtu: number,
  addresses: ParsedAddress[],
  up: boolean,
): Promise<void> {
  const local = netns === undefined;
  const ns = nsArgs(netns);
  const step = async (what: string, viaLib: (() => void) | null, ipArgs: string[]): Promise<void> => {
    if (local && viaLib) {
      try {
        viaLib();
        return;
      } catch {
        // fall through to iproute2, which also gives the better error text
      }
    }
    try {
      await ipCommand([...ns, ...ipArgs]);
    } catch (e) {
      if (e instanceof TunError) throw e;
      throw new TunError('ESETUP', `${what} on ${name}: ${(e as Error).message}`);
    }
  };
  await step(`cannot set MTU ${mtu}`, () => lib.tuntapSetMtu(name, mtu), ['link', 'set', 'dev', name, 'mtu', String(mtu)]);
  let v4Done = false;
  for (const a of addresses) {
    const len = a.prefix.length;
    let viaLib: (() => void) | null = null;
    if (a.prefix.family === 4 && !v4Done) {
      // SIOCSIFADDR sets the (one) primary IPv4 address; further ones need `ip addr add`.
      viaLib = () => lib.tuntapSetIpv4(name, a.addr, len);
      v4Done = true;
    } else if (a.prefix.family === 6) {
      viaLib = () => lib.tuntapSetIpv6(lib.tuntapGetIfIndex(name), a.addr, len);
    }
    const ipArgs = a.prefix.family === 6
      ? ['-6', 'addr', 'add', `${a.addr}/${len}`, 'dev', name, 'nodad']
      : ['addr', 'add', `${a.addr}/${len}`, 'dev', name];
    await step(`cannot add address ${a.text}`, viaLib, ipArgs);
  }
  if (up) await step('cannot bring the link up', () => lib.tuntapSetUp(name), ['link', 'set', 'dev', name, 'up']);
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

  start(onBatch: BatchHandler, onDown?: DownHandler): void {
    if (this.started) throw new Error(`TUN ${this.name}: start() called twice`);
    if (this.closed) throw new Error(`TUN ${this.name}: start() after close()`);
    this.started = true;
    this.onBatch = onBatch;
    this.onDown = onDown;
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
      this.onBatch!(batch, count);
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
    try {
      execFileSync('ip', [...nsArgs(this.netns), 'link', 'del', 'dev', this.name], { stdio: 'ignore', timeout: 5000 });
    } catch {
      /* nothing more we can do at exit */
    }
  };

  private async doClose(): Promise<void> {
    this.closed = true;
    Atomics.store(this.ctl, CTL.STOP, 1);
    Atomics.notify(this.ctl, CTL.FREE_HEAD); // a worker waiting for a slot
    if (this.starveTimer) clearTimeout(this.starveTimer);
    this.starveTimer = null;
    // Delete the interface first: that is what wakes a read blocked on an idle device.
    await ipCommand([...nsArgs(this.netns), 'link', 'del', 'dev', this.name]).catch(() => undefined);
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
