/**
 * The UDP underlay: one Node `dgram` socket (IPv4 `udp4` or IPv6 `udp6`, dual-stack when bound to
 * `::`) carrying GUE (src/wire/gue.ts) to and from the peers. Ownership rules and the
 * `Transport` interface: src/transport/transport.ts.
 *
 * Receive: Node hands us one Buffer + rinfo per datagram (allocated inside Node: unavoidable).
 * We copy the bytes into a pool slot, look the sender up in a two-level Map (address string ->
 * port -> peer index; no string building) and store the peer index in `PacketBuffer.tag`.
 * Datagrams are delivered in batches: everything libuv read in one poll wake-up (it reads up to
 * 32 per wake-up) goes out in one `onBatch` call from a setImmediate, or sooner when `maxBatch`
 * fill up.
 *
 * Send: `send(p, peer)` hands buf[offset, offset+length) to the kernel without a copy, to the
 * peer's address string derived from its PeerEndpoints record when that was set (never rebuilt
 * per packet). The socket is created
 * with a synchronous `lookup` (our addresses are literals), so the datagram reaches the kernel
 * inside the `send()` call instead of one dns.lookup tick later. Node's dgram has no sendmmsg: an
 * array of buffers given to `socket.send` is gathered into ONE datagram, and UDP has no cork, so
 * there is nothing to batch at this level.
 *
 * In-flight slots: a sent slot stays in a preallocated ring until dgram's completion callback, one
 * shared function (no closure per packet), releases it. Completions arrive in send order (libuv
 * sends FIFO: once a datagram has to queue, every later one queues behind it, and synchronous
 * completions are reported by process.nextTick in call order), so the callback releases the ring's
 * oldest slot. Holding the slot is required: when the socket buffer is full libuv queues the
 * request and reads the bytes later.
 */
import dgram from 'node:dgram';
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

export {
  DEFAULT_PORT,
  TransportError,
  TransportStats,
  formatHostPort,
  type RecvInfo,
  type Transport,
  type TransportBatchHandler,
} from './transport.ts';

export const DEFAULT_MAX_IN_FLIGHT = 1024;
/** Asked for; the kernel caps it at net.core.rmem_max / wmem_max. */
export const DEFAULT_SOCKET_BUFFER = 4 << 20;

export interface UdpTransportOptions {
  /**
   * Local address to bind: an IPv4 literal (udp4 socket) or an IPv6 literal (udp6). Omitted: all
   * addresses, `::` dual-stack, falling back to `0.0.0.0` when the host has no IPv6.
   */
  address?: string;
  /** Local port; 0 picks a free one. Default DEFAULT_PORT (6080). */
  port?: number;
  /**
   * udp6 only. false: the socket carries IPv4 too (IPv4 peers appear as ::ffff:a.b.c.d).
   * Default: false for `::` (all addresses), true for a specific IPv6 address.
   */
  ipv6Only?: boolean;
  pools: PacketPools;
  onBatch: TransportBatchHandler;
  /** The peers' endpoints to follow (an Endpoint shares its own); a private record when absent. */
  endpoints?: PeerEndpoints;
  /**
   * Socket errors after start (rare on UDP), handler exceptions (counted either way), and a
   * peer endpoint changed to one this socket cannot reach.
   */
  onError?: (err: Error) => void;
  /** A send failed in the socket (ENETUNREACH when the route went away, ...): counted either way. */
  onSendError?: (err: Error) => void;
  maxBatch?: number;
  maxInFlight?: number;
  recvBufferSize?: number;
  sendBufferSize?: number;
}

function familyOf(address: string): 4 | 6 | 0 {
  for (const [family, f] of [
    ['ipv4', 4],
    ['ipv6', 6],
  ] as const) {
    try {
      new SocketAddress({ address, family });
      return f;
    } catch {
      // next
    }
  }
  return 0;
}

/** Canonical text, exactly as libuv formats rinfo.address (so Map lookups match). */
function canonical(address: string, family: 4 | 6): string {
  return new SocketAddress({ address, family: family === 4 ? 'ipv4' : 'ipv6' }).address;
}

