/**
 * Receiving side of the replay counter, per sender index: the last accepted counter and a
 * freshness window around our own clock. The counter is the sender's clock in microseconds (see
 * MessageCounter), so:
 *  - while we remember a sender, only a counter greater than the last accepted one is new
 *    (equal = a duplicate of the last message, which may get its cached answer back);
 *  - after WE restart (nothing remembered), a counter further than `windowMs` from our clock is
 *    refused, so a message captured earlier cannot be replayed at the new process. What remains
 *    is a replay inside the window right after a restart: it re-asserts a binding the node held
 *    moments ago, and the node's next update (greater counter) overrides it.
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

export class CounterWindow {
  /** Last accepted counter per index; -1 = none yet. Exact: counters stay below 2^53. */
  private readonly last: Float64Array;

  constructor(
    size: number,
    /** Accept only counters within this many ms of our clock (either side); 0 = no window. */
    readonly windowMs: number,
  ) {
    this.last = new Float64Array(size).fill(-1);
  }

  check(i: number, counter: number, nowMs: number): ReplayVerdict {
    const last = this.last[i]!;
    if (last >= 0) {
      if (counter === last) return ReplayVerdict.Duplicate;
      if (counter < last) return ReplayVerdict.Old;
    }
    if (this.windowMs > 0) {
      const skewMs = counter / 1000 - nowMs;
      if (skewMs > this.windowMs || skewMs < -this.windowMs) return ReplayVerdict.Stale;
    }
    return ReplayVerdict.Fresh;
  }

  /** Record an accepted counter (only after the message authenticated). */
  accept(i: number, counter: number): void {
    this.last[i] = counter;
  }

  lastAccepted(i: number): number {
    return this.last[i]!;
  }

  forget(i: number): void {
    this.last[i] = -1;
  }
}
