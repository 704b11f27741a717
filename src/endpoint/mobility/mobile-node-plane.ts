/**
 * The mobile node role in an endpoint. The home address lives on the TUN (or the endpoint's own
 * stack); the home agent is one of the config's peers, whose routes are what goes through the
 * home agent (a reverse tunnel: the home agent relays the node's traffic). This file keeps the
 * home agent told where the node is:
 *
 *  - at start, and at once when the underlay changes (UnderlayWatch: netlink events, a send
 *    error, polling), the care-of as the kernel would pick it is looked up; a new one means a
 *    binding update (src/mobility/mobile-node.ts: retries with backoff and full jitter, refresh at
 *    50-80% of the lifetime);
 *  - a care-of inside `homeNetworks` means at home: deregister, and stop routing the home agent's
 *    prefixes into the TUN (traffic leaves natively on the home link) until the node leaves;
 *  - the home agent lost the binding (it restarted): our keepalive gets a refresh request back
 *    and the node registers at once; so we send the home agent a keepalive whenever nothing was
 *    heard from it for one keepalive interval (besides the usual one when nothing was sent);
 *  - the home agent peer going down (missed keepalives) re-registers too, and an ack reporting a
 *    new observed address (a NAT rebinding) re-registers with the correspondents;
 *  - on stop: deregistration (lifetime 0), a few sends at most.
 * Every completed registration after a move is a handover: its gap (noticed -> acked) goes to
 * the histogram and the 'handover' event.
 */
import type { MobileNodeConfig } from '../../config/config.ts';
import type { MobilityIo } from '../../mobility/io.ts';
import { MobileNode, type BindingUpdateListRow, type RegisteredInfo } from '../../mobility/mobile-node.ts';
import type { ControlCounter } from '../../tunnel/control.ts';
import { prefixContains } from '../../wire/address-text.ts';
import type { SocketAddress } from '../../wire/binding.ts';
import type { HandoverEvent } from './events.ts';
import { GapHistogram } from './gap-histogram.ts';
import type { PeerDefaults } from './home-agent-plane.ts';
import type { DataPlaneOps } from './ops.ts';
import { sameAddress, socketAddressText, toUnderlay } from './socket-address.ts';
import { UnderlayWatch } from './underlay-watch.ts';

export interface MobileNodePlaneHooks {
  handover(e: HandoverEvent): void;
  log(line: string): void;
  /** Timers of the node machine changed: re-arm. */
  reschedule(): void;
}

/** How many recent handovers `show binding-updates` lists. */
const RECENT = 32;

export class MobileNodePlane {
  readonly mn: MobileNode;
  readonly gaps = new GapHistogram();
  readonly recent: HandoverEvent[] = [];
  readonly watch: UnderlayWatch;
  private atHome = false;
  private started = false;
  /** The move being registered: from, when and how it was noticed. */
  private move: { from: SocketAddress | null; to: SocketAddress | null; at: number; how: string } | null = null;
  private lastObserved: SocketAddress | null = null;
  /** The last care-of the node had (kept while it has none). */
  private lastCareOf: SocketAddress | null = null;
  private lastProbeKeepalive = 0;

  constructor(
    private readonly config: MobileNodeConfig,
    private readonly ops: DataPlaneOps,
    io: MobilityIo,
    counter: ControlCounter,
    private readonly hooks: MobileNodePlaneHooks,
    private readonly defaults: PeerDefaults,
  ) {
    const c = config;
    this.mn = new MobileNode(
      {
        name: c.name,
        home: c.home,
        homeAgent: c.homeAgent,
        key: c.key,
        lifetime: c.lifetime,
        backoff: c.backoff,
        freshnessMs: c.freshnessMs,
        routeOptimisation: c.routeOptimisation,
        correspondents: c.correspondents,
        counter,
      },
      io,
      {
        registered: (i) => this.registered(i),
        rejected: (r, status) => this.hooks.log(`binding update to ${this.recipient(r)} refused: status ${status}`),
        deregistered: (r) => this.deregistered(r),
      },
    );
    this.watch = new UnderlayWatch({
      target: c.homeAgent,
      local: () => ops.localAddress(),
      monitor: c.monitor,
      pollMs: c.pollMs,
      onChange: (careOf, how, at) => this.underlay(careOf, how, at),
      log: hooks.log,
    });
  }

  get name(): string {
    return this.config.name;
  }

  get homeAgentPeer(): number {
    return this.config.homeAgentPeer;
  }

  private recipient(r: number): string {
    return r === 0 ? 'the home agent' : `correspondent ${this.config.correspondents[r - 1]?.name ?? r}`;
  }

  private isHome(a: SocketAddress | null): boolean {
    return a !== null && this.config.homeNetworks.some((p) => prefixContains(p, a));
  }

  /** Look up the care-of and register (or deregister, at home); then watch the underlay. */
  async start(): Promise<void> {
    // Route optimisation: each correspondent may send to us directly; it sends from inside the
    // home agent's prefixes (what we reach it by), so it is a peer with those sources.
    if (this.config.routeOptimisation) {
      for (const c of this.config.correspondents) {
        this.ops.addPeer({
          name: c.name, routes: [], sources: [], mtu: this.defaults.mtu, keepalive: null, key: c.key, mss: this.defaults.mss,
          endpoint: toUnderlay(c.endpoint), mobile: true, sourcesOf: this.homeAgentPeer,
        });
      }
    }
    const careOf = await this.watch.lookup();
    this.started = true;
    this.atHome = this.isHome(careOf);
    this.lastCareOf = careOf;
    if (this.atHome) this.ops.setKernelRoutes(this.homeAgentPeer, false);
    this.move = { from: null, to: careOf, at: Date.now(), how: 'start' };
    this.hooks.log(`mobile node ${this.config.name}: ${this.atHome ? `at home (${socketAddressText(careOf)})` : `care-of ${socketAddressText(careOf)}`}`);
    this.mn.start(careOf, this.atHome);
    this.watch.start();
    this.hooks.reschedule();
  }

