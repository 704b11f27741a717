/**
 * An ipferry endpoint: builds the route table, peers, device, UDP transport, pipeline and own
 * stack from a validated Config, runs them, and tears them down again (kernel routes removed,
 * TUN gone, every pool slot back). Control-plane code: it may allocate freely.
 *
 * Events (typed, see EndpointEvents): 'peer-up' / 'peer-down' (Peer), 'drop' (per-reason counts,
 * at most once a second), 'error' (the device went away), 'control' (control messages nobody
 * here used), 'internal-error' (an exception the endpoint caught and survived), 'binding' /
 * 'handover' (mobility). Log events (log-event.ts) go to the `onEvent` option, or as lines to
 * `log`.
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
 *
 * Mobility (endpoint/mobility/): the roles of `config.mobility` and roaming for keyed peers, a
 * control plane acting on the data plane only through the boundary operations below
 * (endpoint/mobility/ops.ts lists what it uses).
 *
 * Reload (reload()): the new config's peer, route, rule and key changes are applied through the
 * data-plane boundary while traffic runs (reload-plan.ts says what is live and what needs a
 * restart, reload-apply.ts applies it); an invalid config changes nothing. Peers given by DNS
 * name are looked up again on reload and when they go down (peer-resolve.ts).
 *
 * Past 600 lines on purpose: this is the one control plane of an endpoint — its lifecycle, the
 * boundary operations every control-plane part goes through, liveness, reload, log events and
 * the snapshot — and splitting it would spread one state (config, running data plane, kernel
 * routes, timers) over files. What stands alone lives beside it: the data plane's state
 * (dataplane-core.ts), reload planning and applying, log wording (log-event.ts), the capture
 * ring, DNS re-resolution, mobility.
 */
import { EventEmitter } from 'node:events';
import { DROP_REASON_NAMES, DropCounters, DropReason } from '../base/drop-reason.ts';
import type { PacketBuffer, PacketPools } from '../base/pool.ts';
import { assertResolved, type Config, type ResolveOptions } from '../config/config.ts';
import type { PacketDevice } from '../device/device.ts';
import type { AllowedSources } from '../route/allowed.ts';
import type { Router } from '../route/router.ts';
import { formatRoute, routeJson } from '../route/text/show.ts';
import type { RuleSpec } from '../route/rules.ts';
import type { RouteSpec } from '../route/types.ts';
import type { PeerEndpoints } from '../transport/peer-endpoints.ts';
import { ControlCounter, ControlSender } from '../tunnel/control.ts';
import type { AddressBytes, Prefix } from '../wire/address-text.ts';
import { controlLength, KEEPALIVE_BODY_LEN, senderIdFromName } from '../wire/gue.ts';
import { DataPlaneCore } from './dataplane-core.ts';
import type { ControlDatagram, DataPlane, DataPlaneHooks, DataPlaneReport, PeerSpec, UnderlayAddress } from './dataplane.ts';
import { InThreadDataPlane } from './dataplane-inthread.ts';
import { FastPathUnavailable, WorkerDataPlane } from './dataplane-worker.ts';
import { sysLibc, sysUnavailableReason } from '../sys/libc.ts';
import { CaptureRing } from './capture-ring.ts';
import { KernelRoutes, type KernelRouteChanges } from './kernel-routes.ts';
import { describeDataPlaneEvent, lineEvent, lineSink, type EventFields, type EventLevel, type EventSink, type PeerNaming } from './log-event.ts';
import { reresolvePeer } from './peer-resolve.ts';
import { applyReload, checkReload } from './reload-apply.ts';
import { planReload } from './reload-plan.ts';
import { LocalStack, type StackUdpSocket } from './local-stack.ts';
import type { Peer } from './peer.ts';
import type { Pipeline } from './pipeline.ts';
import type { PeerSnapshot, RouteSnapshot, ShowWhat, Snapshot, SnapshotOptions, StatsSnapshot } from './snapshot.ts';
import { kernelPrefixes, STACK_DEV } from './config-routes.ts';
import { exercisePipeline } from './warm-up.ts';
import type { BindingEvent, HandoverEvent } from './mobility/events.ts';
import { MobilityPlane } from './mobility/mobility-plane.ts';
import type { DataPlaneOps } from './mobility/ops.ts';

export type { BindingEvent, HandoverEvent };

export { STACK_DEV };

/**
 * The 'error' when the device went away under a running endpoint (its TUN deleted, a fatal read
 * error): the endpoint cannot forward any more. `ipferry up` stops cleanly with exit code 1, so
 * a supervisor (systemd Restart=on-failure) starts it again with a new TUN, addresses and routes.
 */
