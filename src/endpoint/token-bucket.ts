/**
 * Token bucket for rate-limiting ICMP errors (RFC 4443 2.4(f), RFC 1812 4.3.2.8): `rate` tokens
 * per second up to `burst`. Time comes from the caller (ms) so the hot path makes no clock call
 * per packet and tests need no timers.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  /** Requests refused since creation. */
  limited = 0;

  constructor(
    readonly rate: number,
    readonly burst: number,
    now = 0,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  /** Take one token if available. */
  take(now: number): boolean {
    if (this.ready(now)) {
      this.tokens -= 1;
      return true;
    }
    this.limited++;
    return false;
  }

  /** Refill for the time since the last call; true when a token is there (not taken: spend()). */
  ready(now: number): boolean {
    if (now > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.rate) / 1000);
      this.last = now;
    }
    return this.tokens >= 1;
  }

  /** Spend the token ready() found. */
  spend(): void {
    this.tokens -= 1;
  }
}
