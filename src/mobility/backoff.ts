/**
 * When to retransmit and when to refresh: RFC 6275's schedule with full jitter.
 *
 * Retransmission k (k = 0 after the first transmission) waits a time drawn uniformly between a
 * floor and the bound min(max, initial * 2^k): the "full jitter" of exponential backoff, which
 * spreads a crowd of nodes that lost their home agent at the same moment instead of letting them
 * come back in synchronised waves (RFC 6275: INITIAL_BINDACK_TIMEOUT 1 s, 1.5 s for the first
 * registration (InitialBindackTimeoutFirstReg), MAX_BINDACK_TIMEOUT 32 s). The floor (100 ms by
 * default) keeps a retry from leaving before a round trip could have brought the ack.
 *
 * A binding is refreshed at a random point between 50% and 80% of its granted lifetime, so
 * nodes registered together do not all refresh together either.
 */
import type { RandomSource } from './clock.ts';

export interface BackoffPolicy {
  /** Bound of the first wait, ms (RFC 6275: 1000). */
  initialMs: number;
  /** Bound of the first wait of a first registration, ms (RFC 6275: 1500). */
  firstRegistrationMs: number;
  /** Cap of the bound, ms (RFC 6275: 32000). */
  maxMs: number;
  /** Shortest wait, ms. */
  floorMs: number;
}

export const RFC6275_BACKOFF: Readonly<BackoffPolicy> = Object.freeze({
  initialMs: 1000,
  firstRegistrationMs: 1500,
  maxMs: 32_000,
  floorMs: 100,
});

/** The upper bound of wait number `attempt` (0-based): min(max, initial * 2^attempt). */
export function backoffBound(attempt: number, initialMs: number, maxMs: number): number {
  if (attempt >= 30) return maxMs;
  const b = initialMs * 2 ** attempt;
  return b < maxMs ? b : maxMs;
}

/** Wait number `attempt`: uniform in [floor, bound] (full jitter). */
export function backoffDelay(attempt: number, initialMs: number, p: BackoffPolicy, random: RandomSource): number {
  const bound = backoffBound(attempt, initialMs, p.maxMs);
  const floor = p.floorMs < bound ? p.floorMs : bound;
  return floor + random.next() * (bound - floor);
}

/** When to refresh a binding granted for `lifetimeMs`: uniform in [50%, 80%] of it. */
export function refreshDelay(lifetimeMs: number, random: RandomSource): number {
  return lifetimeMs * (0.5 + 0.3 * random.next());
}

/** After a 130 (insufficient resources) with retry-after R seconds: uniform in [R, 2R] (at least the floor). */
export function retryAfterDelay(retryAfterS: number, p: BackoffPolicy, random: RandomSource): number {
  const r = retryAfterS * 1000;
  return Math.max(p.floorMs, r + random.next() * r);
}