export class DeviceGoneError extends Error {
  override name = 'DeviceGoneError';
}

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
  /**
   * A GUE control message the data plane does not handle itself (any type but a keepalive from
   * a peer, or from an unknown underlay source): only delivered while someone listens; without
   * a listener such messages are dropped and counted as before.
   */
  control: [msg: ControlDatagram];
  /** A binding was added, moved or removed (home agent), or a node reached directly or not (correspondent). */
  binding: [event: BindingEvent];
  /** This mobile node moved and is registered at its new care-of (or home), or a home agent's node moved. */
  handover: [event: HandoverEvent];
}

/** What reload() did. */
export interface ReloadResult {
  /** One phrase per change applied live ("peer far: key changed"); empty: nothing changed. */
  applied: string[];
  /** One phrase per change that needs a restart ("listen ... -> ..."): not applied. */
  restart: string[];
}

export interface EndpointOptions {
  /** One line per event (warnings start with "warning:"). */
  log?: (line: string) => void;
  /** Log events with their names and fields (log-event.ts); when given, `log` lines come here too. */
  onEvent?: EventSink;
  /** How peers given by DNS name are looked up again (reload, peer down); default getaddrinfo. */
  resolve?: ResolveOptions;
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
  /** The config running (after a reload: the new one, with what needs a restart as started). */
  private current: Config;
  /**
   * The data plane's state on this thread. With the in-thread data plane (portable path, memory
   * devices) it is the live data plane; with the worker data plane it is the control plane's
   * mirror (peers and routes as configured, counters copied from the worker's reports) and its
   * pools serve the endpoint's own stack.
   */
  readonly core: DataPlaneCore;
  readonly stack: LocalStack;
  /** The running data plane (null before start and after stop). */
  dataplane: DataPlane | null = null;
  /** Mobility roles and roaming (a control plane over the boundary operations). */
  readonly mobility: MobilityPlane;
  startedAt = 0;

  private readonly log: (line: string) => void;
  private readonly sink: EventSink;
  private readonly opts: EndpointOptions;
  /** The config's extra `routes` lines by text: their route ids (reload removes by id). */
  private readonly configRouteIds = new Map<string, number>();
  /** Peer index -> lastRx when its lost keepalive was logged (once per silence). */
  private readonly keepaliveLost = new Map<number, number>();
  /** Drops reported as debug events (setDebugEvents). */
  private debugEvents = false;
  private capturing: CaptureRing | null = null;
  private readonly senderId: number;
  /** Our sender id and counter on the control messages (keepalives) we send. */
  private readonly control: ControlSender;
  private kernelRoutes: KernelRoutes | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private readonly lastDrops = new Float64Array(256);
  /** The freshest report of a data plane in another thread (counters are copied from it). */
  private lastReport: DataPlaneReport | null = null;
  private ticking = false;
  /** Exceptions caught inside the dataplane and the endpoint's own timers (see the header). */
  internalErrors = 0;
  /** Event listeners (ours and the stack sockets') that threw. */
  listenerErrors = 0;
  /** Unheard 'internal-error's: last log line (ms) and how many since. */
  private lastErrorLog = -Infinity;
  private unloggedErrors = 0;

  constructor(config: Config, opts: EndpointOptions = {}) {
    super();
    assertResolved(config); // peer endpoints given as DNS names: resolveConfig first
    this.current = config;
    this.opts = opts;
    const onEvent = opts.onEvent;
    this.sink = onEvent ?? lineSink(opts.log ?? (() => {}));
    this.log = onEvent !== undefined ? (line) => onEvent(lineEvent(line)) : (opts.log ?? (() => {}));
    // A mobile node's keepalives are its messages too: the node's sender id and one counter.
    const mn = config.mobility?.mobileNode;
    this.senderId = mn ? senderIdFromName(mn.name) : senderIdFromName(`${config.interface.name}/${process.pid}/${Math.random()}`);
    const counter = new ControlCounter();
    this.control = new ControlSender(this.senderId, counter);
    this.core = new DataPlaneCore(config, { poolSlots: opts.poolSlots, senderId: this.senderId, log: this.log });
    this.core.events.onPeerUp = (p) => this.peerUp(p);
    this.core.events.onError = (e) => this.internalError(e, 'pipeline');
    this.stack = new LocalStack({
      pools: this.core.pools,
      addresses: config.stack.address.map((a) => ({ family: a.family, bytes: a.bytes })),
      output: this.stackOutput,
      drops: this.core.drops,
      errorLimit: this.core.icmpLimit,
      onError: (e, where) => this.internalError(e, where),
    });
    this.core.pipeline.local = this.stack;
    // control messages are punted up only while someone listens for them
    const self = this as EventEmitter;
    self.on('newListener', (event: string | symbol) => {
      if (event === 'control') queueMicrotask(() => this.dataplane?.wantControl(this.wantsControl()));
    });
    self.on('removeListener', (event: string | symbol) => {
      if (event === 'control') this.dataplane?.wantControl(this.wantsControl());
    });
    const configTexts = new Set(config.routes.map((r) => r.text));
    for (const id of this.router.list({ table: 'all' })) {
      const t = this.router.textOf(id);
      if (t !== undefined && configTexts.has(t)) this.configRouteIds.set(t, id);
    }
    this.mobility = new MobilityPlane(config, this, counter, {
      binding: (e) => this.safeEmit('binding', e),
      handover: (e) => this.safeEmit('handover', e),
      log: this.log,
    });
  }

