/**
 * Route optimisation at a correspondent ipferry endpoint (off by default, per node): a mobile
 * node that registers here (a binding update with H clear, R set, signed with the key it shares
 * with us) is first reached through its home agent as before (the config's route to the home
 * prefix); once the path to its care-of is validated (src/mobility/correspondent.ts: a padded
 * path challenge answered from that address:port, 1 RTT, at most 3x what it sent us before), the
 * node's peer gets the care-of as its endpoint and a host route to the home address (more
 * specific than the home agent's prefix), so traffic goes straight there. Expiry,
 * deregistration, a move (re-validated) or a failed path take the host route away: through the
 * home agent again.
 */
import type { CorrespondentConfig } from '../../config/config.ts';
import { Correspondent, PathState } from '../../mobility/correspondent.ts';
import type { MobilityIo } from '../../mobility/io.ts';
import type { NamedBindingRow } from '../../mobility/registrar.ts';
import type { ConfigPrefix } from '../../config/config.ts';
import { formatAddress } from '../../wire/address-text.ts';
import type { BindingEvent } from './events.ts';
import { hostRoute, type PeerDefaults } from './home-agent-plane.ts';
import type { DataPlaneOps } from './ops.ts';
import { toUnderlay } from './socket-address.ts';

export interface CorrespondentPlaneHooks {
  binding(e: BindingEvent): void;
  log(line: string): void;
}

export class CorrespondentPlane {
  readonly cn: Correspondent;
  /** Node -> its peer index while reached directly, else -1. */
  readonly peerOf: Int32Array;
  private readonly homes: ConfigPrefix[];

  constructor(
    private readonly config: CorrespondentConfig,
    name: string,
    private readonly ops: DataPlaneOps,
    io: MobilityIo,
    private readonly hooks: CorrespondentPlaneHooks,
    private readonly defaults: PeerDefaults,
  ) {
    this.peerOf = new Int32Array(config.nodes.length).fill(-1);
    this.homes = config.nodes.map((n) => hostRoute(n.home));
    this.cn = new Correspondent({ name, ...config }, io, {
      direct: (node, slot) => this.direct(node, slot),
      viaHomeAgent: (node, reason) => this.viaHomeAgent(node, reason),
    });
  }

  private event(node: number, change: BindingEvent['change'], reason: string | null): BindingEvent {
    const slot = this.cn.cache.slotOf(node);
    const n = this.config.nodes[node]!;
    return {
      role: 'correspondent',
      node: n.name,
      home: formatAddress(n.home.bytes, 0, n.home.family),
      change,
      careOf: slot >= 0 ? this.cn.cache.describeCareOf(slot) : null,
      previous: null,
      reason,
      nat: slot >= 0 && this.cn.cache.nat[slot] === 1,
      lifetime: slot >= 0 ? this.cn.cache.lifetime[slot]! : 0,
      at: Date.now(),
    };
  }

  private direct(node: number, slot: number): void {
    const n = this.config.nodes[node]!;
    if (this.peerOf[node]! >= 0) this.ops.removePeer(this.peerOf[node]!);
    // a host route more specific than the home agent's prefix; no sources: the node's traffic
    // keeps coming through its home agent (reverse tunnel), whose prefix it is
    this.peerOf[node] = this.ops.addPeer({
      name: n.name, routes: [this.homes[node]!], sources: [], mtu: this.defaults.mtu, keepalive: null, key: n.key, mss: this.defaults.mss,
      endpoint: toUnderlay(this.cn.cache.careOf(slot)), mobile: true,
    });
    const ev = this.event(node, 'direct', null);
    this.hooks.log(`route optimisation: ${n.name} (${ev.home}) reached directly at ${ev.careOf} (path validated, ${this.cn.probedSize[node]} byte probe)`);
    this.hooks.binding(ev);
  }

  private viaHomeAgent(node: number, reason: string): void {
    const n = this.config.nodes[node]!;
    if (this.peerOf[node]! >= 0) this.ops.removePeer(this.peerOf[node]!);
    this.peerOf[node] = -1;
    this.hooks.log(`route optimisation: ${n.name} through its home agent again (${reason})`);
    this.hooks.binding(this.event(node, 'via-home-agent', reason));
  }

  /** Binding rows with the path state of each. */
  bindings(): (NamedBindingRow & { path: 'off' | 'validating' | 'direct' })[] {
    return this.cn.bindings().map((r) => {
      const st = this.cn.pathState(r.node);
      return { ...r, path: st === PathState.Direct ? 'direct' : st === PathState.Validating ? 'validating' : 'off' };
    });
  }

  stop(): void {
    this.cn.removeAll('removed');
  }
}
