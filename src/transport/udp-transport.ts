/**
 * The UDP underlay: one Node `dgram` socket (IPv4 `udp4` or IPv6 `udp6`, optionally dual-stack)
 * carrying GUE (src/wire/gue.ts) to and from the peers.
 *
 * Receive: Node hands us one Buffer + rinfo per datagram (allocated inside Node: unavoidable).
 * We copy the bytes into a pool slot, look the sender up in a two-level Map (address string ->
 * port -> peer index; no string building) and store the peer index in `PacketBuffer.tag` (-1 for
 * an unknown sender: the caller drops it and counts UnknownPeer, or hands it to mobility, which is
 * why the sender's address and port travel along in `RecvInfo`). Datagrams are delivered in
 * batches: everything libuv read in one poll wake-up (it reads up to 32 per wake-up) goes out in
 * one `onBatch` call from a setImmediate, or sooner when `maxBatch` fill up.
 *
 * Send: `send(p, peer)` hands buf[offset, offset+length) to the kernel without a copy, to the
 * peer's address string cached by `setPeer` (never rebuilt per packet). The socket is created
 * with a synchronous `lookup` (addresses are literals already), so the datagram goes to the kernel
 * inside the `send()` call whenever the socket buffer has room, instead of one DNS-lookup tick
 * later. Node's dgram has no sendmmsg: an array of buffers passed to `socket.send` is gathered into
 * ONE datagram, and there is no cork for UDP, so there is nothing to batch at this level.
 *
 * ## Who owns a PacketBuffer
 * - Received: from the `onBatch` call on, each `batch[i]` (i < count) belongs to the handler, which
 *   must release it or pass it on (e.g. to `send`, a TUN write). The `batch` array and `RecvInfo`
 *   are reused: valid only during the call.
 * - Sent: `send()` takes ownership in every case. On any failure it releases the slot at once and
 *   returns the DropReason for the caller to count. On success the slot stays in a preallocated
 *   in-flight ring until dgram's completion callback, one shared function (no closure per packet),
 *   releases it. Completions arrive in send order (libuv sends FIFO: once a datagram has to queue,
 *   every later one queues behind it), so the callback always releases the ring's oldest slot.
 *   Holding the slot until then is required: when the kernel buffer is full libuv queues the
 *   request and reads the bytes later. `close()` releases whatever is still pending.
 */
import dgram from 'node:dgram';
import { SocketAddress } from 'node:net';
import { DropReason } from '../drop-reason.ts';
import type { PacketBuffer, PacketPools } from '../pool.ts';

/**
 * Default UDP port: 6080, the port IANA assigned to GUE ("gue", draft-ietf-intarea-gue), so
 * middleboxes and dissectors (Wireshark decodes udp/6080 as GUE) recognise the traffic. Linux
 * fou/gue has no default; its man page examples use 5555/9999, which means nothing to anyone else.
 */
export const DEFAULT_PORT = 6080;
export const DEFAULT_MAX_BATCH = 64;
export const DEFAULT_MAX_IN_FLIGHT = 1024;
/** Asked for; the kernel caps it at net.core.rmem_max / wmem_max. */
export const DEFAULT_SOCKET_BUFFER = 4 << 20;

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

/** Sender of each packet of a batch; index i belongs to batch[i]. Valid only during onBatch. */
export interface RecvInfo {
  addresses: string[];
  ports: Uint16Array;
}

export type BatchHandler = (batch: PacketBuffer[], count: number, from: RecvInfo) => void;

export interface UdpTransportOptions {
  /** Local address to bind: an IPv4 literal (udp4 socket) or IPv6 literal (udp6). Default 0.0.0.0. */
  address?: string;
  /** Local port; 0 picks a free one. Default DEFAULT_PORT. */
  port?: number;
  /** udp6 only: false lets one socket also carry IPv4 (peers as ::ffff:a.b.c.d). Default true. */
  ipv6Only?: boolean;
  pools: PacketPools;
  onBatch: BatchHandler;
  /** Socket errors after start (rare on UDP); they are counted either way. */
  onError?: (err: Error) => void;
  maxBatch?: number;
  maxInFlight?: number;
  recvBufferSize?: number;
  sendBufferSize?: number;
}

export class TransportStats {
  rxPackets = 0;
  rxBytes = 0;
  /** onBatch calls. */
  rxBatches = 0;
  /** Datagrams from an address:port that is no peer's endpoint (delivered with tag -1). */
  rxUnknown = 0;
  /** Datagrams dropped because the pool had no free slot. */
  rxNoBuffer = 0;
  /** Datagrams dropped because no pool slot class is big enough. */
  rxTooBig = 0;
  /** Socket errors. */
  rxErrors = 0;
  txPackets = 0;
  txBytes = 0;
  /** Sends the kernel refused (ENETUNREACH, EMSGSIZE, ...), reported by the completion callback. */
  txErrors = 0;
  /** Sends refused before reaching the socket: not running, unknown peer, in-flight ring full. */
  txDropped = 0;

