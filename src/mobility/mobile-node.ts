/**
 * Mobile node role: keeps its home agent (and, with route optimisation, its correspondents)
 * told where it is. One entry per recipient in the binding update list (`mipdiag -l`), each a
 * small state machine:
 *
 *   idle --register--> registering --ack 0--> registered --refresh at 50-80%--> registering
 *                        |  ^   \--ack 130--> waiting (retry-after R: resend in [R, 2R])
 *                        |  |    \-ack 128..133--> rejected (resend at the 32 s cap, jittered)
 *                        |  +-- no ack: resend, new sequence, wait doubling 1 s (1.5 s first
 *                        |       registration) .. 32 s with full jitter (backoff.ts)
 *                        +--ack 135: take the recipient's sequence + 1, resend at once (once)
 *   any --home / shutdown--> deregistering (lifetime 0) --ack 0 or attempts spent--> idle
 *
 * Inputs: start(), underlayChanged(), nudge() (send error, missed keepalives, the home agent
 * seeing us from a new address), setAtHome(), shutdown(), handle() for every binding ack and path
 * challenge received, tick() when nextDue() comes. Outputs: datagrams through the injected
 * sender, hooks (registered / rejected / deregistered) and `list()` rows.
 *
 * The first sequence number comes from the clock (seconds mod 2^16), so a restarted node is
 * usually ahead of what its home agent accepted last; when not, the 135 answer resynchronises.
 */
import { DropReason } from '../base/drop-reason.ts';
import type { AddressBytes } from '../wire/address-text.ts';
import {
  BindingAck,
  BindingStatus,
  CTYPE_BINDING_ACK,
  CTYPE_BINDING_REFRESH,
  CTYPE_PATH_CHALLENGE,
  PathProbe,
  RefreshRequest,
  STATUS_REJECTED_MIN,
  bindingUpdateLength,
  bindingUpdatePaddingFor,
  emitBindingUpdate,
  MOBILITY_BODY_MAX,
  emitPathProbe,
  pathPaddingFor,
  pathProbeLength,
  type BindingUpdateRepr,
  type SocketAddress,
} from '../wire/binding.ts';
import { ControlMessage, senderIdFromName } from '../wire/gue.ts';
import { ControlCounter, verifyControl } from '../tunnel/control.ts';
import { ReplayVerdict, ReplayWindow } from '../tunnel/replay.ts';
import { RFC6275_BACKOFF, backoffBound, backoffDelay, refreshDelay, retryAfterDelay, type BackoffPolicy } from './backoff.ts';
import { MobilityVerdict, sameSocketAddress, type MobilityIo } from './io.ts';
import { DEFAULT_FRESHNESS_MS } from './registrar.ts';
import { MobilityCounter as C, MobilityStats } from './stats.ts';

export type RegistrationState = 'idle' | 'registering' | 'registered' | 'waiting' | 'rejected' | 'deregistering';

export interface CorrespondentSpec {
  name: string;
  endpoint: SocketAddress;
  /** The key this node shares with that correspondent (not the home agent's). */
  key: Uint8Array;
  /** Pad binding updates to this many bytes of UDP payload, so the correspondent may send a
   *  probe 3x as big before the path is validated (default 0: no padding). */
  padTo?: number;
}

export interface MobileNodeOptions {
  /** Our name: its SHA-256 prefix is the sender id of our messages. */
  name: string;
  home: AddressBytes;
  homeAgent: SocketAddress;
  /** Our key, shared with the home agent only. */
  key: Uint8Array;
  /** Lifetime asked for, seconds (default 600; at most 262140). */
  lifetime?: number;
  backoff?: Partial<BackoffPolicy>;
  /** Ack counters further than this from our clock are refused, ms (default 300000; 0 = off). */
  freshnessMs?: number;
  /** Set the R flag and register with `correspondents` (default false). */
  routeOptimisation?: boolean;
  correspondents?: readonly CorrespondentSpec[];
  /** Deregistration sends on shutdown before giving up (default 3). */
  shutdownAttempts?: number;
  /**
   * The replay counter our messages carry (default: our own on io.clock). The endpoint shares
   * one with its keepalives to the home agent, which carry our sender id too: one monotonic
   * stream per sender id.
   */
  counter?: ControlCounter;
}

