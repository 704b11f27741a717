/**
 * An ipferry endpoint: builds the route table, peers, device, UDP transport, pipeline and own
 * stack from a validated Config, runs them, and tears them down again (kernel routes removed,
 * TUN gone, every pool slot back). Control-plane code: it may allocate freely.
 *
 * Events (typed, see EndpointEvents): 'peer-up' / 'peer-down' (Peer), 'drop' (per-reason counts,
 * at most once a second), 'error' (the device went away), 'internal-error' (an exception the
 * endpoint caught and survived).
 *
 * No event can crash the process or stop the dataplane:
 * - A listener that throws is isolated: the other listeners and the packet that raised the event
 *   carry on; the exception is counted (stats extra.listenerErrors) and reported as
 *   'internal-error' (where: "listener 'peer-up'", ...). Likewise a 'message' listener of a stack
 *   UDP socket.
 * - An exception inside the dataplane (a bug; a checked accessor in a fuzz run) is caught per
 *   batch: what the batch held is released and counted as InternalError drops, the exception is
 *   counted (extra.internalErrors) and reported as 'internal-error'; the next batch runs.
 * - Nobody listening: 'internal-error' becomes a warning line in the log (at most one a second,
 *   with the count), and 'error' an "error:" line — never thrown. (Node's EventEmitter throws an
 *   'error' nobody listens to, which would crash a library user's process from a dataplane event.)
 */
import { EventEmitter } from 'node:events';
import type { Config } from '../config/config.ts';
import type { PeerSnapshot, RouteSnapshot, Snapshot, StatsSnapshot } from './snapshot.ts';
import type { PacketDevice } from '../device/device.ts';
import { MemoryDevice } from '../device/memory-device.ts';
import { openTun } from '../device/tun.ts';
import { DROP_REASON_NAMES, DropCounters } from '../base/drop-reason.ts';
import { Fragmenter } from '../frag/fragment.ts';
import { PacketPools } from '../base/pool.ts';
import type { AllowedSources } from '../route/allowed.ts';
import type { Router } from '../route/router.ts';
import { formatRoute, routeJson } from '../route/text/show.ts';
import { PeerEndpoints } from '../transport/peer-endpoints.ts';
import { UdpTransport } from '../transport/udp-transport.ts';
import { ControlSender } from '../tunnel/control.ts';
import type { AddressBytes } from '../wire/address-text.ts';
import { controlLength, KEEPALIVE_BODY_LEN, senderIdFromName } from '../wire/gue.ts';
import { readV4, v4Text } from '../wire/ip.ts';
import { IcmpSender } from './icmp-sender.ts';
import { KernelRoutes } from './kernel-routes.ts';
import { LocalStack, type StackUdpSocket } from './local-stack.ts';
import { Peer } from './peer.ts';
import { Pipeline } from './pipeline.ts';
import { IcmpRateLimiter } from './icmp-rate-limit.ts';
import { buildRouters, kernelPrefixes, STACK_DEV } from './config-routes.ts';
import { exercisePipeline } from './warm-up.ts';

export { STACK_DEV };


/** Drops counted since the previous 'drop' event (emitted at most once a second, per reason). */
export interface DropEvent {
  reason: string;
  /** New drops of this reason since the last event. */
  count: number;
  /** All drops of this reason since start. */
  total: number;
}

/** The events an Endpoint emits, with their argument types. */
export interface EndpointEvents {
  'peer-up': [peer: Peer];
  'peer-down': [peer: Peer];
  drop: [event: DropEvent];
  /** The endpoint cannot go on (the device went away): `ipferry up` stops on it. */
  error: [error: Error];
  /** An exception caught and survived; `where` says whose: "pipeline", "stack", "device", "listener 'peer-up'", ... */
  'internal-error': [error: Error, where: string];
}

export interface EndpointOptions {
  /** One line per event (warnings start with "warning:"). */
  log?: (line: string) => void;
  /**
   * The packet device: true/undefined = a kernel TUN from `config.interface`; false = an in-memory
   * device (userspace mode: no root, only the endpoint's own stack is reachable); or any
   * PacketDevice (e.g. a MemoryDevice wired to a userspace host).
   */
  tun?: boolean;
  device?: PacketDevice;
  /** Pool sizes (defaults: 8192 MTU slots, 128 64-KiB slots). */
  poolSlots?: { small?: number; large?: number };
  /** Packets pushed through a throwaway pipeline before start so the JIT is hot (default 24000; 0 = none). */
  warmUp?: number;
}