  /** The underlay changed to `careOf` (null: no way to the home agent now). */
  private underlay(careOf: SocketAddress | null, how: string, at: number): void {
    const home = this.isHome(careOf);
    this.hooks.log(`underlay: ${socketAddressText(this.lastCareOf)} -> ${socketAddressText(careOf)} (${how})${home ? ', at home' : ''}`);
    // A move that began earlier and is not registered yet (the old route went away first, say)
    // keeps its start: the gap runs from the first sign of it.
    const pending = this.move !== null && this.move.how !== 'start' ? this.move : null;
    const from = pending !== null ? pending.from : this.atHome ? null : this.lastCareOf;
    this.move = { from, to: careOf, at: pending?.at ?? at, how: pending?.how ?? how };
    if (careOf === null) {
      this.mn.underlayChanged(null);
      return;
    }
    this.lastCareOf = careOf;
    if (home !== this.atHome) {
      this.atHome = home;
      this.ops.setKernelRoutes(this.homeAgentPeer, !home);
      this.mn.setAtHome(home, careOf);
    } else if (!home) {
      this.mn.underlayChanged(careOf);
    }
    this.hooks.reschedule();
  }

  /** Something says the home agent lost track of us: look at the underlay, then register. */
  nudge(why: string): void {
    if (!this.started) return;
    this.hooks.log(`re-registering: ${why}`);
    this.mn.nudge();
    this.hooks.reschedule();
  }

  /** A send to the underlay failed: the route may be gone. */
  sendError(): void {
    this.watch.probe('send-error');
  }

  private registered(i: RegisteredInfo): void {
    if (i.recipient !== 0) {
      this.hooks.log(`registered with ${this.recipient(i.recipient)} (${i.latencyMs} ms)`);
      return;
    }
    const now = Date.now();
    const m = this.move;
    this.move = null;
    const rebound = this.lastObserved !== null && i.observed !== null && !sameAddress(this.lastObserved, i.observed) && !i.handover;
    this.lastObserved = i.observed;
    if (m !== null && m.how !== 'start') {
      const ev: HandoverEvent = {
        role: 'mobile-node',
        node: this.config.name,
        from: m.from === null ? null : socketAddressText(m.from),
        to: socketAddressText(i.careOf),
        gapMs: now - m.at,
        detectedAt: m.at,
        detection: m.how,
        at: now,
        nat: i.nat,
      };
      this.record(ev);
      this.hooks.log(`handover ${ev.from ?? 'home'} -> ${ev.to}: registered in ${ev.gapMs} ms (noticed by ${m.how})${i.nat ? `, NAT: seen as ${socketAddressText(i.observed)}` : ''}`);
    } else if (m !== null) {
      this.hooks.log(`registered at ${socketAddressText(i.careOf)} in ${i.latencyMs} ms, lifetime ${i.lifetime} s${i.nat ? `, NAT: the home agent sees ${socketAddressText(i.observed)}` : ''}`);
    }
    if (rebound) {
      // Our address as seen from outside changed under us (a NAT rebinding): the home agent
      // follows by itself (it answered from the new one), the correspondents must be told.
      this.hooks.log(`the home agent now sees us from ${socketAddressText(i.observed)} (NAT rebinding)`);
      if (this.config.routeOptimisation) this.mn.nudge();
    }
  }

  private deregistered(r: number): void {
    if (r !== 0) return;
    const now = Date.now();
    const m = this.move;
    this.move = null;
    if (m !== null && this.atHome) {
      const ev: HandoverEvent = {
        role: 'mobile-node', node: this.config.name, from: m.from === null ? null : socketAddressText(m.from), to: null,
        gapMs: now - m.at, detectedAt: m.at, detection: m.how, at: now, nat: false,
      };
      this.record(ev);
      this.hooks.log(`handover ${ev.from ?? '-'} -> home: deregistered in ${ev.gapMs} ms (noticed by ${m.how})`);
    } else {
      this.hooks.log('deregistered from the home agent');
    }
  }

  private record(ev: HandoverEvent): void {
    this.gaps.add(ev.gapMs!);
    this.recent.push(ev);
    if (this.recent.length > RECENT) this.recent.shift();
    this.hooks.handover(ev);
  }

  /**
   * Keepalives for refresh requests: when nothing was heard from the home agent for one
   * keepalive interval, send one (a home agent that lost our binding answers it). Returns when
   * to look again.
   */
  keepaliveDue(now: number): number {
    const peer = this.ops.peers[this.homeAgentPeer];
    if (peer === undefined || peer.keepaliveMs === 0 || !this.started || this.atHome) return Infinity;
    const k = peer.keepaliveMs;
    if (this.mn.state() === 'registered' && now - peer.lastRx >= k && now - this.lastProbeKeepalive >= k) {
      this.lastProbeKeepalive = now;
      this.ops.keepalive(this.homeAgentPeer);
    }
    return Math.max(now + 10, Math.max(peer.lastRx, this.lastProbeKeepalive) + k);
  }

  list(): BindingUpdateListRow[] {
    return this.mn.list();
  }

  get home(): boolean {
    return this.atHome;
  }

  /** Deregister (at most a few sends) and stop watching; resolves when done or after `ms`. */
  async stop(ms = 1500): Promise<void> {
    this.watch.stop();
    if (!this.started) return;
    this.started = false;
    this.mn.shutdown();
    this.hooks.reschedule();
    const end = Date.now() + ms;
    while (!this.mn.idle() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  }
}
