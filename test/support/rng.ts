/**
 * A small seeded PRNG (xorshift32) for the fuzzers and property runs: the same seed gives the same
 * packets, so a failure is replayed by its seed. Not for anything secret.
 */
export class Rng {
  private x: number;
  /** `ifZero`: the state a seed of 0 starts from (xorshift's state must not be 0). */
  constructor(seed: number, ifZero = 0x2545f491) {
    this.x = seed >>> 0 || ifZero;
  }
  u32(): number {
    let x = this.x;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.x = x >>> 0;
    return this.x;
  }
  /** 0 .. n-1 (0 when n <= 0). */
  int(n: number): number {
    return n <= 0 ? 0 : this.u32() % n;
  }
  chance(p: number): boolean {
    return this.u32() / 4294967296 < p;
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)]!;
  }
}
