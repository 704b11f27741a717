/**
 * Route optimisation, correspondent side: an ipferry endpoint that talks to a mobile node's home
 * address may learn the node's care-of address from the node itself (a binding update with H
 * clear and R set, signed with the key this correspondent shares with that node) and send there
 * directly instead of through the home agent (no triangle routing). Off by default, per node
 * (`routeOptimisation` in the node's spec); a node without it gets 129.
 *
 * A learned care-of is not used before the path is validated, QUIC style: a PATH_CHALLENGE with
 * 8 random bytes, padded to `probeSize` (so it also proves the path carries packets that big),
 * must come back as a PATH_RESPONSE with the same bytes, signed, from that same address:port
 * (1 RTT). Until then everything goes through the home agent, and at most `amplification` (3)
 * times the bytes received from the address are sent to it (challenges included), so a forged
 * or mistaken care-of cannot turn us into an amplifier. The node pads its updates (its `padTo`)
 * to earn the budget for a full-size probe.
 *
 * Per node:   off --accepted BU (R)--> validating --response--> direct
 *                                       |  retry 1 s, 2 s, .. x attempts   |
 *             off <--no response-------+       expiry / deregistration /   |
 *             (home agent again)               pathFailed() / a move ------+--> off or validating
 * Hooks: `direct(node)` when sending to the care-of may start, `viaHomeAgent(node, why)` when
 * it must stop. The data path asks `isDirect(node)` (O(1), no allocation).
 */
import { DropReason } from '../base/drop-reason.ts';
import {
  BindingStatus,
  CTYPE_PATH_RESPONSE,
  PATH_DATA_LEN,
  PathProbe,
  emitPathProbe,
  pathPaddingFor,
  pathProbeLength,
  type BindingUpdate,
  type SocketAddress,
} from '../wire/binding.ts';
import { ControlMessage } from '../wire/gue.ts';
import { MobilityVerdict, type MobilityIo } from './io.ts';
import { BindingRegistrar, type RegistrarHooks, type RegistrarOptions, type RemoveReason } from './registrar.ts';
import { ReplayVerdict } from '../tunnel/replay.ts';
import { MobilityCounter as C } from './stats.ts';

export enum PathState {
  /** Not validated: traffic goes through the home agent. */
  Off = 0,
  Validating = 1,
  /** Validated: traffic may go to the care-of directly. */
  Direct = 2,
}

export type FallbackReason = RemoveReason | 'path-failed' | 'moved';

export interface CorrespondentOptions extends RegistrarOptions {
  /** Bytes of UDP payload a challenge is padded to (default 1200). */
  probeSize?: number;
  /** Challenges sent before the path counts as failed (default 3). */
  challengeAttempts?: number;
  /** Wait for the first response, ms, doubling per attempt (default 1000). */
  challengeTimeoutMs?: number;
  /** Before validation, send at most this many times the bytes received from the address (default 3). */
  amplification?: number;
}

export interface CorrespondentHooks extends RegistrarHooks {
  /** The path to `node`'s care-of (cache.careOf(slot)) is validated: send there directly. */
  direct?(node: number, slot: number): void;
  /** Stop sending to `node`'s care-of directly: through the home agent again. */
  viaHomeAgent?(node: number, reason: FallbackReason): void;
}

export class Correspondent extends BindingRegistrar {
  readonly probeSize: number;
  private readonly attempts: number;
  private readonly timeoutMs: number;
  private readonly amplification: number;
  private readonly state: Uint8Array;
  private readonly pending: Uint8Array;
  private readonly data: Uint8Array;
  private readonly tries: Uint8Array;
  private readonly nextAt: Float64Array;
  private readonly received: Float64Array;
  private readonly sent: Float64Array;
  /** Size of the challenge that validated the path (bytes of UDP payload). */
  readonly probedSize: Uint32Array;
  private readonly outer: CorrespondentHooks;
  private readonly probeOut: Buffer;
  private readonly msg2 = new ControlMessage(Buffer.alloc(0), 0, 0);
  private readonly probe = new PathProbe();

