/**
 * Which ICMP errors the endpoint may send, as Linux decides it (net/ipv4/icmp.c
 * icmpv4_global_allow + icmpv4_xrlim_allow; net/ipv6/icmp.c likewise):
 *
 * 1. Exempt types are never limited, by neither bucket: ICMPv4 "fragmentation needed" (3/4) and
 *    ICMPv6 "packet too big" (2) — path MTU discovery must survive any flood, or hosts black-hole
 *    their big packets — and whatever the rate masks leave out (v4 icmp_ratemask 0x1818: only
 *    destination unreachable, source quench, time exceeded and parameter problem are limited;
 *    v6 icmpv6_ratemask 0-1,3-127: every error but packet too big). Linux skips the
 *    per-destination limit for them too (apply_ratelimit stays false), and so do we: those
 *    messages are smaller than the packet that caused them and go only to its source, so they
 *    amplify nothing, and sharing a destination's bucket with its other errors would bring the
 *    black hole back for exactly the host that is also being sent unreachables (a host flooding
 *    unreachable destinations while it probes the path MTU).
 * 2. The global bucket (`rate` per second up to `burst`; Linux icmp_msgs_per_sec 1000 /
 *    icmp_msgs_burst 50) must have a token, else the error is dropped (IcmpRateLimited) — it
 *    protects the endpoint and the tunnel;
 * 3. the per-destination bucket of the error's destination (the offending packet's source) must
 *    have one (1 per second, burst 6: Linux's icmp_ratelimit and XRLIM_BURST_FACTOR), else
 *    dropped (IcmpRateLimitedDestination) — it protects each host from being flooded with errors
 *    (and a flood towards one host from using up everyone's global budget);
 * 4. only an error both allow spends the global token.
 *
 * Differences from Linux, on purpose: the global bucket is spent one token per error (Linux
 * spends a random 0-2 since 2024, against the SADDNS side channel, CVE-2020-25705); IPv6
 * destinations have the same 1 s interval whatever the route to them (Linux shortens it for
 * routes shorter than /128); no loopback exemption (the endpoint has no loopback device).
 */
import { DropReason } from '../base/drop-reason.ts';
import { ICMP_DEST_UNREACHABLE, ICMP_UNREACH_FRAG_NEEDED } from '../wire/icmpv4.ts';
import { ICMPV6_PACKET_TOO_BIG } from '../wire/icmpv6.ts';
import { DestinationBuckets } from './destination-buckets.ts';
import { TokenBucket } from './token-bucket.ts';

/** Linux's default net.ipv4.icmp_ratemask: types 3, 4, 11, 12. */
export const ICMPV4_RATEMASK = 0x1818;

/** True when an ICMP error of this family/type/code is never rate-limited (rule 1 above). */
export function icmpExempt(family: 4 | 6, type: number, code: number): boolean {
  if (family === 4) {
    if (type === ICMP_DEST_UNREACHABLE && code === ICMP_UNREACH_FRAG_NEEDED) return true;
    return type > 31 || ((1 << type) & ICMPV4_RATEMASK) === 0;
  }
  return type === ICMPV6_PACKET_TOO_BIG || type > 127;
}

export interface IcmpRateLimitOptions {
  /** Global: errors per second and bucket size. */
  rate: number;
  burst: number;
  /** Per destination: one error per this many ms (default 1000; 0 = no per-destination limit), bucket size (default 6). */
  perDestinationMs?: number;
  perDestinationBurst?: number;
  /** Destinations remembered (default 8192). */
  destinations?: number;
  /** Clock of the first call (ms). */
  now?: number;
}

export class IcmpRateLimiter {
  readonly global: TokenBucket;
  readonly perDestination: DestinationBuckets;
  /** Refused by the global bucket / by a destination's bucket; exempt errors let through. */
  limitedGlobal = 0;
  limitedDestination = 0;
  exempt = 0;

  constructor(o: IcmpRateLimitOptions) {
    this.global = new TokenBucket(o.rate, o.burst, o.now ?? 0);
    this.perDestination = new DestinationBuckets(o.destinations ?? 8192, o.perDestinationMs ?? 1000, o.perDestinationBurst ?? 6);
  }

  /**
   * May an error of this family/type/code go to the address at buf[dstOff] (4 or 16 bytes) at
   * `now` (ms)? None, or the DropReason to count: IcmpRateLimited (global) or
   * IcmpRateLimitedDestination.
   */
  check(family: 4 | 6, type: number, code: number, buf: Uint8Array, dstOff: number, now: number): DropReason {
    if (icmpExempt(family, type, code)) {
      this.exempt++;
      return DropReason.None;
    }
    if (!this.global.ready(now)) {
      this.limitedGlobal++;
      return DropReason.IcmpRateLimited;
    }
    if (this.perDestination.intervalMs > 0 && !this.perDestination.take(family, buf, dstOff, now)) {
      this.limitedDestination++;
      return DropReason.IcmpRateLimitedDestination;
    }
    this.global.spend();
    return DropReason.None;
  }
}
