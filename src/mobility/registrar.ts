/**
 * Receiving binding updates: what a home agent and a route-optimising correspondent share.
 *
 * One update goes through, in this order (each step counted under its mipdiag name):
 *  1. structure (GUE control message, BU body)                    -> NBindUpdatesDropInvalid
 *  2. the sender: a configured node whose key verifies the HMAC   -> NBindUpdatesDropAuth
 *  3. the 64-bit counter: newer than the last accepted, inside the freshness window
 *     (equal to the last: the cached ack goes back, once per rate token, to the same address)
 *                                                                 -> NBindUpdatesDropAuth
 *  4. the per-node rate                                           -> NBindUpdatesDropMisc
 *  5. the role's own rules (`admit`: home prefixes, this node's address, RO allowed, ...),
 *     then the RFC 6275 sequence check against an existing binding (135 with the last accepted
 *     sequence), then room in the cache (130 with retry-after when full)
 *  6. accepted: lifetime 0 removes the binding, otherwise it is created or updated with the
 *     observed care-of (the update's source address:port), the claimed one, NAT flag, bicasting
 *     to the previous care-of; hooks tell the endpoint to add/move/remove the node's route.
 * An ack goes back when the update asked for one (A) and always for a rejection, signed with the
 * node's key and sent to the observed address; the last ack per node is kept for duplicates.
 * Only steps 1-4 drop silently: nothing unauthenticated is ever answered.
 */
import type { Prefix } from '../wire/address-text.ts';
import {
  BindingAck,
  BindingStatus,
  BindingUpdate,
  BINDING_ACK_MAX_LEN,
  CTYPE_BINDING_UPDATE,
  MOBILITY_BODY_OFFSET,
  STATUS_REJECTED_MIN,
  emitBindingAck,
  seqGreater,
  type SocketAddress,
} from '../wire/binding.ts';
import { ControlMessage, HMAC_LEN, senderIdFromName } from '../wire/gue.ts';
import { DropReason } from '../base/drop-reason.ts';
import { ControlCounter } from '../tunnel/control.ts';
import { ReplayVerdict, ReplayWindow } from '../tunnel/replay.ts';
import { BindingCache, BINDING_FLAG_HOME, BINDING_FLAG_ROUTE_OPT, CareOfChange, type BindingRow } from './binding-cache.ts';
import { MobilityVerdict, sameSocketAddress, type MobilityIo } from './io.ts';
import { AUTH_UNKNOWN_SENDER, NodeTable, type NodeSpec } from './node-table.ts';
import { TokenBuckets } from './rate-limit.ts';
import { MobilityCounter as C, MobilityStats } from './stats.ts';

export interface RegistrarOptions {
  /** Our name: its SHA-256 prefix is the sender id of our acks. */
  name: string;
  nodes: readonly NodeSpec[];
  /** Cache cap; an update that needs a new binding beyond it gets 130. */
  maxBindings: number;
  /** Longest lifetime granted, seconds (default 600). */
  maxLifetime?: number;
  /** How long the previous care-of keeps getting copies after a move, ms (default 250; 0 = off). */
  bicastMs?: number;
  /** Replay counters further than this from our clock are refused, ms (default 300000; 0 = off). */
  freshnessMs?: number;
  /** Updates per second per node (default 5; 0 = unlimited) and bucket size (default 10). */
  ratePerSecond?: number;
  rateBurst?: number;
  /** Largest retry-after put in a 130, seconds (default 60). */
  retryAfterMax?: number;
}

export type RemoveReason = 'expired' | 'deregistered' | 'removed';

export interface RegistrarHooks {
  /** `node` has a binding now (it had none): route its home address to its tunnel, at cache.careOf(slot). */
  bindingAdded?(node: number, slot: number): void;
  /** The observed care-of of `node` moved (the previous one is bicast until cache.bicastUntil[slot]). */
  careOfChanged?(node: number, slot: number): void;
  /** `node`'s binding is going away (called before the slot is freed): remove its route. */
  bindingRemoved?(node: number, slot: number, reason: RemoveReason): void;
}

export const DEFAULT_MAX_LIFETIME_S = 600;
export const DEFAULT_BICAST_MS = 250;
export const DEFAULT_FRESHNESS_MS = 300_000;
export const DEFAULT_RATE_PER_SECOND = 5;
export const DEFAULT_RATE_BURST = 10;
export const DEFAULT_RETRY_AFTER_MAX_S = 60;

/** A binding with its node's name and home address, for show (control plane). */
export interface NamedBindingRow extends BindingRow {
  name: string;
  homeFamily: 4 | 6;
  home: Uint8Array;
}

