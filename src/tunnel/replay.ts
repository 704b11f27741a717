/**
 * Replay protection for control messages (src/wire/gue.ts describes the counter on the wire):
 * the last accepted counter per peer index, as two uint32 halves (exact for the full 64 bits, no
 * BigInt). A message whose counter is not greater than the last one accepted from its peer is
 * a replay. Grows on demand; no allocation per message.
 */
export class ReplayWindow {
  private hi: Uint32Array;
  private lo: Uint32Array;
  private seen: Uint8Array;

  constructor(peers = 64) {
    this.hi = new Uint32Array(peers);
    this.lo = new Uint32Array(peers);
    this.seen = new Uint8Array(peers);
  }

  /** True when (hi, lo) is greater than the last accepted counter of `peer` (or none yet). */
  isFresh(peer: number, hi: number, lo: number): boolean {
    if (peer < 0 || peer >= this.seen.length || this.seen[peer] === 0) return true;
    const h = this.hi[peer]!;
    return hi > h || (hi === h && lo > this.lo[peer]!);
  }

  /** Record an accepted counter (call only after the message authenticated). */
  accept(peer: number, hi: number, lo: number): void {
    if (peer < 0) return; // not a peer: nothing to remember
    if (peer >= this.seen.length) this.grow(peer + 1);
    this.hi[peer] = hi;
    this.lo[peer] = lo;
    this.seen[peer] = 1;
  }

  /** Forget a peer (removed, or its key changed). */
  reset(peer: number): void {
    if (peer < this.seen.length) this.seen[peer] = 0;
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
