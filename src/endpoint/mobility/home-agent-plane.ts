/**
 * The home agent role in an endpoint: each configured mobile node is a peer (named like the
 * node, after the config's peers), with no underlay endpoint until it registers. A registration
 * sets the peer's endpoint to the observed care-of address:port (PeerEndpoints.set, the one
 * record), routes the node's home address to that peer in the endpoint's table and into the TUN
 * in the kernel, so traffic for the home address from the TUN or from other peers is tunnelled to
 * the care-of; the node's own traffic passes the source check as that peer's (its home address
 * is its one prefix). A move sets the new endpoint and bicasts to the old one for `bicastMs`;
 * expiry or deregistration removes route and endpoint. Updates, keepalives from unbound
 * addresses (refresh requests) and expiry are src/mobility/home-agent.ts's; this file is what
 * they do to the data plane.
 */
import type { HomeAgentConfig } from '../../config/config.ts';
import { HomeAgent } from '../../mobility/home-agent.ts';
import type { MobilityIo } from '../../mobility/io.ts';
import type { NamedBindingRow, RemoveReason } from '../../mobility/registrar.ts';
import { formatAddress, type Prefix } from '../../wire/address-text.ts';
import type { SocketAddress } from '../../wire/binding.ts';
import type { BindingEvent, HandoverEvent } from './events.ts';
import type { DataPlaneOps } from './ops.ts';
import { socketAddressText } from './socket-address.ts';

export interface HomeAgentPlaneHooks {
  binding(e: BindingEvent): void;
  handover(e: HandoverEvent): void;
  log(line: string): void;
}

export class HomeAgentPlane {
  readonly ha: HomeAgent;
  private readonly homes: Prefix[];
  private readonly homeText: string[];

  constructor(
    private readonly config: HomeAgentConfig,
    /** Peer index of node 0 (node i is peer base + i). */
    readonly base: number,
    name: string,
    private readonly ops: DataPlaneOps,
    io: MobilityIo,
    private readonly hooks: HomeAgentPlaneHooks,
    /** Install host routes in the kernel too (a TUN with kernel routes). */
    private readonly kernel: () => boolean,
  ) {
    this.homes = config.nodes.map((n) => ({ family: n.home.family, bytes: n.home.bytes, length: n.home.family === 4 ? 32 : 128 }));
    this.homeText = config.nodes.map((n) => formatAddress(n.home.bytes, 0, n.home.family));
    this.ha = new HomeAgent({ name, ...config }, io, {
      bindingAdded: (node, slot) => this.added(node, slot),
      careOfChanged: (node, slot) => this.moved(node, slot),
      bindingRemoved: (node, slot, reason) => this.removed(node, slot, reason),
    });
  }

  /** The peers this role adds (one per node), in node order. */
  static peers(config: HomeAgentConfig): { name: string; home: Prefix; key: Uint8Array }[] {
    return config.nodes.map((n) => ({ name: n.name, home: { family: n.home.family, bytes: n.home.bytes, length: n.home.family === 4 ? 32 : 128 }, key: n.key }));
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
    const careOf = this.ha.cache.careOf(slot);
    this.ops.setPeerEndpoint(this.base + node, careOf);
    try {
      this.ops.addRoute(this.homes[node]!, this.name(node), this.kernel());
    } catch (e) {
      this.hooks.log(`warning: mobile node ${this.name(node)}: route ${this.homeText[node]}: ${(e as Error).message.split('\n')[0]}`);
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
    const idx = this.base + node;
    const previous = this.ops.peers[idx]?.endpoint ?? null;
    const prev: SocketAddress | null = previous === null ? null : { family: previous.family, bytes: previous.bytes, port: previous.port };
    this.ops.setPeerEndpoint(idx, c.careOf(slot));
    if (prev !== null && c.bicastUntil[slot]! > 0) this.ops.bicast(idx, prev, c.bicastUntil[slot]!);
    const ev = this.event(node, slot, 'moved', prev, null);
    this.hooks.log(`mobile node ${ev.node} moved ${ev.previous} -> ${ev.careOf}${ev.nat ? ' (NAT)' : ''}`);
    this.hooks.binding(ev);
    this.hooks.handover({ role: 'home-agent', node: ev.node, from: ev.previous, to: ev.careOf, gapMs: null, detectedAt: null, detection: null, at: ev.at, nat: ev.nat });
  }

  private removed(node: number, slot: number, reason: RemoveReason): void {
    const idx = this.base + node;
    const ev = this.event(node, slot, 'removed', this.ha.cache.careOf(slot), reason);
    this.ops.bicast(idx, null, 0);
    this.ops.removePeerEndpoint(idx);
    this.ops.removeRoute(this.homes[node]!, this.name(node), this.kernel());
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
