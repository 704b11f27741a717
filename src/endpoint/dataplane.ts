/**
 * The data-plane boundary: the small set of operations through which the control plane (the
 * Endpoint: config, timers, keepalive liveness decisions, mobility, reload, metrics, logs,
 * events, the endpoint's own stack) acts on the data plane (pool, router, pipeline, device and
 * transport), wherever the data plane runs. Two implementations:
 *
 * - InThreadDataPlane (dataplane-inthread.ts): the pipeline on the calling thread, the portable
 *   path (the tuntap2 TUN read by a reader worker, a Node dgram socket), memory devices and the
 *   userspace mode. Operations take effect synchronously.
 * - WorkerDataPlane (dataplane-worker.ts): the Linux fast path (vnet TUN with offloads, UDP with
 *   GSO/GRO) run to completion by one worker thread that owns its own pool, router and pipeline.
 *   Operations are messages, applied in order; the worker wakes for them through an eventfd.
 *
 * The control plane keeps its own view of what it configured (peers, routes: the same ids on
 * both sides, since both apply the same operations in the same order) and asks the data plane
 * for counters (report). Packets cross the boundary only where the control plane consumes them:
 * packets for the endpoint's own stack go up as bytes and the stack's packets come down
 * (`localOutput`), and GUE control messages the data plane does not handle itself (anything but
 * a keepalive from a configured peer, when `hooks.control` is set) go up as (bytes, underlay
 * source, peer index or -1).
 */
import type { DropReason } from '../base/drop-reason.ts';
import type { PacketBuffer } from '../base/pool.ts';
import type { ConfigPrefix } from '../config/config.ts';
import type { RuleSpec } from '../route/rules.ts';
import type { RouteSpec } from '../route/types.ts';
import type { Family } from '../wire/address-text.ts';
import type { CaptureSpec } from './capture-ring.ts';
import type { RouteSnapshot } from './snapshot.ts';

export type { CaptureSpec };

/** An underlay (UDP) address: where a GUE datagram came from or goes to. */
export interface UnderlayAddress {
  family: Family;
  /** 4 or 16 bytes, network order. */
  address: Uint8Array;
  port: number;
}

/** A GUE control message punted up to the control plane. */
export interface ControlDatagram {
  /** The whole UDP payload (GUE header first); a copy the receiver owns. */
  bytes: Uint8Array;
  /** Its underlay source. */
  from: UnderlayAddress;
  /** The configured peer whose endpoint that is, or -1. */
  peer: number;
}

/**
 * Something an operator must see that happened in the data plane, rate-limited there per kind and
 * key (event-gate.ts: the first at once, then one line with a count per interval). Plain data:
 * it crosses the worker boundary as it is. The control plane words the log line (it knows the
 * peers' names).
 *
 * - auth-failure: a control message from `peer` failed its HMAC check (wrong or missing key) or
 *   was our own reflected back; `from` is the peer's endpoint.
 * - unknown-source: a datagram from `from`, which is no peer's endpoint (per source).
 * - source-not-allowed: `peer` sent an inner packet from `src`, outside its routes.
 * - frag-needed: a packet from `src` to `dst` of `size` bytes was too big for `peer`'s MTU
 *   `mtu` with DF set (or IPv6): ICMP fragmentation needed / packet too big sent back.
 * - drop: (debug level only, setDebugEvents) a packet dropped for `reason`, from or to `peer`.
 * - events-suppressed: `count` events held back by the all-kinds line budget.
 */
export interface DataPlaneEvent {
  event: 'auth-failure' | 'unknown-source' | 'source-not-allowed' | 'frag-needed' | 'drop' | 'events-suppressed';
  /** The peer index, or -1. */
  peer: number;
  /** Occurrences this line stands for: 1 for a first one, more for a summary. */
  count: number;
  /** Over how many ms `count` gathered (0 for a first occurrence). */
  periodMs: number;
  /** Underlay source "address:port" ("[v6]:port"). */
  from?: string;
  /** Inner source / destination address. */
  src?: string;
  dst?: string;
  mtu?: number;
  size?: number;
  /** A DropReason name. */
  reason?: string;
}

/** What the data plane tells the control plane; called on the control plane's thread. */
export interface DataPlaneHooks {
  /** A peer was heard from (data or a keepalive) after being down, or for the first time. */
  peerUp(index: number): void;
  /**
   * A packet for the endpoint's own stack (its addresses, routes of type local). In-thread the
   * buffer itself (ownership passes); from a worker a copy in a pool slot of the control plane's
   * pools (ownership passes too).
   */
  toLocal(p: PacketBuffer): void;
  /**
   * GUE control messages the data plane does not handle itself, while wantControl(true): every
   * type but a keepalive from a configured peer, and control messages from unknown underlay
   * sources. Otherwise they are dropped and counted as without a listener (BadControlMessage,
   * UnknownPeer).
   */
  control(msg: ControlDatagram): void;
  /** The device stopped on its own (deleted interface, fatal read error). */
  down(reason: string): void;
  /**
   * An exception the data plane caught and survived (`where`: "pipeline", "device", ...): what
   * it held is released already (InternalError drops). Must not throw.
   */
  internalError?(err: unknown, where: string): void;
  /** One log line (warnings start with "warning:"). */
  log(line: string): void;
  /** An event an operator must see (already rate-limited); absent: not reported. */
  event?(e: DataPlaneEvent): void;
  /** A send on the underlay failed in the socket (ENETUNREACH: a route went away): mobility looks at once. */
  sendError?(err: Error): void;
  /**
   * A data plane in another thread accepted keyed peer `index`'s keepalive (a copy of its bytes):
   * the control plane's mirror of the replay windows follows it (roaming checks a keepalive from
   * a new address against them). In-thread data planes share the windows and never call it.
   */
  keepalive?(index: number, bytes: Uint8Array): void;
}

