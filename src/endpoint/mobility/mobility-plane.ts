/**
 * Mobility in an endpoint: the roles the config asks for (home agent, mobile node,
 * route-optimising correspondent) and roaming for ordinary keyed peers, behind one face for the
 * Endpoint:
 *
 *  - `extraPeers(config)`: the peers the roles add (a home agent's and a correspondent's mobile
 *    nodes, a mobile node's correspondents), appended after the config's peers;
 *  - `onControl(...)`: every control datagram the pipeline hands up, dispatched by ctype and
 *    role: 129 binding update (home registration: the home agent; else the correspondent),
 *    130 binding ack, 131 path challenge and 133 refresh request (the mobile node), 132 path
 *    response (the correspondent), 128 keepalive from no peer's address (the home agent's
 *    refresh request, else roaming);
 *  - one timer for all the machines' due times; start / stop; counters and snapshot rows.
 * Everything it does to the data plane goes through DataPlaneOps.
 */
import type { Config } from '../../config/config.ts';
import { systemClock, systemRandom } from '../../mobility/clock.ts';
import { DropReason } from '../../base/drop-reason.ts';
import { MobilityVerdict, type ControlSender, type MobilityIo } from '../../mobility/io.ts';
import { MOBILITY_COUNTER_NAMES, MIPDIAG_COUNTERS, MobilityCounter as C } from '../../mobility/stats.ts';
import type { ControlCounter } from '../../tunnel/control.ts';
import { formatAddress, type Prefix } from '../../wire/address-text.ts';
import { BindingUpdate, CTYPE_BINDING_ACK, CTYPE_BINDING_REFRESH, CTYPE_BINDING_UPDATE, CTYPE_PATH_CHALLENGE, CTYPE_PATH_RESPONSE } from '../../wire/binding.ts';
import { ControlMessage, CTYPE_KEEPALIVE, gueCtype } from '../../wire/gue.ts';
import type { BindingSnapshot, BindingUpdateSnapshot, MobilitySnapshot, MobilityStatsSnapshot } from '../snapshot.ts';
import { CorrespondentPlane } from './correspondent-plane.ts';
import type { BindingEvent, HandoverEvent } from './events.ts';
import { HomeAgentPlane } from './home-agent-plane.ts';
import { MobileNodePlane } from './mobile-node-plane.ts';
import type { DataPlaneOps } from './ops.ts';
import { RoamingPlane } from './roaming-plane.ts';
import { socketAddressOf, socketAddressText } from './socket-address.ts';

/** A peer a mobility role adds to the endpoint. */
export interface MobilityPeerSpec {
  name: string;
  /** Prefixes it may send from (a mobile node's home address at its home agent). */
  sources: Prefix[];
  /** Shown as its routes. */
  routes: Prefix[];
  key: Uint8Array;
  kind: 'mobile-node' | 'correspondent';
  /** Its underlay endpoint from the start (a mobile node's correspondents), else none. */
  endpoint: { family: 4 | 6; bytes: Uint8Array; port: number } | null;
  /** Also accept the sources of this peer (a correspondent sending straight to us: the home agent's). */
  sourcesOf: number;
}

export interface MobilityPlaneHooks {
  binding(e: BindingEvent): void;
  handover(e: HandoverEvent): void;
  log(line: string): void;
}

/** What a mobility verdict counts as in the endpoint's drop counters (None: it was used). */
function verdictDrop(v: MobilityVerdict): DropReason {
  switch (v) {
    case MobilityVerdict.Accepted:
    case MobilityVerdict.Rejected:
    case MobilityVerdict.Duplicate:
      return DropReason.None;
    case MobilityVerdict.DropAuth:
      return DropReason.BadAuthentication;
    case MobilityVerdict.DropReplay:
    case MobilityVerdict.DropStale:
      return DropReason.ReplayedMessage;
    case MobilityVerdict.DropRate:
      return DropReason.ControlRateLimited;
    case MobilityVerdict.DropUnexpected:
      return DropReason.UnexpectedControl;
    default:
      return DropReason.BadControlMessage;
  }
}

