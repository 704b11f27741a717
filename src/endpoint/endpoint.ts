/**
 * An ipferry endpoint: builds the route table, peers, device, UDP transport, pipeline and own
 * stack from a validated Config, runs them, and tears them down again (kernel routes removed,
 * TUN gone, every pool slot back). Control-plane code: it may allocate freely.
 *
 * Events (typed, see EndpointEvents): 'peer-up' / 'peer-down' (Peer), 'drop' (per-reason counts,
 * at most once a second), 'error' (the device went away), 'binding' / 'handover' (mobility).
 *
 * Mobility (endpoint/mobility/): the roles of `config.mobility` and roaming for keyed peers run as
 * a control plane that acts on the data plane only through the operations in
 * endpoint/mobility/ops.ts, which the methods at the end of this class implement.
 */
import { EventEmitter } from 'node:events';
import type { Config } from '../config/config.ts';
import type { PeerSnapshot, RouteSnapshot, Snapshot, StatsSnapshot } from './snapshot.ts';
import type { PacketDevice } from '../device/device.ts';
import { MemoryDevice } from '../device/memory-device.ts';
import { openTun } from '../device/tun.ts';
import { DROP_REASON_NAMES, DropCounters } from '../base/drop-reason.ts';
import { peerEndpoint } from '../transport/peer-endpoints.ts';
import { Fragmenter } from '../frag/fragment.ts';
import { PacketPools } from '../base/pool.ts';
import type { AllowedSources } from '../route/allowed.ts';
import type { Router } from '../route/router.ts';
import { formatRoute, routeJson } from '../route/text/show.ts';
import { PeerEndpoints } from '../transport/peer-endpoints.ts';
import { UdpTransport } from '../transport/udp-transport.ts';
import { DropReason } from '../base/drop-reason.ts';
import { ControlCounter, ControlSender } from '../tunnel/control.ts';
import { formatPrefix, type AddressBytes, type Prefix } from '../wire/address-text.ts';
import type { SocketAddress } from '../wire/binding.ts';
import { controlLength, KEEPALIVE_BODY_LEN, senderIdFromName } from '../wire/gue.ts';
import { readV4, v4Text } from '../wire/ip.ts';
import { IcmpSender } from './icmp-sender.ts';
import { KernelRoutes } from './kernel-routes.ts';
import { LocalStack, type StackUdpSocket } from './local-stack.ts';
import { Peer } from './peer.ts';
import { Pipeline } from './pipeline.ts';
import { TokenBucket } from './token-bucket.ts';
import { buildRouters, kernelPrefixes, STACK_DEV } from './config-routes.ts';
import { exercisePipeline } from './warm-up.ts';
import type { BindingEvent, HandoverEvent } from './mobility/events.ts';
import { MobilityPlane } from './mobility/mobility-plane.ts';
import type { DataPlaneOps } from './mobility/ops.ts';

export type { BindingEvent, HandoverEvent };

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
  error: [error: Error];
  /** A binding was added, moved or removed (home agent), or a node reached directly (correspondent). */
  binding: [event: BindingEvent];
  /** This mobile node moved and is registered at its new care-of (or home); a home agent's node moved. */
  handover: [event: HandoverEvent];
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

export class Endpoint extends EventEmitter<EndpointEvents> implements DataPlaneOps {
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
  /** Mobility roles and roaming (the control plane over the data-plane operations below). */
  readonly mobility: MobilityPlane;
  device: PacketDevice | null = null;
  transport: UdpTransport | null = null;
  startedAt = 0;

  private readonly log: (line: string) => void;
  private readonly opts: EndpointOptions;
  private readonly icmp: IcmpSender;
  private readonly fragmenter: Fragmenter;
  private readonly senderId: number;
  /** Our sender id and counter on the control messages (keepalives) we send. */
  private readonly control: ControlSender;
  private kernelRoutes: KernelRoutes | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private readonly lastDrops = new Float64Array(256);

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
    // The mobility roles' peers (mobile nodes at a home agent or correspondent, a mobile node's
    // correspondents): after the config's, no endpoint until a binding gives them one.
    const mtu = config.interface.mtu;
    const clamp = config.mssClamp;
    const mss = clamp === false ? null : clamp === 'auto' ? { v4: mtu - 40, v6: mtu - 60 } : { v4: Math.min(clamp, mtu - 40), v6: Math.min(clamp, mtu - 60) };
    for (const spec of MobilityPlane.extraPeers(config)) {
      const index = this.peers.length;
      if (spec.endpoint !== null) this.endpoints.set(index, spec.endpoint.family, spec.endpoint.bytes, spec.endpoint.port);
      for (const src of spec.sources) this.allowed.add(src, index);
      const routes = spec.routes.map((r) => ({ ...r, text: formatPrefix(r) }));
      this.peers.push(new Peer({ index, name: spec.name, endpoints: this.endpoints, routes, mtu, keepalive: null, key: spec.key, mss, mobile: true, sourcesOf: spec.sourcesOf }));
    }

