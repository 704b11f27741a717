/**
 * Mobility in an endpoint: the roles the config asks for (home agent, mobile node,
 * route-optimising correspondent) and roaming for ordinary keyed peers, behind one face for the
 * Endpoint:
 *
 *  - the peers the roles add at run time through the boundary (a home agent's registered nodes,
 *    a correspondent's directly reached nodes, a mobile node's correspondents);
 *  - `onControl(msg)`: every control datagram the data plane hands up, dispatched by ctype and
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
import { formatAddress } from '../../wire/address-text.ts';
import { BindingUpdate, CTYPE_BINDING_ACK, CTYPE_BINDING_REFRESH, CTYPE_BINDING_UPDATE, CTYPE_PATH_CHALLENGE, CTYPE_PATH_RESPONSE } from '../../wire/binding.ts';
import { ControlMessage, CTYPE_KEEPALIVE, gueCtype } from '../../wire/gue.ts';
import type { ControlDatagram } from '../dataplane.ts';
import type { BindingSnapshot, BindingUpdateSnapshot, MobilitySnapshot, MobilityStatsSnapshot } from '../snapshot.ts';
import { CorrespondentPlane } from './correspondent-plane.ts';
import type { BindingEvent, HandoverEvent } from './events.ts';
import { HomeAgentPlane, type PeerDefaults } from './home-agent-plane.ts';
import { MobileNodePlane } from './mobile-node-plane.ts';
import type { DataPlaneOps } from './ops.ts';
import { RoamingPlane } from './roaming-plane.ts';
import { fromUnderlay, socketAddressText, toUnderlay } from './socket-address.ts';

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

  constructor(
    config: Config,
    private readonly ops: DataPlaneOps,
    /** Our replay counter: the mobile node's messages share it with the endpoint's keepalives. */
    counter: ControlCounter,
    private readonly hooks: MobilityPlaneHooks,
  ) {
    const m = config.mobility;
    const sender: ControlSender = { send: (buf, off, len, to) => void ops.sendControl(buf.subarray(off, off + len), toUnderlay(to)) };
    const io: MobilityIo = { clock: systemClock, random: systemRandom, sender };
    const name = config.interface.name;
    const log = hooks.log;
    const mtu = config.interface.mtu;
    const clamp = config.mssClamp;
    const defaults: PeerDefaults = {
      mtu,
      mss: clamp === false ? null : clamp === 'auto' ? { v4: mtu - 40, v6: mtu - 60 } : { v4: Math.min(clamp, mtu - 40), v6: Math.min(clamp, mtu - 60) },
    };
    if (m?.homeAgent) this.ha = new HomeAgentPlane(m.homeAgent, `${name}/home-agent`, ops, io, { binding: hooks.binding, handover: hooks.handover, log }, defaults);
    if (m?.correspondent) this.cn = new CorrespondentPlane(m.correspondent, `${name}/correspondent`, ops, io, { binding: hooks.binding, log }, defaults);
    if (m?.mobileNode) this.mn = new MobileNodePlane(m.mobileNode, ops, io, counter, { handover: hooks.handover, log, reschedule: () => this.reschedule() }, defaults);
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

  /** A control datagram from the data plane (see the file comment): None when used, else why not. */
  onControl(msg: ControlDatagram): DropReason {
    const from = fromUnderlay(msg.from);
    if (from === null) return DropReason.BadControlMessage;
    const b = msg.bytes;
    const buf = Buffer.from(b.buffer, b.byteOffset, b.length);
    const off = 0;
    const len = b.length;
    const peer = msg.peer;
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
  }

  /**
   * The endpoint saw a peer go down. The home agent's, when it has been sending keepalives
   * (`homeAgent.keepalive`): its silence means the path or the binding may be gone: re-register.
   * A home agent that sends none is silent whenever the node is idle: that means nothing.
   */
  peerDown(index: number): void {
    if (this.mn === null || index !== this.mn.homeAgentPeer) return;
    if ((this.ops.peers[index]?.keepalivesRx ?? 0) > 0) this.mn.nudge('the home agent missed its keepalives');
  }

  /** No keepalives to this peer now (a mobile node at home: its home agent holds no binding to keep). */
  quiet(index: number): boolean {
    return this.mn !== null && this.mn.home && index === this.mn.homeAgentPeer;
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
    for (let i = 0; i < peers.length; i++) if (peers[i]?.mobile) count(i);
    if (this.mn) count(this.mn.homeAgentPeer);
    const counters: Record<string, number> = {};
    for (let i = 0; i < sum.length; i++) counters[MOBILITY_COUNTER_NAMES[i]!] = sum[i]!;
    counters.NPeersRoamed = this.roaming.roamed;
    // a gauge beside the counters: entries in the binding caches now (home agent, correspondent)
    counters.Bindings = (this.ha?.ha.cache.size ?? 0) + (this.cn?.cn.cache.size ?? 0);
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
