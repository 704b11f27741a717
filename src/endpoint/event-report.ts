/**
 * What the pipeline reports to the control plane as events (dataplane.ts DataPlaneEvent), on
 * its rare paths only: a control message failing authentication, a datagram from an unknown
 * source, an inner source outside the sending peer's routes, a packet too big for a peer's MTU,
 * and at debug level every drop. Each goes through the EventGate (event-gate.ts): an event
 * object is built (and addresses formatted) only for a line that is let through.
 *
 * Nothing here runs on the forwarding path: the pipeline calls in from its drop paths, and
 * reports nothing at all while no one listens (`sink` returns undefined).
 */
import { DROP_REASON_NAMES, type DropReason } from '../base/drop-reason.ts';
import { formatAddress } from '../wire/address-text.ts';
import { IPV6_MIN_MTU } from '../wire/ip.ts';
import { IPV4_DST, IPV4_SRC } from '../wire/ipv4.ts';
import { IPV6_DST, IPV6_SRC } from '../wire/ipv6.ts';
import type { DataPlaneEvent, UnderlayAddress } from './dataplane.ts';
import { EventGate } from './event-gate.ts';

/** Event kinds of the gate (keys: peer index, source hash, reason and peer). */
const EV_AUTH = 1;
const EV_UNKNOWN_SOURCE = 2;
const EV_SOURCE_NOT_ALLOWED = 3;
const EV_FRAG_NEEDED = 4;
const EV_DROP = 5;

/** The underlay sources of a received batch (pipeline.ts DatagramSources has this shape). */
export interface BatchSources {
  source(i: number): UnderlayAddress;
  sourceKey?(i: number): number;
}

export class EventReporter {
  readonly gate: EventGate;
  /** Report each drop as a 'drop' event (--log-level debug). */
  debug = false;

  /** `sink`: where events go now (read per event: the data plane sets it after construction). */
  constructor(private readonly sink: () => ((e: DataPlaneEvent) => void) | undefined) {
    this.gate = new EventGate({ emit: (e) => this.sink()?.(e) });
  }

  /** A control message from peer `peer` (endpoint `from`) failed authentication. */
  authFailure(peer: number, from: string, now: number): void {
    if (this.sink() === undefined || !this.gate.hit(EV_AUTH, peer, now)) return;
    this.gate.line({ event: 'auth-failure', peer, count: 1, periodMs: 0, from });
  }

  /** Datagram i of the batch `sources` names came from no peer's endpoint: per source. */
  unknownSource(sources: BatchSources | null, i: number, now: number): void {
    if (this.sink() === undefined) return;
    const key = sources !== null && sources.sourceKey !== undefined ? sources.sourceKey(i) : 0;
    if (!this.gate.hit(EV_UNKNOWN_SOURCE, key, now)) return;
    let from = 'unknown';
    if (sources !== null) {
      const a = sources.source(i);
      const host = formatAddress(a.address, 0, a.family);
      from = a.family === 6 ? `[${host}]:${a.port}` : `${host}:${a.port}`;
    }
    this.gate.line({ event: 'unknown-source', peer: -1, count: 1, periodMs: 0, from });
  }

  /** Peer `peer` sent the IPv`fam` packet at buf[off] from a source outside its routes. */
  sourceNotAllowed(peer: number, buf: Uint8Array, off: number, fam: 4 | 6, now: number): void {
    if (this.sink() === undefined || !this.gate.hit(EV_SOURCE_NOT_ALLOWED, peer, now)) return;
    this.gate.line({ event: 'source-not-allowed', peer, count: 1, periodMs: 0, src: formatAddress(buf, off + (fam === 4 ? IPV4_SRC : IPV6_SRC), fam) });
  }

  /** The packet at buf[off] (`size` bytes) was too big for peer `peer`'s `mtu`: an ICMP error went back. */
  fragNeeded(peer: number, buf: Uint8Array, off: number, fam: 4 | 6, size: number, mtu: number, now: number): void {
    if (this.sink() === undefined || !this.gate.hit(EV_FRAG_NEEDED, peer, now)) return;
    this.gate.line({
      event: 'frag-needed',
      peer,
      count: 1,
      periodMs: 0,
      src: formatAddress(buf, off + (fam === 4 ? IPV4_SRC : IPV6_SRC), fam),
      dst: formatAddress(buf, off + (fam === 4 ? IPV4_DST : IPV6_DST), fam),
      size,
      mtu: fam === 4 ? mtu : Math.max(mtu, IPV6_MIN_MTU),
    });
  }

  /** A drop (debug level), rate-limited per reason and peer (-1: none). */
  drop(reason: DropReason, peer: number, now: number): void {
    if (this.sink() === undefined || !this.gate.hit(EV_DROP, reason * 65536 + ((peer + 1) & 0xffff), now)) return;
    this.gate.line({ event: 'drop', peer, count: 1, periodMs: 0, reason: DROP_REASON_NAMES[reason] ?? `reason${reason}` });
  }

  /** Report the counts held back whose interval is over (about once a second). */
  flush(now: number): void {
    this.gate.flush(now);
  }
}