const hostPrefix = (a: { family: 4 | 6; bytes: Uint8Array }): Prefix => ({ family: a.family, bytes: a.bytes, length: a.family === 4 ? 32 : 128 });

export class MobilityPlane {
  readonly ha: HomeAgentPlane | null = null;
  readonly mn: MobileNodePlane | null = null;
  readonly cn: CorrespondentPlane | null = null;
  readonly roaming: RoamingPlane;
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  private running = false;
  private readonly msg = new ControlMessage(Buffer.alloc(0), 0, 0);
  private readonly bu = new BindingUpdate();

  /** Peer index of the first mobility peer of each role. */
  static bases(config: Config): { ha: number; cn: number; mnCorrespondents: number; end: number } {
    const m = config.mobility;
    const ha = config.peers.length;
    const cn = ha + (m?.homeAgent?.nodes.length ?? 0);
    const mnc = cn + (m?.correspondent?.nodes.length ?? 0);
    const end = mnc + (m?.mobileNode?.routeOptimisation ? m.mobileNode.correspondents.length : 0);
    return { ha, cn, mnCorrespondents: mnc, end };
  }

  /** The peers the roles add, in index order after the config's peers. */
  static extraPeers(config: Config): MobilityPeerSpec[] {
    const m = config.mobility;
    const out: MobilityPeerSpec[] = [];
    for (const n of m?.homeAgent?.nodes ?? []) {
      const p = hostPrefix(n.home);
      out.push({ name: n.name, sources: [p], routes: [p], key: n.key, kind: 'mobile-node', endpoint: null, sourcesOf: -1 });
    }
    for (const n of m?.correspondent?.nodes ?? []) {
      out.push({ name: n.name, sources: [], routes: [hostPrefix(n.home)], key: n.key, kind: 'mobile-node', endpoint: null, sourcesOf: -1 });
    }
    const mn = m?.mobileNode;
    if (mn?.routeOptimisation) {
      for (const c of mn.correspondents) {
        out.push({ name: c.name, sources: [], routes: [], key: c.key, kind: 'correspondent', endpoint: c.endpoint, sourcesOf: mn.homeAgentPeer });
      }
    }
    return out;
  }

  constructor(
    config: Config,
    private readonly ops: DataPlaneOps,
    /** Our replay counter: the mobile node's messages share it with the endpoint's keepalives. */
    counter: ControlCounter,
    private readonly hooks: MobilityPlaneHooks,
    /** Host routes into the TUN in the kernel too (a kernel TUN with kernelRoutes). */
    kernel: () => boolean,
  ) {
    const m = config.mobility;
    const b = MobilityPlane.bases(config);
    const sender: ControlSender = { send: (buf, off, len, to) => void ops.sendControl(buf, off, len, to) };
    const io: MobilityIo = { clock: systemClock, random: systemRandom, sender };
    const name = config.interface.name;
    const log = hooks.log;
    if (m?.homeAgent) this.ha = new HomeAgentPlane(m.homeAgent, b.ha, `${name}/home-agent`, ops, io, { binding: hooks.binding, handover: hooks.handover, log }, kernel);
    if (m?.correspondent) this.cn = new CorrespondentPlane(m.correspondent, b.cn, `${name}/correspondent`, ops, io, { binding: hooks.binding, log });
    if (m?.mobileNode) this.mn = new MobileNodePlane(m.mobileNode, ops, io, counter, { handover: hooks.handover, log, reschedule: () => this.reschedule() });
    const keyed: number[] = [];
    config.peers.forEach((p, i) => p.key !== null && keyed.push(i));
    this.roaming = new RoamingPlane(ops, keyed, log);
  }

  get roles(): MobilitySnapshot['roles'] {
    const r: MobilitySnapshot['roles'] = [];
    if (this.ha) r.push('home-agent');
    if (this.mn) r.push('mobile-node');
    if (this.cn) r.push('correspondent');
    return r;
  }

  async start(): Promise<void> {
    this.running = true;
    if (this.mn) await this.mn.start();
    this.reschedule();
  }

