/**
 * Peer liveness: is a peer up, when was it last heard from and sent to, is a keepalive due.
 *
 * One PeerLiveness per peer, updated in place (plain numbers, no allocation): the pipeline calls
 * heard() for every datagram that passed its checks (data or keepalive) and sent() for every
 * datagram it hands the transport; the endpoint's once-a-second tick asks keepaliveDue() and
 * expire(). The events (peer up, peer down) are the caller's to emit: heard() and expire()
 * return true exactly when the state changed.
 *
 * Rules: a peer is up from the first datagram heard until nothing was heard for deadAfterMs
 * (3 keepalive intervals, at least 5 s; 180 s without keepalives). A keepalive is due when
 * keepalives are configured and nothing at all was sent for one interval.
 */
export class PeerLiveness {
  /** Keepalive interval in ms; 0 = no keepalives (changed only through setKeepalive). */
  keepaliveMs: number;
  /** Epoch ms of the last datagram received from the peer; 0 = never. */
  lastRx = 0;
  /** Epoch ms of the last datagram sent to the peer; 0 = never. */
  lastTx = 0;
  up = false;

  /** `keepaliveSec`: seconds between keepalives, null for none. */
  constructor(keepaliveSec: number | null) {
    this.keepaliveMs = keepaliveSec === null ? 0 : keepaliveSec * 1000;
  }

  /** A new keepalive interval (reload): timing follows at once, up/down and the times stay. */
  setKeepalive(keepaliveSec: number | null): void {
    this.keepaliveMs = keepaliveSec === null ? 0 : keepaliveSec * 1000;
  }

  /** How long without hearing from the peer before it counts as down. */
  get deadAfterMs(): number {
    return this.keepaliveMs > 0 ? Math.max(3 * this.keepaliveMs, 5000) : 180_000;
  }

  /** A datagram from the peer passed its checks at `now`. True when this brought the peer up. */
  heard(now: number): boolean {
    this.lastRx = now;
    if (this.up) return false;
    this.up = true;
    return true;
  }

  /** A datagram to the peer was handed to the transport at `now`. */
  sent(now: number): void {
    this.lastTx = now;
  }

  /**
   * heard() and sent() with the time in clock[0] (epoch ms): for the dataplane, which keeps its
   * clock in a Float64Array so that no call takes the time as an argument (V8 boxes a double
   * passed to a call it did not inline: an allocation per packet).
   */
  heardAt(clock: Float64Array): boolean {
    this.lastRx = clock[0]!;
    if (this.up) return false;
    this.up = true;
    return true;
  }

  sentAt(clock: Float64Array): void {
    this.lastTx = clock[0]!;
  }

  /** True when keepalives are configured and nothing was sent for a whole interval. */
  keepaliveDue(now: number): boolean {
    return this.keepaliveMs > 0 && now - this.lastTx >= this.keepaliveMs;
  }

  /** Take the peer down when nothing was heard for deadAfterMs. True when this took it down. */
  expire(now: number): boolean {
    if (!this.up || now - this.lastRx <= this.deadAfterMs) return false;
    this.up = false;
    return true;
  }
}
