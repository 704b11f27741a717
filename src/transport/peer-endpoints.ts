/**
 * The one record of each peer's underlay endpoint: where its GUE datagrams go and come from.
 *
 * An Endpoint keeps one PeerEndpoints and shares it: the transport sends by peer index and
 * tags received datagrams from it, and the peers (src/endpoint/peer.ts) read their address and
 * port from it for display. Nothing else keeps a copy. Moving a peer (mobility: a binding
 * update from a new care-of address) is one call, `set()`, at run time; every transport
 * attached to the record hears of it synchronously (subscribe) and updates what its socket
 * needs, derived from the record (the address text Node's dgram wants, the reverse lookup for
 * received datagrams: src/transport/transport.ts EndpointIndex).
 *
 * Why here and not in src/tunnel/: the transport is the one consumer that needs the bytes, and
 * the layer rule lets mobility and the endpoint (above) reach transport/, while transport/ may
 * not import tunnel/ (same layer, other folder).
 *
 * Records are immutable: set() replaces the record, so a reader holding one sees a consistent
 * (family, bytes, port, text). Control plane only; the dataplane uses peer indices.
 */
import { formatAddress, parseAddress, type Family } from '../wire/address-text.ts';

/** One peer's underlay endpoint. */
export interface PeerEndpoint {
  readonly family: Family;
  /** The address, 4 or 16 bytes in network order. */
  readonly bytes: Uint8Array;
  readonly port: number;
  /** The address in canonical text ("192.0.2.1", "fd00::2"). */
  readonly host: string;
  /** "192.0.2.1:6080" / "[fd00::2]:6080", for display. */
  readonly text: string;
}

/**
 * A record for (family, bytes, port), not stored anywhere (PeerEndpoints.set stores one; a
 * transport checks a candidate with it before anything is set). Throws RangeError for a port
 * outside 1..65535 or 4/16 bytes not matching the family.
 */
export function peerEndpoint(family: Family, bytes: Uint8Array, port: number): PeerEndpoint {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`peer port out of range: ${port}`);
  if (bytes.length !== (family === 4 ? 4 : 16)) throw new RangeError(`IPv${family} address of ${bytes.length} bytes`);
  const host = formatAddress(bytes, 0, family);
  return {
    family,
    bytes: Uint8Array.from(bytes),
    port,
    host,
    text: family === 6 ? `[${host}]:${port}` : `${host}:${port}`,
  };
}

/** Told of every change: the peer's new record, or undefined when it was removed. */
export type PeerEndpointListener = (index: number, endpoint: PeerEndpoint | undefined) => void;

export class PeerEndpoints {
  private readonly records: (PeerEndpoint | undefined)[] = [];
  private readonly listeners: PeerEndpointListener[] = [];

  get(index: number): PeerEndpoint | undefined {
    return this.records[index];
  }

  /**
   * The one setter: set or move peer `index`'s endpoint to (family, bytes, port). Every
   * subscriber is told before this returns. Throws RangeError for an impossible record (bad
   * index, port outside 1..65535, 4/16 bytes not matching the family).
   */
  set(index: number, family: Family, bytes: Uint8Array, port: number): PeerEndpoint {
    if (!Number.isInteger(index) || index < 0) throw new RangeError(`bad peer index ${index}`);
    const ep = peerEndpoint(family, bytes, port);
    this.records[index] = ep;
    this.notify(index, ep);
    return ep;
  }

  /** set() from an address literal ("192.0.2.1", "fd00::2"); AddressTextError when it is none. */
  setAddress(index: number, address: string, port: number): PeerEndpoint {
    const a = parseAddress(address);
    return this.set(index, a.family, a.bytes, port);
  }

  /** Forget peer `index`'s endpoint (subscribers are told with undefined). */
  remove(index: number): void {
    if (this.records[index] === undefined) return;
    this.records[index] = undefined;
    this.notify(index, undefined);
  }

  /** [index, record] of every peer with an endpoint, in index order. */
  entries(): [number, PeerEndpoint][] {
    const out: [number, PeerEndpoint][] = [];
    this.records.forEach((ep, i) => ep && out.push([i, ep]));
    return out;
  }

  /** Hear of every set() and remove() from now on; returns the function that stops it. */
  subscribe(listener: PeerEndpointListener): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  private notify(index: number, ep: PeerEndpoint | undefined): void {
    for (const l of [...this.listeners]) l(index, ep);
  }
}