  /** The config running (after a reload: the new one, with what needs a restart as started). */
  get config(): Config {
    return this.current;
  }

  /** One log event. */
  private event(level: EventLevel, event: string, msg: string, fields?: EventFields): void {
    this.sink({ level, event, msg, fields });
  }

  // The data plane's state on this thread (see `core`).
  get pools(): PacketPools {
    return this.core.pools;
  }
  get router(): Router {
    return this.core.router;
  }
  get allowed(): AllowedSources {
    return this.core.allowed;
  }
  /** Each peer's underlay endpoint, the one record (mobility moves peers here, or with setPeerEndpoint). */
  get endpoints(): PeerEndpoints {
    return this.core.endpoints;
  }
  /** The peers (a removed peer leaves a hole); with a worker data plane their counters are copies. */
  get peers(): (Peer | undefined)[] {
    return this.core.peers;
  }
  get drops(): DropCounters {
    return this.core.drops;
  }
  get pipeline(): Pipeline {
    return this.core.pipeline;
  }
  /** The in-thread data plane's device (null with a worker data plane). */
  get device(): PacketDevice | null {
    return this.dataplane instanceof InThreadDataPlane ? this.dataplane.device : null;
  }

  /** Where the UDP socket is bound ("address:port"; '' before start). */
  get listen(): string {
    return this.dataplane?.listen ?? '';
  }

  /** Which data path runs ('' before start): see DataPlane.path. */
  get dataplanePath(): string {
    return this.dataplane?.path ?? '';
  }

