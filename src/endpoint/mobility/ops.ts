/**
 * What the mobility control plane may do to the data plane, and nothing more (phase 2's
 * data-plane boundary): move a peer's underlay endpoint (the one record, PeerEndpoints.set),
 * add and remove routes, send a control datagram to an address:port, bicast to a previous
 * endpoint until a time, send a keepalive, check a keepalive against a peer's key and replay
 * window (roaming), and read the peers' counters. The Endpoint implements it today (its methods
 * of the same names); the data-plane file of the fast path will implement the same operations.
 */
import type { DropReason } from '../../base/drop-reason.ts';
import type { Prefix } from '../../wire/address-text.ts';
import type { SocketAddress } from '../../wire/binding.ts';
import type { Peer } from '../peer.ts';

export interface DataPlaneOps {
  /** Every peer, config peers first, then the ones the mobility layer added (read-only use). */
  readonly peers: readonly Peer[];
  /** Move peer `index`'s underlay endpoint (PeerEndpoints.set: the transport follows at once). */
  setPeerEndpoint(index: number, to: SocketAddress): void;
  /** Forget peer `index`'s endpoint (nothing is sent to it, nothing from anywhere is its). */
  removePeerEndpoint(index: number): void;
  /** Route `prefix` to `dev` in the endpoint's table; `kernel`: into the TUN in the kernel too. */
  addRoute(prefix: Prefix, dev: string, kernel: boolean): void;
  removeRoute(prefix: Prefix, dev: string, kernel: boolean): void;
  /** Route (true) or stop routing (false) a peer's own prefixes into the TUN in the kernel. */
  setKernelRoutes(peer: number, on: boolean): void;
  /** Send buf[off, off+len) as one UDP payload to `to`; false when it could not go. */
  sendControl(buf: Buffer, off: number, len: number, to: SocketAddress): boolean;
  /** Copy what goes to peer `index` to `to` too, until `untilMs` (null: stop). */
  bicast(index: number, to: SocketAddress | null, untilMs: number): void;
  /** Send peer `index` a keepalive now. */
  keepalive(index: number): void;
  /** Check a keepalive as peer `index`'s (HMAC, reflection, its replay window, advanced): None = authentic and fresh. */
  acceptControl(index: number, buf: Buffer, off: number, len: number): DropReason;
  /** A control message from peer `index` was authentic: it is alive. */
  heard(index: number): void;
  /** The UDP socket's bound address and port (null when not running). */
  localAddress(): { address: string; port: number } | null;
}