  constructor(opts: CorrespondentOptions, io: MobilityIo, hooks: CorrespondentHooks = {}) {
    const inner: RegistrarHooks = {};
    super(opts, io, inner);
    this.outer = hooks;
    inner.bindingAdded = (node, slot) => {
      this.beginValidation(node);
      hooks.bindingAdded?.(node, slot);
    };
    inner.careOfChanged = (node, slot) => {
      if (this.state[node] === PathState.Direct) hooks.viaHomeAgent?.(node, 'moved');
      this.beginValidation(node);
      hooks.careOfChanged?.(node, slot);
    };
    inner.bindingRemoved = (node, slot, reason) => {
      this.stop(node, reason);
      hooks.bindingRemoved?.(node, slot, reason);
    };
    const n = this.nodes.count;
    this.probeSize = opts.probeSize ?? 1200;
    this.attempts = opts.challengeAttempts ?? 3;
    this.timeoutMs = opts.challengeTimeoutMs ?? 1000;
    this.amplification = opts.amplification ?? 3;
    this.state = new Uint8Array(n);
    this.pending = new Uint8Array(n);
    this.data = new Uint8Array(n * PATH_DATA_LEN);
    this.tries = new Uint8Array(n);
    this.nextAt = new Float64Array(n).fill(Infinity);
    this.received = new Float64Array(n);
    this.sent = new Float64Array(n);
    this.probedSize = new Uint32Array(n);
    this.probeOut = Buffer.alloc(Math.max(this.probeSize, 256));
  }

  protected admit(node: number, bu: BindingUpdate): BindingStatus {
    if (bu.homeRegistration) return BindingStatus.HomeRegistrationNotSupported;
    if (this.nodes.routeOptimisation[node] !== 1 || !bu.routeOptimisation) return BindingStatus.AdministrativelyProhibited;
    if (!this.nodes.homeEquals(node, bu.homeFamily, bu.buf, bu.homeOffset)) return BindingStatus.Unspecified;
    return BindingStatus.Accepted;
  }

  /** A BINDING_UPDATE from a mobile node: the registrar's checks, then path validation. */
  override handleUpdate(buf: Buffer, off: number, len: number, from: SocketAddress): MobilityVerdict {
    const v = super.handleUpdate(buf, off, len, from);
    const node = this.lastNode;
    if (v !== MobilityVerdict.Accepted || node < 0) return v;
    const slot = this.cache.slotOf(node);
    if (slot < 0) return v;
    if (this.fromCareOf(slot, from)) this.received[node]! += len;
    // a refresh after a failed validation tries again
    if (this.state[node] === PathState.Off && this.pending[node] === 0) this.beginValidation(node);
    if (this.pending[node] === 1) this.sendChallenge(node, this.io.clock.now());
    return v;
  }

  /** Handle a PATH_RESPONSE datagram from `from`. */
  handleResponse(buf: Buffer, off: number, len: number, from: SocketAddress): MobilityVerdict {
    const st = this.stats;
    const m = this.msg2.wrap(buf, off, len);
    if (m.check() !== DropReason.None || m.ctype !== CTYPE_PATH_RESPONSE) {
      st.inc(C.NPathDropInvalid);
      return MobilityVerdict.DropInvalid;
    }
    const p = this.probe.wrap(buf, m.bodyOffset, m.bodyLength);
    if (p.check() !== DropReason.None) {
      st.inc(C.NPathDropInvalid);
      return MobilityVerdict.DropInvalid;
    }
    st.inc(C.NPathResponsesRcvd);
    const node = m.hasMac ? this.nodes.authenticate(buf, off, len, m.senderId) : -1;
    if (node < 0) {
      st.inc(C.NPathDropAuth);
      return MobilityVerdict.DropAuth;
    }
    const now = this.io.clock.now();
    const rv = this.acceptCounter(node, m.counterHi, m.counterLo, now);
    if (rv !== ReplayVerdict.Fresh) {
      st.inc(C.NPathDropAuth);
      return rv === ReplayVerdict.Stale ? MobilityVerdict.DropStale : MobilityVerdict.DropReplay;
    }
    const slot = this.cache.slotOf(node);
    if (slot < 0 || this.state[node] !== PathState.Validating || !this.fromCareOf(slot, from) || !p.dataEquals(this.data, node * PATH_DATA_LEN)) {
      st.inc(C.NPathDropMisc);
      return MobilityVerdict.DropUnexpected;
    }
    this.received[node]! += len;
    this.state[node] = PathState.Direct;
    this.nextAt[node] = Infinity;
    st.inc(C.NPathValidated);
    this.outer.direct?.(node, slot);
    return MobilityVerdict.Accepted;
  }

  /** The data path: may traffic for `node` go to its care-of directly? */
  isDirect(node: number): boolean {
    return this.state[node] === PathState.Direct;
  }