  /** Open the device and the socket, install kernel routes, start the timers. */
  async start(): Promise<void> {
    if (this.running) return;
    const c = this.config;
    const dp = await this.openDataPlane();
    this.dataplane = dp;
    try {
      if (c.kernelRoutes && this.opts.device === undefined && this.opts.tun !== false) {
        this.kernelRoutes = new KernelRoutes(c.interface.name, this.log);
        const endpoints = this.underlayAddresses();
        this.kernelRoutes.removeStale(endpoints); // what a SIGKILLed endpoint left (kernel-routes.ts)
        this.logKernelRoutes(this.kernelRoutes.install(kernelPrefixes(c), endpoints), true);
      }
      if (this.debugEvents) dp.setDebugEvents(true);
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
    for (const p of this.peers) if (p !== undefined && p.keepaliveMs > 0) this.sendKeepalive(p);
    this.event('info', 'start', `up: ${c.interface.name} mtu ${c.interface.mtu}, listening on ${dp.listen}, ${this.peers.length} peer(s), data path: ${dp.path}`, {
      mtu: c.interface.mtu,
      listen: dp.listen,
      peers: this.peers.length,
      dataplane: dp.path,
    });
  }

  /** The peers' underlay addresses (kernel routes pin the ones a tunnel prefix would capture). */
  private underlayAddresses(): AddressBytes[] {
    return this.endpoints.entries().map(([, e]) => ({ family: e.family, bytes: e.bytes }));
  }

  /** Kernel route changes: at start and stop one summary line (each route at debug), else one line each. */
  private logKernelRoutes(ch: KernelRouteChanges, summary: boolean): void {
    const dev = this.config.interface.name;
    const each = (level: EventLevel, action: 'added' | 'removed', route: string): void =>
      this.event(level, 'kernel-route', `kernel route ${action}: ${route}`, { action, route });
    for (const r of ch.added) each(summary ? 'debug' : 'info', 'added', r);
    for (const r of ch.removed) each(summary ? 'debug' : 'info', 'removed', r);
    if (summary && ch.added.length + ch.removed.length > 0) {
      const n = ch.added.length > 0 ? ch.added.length : ch.removed.length;
      const action = ch.added.length > 0 ? 'added' : 'removed';
      this.event('info', 'kernel-route', `kernel routes: ${n} ${action} through ${dev}`, { action, count: n });
    }
  }

  /**
   * The data plane for this endpoint's options (see dataplane.ts), started: a given device or
   * userspace mode in-thread; a kernel TUN on the fast path (a worker) where it can run, else
   * the portable path in-thread, saying why.
   */
  private async openDataPlane(): Promise<DataPlane> {
    const hooks = this.hooks();
    const o = this.opts;
    const warmUp = o.warmUp ?? (process.env.IPFERRY_WARMUP !== undefined ? Number(process.env.IPFERRY_WARMUP) || 0 : 24_000);
    let device: PacketDevice | 'memory' | 'tun';
    let path: string;
    if (o.device !== undefined) {
      device = o.device;
      path = `memory (${o.device.name})`;
    } else if (o.tun === false) {
      device = 'memory';
      path = 'memory (userspace)';
    } else {
      device = 'tun';
      let why = sysLibc() === null ? sysUnavailableReason() : '';
      if (why === '') {
        const roaming = this.config.peers.some((p) => p.key !== null);
        const dp = new WorkerDataPlane(this.core, { hooks, senderId: this.senderId, warmUp, poolSlots: o.poolSlots, keepalives: roaming });
        dp.wantControl(this.wantsControl());
        try {
          await dp.start();
          this.log(`data plane worker ready (warm-up: ${dp.warmUp.packets} packets in ${Math.round(dp.warmUp.ms)} ms)`);
          return dp;
        } catch (e) {
          if (!(e instanceof FastPathUnavailable)) throw e;
          why = e.message;
          this.log(`warning: fast path unavailable, running the portable path: ${why}`);
        }
      }
      path = `portable (${why})`;
    }
    this.warmUpJit(warmUp);
    const dp = new InThreadDataPlane(this.core, { device, path, hooks });
    dp.wantControl(this.wantsControl());
    await dp.start();
    return dp;
  }

  /**
   * Whether the data plane should punt control messages up: a 'control' listener, or mobility
   * (binding messages for a home agent / mobile node / correspondent; keepalives from new
   * addresses when keyed peers may roam). Otherwise they stay in the data plane, dropped and
   * counted there (no message per datagram from a worker).
   */
  private wantsControl(): boolean {
    return this.listenerCount('control') > 0 || this.config.mobility !== undefined || this.config.peers.some((p) => p.key !== null);
  }

  private hooks(): DataPlaneHooks {
    return {
      peerUp: (index) => {
        const p = this.peers[index];
        if (p === undefined) return;
        // From a worker: this side's copy learns it here (in-thread the pipeline set it already).
        if (!p.up) {
          p.up = true;
          p.liveness.lastRx = Date.now();
        }
        this.peerUp(p);
      },
      toLocal: (p) => this.stack.input(p),
      control: (msg) => {
        // mobility first (binding updates, acks, refresh requests, roaming); what it cannot use
        // goes to 'control' listeners, or is counted as a drop
        const r = this.mobility.onControl(msg);
        if (r === DropReason.None) return;
        if (this.listenerCount('control') > 0) this.safeEmit('control', msg);
        else {
          this.drops.count(r);
          const p = msg.peer >= 0 ? this.peers[msg.peer] : undefined;
          if (p !== undefined) p.drops++;
        }
      },
      sendError: () => this.mobility.sendError(),
      // one report: to the 'error' listener (ipferry up logs it and stops), else one log line
      down: (why) => this.fatal(new DeviceGoneError(why)),
      internalError: (e, where) => this.internalError(e, where),
      keepalive: (index, bytes) => {
        const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
        this.core.pipeline.noteControl(index, b, 0, b.length);
      },
      log: this.log,
      event: (e) => this.sink(describeDataPlaneEvent(e, this.naming)),
    };
  }

  /** How data-plane events name peers. */
  private readonly naming: PeerNaming = {
    name: (i) => this.peers[i]?.name,
    sameHost: (host, port) => {
      for (const p of this.peers) {
        const ep = p?.endpoint;
        if (p !== undefined && ep !== undefined && ep.host === host && ep.port !== port) return { name: p.name, endpoint: ep.text };
      }
      return undefined;
    },
  };

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
    if (!this.running && this.dataplane === null) return;
    if (this.running) await this.mobility.stop(); // a mobile node deregisters while it still can
    this.running = false;
    await this.teardown();
    this.event('info', 'stop', 'stopped');
  }

