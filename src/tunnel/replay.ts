/**
 * Replay protection for control messages (src/wire/gue.ts describes the counter and the keepalive's
 * boot epoch on the wire), the one implementation for keepalives and mobility messages alike: per
 * sender index, the sender's current epoch and the last counter accepted in it (two uint32 halves:
 * exact for the full 64 bits, no BigInt), the last few epochs that sender retired, and optionally
 * a freshness window around our own clock. Grows on demand; no allocation per message.
 *
 * Verdicts, for one sender:
 * - nothing remembered yet: Fresh;
 * - the current epoch: Fresh only when the counter is greater than the last one accepted; equal
 *   is a Duplicate of the last message (mobility answers it with its cached ack), lower is Old;
 * - an epoch retired earlier: Old (a message from before one of the sender's restarts);
 * - any other epoch: the sender restarted. Fresh, whatever its counter: a sender whose clock was
 *   stepped back across its restart starts its counter lower than before, and must not look like
 *   a replay. Accepting it retires the epoch it replaces.
 * - with a window (`windowMs` > 0), a counter further than that from our clock is Stale (after
 *   Old): so after WE restart (nothing remembered), a message captured long ago cannot be
 *   replayed at the new process. Mobility uses it (its messages carry no epoch: pass 0, and the
 *   counter is the sender's clock in microseconds); keepalives do not (their epoch does that job).
 * The retired epochs are a ring of RETIRED_EPOCHS per sender, so a replay of a message captured
 * before more restarts than that is taken once more (for a keepalive it says only "the peer is
 * alive").
 *
 * The caller feeds this state only with messages that authenticated (a MAC with the sender's
 * key): without a key a counter proves nothing, and state a spoofer can move is state a spoofer
 * can poison (src/tunnel/control.ts verifyControl).
 */
export const RETIRED_EPOCHS = 8;

export enum ReplayVerdict {
  /** Newer than anything accepted from this sender (or a new epoch), and inside the window. */
  Fresh = 0,
  /** Equal to the last accepted counter of the current epoch: the same message again. */
  Duplicate = 1,
  /** Older than the last accepted counter, or of a retired epoch (replayed or reordered). */
  Old = 2,
  /** Outside the freshness window around our clock. */
  Stale = 3,
}

const TWO32 = 0x1_0000_0000;

export class ReplayWindow {
  private hi: Uint32Array;
  private lo: Uint32Array;
  private epoch: Uint32Array;
  private seen: Uint8Array;
  /** Retired epochs: RETIRED_EPOCHS per sender, a ring; `retiredCount` of them valid, the next write at `retiredNext`. */
  private retired: Uint32Array;
  private retiredCount: Uint8Array;
  private retiredNext: Uint8Array;

  /**
   * `senders`: initial size (grows on demand). `windowMs`: accept only counters within this many
   * ms of our clock, either side (0 = no window).
   */
  constructor(
    senders = 64,
    readonly windowMs = 0,
  ) {
    this.hi = new Uint32Array(senders);
    this.lo = new Uint32Array(senders);
    this.epoch = new Uint32Array(senders);
    this.seen = new Uint8Array(senders);
    this.retired = new Uint32Array(senders * RETIRED_EPOCHS);
    this.retiredCount = new Uint8Array(senders);
    this.retiredNext = new Uint8Array(senders);
  }

  /** What counter (hi, lo) in epoch `epoch` from sender `i` is (rules above); `nowMs` for the window. */
  check(i: number, epoch: number, hi: number, lo: number, nowMs = 0): ReplayVerdict {
    if (i >= 0 && i < this.seen.length && this.seen[i] !== 0) {
      if (epoch >>> 0 !== this.epoch[i]) {
        if (this.isRetired(i, epoch >>> 0)) return ReplayVerdict.Old;
      } else {
        const h = this.hi[i]!;
        const l = this.lo[i]!;
        if (hi === h && lo === l) return ReplayVerdict.Duplicate;
        if (hi < h || (hi === h && lo < l)) return ReplayVerdict.Old;
      }
    }
    if (this.windowMs > 0) {
      const skewMs = (hi * TWO32 + lo) / 1000 - nowMs;
      if (skewMs > this.windowMs || skewMs < -this.windowMs) return ReplayVerdict.Stale;
    }
    return ReplayVerdict.Fresh;
  }

