/**
 * What a running endpoint reports through the control socket (`ipferry show`). Plain JSON-safe
 * data: the endpoint builds it on request (control plane, may allocate), the CLI formats it.
 * Times are epoch milliseconds; counters are plain numbers.
 */
import type { RouteJson } from '../route/text/show.ts';
import type { HandoverEvent } from './mobility/events.ts';
import type { GapHistogramSnapshot } from './mobility/gap-histogram.ts';

export interface PeerSnapshot {
  name: string;
  /** Underlay endpoint as "203.0.113.20:6080" / "[2001:db8::20]:6080". */
  endpoint: string;
  /** The peer's prefixes (CIDR text). */
  routes: string[];
  /** Last datagram received from / sent to the peer (epoch ms), null = never. */
  lastRx: number | null;
  lastTx: number | null;
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
  /** Packets from or toward this peer that were dropped (any reason). */
  drops: number;
  /** Tunnel MTU toward the peer. */
  mtu?: number;
  /** Keepalive interval in seconds; null/absent = off. */
  keepalive?: number | null;
  /** Whether the endpoint considers the peer up (e.g. heard from within a few keepalives). */
  up?: boolean;
  /** A peer the mobility layer made: a mobile node (at a home agent or correspondent) or a correspondent. */
  mobility?: 'mobile-node' | 'correspondent';
}

/** A route in `ip -j route` style: the route table's own JSON form (src/route/text/show.ts). */
export type { RouteJson };

export interface RouteSnapshot {
  /** The route in ip route syntax (formatRoute), e.g. "192.168.20.0/24 dev shanghai". */
  text: string;
  /** Packets that matched this route (the "Use" column of `route -n`). */
  uses: number;
  /** Bytes that matched this route, when counted. */
  bytes?: number;
  /** routeJson(router, id). */
  json: RouteJson;
}

export interface Counters {
  packets: number;
  bytes: number;
}

export interface StatsSnapshot {
  /** When the endpoint started (epoch ms). */
  startedAt: number;
  /** Packets read from / written to the TUN (or in-memory) device. */
  tunRx: Counters;
  tunTx: Counters;
  /** Datagrams received from / sent to the UDP underlay. */
  udpRx: Counters;
  udpTx: Counters;
  /** Packets forwarded peer to peer (hub mode). */
  forwarded: number;
  /** ICMP/ICMPv6 errors the endpoint sent (unreachable, too big, time exceeded). */
  icmpSent: number;
  /** Drops by DropReason name (DropCounters.toJSON(): non-zero counters only). */
  drops: Record<string, number>;
  /** Pool slots in use now, total slots, and how often an acquire found the pool empty. */
  poolLive: number;
  poolCapacity: number;
  poolExhausted: number;
  /** Further counters the endpoint wants to show (name -> value). */
  extra?: Record<string, number>;
  /** Mobility counters (mipdiag -s names first) and the handover-gap histogram; absent without mobility. */
  mobility?: MobilityStatsSnapshot;
}

/** `ipferry show stats`' mobility part. */
export interface MobilityStatsSnapshot {
  /** NEncapsulations, NDecapsulations, NBindUpdatesRcvd, ... (mipdiag -s order), then ours. */
  counters: Record<string, number>;
  /** How many of `counters` are mipdiag's own lines (the rest are ours). */
  mipdiag: number;
  /** Mobile node: handover gaps (noticed -> acked), ms. */
  handoverGaps?: GapHistogramSnapshot;
}

/** One binding cache entry (`ipferry show bindings`, the `mipdiag -c` layout and more). */
export interface BindingSnapshot {
  /** home: at a home agent (mipdiag type 2); correspondent: route optimisation. */
  type: 'home' | 'correspondent';
  node: string;
  home: string;
  /** As observed (where we send), "addr:port". */
  careOf: string;
  /** As the node claimed it (differs behind a NAT), or null. */
  claimedCareOf: string | null;
  nat: boolean;
  /** Seconds granted / left. */
  lifetime: number;
  remaining: number;
  sequence: number;
  /** registered, bicasting (to the previous care-of), or for a correspondent the path: off / validating / direct. */
  state: string;
  /** The previous care-of while bicasting. */
  bicastTo: string | null;
  registeredAt: number;
  lastUpdate: number;
  updates: number;
}

/** One binding update list entry of a mobile node (`ipferry show binding-updates`, `mipdiag -l`). */
export interface BindingUpdateSnapshot {
  recipient: string;
  /** "addr:port" of the home agent or correspondent. */
  recipientAddress: string;
  homeAgent: boolean;
  home: string;
  careOf: string | null;
  /** Seconds until the binding there expires (0 = none). */
  expires: number;
  sequence: number;
  state: string;
  /** Current retransmission bound and cap, seconds. */
  delay: number;
  maxDelay: number;
  /** Seconds until this entry acts next; null = waits for an event. */
  callbackTime: number | null;
  lastStatus: number;
  observed: string | null;
  nat: boolean;
  retransmissions: number;
}

/** A handover as `show binding-updates` lists it: the library's 'handover' event. */
export type HandoverSnapshot = HandoverEvent;

/** The mobility part of a snapshot (roles, binding cache, binding update list). */
export interface MobilitySnapshot {
  roles: ('home-agent' | 'mobile-node' | 'correspondent')[];
  /** Home agent / correspondent: the binding cache. */
  bindings?: BindingSnapshot[];
  /** Mobile node: its care-of as it sees it, at home or not, the binding update list, recent handovers. */
  node?: string;
  careOf?: string | null;
  atHome?: boolean;
  bindingUpdates?: BindingUpdateSnapshot[];
  handovers?: HandoverSnapshot[];
}

export interface Snapshot {
  interface: string;
  /** Where the UDP socket is bound, e.g. "203.0.113.10:6080" or "[::]:6080". */
  listen: string;
  pid: number;
  /** Kernel TUN ('tun') or in-memory/userspace device ('memory'). */
  device?: 'tun' | 'memory';
  /**
   * Which data path moves the packets: "fast (vnet TUN, UDP GSO/GRO, worker)", "portable
   * (<why the fast path does not run>)" or "memory (...)" (src/endpoint/dataplane.ts).
   */
  dataplane?: string;
  mtu?: number;
  /** Interface and stack addresses (CIDR text). */
  addresses?: string[];
  stackAddresses?: string[];
  hub?: boolean;
  peers: PeerSnapshot[];
  routes: RouteSnapshot[];
  stats: StatsSnapshot;
  /** Absent without mobility. */
  mobility?: MobilitySnapshot;
}

export type ShowWhat = 'all' | 'peers' | 'routes' | 'stats' | 'bindings' | 'binding-updates';

/**
 * A snapshot provider (the endpoint's `snapshot(what)`); may be async. `what` says which parts the
 * caller will read: a provider may leave `routes` empty unless it is 'all' or 'routes' (the route
 * list is the one part whose cost grows with the table).
 */
export type SnapshotProvider = (what?: ShowWhat, opts?: SnapshotOptions) => Snapshot | Promise<Snapshot>;

export interface SnapshotOptions {
  /**
   * false: leave `routes` empty even for 'all' and 'routes' (the caller lists them itself, a page
   * at a time, through RoutePages). Default true.
   */
  routes?: boolean;
}

/**
 * The route list a page at a time (the endpoint's `routePages(pageSize)`): each page is built
 * when the consumer asks for the next one, so a million routes never stall the data plane.
 */
export type RoutePages = (pageSize: number) => AsyncIterableIterator<RouteSnapshot[]>;