function bindErrorMessage(where: string, err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'EADDRINUSE':
      return `listen ${where}: port in use`;
    case 'EADDRNOTAVAIL':
      return `listen ${where}: address not available on this host`;
    case 'EACCES':
    case 'EPERM':
      return `listen ${where}: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)`;
    case 'EAFNOSUPPORT':
      return `listen ${where}: address family not supported on this host`;
    default:
      return `listen ${where}: ${err.code ?? 'error'} ${err.message.split('\n')[0]}`;
  }
}

/** dgram lookup that does no lookup: every address we pass is a literal. */
function literalLookup(address: string, family: number, cb: (err: Error | null, address: string, family: number) => void): void {
  cb(null, address, family);
}

function bindSocket(type: 'udp4' | 'udp6', address: string, port: number, ipv6Only: boolean): Promise<dgram.Socket> {
  const socket = dgram.createSocket({
    type,
    ipv6Only: type === 'udp6' ? ipv6Only : undefined,
    lookup: literalLookup as unknown as dgram.SocketOptions['lookup'],
  });
  return new Promise<dgram.Socket>((resolve, reject) => {
    const fail = (err: Error) => {
      socket.close();
      reject(err);
    };
    socket.once('error', fail);
    socket.bind({ address, port }, () => {
      socket.off('error', fail);
      resolve(socket);
    });
  });
}

export class UdpTransport extends PeerTransport implements Transport {
  private fam: 4 | 6;
  private bindAddress: string;
  private readonly bindPort: number;
  private ipv6Only: boolean;
  /** No address given: `::` dual-stack, IPv4-only fallback. */
  private readonly anyAddress: boolean;
  private readonly recvBufferSize: number;
  private readonly sendBufferSize: number;
  private socket: dgram.Socket | null = null;
  private running = false;
  private readonly rx: RxBatcher;
  private readonly onSendError: ((err: Error) => void) | undefined;

  // in-flight sends, released in order by the shared completion callback
  private readonly ring: (PacketBuffer | null)[];
  private ringHead = 0;
  private ringCount = 0;