  /**
   * True when counter (hi, lo) in epoch `epoch` is new for sender `i` (no window). Messages without
   * an epoch (ctypes other than keepalive) pass 0: for them this is the plain counter order.
   */
  isFresh(i: number, epoch: number, hi: number, lo: number): boolean {
    if (i < 0 || i >= this.seen.length || this.seen[i] === 0) return true;
    if (epoch >>> 0 !== this.epoch[i]) return !this.isRetired(i, epoch >>> 0);
    const h = this.hi[i]!;
    return hi > h || (hi === h && lo > this.lo[i]!);
  }

  /** Record an accepted counter (call only after the message authenticated and was found fresh). */
  accept(i: number, epoch: number, hi: number, lo: number): void {
    if (i < 0) return; // not a sender we track: nothing to remember
    if (i >= this.seen.length) this.grow(i + 1);
    epoch >>>= 0;
    if (this.seen[i] === 1 && this.epoch[i] !== epoch) this.retire(i, this.epoch[i]!);
    this.epoch[i] = epoch;
    this.hi[i] = hi;
    this.lo[i] = lo;
    this.seen[i] = 1;
  }

  /** check() for a counter given as one number (exact below 2^53), epoch 0. */
  checkCounter(i: number, counter: number, nowMs = 0): ReplayVerdict {
    return this.check(i, 0, Math.floor(counter / TWO32) >>> 0, counter >>> 0, nowMs);
  }

  /** accept() for a counter given as one number (exact below 2^53), epoch 0. */
  acceptCounter(i: number, counter: number): void {
    this.accept(i, 0, Math.floor(counter / TWO32) >>> 0, counter >>> 0);
  }

  /** The last accepted counter of `i` as a number (-1 = none). */
  lastAccepted(i: number): number {
    if (i < 0 || i >= this.seen.length || this.seen[i] === 0) return -1;
    return this.hi[i]! * TWO32 + this.lo[i]!;
  }

  /** Forget a sender (removed, or its key changed), its retired epochs too. */
  reset(i: number): void {
    if (i < 0 || i >= this.seen.length) return;
    this.seen[i] = 0;
    this.retiredCount[i] = 0;
    this.retiredNext[i] = 0;
  }

  private isRetired(i: number, epoch: number): boolean {
    const base = i * RETIRED_EPOCHS;
    const n = this.retiredCount[i]!;
    for (let k = 0; k < n; k++) if (this.retired[base + k] === epoch) return true;
    return false;
  }

  private retire(i: number, epoch: number): void {
    const k = this.retiredNext[i]!;
    this.retired[i * RETIRED_EPOCHS + k] = epoch;
    this.retiredNext[i] = (k + 1) % RETIRED_EPOCHS;
    if (this.retiredCount[i]! < RETIRED_EPOCHS) this.retiredCount[i]!++;
  }

  private grow(n: number): void {
    const size = Math.max(n, this.seen.length * 2);
    const grow32 = (a: Uint32Array, per: number) => {
      const b = new Uint32Array(size * per);
      b.set(a);
      return b;
    };
    const grow8 = (a: Uint8Array) => {
      const b = new Uint8Array(size);
      b.set(a);
      return b;
    };
    this.hi = grow32(this.hi, 1);
    this.lo = grow32(this.lo, 1);
    this.epoch = grow32(this.epoch, 1);
    this.retired = grow32(this.retired, RETIRED_EPOCHS);
    this.seen = grow8(this.seen);
    this.retiredCount = grow8(this.retiredCount);
    this.retiredNext = grow8(this.retiredNext);
  }
}
