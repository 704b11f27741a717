/**
 * The transport interface the endpoint pipeline sends GUE datagrams through, and the pieces its
 * two implementations share: `UdpTransport` (a real dgram socket) and `MemoryTransport` (an
 * in-process network for unit tests and the userspace example).
 *
 * ## Who owns a PacketBuffer
 * - Received: from the `onBatch` call on, each `batch[i]` (i < count) belongs to the handler, which
 *   must release it or pass it on (e.g. to `send`, a device write) — also when it throws: a
 *   handler that can throw releases what it holds first (the pipeline does, per batch). A throw
 *   is counted (rxErrors) and reported (onError), and delivery goes on. The `batch` array and the
 *   `RecvInfo` arrays are reused: valid only during the call.
 * - Sent: `send()` / `sendTo()` take ownership in every case. On failure the slot is released at
 *   once and the DropReason returned for the caller to count; on success the transport releases
 *   it when the bytes are gone. Never touch `p` after handing it over.
 *
 * `PacketBuffer.tag` of a received packet is the sender's peer index (its endpoint as the
 * PeerEndpoints record has it: src/transport/peer-endpoints.ts), or -1 for an address:port that is no peer's endpoint: the caller drops it and counts
 * DropReason.UnknownPeer, or hands it to mobility (a binding update from a new care-of address),
 * which is why the sender's address and port travel along in `RecvInfo`.
 */
import { DropReason } from '../base/drop-reason.ts';
import type { PacketBuffer, PacketPools } from '../base/pool.ts';
import { parseAddress, type AddressBytes } from '../wire/address-text.ts';
import { peerEndpoint, PeerEndpoints, type PeerEndpoint } from './peer-endpoints.ts';

/**
 * Default UDP port: 6080, the port IANA registered for GUE (service name "gue", the port
 * draft-ietf-intarea-gue names), so operators and firewall rules can tell the traffic by its port.
 * Linux fou/gue has no default port (its man-page examples use 5555/8888/9999), and tshark 4.0
 * has no GUE dissector: decode data with `-d udp.port==6080,ip` (variant 1 is a bare IP packet).
 */
export const DEFAULT_PORT = 6080;
export const DEFAULT_MAX_BATCH = 64;

/** Sender of each packet of a batch; index i belongs to batch[i]. Valid only during onBatch. */
export interface RecvInfo {
  addresses: string[];
  ports: Uint16Array;
}

export type TransportBatchHandler = (batch: PacketBuffer[], count: number, from: RecvInfo) => void;

/** A one-line, user-facing transport error (bind failures, bad peer addresses). */
export class TransportError extends Error {
  override name = 'TransportError';
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

export class TransportStats {
  rxPackets = 0;
  rxBytes = 0;
  /** onBatch calls; rxPackets / rxBatches is the mean batch size. */
  rxBatches = 0;
  /** Datagrams from an address:port that is no peer's endpoint (delivered with tag -1). */
  rxUnknown = 0;
  /** Datagrams dropped because the pool had no free slot. */
  rxNoBuffer = 0;
  /** Datagrams dropped because no pool slot class is big enough. */
  rxTooBig = 0;
  /** Socket errors, and exceptions thrown by the batch handler (a bug upstream). */
  rxErrors = 0;
  txPackets = 0;
  txBytes = 0;
  /** Sends that failed in the socket (ENETUNREACH, EMSGSIZE, ...). */
  txErrors = 0;
  /** Sends refused before reaching the socket: not running, unknown peer, in-flight ring full. */
  txDropped = 0;