export class Endpoint extends EventEmitter<EndpointEvents> {
  readonly config: Config;
  readonly pools: PacketPools;
  readonly router: Router;
  readonly allowed: AllowedSources;
  /** Each peer's underlay endpoint, the one record (shared with the transport; mobility moves peers here). */
  readonly endpoints = new PeerEndpoints();
  readonly peers: Peer[];
  readonly drops = new DropCounters();
  readonly stack: LocalStack;
  readonly pipeline: Pipeline;
  device: PacketDevice | null = null;
  transport: UdpTransport | null = null;
  startedAt = 0;

  private readonly log: (line: string) => void;
  private readonly opts: EndpointOptions;
  private readonly icmp: IcmpSender;
  /** ICMP error rate limits: global and per destination (icmp-rate-limit.ts). */
  readonly icmpLimit: IcmpRateLimiter;
  private readonly fragmenter: Fragmenter;
  private readonly senderId: number;
  /** Our sender id and counter on the control messages (keepalives) we send. */
  private readonly control: ControlSender;
  private kernelRoutes: KernelRoutes | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private readonly lastDrops = new Float64Array(256);
  /** Exceptions caught inside the dataplane and the endpoint's own timers (see the header). */
  internalErrors = 0;
  /** Event listeners (ours and the stack sockets') that threw. */
  listenerErrors = 0;
  /** Unheard 'internal-error's: last log line (ms) and how many since. */
  private lastErrorLog = -Infinity;
  private unloggedErrors = 0;

  constructor(config: Config, opts: EndpointOptions = {}) {
    super();
    this.config = config;
    this.opts = opts;
    this.log = opts.log ?? (() => {});
    this.pools = new PacketPools({ small: { slots: opts.poolSlots?.small ?? 8192 }, large: { slots: opts.poolSlots?.large ?? 128 } });
    ({ router: this.router, allowed: this.allowed } = buildRouters(config));
    const ifName = config.interface.name;

    this.peers = config.peers.map((pc, index) => {
      this.endpoints.set(index, pc.endpoint.family, pc.endpoint.bytes, pc.endpoint.port);
      return new Peer({
        index,
        name: pc.name,
        endpoints: this.endpoints,
        routes: pc.routes,
        mtu: pc.mtu,
        keepalive: pc.keepalive,
        key: pc.key,
        mss: pc.mss,
      });
    });

    this.senderId = senderIdFromName(`${ifName}/${process.pid}/${Math.random()}`);
    this.control = new ControlSender(this.senderId);
    const rl = config.icmpRateLimit;
    // One limiter for the pipeline's errors and the stack's, as Linux has one per namespace.
    const icmpLimit = new IcmpRateLimiter({ rate: rl.rate, burst: rl.burst, perDestinationMs: rl.perDestinationMs, now: performance.now() });
    this.icmpLimit = icmpLimit;
    this.icmp = new IcmpSender(this.pools, icmpLimit, this.drops, () => performance.now());
    this.icmp.srcV4 = icmpSourceV4(config, this.log);
    const v6 = config.stack.address.find((a) => a.family === 6) ?? config.interface.address.find((a) => a.family === 6);
    if (v6) this.icmp.srcV6 = v6.bytes;
    this.fragmenter = new Fragmenter({ pool: this.pools, drops: this.drops });

    this.pipeline = new Pipeline({
      pools: this.pools,
      router: this.router,
      allowed: this.allowed,
      peers: this.peers,
      deviceMtu: config.interface.mtu,
      drops: this.drops,
      icmp: this.icmp,
      fragmenter: this.fragmenter,
      deviceName: ifName,
      stackName: STACK_DEV,
      hub: config.hub,
      senderId: this.senderId,
      now: () => Date.now(),
      events: { onPeerUp: (p) => this.peerUp(p), onError: (e) => this.internalError(e, 'pipeline') },
    });
    this.stack = new LocalStack({
      pools: this.pools,
      addresses: config.stack.address.map((a) => ({ family: a.family, bytes: a.bytes })),
      output: this.pipeline.fromLocal,
      drops: this.drops,
      errorLimit: icmpLimit,
      onError: (e, where) => this.internalError(e, where),
    });
    this.pipeline.local = this.stack;
  }

