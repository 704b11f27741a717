/**
 * Handover gaps of a mobile node: how long from noticing a move to the home agent's ack (the
 * binding points at the new care-of address; traffic flows again). A fixed-bucket histogram
 * for `ipferry show stats` and the last gaps kept for exact percentiles. Control plane.
 */

/** Upper bounds of the buckets, ms (the last bucket is everything above). */
export const GAP_BOUNDS_MS: readonly number[] = [5, 10, 20, 50, 100, 250, 500, 1000, 2000, 5000];

export interface GapHistogramSnapshot {
  /** Bucket upper bounds, ms; counts has one more entry (above the last bound). */
  boundsMs: number[];
  counts: number[];
  count: number;
  /** Over the last `window` gaps (null before the first). */
  medianMs: number | null;
  p95Ms: number | null;
  maxMs: number | null;
}

export class GapHistogram {
  private readonly counts = new Array<number>(GAP_BOUNDS_MS.length + 1).fill(0);
  private readonly recent: number[] = [];
  private total = 0;

  constructor(private readonly window = 1024) {}

  add(gapMs: number): void {
    let b = 0;
    while (b < GAP_BOUNDS_MS.length && gapMs > GAP_BOUNDS_MS[b]!) b++;
    this.counts[b]!++;
    this.total++;
    this.recent.push(gapMs);
    if (this.recent.length > this.window) this.recent.shift();
  }

  get count(): number {
    return this.total;
  }

  snapshot(): GapHistogramSnapshot {
    const sorted = [...this.recent].sort((a, b) => a - b);
    return {
      boundsMs: [...GAP_BOUNDS_MS],
      counts: [...this.counts],
      count: this.total,
      medianMs: percentile(sorted, 0.5),
      p95Ms: percentile(sorted, 0.95),
      maxMs: sorted.length ? sorted[sorted.length - 1]! : null,
    };
  }
}

/** The nearest-rank percentile of sorted values (null when empty). */
export function percentile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}
