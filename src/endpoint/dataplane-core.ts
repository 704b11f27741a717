/**
 * The data plane's state, built from a Config: pools, router, source check, peers, drop
 * counters, ICMP sender, fragmenter and the pipeline over them — what every data plane owns,
 * wherever it runs. The in-thread data plane shares the Endpoint's core; the worker builds its
 * own core from the same config inside the worker, and the Endpoint's core (never started)
 * is then the control plane's mirror of peers and routes (same operations in the same order,
 * so the same route ids and peer indices on both sides).
 *
 * The operations of the data-plane boundary (dataplane.ts) that change state end here:
 * addRoute/removeRoute, addPeer/removePeer/updatePeer, setPeerEndpoint, setRules, setBicast,
 * setDebugEvents, setCapture; report() reads the counters. Control plane: may allocate.
 */
import { setImmediate as yieldTurn } from 'node:timers/promises';
import { DropCounters, MAX_REASON } from '../base/drop-reason.ts';
import { PacketPools } from '../base/pool.ts';
import type { Config } from '../config/config.ts';
import { Fragmenter } from '../frag/fragment.ts';
import type { AllowedSources } from '../route/allowed.ts';
import type { Router } from '../route/router.ts';
import { formatRoute, routeJson } from '../route/text/show.ts';
import type { RuleSpec } from '../route/rules.ts';
import type { RouteSpec } from '../route/types.ts';
import { PeerEndpoints, peerEndpoint } from '../transport/peer-endpoints.ts';
import { formatPrefix } from '../wire/address-text.ts';
import { readV4, v4Text } from '../wire/ip.ts';
import type { CaptureSpec } from './capture-ring.ts';
import type { Counters, DataPlaneReport, PeerCounters, PeerSpec, UnderlayAddress } from './dataplane.ts';
import { buildRouters, STACK_DEV } from './config-routes.ts';
import { IcmpSender } from './icmp-sender.ts';
import { Peer } from './peer.ts';
import { Pipeline, type PipelineEvents } from './pipeline.ts';
import type { RouteSnapshot } from './snapshot.ts';
import { IcmpRateLimiter } from './icmp-rate-limit.ts';

export interface CoreOptions {
  /** Pool sizes (defaults: 8192 MTU slots, 128 64-KiB slots). */
  poolSlots?: { small?: number; large?: number };
  /** Our control-message sender id (the pipeline rejects reflections of it). */
  senderId: number;
  /** One line per event (setup warnings). */
  log?: (line: string) => void;
  /** The endpoints record to use (default: a new one, filled from the config). */
  endpoints?: PeerEndpoints;
}

export class DataPlaneCore {
  readonly config: Config;
  readonly pools: PacketPools;
  readonly router: Router;
  readonly allowed: AllowedSources;
  /** Each peer's underlay endpoint, the one record (transports follow it). */
  readonly endpoints: PeerEndpoints;
  /** Peer by index; a removed peer leaves a hole. Shared with the pipeline. */
  readonly peers: (Peer | undefined)[];
  readonly drops = new DropCounters();
  /** ICMP error rate limits, global and per destination (icmp-rate-limit.ts); the stack shares them. */
  readonly icmpLimit: IcmpRateLimiter;
  readonly icmp: IcmpSender;
  readonly fragmenter: Fragmenter;
  readonly pipeline: Pipeline;
  /** The pipeline's events: a data plane implementation sets them (start). */
  readonly events: PipelineEvents = { onPeerUp: () => {} };

