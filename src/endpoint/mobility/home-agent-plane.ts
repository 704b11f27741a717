/**
 * The home agent role in an endpoint: a registered mobile node is a peer, named like the node.
 * A registration adds it (addPeer): its endpoint the observed care-of address:port (the one
 * record, PeerEndpoints), its one route and inner source its home address, relayed to and from
 * other peers without `hub`; and the home address is routed into the TUN in the kernel. So
 * traffic for the home address from the TUN or from other peers is tunnelled to the care-of, and
 * the node's own traffic passes the source check as that peer's. A move sets the new endpoint
 * (setPeerEndpoint) and bicasts to the old one for `bicastMs`; expiry or deregistration removes
 * the peer (its route, source and endpoint with it) and the kernel route. Updates, keepalives from unbound
 * addresses (refresh requests) and expiry are src/mobility/home-agent.ts's; this file is what
 * they do to the data plane.
 */
import type { HomeAgentConfig } from '../../config/config.ts';
import { HomeAgent } from '../../mobility/home-agent.ts';
import type { MobilityIo } from '../../mobility/io.ts';
import type { NamedBindingRow, RemoveReason } from '../../mobility/registrar.ts';
import type { ConfigPrefix } from '../../config/config.ts';
import { formatAddress, formatPrefix } from '../../wire/address-text.ts';
import type { SocketAddress } from '../../wire/binding.ts';
import type { BindingEvent, HandoverEvent } from './events.ts';
import type { DataPlaneOps } from './ops.ts';
import { socketAddressText, toUnderlay } from './socket-address.ts';

/** What every mobility peer gets from the endpoint's config. */
export interface PeerDefaults {
  mtu: number;
  mss: { v4: number; v6: number } | null;
}

export function hostRoute(a: { family: 4 | 6; bytes: Uint8Array }): ConfigPrefix {
  const p = { family: a.family, bytes: a.bytes, length: a.family === 4 ? 32 : 128 };
  return { ...p, text: formatPrefix(p) };
}

export interface HomeAgentPlaneHooks {
  binding(e: BindingEvent): void;
  handover(e: HandoverEvent): void;
  log(line: string): void;
}

export class HomeAgentPlane {
  readonly ha: HomeAgent;
  /** Node -> its peer index while it has a binding, else -1. */
  readonly peerOf: Int32Array;
  private readonly homes: ConfigPrefix[];
  private readonly homeText: string[];

  constructor(
    private readonly config: HomeAgentConfig,
    name: string,
    private readonly ops: DataPlaneOps,
    io: MobilityIo,
    private readonly hooks: HomeAgentPlaneHooks,
    private readonly defaults: PeerDefaults,
  ) {
    this.peerOf = new Int32Array(config.nodes.length).fill(-1);
    this.homes = config.nodes.map((n) => hostRoute(n.home));
    this.homeText = config.nodes.map((n) => formatAddress(n.home.bytes, 0, n.home.family));
    this.ha = new HomeAgent({ name, ...config }, io, {
      bindingAdded: (node, slot) => this.added(node, slot),
      careOfChanged: (node, slot) => this.moved(node, slot),
      bindingRemoved: (node, slot, reason) => this.removed(node, slot, reason),
    });
  }

  private name(node: number): string {
    return this.config.nodes[node]!.name;
  }

  private event(node: number, slot: number, change: BindingEvent['change'], previous: SocketAddress | null, reason: string | null): BindingEvent {
    const c = this.ha.cache;
    return {
      role: 'home-agent',
      node: this.name(node),
      home: this.homeText[node]!,
      change,
      careOf: change === 'removed' ? null : c.describeCareOf(slot),
      previous: previous === null ? null : socketAddressText(previous),
      reason,
      nat: c.nat[slot] === 1,
      lifetime: c.lifetime[slot]!,
      at: Date.now(),
    };
  }

  private added(node: number, slot: number): void {
    const n = this.config.nodes[node]!;
    const home = this.homes[node]!;
    try {
      this.peerOf[node] = this.ops.addPeer({
        name: n.name, routes: [home], mtu: this.defaults.mtu, keepalive: this.config.keepalive, key: n.key, mss: this.defaults.mss,
        endpoint: toUnderlay(this.ha.cache.careOf(slot)), mobile: true,
      });
      this.ops.kernelRoute(home, true);
    } catch (e) {
      this.hooks.log(`warning: mobile node ${n.name}: route ${this.homeText[node]}: ${(e as Error).message.split('\n')[0]}`);
    }
    const ev = this.event(node, slot, 'added', null, null);
    this.hooks.log(`mobile node ${ev.node} (${ev.home}) registered at ${ev.careOf}${ev.nat ? ` (behind a NAT: it sees itself as ${this.claimed(slot)})` : ''}, lifetime ${ev.lifetime} s`);
    this.hooks.binding(ev);
  }

  private claimed(slot: number): string {
    const r = this.ha.cache.row(slot, Date.now());
    return socketAddressText(r.claimedCareOf);
  }

  private moved(node: number, slot: number): void {
    const c = this.ha.cache;
    const idx = this.peerOf[node]!;
    const previous = idx >= 0 ? this.ops.peers[idx]?.endpoint : undefined;
    const prev: SocketAddress | null = previous === undefined ? null : { family: previous.family, bytes: previous.bytes, port: previous.port };
    if (idx >= 0) {
      this.ops.setPeerEndpoint(idx, toUnderlay(c.careOf(slot)));
      if (prev !== null && c.bicastUntil[slot]! > 0) this.ops.bicast(idx, toUnderlay(prev), c.bicastUntil[slot]!);
    }
    const ev = this.event(node, slot, 'moved', prev, null);
    this.hooks.log(`mobile node ${ev.node} moved ${ev.previous} -> ${ev.careOf}${ev.nat ? ' (NAT)' : ''}`);
    this.hooks.binding(ev);
    this.hooks.handover({ role: 'home-agent', node: ev.node, from: ev.previous, to: ev.careOf, gapMs: null, detectedAt: null, detection: null, at: ev.at, nat: ev.nat });
  }

  private removed(node: number, slot: number, reason: RemoveReason): void {
    const idx = this.peerOf[node]!;
    const ev = this.event(node, slot, 'removed', this.ha.cache.careOf(slot), reason);
    if (idx >= 0) {
      this.ops.removePeer(idx); // its route, source, endpoint and bicast go with it
      this.peerOf[node] = -1;
    }
    this.ops.kernelRoute(this.homes[node]!, false);
    this.hooks.log(`mobile node ${ev.node} (${ev.home}) ${reason === 'deregistered' ? 'deregistered (at home)' : reason === 'expired' ? 'binding expired' : 'binding removed'}`);
    this.hooks.binding(ev);
  }

  /** Binding cache rows (mipdiag -c). */
  bindings(): NamedBindingRow[] {
    return this.ha.bindings();
  }

  /** Take every binding down (stop): routes and endpoints go with them. */
  stop(): void {
    this.ha.removeAll('removed');
  }
}
