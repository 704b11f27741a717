/**
 * One tunnel peer's runtime state: where it is on the underlay, what it may send from (its
 * prefixes, like WireGuard's AllowedIPs), the tunnel MTU toward it, keepalive and key, and its
 * counters. Plain numbers updated in place by the pipeline; no allocation per packet.
 */
import type { ConfigPrefix } from '../config/config.ts';

export interface PeerInit {
  index: number;
  name: string;
  /** Underlay endpoint: address literal and port. */
  address: string;
  port: number;
  family: 4 | 6;
  routes: readonly ConfigPrefix[];
  mtu: number;
  /** Seconds; null = no keepalives. */
  keepalive: number | null;
  key: Uint8Array | null;
  /** Largest TCP MSS in SYNs through this peer (IPv4, IPv6); null = no clamping. */
  mss: { v4: number; v6: number } | null;
}

export class Peer {
  readonly index: number;
  readonly name: string;
  address: string;
  port: number;
  readonly family: 4 | 6;
  readonly routes: readonly ConfigPrefix[];
  readonly mtu: number;
  readonly keepaliveMs: number;
  readonly key: Uint8Array | null;
  /** MSS clamp for SYNs through this peer; 0 = off. */
  readonly mssV4: number;
  readonly mssV6: number;

  /** Epoch ms of the last datagram received from / sent to the peer; 0 = never. */
  lastRx = 0;
  lastTx = 0;
  rxPackets = 0;
  rxBytes = 0;
  txPackets = 0;
  txBytes = 0;
  drops = 0;
  up = false;

  constructor(init: PeerInit) {
    this.index = init.index;
    this.name = init.name;
    this.address = init.address;
    this.port = init.port;
    this.family = init.family;
    this.routes = init.routes;
    this.mtu = init.mtu;
    this.keepaliveMs = init.keepalive === null ? 0 : init.keepalive * 1000;
    this.key = init.key;
    this.mssV4 = init.mss?.v4 ?? 0;
    this.mssV6 = init.mss?.v6 ?? 0;
  }

  /** How long without hearing from the peer before it counts as down. */
  get deadAfterMs(): number {
    return this.keepaliveMs > 0 ? Math.max(3 * this.keepaliveMs, 5000) : 180_000;
  }

  get endpointText(): string {
    return this.family === 6 ? `[${this.address}]:${this.port}` : `${this.address}:${this.port}`;
  }
}