  constructor(config: Config, opts: CoreOptions) {
    this.config = config;
    const log = opts.log ?? (() => {});
    this.pools = new PacketPools({ small: { slots: opts.poolSlots?.small ?? 8192 }, large: { slots: opts.poolSlots?.large ?? 128 } });
    ({ router: this.router, allowed: this.allowed } = buildRouters(config));
    this.endpoints = opts.endpoints ?? new PeerEndpoints();
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
    const rl = config.icmpRateLimit;
    this.icmpLimit = new IcmpRateLimiter({ rate: rl.rate, burst: rl.burst, perDestinationMs: rl.perDestinationMs, now: performance.now() });
    this.icmp = new IcmpSender(this.pools, this.icmpLimit, this.drops, () => performance.now());
    this.icmp.srcV4 = icmpSourceV4(config, log);
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
      deviceName: config.interface.name,
      stackName: STACK_DEV,
      hub: config.hub,
      senderId: opts.senderId,
      now: () => Date.now(),
      events: this.events,
    });
  }

  // ---------------------------------------------------------------- boundary operations

  addRoute(spec: RouteSpec): number {
    return this.router.add(spec);
  }

  removeRoute(id: number): boolean {
    return this.router.remove(id);
  }

  setPeerEndpoint(index: number, to: UnderlayAddress): void {
    this.endpoints.set(index, to.family, to.address, to.port);
  }

  /** Put a new peer at `index` (free): its endpoint, routes (dev = its name) and source prefixes. */
  addPeer(index: number, spec: PeerSpec): Peer {
    if (!Number.isInteger(index) || index < 0) throw new RangeError(`bad peer index ${index}`);
    if (this.peers[index] !== undefined) throw new RangeError(`peer index ${index} is taken (${this.peers[index]!.name})`);
    if (spec.endpoint !== null) this.setPeerEndpoint(index, spec.endpoint);
    const peer = new Peer({
      index,
      name: spec.name,
      endpoints: this.endpoints,
      routes: spec.routes,
      mtu: spec.mtu,
      keepalive: spec.keepalive,
      key: spec.key,
      mss: spec.mss,
      mobile: spec.mobile,
      sourcesOf: spec.sourcesOf,
    });
    while (this.peers.length < index) this.peers.push(undefined);
    this.peers[index] = peer;
    for (const r of spec.routes) {
      const prefix = { family: r.family, bytes: r.bytes, length: r.length };
      this.router.add({ prefix, dev: spec.name, text: `${formatPrefix(prefix)} dev ${spec.name}` });
    }
    for (const r of spec.sources ?? spec.routes) this.allowed.add({ family: r.family, bytes: r.bytes, length: r.length }, index);
    this.pipeline.peerAdded(peer);
    return peer;
  }

  /** Remove peer `index`: the routes through its dev name, its source prefixes, its endpoint. */
  removePeer(index: number): void {
    const peer = this.peers[index];
    if (peer === undefined) return;
    this.pipeline.peerRemoved(peer);
    for (const id of this.router.list({ table: 'all' })) {
      if (this.router.nexthopsOf(id).some((nh) => nh.dev === peer.name)) this.router.remove(id);
    }
    this.allowed.removePeer(index);
    this.endpoints.remove(index);
    this.peers[index] = undefined;
  }

  /**
   * Change peer `index` in place (dataplane.ts updatePeer): the routes through it and its source
   * prefixes follow `spec.routes` (what goes first, then what comes), then its settings, then its
   * endpoint when given. A prefix another peer still holds as a source stays that peer's: move
   * prefixes between peers in two steps (shrink the one, then grow the other), as reload does.
   */
  updatePeer(index: number, spec: PeerSpec): void {
    const peer = this.peers[index];
    if (peer === undefined) throw new RangeError(`no peer at index ${index}`);
    if (spec.name !== peer.name) throw new RangeError(`peer ${peer.name} cannot be renamed to ${spec.name}: remove it and add the new one`);
    const name = peer.name;
    const want = new Map(spec.routes.map((r) => [formatPrefix(r), r]));
    const have = new Map(peer.routes.map((r) => [formatPrefix(r), r]));
    let changed = false;
    for (const [text, r] of have) {
      if (want.has(text)) continue;
      this.router.remove({ prefix: { family: r.family, bytes: r.bytes, length: r.length }, dev: name });
      changed = true;
    }
    for (const [text, r] of want) {
      if (have.has(text)) continue;
      const prefix = { family: r.family, bytes: r.bytes, length: r.length };
      this.router.add({ prefix, dev: name, text: `${text} dev ${name}` });
      changed = true;
    }
    if (changed) {
      this.allowed.removePeer(index);
      for (const r of spec.routes) this.allowed.add({ family: r.family, bytes: r.bytes, length: r.length }, index);
    }
    const keyChanged = !sameBytes(peer.key, spec.key);
    peer.apply(spec);
    if (keyChanged) this.pipeline.resetPeer(index);
    if (spec.endpoint !== null) {
      const cur = this.endpoints.get(index);
      const to = spec.endpoint;
      if (cur === undefined || cur.port !== to.port || !sameBytes(cur.bytes, to.address)) this.setPeerEndpoint(index, to);
    }
  }

  /** Replace the policy rules (all but Linux's three defaults) with `rules`, at once. */
  setRules(rules: readonly RuleSpec[]): void {
    this.router.replaceRules(rules);
  }

  /** Report each drop as a rate-limited 'drop' event (--log-level debug), or stop. */
  setDebugEvents(on: boolean): void {
    this.pipeline.reporter.debug = on;
  }

  /** Start or stop (null) copying packets into a capture ring. */
  setCapture(spec: CaptureSpec | null): void {
    this.pipeline.setCapture(spec);
  }

  setBicast(index: number, to: UnderlayAddress | null, untilMs: number): void {
    const peer = this.peers[index];
    if (peer === undefined) return;
    this.pipeline.setBicast(peer, to === null ? null : peerEndpoint(to.family, to.address, to.port), untilMs);
  }

  // ---------------------------------------------------------------- counters

  peerCounters(): (PeerCounters | null)[] {
    return this.peers.map((p) =>
      p === undefined
        ? null
        : {
            rxPackets: p.rxPackets,
            rxBytes: p.rxBytes,
            txPackets: p.txPackets,
            txBytes: p.txBytes,
            drops: p.drops,
            lastRx: p.lastRx,
            lastTx: p.lastTx,
            up: p.up,
          },
    );
  }

  /** The routes `ids` (default: all, in one go) with their counters. */
  routeSnapshots(ids: readonly number[] = this.router.list({ table: 'all' })): RouteSnapshot[] {
    return ids.map((id) => ({
      text: formatRoute(this.router, id),
      uses: this.router.packetsOf(id),
      bytes: this.router.bytesOf(id),
      json: routeJson(this.router, id) as unknown as RouteSnapshot['json'],
    }));
  }

  /**
   * The routes a page at a time (DataPlane.routePages): one bounded cursor step per page, and a
   * turn of the event loop before each step so packets move in between.
   */
  async *routePages(pageSize: number): AsyncIterableIterator<RouteSnapshot[]> {
    const cursor = this.router.cursor({ table: 'all' });
    for (;;) {
      await yieldTurn();
      const ids = cursor.next(pageSize);
      if (ids === null) return;
      if (ids.length > 0) yield this.routeSnapshots(ids);
    }
  }

  /** The report, with the device and transport counters the caller has. */
  report(io: { tunRx: Counters; tunTx: Counters; udpRx: Counters; udpTx: Counters }, withRoutes: boolean, extra: Record<string, number> = {}): DataPlaneReport {
    const drops: number[] = new Array<number>(MAX_REASON);
    for (let i = 0; i < MAX_REASON; i++) drops[i] = this.drops.counts[i]!;
    return {
      ...io,
      forwarded: this.pipeline.forwarded,
      icmpSent: this.icmp.sent,
      drops,
      peers: this.peerCounters(),
      poolLive: this.pools.live,
      poolCapacity: this.pools.small.slots + this.pools.large.slots,
      poolExhausted: this.pools.small.exhausted + this.pools.large.exhausted,
      routes: withRoutes ? this.routeSnapshots() : null,
      extra: { routeLookups: this.pipeline.routeLookups, ...extra },
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

function sameBytes(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