  private async teardown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.kernelRoutes !== null) this.logKernelRoutes(this.kernelRoutes.remove(), true);
    this.kernelRoutes = null;
    this.capturing = null;
    const dp = this.dataplane;
    if (dp) {
      // the last counters of a worker data plane stay readable after stop
      if (!(dp instanceof InThreadDataPlane)) this.lastReport = await dp.report(true).catch(() => this.lastReport);
      await dp.stop();
    }
    this.dataplane = null;
    this.stack.close();
  }

  private readonly stackOutput = (p: PacketBuffer): void => {
    const dp = this.dataplane;
    if (dp !== null) dp.localOutput(p);
    else this.core.pipeline.fromLocal(p);
  };

  // ---------------------------------------------------------------- the boundary, for the control plane

  /** Add a route to the data plane (and this side's mirror). Throws RouteError for a bad spec. */
  addRoute(spec: RouteSpec): number {
    const dp = this.dataplane;
    const id = this.core.addRoute(spec);
    if (dp !== null && !(dp instanceof InThreadDataPlane)) dp.addRoute(spec);
    return id;
  }

  removeRoute(id: number): void {
    const dp = this.dataplane;
    this.core.removeRoute(id);
    if (dp !== null && !(dp instanceof InThreadDataPlane)) dp.removeRoute(id);
  }

  /** Set or move peer `index`'s underlay endpoint. */
  setPeerEndpoint(index: number, to: UnderlayAddress): void {
    const dp = this.dataplane;
    this.core.setPeerEndpoint(index, to);
    if (dp !== null && !(dp instanceof InThreadDataPlane)) dp.setPeerEndpoint(index, to);
  }

  /** Add a peer at run time; returns its index. */
  addPeer(spec: PeerSpec): number {
    const index = this.peers.findIndex((p) => p === undefined);
    const at = index < 0 ? this.peers.length : index;
    this.core.addPeer(at, spec);
    const dp = this.dataplane;
    if (dp !== null && !(dp instanceof InThreadDataPlane)) dp.addPeer(at, spec);
    return at;
  }

  removePeer(index: number): void {
    const dp = this.dataplane;
    this.core.removePeer(index);
    if (dp !== null && !(dp instanceof InThreadDataPlane)) dp.removePeer(index);
  }

  /** Change peer `index` in place (routes, mtu, keepalive, key, MSS, endpoint): see DataPlane.updatePeer. */
  updatePeer(index: number, spec: PeerSpec): void {
    const dp = this.dataplane;
    this.core.updatePeer(index, spec);
    if (dp !== null && !(dp instanceof InThreadDataPlane)) dp.updatePeer(index, spec);
  }

  /** Replace the policy rules (all but Linux's three defaults), at once. */
  setRules(rules: readonly RuleSpec[]): void {
    const dp = this.dataplane;
    this.core.setRules(rules);
    if (dp !== null && !(dp instanceof InThreadDataPlane)) dp.setRules(rules);
  }

  /** Log each drop (reason and peer, rate-limited) as a debug event, or stop. */
  setDebugEvents(on: boolean): void {
    this.debugEvents = on;
    this.core.setDebugEvents(on);
    const dp = this.dataplane;
    if (dp !== null && !(dp instanceof InThreadDataPlane)) dp.setDebugEvents(on);
  }

  /**
   * Start a capture (`ipferry capture`): the data plane copies the `view`'s packets into a new
   * ring (capture-ring.ts) of `bytes` bytes, at most `snaplen` bytes each, until stopCapture.
   * One at a time; throws when one runs or the endpoint is not running.
   */
  startCapture(view: 'inner' | 'outer', opts: { bytes?: number; snaplen?: number } = {}): CaptureRing {
    const dp = this.dataplane;
    if (dp === null) throw new Error(`${this.config.interface.name} is not running`);
    if (this.capturing !== null) throw new Error(`a capture is already running on ${this.config.interface.name}`);
    const ring = new CaptureRing(opts.bytes ?? 4 << 20);
    dp.setCapture({ view, buffer: ring.buffer, snaplen: opts.snaplen ?? 262_144 });
    this.capturing = ring;
    return ring;
  }

  /** Stop the capture writing into `ring` (nothing when it is not the running one). */
  stopCapture(ring: CaptureRing): void {
    if (this.capturing !== ring) return;
    this.capturing = null;
    this.dataplane?.setCapture(null);
  }

  /** Send a control datagram (GUE header first) to a peer or an underlay address. */
  sendControl(bytes: Uint8Array, to: number | UnderlayAddress): DropReason {
    return this.dataplane?.sendControl(bytes, to) ?? DropReason.NoSocket;
  }

  /** Bicast what goes to peer `peer` to `to` as well until `untilMs` (null stops). */
  bicast(peer: number, to: UnderlayAddress | null, untilMs: number): void {
    const dp = this.dataplane;
    if (dp !== null) dp.bicast(peer, to, untilMs);
  }

  /** A UDP socket on the endpoint's own stack (inside the tunnel network). */
  udpBind(port = 0): StackUdpSocket {
    return this.stack.udpBind(port);
  }

  /** Ping from the endpoint's own stack (from its first address of the family, or `from`). */
  ping(address: string, size = 56, timeoutMs = 2000, from?: string): Promise<number> {
    return this.stack.ping(address, size, timeoutMs, from);
  }

  private tick(): void {
    if (this.ticking) return;
    const dp = this.dataplane;
    if (dp !== null && !(dp instanceof InThreadDataPlane)) {
      // counters and liveness live in the worker: act on a fresh report
      this.ticking = true;
      dp.report(false)
        .then((r) => {
          this.applyReport(r);
          this.tickNow();
        })
        .catch((e: unknown) => this.log(`warning: data plane report: ${(e as Error).message}`))
        .finally(() => (this.ticking = false));
      return;
    }
    this.tickNow();
  }

  private tickNow(): void {
    if (!this.running) return;
    try {
      const now = Date.now();
      this.stack.poll();
      this.emitDrops();
      for (const p of this.peers) {
        if (p === undefined) continue;
        const l = p.liveness;
        if (l.keepaliveDue(now) && !this.mobility.quiet(p.index)) this.sendKeepalive(p);
        if (l.expire(now)) {
          this.dataplane?.peerDown(p.index);
          const silent = Math.round((now - l.lastRx) / 1000);
          this.event('info', 'peer-down', `peer ${p.name} down (nothing heard for ${silent} s)`, { peer: p.name, endpoint: p.endpointText, silentSeconds: silent });
          this.safeEmit('peer-down', p);
          this.mobility.peerDown(p.index);
          void this.reresolve(p.name);
        } else if (l.up && l.keepaliveMs > 0 && now - l.lastRx > 2 * l.keepaliveMs && this.keepaliveLost.get(p.index) !== l.lastRx) {
          // two keepalives missed: say so before the peer is declared down
          this.keepaliveLost.set(p.index, l.lastRx);
          const silent = Math.round((now - l.lastRx) / 1000);
          this.event(
            'warn',
            'keepalive-lost',
            `peer ${p.name}: keepalive lost (nothing heard for ${silent} s, keepalive every ${l.keepaliveMs / 1000} s; down after ${Math.round(l.deadAfterMs / 1000)} s)`,
            { peer: p.name, endpoint: p.endpointText, silentSeconds: silent },
          );
        }
      }
    } catch (e) {
      this.internalError(e, 'timer');
    }
    this.logUnheardErrors();
  }

  /** A peer given by DNS name went down: look the name up again, move the peer if it changed. */
  private async reresolve(name: string): Promise<void> {
    const c = this.config;
    const r = await reresolvePeer(c, name, this.opts.resolve);
    if (r.kind === 'same') return;
    if (r.kind === 'failed') {
      this.event('warn', 'endpoint-resolved', `peer ${name}: ${r.why}; keeping its address`, { peer: name, hostname: r.hostname });
      return;
    }
    const index = this.peers.findIndex((p) => p?.name === name);
    if (!this.running || this.config !== c || index < 0) return; // stopped or reloaded meanwhile
    this.setPeerEndpoint(index, { family: r.to.family, address: r.to.bytes, port: r.to.port });
    this.current = r.config;
    this.event('info', 'endpoint-resolved', `peer ${name}: ${r.hostname} now resolves to ${r.to.host} (was ${r.from.host})`, {
      peer: name,
      hostname: r.hostname,
      address: r.to.host,
      was: r.from.host,
    });
    this.syncKernelRoutes();
  }

  /** Kernel routes after a change of prefixes or endpoints (one line per route added or removed). */
  private syncKernelRoutes(): void {
    if (this.kernelRoutes === null) return;
    try {
      this.logKernelRoutes(this.kernelRoutes.sync(kernelPrefixes(this.config), this.underlayAddresses()), false);
    } catch (e) {
      this.event('error', 'kernel-route', `kernel routes: ${(e as Error).message.split('\n')[0]}`);
    }
  }

  // ---------------------------------------------------------------- reload

  /**
   * Apply a new config (resolved: resolveConfig) to the running endpoint: peers, routes, rules
   * and keys change live (reload-plan.ts); what needs a restart is returned and not applied.
   * Throws a one-line ConfigError and changes nothing when the new config cannot run here.
   */
  reload(next: Config): ReloadResult {
    assertResolved(next);
    const plan = planReload(this.config, next);
    checkReload(plan, this.config, next.source);
    const r = applyReload(this, plan, this.configRouteIds);
    for (const i of r.added) {
      const p = this.peers[i]!;
      if (p.keepaliveMs > 0 && this.running) this.sendKeepalive(p);
    }
    for (const f of r.failed) this.event('error', 'reload', `reload ${next.source}: route ${f}`);
    this.keepaliveLost.clear();
    this.current = plan.effective;
    this.syncKernelRoutes();
    const src = next.source;
    if (plan.live.length === 0) this.event('info', 'reload', `reload ${src}: no changes to apply`, { source: src, changes: 0 });
    else this.event('info', 'reload', `reload ${src}: ${plan.live.join('; ')}`, { source: src, changes: plan.live.length });
    if (plan.restart.length > 0) {
      this.event('warn', 'reload', `reload ${src}: needs restart: ${plan.restart.join('; ')} (not applied; everything else is)`, { source: src, restart: plan.restart.join('; ') });
    }
    return { applied: plan.live, restart: plan.restart };
  }


  /** Copy a worker data plane's counters into this side's peers (liveness: lastRx/lastTx). */
  private applyReport(r: DataPlaneReport): void {
    this.lastReport = r;
    r.peers.forEach((c, i) => {
      const p = this.peers[i];
      if (c === null || p === undefined) return;
      p.rxPackets = c.rxPackets;
      p.rxBytes = c.rxBytes;
      p.txPackets = c.txPackets;
      p.txBytes = c.txBytes;
      p.drops = c.drops;
      p.liveness.lastRx = c.lastRx;
      p.liveness.lastTx = c.lastTx;
    });
  }

  /** Per-reason 'drop' events for what changed since the last tick (only when someone listens). */
  private emitDrops(): void {
    if (this.listenerCount('drop') === 0) return;
    const c = this.dropCounts();
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
  private safeEmit<K extends 'peer-up' | 'peer-down' | 'drop' | 'control' | 'binding' | 'handover'>(event: K, ...args: EndpointEvents[K]): void {
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

  /** Drops by reason: this thread's (the stack's, and the in-thread pipeline's) plus a worker's last report. */
  private dropCounts(): Float64Array {
    const r = this.lastReport;
    if (r === null || this.dataplane instanceof InThreadDataPlane) return this.drops.counts;
    const out = Float64Array.from(this.drops.counts);
    for (let i = 0; i < out.length && i < r.drops.length; i++) out[i]! += r.drops[i]!;
    return out;
  }

  private sendKeepalive(p: Peer): void {
    const dp = this.dataplane;
    if (dp === null || p.endpoint === undefined) return;
    const n = controlLength(KEEPALIVE_BODY_LEN, true);
    const b = Buffer.alloc(n);
    const len = this.control.keepalive(b, 0, p.keepaliveMs / 1000, p.key);
    p.liveness.sent(Date.now());
    dp.sendControl(b.subarray(0, len), p.index);
  }

  private peerUp(p: Peer): void {
    this.keepaliveLost.delete(p.index);
    this.event('info', 'peer-up', `peer ${p.name} up (${p.endpointText})`, { peer: p.name, endpoint: p.endpointText });
    this.safeEmit('peer-up', p);
  }

  /** Counters: device and UDP traffic, ICMP errors sent, drops per reason, pool slots. */
  stats(): StatsSnapshot {
    return this.snapshot('stats').stats;
  }

  /**
   * Everything `ipferry show` prints. The route list (the one part whose cost grows with the
   * table) only for 'all' and 'routes'; other parts leave `routes` empty. With a worker data
   * plane the counters are those of its last report (at most a second old while running);
   * snapshotAsync() asks for fresh ones.
   */
  snapshot(what: ShowWhat = 'all', opts: SnapshotOptions = {}): Snapshot {
    const dp = this.dataplane;
    const withRoutes = (what === 'all' || what === 'routes') && opts.routes !== false;
    const r = dp instanceof InThreadDataPlane ? dp.reportNow(withRoutes) : this.lastReport;
    return this.buildSnapshot(r, withRoutes);
  }

  /** snapshot() with the data plane's counters of this moment (the control socket uses it). */
  async snapshotAsync(what: ShowWhat = 'all', opts: SnapshotOptions = {}): Promise<Snapshot> {
    const dp = this.dataplane;
    const withRoutes = (what === 'all' || what === 'routes') && opts.routes !== false;
    if (dp !== null && !(dp instanceof InThreadDataPlane)) this.applyReport(await dp.report(withRoutes));
    return this.snapshot(what, opts);
  }

  /**
   * The route list with use counters, `pageSize` routes at a time, each page built when asked
   * for (DataPlane.routePages): what the control socket streams for `show routes`.
   */
  routePages(pageSize = 256): AsyncIterableIterator<RouteSnapshot[]> {
    return (this.dataplane ?? this.core).routePages(pageSize);
  }

  private buildSnapshot(r: DataPlaneReport | null, withRoutes: boolean): Snapshot {
    const c = this.config;
    const peers: PeerSnapshot[] = [];
    for (const p of this.peers) {
      if (p === undefined) continue;
      peers.push({
        name: p.name,
        endpoint: p.endpointText,
        routes: p.routes.map((x) => x.text),
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
      });
    }
    const routes: RouteSnapshot[] = !withRoutes
      ? []
      : (r?.routes ??
      this.router.list({ table: 'all' }).map((id) => ({
        text: formatRoute(this.router, id),
        uses: this.router.packetsOf(id),
        bytes: this.router.bytesOf(id),
        json: routeJson(this.router, id) as unknown as RouteSnapshot['json'],
      })));
    const inThread = r === null || this.dataplane instanceof InThreadDataPlane;
    const drops = new DropCounters();
    drops.counts.set(this.dropCounts());
    const stackPools = this.pools;
    return {
      interface: c.interface.name,
      listen: this.dataplane?.listen ?? '',
      pid: process.pid,
      device: this.opts.device !== undefined || this.opts.tun === false ? 'memory' : 'tun',
      dataplane: this.dataplanePath,
      mtu: c.interface.mtu,
      addresses: c.interface.address.map((a) => a.text),
      stackAddresses: c.stack.address.map((a) => a.text),
      hub: c.hub,
      peers,
      routes,
      stats: {
        startedAt: this.startedAt,
        tunRx: r?.tunRx ?? { packets: 0, bytes: 0 },
        tunTx: r?.tunTx ?? { packets: 0, bytes: 0 },
        udpRx: r?.udpRx ?? { packets: 0, bytes: 0 },
        udpTx: r?.udpTx ?? { packets: 0, bytes: 0 },
        forwarded: r?.forwarded ?? this.pipeline.forwarded,
        icmpSent: (r?.icmpSent ?? this.core.icmp.sent) + this.stack.errorsSent,
        drops: drops.toJSON(),
        // in-thread the report's pools are the stack's too; a worker's pools are its own
        poolLive: inThread ? (r?.poolLive ?? stackPools.live) : r.poolLive + stackPools.live,
        poolCapacity: inThread ? (r?.poolCapacity ?? stackPools.small.slots + stackPools.large.slots) : r.poolCapacity,
        poolExhausted: inThread
          ? (r?.poolExhausted ?? stackPools.small.exhausted + stackPools.large.exhausted)
          : r.poolExhausted + stackPools.small.exhausted + stackPools.large.exhausted,
        extra: {
          echoReplies: this.stack.echoReplies,
          udpDelivered: this.stack.udpDelivered,
          reassemblyBytes: this.stack.reassembler.memory,
          internalErrors: this.internalErrors,
          listenerErrors: this.listenerErrors + this.stack.listenerErrors,
          ...(r?.extra ?? {}),
        },
        ...(this.mobilityShown() ? { mobility: this.mobility.stats() } : {}),
      },
      ...(c.mobility !== undefined ? { mobility: this.mobility.snapshot() } : {}),
    };
  }

  // ---------------------------------------------------------------- the control plane's own, for mobility

  /** Mobility counters are shown with a mobility section, or keyed peers (they may roam). */
  private mobilityShown(): boolean {
    return this.config.mobility !== undefined || this.config.peers.some((p) => p.key !== null);
  }

  /** Route `prefix` into the TUN in the kernel, or take that route back (no kernel routes: nothing). */
  kernelRoute(prefix: Prefix, on: boolean): void {
    const k = this.kernelRoutes;
    if (k === null) return;
    if (on) k.addRoute(prefix);
    else k.removeRoute(prefix);
  }

  /** Route a peer's own prefixes into the TUN in the kernel (a mobile node leaving home), or stop (at home). */
  setKernelRoutes(peer: number, on: boolean): void {
    const p = this.peers[peer];
    if (p === undefined) return;
    for (const r of p.routes) {
      try {
        this.kernelRoute(r, on);
      } catch (e) {
        this.log(`warning: ${(e as Error).message.split('\n')[0]}`);
      }
    }
  }

  /** Send peer `index` a keepalive now. */
  keepalive(index: number): void {
    const p = this.peers[index];
    if (p !== undefined) this.sendKeepalive(p);
  }

  /**
   * A keepalive checked as peer `index`'s against its replay window (roaming). In-thread: the
   * pipeline's own window. With the worker data plane: this side's mirror core's window, which
   * follows the worker's (the worker copies every accepted keyed keepalive up); a keepalive in
   * flight between the two is the only lag, and the roaming rule's timestamp check still applies.
   */
  acceptControl(index: number, bytes: Uint8Array): DropReason {
    // in-thread: the pipeline's own windows; with a worker: this side's mirror of them, kept
    // where the worker's are by the keyed peers' keepalives it copies up (hooks.keepalive)
    const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    return this.pipeline.acceptControl(index, b, 0, b.length);
  }

  /** An authentic control message of peer `index` arrived: it is alive. */
  heard(index: number): void {
    const p = this.peers[index];
    if (p !== undefined && p.liveness.heard(Date.now())) this.peerUp(p);
  }

  /** Where the UDP socket is bound (null when not running). */
  localAddress(): { address: string; port: number } | null {
    const dp = this.dataplane;
    if (dp instanceof InThreadDataPlane) return dp.transport?.isRunning ? dp.transport.localAddress : null;
    const m = dp === null ? null : /^\[?(.*?)\]?:(\d+)$/.exec(dp.listen);
    return m ? { address: m[1]!, port: Number(m[2]) } : null;
  }

  /**
   * Move the underlay socket to another local address, same port: what a link change is to a
   * node whose socket is bound to one address, where no kernel picks a new source (the
   * in-process example on loopback). The mobility layer notices at once.
   */
  async moveUnderlay(host: string): Promise<void> {
    const dp = this.dataplane;
    if (!(dp instanceof InThreadDataPlane)) throw new Error('moveUnderlay needs the in-thread data plane');
    await dp.rebind(host);
    this.mobility.underlayMoved();
  }
}
