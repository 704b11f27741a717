/**
 * An in-process stand-in for the UDP underlay: `MemoryTransport`s attached to one `MemoryNetwork`
 * exchange datagrams by address:port, with the same `Transport` interface, batching, peer tags and
 * ownership rules as `UdpTransport` (src/transport/transport.ts). For pipeline unit tests: no
 * sockets, no ports, deterministic, and a `tap` to watch (or drop) what crosses the "wire".
 *
 * A datagram is copied into the receiver's pool at send time and delivered in the receiver's next
 * batch (setImmediate), never synchronously inside `send()`. The sender's slot is released at
 * once. A datagram to an address:port nobody is bound to vanishes, as UDP does (counted in
 * `network.unreachable`).
 */
import { SocketAddress } from 'node:net';
import { DropReason } from '../base/drop-reason.ts';
import type { PacketBuffer, PacketPools } from '../base/pool.ts';
import type { PeerEndpoint, PeerEndpoints } from './peer-endpoints.ts';
import {
  DEFAULT_MAX_BATCH,
  DEFAULT_PORT,
  PeerTransport,
  RxBatcher,
  TransportError,
  formatHostPort,
  type Transport,
  type TransportBatchHandler,
} from './transport.ts';

export interface MemoryEndpoint {
  address: string;
  port: number;
}

/**
 * Called for every datagram crossing the network, before delivery: `bytes` is valid only during
 * the call. Return false to drop it (loss injection).
 */
export type MemoryTap = (bytes: Buffer, from: MemoryEndpoint, to: MemoryEndpoint) => boolean | void;

function canonical(address: string): string {
  for (const family of ['ipv4', 'ipv6'] as const) {
    try {
      return new SocketAddress({ address, family }).address;
    } catch {
      // next
    }
  }
  throw new TransportError(`${address}: not an IPv4 or IPv6 address`);
}

export class MemoryNetwork {
  private readonly bound = new Map<string, Map<number, MemoryTransport>>();
  private nextEphemeral = 40000;
  /** Datagrams delivered to a bound transport. */
  delivered = 0;
  /** Datagrams to an address:port nobody is bound to. */
  unreachable = 0;
  /** Datagrams the tap dropped. */
  dropped = 0;
  tap: MemoryTap | null = null;

  /** @internal */
  attach(t: MemoryTransport, address: string, port: number): number {
    let ports = this.bound.get(address);
    if (!ports) this.bound.set(address, (ports = new Map()));
    if (port === 0) {
      while (ports.has(this.nextEphemeral)) this.nextEphemeral++;
      port = this.nextEphemeral++;
    }
    if (ports.has(port)) throw new TransportError(`listen ${formatHostPort(address, port)}: port in use`, 'EADDRINUSE');
    ports.set(port, t);
    return port;
  }

  /** @internal */
  detach(address: string, port: number): void {
    const ports = this.bound.get(address);
    ports?.delete(port);
    if (ports && ports.size === 0) this.bound.delete(address);
  }

  /** @internal */
  find(address: string, port: number): MemoryTransport | undefined {
    return this.bound.get(address)?.get(port);
  }
}

export interface MemoryTransportOptions {
  network: MemoryNetwork;
  /** Its address on the memory network (any IPv4/IPv6 literal). */
  address: string;
  /** 0 picks a free one. Default DEFAULT_PORT. */
  port?: number;
  pools: PacketPools;
  onBatch: TransportBatchHandler;
  /** The peers' endpoints to follow; a private record when absent. */
  endpoints?: PeerEndpoints;
  onError?: (err: Error) => void;
  maxBatch?: number;
}

export class MemoryTransport extends PeerTransport implements Transport {
  readonly family: 4 | 6;
  readonly network: MemoryNetwork;
  private readonly address: string;
  private port: number;
  private running = false;
  private readonly rx: RxBatcher;
  private readonly self: MemoryEndpoint;

  constructor(opts: MemoryTransportOptions) {
    super(opts.endpoints, opts.onError);
    this.network = opts.network;
    this.address = canonical(opts.address);
    this.family = this.address.includes(':') ? 6 : 4;
    this.port = opts.port ?? DEFAULT_PORT;
    this.rx = new RxBatcher(opts.pools, this.peers, this.stats, opts.onBatch, opts.onError, opts.maxBatch ?? DEFAULT_MAX_BATCH);
    this.self = { address: this.address, port: this.port };
    this.follow();
  }

  get isRunning(): boolean {
    return this.running;
  }
  get localAddress(): { address: string; port: number } {
    return { address: this.address, port: this.port };
  }
  get listenText(): string {
    return formatHostPort(this.address, this.port);
  }
  get inFlight(): number {
    return 0;
  }

  async start(): Promise<void> {
    if (this.running) throw new TransportError(`listen ${this.listenText}: already started`);
    this.follow();
    try {
      this.port = this.network.attach(this, this.address, this.port);
    } catch (e) {
      this.unfollow();
      throw e;
    }
    this.self.port = this.port;
    this.running = true;
  }

  async close(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.unfollow();
    this.network.detach(this.address, this.port);
    this.rx.discard();
  }

  /** Any family reaches any address on the memory network: the canonical text. */
  protected socketAddress(ep: PeerEndpoint): string {
    return canonical(ep.host);
  }

  sendTo(p: PacketBuffer, address: string, port: number): DropReason {
    if (!this.running) {
      p.release();
      this.stats.txDropped++;
      return DropReason.NoSocket;
    }
    this.stats.txPackets++;
    this.stats.txBytes += p.length;
    const net = this.network;
    try {
      if (net.tap !== null && net.tap(p.bytes(), this.self, { address, port }) === false) {
        net.dropped++;
      } else {
        const dst = net.find(address, port);
        if (dst === undefined) net.unreachable++;
        else {
          net.delivered++;
          dst.deliver(p.buf, p.offset, p.length, this.address, this.port);
        }
      }
    } catch {
      // a test's tap threw: send() took ownership in every case, so the slot still goes back
      this.stats.txErrors++;
      p.release();
      return DropReason.SendFailed;
    }
    p.release();
    return DropReason.None;
  }

  /** @internal A datagram from the network. */
  deliver(buf: Buffer, off: number, len: number, fromAddress: string, fromPort: number): void {
    if (this.running) this.rx.push(buf, off, len, fromAddress, fromPort);
  }
}