export interface RegisteredInfo {
  /** Index in list(): 0 = the home agent. */
  recipient: number;
  /** From the event that started this registration (underlay change, start, refresh) to the ack. */
  latencyMs: number;
  /** The care-of address changed with this registration (a handover). */
  handover: boolean;
  careOf: SocketAddress | null;
  /** Our address as the recipient saw it, and whether a NAT is in between. */
  observed: SocketAddress | null;
  nat: boolean;
  lifetime: number;
}

export interface MobileNodeHooks {
  registered?(info: RegisteredInfo): void;
  rejected?(recipient: number, status: number): void;
  deregistered?(recipient: number): void;
}

/** One row of the binding update list (`mipdiag -l`). */
export interface BindingUpdateListRow {
  recipient: string;
  recipientAddress: SocketAddress;
  homeAgent: boolean;
  home: AddressBytes;
  careOf: SocketAddress | null;
  /** Seconds until the binding at the recipient expires (0 = none). */
  expires: number;
  sequence: number;
  state: RegistrationState;
  /** Current retransmission bound and its cap, seconds. */
  delay: number;
  maxDelay: number;
  /** Seconds until this entry acts next (Infinity = waits for an event). */
  callbackTime: number;
  lastStatus: number;
  observed: SocketAddress | null;
  nat: boolean;
  retransmissions: number;
}

interface Entry {
  name: string;
  to: SocketAddress;
  key: Uint8Array;
  homeAgent: boolean;
  padTo: number;
  state: RegistrationState;
  sequence: number;
  /** Sequence of the first send of the current attempt (acks in [first, sequence] match). */
  firstSeq: number;
  /** Retransmissions in the current attempt. */
  attempt: number;
  firstRegistration: boolean;
  resynced: boolean;
  /** When the event that started this attempt happened, and the first send of it. */
  startedAt: number;
  sentAt: number;
  handover: boolean;
  nextAt: number;
  /** Current wait bound, ms. */
  bound: number;
  lifetime: number;
  expiresAt: number;
  lastStatus: number;
  observed: SocketAddress | null;
  nat: boolean;
  retransmissions: number;
  deregAttemptsLeft: number;
  replay: ReplayWindow;
}

const NONE = Infinity;
/** Room the fixed fields of a body take at most (IPv6 home and care-of: padding stays within MOBILITY_BODY_MAX). */
const BODY_FIELDS_MAX = 8 + 32;

export class MobileNode {
  readonly stats = new MobilityStats();
  readonly senderId: number;
  private readonly entries: Entry[] = [];
  private readonly policy: BackoffPolicy;
  private readonly lifetime: number;
  private readonly counter: ControlCounter;
  private readonly shutdownAttempts: number;
  private careOf: SocketAddress | null = null;
  private atHome = false;
  private started = false;
  /** Send buffer: small, grown on demand for padded updates and responses (100k nodes in one process stay cheap). */
  private out = Buffer.alloc(128);
  private readonly msg = new ControlMessage(Buffer.alloc(0), 0, 0);
  private readonly ack = new BindingAck();
  private readonly probe = new PathProbe();
  private readonly brr = new RefreshRequest();

  constructor(
    private readonly opts: MobileNodeOptions,
    private readonly io: MobilityIo,
    private readonly hooks: MobileNodeHooks = {},
  ) {
    this.senderId = senderIdFromName(opts.name);
    this.policy = { ...RFC6275_BACKOFF, ...opts.backoff };
    this.lifetime = opts.lifetime ?? 600;
    this.counter = opts.counter ?? new ControlCounter(io.clock);
    this.shutdownAttempts = opts.shutdownAttempts ?? 3;
    const fresh = opts.freshnessMs ?? DEFAULT_FRESHNESS_MS;
    const seq0 = Math.floor(io.clock.now() / 1000) & 0xffff;
    const mk = (name: string, to: SocketAddress, key: Uint8Array, ha: boolean, padTo: number): Entry => ({
      name, to, key, homeAgent: ha, padTo, state: 'idle', sequence: seq0, firstSeq: seq0, attempt: 0, firstRegistration: true,
      resynced: false, startedAt: 0, sentAt: 0, handover: false, nextAt: NONE, bound: 0, lifetime: 0, expiresAt: 0,
      lastStatus: -1, observed: null, nat: false, retransmissions: 0, deregAttemptsLeft: 0, replay: new ReplayWindow(1, fresh),
    });
    this.entries.push(mk('home agent', opts.homeAgent, opts.key, true, 0));
    if (opts.routeOptimisation) for (const c of opts.correspondents ?? []) this.entries.push(mk(c.name, c.endpoint, c.key, false, c.padTo ?? 0));
  }

