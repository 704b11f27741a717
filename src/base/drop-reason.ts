/**
 * Why a packet was rejected. Every parse/validate/fragment/reassemble API returns one of these
 * (None = accepted) instead of throwing, and the stats count drops per reason.
 *
 * Numbering is append-only within each block so counters stay comparable across versions.
 */
export enum DropReason {
  None = 0,

  // --- generic / IPv4 header (1..29)
  Truncated = 1,
  BadVersion = 2,
  BadIhl = 3,
  BadTotalLength = 4,
  BadHeaderChecksum = 5,
  BadOptionLength = 6,
  BadOption = 7,
  TtlExpired = 8,
  BadSourceAddress = 9,
  BadDestinationAddress = 10,

  // --- IPv6 header and extension headers (30..59)
  BadPayloadLength = 30,
  ExtHeaderChainTooLong = 31,
  ExtHeaderTooManyBytes = 32,
  BadExtHeaderLength = 33,
  BadExtHeaderOrder = 34,
  UnknownNextHeader = 35,
  HopLimitExpired = 36,
  BadRoutingHeader = 37,
  UnrecognizedOption = 38,
  TooManyOptions = 39,

  // --- upper layers (60..89)
  BadIcmpChecksum = 60,
  BadIcmpType = 61,
  BadIcmpLength = 62,
  BadUdpLength = 63,
  BadUdpChecksum = 64,
  BadTcpHeaderLength = 65,
  BadTcpChecksum = 66,
  BadTcpOption = 67,

  // --- fragmentation and reassembly (90..119)
  FragmentOverlap = 90,
  FragmentTooBig = 91,
  FragmentBadOffset = 92,
  FragmentBadLength = 93,
  FragmentTiny = 94,
  FragmentIncompleteChain = 95,
  FragmentTimeout = 96,
  FragmentMemoryLimit = 97,
  FragmentTableFull = 98,
  FragmentDuplicate = 99,
  FragmentConflictingEnd = 100,
  DontFragment = 101,
  MtuTooSmall = 102,

  // --- pool and device (120..139)
  PoolExhausted = 120,
  PacketTooBig = 121,
  DeviceWriteFailed = 122,

  // --- endpoint / tunnel (140..199)
  NoRoute = 140,
  RouteBlackhole = 141,
  RouteUnreachable = 142,
  RouteProhibit = 143,
  UnknownPeer = 144,
  SourceNotAllowed = 145,
  BadGue = 146,
  BadControlMessage = 147,
  BadAuthentication = 148,
  IcmpRateLimited = 149,
  NoSocket = 150,
  SendFailed = 151,
  NotForUs = 152,
  Loop = 153,
  ReplayedMessage = 154,
  TableFull = 155,
  HubDisabled = 156,
  /** Released after an exception inside the dataplane (a bug or a throwing callback; counted, reported). */
  InternalError = 157,
  /** An ICMP error refused by its destination's bucket (the global one had room). */
  IcmpRateLimitedDestination = 158,
  /** A control message above its sender's rate (mobility: updates, refresh requests). */
  ControlRateLimited = 159,
  /** An authentic control message we expected none of (an ack for nothing we sent). */
  UnexpectedControl = 160,
}

/** Every reason's name, indexed by its number (for stats output). */
export const DROP_REASON_NAMES: readonly string[] = (() => {
  const names: string[] = [];
  for (const [k, v] of Object.entries(DropReason)) if (typeof v === 'number') names[v] = k;
  return names;
})();

export const MAX_REASON = 256;

/** Per-reason drop counters: a typed array indexed by DropReason, no allocation per count. */
export class DropCounters {
  readonly counts = new Float64Array(MAX_REASON);

  count(reason: DropReason): void {
    this.counts[reason]!++;
  }

  get(reason: DropReason): number {
    return this.counts[reason]!;
  }

  get total(): number {
    let t = 0;
    for (let i = 1; i < MAX_REASON; i++) t += this.counts[i]!;
    return t;
  }

  /** Non-zero counters by name, for show/stats and JSON. */
  toJSON(): Record<string, number> {
    const out: Record<string, number> = {};
    for (let i = 1; i < MAX_REASON; i++) {
      if (this.counts[i]! > 0) out[DROP_REASON_NAMES[i] ?? `reason${i}`] = this.counts[i]!;
    }
    return out;
  }

  reset(): void {
    this.counts.fill(0);
  }
}
