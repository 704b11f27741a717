/**
 * The worker data plane, control-plane side: the Linux fast path run by one data-plane thread
 * (dataplane-worker-main.ts) that owns its own pool, router and pipeline.
 *
 * start() opens what needs the control plane's care — the TUN with IFF_VNET_HDR and offloads
 * (configured with iproute2, as the portable TUN), the UDP socket (bound, UDP_GRO on, UDP_SEGMENT
 * probed), an eventfd — then starts the worker with the fd numbers (fds are process-wide) and the
 * config, and waits until it is warm and looping. Every operation of the boundary is a message
 * plus an eventfd write; counters come back in reports. stop() tells the worker to stop, waits
 * for it, then closes the fds (the TUN goes away with its fd).
 *
 * Fallback: where the fast path cannot start for a reason the portable path does not share
 * (no FFI, the kernel refuses the virtio header or the offloads), start() rejects with
 * FastPathUnavailable and nothing left open; the Endpoint then runs the portable path and says
 * why. Any other failure (a bad interface name, a port in use) is the user's to fix: it
 * rejects with that error, one line.
 */
import { closeSync } from 'node:fs';
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import { DropReason } from '../base/drop-reason.ts';
import type { PacketBuffer } from '../base/pool.ts';
import { startWorker } from '../base/worker-module.ts';
import { createTunInterface, TunError } from '../device/tun-setup.ts';
import { vnetTunOpener } from '../device/tun-vnet.ts';
import type { RuleSpec } from '../route/rules.ts';
import type { RouteSpec } from '../route/types.ts';
import { sysLibc, sysUnavailableReason, type Libc } from '../sys/libc.ts';
import { SysMemory } from '../sys/memory.ts';
import { wakeEventFd } from '../sys/poll.ts';
import { TransportError } from '../transport/transport.ts';
import { GsoUdpSocket, type GsoUdpResult } from '../transport/udp-gso.ts';
import { DEFAULT_SOCKET_BUFFER } from '../transport/udp-transport.ts';
import { formatAddress, parseAddress } from '../wire/address-text.ts';
import type { DataPlane, DataPlaneHooks, DataPlaneReport, PeerSpec, UnderlayAddress } from './dataplane.ts';
import type { DataPlaneCore } from './dataplane-core.ts';
import type { FromWorker, ToWorker, WorkerInit } from './dataplane-messages.ts';
import type { RouteSnapshot } from './snapshot.ts';
import type { CaptureSpec } from './capture-ring.ts';
import { EFD_CLOEXEC, EFD_NONBLOCK } from '../sys/linux.ts';

export const FAST_PATH = 'fast (vnet TUN, UDP GSO/GRO, worker)';

/** The fast path cannot run here; the portable path can. `message` says why (one line). */
export class FastPathUnavailable extends Error {
  override name = 'FastPathUnavailable';
}

const WORKER = new URL('./dataplane-worker-main.ts', import.meta.url);
/** Socket buffers (forced, as root): GRO chunks are 64 KiB each. */
const UDP_BUFFER = Math.max(DEFAULT_SOCKET_BUFFER, 8 << 20);
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 5_000;

export interface WorkerDataPlaneOptions {
  hooks: DataPlaneHooks;
  senderId: number;
  /** Packets through the worker's warm-up (0 = none). */
  warmUp: number;
  poolSlots?: { small?: number; large?: number };
  /** Copy keyed peers' accepted keepalives up (hooks.keepalive): the control plane checks roaming against them. */
  keepalives?: boolean;
}