  /** Begin: register from `careOf` (our underlay address as we see it), unless at home. */
  start(careOf: SocketAddress | null, atHome = false): void {
    this.started = true;
    this.careOf = careOf;
    this.atHome = atHome;
    if (!atHome) for (const e of this.entries) this.register(e, false);
  }

  /** Our underlay address changed (or went away: null). Re-register at once when there is one. */
  underlayChanged(careOf: SocketAddress | null): void {
    const moved = !sameOrBothNull(careOf, this.careOf);
    this.careOf = careOf;
    if (!this.started || this.atHome || careOf === null) return;
    for (const e of this.entries) this.register(e, moved);
  }

  /** Something suggests the recipients lost track of us (send error, missed keepalives, a new observed address): re-register now. */
  nudge(): void {
    if (!this.started || this.atHome || this.careOf === null) return;
    for (const e of this.entries) if (e.state !== 'deregistering') this.register(e, false);
  }

  /** Back on the home link (deregister everywhere), or away from it again (register). */
  setAtHome(atHome: boolean, careOf: SocketAddress | null = this.careOf): void {
    const was = this.atHome;
    this.atHome = atHome;
    this.careOf = careOf;
    if (!this.started || was === atHome) return;
    for (const e of this.entries) {
      if (atHome) this.deregister(e, Infinity);
      else this.register(e, true);
    }
  }

  /** Deregister everywhere, at most `shutdownAttempts` sends each; idle() tells when done. */
  shutdown(): void {
    this.started = false;
    for (const e of this.entries) {
      if (e.state === 'idle') continue;
      this.deregister(e, this.shutdownAttempts);
    }
  }

  /** Every entry idle (after shutdown: deregistered or given up). */
  idle(): boolean {
    return this.entries.every((e) => e.state === 'idle');
  }

  /** The current care-of (our own view). */
  get currentCareOf(): SocketAddress | null {
    return this.careOf;
  }

  state(recipient = 0): RegistrationState {
    return this.entries[recipient]!.state;
  }

  // ------------------------------------------------------------------------------------------
  // sending

  private register(e: Entry, handover: boolean): void {
    const now = this.io.clock.now();
    e.firstRegistration = e.state === 'deregistering' || now >= e.expiresAt;
    e.state = 'registering';
    e.lifetime = this.lifetime;
    e.handover = handover || e.handover;
    this.beginAttempt(e, now);
    this.send(e, now);
  }

  private deregister(e: Entry, attempts: number): void {
    const now = this.io.clock.now();
    e.state = 'deregistering';
    e.lifetime = 0;
    e.deregAttemptsLeft = attempts;
    e.handover = false;
    this.beginAttempt(e, now);
    this.send(e, now);
  }

  private beginAttempt(e: Entry, now: number): void {
    e.attempt = 0;
    e.resynced = false;
    e.startedAt = now;
    e.sentAt = now;
    e.firstSeq = (e.sequence + 1) & 0xffff;
  }

  /** Send the next update of the current attempt and arm its timer. */
  private send(e: Entry, now: number): void {
    e.sequence = (e.sequence + 1) & 0xffff;
    const r: BindingUpdateRepr = {
      sequence: e.sequence,
      lifetime: e.lifetime,
      ackRequested: true,
      homeRegistration: e.homeAgent,
      routeOptimisation: this.opts.routeOptimisation === true,
      homeFamily: this.opts.home.family,
      home: this.opts.home.bytes,
      careOf: this.careOf,
      padding: 0,
    };
    if (e.padTo > 0) r.padding = Math.min(bindingUpdatePaddingFor(e.padTo, r), MOBILITY_BODY_MAX - BODY_FIELDS_MAX);
    this.reserve(bindingUpdateLength(r));
    const len = emitBindingUpdate(this.out, 0, { senderId: this.senderId, counter: this.counter.next() }, r, e.key);
    this.stats.inc(C.NBindUpdatesSent);
    if (e.attempt > 0) {
      this.stats.inc(C.NBindUpdatesRetransmitted);
      e.retransmissions++;
    }
    const initial = e.firstRegistration && e.state === 'registering' ? this.policy.firstRegistrationMs : this.policy.initialMs;
    e.bound = backoffBound(e.attempt, initial, this.policy.maxMs);
    e.nextAt = now + backoffDelay(e.attempt, initial, this.policy, this.io.random);
    e.attempt++;
    this.io.sender.send(this.out, 0, len, e.to);
  }