  /** Open the device and the socket, install kernel routes, start the timers. */
  async start(): Promise<void> {
    if (this.running) return;
    const c = this.config;
    this.warmUpJit(this.opts.warmUp ?? (process.env.IPFERRY_WARMUP !== undefined ? Number(process.env.IPFERRY_WARMUP) || 0 : 24_000));
    const dev =
      this.opts.device ??
      (this.opts.tun === false
        ? new MemoryDevice({ name: c.interface.name, mtu: c.interface.mtu, pool: this.pools.small })
        : await openTun({
            name: c.interface.name,
            mtu: c.interface.mtu,
            addresses: c.interface.address.map((a) => a.text),
            pool: this.pools.small,
          }));
    this.device = dev;
    this.pipeline.device = dev;
    try {
      const listen = c.listen;
      const anyV6 = this.peers.some((p) => p.family === 6);
      const anyV4 = this.peers.some((p) => p.family === 4);
      const host = listen.host ?? (anyV6 ? '::' : '0.0.0.0');
      const t = new UdpTransport({
        address: host,
        port: listen.port,
        ipv6Only: !(anyV4 && anyV6 && listen.host === null),
        pools: this.pools,
        endpoints: this.endpoints,
        onBatch: this.pipeline.fromTransport,
        onError: (e) => this.log(`warning: udp: ${e.message}`),
      });
      await t.start(); // throws when a peer's endpoint is of a family the socket cannot carry
      this.transport = t;
      this.pipeline.transport = t;
      dev.start(
        this.pipeline.fromDevice,
        (why) => {
          this.log(`device ${dev.name} went down: ${why}`);
          this.fatal(new Error(`device ${dev.name} went down: ${why}`));
        },
        (e) => this.internalError(e, 'device'),
      );
      if (c.kernelRoutes && this.opts.device === undefined && this.opts.tun !== false) {
        this.kernelRoutes = new KernelRoutes(c.interface.name, this.log);
        const prefixes = kernelPrefixes(c);
        const endpoints: AddressBytes[] = this.endpoints.entries().map(([, e]) => ({ family: e.family, bytes: e.bytes }));
        this.kernelRoutes.install(prefixes, endpoints);
      }
    } catch (e) {
      await this.teardown();
      throw e;
    }
    this.startedAt = Date.now();
    this.running = true;
    this.timer = setInterval(() => this.tick(), 1000);
    this.timer.unref();
    // Say hello at once so peers with keepalives see us up without waiting a whole interval.
    for (const p of this.peers) if (p.keepaliveMs > 0) this.sendKeepalive(p);
    this.log(`up: ${c.interface.name} mtu ${c.interface.mtu}, listening on ${this.transport!.listenText}, ${this.peers.length} peer(s)`);
  }

  /** See warm-up.ts: typical packets through a throwaway pipeline of the same config. */
  private warmUpJit(packets: number): void {
    if (packets <= 0) return;
    try {
      const t = new Endpoint(this.config, { poolSlots: { small: 256, large: 4 }, warmUp: 0 });
      exercisePipeline(t.pipeline, t.pools, this.config, packets);
      t.stack.close();
    } catch (e) {
      this.log(`warning: JIT warm-up skipped: ${(e as Error).message.split('\n')[0]}`);
    }
  }

  /** Remove kernel routes, close socket and device, fail pending pings. Idempotent. */
  async stop(): Promise<void> {
    if (!this.running && this.device === null) return;
    this.running = false;
    await this.teardown();
    this.log('stopped');
  }