  /** Mobile node: deregister; home agent / correspondent: take the bindings' routes down. */
  async stop(): Promise<void> {
    if (this.mn) await this.mn.stop();
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = Infinity;
    this.ha?.stop();
    this.cn?.stop();
  }

  /** A control datagram from the pipeline (see the file comment): None when used, else why not. */
  readonly onControl = (buf: Buffer, off: number, len: number, address: string, port: number, peer: number): DropReason => {
    const from = socketAddressOf(address, port);
    if (from === null) return DropReason.BadControlMessage;
    let v: MobilityVerdict | -1 = -1;
    switch (gueCtype(buf, off)) {
      case CTYPE_BINDING_UPDATE: {
        const m = this.msg.wrap(buf, off, len);
        const homeReg = m.check() === DropReason.None && this.bu.wrap(buf, m.bodyOffset, m.bodyLength).check() === DropReason.None && this.bu.homeRegistration;
        if (this.ha !== null && (homeReg || this.cn === null)) v = this.ha.ha.handleUpdate(buf, off, len, from);
        else if (this.cn !== null) v = this.cn.cn.handleUpdate(buf, off, len, from);
        break;
      }
      case CTYPE_BINDING_ACK:
      case CTYPE_PATH_CHALLENGE:
      case CTYPE_BINDING_REFRESH:
        if (this.mn !== null) v = this.mn.mn.handle(buf, off, len, from);
        break;
      case CTYPE_PATH_RESPONSE:
        if (this.cn !== null) v = this.cn.cn.handleResponse(buf, off, len, from);
        break;
      case CTYPE_KEEPALIVE:
        // a keepalive from no peer's endpoint: a mobile node the home agent lost, or a peer that roamed
        if (peer >= 0) return DropReason.BadControlMessage;
        if (this.ha !== null) {
          const k = this.ha.ha.handleKeepalive(buf, off, len, from);
          if (k !== MobilityVerdict.DropAuth) return verdictDrop(k);
        }
        return this.roaming.handleKeepalive(buf, off, len, from) ? DropReason.None : DropReason.UnknownPeer;
      default:
        break;
    }
    if (v === -1) return peer >= 0 ? DropReason.BadControlMessage : DropReason.UnknownPeer;
    this.reschedule();
    const r = verdictDrop(v);
    if (r === DropReason.None && peer >= 0) this.ops.heard(peer);
    return r;
  };

  /** The endpoint saw a peer go down (missed keepalives): the home agent's means re-register. */
  peerDown(index: number): void {
    if (this.mn !== null && index === this.mn.homeAgentPeer) this.mn.nudge('the home agent missed its keepalives');
  }

  /** A send on the underlay failed. */
  sendError(): void {
    this.mn?.sendError();
  }

  /** The underlay address was moved by hand (Endpoint.moveUnderlay). */
  underlayMoved(): void {
    this.mn?.watch.probe('rebind');
  }

  // ------------------------------------------------------------------------------ timers

  private reschedule(): void {
    if (this.running) this.arm(0);
  }

  private arm(at: number): void {
    if (!this.running || !(at < Infinity)) return;
    if (this.timer !== null && this.timerAt <= at) return;
    if (this.timer !== null) clearTimeout(this.timer);
    const delay = Math.min(60_000, Math.max(0, at - Date.now()));
    this.timerAt = at;
    this.timer = setTimeout(this.tick, delay);
    this.timer.unref();
  }

  private readonly tick = (): void => {
    this.timer = null;
    this.timerAt = Infinity;
    const now = Date.now();
    let next = Infinity;
    if (this.ha) next = Math.min(next, this.ha.ha.expire(now));
    if (this.cn) next = Math.min(next, this.cn.cn.tick());
    if (this.mn) {
      if (this.mn.mn.nextDue() <= now) this.mn.mn.tick();
      next = Math.min(next, this.mn.mn.nextDue(), this.mn.keepaliveDue(now));
    }
    this.arm(next);
  };

  // ------------------------------------------------------------------------------ show

