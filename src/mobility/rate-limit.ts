/**
 * Token buckets for many senders in two typed arrays (no object per sender): `take(i, now)`
 * refills bucket i for the time since its last use and spends one token if there is one.
 */
export class TokenBuckets {
  private readonly tokens: Float64Array;
  private readonly last: Float64Array;

  constructor(
    size: number,
    /** Tokens per second; 0 = unlimited. */
    readonly rate: number,
    /** Bucket size (and the initial fill). */
    readonly burst: number,
  ) {
    this.tokens = new Float64Array(size).fill(burst);
    this.last = new Float64Array(size).fill(-1);
  }

  take(i: number, nowMs: number): boolean {
    if (this.rate <= 0) return true;
    const last = this.last[i]!;
    let t = this.tokens[i]!;
    if (last >= 0 && nowMs > last) {
      t += ((nowMs - last) * this.rate) / 1000;
      if (t > this.burst) t = this.burst;
    }
    this.last[i] = nowMs;
    if (t < 1) {
      this.tokens[i] = t;
      return false;
    }
    this.tokens[i] = t - 1;
    return true;
  }
}
