/**
 * Replay protection for control messages (src/wire/gue.ts describes the counter and the keepalive's
 * boot epoch on the wire): per peer index, the sender's current epoch and the last counter
 * accepted in it (two uint32 halves: exact for the full 64 bits, no BigInt), plus the last few
 * epochs that sender retired. Grows on demand; no allocation per message.
 *
 * Rules, for one peer:
 * - nothing remembered yet: fresh;
 * - the current epoch: fresh only when the counter is greater than the last one accepted;
 * - an epoch retired earlier: a replay (a message from before one of the sender's restarts);
 * - any other epoch: the sender restarted. Fresh, whatever its counter: a sender whose clock was
 *   stepped back across its restart starts its counter lower than before, and must not look like
 *   a replay. Accepting it retires the epoch it replaces.
 * The retired epochs are a ring of RETIRED_EPOCHS per peer, so a replay of a message captured
 * before more restarts than that is taken once more (it says only "the peer is alive").
 *
 * The caller feeds this state only with messages that authenticated (a MAC with the peer's key):
 * without a key a counter proves nothing, and state a spoofer can move is state a spoofer can
 * poison (src/tunnel/control.ts verifyControl).
 */
export const RETIRED_EPOCHS = 8;

export class ReplayWindow {
  private hi: Uint32Array;
  private lo: Uint32Array;
  private epoch: Uint32Array;
  private seen: Uint8Array;
  /** Retired epochs: RETIRED_EPOCHS per peer, a ring; `retiredCount` of them valid, the next write at `retiredNext`. */
  private retired: Uint32Array;
  private retiredCount: Uint8Array;
  private retiredNext: Uint8Array;

  constructor(peers = 64) {
    this.hi = new Uint32Array(peers);
    this.lo = new Uint32Array(peers);
    this.epoch = new Uint32Array(peers);
    this.seen = new Uint8Array(peers);
    this.retired = new Uint32Array(peers * RETIRED_EPOCHS);
    this.retiredCount = new Uint8Array(peers);
    this.retiredNext = new Uint8Array(peers);
  }

  /**
   * True when counter (hi, lo) in sender epoch `epoch` is new for `peer` (rules above). Messages
   * without an epoch (ctypes other than keepalive) pass 0: for them this is the plain counter order.
   */
  isFresh(peer: number, epoch: number, hi: number, lo: number): boolean {
    if (peer < 0 || peer >= this.seen.length || this.seen[peer] === 0) return true;
    if (epoch >>> 0 !== this.epoch[peer]) return !this.isRetired(peer, epoch >>> 0);
    const h = this.hi[peer]!;
    return hi > h || (hi === h && lo > this.lo[peer]!);
  }

  /** Record an accepted counter (call only after the message authenticated and isFresh said so). */
  accept(peer: number, epoch: number, hi: number, lo: number): void {
    if (peer < 0) return; // not a peer: nothing to remember
    if (peer >= this.seen.length) this.grow(peer + 1);
    epoch >>>= 0;
    if (this.seen[peer] === 1 && this.epoch[peer] !== epoch) this.retire(peer, this.epoch[peer]!);
    this.epoch[peer] = epoch;
    this.hi[peer] = hi;
    this.lo[peer] = lo;
    this.seen[peer] = 1;
  }

  /** Forget a peer (removed, or its key changed), its retired epochs too. */
  reset(peer: number): void {
    if (peer >= this.seen.length) return;
    this.seen[peer] = 0;
    this.retiredCount[peer] = 0;
    this.retiredNext[peer] = 0;
  }

  private isRetired(peer: number, epoch: number): boolean {
    const base = peer * RETIRED_EPOCHS;
    const n = this.retiredCount[peer]!;
    for (let i = 0; i < n; i++) if (this.retired[base + i] === epoch) return true;
    return false;
  }

  private retire(peer: number, epoch: number): void {
    const i = this.retiredNext[peer]!;
    this.retired[peer * RETIRED_EPOCHS + i] = epoch;
    this.retiredNext[peer] = (i + 1) % RETIRED_EPOCHS;
    if (this.retiredCount[peer]! < RETIRED_EPOCHS) this.retiredCount[peer]!++;
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
