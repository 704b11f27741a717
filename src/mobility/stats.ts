/**
 * Mobility counters, named as Linux MIPL's `mipdiag -s` prints them (NBindUpdatesRcvd, ...),
 * plus a few of ours for what mipdiag has no line for. One Float64Array, indexed by enum, so
 * counting allocates nothing. A "NAck" is a binding ack with status >= 128.
 */
export enum MobilityCounter {
  // mipdiag -s
  NEncapsulations = 0,
  NDecapsulations,
  NBindUpdatesRcvd,
  NBindAcksRcvd,
  NBindNAcksRcvd,
  /** Binding refresh requests (ctype 133) received (mobile node). */
  NBindRqsRcvd,
  NBindUpdatesSent,
  NBindAcksSent,
  NBindNAcksSent,
  /** Binding refresh requests sent (home agent). */
  NBindRqsSent,
  NBindUpdatesDropAuth,
  NBindUpdatesDropInvalid,
  NBindUpdatesDropMisc,
  NBindAcksDropAuth,
  NBindAcksDropInvalid,
  NBindAcksDropMisc,
  NBindRqsDropAuth,
  NBindRqsDropInvalid,
  NBindRqsDropMisc,
  // ours: why updates were dropped (each also counts in one of the Drop lines above)
  NBindUpdatesUnknownNode,
  NBindUpdatesBadMac,
  NBindUpdatesReplayed,
  NBindUpdatesStale,
  NBindUpdatesRateLimited,
  /** Duplicates of the last update answered with the cached ack. */
  NBindUpdatesDuplicate,
  // ours: binding cache
  NBindingsAdded,
  NBindingsRefreshed,
  NBindingsExpired,
  NBindingsDeregistered,
  /** Care-of changes of an existing binding (handovers seen by the home agent). */
  NCareOfChanges,
  /** Bindings whose observed care-of differs from the claimed one. */
  NNatDetected,
  /** 130 insufficient resources sent (cache full). */
  NCacheFull,
  /** Copies sent to a previous care-of while bicasting (data path). */
  NBicastCopies,
  // ours: mobile node
  NBindUpdatesRetransmitted,
  NHandovers,
  // ours: route optimisation
  NPathChallengesSent,
  NPathChallengesRcvd,
  NPathResponsesSent,
  NPathResponsesRcvd,
  NPathValidated,
  NPathFailed,
  NPathDropAuth,
  NPathDropInvalid,
  NPathDropMisc,
  /** Sends to an unvalidated address refused by the 3x anti-amplification limit. */
  NAmplificationLimited,
  // ours: the home agent's view of node keepalives (what makes it send refresh requests)
  /** Authenticated keepalives of a node from an address it has no binding at. */
  NKeepalivesUnbound,
  /** Keepalives from an unknown address that no node key authenticates (or replayed / stale). */
  NKeepalivesDropped,
}

export const MOBILITY_COUNTER_NAMES: readonly string[] = (() => {
  const names: string[] = [];
  for (const [k, v] of Object.entries(MobilityCounter)) if (typeof v === 'number') names[v] = k;
  return names;
})();

/** How many mipdiag -s lines there are (the counters before ours, in mipdiag's order). */
export const MIPDIAG_COUNTERS = MobilityCounter.NBindRqsDropMisc + 1;

export class MobilityStats {
  readonly counts = new Float64Array(MOBILITY_COUNTER_NAMES.length);

  inc(c: MobilityCounter, n = 1): void {
    this.counts[c]! += n;
  }

  get(c: MobilityCounter): number {
    return this.counts[c]!;
  }

  /** Every counter by name (mipdiag's first, zeros included), for show stats and --json. */
  toJSON(): Record<string, number> {
    const out: Record<string, number> = {};
    for (let i = 0; i < MOBILITY_COUNTER_NAMES.length; i++) out[MOBILITY_COUNTER_NAMES[i]!] = this.counts[i]!;
    return out;
  }

  reset(): void {
    this.counts.fill(0);
  }
}
