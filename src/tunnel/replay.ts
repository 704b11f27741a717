/**
 * Replay protection for control messages (src/wire/gue.ts describes the counter on the wire), the
 * one implementation for keepalives and mobility messages alike: per sender index, the last
 * accepted 64-bit counter as two uint32 halves (exact for the full 64 bits, no BigInt), and
 * optionally a freshness window around our own clock.
 *
 * The counter is the sender's clock in microseconds, +1 per message (ControlCounter), so:
 *  - while we remember a sender, only a counter greater than the last accepted one is new;
 *    equal is a Duplicate of the last message (mobility answers it with its cached ack), lower is
 *    Old (replayed or reordered);
 *  - after WE restart (nothing remembered), a counter further than `windowMs` from our clock is
 *    Stale, so a message captured long ago cannot be replayed at the new process. What remains
 *    is a replay inside the window right after a restart; the sender's next message (greater
 *    counter) overrides whatever it re-asserted.
 * Grows on demand; no allocation per message.
 */

export enum ReplayVerdict {
  /** Newer than anything accepted from this sender, and inside the window. */
  Fresh = 0,
  /** Equal to the last accepted counter: the same message again. */
  Duplicate = 1,
  /** Older than the last accepted counter (replayed or reordered). */
  Old = 2,
  /** Outside the freshness window around our clock. */
  Stale = 3,
}

const TWO32 = 0x1_0000_0000;

export class ReplayWindow {
  private hi: Uint32Array;
  private lo: Uint32Array;
  private seen: Uint8Array;

  /**
   * `senders`: initial size (grows on demand). `windowMs`: accept only counters within this many
   * ms of our clock, either side (0 = no window: keepalives, whose peers are pinned by address).
   */
  constructor(
    senders = 64,
    readonly windowMs = 0,
  ) {
    this.hi = new Uint32Array(senders);
    this.lo = new Uint32Array(senders);
    this.seen = new Uint8Array(senders);
  }

  /** What counter (hi, lo) from sender `i` is, at our clock `nowMs` (used only with a window). */
  check(i: number, hi: number, lo: number, nowMs = 0): ReplayVerdict {
    if (i >= 0 && i < this.seen.length && this.seen[i] !== 0) {
      const h = this.hi[i]!;
      const l = this.lo[i]!;
      if (hi === h && lo === l) return ReplayVerdict.Duplicate;
      if (hi < h || (hi === h && lo < l)) return ReplayVerdict.Old;
    }
    if (this.windowMs > 0) {
      const skewMs = (hi * TWO32 + lo) / 1000 - nowMs;
      if (skewMs > this.windowMs || skewMs < -this.windowMs) return ReplayVerdict.Stale;
    }
    return ReplayVerdict.Fresh;
  }

  /** check() for a counter given as one number (exact below 2^53). */
  checkCounter(i: number, counter: number, nowMs = 0): ReplayVerdict {
    return this.check(i, Math.floor(counter / TWO32) >>> 0, counter >>> 0, nowMs);
  }

  /** True when (hi, lo) is greater than the last accepted counter of `i` (or none yet); no window. */
  isFresh(i: number, hi: number, lo: number): boolean {
    if (i < 0 || i >= this.seen.length || this.seen[i] === 0) return true;
    const h = this.hi[i]!;
    return hi > h || (hi === h && lo > this.lo[i]!);
  }

  /** Record an accepted counter (call only after the message authenticated). */
  accept(i: number, hi: number, lo: number): void {
    if (i < 0) return; // not a sender we track: nothing to remember
    if (i >= this.seen.length) this.grow(i + 1);
    this.hi[i] = hi;
    this.lo[i] = lo;
    this.seen[i] = 1;
  }

  /** accept() for a counter given as one number (exact below 2^53). */
  acceptCounter(i: number, counter: number): void {
    this.accept(i, Math.floor(counter / TWO32) >>> 0, counter >>> 0);
  }

  /** The last accepted counter of `i` as a number (-1 = none). */
  lastAccepted(i: number): number {
    if (i < 0 || i >= this.seen.length || this.seen[i] === 0) return -1;
    return this.hi[i]! * TWO32 + this.lo[i]!;
  }

  /** Forget a sender (removed, or its key changed). */
  reset(i: number): void {
    if (i >= 0 && i < this.seen.length) this.seen[i] = 0;
  }

  private grow(n: number): void {
    const size = Math.max(n, this.seen.length * 2);
    const hi = new Uint32Array(size);
    const lo = new Uint32Array(size);
    const seen = new Uint8Array(size);
    hi.set(this.hi);
    lo.set(this.lo);
    seen.set(this.seen);
    this.hi = hi;
    this.lo = lo;
    this.seen = seen;
  }
}
