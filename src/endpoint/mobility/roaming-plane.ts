/**
 * Roaming for ordinary peers (not the mobile nodes, whose bindings move them): a keepalive that
 * arrives from an address:port that is no peer's endpoint is tried against the keyed peers; the
 * peer whose key authenticates it, with a counter newer than every one accepted from that peer
 * (its replay window in the data plane, advanced by this very check), is followed there at once,
 * as WireGuard follows the first authenticated packet from a new address (0 RTT when the roaming
 * side speaks first). A replayed or reordered keepalive never moves a peer: the peer's replay
 * window must take it as fresh (its current boot epoch and a newer counter, or a new epoch: a
 * restart), and its timestamp must be within FRESH_MS of our clock, so a keepalive recorded
 * before more restarts than the window remembers cannot pull the peer either (WireGuard's
 * handshake timestamp plays that part there). Keyless peers stay pinned (they are never tried). The sender id a peer used last is tried first, so a roam costs
 * one HMAC; a message no key verifies costs one per keyed peer, at most MAX_TRIES.
 */
import { DropReason } from '../../base/drop-reason.ts';
import { RoamDecision, roamDecision } from '../../mobility/roaming.ts';
import type { SocketAddress } from '../../wire/binding.ts';
import { ControlMessage, CTYPE_KEEPALIVE } from '../../wire/gue.ts';
import type { DataPlaneOps } from './ops.ts';
import { socketAddressText, toUnderlay } from './socket-address.ts';

const MAX_TRIES = 16;
/** A roaming keepalive's timestamp must be this close to our clock, ms. */
export const ROAM_FRESH_MS = 120_000;

export class RoamingPlane {
  /** Peers followed to a new address. */
  roamed = 0;
  /** Keepalives from new addresses refused (no key verified it, or it was not fresh). */
  refused = 0;
  private readonly bySender = new Map<number, number>();
  private readonly msg = new ControlMessage(Buffer.alloc(0), 0, 0);

  constructor(
    private readonly ops: DataPlaneOps,
    /** Indices of the peers that may roam: the config's peers that have a key. */
    private readonly keyed: readonly number[],
    private readonly log: (line: string) => void,
  ) {}

  /** A keepalive from `from`, no peer's endpoint. True when a peer was followed there. */
  handleKeepalive(buf: Buffer, off: number, len: number, from: SocketAddress): boolean {
    const m = this.msg.wrap(buf, off, len);
    if (m.check() !== DropReason.None || m.ctype !== CTYPE_KEEPALIVE || this.keyed.length === 0) {
      this.refused++;
      return false;
    }
    if (Math.abs(m.parseKeepalive().timestampMs - Date.now()) > ROAM_FRESH_MS) {
      this.refused++;
      return false;
    }
    const first = this.bySender.get(m.senderId);
    const order = first === undefined ? this.keyed : [first, ...this.keyed.filter((k) => k !== first)];
    let tries = 0;
    for (const idx of order) {
      if (tries++ >= MAX_TRIES) break;
      const r = this.ops.acceptControl(idx, buf.subarray(off, off + len));
      if (r === DropReason.BadAuthentication) continue;
      const authenticated = r === DropReason.None || r === DropReason.ReplayedMessage;
      const d = roamDecision(false, { keyed: true, authenticated, fresh: r === DropReason.None });
      if (d !== RoamDecision.Follow) break; // authentic but replayed / reordered: it proves nothing
      const peer = this.ops.peers[idx]!;
      const was = peer.endpointText;
      this.ops.setPeerEndpoint(idx, toUnderlay(from));
      this.bySender.set(m.senderId, idx);
      this.roamed++;
      this.log(`peer ${peer.name} roamed ${was} -> ${socketAddressText(from)} (authenticated keepalive)`);
      return true;
    }
    this.refused++;
    return false;
  }
}