export abstract class BindingRegistrar {
  readonly nodes: NodeTable;
  readonly cache: BindingCache;
  readonly stats = new MobilityStats();
  readonly senderId: number;
  /** Status of the last update handled (for tests and logs), -1 = none (dropped). */
  lastStatus = -1;
  /** Node of the last update that authenticated, -1 = none. */
  lastNode = -1;

  protected readonly maxLifetime: number;
  /** The replay freshness window, ms (0 = none). */
  protected readonly freshnessMs: number;
  protected readonly bicastMs: number;
  private readonly retryAfterMax: number;
  private readonly replay: ReplayWindow;
  /** Per-node token buckets: updates, and the home agent's refresh requests. */
  protected readonly rate: TokenBuckets;
  /** Our replay counter (acks, and the correspondent's path challenges). */
  protected readonly counter: ControlCounter;
  /** Last ack per node, BINDING_ACK_MAX_LEN bytes each, and its length (0 = none). */
  private readonly ackCache: Uint8Array;
  private readonly ackLen: Uint8Array;
  private readonly msg = new ControlMessage(Buffer.alloc(0), 0, 0);
  private readonly bu = new BindingUpdate();
  private readonly cachedAck = new BindingAck();
  private readonly out = Buffer.alloc(BINDING_ACK_MAX_LEN);

  constructor(
    opts: RegistrarOptions,
    protected readonly io: MobilityIo,
    protected readonly hooks: RegistrarHooks = {},
  ) {
    this.nodes = new NodeTable(opts.nodes);
    this.cache = new BindingCache(opts.maxBindings, this.nodes.count);
    this.senderId = senderIdFromName(opts.name);
    this.maxLifetime = opts.maxLifetime ?? DEFAULT_MAX_LIFETIME_S;
    this.bicastMs = opts.bicastMs ?? DEFAULT_BICAST_MS;
    this.retryAfterMax = opts.retryAfterMax ?? DEFAULT_RETRY_AFTER_MAX_S;
    this.freshnessMs = opts.freshnessMs ?? DEFAULT_FRESHNESS_MS;
    this.replay = new ReplayWindow(this.nodes.count, this.freshnessMs);
    this.rate = new TokenBuckets(this.nodes.count, opts.ratePerSecond ?? DEFAULT_RATE_PER_SECOND, opts.rateBurst ?? DEFAULT_RATE_BURST);
    this.counter = new ControlCounter(io.clock);
    this.ackCache = new Uint8Array(this.nodes.count * BINDING_ACK_MAX_LEN);
    this.ackLen = new Uint8Array(this.nodes.count);
  }

  /**
   * The role's rules for an authenticated, fresh update from `node`: BindingStatus.Accepted to go
   * on (sequence and room are checked after), or the rejection status.
   */
  protected abstract admit(node: number, bu: BindingUpdate): BindingStatus;

  /** Flags a binding from this update gets (BINDING_FLAG_*). */
  protected bindingFlags(bu: BindingUpdate): number {
    return (bu.homeRegistration ? BINDING_FLAG_HOME : 0) | (bu.routeOptimisation ? BINDING_FLAG_ROUTE_OPT : 0);
  }

