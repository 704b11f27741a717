/**
 * Per-destination token buckets for ICMP errors, after Linux's inet_peer rate limit
 * (inet_peer_xrlim_allow): each destination address earns one token per `intervalMs` up to
 * `burst` tokens (Linux: icmp_ratelimit / icmpv6 ratelimit 1000 ms, XRLIM_BURST_FACTOR 6), and a
 * destination seen for the first time starts with a full bucket.
 *
 * Bounded: a fixed set-associative table (`capacity` entries in sets of WAYS), typed arrays only,
 * no allocation per lookup. A new destination takes an empty way of its set, else the way used
 * longest ago. Evicting an entry whose bucket has refilled loses nothing (a new entry starts
 * full too); evicting one that is still drained hands that destination a fresh burst early, which
 * the global bucket in front of this table still caps (see icmp-rate-limit.ts). Linux's inet_peer
 * store likewise forgets idle peers under pressure.
 */
export const WAYS = 8;

export class DestinationBuckets {
  /** Address words per entry (IPv4: word 0; IPv6: words 0-3). */
  private readonly key: Uint32Array;
  /** 0 = empty, 4 or 6. */
  private readonly fam: Uint8Array;
  /** Tokens in ms of credit (one message costs intervalMs), and the time of the last use (ms). */
  private readonly credit: Float64Array;
  private readonly last: Float64Array;
  private readonly setMask: number;
  private readonly maxCredit: number;
  /** Entries evicted while their bucket was not yet full again. */
  evictedEarly = 0;
  /** Random per table: which addresses share a set cannot be chosen from outside. */
  private readonly seed = (Math.random() * 0x1_0000_0000) >>> 0;

  constructor(
    /** Entries (rounded up to a power of two, at least WAYS). */
    capacity = 8192,
    /** One token per this many ms. */
    readonly intervalMs = 1000,
    /** Bucket size in tokens. */
    readonly burst = 6,
  ) {
    let n = WAYS;
    while (n < capacity) n *= 2;
    this.key = new Uint32Array(n * 4);
    this.fam = new Uint8Array(n);
    this.credit = new Float64Array(n);
    this.last = new Float64Array(n);
    this.setMask = n / WAYS - 1;
    this.maxCredit = burst * intervalMs;
  }

  get capacity(): number {
    return this.fam.length;
  }

  /** Entries in use. */
  get size(): number {
    let s = 0;
    for (let i = 0; i < this.fam.length; i++) if (this.fam[i] !== 0) s++;
    return s;
  }

  /**
   * Take a token for the destination address at buf[off] (4 bytes for family 4, 16 for 6) at
   * `now` (ms); false when its bucket is empty.
   */
  take(family: 4 | 6, buf: Uint8Array, off: number, now: number): boolean {
    const w0 = word(buf, off);
    const w1 = family === 6 ? word(buf, off + 4) : 0;
    const w2 = family === 6 ? word(buf, off + 8) : 0;
    const w3 = family === 6 ? word(buf, off + 12) : 0;
    const base = (hash(family ^ this.seed, w0, w1, w2, w3) & this.setMask) * WAYS;
    const key = this.key;
    const fam = this.fam;
    let e = -1;
    let victim = base;
    for (let i = base; i < base + WAYS; i++) {
      const f = fam[i]!;
      if (f === family && key[4 * i] === w0 && key[4 * i + 1] === w1 && key[4 * i + 2] === w2 && key[4 * i + 3] === w3) {
        e = i;
        break;
      }
      // victim: an empty way, else the least recently used
      if (fam[victim] !== 0 && (f === 0 || this.last[i]! < this.last[victim]!)) victim = i;
    }
    if (e < 0) {
      e = victim;
      if (fam[e] !== 0 && this.credit[e]! + (now - this.last[e]!) < this.maxCredit) this.evictedEarly++;
      fam[e] = family;
      key[4 * e] = w0;
      key[4 * e + 1] = w1;
      key[4 * e + 2] = w2;
      key[4 * e + 3] = w3;
      this.credit[e] = this.maxCredit;
      this.last[e] = now;
    }
    // inet_peer_xrlim_allow: credit grows with the time since the last use, capped at the burst
    let c = this.credit[e]! + (now > this.last[e]! ? now - this.last[e]! : 0);
    if (c > this.maxCredit) c = this.maxCredit;
    this.last[e] = now;
    const ok = c >= this.intervalMs;
    this.credit[e] = ok ? c - this.intervalMs : c;
    return ok;
  }

  clear(): void {
    this.fam.fill(0);
  }
}

function word(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

/** murmur3-style mix of the address words (spreads neighbouring addresses over the sets). */
function hash(f: number, w0: number, w1: number, w2: number, w3: number): number {
  let h = Math.imul(f, 0x9e3779b1);
  h = mix(h, w0);
  h = mix(h, w1);
  h = mix(h, w2);
  h = mix(h, w3);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  h ^= Math.imul(k, 0x1b873593);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}