  constructor(opts: UdpTransportOptions) {
    super(opts.endpoints, opts.onError);
    this.anyAddress = opts.address === undefined;
    const address = opts.address ?? '::';
    const fam = familyOf(address);
    const port = opts.port ?? DEFAULT_PORT;
    if (fam === 0) throw new TransportError(`listen ${address}: not an IPv4 or IPv6 address`);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new TransportError(`listen ${formatHostPort(address, port)}: port out of range (0-65535)`);
    }
    this.fam = fam;
    this.bindAddress = canonical(address, fam);
    this.bindPort = port;
    this.ipv6Only = fam === 6 ? (opts.ipv6Only ?? this.bindAddress !== '::') : false;
    this.recvBufferSize = opts.recvBufferSize ?? DEFAULT_SOCKET_BUFFER;
    this.sendBufferSize = opts.sendBufferSize ?? DEFAULT_SOCKET_BUFFER;
    this.rx = new RxBatcher(opts.pools, this.peers, this.stats, opts.onBatch, opts.onError, opts.maxBatch ?? DEFAULT_MAX_BATCH);
    this.ring = new Array<PacketBuffer | null>(opts.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT).fill(null);
    this.onSendError = opts.onSendError;
    this.follow();
  }

  get family(): 4 | 6 {
    return this.fam;
  }

  /** True when one udp6 socket also carries IPv4 (peers as ::ffff:a.b.c.d). */
  get dualStack(): boolean {
    return this.fam === 6 && !this.ipv6Only;
  }

  get listenText(): string {
    const a = this.localAddress;
    return formatHostPort(a.address, a.port);
  }

  get localAddress(): { address: string; port: number } {
    if (this.socket && this.running) {
      const a = this.socket.address();
      return { address: a.address, port: a.port };
    }
    return { address: this.bindAddress, port: this.bindPort };
  }

  get isRunning(): boolean {
    return this.running;
  }

  get inFlight(): number {
    return this.ringCount;
  }

  async start(): Promise<void> {
    if (this.socket) throw new TransportError(`listen ${this.listenText}: already started`);
    this.follow();
    try {
      await this.open();
    } catch (e) {
      this.unfollow(); // a transport that did not start holds nothing, not even a subscription
      throw e;
    }
  }

  private async open(): Promise<void> {
    let socket: dgram.Socket;
    try {
      socket = await bindSocket(this.fam === 4 ? 'udp4' : 'udp6', this.bindAddress, this.bindPort, this.ipv6Only);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const noV6 = e.code === 'EAFNOSUPPORT' || e.code === 'EADDRNOTAVAIL';
      if (!(this.anyAddress && noV6)) {
        throw new TransportError(bindErrorMessage(formatHostPort(this.bindAddress, this.bindPort), e), e.code);
      }
      // all addresses, but no IPv6 on this host: IPv4 only
      try {
        socket = await bindSocket('udp4', '0.0.0.0', this.bindPort, false);
      } catch (err4) {
        const e4 = err4 as NodeJS.ErrnoException;
        throw new TransportError(bindErrorMessage(formatHostPort('0.0.0.0', this.bindPort), e4), e4.code);
      }
      this.fam = 4;
      this.bindAddress = '0.0.0.0';
      this.ipv6Only = false;
    }
    try {
      socket.setRecvBufferSize(this.recvBufferSize);
      socket.setSendBufferSize(this.sendBufferSize);
    } catch {
      // best effort: the kernel caps or refuses; the defaults still work
    }
    this.socket = socket;
    this.running = true;
    try {
      // The socket's family is final now: every peer endpoint must be reachable through it.
      this.reindex(true);
    } catch (perr) {
      this.running = false;
      this.socket = null;
      socket.close();
      throw perr;
    }
    socket.on('message', this.onMessage);
    socket.on('error', this.onSocketError);
  }

  /** The socket's text for `ep`: canonical, IPv4 as ::ffff:a.b.c.d on a dual-stack socket. */
  protected socketAddress(ep: PeerEndpoint): string {
    if (ep.family === this.fam) return canonical(ep.host, ep.family);
    // an IPv4-mapped peer on an IPv6-only socket can never be reached
    if (ep.family === 4 && this.dualStack) return canonical(`::ffff:${ep.host}`, 6);
    throw new TransportError(
      `peer endpoint ${ep.text}: IPv${ep.family} peer but listen ${this.listenText} is IPv${this.fam}` +
        (ep.family === 4 ? ' only (listen on :: to carry both)' : ''),
    );
  }

  sendTo(p: PacketBuffer, address: string, port: number): DropReason {
    const socket = this.socket;
    if (!this.running || socket === null) {
      p.release();
      this.stats.txDropped++;
      return DropReason.NoSocket;
    }
    const size = this.ring.length;
    if (this.ringCount === size) {
      p.release();
      this.stats.txDropped++;
      return DropReason.SendFailed;
    }
    const slot = (this.ringHead + this.ringCount) % size;
    this.ring[slot] = p;
    this.ringCount++;
    try {
      socket.send(p.buf, p.offset, p.length, port, address, this.onSent);
    } catch {
      // argument errors throw synchronously and no callback follows: undo the tail entry
      this.ring[slot] = null;
      this.ringCount--;
      p.release();
      this.stats.txErrors++;
      return DropReason.SendFailed;
    }
    return DropReason.None;
  }

  async close(): Promise<void> {
    const socket = this.socket;
    if (!socket) return;
    this.unfollow();
    this.running = false;
    socket.off('message', this.onMessage);
    await new Promise<void>((resolve) => socket.close(() => resolve()));
    this.socket = null;
    this.rx.discard();
    while (this.ringCount > 0) this.popSent()?.release();
  }

  // --- internals (pre-bound arrow functions: no closure per packet)

  private readonly onMessage = (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
    this.rx.push(msg, 0, msg.length, rinfo.address, rinfo.port);
  };

  private popSent(): PacketBuffer | null {
    if (this.ringCount === 0) return null;
    const p = this.ring[this.ringHead]!;
    this.ring[this.ringHead] = null;
    this.ringHead = (this.ringHead + 1) % this.ring.length;
    this.ringCount--;
    return p;
  }

  private readonly onSent = (err: Error | null, bytes?: number): void => {
    const p = this.popSent();
    if (p === null) return; // after close() released everything
    if (err) {
      this.stats.txErrors++;
      this.onSendError?.(err);
    } else {
      this.stats.txPackets++;
      this.stats.txBytes += bytes ?? p.length;
    }
    p.release();
  };

  private readonly onSocketError = (err: Error): void => {
    this.stats.rxErrors++;
    this.onError?.(err);
  };
}