  /** Handle a BINDING_UPDATE datagram (the UDP payload buf[off, off+len)) that came from `from`. */
  handleUpdate(buf: Buffer, off: number, len: number, from: SocketAddress): MobilityVerdict {
    const st = this.stats;
    this.lastStatus = -1;
    this.lastNode = -1;
    const m = this.msg.wrap(buf, off, len);
    if (m.check() !== DropReason.None || m.ctype !== CTYPE_BINDING_UPDATE) {
      st.inc(C.NBindUpdatesDropInvalid);
      return MobilityVerdict.DropInvalid;
    }
    st.inc(C.NBindUpdatesRcvd);
    const bu = this.bu.wrap(buf, m.bodyOffset, m.bodyLength);
    if (bu.check() !== DropReason.None) {
      st.inc(C.NBindUpdatesDropInvalid);
      return MobilityVerdict.DropInvalid;
    }
    const node = m.hasMac ? this.nodes.authenticate(buf, off, len, m.senderId) : -2;
    if (node < 0) {
      st.inc(C.NBindUpdatesDropAuth);
      st.inc(node === AUTH_UNKNOWN_SENDER ? C.NBindUpdatesUnknownNode : C.NBindUpdatesBadMac);
      return MobilityVerdict.DropAuth;
    }
    this.lastNode = node;
    const now = this.io.clock.now();
    const hi = m.counterHi;
    const lo = m.counterLo;
    const verdict = this.replay.check(node, 0, hi, lo, now);
    if (verdict === ReplayVerdict.Duplicate) return this.answerDuplicate(node, from, now);
    if (verdict !== ReplayVerdict.Fresh) {
      st.inc(C.NBindUpdatesDropAuth);
      st.inc(verdict === ReplayVerdict.Stale ? C.NBindUpdatesStale : C.NBindUpdatesReplayed);
      return verdict === ReplayVerdict.Stale ? MobilityVerdict.DropStale : MobilityVerdict.DropReplay;
    }
    this.replay.accept(node, 0, hi, lo);
    this.ackLen[node] = 0; // a duplicate of this message must not get an older message's ack
    if (!this.rate.take(node, now)) {
      st.inc(C.NBindUpdatesDropMisc);
      st.inc(C.NBindUpdatesRateLimited);
      return MobilityVerdict.DropRate;
    }

    let status = this.admit(node, bu);
    let slot = this.cache.slotOf(node);
    let ackSeq = bu.sequence;
    let lifetime = 0;
    let retryAfter = 0;
    if (status === BindingStatus.Accepted && slot >= 0 && !seqGreater(bu.sequence, this.cache.sequence[slot]!)) {
      status = BindingStatus.SequenceOutOfWindow;
      ackSeq = this.cache.sequence[slot]!;
    }
    if (status === BindingStatus.Accepted) {
      if (bu.lifetimeUnits === 0) {
        if (slot >= 0) this.removeSlot(slot, 'deregistered');
        st.inc(C.NBindingsDeregistered);
      } else {
        if (slot < 0) {
          if (this.cache.full) this.expire(now);
          slot = this.cache.create(node, now);
        }
        if (slot < 0) {
          status = BindingStatus.InsufficientResources;
          retryAfter = this.retryAfterHint(now);
          st.inc(C.NCacheFull);
        } else {
          lifetime = Math.min(bu.lifetime, this.maxLifetime);
          this.record(node, slot, bu, from, lifetime, now);
        }
      }
    }
    this.lastStatus = status;
    if (bu.ackRequested || status >= STATUS_REJECTED_MIN) {
      this.sendAck(node, bu, from, status, ackSeq, lifetime, retryAfter, slot >= 0 && this.cache.nat[slot] === 1 && status === 0);
    }
    return status >= STATUS_REJECTED_MIN ? MobilityVerdict.Rejected : MobilityVerdict.Accepted;
  }

  /**
   * Replay check for another message kind from an authenticated node (it shares the node's
   * counter): accepted and recorded when Fresh.
   */
  protected acceptCounter(node: number, hi: number, lo: number, now: number): ReplayVerdict {
    const v = this.replay.check(node, 0, hi, lo, now);
    if (v === ReplayVerdict.Fresh) {
      this.replay.accept(node, 0, hi, lo);
      this.ackLen[node] = 0;
    }
    return v;
  }

  private record(node: number, slot: number, bu: BindingUpdate, from: SocketAddress, lifetime: number, now: number): void {
    const c = this.cache;
    const wasNat = c.nat[slot] === 1;
    const cf = bu.careOfFamily;
    const change = c.update(
      slot, now, from.family, from.bytes, 0, from.port, cf, bu.buf, bu.careOfOffset, bu.careOfPort,
      bu.sequence, lifetime, this.bindingFlags(bu), this.bicastMs,
    );
    if (c.nat[slot] === 1 && !wasNat) this.stats.inc(C.NNatDetected);
    if (change === CareOfChange.First) {
      this.stats.inc(C.NBindingsAdded);
      this.hooks.bindingAdded?.(node, slot);
    } else {
      this.stats.inc(C.NBindingsRefreshed);
      if (change === CareOfChange.Moved) {
        this.stats.inc(C.NCareOfChanges);
        this.hooks.careOfChanged?.(node, slot);
      }
    }
  }

  private removeSlot(slot: number, reason: RemoveReason): void {
    this.hooks.bindingRemoved?.(this.cache.node[slot]!, slot, reason);
    this.cache.remove(slot);
  }

  /** Seconds until the earliest binding expires, in [1, retryAfterMax]. */
  private retryAfterHint(now: number): number {
    const t = this.cache.nextExpiry();
    const s = Number.isFinite(t) ? Math.ceil((t - now) / 1000) : this.retryAfterMax;
    return s < 1 ? 1 : s > this.retryAfterMax ? this.retryAfterMax : s;
  }