  private reserve(n: number): void {
    if (this.out.length < n) this.out = Buffer.alloc(n);
  }

  // ------------------------------------------------------------------------------------------
  // timers

  /** When tick() next has something to do (ms since 1970; Infinity = only events). */
  nextDue(): number {
    let t = NONE;
    for (const e of this.entries) if (e.nextAt < t) t = e.nextAt;
    return t;
  }

  /** Do what is due; returns nextDue(). */
  tick(): number {
    const now = this.io.clock.now();
    for (const e of this.entries) {
      if (e.nextAt > now) continue;
      switch (e.state) {
        case 'registering':
          this.send(e, now);
          break;
        case 'deregistering':
          if (e.deregAttemptsLeft !== Infinity && e.attempt >= e.deregAttemptsLeft) {
            this.toIdle(e);
            this.hooks.deregistered?.(this.entries.indexOf(e));
          } else {
            this.send(e, now);
          }
          break;
        case 'waiting':
        case 'rejected':
        case 'registered': // refresh time
          e.state = 'registering';
          e.firstRegistration = now >= e.expiresAt;
          e.lifetime = this.lifetime;
          e.handover = false;
          this.beginAttempt(e, now);
          this.send(e, now);
          break;
        default:
          e.nextAt = NONE;
      }
    }
    return this.nextDue();
  }

  private toIdle(e: Entry): void {
    e.state = 'idle';
    e.nextAt = NONE;
    e.expiresAt = 0;
    e.firstRegistration = true;
  }

  // ------------------------------------------------------------------------------------------
  // receiving

  /** Handle a BINDING_ACK, PATH_CHALLENGE or BINDING_REFRESH_REQUEST datagram from `from`. */
  handle(buf: Buffer, off: number, len: number, from: SocketAddress): MobilityVerdict {
    const m = this.msg.wrap(buf, off, len);
    if (m.check() !== DropReason.None) {
      this.stats.inc(C.NBindAcksDropInvalid);
      return MobilityVerdict.DropInvalid;
    }
    if (m.ctype === CTYPE_BINDING_ACK) return this.handleAck(m, buf, off, len);
    if (m.ctype === CTYPE_PATH_CHALLENGE) return this.handleChallenge(m, buf, off, len, from);
    if (m.ctype === CTYPE_BINDING_REFRESH) return this.handleRefreshRequest(m, buf, off, len);
    this.stats.inc(C.NBindAcksDropInvalid);
    return MobilityVerdict.DropInvalid;
  }

  /** The entry whose key signed the message, or -1. */
  private signer(buf: Buffer, off: number, len: number): number {
    for (let i = 0; i < this.entries.length; i++) {
      if (verifyControl(buf, off, len, this.entries[i]!.key, null, 0, this.senderId) === DropReason.None) return i;
    }
    return -1;
  }