  pathState(node: number): PathState {
    return this.state[node] as PathState;
  }

  /** Bytes arrived from `node`'s care-of (data included): raises the pre-validation budget. */
  noteReceived(node: number, len: number): void {
    this.received[node]! += len;
  }

  /**
   * May `len` more bytes go to `node`'s care-of now? Always once validated; before, only within
   * `amplification` x the bytes received from it (counted as sent when true).
   */
  allowToCareOf(node: number, len: number): boolean {
    if (this.state[node] === PathState.Direct) return true;
    if (this.sent[node]! + len > this.amplification * this.received[node]!) {
      this.stats.inc(C.NAmplificationLimited);
      return false;
    }
    this.sent[node]! += len;
    return true;
  }

  /** Sending to the care-of failed, or nothing comes back from it: home agent again, validate anew. */
  pathFailed(node: number): void {
    if (this.state[node] === PathState.Off) return;
    if (this.state[node] === PathState.Direct) this.outer.viaHomeAgent?.(node, 'path-failed');
    this.stats.inc(C.NPathFailed);
    // the same address, validated before: what it sent us still counts toward the budget
    const received = this.received[node]!;
    this.beginValidation(node);
    this.received[node] = received;
    this.sendChallenge(node, this.io.clock.now());
  }

  /** Challenges due and bindings expired; returns when to call again (Infinity = only events). */
  tick(): number {
    const now = this.io.clock.now();
    let next = this.expire(now);
    for (let node = 0; node < this.nodes.count; node++) {
      const t = this.nextAt[node]!;
      if (t <= now) {
        if (this.tries[node]! >= this.attempts) {
          this.state[node] = PathState.Off;
          this.nextAt[node] = Infinity;
          this.stats.inc(C.NPathFailed);
          this.outer.viaHomeAgent?.(node, 'path-failed');
          continue;
        }
        this.sendChallenge(node, now);
      }
      if (this.nextAt[node]! < next) next = this.nextAt[node]!;
    }
    return next;
  }

  private beginValidation(node: number): void {
    this.state[node] = PathState.Validating;
    this.pending[node] = 1;
    this.tries[node] = 0;
    this.received[node] = 0;
    this.sent[node] = 0;
    this.probedSize[node] = 0;
    this.nextAt[node] = Infinity;
    this.io.random.fill(this.data, node * PATH_DATA_LEN, PATH_DATA_LEN);
  }

  private stop(node: number, reason: FallbackReason): void {
    const was = this.state[node];
    this.state[node] = PathState.Off;
    this.pending[node] = 0;
    this.nextAt[node] = Infinity;
    if (was === PathState.Direct) this.outer.viaHomeAgent?.(node, reason);
  }

  /** Send (or resend) the challenge, as big as probeSize and the budget allow. */
  private sendChallenge(node: number, now: number): void {
    const slot = this.cache.slotOf(node);
    if (slot < 0) return;
    const fam = this.nodes.homeFamily[node] as 4 | 6;
    const home = this.nodes.home(node);
    const r = { data: this.data.subarray(node * PATH_DATA_LEN, (node + 1) * PATH_DATA_LEN), homeFamily: fam, home, padding: 0 };
    const bare = pathProbeLength(r);
    const budget = this.amplification * this.received[node]! - this.sent[node]!;
    const size = Math.min(this.probeSize, budget);
    this.pending[node] = 0;
    this.tries[node]!++;
    this.nextAt[node] = now + this.timeoutMs * 2 ** (this.tries[node]! - 1);
    if (size < bare) {
      this.stats.inc(C.NAmplificationLimited);
      return; // wait for more bytes from the node (its next update) or the timer
    }
    r.padding = pathPaddingFor(size, fam);
    const len = emitPathProbe(this.probeOut, 0, false, { senderId: this.senderId, counter: this.counter.next() }, r, this.nodes.keys[node]!);
    this.sent[node]! += len;
    this.probedSize[node] = len;
    this.stats.inc(C.NPathChallengesSent);
    this.io.sender.send(this.probeOut, 0, len, this.cache.careOf(slot));
  }

  private fromCareOf(slot: number, from: SocketAddress): boolean {
    const c = this.cache;
    if (c.careOfFamily[slot] !== from.family || c.careOfPort[slot] !== from.port) return false;
    const b = slot * 16;
    for (let i = 0; i < from.bytes.length; i++) if (c.careOfBytes[b + i] !== from.bytes[i]) return false;
    return true;
  }
}
