/**
 * The rate limit on the data plane's events (authentication failures, unknown sources, packets
 * too big, drops at debug level): a flood must not flood the log.
 *
 * Per (kind, key) — key = a peer index, a source's hash, a drop reason and peer — the first
 * occurrence is reported at once; later ones within `intervalMs` are only counted, and reported
 * as one line with their count when the interval is over: either with the next occurrence after
 * it, or by flush() (called about once a second) for a key that went quiet. On top, a token
 * bucket bounds the lines of all keys together (many sources at once, a spoofed flood); what it
 * holds back is counted and reported by flush() as one 'events-suppressed' line.
 *
 * Cost: nothing at all where no event happens (the pipeline calls hit() only on the rare paths
 * above); per occurrence a hash and a few typed-array reads, no allocation. Only a line that is
 * let through allocates (the event object).
 *
 * Slots: a fixed table of SLOTS entries, open addressing over PROBES slots from the hash of
 * (kind, key). A key that finds neither itself nor a free slot there takes over the one used
 * longest ago (after reporting what it had pending), so memory stays fixed whatever the flood;
 * the token bucket still bounds the lines.
 */
import type { DataPlaneEvent } from './dataplane.ts';

const SLOTS = 1024;
const PROBES = 8;

export interface EventGateOptions {
  /** At most one line per (kind, key) per this many ms (default 10 s). */
  intervalMs?: number;
  /** Lines of all keys together: bucket size (default 20) and refill per second (default 2). */
  burst?: number;
  perSecond?: number;
  /** Where lines go (the pipeline's onEvent). */
  emit: (e: DataPlaneEvent) => void;
}

export class EventGate {
  readonly intervalMs: number;
  private readonly burst: number;
  private readonly perMs: number;
  /** Per slot: the (kind, key) it holds (NaN: free), when its next line may go, occurrences not yet reported, when its last line went. */
  private readonly slotKey = new Float64Array(SLOTS).fill(Number.NaN);
  private readonly nextAt = new Float64Array(SLOTS);
  private readonly pending = new Float64Array(SLOTS);
  private readonly lastAt = new Float64Array(SLOTS);
  /** The last line of each slot (for its summary). */
  private readonly last: (DataPlaneEvent | null)[] = new Array<DataPlaneEvent | null>(SLOTS).fill(null);
  private tokens: number;
  private tokensAt = 0;
  /** Occurrences the token bucket held back since the last 'events-suppressed' line. */
  private suppressed = 0;
  private suppressedSince = 0;
  /** The slot and count of the line hit() let through (read by line()). */
  private slot = 0;
  private count = 0;
  private period = 0;
  private readonly emitFn: (e: DataPlaneEvent) => void;

  constructor(opts: EventGateOptions) {
    this.intervalMs = opts.intervalMs ?? 10_000;
    this.burst = opts.burst ?? 20;
    this.perMs = (opts.perSecond ?? 2) / 1000;
    this.tokens = this.burst;
    this.emitFn = opts.emit;
  }

  /**
   * One occurrence of (kind, key) at `now` (epoch ms). True: report it now, with line(); false:
   * it was counted and will be reported later with its count.
   */
  hit(kind: number, key: number, now: number): boolean {
    const k = kind * 4294967296 + (key >>> 0);
    const h = this.slotOf(k, kind, key, now);
    if (now < this.nextAt[h]!) {
      this.pending[h]!++;
      return false;
    }
    if (!this.take(now)) {
      this.pending[h]!++;
      if (this.suppressed++ === 0) this.suppressedSince = now;
      return false;
    }
    this.slot = h;
    this.count = this.pending[h]! + 1;
    this.period = this.last[h] === null ? 0 : now - this.lastAt[h]!;
    this.pending[h] = 0;
    this.nextAt[h] = now + this.intervalMs;
    this.lastAt[h] = now;
    return true;
  }

  /** The slot of key k: where it is, else a free one, else the one used longest ago (taken over). */
  private slotOf(k: number, kind: number, key: number, now: number): number {
    // murmur3's finalizer over the key and the kind
    let x = Math.imul((key ^ Math.imul(kind, 0x27d4eb2d)) >>> 0, 0x85ebca6b);
    x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
    let h = (x ^ (x >>> 16)) & (SLOTS - 1);
    let victim = h;
    let oldest = Infinity;
    for (let probe = 0; probe < PROBES; probe++, h = (h + 1) & (SLOTS - 1)) {
      const sk = this.slotKey[h]!;
      if (sk === k) return h;
      if (sk !== sk) {
        // free (NaN): slots are never freed, so the key is not further on
        victim = h;
        break;
      }
      if (this.lastAt[h]! < oldest) {
        oldest = this.lastAt[h]!;
        victim = h;
      }
    }
    // a new key: what the slot's previous key had pending goes out first
    if (this.pending[victim]! > 0) this.flushSlot(victim, now);
    this.slotKey[victim] = k;
    this.nextAt[victim] = 0;
    this.pending[victim] = 0;
    this.lastAt[victim] = now;
    this.last[victim] = null;
    return victim;
  }

  /** After hit() returned true: fill in count and period, remember `e` for the summary, emit it. */
  line(e: DataPlaneEvent): void {
    e.count = this.count;
    e.periodMs = this.period;
    this.last[this.slot] = e;
    this.emitFn(e);
  }

  /** Report what keys counted and did not report yet, where their interval is over. */
  flush(now: number): void {
    for (let h = 0; h < SLOTS; h++) {
      if (this.pending[h]! > 0 && now >= this.nextAt[h]!) this.flushSlot(h, now);
    }
    if (this.suppressed > 0 && this.take(now)) {
      this.emitFn({ event: 'events-suppressed', peer: -1, count: this.suppressed, periodMs: now - this.suppressedSince });
      this.suppressed = 0;
    }
  }

  private flushSlot(h: number, now: number): void {
    const last = this.last[h];
    const n = this.pending[h]!;
    this.pending[h] = 0;
    this.nextAt[h] = now + this.intervalMs;
    const period = now - this.lastAt[h]!;
    this.lastAt[h] = now;
    if (last === null) return; // held back by the bucket from the start: counted in `suppressed`
    if (!this.take(now)) {
      // summaries spend the same budget (many keys taking slots over must not flood either)
      if (this.suppressed === 0) this.suppressedSince = now;
      this.suppressed += n;
      return;
    }
    const e: DataPlaneEvent = { ...last, count: n, periodMs: period };
    this.last[h] = e;
    this.emitFn(e);
  }

  /** One token of the all-keys bucket. */
  private take(now: number): boolean {
    if (now > this.tokensAt) {
      this.tokens = Math.min(this.burst, this.tokens + (now - this.tokensAt) * this.perMs);
      this.tokensAt = now;
    }
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }
}