  private handleAck(m: ControlMessage, buf: Buffer, off: number, len: number): MobilityVerdict {
    const st = this.stats;
    const a = this.ack.wrap(buf, m.bodyOffset, m.bodyLength);
    if (a.check() !== DropReason.None || a.homeFamily !== this.opts.home.family || !sameBytes(buf, a.homeOffset, this.opts.home.bytes)) {
      st.inc(C.NBindAcksDropInvalid);
      return MobilityVerdict.DropInvalid;
    }
    const i = m.hasMac ? this.signer(buf, off, len) : -1;
    if (i < 0) {
      st.inc(C.NBindAcksDropAuth);
      return MobilityVerdict.DropAuth;
    }
    const e = this.entries[i]!;
    const now = this.io.clock.now();
    const v = e.replay.check(0, 0, m.counterHi, m.counterLo, now);
    if (v !== ReplayVerdict.Fresh) {
      st.inc(C.NBindAcksDropAuth);
      return v === ReplayVerdict.Stale ? MobilityVerdict.DropStale : MobilityVerdict.DropReplay;
    }
    const status = a.status;
    const waiting = e.state === 'registering' || e.state === 'deregistering';
    const inAttempt = ((a.sequence - e.firstSeq) & 0xffff) <= ((e.sequence - e.firstSeq) & 0xffff);
    if (!waiting || (status !== BindingStatus.SequenceOutOfWindow && !inAttempt)) {
      e.replay.accept(0, 0, m.counterHi, m.counterLo);
      st.inc(C.NBindAcksDropMisc);
      return MobilityVerdict.DropUnexpected;
    }
    e.replay.accept(0, 0, m.counterHi, m.counterLo);
    st.inc(status >= STATUS_REJECTED_MIN ? C.NBindNAcksRcvd : C.NBindAcksRcvd);
    e.lastStatus = status;
    const idx = i;
    if (status < STATUS_REJECTED_MIN) {
      e.observed = a.observedFamily === 0 ? null : { family: a.observedFamily as 4 | 6, bytes: buf.slice(a.observedOffset, a.observedOffset + (a.observedFamily === 4 ? 4 : 16)), port: a.observedPort };
      e.nat = a.nat;
      if (e.state === 'deregistering') {
        this.toIdle(e);
        this.hooks.deregistered?.(idx);
        return MobilityVerdict.Accepted;
      }
      e.state = 'registered';
      e.firstRegistration = false;
      const granted = a.lifetime;
      e.lifetime = granted;
      e.expiresAt = e.sentAt + granted * 1000;
      e.nextAt = e.sentAt + refreshDelay(granted * 1000, this.io.random);
      if (e.handover) st.inc(C.NHandovers);
      const info: RegisteredInfo = {
        recipient: idx, latencyMs: now - e.startedAt, handover: e.handover, careOf: this.careOf, observed: e.observed, nat: e.nat, lifetime: granted,
      };
      e.handover = false;
      this.hooks.registered?.(info);
      return MobilityVerdict.Accepted;
    }
    if (status === BindingStatus.SequenceOutOfWindow) {
      e.sequence = a.sequence; // the next send uses a.sequence + 1
      if (!e.resynced) {
        e.resynced = true;
        e.firstSeq = (e.sequence + 1) & 0xffff;
        this.send(e, now);
      } else {
        e.firstSeq = (e.sequence + 1) & 0xffff;
      }
      return MobilityVerdict.Rejected;
    }
    if (e.state === 'deregistering') {
      // refused, but there is nothing left to take down there either: done
      this.toIdle(e);
      this.hooks.deregistered?.(idx);
      return MobilityVerdict.Rejected;
    }
    if (status === BindingStatus.InsufficientResources) {
      e.state = 'waiting';
      e.nextAt = now + retryAfterDelay(a.retryAfter, this.policy, this.io.random);
      this.hooks.rejected?.(idx, status);
      return MobilityVerdict.Rejected;
    }
    e.state = 'rejected';
    e.nextAt = now + backoffDelay(30, this.policy.maxMs, this.policy, this.io.random);
    this.hooks.rejected?.(idx, status);
    return MobilityVerdict.Rejected;
  }

