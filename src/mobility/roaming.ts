/**
 * Roaming for ordinary peers, as one pure decision: when a datagram for a configured peer
 * arrives from an address:port other than the peer's current endpoint, do we follow it there?
 *
 * WireGuard's rule, with our replay rules: a peer that has a key is followed to the source of an
 * authenticated control message (a keepalive, say) whose counter is newer than every counter
 * accepted from that peer so far (0 RTT when the roaming side speaks first). Nothing else moves
 * a peer: not data (GUE data carries no MAC), not a control message that fails its HMAC, not a
 * replay or a reordered older message (an attacker who recorded a keepalive cannot pull the peer
 * to where the recording is played back), not a duplicate. A peer without a key stays pinned to
 * its configured endpoint, and what arrives for it from elsewhere is not its traffic.
 *
 * The endpoint applies a Follow through the per-peer underlay-endpoint record's setter (the
 * tunnel layer), before it handles the message itself.
 */
import type { SocketAddress } from '../wire/binding.ts';
import { sameSocketAddress } from './io.ts';

export enum RoamDecision {
  /** From the current endpoint: nothing to decide. */
  Stay = 0,
  /** Move the peer's endpoint to the source of this message. */
  Follow = 1,
  /** From elsewhere and not proof enough: do not move (and do not take it as this peer's). */
  Refuse = 2,
}

/** What is known about the datagram, after the HMAC and replay checks ran on it. */
export interface RoamEvidence {
  /** The peer has a key configured. */
  keyed: boolean;
  /** A control message whose HMAC verified with the peer's key. */
  authenticated: boolean;
  /** Its counter is newer than every counter accepted from the peer (the replay check passed). */
  fresh: boolean;
}

/** The decision from the bare facts (fromCurrent: source = the peer's current endpoint). */
export function roamDecision(fromCurrent: boolean, e: RoamEvidence): RoamDecision {
  if (fromCurrent) return RoamDecision.Stay;
  if (!e.keyed) return RoamDecision.Refuse;
  return e.authenticated && e.fresh ? RoamDecision.Follow : RoamDecision.Refuse;
}

/** The same, comparing the source with the peer's current endpoint. */
export function roamDecisionFor(current: SocketAddress, from: SocketAddress, e: RoamEvidence): RoamDecision {
  return roamDecision(sameSocketAddress(current, from), e);
}