/** The errno name a failed open() ends its reason with ("bind port 6080: EADDRINUSE"), or ''. */
function errnoOf(r: GsoUdpResult): string {
  return r.ok ? '' : (/: (E[A-Z0-9]+)$/.exec(r.reason)?.[1] ?? '');
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export class WorkerDataPlane implements DataPlane {
  readonly path = FAST_PATH;
  listen = '';
  /** Warm-up figures the worker reported (for the start log). */
  warmUp = { ms: 0, packets: 0 };
  private libc: Libc | null = null;
  private mem: SysMemory | null = null;
  private tunFd = -1;
  private udpFd = -1;
  private wakeFd = -1;
  private worker: Worker | null = null;
  private port: MessagePort | null = null;
  private exited: Promise<void> | null = null;
  private running = false;
  private reportId = 0;
  private readonly pending = new Map<number, (r: DataPlaneReport) => void>();
  /** Route listings waiting for their next page (routePages). */
  private readonly pendingPages = new Map<number, (routes: RouteSnapshot[] | null) => void>();
  private last: DataPlaneReport | null = null;
  private failure = '';
  private controlOn = false;

  constructor(
    readonly core: DataPlaneCore,
    private readonly opts: WorkerDataPlaneOptions,
  ) {}

  /** The worker's last report (counters), or null before the first. */
  get lastReport(): DataPlaneReport | null {
    return this.last;
  }

  async start(): Promise<void> {
    const libc = sysLibc();
    if (libc === null) throw new FastPathUnavailable(sysUnavailableReason());
    this.libc = libc;
    const mem = new SysMemory(libc, 64 * 1024);
    this.mem = mem;
    const c = this.core.config;
    try {
      const tun = await createTunInterface(
        { name: c.interface.name, mtu: c.interface.mtu, addresses: c.interface.address.map((a) => a.text) },
        this.core.pools.small.capacity,
        vnetTunOpener(libc, mem),
      );
      this.tunFd = tun.fd;
      this.openUdp(libc, mem);
      this.wakeFd = libc.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
      if (this.wakeFd < 0) throw new Error(`eventfd: errno ${libc.errno()}`);
      await this.startWorker();
    } catch (e) {
      await this.stop();
      if (e instanceof TunError && e.code === 'ENOOFFLOAD') throw new FastPathUnavailable(`TUN offloads: ${e.message}`);
      throw e;
    }
    this.running = true;
  }

  /** Bind the UDP socket as the portable transport would (same addresses, same one-line errors). */
  private openUdp(libc: Libc, mem: SysMemory): void {
    const c = this.core.config;
    const peers = this.core.peers.filter((p) => p !== undefined);
    const anyV6 = peers.some((p) => p.family === 6);
    const anyV4 = peers.some((p) => p.family === 4);
    const any = c.listen.host === null;
    let host = c.listen.host ?? (anyV6 ? '::' : '0.0.0.0');
    const port = c.listen.port;
    const open = (h: string, v6only: boolean): GsoUdpResult => {
      const a = parseAddress(h);
      const o = { family: a.family, address: a.bytes, port, sendBuffer: UDP_BUFFER, receiveBuffer: UDP_BUFFER, v6only };
      const r = GsoUdpSocket.open(libc, mem, { ...o, gro: true });
      return r.ok || errnoOf(r) === 'EADDRINUSE' || errnoOf(r) === 'EACCES' ? r : GsoUdpSocket.open(libc, mem, { ...o, gro: false });
    };
    const dual = anyV4 && anyV6 && any;
    let r = open(host, !dual);
    if (!r.ok && any && host === '::' && (errnoOf(r) === 'EAFNOSUPPORT' || errnoOf(r) === 'EADDRNOTAVAIL')) {
      host = '0.0.0.0'; // no IPv6 on this host: IPv4 only
      r = open(host, true);
    }
    if (!r.ok) {
      const e = errnoOf(r);
      const where = `listen ${hostPort(host, port)}`;
      const why =
        e === 'EADDRINUSE' ? 'port in use'
        : e === 'EADDRNOTAVAIL' ? 'address not available on this host'
        : e === 'EACCES' || e === 'EPERM' ? 'permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)'
        : e === 'EAFNOSUPPORT' ? 'address family not supported on this host'
        : r.reason;
      throw new TransportError(`${where}: ${why}`);
    }
    const sock = r.sock;
    this.udpFd = sock.fd;
    const family = sock.family;
    for (const p of peers) {
      if (p.family === 6 && family === 4) {
        throw new TransportError(`peer endpoint ${p.endpointText}: IPv6 peer but listen ${hostPort(host, sock.port)} is IPv4 only`);
      }
      if (p.family === 4 && family === 6 && !dual) {
        throw new TransportError(`peer endpoint ${p.endpointText}: IPv4 peer but listen ${hostPort(host, sock.port)} is IPv6 only (listen on :: to carry both)`);
      }
    }
    this.listen = hostPort(formatAddress(parseAddress(host).bytes, 0, parseAddress(host).family), sock.port);
    this.udp = { family, port: sock.port, gso: sock.gso, gro: sock.gro };
  }

  private udp = { family: 4 as 4 | 6, port: 0, gso: false, gro: false };

  private startWorker(): Promise<void> {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    const small = this.opts.poolSlots?.small ?? 8192;
    const init: WorkerInit = {
      config: this.core.config,
      senderId: this.opts.senderId,
      poolSlots: { small: Math.max(small, 2048), large: Math.max(this.opts.poolSlots?.large ?? 128, 128) },
      tunFd: this.tunFd,
      udpFd: this.udpFd,
      udpFamily: this.udp.family,
      udpPort: this.udp.port,
      gso: this.udp.gso,
      gro: this.udp.gro,
      wakeFd: this.wakeFd,
      control: this.controlOn,
      keepalives: this.opts.keepalives ?? false,
      warmUp: this.opts.warmUp,
    };
    const w = startWorker(WORKER, { workerData: { init, port: port2 }, transferList: [port2], stdout: false, stderr: false });
    this.worker = w;
    let settle: ((e?: Error) => void) | null = null;
    const ready = new Promise<void>((resolve, reject) => {
      settle = (e) => {
        settle = null;
        if (e) reject(e);
        else resolve();
      };
    });
    const timer = setTimeout(() => settle?.(new Error(`data plane worker not ready after ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
    this.exited = new Promise<void>((resolve) => {
      w.once('exit', (code) => {
        clearTimeout(timer);
        this.worker = null;
        for (const r of this.pending.values()) r(this.last ?? this.emptyReport());
        this.pending.clear();
        for (const r of this.pendingPages.values()) r(null);
        this.pendingPages.clear();
        if (settle) settle(new Error(`data plane worker exited (${code}) before it was ready${this.failure ? `: ${this.failure}` : ''}`));
        else if (this.running) {
          this.running = false;
          this.opts.hooks.down(`data plane worker stopped (exit ${code})${this.failure ? `: ${this.failure}` : ''}`);
        }
        resolve();
      });
    });
    w.on('error', (e: Error) => {
      this.failure = e.message.split('\n')[0]!;
    });
    port1.on('message', (m: FromWorker) => {
      if (m.t === 'ready') {
        clearTimeout(timer);
        this.warmUp = { ms: m.warmUpMs, packets: m.warmUpPackets };
        settle?.();
        return;
      }
      if (m.t === 'failed') {
        this.failure = m.message;
        return;
      }
      this.onMessage(m);
    });
    return ready;
  }

  private onMessage(m: FromWorker): void {
    const hooks = this.opts.hooks;
    switch (m.t) {
      case 'peer-up':
        hooks.peerUp(m.index);
        break;
      case 'local': {
        const q = this.core.pools.acquire(m.bytes.length);
        if (q === null) {
          this.core.drops.count(DropReason.PoolExhausted);
          break;
        }
        q.fill(m.bytes);
        hooks.toLocal(q);
        break;
      }
      case 'control':
        hooks.control({ bytes: m.bytes, from: m.from, peer: m.peer });
        break;
      case 'report': {
        this.last = m.report;
        const r = this.pending.get(m.id);
        this.pending.delete(m.id);
        r?.(m.report);
        break;
      }
      case 'route-page': {
        const r = this.pendingPages.get(m.id);
        this.pendingPages.delete(m.id);
        r?.(m.routes);
        break;
      }
      case 'stopped':
        this.last = m.report;
        break;
      case 'keepalive':
        hooks.keepalive?.(m.index, m.bytes);
        break;
      case 'send-error':
        hooks.sendError?.(new Error(m.message));
        break;
      case 'log':
        hooks.log(m.line);
        break;
      case 'event':
        hooks.event?.(m.e);
        break;
      case 'internal-error': {
        const err = new Error(m.message);
        err.stack = m.stack;
        if (hooks.internalError) hooks.internalError(err, m.where);
        else hooks.log(`warning: ${m.where}: ${m.message}`);
        break;
      }
      case 'down':
        hooks.down(m.reason);
        break;
    }
  }

  /** Post to the worker and wake it. */
  private send(m: ToWorker): void {
    const port = this.port;
    if (port === null || this.worker === null) return;
    port.postMessage(m);
    if (this.wakeFd >= 0) wakeEventFd(this.wakeFd);
  }

  async stop(): Promise<void> {
    this.running = false;
    const w = this.worker;
    if (w !== null) {
      this.send({ t: 'stop' });
      let t: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        this.exited!.then(() => false),
        new Promise<boolean>((r) => (t = setTimeout(() => r(true), STOP_TIMEOUT_MS))),
      ]);
      clearTimeout(t);
      if (timedOut) {
        this.opts.hooks.log('warning: data plane worker did not stop in time: terminating it');
        await w.terminate().catch(() => undefined);
      }
    }
    this.port?.close();
    this.port = null;
    for (const fd of [this.udpFd, this.tunFd, this.wakeFd]) {
      if (fd < 0) continue;
      try {
        closeSync(fd);
      } catch {
        /* already closed */
      }
    }
    this.udpFd = this.tunFd = this.wakeFd = -1;
  }

  addRoute(spec: RouteSpec): void {
    this.send({ t: 'route+', spec });
  }
  removeRoute(id: number): void {
    this.send({ t: 'route-', id });
  }
  setPeerEndpoint(index: number, to: UnderlayAddress): void {
    this.send({ t: 'endpoint', index, to });
  }
  addPeer(index: number, spec: PeerSpec): void {
    this.send({ t: 'peer+', index, spec });
  }
  removePeer(index: number): void {
    this.send({ t: 'peer-', index });
  }
  peerDown(index: number): void {
    this.send({ t: 'peer-down', index });
  }
  updatePeer(index: number, spec: PeerSpec): void {
    this.send({ t: 'peer~', index, spec });
  }
  setRules(rules: readonly RuleSpec[]): void {
    this.send({ t: 'rules', rules });
  }
  setDebugEvents(on: boolean): void {
    this.send({ t: 'debug-events', on });
  }
  setCapture(spec: CaptureSpec | null): void {
    this.send({ t: 'capture', spec });
  }
  bicast(peer: number, to: UnderlayAddress | null, untilMs: number): void {
    this.send({ t: 'bicast', peer, to, until: untilMs });
  }
  sendControl(bytes: Uint8Array, to: number | UnderlayAddress): DropReason {
    if (this.worker === null) return DropReason.NoSocket;
    this.send({ t: 'send', bytes: Uint8Array.from(bytes), to });
    return DropReason.None;
  }
  localOutput(p: PacketBuffer): void {
    const bytes = Uint8Array.from(p.bytes());
    p.release();
    this.send({ t: 'local', bytes });
  }
  wantControl(on: boolean): void {
    this.controlOn = on;
    this.send({ t: 'control', on });
  }

  report(withRoutes: boolean): Promise<DataPlaneReport> {
    if (this.worker === null) return Promise.resolve(this.last ?? this.emptyReport());
    const id = ++this.reportId;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.send({ t: 'report', id, routes: withRoutes });
    });
  }

  /**
   * The routes a page at a time: each page one bounded cursor step in the worker, asked for when
   * the consumer wants it, so a long listing never holds up forwarding for more than a step.
   */
  async *routePages(pageSize: number): AsyncIterableIterator<RouteSnapshot[]> {
    if (this.worker === null) return;
    const id = ++this.reportId;
    try {
      for (;;) {
        const page = await new Promise<RouteSnapshot[] | null>((resolve) => {
          if (this.worker === null) return resolve(null);
          this.pendingPages.set(id, resolve);
          this.send({ t: 'route-page', id, size: pageSize });
        });
        if (page === null) return;
        if (page.length > 0) yield page;
      }
    } finally {
      this.pendingPages.delete(id);
      this.send({ t: 'route-page-end', id });
    }
  }

  private emptyReport(): DataPlaneReport {
    const zero = { packets: 0, bytes: 0 };
    return {
      tunRx: zero, tunTx: zero, udpRx: zero, udpTx: zero, forwarded: 0, icmpSent: 0, drops: [], peers: [], poolLive: 0,
      poolCapacity: 0, poolExhausted: 0, routes: null, extra: {},
    };
  }
}