  private async teardown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.kernelRoutes?.remove();
    this.kernelRoutes = null;
    const t = this.transport;
    this.transport = null;
    this.pipeline.transport = null;
    if (t) await t.close();
    const d = this.device;
    this.device = null;
    this.pipeline.device = null;
    if (d) await d.close();
    this.stack.close();
  }

  /** A UDP socket on the endpoint's own stack (inside the tunnel network). */
  udpBind(port = 0): StackUdpSocket {
    return this.stack.udpBind(port);
  }

  /** Ping from the endpoint's own stack. */
  ping(address: string, size = 56, timeoutMs = 2000): Promise<number> {
    return this.stack.ping(address, size, timeoutMs);
  }

  private tick(): void {
    try {
      const now = Date.now();
      this.stack.poll();
      this.emitDrops();
      for (const p of this.peers) {
        const l = p.liveness;
        if (l.keepaliveDue(now)) this.sendKeepalive(p);
        if (l.expire(now)) {
          this.log(`peer ${p.name} down (nothing heard for ${Math.round((now - l.lastRx) / 1000)} s)`);
          this.safeEmit('peer-down', p);
        }
      }
    } catch (e) {
      this.internalError(e, 'timer');
    }
    this.logUnheardErrors();
  }

  /** Per-reason 'drop' events for what changed since the last tick (only when someone listens). */
  private emitDrops(): void {
    if (this.listenerCount('drop') === 0) return;
    const c = this.drops.counts;
    for (let i = 1; i < c.length; i++) {
      const d = c[i]! - this.lastDrops[i]!;
      if (d > 0) {
        this.lastDrops[i] = c[i]!;
        this.safeEmit('drop', { reason: DROP_REASON_NAMES[i] ?? `reason${i}`, count: d, total: c[i]! });
      }
    }
  }

  /**
   * Emit an event with every listener isolated: one that throws is counted and reported as
   * 'internal-error', and the listeners after it still run.
   */
  private safeEmit<K extends 'peer-up' | 'peer-down' | 'drop'>(event: K, ...args: EndpointEvents[K]): void {
    const listeners = this.listeners(event) as ((...a: EndpointEvents[K]) => void)[];
    for (const l of listeners) {
      try {
        l.apply(this, args);
      } catch (e) {
        this.listenerErrors++;
        this.internalError(e, `listener '${event}'`);
      }
    }
  }

  /** An exception caught and survived: counted; 'internal-error' if someone listens, else the log. Never throws. */
  private internalError(e: unknown, where: string): void {
    if (!where.startsWith('listener')) this.internalErrors++;
    const err = e instanceof Error ? e : new Error(String(e));
    if (this.listenerCount('internal-error') > 0) {
      try {
        this.emit('internal-error', err, where);
        return;
      } catch {
        this.listenerErrors++; // an 'internal-error' listener that throws: to the log, no recursion
      }
    }
    this.unloggedErrors++;
    const now = performance.now();
    if (now - this.lastErrorLog < 1000) return;
    this.lastErrorLog = now;
    this.log(`warning: ${where}: ${err.message.split('\n')[0]} (${this.unloggedErrors} unheard internal error(s))`);
    this.unloggedErrors = 0;
  }

  /** Report what a tick found unlogged (errors suppressed by the once-a-second limit). */
  private logUnheardErrors(): void {
    if (this.unloggedErrors === 0 || performance.now() - this.lastErrorLog < 1000) return;
    this.lastErrorLog = performance.now();
    this.log(`warning: ${this.unloggedErrors} more unheard internal error(s)`);
    this.unloggedErrors = 0;
  }

  /** The endpoint cannot go on: 'error' when someone listens, else an "error:" log line (never thrown). */
  private fatal(err: Error): void {
    if (this.listenerCount('error') > 0) {
      try {
        this.emit('error', err);
        return;
      } catch (e) {
        this.listenerErrors++;
        this.log(`warning: an 'error' listener threw: ${(e as Error)?.message ?? e}`);
        return;
      }
    }
    this.log(`error: ${err.message}`);
  }

  private sendKeepalive(p: Peer): void {
    const t = this.transport;
    if (t === null) return;
    const q = this.pools.acquire(controlLength(KEEPALIVE_BODY_LEN, true));
    if (q === null) return;
    q.length = this.control.keepalive(q.buf, q.offset, p.keepaliveMs / 1000, p.key);
    p.liveness.sent(Date.now());
    p.txPackets++;
    p.txBytes += q.length;
    t.send(q, p.index);
  }

  private peerUp(p: Peer): void {
    this.log(`peer ${p.name} up (${p.endpointText})`);
    this.safeEmit('peer-up', p);
  }

  /** Counters: device and UDP traffic, ICMP errors sent, drops per reason, pool slots. */
  stats(): StatsSnapshot {
    return this.snapshot().stats;
  }

  /** Everything `ipferry show` prints. */
  snapshot(): Snapshot {
    const c = this.config;
    const peers: PeerSnapshot[] = this.peers.map((p) => ({
      name: p.name,
      endpoint: p.endpointText,
      routes: p.routes.map((r) => r.text),
      lastRx: p.lastRx || null,
      lastTx: p.lastTx || null,
      rxPackets: p.rxPackets,
      rxBytes: p.rxBytes,
      txPackets: p.txPackets,
      txBytes: p.txBytes,
      drops: p.drops,
      mtu: p.mtu,
      keepalive: p.keepaliveMs ? p.keepaliveMs / 1000 : null,
      up: p.up,
    }));
    const routes: RouteSnapshot[] = this.router.list({ table: 'all' }).map((id) => ({
      text: formatRoute(this.router, id),
      uses: this.router.packetsOf(id),
      bytes: this.router.bytesOf(id),
      json: routeJson(this.router, id) as unknown as RouteSnapshot['json'],
    }));
    const d = this.device;
    const ts = this.transport?.stats;
    return {
      interface: c.interface.name,
      listen: this.transport?.listenText ?? '',
      pid: process.pid,
      device: d instanceof MemoryDevice ? 'memory' : 'tun',
      mtu: c.interface.mtu,
      addresses: c.interface.address.map((a) => a.text),
      stackAddresses: c.stack.address.map((a) => a.text),
      hub: c.hub,
      peers,
      routes,
      stats: {
        startedAt: this.startedAt,
        tunRx: { packets: d?.stats.rxPackets ?? 0, bytes: d?.stats.rxBytes ?? 0 },
        tunTx: { packets: d?.stats.txPackets ?? 0, bytes: d?.stats.txBytes ?? 0 },
        udpRx: { packets: ts?.rxPackets ?? 0, bytes: ts?.rxBytes ?? 0 },
        udpTx: { packets: ts?.txPackets ?? 0, bytes: ts?.txBytes ?? 0 },
        forwarded: this.pipeline.forwarded,
        icmpSent: this.icmp.sent + this.stack.errorsSent,
        drops: this.drops.toJSON(),
        poolLive: this.pools.live,
        poolCapacity: this.pools.small.slots + this.pools.large.slots,
        poolExhausted: this.pools.small.exhausted + this.pools.large.exhausted,
        extra: {
          echoReplies: this.stack.echoReplies,
          udpDelivered: this.stack.udpDelivered,
          internalErrors: this.internalErrors,
          listenerErrors: this.listenerErrors + this.stack.listenerErrors,
        },
      },
    };
  }
}

