/**
 * Time and randomness as inputs. Every mobility state machine reads the time and draws random
 * numbers only through these two interfaces, so tests drive them with a fake clock and a seeded
 * source and get the same run every time.
 */
import { randomFillSync } from 'node:crypto';

/** Milliseconds since 1970. A wall clock: replay counters derived from it are compared across hosts. */
export interface Clock {
  now(): number;
}

export interface RandomSource {
  /** Uniform in [0, 1). */
  next(): number;
  /** Fill out[off, off+len) with random bytes (path-challenge data: unpredictable in production). */
  fill(out: Uint8Array, off: number, len: number): void;
}

export const systemClock: Clock = { now: () => Date.now() };

export const systemRandom: RandomSource = {
  next: () => Math.random(),
  fill: (out, off, len) => {
    randomFillSync(out, off, len);
  },
};

/** A deterministic source (splitmix32): for tests, benchmarks and simulations, never for challenges on the wire. */
export class SeededRandom implements RandomSource {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  private u32(): number {
    this.s = (this.s + 0x9e3779b9) >>> 0;
    let z = this.s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  }
  next(): number {
    return this.u32() / 0x1_0000_0000;
  }
  fill(out: Uint8Array, off: number, len: number): void {
    for (let i = 0; i < len; i++) out[off + i] = this.u32() & 0xff;
  }
}
