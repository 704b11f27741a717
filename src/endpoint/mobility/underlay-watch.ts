/**
 * A mobile node's view of its underlay: which local address and port its datagrams to the home
 * agent leave from now (its care-of address as it sees it), and the moment that changes.
 *
 * The address comes from the kernel itself: a UDP socket connect()ed to the home agent (no packet
 * is sent) reports the source address the routing table picks, as every datagram of ours to the
 * home agent would get it; the port is our transport's. When the transport is bound to one
 * address (no kernel choice), that address is the care-of.
 *
 * When to look: at once on every link, address or route change the kernel announces (`ip -o
 * monitor link address route`, netlink underneath: a move is seen within a millisecond), on a
 * send error, when asked (`probe`), and every `pollMs` besides (no `ip`, or a change netlink does
 * not announce). Changes of one burst of events are looked at once (coalesced in one turn).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { formatAddress } from '../../wire/address-text.ts';
import type { SocketAddress } from '../../wire/binding.ts';
import { sameAddress, socketAddressOf } from './socket-address.ts';

export interface UnderlayWatchOptions {
  /** The home agent's underlay address. */
  target: SocketAddress;
  /** Our transport's bound address and port (null while it has none). */
  local: () => { address: string; port: number } | null;
  /** Watch `ip monitor` (default true). */
  monitor: boolean;
  pollMs: number;
  /** The care-of changed (null: no route to the home agent), noticed by `how` at `at` (epoch ms). */
  onChange: (careOf: SocketAddress | null, how: string, at: number) => void;
  log: (line: string) => void;
}

function literalLookup(address: string, family: number, cb: (err: Error | null, address: string, family: number) => void): void {
  cb(null, address, family);
}

export class UnderlayWatch {
  private current: SocketAddress | null = null;
  private known = false;
  private monitor: ChildProcess | null = null;
  private poll: NodeJS.Timeout | null = null;
  private socket: dgram.Socket | null = null;
  private pending: string | null = null;
  private pendingAt = 0;
  private busy = false;
  private stopped = true;

  constructor(private readonly o: UnderlayWatchOptions) {}

  get careOf(): SocketAddress | null {
    return this.current;
  }

  start(): void {
    this.stopped = false;
    if (this.o.monitor) this.startMonitor();
    this.poll = setInterval(() => this.probe('poll'), this.o.pollMs);
    this.poll.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.poll) clearInterval(this.poll);
    this.poll = null;
    const m = this.monitor;
    this.monitor = null;
    if (m && m.exitCode === null && m.signalCode === null) m.kill('SIGTERM');
    this.socket?.close();
    this.socket = null;
  }

  /** Look now (coalesced with other requests of this turn); the first reason wins. */
  probe(how: string): void {
    if (this.stopped) return;
    if (this.pending === null) {
      this.pending = how;
      this.pendingAt = Date.now();
      setImmediate(this.run);
    }
  }

  /** The care-of now, looked up at once (also sets the baseline without reporting it). */
  async lookup(): Promise<SocketAddress | null> {
    const c = await this.resolve();
    this.current = c;
    this.known = true;
    return c;
  }

  private readonly run = (): void => {
    if (this.busy) {
      setImmediate(this.run); // one lookup at a time: try again next turn
      return;
    }
    const how = this.pending!;
    const at = this.pendingAt;
    this.pending = null;
    this.busy = true;
    void this.resolve().then(
      (c) => {
        this.busy = false;
        if (this.stopped) return;
        if (this.known && sameAddress(c, this.current)) return;
        this.current = c;
        this.known = true;
        this.o.onChange(c, how, at);
      },
      () => {
        this.busy = false;
      },
    );
  };

  /** The source address:port the kernel would use toward the home agent now (null: no route). */
  private resolve(): Promise<SocketAddress | null> {
    const local = this.o.local();
    if (local === null) return Promise.resolve(null);
    const bound = socketAddressOf(local.address, local.port);
    const wildcard = bound === null || bound.bytes.every((b) => b === 0);
    if (!wildcard) return Promise.resolve(bound);
    const t = this.o.target;
    const type = t.family === 4 ? 'udp4' : 'udp6';
    return new Promise((resolve) => {
      let s = this.socket;
      if (s === null || (s as unknown as { type: string }).type !== type) {
        s?.close();
        s = dgram.createSocket({ type, lookup: literalLookup as unknown as dgram.SocketOptions['lookup'] });
        s.on('error', () => {});
        s.unref();
        this.socket = s;
      }
      const sock = s;
      try {
        sock.disconnect();
      } catch {
        /* not connected */
      }
      try {
        sock.connect(t.port, formatAddress(t.bytes, 0, t.family), (err?: Error) => {
          if (err) return resolve(null);
          try {
            const a = sock.address();
            resolve(socketAddressOf(a.address, local.port));
          } catch {
            resolve(null);
          }
        });
      } catch {
        resolve(null);
      }
    });
  }

  private startMonitor(): void {
    let m: ChildProcess;
    try {
      m = spawn('ip', ['-o', 'monitor', 'link', 'address', 'route'], { stdio: ['ignore', 'pipe', 'ignore'] });
    } catch (e) {
      this.o.log(`warning: ip monitor: ${(e as Error).message}; looking every ${this.o.pollMs} ms instead`);
      return;
    }
    this.monitor = m;
    m.on('error', (e) => {
      if (this.monitor === m) this.o.log(`warning: ip monitor: ${e.message}; looking every ${this.o.pollMs} ms instead`);
      this.monitor = null;
    });
    m.stdout!.on('data', () => this.probe('netlink'));
    m.once('exit', (code) => {
      if (this.monitor === m && !this.stopped) this.o.log(`warning: ip monitor exited (${code}); looking every ${this.o.pollMs} ms instead`);
      if (this.monitor === m) this.monitor = null;
    });
    m.unref();
    (m.stdout as unknown as { unref?: () => void }).unref?.();
  }
}