  /** The home agent asks us to register now (it lost our binding, or sees us from elsewhere). */
  private handleRefreshRequest(m: ControlMessage, buf: Buffer, off: number, len: number): MobilityVerdict {
    const st = this.stats;
    const r = this.brr.wrap(buf, m.bodyOffset, m.bodyLength);
    if (r.check() !== DropReason.None || r.homeFamily !== this.opts.home.family || !sameBytes(buf, r.homeOffset, this.opts.home.bytes)) {
      st.inc(C.NBindRqsDropInvalid);
      return MobilityVerdict.DropInvalid;
    }
    // only the home agent asks (entry 0), with our key
    const e = this.entries[0]!;
    if (!m.hasMac || verifyControl(buf, off, len, e.key, null, 0, this.senderId) !== DropReason.None) {
      st.inc(C.NBindRqsDropAuth);
      return MobilityVerdict.DropAuth;
    }
    const now = this.io.clock.now();
    const v = e.replay.check(0, 0, m.counterHi, m.counterLo, now);
    if (v !== ReplayVerdict.Fresh) {
      st.inc(C.NBindRqsDropAuth);
      return v === ReplayVerdict.Stale ? MobilityVerdict.DropStale : MobilityVerdict.DropReplay;
    }
    e.replay.accept(0, 0, m.counterHi, m.counterLo);
    st.inc(C.NBindRqsRcvd);
    if (!this.started || this.atHome || this.careOf === null || e.state === 'deregistering') {
      st.inc(C.NBindRqsDropMisc);
      return MobilityVerdict.DropUnexpected;
    }
    this.register(e, false);
    return MobilityVerdict.Accepted;
  }

  private handleChallenge(m: ControlMessage, buf: Buffer, off: number, len: number, from: SocketAddress): MobilityVerdict {
    const st = this.stats;
    const p = this.probe.wrap(buf, m.bodyOffset, m.bodyLength);
    if (p.check() !== DropReason.None || p.homeFamily !== this.opts.home.family || !sameBytes(buf, p.homeOffset, this.opts.home.bytes)) {
      st.inc(C.NPathDropInvalid);
      return MobilityVerdict.DropInvalid;
    }
    st.inc(C.NPathChallengesRcvd);
    const i = m.hasMac ? this.signer(buf, off, len) : -1;
    if (i <= 0) {
      // only correspondents challenge (entry 0 is the home agent)
      st.inc(C.NPathDropAuth);
      return MobilityVerdict.DropAuth;
    }
    const e = this.entries[i]!;
    const now = this.io.clock.now();
    const v = e.replay.check(0, 0, m.counterHi, m.counterLo, now);
    if (v !== ReplayVerdict.Fresh) {
      st.inc(C.NPathDropAuth);
      return v === ReplayVerdict.Stale ? MobilityVerdict.DropStale : MobilityVerdict.DropReplay;
    }
    e.replay.accept(0, 0, m.counterHi, m.counterLo);
    // answer from where we are, as big as the challenge (probes the reverse path, no amplification)
    const data = buf.subarray(p.dataOffset, p.dataOffset + 8);
    const r = { data, homeFamily: this.opts.home.family, home: this.opts.home.bytes, padding: 0 };
    r.padding = Math.min(pathPaddingFor(len, r.homeFamily), MOBILITY_BODY_MAX - BODY_FIELDS_MAX);
    this.reserve(pathProbeLength(r));
    const n = emitPathProbe(this.out, 0, true, { senderId: this.senderId, counter: this.counter.next() }, r, e.key);
    st.inc(C.NPathResponsesSent);
    this.io.sender.send(this.out, 0, n, from);
    return MobilityVerdict.Accepted;
  }

  // ------------------------------------------------------------------------------------------
  // show

  /** The binding update list (`mipdiag -l`; control plane). */
  list(): BindingUpdateListRow[] {
    const now = this.io.clock.now();
    return this.entries.map((e) => ({
      recipient: e.name,
      recipientAddress: e.to,
      homeAgent: e.homeAgent,
      home: this.opts.home,
      careOf: this.careOf,
      expires: e.state === 'registered' || e.expiresAt > now ? Math.max(0, Math.floor((e.expiresAt - now) / 1000)) : 0,
      sequence: e.sequence,
      state: e.state,
      delay: e.bound / 1000,
      maxDelay: this.policy.maxMs / 1000,
      callbackTime: e.nextAt === NONE ? Infinity : Math.max(0, Math.round((e.nextAt - now) / 1000)),
      lastStatus: e.lastStatus,
      observed: e.observed,
      nat: e.nat,
      retransmissions: e.retransmissions,
    }));
  }
}

function sameBytes(buf: Uint8Array, off: number, b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (buf[off + i] !== b[i]) return false;
  return true;
}

function sameOrBothNull(a: SocketAddress | null, b: SocketAddress | null): boolean {
  return a === null || b === null ? a === b : sameSocketAddress(a, b);
}