  toJSON(): Record<string, number> {
    return { ...(this as unknown as Record<string, number>) };
  }
}

export interface Transport {
  readonly stats: TransportStats;
  /** Address family of the underlay socket (after start for a default "all addresses" listen). */
  readonly family: 4 | 6;
  readonly isRunning: boolean;
  /** Bound address and port (after start), as configured before. */
  readonly localAddress: { address: string; port: number };
  /** "address:port" / "[v6]:port" of localAddress. */
  readonly listenText: string;
  /** Sends whose slots the transport still holds. */
  readonly inFlight: number;
  /** Rejects with a TransportError carrying one line (e.g. `listen 0.0.0.0:6080: port in use`). */
  start(): Promise<void>;
  /** Stop, and release every slot the transport itself still holds. Idempotent. */
  close(): Promise<void>;
  /** The peers' underlay endpoints this transport follows (the one record; see peer-endpoints.ts). */
  readonly endpoints: PeerEndpoints;
  /** Set or move peer `index`'s endpoint in `endpoints` (control plane). Throws TransportError for an unusable one. */
  setPeer(index: number, address: string, port: number): void;
  removePeer(index: number): void;
  /** Peer endpoint in the form received packets report it (canonical text). */
  peerEndpoint(index: number): { address: string; port: number } | undefined;
  /** Peer index for a sender as RecvInfo reports it, or -1. */
  lookupPeer(address: string, port: number): number;
  /** Send p's bytes to peer `peer`; takes ownership. None, or why not (slot already released). */
  send(p: PacketBuffer, peer: number): DropReason;
  /** Send to any address:port (control plane, e.g. a mobile node's new address); takes ownership. */
  sendTo(p: PacketBuffer, address: string, port: number): DropReason;
  /** sendTo an endpoint record (bicast copies, control datagrams to an address); takes ownership. */
  sendToEndpoint(p: PacketBuffer, to: PeerEndpoint): DropReason;
}

/** Format address:port for messages ([v6]:port). */
export function formatHostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/**
 * What a transport's socket needs of the peers, derived from the PeerEndpoints record and never
 * set on its own: per peer index the address text the socket sends to, and address -> port ->
 * index for received datagrams (no string building per packet).
 */
export class EndpointIndex {
  private readonly peers: ({ address: string; port: number } | undefined)[] = [];
  private readonly byAddress = new Map<string, Map<number, number>>();

  /** `address` must already be in canonical (as-received) form. */
  set(index: number, address: string, port: number): void {
    if (!Number.isInteger(index) || index < 0) throw new RangeError(`bad peer index ${index}`);
    this.remove(index);
    this.peers[index] = { address, port };
    let ports = this.byAddress.get(address);
    if (!ports) this.byAddress.set(address, (ports = new Map()));
    ports.set(port, index);
  }

  remove(index: number): void {
    const old = this.peers[index];
    if (!old) return;
    this.peers[index] = undefined;
    const ports = this.byAddress.get(old.address);
    if (ports && ports.get(old.port) === index) {
      ports.delete(old.port);
      if (ports.size === 0) this.byAddress.delete(old.address);
    }
  }

  get(index: number): { address: string; port: number } | undefined {
    return this.peers[index];
  }

  lookup(address: string, port: number): number {
    const ports = this.byAddress.get(address);
    if (ports === undefined) return -1;
    const i = ports.get(port);
    return i === undefined ? -1 : i;
  }
}

/**
 * What both transports share: the stats, the peers' endpoints (the PeerEndpoints record, given
 * or private, followed into an EndpointIndex), setPeer/removePeer as writes to that record, and
 * sending to a peer by index through the implementation's `sendTo` (same ownership rule: `send`
 * always takes `p`).
 */
export abstract class PeerTransport {
  readonly stats = new TransportStats();
  /** The peers' underlay endpoints: shared with whoever owns the transport (set one there, or setPeer). */
  readonly endpoints: PeerEndpoints;
  protected readonly peers = new EndpointIndex();
  private unsubscribe: (() => void) | null = null;

  constructor(
    endpoints: PeerEndpoints | undefined,
    /** Told when a peer's endpoint changed to one this socket cannot reach (the peer is left out). */
    protected readonly onError: ((err: Error) => void) | undefined,
  ) {
    this.endpoints = endpoints ?? new PeerEndpoints();
  }

  abstract sendTo(p: PacketBuffer, address: string, port: number): DropReason;

  /** The address text this socket sends `ep` to and receives it from; TransportError when it cannot reach it. */
  protected abstract socketAddress(ep: PeerEndpoint): string;

  /** Follow the record: index every endpoint now (leaving out unreachable ones) and every change from now on. */
  protected follow(): void {
    if (this.unsubscribe === null) this.unsubscribe = this.endpoints.subscribe(this.onEndpoint);
    this.reindex(false);
  }