    // A mobile node's keepalives are its messages too: the node's sender id and one counter.
    const mn = config.mobility?.mobileNode;
    this.senderId = mn ? senderIdFromName(mn.name) : senderIdFromName(`${ifName}/${process.pid}/${Math.random()}`);
    const counter = new ControlCounter();
    this.control = new ControlSender(this.senderId, counter);
    const rl = config.icmpRateLimit;
    const icmpBucket = new TokenBucket(rl.rate, rl.burst, performance.now());
    this.icmp = new IcmpSender(this.pools, icmpBucket, this.drops, () => performance.now());
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
      events: {
        onPeerUp: (p) => this.peerUp(p),
        onControl: (buf, off, len, address, port, peer) => this.mobility.onControl(buf, off, len, address, port, peer),
      },
    });
    this.mobility = new MobilityPlane(
      config,
      this,
      counter,
      { binding: (e) => this.emit('binding', e), handover: (e) => this.emit('handover', e), log: this.log },
      () => this.kernelRoutes !== null,
    );
    this.stack = new LocalStack({
      pools: this.pools,
      addresses: config.stack.address.map((a) => ({ family: a.family, bytes: a.bytes })),
      output: this.pipeline.fromLocal,
      drops: this.drops,
      errorLimit: icmpBucket,
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
        onSendError: () => this.mobility.sendError(),
      });
      await t.start(); // throws when a peer's endpoint is of a family the socket cannot carry
      this.transport = t;
      this.pipeline.transport = t;
      dev.start(this.pipeline.fromDevice, (why) => {
        this.log(`device ${dev.name} went down: ${why}`);
        this.emit('error', new Error(`device ${dev.name} went down: ${why}`));
      });
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
    try {
      await this.mobility.start();
    } catch (e) {
      this.running = false;
      await this.teardown();
      throw e;
    }
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
    if (this.running) await this.mobility.stop(); // a mobile node deregisters while it still can
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
    const now = Date.now();
    this.stack.poll();
    this.emitDrops();
    for (const p of this.peers) {
      const l = p.liveness;
      if (l.keepaliveDue(now)) this.sendKeepalive(p);
      if (l.expire(now)) {
        this.log(`peer ${p.name} down (nothing heard for ${Math.round((now - l.lastRx) / 1000)} s)`);
        this.emit('peer-down', p);
        this.mobility.peerDown(p.index);
      }
    }
  }

  /** Per-reason 'drop' events for what changed since the last tick (only when someone listens). */
  private emitDrops(): void {
    if (this.listenerCount('drop') === 0) return;
    const c = this.drops.counts;
    for (let i = 1; i < c.length; i++) {
      const d = c[i]! - this.lastDrops[i]!;
      if (d > 0) {
        this.lastDrops[i] = c[i]!;
        this.emit('drop', { reason: DROP_REASON_NAMES[i] ?? `reason${i}`, count: d, total: c[i]! });
      }
    }
  }

  private sendKeepalive(p: Peer): void {
    const t = this.transport;
    if (t === null || p.endpoint === undefined) return;
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
    this.emit('peer-up', p);
  }

  /** Counters: device and UDP traffic, ICMP errors sent, drops per reason, pool slots. */
  stats(): StatsSnapshot {
    return this.snapshot().stats;
  }

  /** Everything `ipferry show` prints. */
  snapshot(): Snapshot {
    const c = this.config;
    const peers: PeerSnapshot[] = this.peers.filter((p) => !p.mobile || p.endpoint !== undefined).map((p) => ({
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
      ...(p.mobile ? { mobility: p.sourcesOf >= 0 ? ('correspondent' as const) : ('mobile-node' as const) } : {}),
    }));
    const routes: RouteSnapshot[] = this.router.list({ table: 'all' }).map((id) => ({
      text: formatRoute(this.router, id),
      uses: this.router.packetsOf(id),
      bytes: this.router.bytesOf(id),
      json: routeJson(this.router, id) as unknown as RouteSnapshot['json'],
    }));
    const d = this.device;
    const ts = this.transport?.stats;
    const mobility = this.config.mobility !== undefined;
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
        extra: { echoReplies: this.stack.echoReplies, udpDelivered: this.stack.udpDelivered },
        ...(mobility ? { mobility: this.mobility.stats() } : {}),
      },
      ...(mobility ? { mobility: this.mobility.snapshot() } : {}),
    };
  }

  // ------------------------------------------------------------------------------------------
  // Data-plane operations for the control plane (endpoint/mobility/ops.ts: DataPlaneOps)

  setPeerEndpoint(index: number, to: SocketAddress): void {
    this.endpoints.set(index, to.family, to.bytes, to.port);
  }

  removePeerEndpoint(index: number): void {
    this.endpoints.remove(index);
  }

  addRoute(prefix: Prefix, dev: string, kernel: boolean): void {
    this.router.add({ prefix, dev, text: `${formatPrefix(prefix)} dev ${dev}` });
    if (kernel) this.kernelRoutes?.addRoute(prefix);
  }

  removeRoute(prefix: Prefix, dev: string, kernel: boolean): void {
    this.router.remove({ prefix, dev });
    if (kernel) this.kernelRoutes?.removeRoute(prefix);
  }

  setKernelRoutes(peer: number, on: boolean): void {
    const k = this.kernelRoutes;
    const p = this.peers[peer];
    if (k === null || p === undefined) return;
    for (const r of p.routes) {
      if (on) {
        try {
          k.addRoute(r);
        } catch (e) {
          this.log(`warning: ${(e as Error).message.split('\n')[0]}`);
        }
      } else k.removeRoute(r);
    }
  }

  sendControl(buf: Buffer, off: number, len: number, to: SocketAddress): boolean {
    const t = this.transport;
    if (t === null) return false;
    let address: string;
    try {
      address = t.addressFor(peerEndpoint(to.family, to.bytes, to.port));
    } catch {
      return false;
    }
    const q = this.pools.acquire(len);
    if (q === null) return false;
    buf.copy(q.buf, q.offset, off, off + len);
    q.length = len;
    return t.sendTo(q, address, to.port) === DropReason.None;
  }

  bicast(index: number, to: SocketAddress | null, untilMs: number): void {
    const p = this.peers[index];
    if (p === undefined) return;
    const t = this.transport;
    let address = '';
    if (to !== null && t !== null) {
      try {
        address = t.addressFor(peerEndpoint(to.family, to.bytes, to.port));
      } catch {
        address = '';
      }
    }
    p.bicastAddress = address;
    p.bicastPort = to?.port ?? 0;
    p.bicastUntil = address === '' ? 0 : untilMs;
  }

  keepalive(index: number): void {
    const p = this.peers[index];
    if (p !== undefined) this.sendKeepalive(p);
  }

  acceptControl(index: number, buf: Buffer, off: number, len: number): DropReason {
    return this.pipeline.acceptControl(index, buf, off, len);
  }

  heard(index: number): void {
    const p = this.peers[index];
    if (p !== undefined && p.liveness.heard(Date.now())) this.peerUp(p);
  }

  localAddress(): { address: string; port: number } | null {
    const t = this.transport;
    return t !== null && t.isRunning ? t.localAddress : null;
  }

  /**
   * Move the underlay socket to another local address (same port): what a link change does to
   * a node whose socket is bound to one address (the in-process example's "moves" on loopback,
   * where no kernel picks a new source address). The mobility layer notices at once.
   */
  async moveUnderlay(host: string): Promise<void> {
    const old = this.transport;
    if (old === null) throw new Error('endpoint not running');
    const t = new UdpTransport({
      address: host,
      port: old.localAddress.port,
      pools: this.pools,
      endpoints: this.endpoints,
      onBatch: this.pipeline.fromTransport,
      onError: (e) => this.log(`warning: udp: ${e.message}`),
      onSendError: () => this.mobility.sendError(),
    });
    await old.close();
    await t.start();
    this.transport = t;
    this.pipeline.transport = t;
    this.mobility.underlayMoved();
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

