/**
 * What the mobility control plane may do, and nothing more: the operations of the data-plane
 * boundary (src/endpoint/dataplane.ts: peers added and removed, a peer's underlay endpoint moved
 * through the one record, routes, control datagrams to a peer or an address, bicasting until a
 * time) plus what the Endpoint as control plane does itself (kernel routes through the TUN,
 * keepalives, liveness). The Endpoint implements it (its methods of the same names).
 */
import type { DropReason } from '../../base/drop-reason.ts';
import type { RouteSpec } from '../../route/types.ts';
import type { Prefix } from '../../wire/address-text.ts';
import type { PeerSpec, UnderlayAddress } from '../dataplane.ts';
import type { Peer } from '../peer.ts';

export interface DataPlaneOps {
  /** Peer by index (holes for removed peers): read-only use (names, endpoints, counters, liveness). */
  readonly peers: readonly (Peer | undefined)[];
  /** Add a peer (its routes, sources and endpoint); returns its index. */
  addPeer(spec: PeerSpec): number;
  /** Remove a peer: its routes, sources, endpoint. */
  removePeer(index: number): void;
  /** Move peer `index`'s underlay endpoint (PeerEndpoints.set: the transport follows at once). */
  setPeerEndpoint(index: number, to: UnderlayAddress): void;
  /** Add a route; returns its id. */
  addRoute(spec: RouteSpec): number;
  removeRoute(id: number): void;
  /** A datagram (whole UDP payload) to peer `to` or to an underlay address; None or why not. */
  sendControl(bytes: Uint8Array, to: number | UnderlayAddress): DropReason;
  /** Copy what goes to peer `peer` to `to` as well until `untilMs` (null: stop). */
  bicast(peer: number, to: UnderlayAddress | null, untilMs: number): void;

  // ---- the Endpoint's own (control plane) side
  /** Route `prefix` into the TUN in the kernel (true) or take that route back (false); no-op without kernel routes. */
  kernelRoute(prefix: Prefix, on: boolean): void;
  /** Route a peer's own prefixes into the TUN in the kernel (true), or stop (false). */
  setKernelRoutes(peer: number, on: boolean): void;
  /** Send peer `index` a keepalive now. */
  keepalive(index: number): void;
  /** Check a keepalive as peer `index`'s (HMAC, reflection, its replay window, advanced): None = authentic and fresh. */
  acceptControl(index: number, bytes: Uint8Array): DropReason;
  /** A control message of peer `index` was authentic: it is alive. */
  heard(index: number): void;
  /** The UDP socket's bound address and port (null when not running). */
  localAddress(): { address: string; port: number } | null;
}