  /** Stop following the record (close). */
  protected unfollow(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  /** Index every endpoint of the record again; `strict`: throw the first TransportError. */
  protected reindex(strict: boolean): void {
    for (const [index, ep] of this.endpoints.entries()) {
      let address: string;
      try {
        address = this.socketAddress(ep);
      } catch (e) {
        this.peers.remove(index);
        if (strict) throw e;
        continue;
      }
      this.peers.set(index, address, ep.port);
    }
  }

  private readonly onEndpoint = (index: number, ep: PeerEndpoint | undefined): void => {
    if (ep === undefined) return this.peers.remove(index);
    let address: string;
    try {
      address = this.socketAddress(ep);
    } catch (e) {
      this.peers.remove(index);
      this.onError?.(e as Error);
      return;
    }
    this.peers.set(index, address, ep.port);
  };

  /**
   * Set or move peer `index`'s endpoint (control plane): a write to the PeerEndpoints record,
   * after checking that this socket can reach it. Throws TransportError for an unusable one.
   */
  setPeer(index: number, address: string, port: number): void {
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new TransportError(`peer endpoint ${formatHostPort(address, port)}: port out of range (1-65535)`);
    }
    let a: AddressBytes;
    try {
      a = parseAddress(address);
    } catch {
      throw new TransportError(`peer endpoint ${address}: not an IPv4 or IPv6 address`);
    }
    this.socketAddress(peerEndpoint(a.family, a.bytes, port)); // throws before anything is set
    this.endpoints.set(index, a.family, a.bytes, port);
  }

  removePeer(index: number): void {
    this.endpoints.remove(index);
  }

  peerEndpoint(index: number): { address: string; port: number } | undefined {
    const p = this.peers.get(index);
    return p ? { address: p.address, port: p.port } : undefined;
  }

  lookupPeer(address: string, port: number): number {
    return this.peers.lookup(address, port);
  }

  sendToEndpoint(p: PacketBuffer, to: PeerEndpoint): DropReason {
    let address: string;
    try {
      address = this.socketAddress(to);
    } catch {
      p.release();
      this.stats.txDropped++;
      return DropReason.SendFailed;
    }
    return this.sendTo(p, address, to.port);
  }

  send(p: PacketBuffer, peer: number): DropReason {
    const ep = this.peers.get(peer);
    if (ep === undefined) {
      p.release();
      this.stats.txDropped++;
      return DropReason.UnknownPeer;
    }
    return this.sendTo(p, ep.address, ep.port);
  }
}

/**
 * Receive side shared by the transports: copy a datagram into a pool slot, tag it with the
 * sender's peer index, collect a batch, deliver it from one setImmediate per batch (or at once when
 * `maxBatch` fill up). Everything preallocated; `push` allocates nothing.
 */
export class RxBatcher {
  private readonly batch: PacketBuffer[];
  private readonly info: RecvInfo;
  private count = 0;
  private scheduled = false;

  constructor(
    private readonly pools: PacketPools,
    private readonly peers: EndpointIndex,
    private readonly stats: TransportStats,
    private readonly onBatch: TransportBatchHandler,
    private readonly onError: ((err: Error) => void) | undefined,
    private readonly maxBatch = DEFAULT_MAX_BATCH,
  ) {
    this.batch = new Array<PacketBuffer>(maxBatch);
    this.info = { addresses: new Array<string>(maxBatch).fill(''), ports: new Uint16Array(maxBatch) };
  }

  push(src: Buffer, off: number, n: number, address: string, port: number): void {
    const p = this.pools.acquire(n);
    if (p === null) {
      if (n > this.pools.large.capacity) this.stats.rxTooBig++;
      else this.stats.rxNoBuffer++;
      return;
    }
    src.copy(p.buf, p.offset, off, off + n);
    p.length = n;
    const tag = this.peers.lookup(address, port);
    if (tag < 0) this.stats.rxUnknown++;
    p.tag = tag;
    this.stats.rxPackets++;
    this.stats.rxBytes += n;
    const i = this.count++;
    this.batch[i] = p;
    this.info.addresses[i] = address;
    this.info.ports[i] = port;
    if (this.count === this.maxBatch) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushImmediate);
    }
  }

  private readonly flushImmediate = (): void => {
    this.scheduled = false;
    this.flush();
  };

  /**
   * Deliver the batch. A handler that throws still owned every packet (see the ownership rules
   * above), so nothing is released here; the throw is counted and reported, never swallowed
   * silently, and the next batch is delivered as usual.
   */
  flush(): void {
    const n = this.count;
    if (n === 0) return;
    this.count = 0;
    this.stats.rxBatches++;
    try {
      this.onBatch(this.batch, n, this.info);
    } catch (err) {
      this.stats.rxErrors++;
      try {
        this.onError?.(err instanceof Error ? err : new Error(String(err)));
      } catch {
        /* the reporter must not throw */
      }
    }
  }

  /** Release an undelivered batch (on close). */
  discard(): void {
    for (let i = 0; i < this.count; i++) this.batch[i]!.release();
    this.count = 0;
  }
}