/** A peer added at run time (mobility: a mobile node registering at its home agent). */
export interface PeerSpec {
  name: string;
  /** Prefixes routed to it (dev = name) and allowed as inner sources from it. */
  routes: readonly ConfigPrefix[];
  mtu: number;
  keepalive: number | null;
  key: Uint8Array | null;
  mss: { v4: number; v6: number } | null;
  /** Its underlay endpoint now, or null (set later with setPeerEndpoint). */
  endpoint: UnderlayAddress | null;
  /** Inner sources allowed from it (default: its routes). */
  sources?: readonly ConfigPrefix[];
  /** A mobility peer (a mobile node at its home agent, ...): relayed to and from other peers without `hub`. */
  mobile?: boolean;
  /** Also accept the inner sources of this peer (a correspondent sending to a mobile node directly: the home agent's). */
  sourcesOf?: number;
}

/** Per-peer counters and liveness as the data plane has them. */
export interface PeerCounters {
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
  drops: number;
  lastRx: number;
  lastTx: number;
  up: boolean;
}

export interface Counters {
  packets: number;
  bytes: number;
}

/** The data plane's counters at one moment (report()). */
export interface DataPlaneReport {
  tunRx: Counters;
  tunTx: Counters;
  udpRx: Counters;
  udpTx: Counters;
  /** Peer-to-peer forwards (hub). */
  forwarded: number;
  /** ICMP errors the pipeline built. */
  icmpSent: number;
  /** Drops by DropReason code (index = code). */
  drops: number[];
  /** Index = peer index; null for a removed peer. */
  peers: (PeerCounters | null)[];
  poolLive: number;
  poolCapacity: number;
  poolExhausted: number;
  /** Routes with their use counters (only when asked for: it allocates per route). */
  routes: RouteSnapshot[] | null;
  /** Path-specific counters (fast path: super-packets, segments, coalesced writes ...). */
  extra: Record<string, number>;
}

export interface DataPlane {
  /**
   * Which path runs, for the start log line, `ipferry show` and the snapshot:
   * "fast (vnet TUN, UDP GSO/GRO, worker)", "portable (<why not fast>)", "memory (userspace)".
   */
  readonly path: string;
  /** "address:port" where the UDP socket is bound (after start). */
  readonly listen: string;
  /** Open device and socket, start moving packets. Rejects with a one-line error; nothing is left open then. */
  start(): Promise<void>;
  /** Stop moving packets, close device and socket, return every pool slot. Idempotent. */
  stop(): Promise<void>;

  /** Add a route (same id on the control plane's mirror and in the data plane). */
  addRoute(spec: RouteSpec): void;
  /** Remove a route by id. */
  removeRoute(id: number): void;
  /** Set or move peer `index`'s underlay endpoint (the one record: PeerEndpoints.set). */
  setPeerEndpoint(index: number, to: UnderlayAddress): void;
  /** Add a peer at index `index` (the control plane allocates indices). */
  addPeer(index: number, spec: PeerSpec): void;
  /** Remove a peer: its routes, source prefixes and endpoint. */
  removePeer(index: number): void;
  /**
   * Change peer `index` in place (a reload): routes (the router and the source check follow:
   * prefixes that go are removed first, new ones added), MTU, keepalive, key (its replay state
   * is reset), MSS clamp, and the endpoint when `spec.endpoint` is not null. Counters and
   * liveness stay; traffic of other peers is untouched. The name cannot change (remove and add).
   */
  updatePeer(index: number, spec: PeerSpec): void;
  /** Replace the policy rules (all but Linux's three defaults) at once with `rules`, in order. */
  setRules(rules: readonly RuleSpec[]): void;
  /** The control plane decided peer `index` is down (no longer heard from). */
  peerDown(index: number): void;
  /** Also report each drop (reason and peer, rate-limited) as a 'drop' event: --log-level debug. */
  setDebugEvents(on: boolean): void;
  /**
   * Start copying packets into a capture ring (`ipferry capture`), or stop (null). One capture
   * at a time: a new spec replaces the running one. Without a capture it costs one predictable
   * branch per received batch.
   */
  setCapture(spec: CaptureSpec | null): void;

  /**
   * Send a control datagram (a whole UDP payload, GUE header first) to peer `to` (counted as
   * sent to it: liveness) or to an underlay address. Returns None or why it was not sent.
   */
  sendControl(bytes: Uint8Array, to: number | UnderlayAddress): DropReason;
  /**
   * Also send a copy of every datagram for peer `peer` to `to` until `untilMs` (epoch ms):
   * mobility's bicasting across a handover. `to` null stops it.
   */
  bicast(peer: number, to: UnderlayAddress | null, untilMs: number): void;
  /** A packet from the endpoint's own stack (takes ownership; the buffer is the control plane's). */
  localOutput(p: PacketBuffer): void;
  /**
   * Punt control messages up through hooks.control (true) or drop and count them in the data
   * plane as without a listener (false, the initial state).
   */
  wantControl(on: boolean): void;

  /** Counters now (routes only with `withRoutes`: it builds the whole list in one go). */
  report(withRoutes: boolean): Promise<DataPlaneReport>;
  /**
   * The routes with their use counters, `pageSize` at a time in `ip route show` order
   * (route/list-cursor.ts). Each page is built on the data plane's thread when the consumer asks
   * for it, in one bounded step, so listing a million routes never holds up forwarding for more
   * than one page's work (`ipferry show routes`).
   */
  routePages(pageSize: number): AsyncIterableIterator<RouteSnapshot[]>;
}