  private sendAck(
    node: number, bu: BindingUpdate, to: SocketAddress, status: number, seq: number, lifetime: number, retryAfter: number, nat: boolean,
  ): void {
    const home = this.nodes.home(node);
    const len = emitBindingAck(
      this.out, 0, { senderId: this.senderId, counter: this.counter.next() },
      { status, nat, sequence: seq, lifetime, retryAfter, homeFamily: bu.homeFamily as 4 | 6, home, observed: to },
      this.nodes.keys[node]!,
    );
    this.ackCache.set(this.out.subarray(0, len), node * BINDING_ACK_MAX_LEN);
    this.ackLen[node] = len;
    this.stats.inc(status >= STATUS_REJECTED_MIN ? C.NBindNAcksSent : C.NBindAcksSent);
    this.io.sender.send(this.out, 0, len, to);
  }

  /** The last update again: its ack again, to the address it went to, within the rate. */
  private answerDuplicate(node: number, from: SocketAddress, now: number): MobilityVerdict {
    const st = this.stats;
    const n = this.ackLen[node]!;
    if (n > 0) {
      const base = node * BINDING_ACK_MAX_LEN;
      const a = this.cachedAck.wrap(this.ackCache, base + MOBILITY_BODY_OFFSET, n - MOBILITY_BODY_OFFSET - HMAC_LEN);
      if (a.observedFamily === from.family && a.observedPort === from.port && sameBytes(this.ackCache, a.observedOffset, from.bytes)) {
        if (!this.rate.take(node, now)) {
          st.inc(C.NBindUpdatesDropMisc);
          st.inc(C.NBindUpdatesRateLimited);
          return MobilityVerdict.DropRate;
        }
        st.inc(C.NBindUpdatesDuplicate);
        this.out.set(this.ackCache.subarray(base, base + n), 0);
        this.stats.inc(a.status >= STATUS_REJECTED_MIN ? C.NBindNAcksSent : C.NBindAcksSent);
        this.io.sender.send(this.out, 0, n, from);
        return MobilityVerdict.Duplicate;
      }
    }
    st.inc(C.NBindUpdatesDropAuth);
    st.inc(C.NBindUpdatesReplayed);
    return MobilityVerdict.DropReplay;
  }

  /** Remove expired bindings; returns when to call again (ms since 1970, Infinity = nothing pending). */
  expire(now = this.io.clock.now()): number {
    for (let s = this.cache.expired(now); s >= 0; s = this.cache.expired(now)) {
      this.stats.inc(C.NBindingsExpired);
      this.removeSlot(s, 'expired');
    }
    return this.cache.nextExpiry();
  }

  /** Drop every binding (shutdown, reconfiguration): hooks see each removal. */
  removeAll(reason: RemoveReason = 'removed'): void {
    for (let s = 0; s < this.cache.capacity; s++) if (this.cache.node[s]! >= 0) this.removeSlot(s, reason);
  }

  /** Binding slot of the node whose home address is at buf[off], or -1 (no string, no allocation). */
  bindingFor(family: 4 | 6, buf: Uint8Array, off: number): number {
    const node = this.nodes.byHomeAddress(family, buf, off);
    return node < 0 ? -1 : this.cache.slotOf(node);
  }

  /** Binding slot for an IPv4 home address given as an unsigned 32-bit number, or -1. */
  bindingForV4(addr: number): number {
    const node = this.nodes.byHomeV4(addr);
    return node < 0 ? -1 : this.cache.slotOf(node);
  }

  /** Every binding with its node's name and home address (`mipdiag -c`; control plane). */
  bindings(now = this.io.clock.now()): NamedBindingRow[] {
    return this.cache.rows(now).map((r) => ({
      ...r,
      name: this.nodes.names[r.node]!,
      homeFamily: this.nodes.homeFamily[r.node] as 4 | 6,
      home: this.nodes.home(r.node).slice(),
    }));
  }
}


function sameBytes(buf: Uint8Array, off: number, b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (buf[off + i] !== b[i]) return false;
  return true;
}

/** True when the `family` address at buf[off] lies in one of `prefixes`. */
export function inPrefixes(prefixes: readonly Prefix[], family: number, buf: Uint8Array, off: number): boolean {
  for (const p of prefixes) {
    if (p.family !== family) continue;
    let bits = p.length;
    let i = 0;
    let ok = true;
    while (bits >= 8) {
      if (buf[off + i] !== p.bytes[i]) {
        ok = false;
        break;
      }
      i++;
      bits -= 8;
    }
    if (ok && bits > 0) {
      const mask = (0xff << (8 - bits)) & 0xff;
      if ((buf[off + i]! & mask) !== (p.bytes[i]! & mask)) ok = false;
    }
    if (ok) return true;
  }
  return false;
}