  /** Counters of every role summed (mipdiag -s names first), with the data-path ones. */
  stats(): MobilityStatsSnapshot {
    const sum = new Float64Array(MOBILITY_COUNTER_NAMES.length);
    for (const s of [this.ha?.ha.stats, this.mn?.mn.stats, this.cn?.cn.stats]) if (s) for (let i = 0; i < sum.length; i++) sum[i]! += s.counts[i]!;
    // the data path: tunnelled to / from the mobile nodes (home agent, correspondent) or the home agent (mobile node)
    const peers = this.ops.peers;
    const count = (i: number): void => {
      const p = peers[i];
      if (p === undefined) return;
      sum[C.NEncapsulations]! += p.txPackets;
      sum[C.NDecapsulations]! += p.rxPackets;
      sum[C.NBicastCopies]! += p.bicastCopies;
    };
    for (let i = 0; i < peers.length; i++) if (peers[i]!.mobile) count(i);
    if (this.mn) count(this.mn.homeAgentPeer);
    const counters: Record<string, number> = {};
    for (let i = 0; i < sum.length; i++) counters[MOBILITY_COUNTER_NAMES[i]!] = sum[i]!;
    counters.NPeersRoamed = this.roaming.roamed;
    counters.NRoamingRefused = this.roaming.refused;
    const out: MobilityStatsSnapshot = { counters, mipdiag: MIPDIAG_COUNTERS };
    if (this.mn) out.handoverGaps = this.mn.gaps.snapshot();
    return out;
  }

  snapshot(): MobilitySnapshot {
    const s: MobilitySnapshot = { roles: this.roles };
    if (this.ha || this.cn) {
      const rows: BindingSnapshot[] = [];
      for (const r of this.ha?.bindings() ?? []) {
        rows.push({
          type: 'home', node: r.name, home: formatAddress(r.home, 0, r.homeFamily), careOf: socketAddressText(r.careOf),
          claimedCareOf: r.claimedCareOf === null ? null : socketAddressText(r.claimedCareOf), nat: r.nat, lifetime: r.lifetime,
          remaining: r.remaining, sequence: r.sequence, state: r.bicastTo !== null ? 'bicasting' : 'registered',
          bicastTo: r.bicastTo === null ? null : socketAddressText(r.bicastTo), registeredAt: r.registeredAt, lastUpdate: r.lastUpdate, updates: r.updates,
        });
      }
      for (const r of this.cn?.bindings() ?? []) {
        rows.push({
          type: 'correspondent', node: r.name, home: formatAddress(r.home, 0, r.homeFamily), careOf: socketAddressText(r.careOf),
          claimedCareOf: r.claimedCareOf === null ? null : socketAddressText(r.claimedCareOf), nat: r.nat, lifetime: r.lifetime,
          remaining: r.remaining, sequence: r.sequence, state: r.path, bicastTo: null, registeredAt: r.registeredAt, lastUpdate: r.lastUpdate, updates: r.updates,
        });
      }
      s.bindings = rows;
    }
    if (this.mn) {
      const mn = this.mn;
      s.node = mn.name;
      s.careOf = mn.mn.currentCareOf === null ? null : socketAddressText(mn.mn.currentCareOf);
      s.atHome = mn.home;
      s.bindingUpdates = mn.list().map((r): BindingUpdateSnapshot => ({
        recipient: r.recipient, recipientAddress: socketAddressText(r.recipientAddress), homeAgent: r.homeAgent,
        home: formatAddress(r.home.bytes, 0, r.home.family), careOf: r.careOf === null ? null : socketAddressText(r.careOf),
        expires: r.expires, sequence: r.sequence, state: r.state, delay: r.delay, maxDelay: r.maxDelay,
        callbackTime: Number.isFinite(r.callbackTime) ? r.callbackTime : null, lastStatus: r.lastStatus,
        observed: r.observed === null ? null : socketAddressText(r.observed), nat: r.nat, retransmissions: r.retransmissions,
      }));
      s.handovers = [...mn.recent];
    }
    return s;
  }
}
