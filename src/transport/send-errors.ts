/**
 * UDP send errors, counted by cause and reported at most once per peer per interval: the socket
 * errors a tunnel endpoint lives with and must never die of.
 *
 * - ENOBUFS: the kernel had no buffer (a full device queue, memory pressure): the datagram is lost.
 * - EMSGSIZE: the datagram is larger than the socket can send (over 65,507 bytes, or over the path
 *   MTU with DF set).
 * - ECONNREFUSED: an ICMP port unreachable came back for an earlier datagram; Linux reports it on
 *   the next send or receive of a connected socket (an unconnected one, as Node's dgram socket,
 *   only with IP_RECVERR, so the portable path never sees it).
 * - anything else (ENETUNREACH, EHOSTUNREACH, EPERM from a firewall, ...): 'other'.
 * Each is a lost datagram, counted, never thrown. The first error toward a peer is reported at
 * once; further ones toward the same peer within `intervalMs` are summed into its next report.
 * Allocation-free per error (per-peer state in typed arrays, grown when a new peer index shows up).
 */

/** A peer's send errors are logged at most this often (the counters count every one). */
export const SEND_ERROR_INTERVAL_MS = 10_000;

/** The causes counted apart (the rest is 'other'). */
export const SEND_ERROR_CODES = ['ENOBUFS', 'EMSGSIZE', 'ECONNREFUSED'] as const;

/** A report: `count` errors toward `peer` (-1: an address that is no peer's) since the last one, the latest with `code`. */
export interface SendErrorReport {
  peer: number;
  code: string;
  count: number;
  /** Milliseconds the count covers (0 for the first report toward this peer). */
  sinceMs: number;
}

export class SendErrors {
  enobufs = 0;
  emsgsize = 0;
  econnrefused = 0;
  other = 0;
  /** Reports made (log lines). */
  reports = 0;
  /** Per peer (index + 1; slot 0 = no peer): errors not reported yet, and when the last report was. */
  private pending = new Float64Array(8);
  private lastReport = new Float64Array(8).fill(-Infinity);
  private readonly report: SendErrorReport = { peer: 0, code: '', count: 0, sinceMs: 0 };

  constructor(
    /** Called with each report (the object is reused: copy what you keep). */
    private readonly onReport: (r: SendErrorReport) => void,
    readonly intervalMs = 10_000,
  ) {}

  get total(): number {
    return this.enobufs + this.emsgsize + this.econnrefused + this.other;
  }

  /** One failed send toward `peer` (-1: not a peer) with error `code` (errno name) at `now` (ms). */
  note(peer: number, code: string | undefined, now: number): void {
    if (code === 'ENOBUFS') this.enobufs++;
    else if (code === 'EMSGSIZE') this.emsgsize++;
    else if (code === 'ECONNREFUSED') this.econnrefused++;
    else this.other++;
    const i = peer < 0 ? 0 : peer + 1;
    if (i >= this.pending.length) this.grow(i + 1);
    this.pending[i]!++;
    const last = this.lastReport[i]!;
    if (now - last < this.intervalMs) return;
    const r = this.report;
    r.peer = peer;
    r.code = code ?? 'error';
    r.count = this.pending[i]!;
    r.sinceMs = last === -Infinity ? 0 : now - last;
    this.pending[i] = 0;
    this.lastReport[i] = now;
    this.reports++;
    try {
      this.onReport(r);
    } catch {
      /* a reporter must not break the send path */
    }
  }

  /** The counters as named extras (show stats). */
  toJSON(): Record<string, number> {
    return { udpTxENOBUFS: this.enobufs, udpTxEMSGSIZE: this.emsgsize, udpTxECONNREFUSED: this.econnrefused, udpTxOtherErrors: this.other };
  }

  private grow(n: number): void {
    const size = Math.max(n, this.pending.length * 2);
    const p = new Float64Array(size);
    p.set(this.pending);
    const l = new Float64Array(size).fill(-Infinity);
    l.set(this.lastReport);
    this.pending = p;
    this.lastReport = l;
  }
}

/** The one log line of a report, e.g. "udp: sending to peer shanghai (203.0.113.20:6080) failed: EMSGSIZE". */
export function sendErrorLine(r: SendErrorReport, peerText: string, intervalMs: number): string {
  const to = r.peer < 0 ? 'an address that is no peer' : `peer ${peerText}`;
  const more =
    r.sinceMs === 0
      ? `; further send errors toward it are logged at most every ${intervalMs / 1000} s (counted in show stats)`
      : ` (${r.count} send error${r.count === 1 ? '' : 's'} toward it in the last ${Math.round(r.sinceMs / 1000)} s)`;
  return `warning: udp: sending to ${to} failed: ${r.code}${more}`;
}
