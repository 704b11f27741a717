/**
 * One tunnel peer as the endpoint sees it: its name and index, what it may send from (its
 * prefixes, like WireGuard's AllowedIPs), the tunnel MTU toward it, MSS clamp and key, its
 * counters, and views of the state kept elsewhere: its underlay endpoint (the one record,
 * src/transport/peer-endpoints.ts, shared with the transport) and its liveness
 * (src/tunnel/liveness.ts). Plain numbers updated in place by the pipeline; no allocation per
 * packet.
 */
import type { ConfigPrefix } from '../config/config.ts';
import type { PeerEndpoint, PeerEndpoints } from '../transport/peer-endpoints.ts';
import { PeerLiveness } from '../tunnel/liveness.ts';

export interface PeerInit {
  index: number;
  name: string;
  /** The endpoints record; this peer's underlay endpoint is entry `index` there. */
  endpoints: PeerEndpoints;
  routes: readonly ConfigPrefix[];
  mtu: number;
  /** Seconds; null = no keepalives. */
  keepalive: number | null;
  key: Uint8Array | null;
  /** Largest TCP MSS in SYNs through this peer (IPv4, IPv6); null = no clamping. */
  mss: { v4: number; v6: number } | null;
  /**
   * A peer the mobility layer made (a mobile node at its home agent or at a correspondent, a
   * correspondent at a mobile node): relayed to and from without `hub`. Default false.
   */
  mobile?: boolean;
  /** Also accept inner sources of this peer's prefixes (default: none but its own). */
  sourcesOf?: number;
}

/** What a reload may change of a peer in place (PeerInit without identity and endpoint). */
export type PeerSettings = Pick<PeerInit, 'routes' | 'mtu' | 'keepalive' | 'key' | 'mss'>;

export class Peer {
  readonly index: number;
  readonly name: string;
  // Settings a reload changes in place (apply()); the pipeline reads them per packet.
  routes: readonly ConfigPrefix[];
  mtu: number;
  key: Uint8Array | null;
  /** MSS clamp for SYNs through this peer; 0 = off. */
  mssV4: number;
  mssV6: number;
  /** Up/down, last heard from and sent to, keepalive timing. */
  readonly liveness: PeerLiveness;
  /** Made by the mobility layer (see PeerInit.mobile). */
  readonly mobile: boolean;
  /** Index of another peer whose prefixes this one may send from too (-1 = none). */
  readonly sourcesOf: number;

  rxPackets = 0;
  rxBytes = 0;
  txPackets = 0;
  txBytes = 0;
  drops = 0;
  /** Mobility handover: copies of what goes to this peer also go here until bicastUntil (epoch ms). Set through Pipeline.setBicast. */
  bicastTo: PeerEndpoint | null = null;
  bicastUntil = 0;
  /** Copies sent to bicastTo. */
  bicastCopies = 0;
  /** Authentic keepalives received (the peer sends them: its silence means something). */
  keepalivesRx = 0;

  private readonly endpoints: PeerEndpoints;

  constructor(init: PeerInit) {
    this.index = init.index;
    this.name = init.name;
    this.endpoints = init.endpoints;
    this.routes = init.routes;
    this.mtu = init.mtu;
    this.liveness = new PeerLiveness(init.keepalive);
    this.key = init.key;
    this.mssV4 = init.mss?.v4 ?? 0;
    this.mssV6 = init.mss?.v6 ?? 0;
    this.mobile = init.mobile ?? false;
    this.sourcesOf = init.sourcesOf ?? -1;
  }

  /**
   * New settings (reload), taking effect with the next packet: counters, liveness state and the
   * endpoint stay. The caller keeps the router and the source check in step with `routes`.
   */
  apply(s: PeerSettings): void {
    this.routes = s.routes;
    this.mtu = s.mtu;
    this.key = s.key;
    this.mssV4 = s.mss?.v4 ?? 0;
    this.mssV6 = s.mss?.v6 ?? 0;
    this.liveness.setKeepalive(s.keepalive);
  }

  /** The underlay endpoint now (it moves only through PeerEndpoints.set). */
  get endpoint(): PeerEndpoint | undefined {
    return this.endpoints.get(this.index);
  }
  /** Underlay address literal ('' when the peer has no endpoint). */
  get address(): string {
    return this.endpoint?.host ?? '';
  }
  get port(): number {
    return this.endpoint?.port ?? 0;
  }
  get family(): 4 | 6 {
    return this.endpoint?.family ?? 4;
  }
  /** "192.0.2.1:6080" / "[fd00::2]:6080". */
  get endpointText(): string {
    return this.endpoint?.text ?? '';
  }

  get keepaliveMs(): number {
    return this.liveness.keepaliveMs;
  }
  /** How long without hearing from the peer before it counts as down. */
  get deadAfterMs(): number {
    return this.liveness.deadAfterMs;
  }
  /** Epoch ms of the last datagram received from / sent to the peer; 0 = never. */
  get lastRx(): number {
    return this.liveness.lastRx;
  }
  get lastTx(): number {
    return this.liveness.lastTx;
  }
  get up(): boolean {
    return this.liveness.up;
  }
  set up(v: boolean) {
    this.liveness.up = v;
  }
}