/**
 * The IPv4 source of the ICMP errors the endpoint sends (fragmentation needed, unreachable).
 * A stack address is best. Without one, the TUN's own address would not do: it belongs to the
 * kernel behind the TUN, which drops an ICMP error "from itself" as a martian — a PMTU black
 * hole. So take another host address of the TUN's subnet (10.0.0.2 for 10.0.0.1/30), and warn.
 */
function icmpSourceV4(config: Config, log: (line: string) => void): number {
  const stack = config.stack.address.find((a) => a.family === 4);
  if (stack) return readV4(stack.bytes, 0);
  const ifa = config.interface.address.find((a) => a.family === 4);
  if (!ifa) return 0;
  const own = readV4(ifa.bytes, 0);
  if (ifa.length <= 30) {
    const hostBits = 32 - ifa.length;
    const net = hostBits === 32 ? 0 : (own >>> hostBits) << hostBits;
    const first = (net + 1) >>> 0;
    const pick = own === first ? (first + 1) >>> 0 : first;
    const text = v4Text(pick);
    log(`warning: no IPv4 stack.address: ICMP errors (fragmentation needed) are sent from ${text}, not the kernel's own ${ifa.text}; add a stack address to choose`);
    return pick;
  }
  log(`warning: no IPv4 stack.address and ${ifa.text} leaves no other address: the kernel may drop ICMP fragmentation-needed from its own address (add a stack address)`);
  return own;
}