  toJSON(): Record<string, number> {
    return { ...(this as unknown as Record<string, number>) };
  }
}

interface PeerEndpoint {
  address: string;
  port: number;
}

/** Format address:port for messages ([v6]:port). */
export function formatHostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

function familyOf(address: string): 4 | 6 | 0 {
  try {
    new SocketAddress({ address, family: 'ipv4' });
    return 4;
  } catch {
    try {
      new SocketAddress({ address, family: 'ipv6' });
      return 6;
    } catch {
      return 0;
    }
  }
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

export class UdpTransport {
  readonly stats = new TransportStats();
  readonly family: 4 | 6;
  private readonly bindAddress: string;
  private readonly bindPort: number;
  private readonly ipv6Only: boolean;
  private readonly pools: PacketPools;
  private readonly onBatch: BatchHandler;
  private readonly onError?: (err: Error) => void;
  private readonly maxBatch: number;
  private readonly recvBufferSize: number;
  private readonly sendBufferSize: number;
  private socket: dgram.Socket | null = null;
  private running = false;

  // receive batch (preallocated, reused)
  private readonly batch: PacketBuffer[];
  private readonly info: RecvInfo;
  private count = 0;
  private flushScheduled = false;

  // peers
  private readonly peers: (PeerEndpoint | undefined)[] = [];
  private readonly byAddress = new Map<string, Map<number, number>>();

  // in-flight sends, released in order by the shared completion callback
  private readonly ring: (PacketBuffer | null)[];
  private ringHead = 0;
  private ringCount = 0;

  constructor(opts: UdpTransportOptions) {
    const address = opts.address ?? '0.0.0.0';
    const fam = familyOf(address);
    const port = opts.port ?? DEFAULT_PORT;
    if (fam === 0) throw new TransportError(`listen ${address}: not an IPv4 or IPv6 address`);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new TransportError(`listen ${formatHostPort(address, port)}: port out of range (0-65535)`);
    }
    this.family = fam;
    this.bindAddress = canonical(address, fam);
    this.bindPort = port;
    this.ipv6Only = opts.ipv6Only ?? true;
    this.pools = opts.pools;
    this.onBatch = opts.onBatch;
    this.onError = opts.onError;
    this.maxBatch = opts.maxBatch ?? DEFAULT_MAX_BATCH;
    this.recvBufferSize = opts.recvBufferSize ?? DEFAULT_SOCKET_BUFFER;
    this.sendBufferSize = opts.sendBufferSize ?? DEFAULT_SOCKET_BUFFER;
    this.batch = new Array<PacketBuffer>(this.maxBatch);
    this.info = { addresses: new Array<string>(this.maxBatch).fill(''), ports: new Uint16Array(this.maxBatch) };
    this.ring = new Array<PacketBuffer | null>(opts.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT).fill(null);
  }

  /** "address:port" as configured (before start) or as bound (after). */
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

  /** Sends handed to the kernel whose completion has not fired yet (slots still held). */
  get inFlight(): number {
    return this.ringCount;
  }

  /** Bind the socket. Rejects with a TransportError carrying one line, e.g. `listen 0.0.0.0:6080: port in use`. */
  async start(): Promise<void> {
    if (this.socket) throw new TransportError(`listen ${this.listenText}: already started`);
    const socket = dgram.createSocket({
      type: this.family === 4 ? 'udp4' : 'udp6',
      ipv6Only: this.family === 6 ? this.ipv6Only : undefined,
      lookup: literalLookup as unknown as dgram.SocketOptions['lookup'],
    });
    const where = formatHostPort(this.bindAddress, this.bindPort);
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind({ address: this.bindAddress, port: this.bindPort }, () => {
          socket.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      socket.close();
      const e = err as NodeJS.ErrnoException;
      throw new TransportError(bindErrorMessage(where, e), e.code);
    }
    try {
      socket.setRecvBufferSize(this.recvBufferSize);
      socket.setSendBufferSize(this.sendBufferSize);
    } catch {
      // best effort: the kernel caps or refuses; the defaults still work
    }
    socket.on('message', this.onMessage);
    socket.on('error', this.onSocketError);
    this.socket = socket;
    this.running = true;
  }

  /**
   * Set (or move) the endpoint of peer `index` (control plane). IPv4 peers on a dual-stack udp6
   * socket become ::ffff:a.b.c.d. Throws TransportError for an address the socket cannot reach.
   */
  setPeer(index: number, address: string, port: number): void {
    if (!Number.isInteger(index) || index < 0) throw new RangeError(`bad peer index ${index}`);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new TransportError(`peer endpoint ${formatHostPort(address, port)}: port out of range (1-65535)`);
    }
    const fam = familyOf(address);
    if (fam === 0) throw new TransportError(`peer endpoint ${address}: not an IPv4 or IPv6 address`);
    let text: string;
    if (fam === this.family) {
      text = canonical(address, fam);
    } else if (fam === 4 && this.family === 6 && !this.ipv6Only) {
      text = canonical(`::ffff:${address}`, 6);
    } else {
      throw new TransportError(
        `peer endpoint ${formatHostPort(address, port)}: IPv${fam} peer but listen ${this.listenText} is IPv${this.family}` +
          (fam === 4 ? ' (listen on :: with ipv6Only false to carry both)' : ''),
      );
    }
    this.removePeer(index);
    this.peers[index] = { address: text, port };
    let ports = this.byAddress.get(text);
    if (!ports) this.byAddress.set(text, (ports = new Map()));
    ports.set(port, index);
  }

  removePeer(index: number): void {
    const old = this.peers[index];
    if (!old) return;
    this.peers[index] = undefined;
    const ports = this.byAddress.get(old.address);
    if (ports && ports.get(old.port) === index) {
      ports.delete(old.port);
      if (ports.size === 0) this.byAddress.delete(old.address);
    }
  }

  /** The endpoint of peer `index` as the socket sees it (canonical text), or undefined. */
  peerEndpoint(index: number): { address: string; port: number } | undefined {
    const p = this.peers[index];
    return p ? { address: p.address, port: p.port } : undefined;
  }

  /** Peer index of a sender (as rinfo reports it), or -1. */
  lookupPeer(address: string, port: number): number {
    const ports = this.byAddress.get(address);
    if (ports === undefined) return -1;
    const i = ports.get(port);
    return i === undefined ? -1 : i;
  }

  /**
   * Send p's bytes to peer `peer`. Takes ownership of p in every case (see the header comment).
   * Returns None when handed to the socket, else the reason (already released; the caller counts).
   */
  send(p: PacketBuffer, peer: number): DropReason {
    const ep = this.peers[peer];
    if (ep === undefined) {
      p.release();
      this.stats.txDropped++;
      return DropReason.UnknownPeer;
    }
    return this.sendTo(p, ep.address, ep.port);
  }

  /**
   * Send to an address:port that need not be a peer (control plane: e.g. answering a mobile node
   * at a new care-of address). `address` must be a literal in the socket's family (canonical text
   * not needed). Same ownership rule as `send`.
   */
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

  /** Stop receiving and sending, close the socket, release every slot the transport still holds. */
  async close(): Promise<void> {
    const socket = this.socket;
    if (!socket) return;
    this.running = false;
    socket.off('message', this.onMessage);
    await new Promise<void>((resolve) => socket.close(() => resolve()));
    this.socket = null;
    // undelivered receive batch
    for (let i = 0; i < this.count; i++) this.batch[i]!.release();
    this.count = 0;
    // sends whose completion never fired
    while (this.ringCount > 0) this.popSent()?.release();
  }

  // --- internals (pre-bound arrow functions: no closure per packet)

  private readonly onMessage = (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
    const n = msg.length;
    const p = this.pools.acquire(n);
    if (p === null) {
      if (n > this.pools.large.capacity) this.stats.rxTooBig++;
      else this.stats.rxNoBuffer++;
      return;
    }
    msg.copy(p.buf, p.offset, 0, n);
    p.length = n;
    const ports = this.byAddress.get(rinfo.address);
    const idx = ports === undefined ? undefined : ports.get(rinfo.port);
    if (idx === undefined) {
      p.tag = -1;
      this.stats.rxUnknown++;
    } else {
      p.tag = idx;
    }
    this.stats.rxPackets++;
    this.stats.rxBytes += n;
    const i = this.count++;
    this.batch[i] = p;
    this.info.addresses[i] = rinfo.address;
    this.info.ports[i] = rinfo.port;
    if (this.count === this.maxBatch) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushImmediate);
    }
  };

  private readonly flushImmediate = (): void => {
    this.flushScheduled = false;
    this.flush();
  };

  private flush(): void {
    const n = this.count;
    if (n === 0) return;
    this.count = 0;
    this.stats.rxBatches++;
    try {
      this.onBatch(this.batch, n, this.info);
    } catch (err) {
      this.stats.rxErrors++;
      this.onError?.(err as Error);
    }
  }

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
    if (err) this.stats.txErrors++;
    else {
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
