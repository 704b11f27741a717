/**
 * ICMP / ICMPv6 errors the endpoint originates (no route, fragmentation needed / packet too big,
 * time exceeded): built into a pool buffer quoting the offending packet, with the RFC rules of
 * when not to answer (wire/icmpv4 mayReplyWithIcmpError, wire/icmpv6-error
 * mayReplyWithIcmpv6Error), then rate-limited as Linux does (RFC 4443 2.4(f), RFC 1812 4.3.2.8):
 * a global bucket and one per destination, fragmentation needed / packet too big exempt from
 * both (icmp-rate-limit.ts).
 */
import { DropReason, type DropCounters } from '../base/drop-reason.ts';
import type { PacketBuffer, PacketPools } from '../base/pool.ts';
import { buildIcmpv4Error, mayReplyWithIcmpError } from '../wire/icmpv4.ts';
import { buildIcmpv6Error, mayReplyWithIcmpv6Error } from '../wire/icmpv6-error.ts';
import { IPV6_MIN_MTU } from '../wire/ip.ts';
import { IPV4_SRC } from '../wire/ipv4.ts';
import { IPV6_SRC } from '../wire/ipv6.ts';
import type { IcmpRateLimiter } from './icmp-rate-limit.ts';

/** Largest ICMP error either family builds: IPv6 minimum MTU. */
const ERROR_ROOM = IPV6_MIN_MTU;

export class IcmpSender {
  /** Errors built (handed back for sending). */
  sent = 0;
  /** Our IPv4 source for errors (uint32; 0 = none configured). */
  srcV4 = 0;
  /** Our IPv6 source for errors (16 bytes; null = none configured). */
  srcV6: Uint8Array | null = null;

  constructor(
    private readonly pools: PacketPools,
    private readonly limiter: IcmpRateLimiter,
    private readonly drops: DropCounters,
    private readonly now: () => number,
  ) {}

  /**
   * Build an error about the packet at buf[off, off+len): v4 `type`/`code`/`param` (MTU for
   * fragmentation needed, pointer for parameter problem) or the ICMPv6 equivalent for family 6.
   * Returns a new PacketBuffer the caller owns, or null when no error may or can be sent
   * (not allowed by the RFC rules; rate-limited: counted as IcmpRateLimited or
   * IcmpRateLimitedDestination; no source address; pool empty).
   */
  build(family: 4 | 6, type: number, code: number, param: number, buf: Uint8Array, off: number, len: number): PacketBuffer | null {
    if (family === 4) {
      if (this.srcV4 === 0 || !mayReplyWithIcmpError(buf, off, len)) return null;
    } else if (this.srcV6 === null || !mayReplyWithIcmpv6Error(buf, off, len, type, code, param)) {
      return null;
    }
    // the error goes to the offending packet's source
    const r = this.limiter.check(family, type, code, buf, off + (family === 4 ? IPV4_SRC : IPV6_SRC), this.now());
    if (r !== DropReason.None) {
      this.drops.count(r);
      return null;
    }
    const q = this.pools.acquire(ERROR_ROOM);
    if (q === null) {
      this.drops.count(DropReason.PoolExhausted);
      return null;
    }
    const out = q.buf.subarray(0, q.offset + ERROR_ROOM);
    const n =
      family === 4
        ? buildIcmpv4Error(out, q.offset, type, code, param, buf, off, len, this.srcV4)
        : buildIcmpv6Error(out, q.offset, type, code, param, buf, off, len, this.srcV6!, 0);
    if (n === 0) {
      q.release();
      return null;
    }
    q.length = n;
    this.sent++;
    return q;
  }
}
