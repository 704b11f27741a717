/**
 * The mobile-node example without root: the same roles in this process, over UDP on loopback,
 * with userspace stacks for the hosts (examples/mobile-node.ts runs it with --userspace).
 *
 *   cn 192.0.2.6 ─┐  "home agent's kernel"   ┌─ home link (the node, when at home)
 *                 └── (routes like the real  ┘
 *                      one: host route into
 *                      the HA endpoint while
 *                      the node is away)
 *                           │ device
 *                  home agent endpoint 127.0.0.2:P ══ UDP on loopback ══ mobile node endpoint 127.0.N.10:Q
 *                                                                          │ device
 *                                                                        mn host 10.77.0.5
 *
 * A move is the node's socket moving to another loopback address (Endpoint.moveUnderlay): wifi
 * 127.0.1.10, cellular 127.0.2.10, foreign2 127.0.3.10, home 127.0.77.10 (inside homeNetworks:
 * the node deregisters and its host is reached on the home link, natively). The stream is a
 * reliable byte stream over UDP between the two stacks (they have no TCP): numbered 1000-byte
 * chunks, cumulative acks, go-back-N retransmission after 100 ms.
 */
import { createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { parseConfig } from '../src/config/config.ts';
import { MemoryDevice } from '../src/device/memory-device.ts';
import { Endpoint } from '../src/endpoint/endpoint.ts';
import type { StackUdpSocket } from '../src/endpoint/local-stack.ts';
import { UserspaceHost } from '../src/endpoint/userspace-host.ts';
import { IPV4_DST } from '../src/wire/ipv4.ts';
import { readV4, v4Text } from '../src/wire/ip.ts';

export const US = {
  cn: '192.0.2.6',
  home: '10.77.0.5',
  ha: '127.0.0.2',
  attach: { wifi: '127.0.1.10', cellular: '127.0.2.10', foreign2: '127.0.3.10', home: '127.0.77.10' } as Record<string, string>,
  homeNetwork: '127.0.77.0/24',
  key: 'hex:6d6f62696c652d6e6f64652d6b65792d30303031',
};

/** Byte i of the test stream (as examples/mobile-stream.mjs): a 32-bit mixer of i>>2, byte i&3. */
export function fillStream(out: Uint8Array, from: number, len: number): void {
  for (let k = 0; k < len; k++) {
    const i = from + k;
    let z = (Math.floor(i / 4) + 0x9e3779b9) >>> 0;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    z = (z ^ (z >>> 16)) >>> 0;
    out[k] = (z >>> ((i & 3) * 8)) & 0xff;
  }
}

async function freeUdpPort(host: string): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, host, r));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface StreamReport {
  sent: number;
  received: number;
  bad: number;
  intact: boolean;
  sha256Sent: string;
  sha256Received: string;
  retransmissions: number;
  restarts: number;
}

/** A reliable byte stream over UDP between two userspace stacks (go-back-N). */
export class UdpStream {
  static readonly CHUNK = 1000;
  static readonly WINDOW = 32;
  private readonly tx: StackUdpSocket;
  private readonly rx: StackUdpSocket;
  private base = 0; // first unacked chunk
  private next = 0; // next chunk to send
  private expected = 0; // receiver: next chunk wanted
  private bad = 0;
  private retransmissions = 0;
  private readonly txHash = createHash('sha256');
  private readonly rxHash = createHash('sha256');
  private lastAckAt = 0;
  private stopping = false;
  private timer: NodeJS.Timeout | null = null;
  /** Receiver: epoch ms of the last in-order advance. */
  lastProgressAt = 0;
  /** Receiver: pauses of 5 ms or more between in-order advances, [start, end] epoch ms. */
  readonly stalls: [number, number][] = [];

  /** The longest pause overlapping [from, to] (0: none of 5 ms or more). */
  stallDuring(from: number, to: number): number {
    let m = 0;
    for (const [a, b] of this.stalls) if (b >= from && a <= to) m = Math.max(m, b - a);
    return m;
  }

  constructor(
    private readonly from: UserspaceHost,
    private readonly to: UserspaceHost,
    private readonly toAddress: string,
  ) {
    this.rx = to.stack.udpBind(5002);
    this.tx = from.stack.udpBind(5001);
    this.rx.on('message', (d: Buffer, info: { address: string; port: number }) => this.onData(d, info));
    this.tx.on('message', (d: Buffer) => this.onAck(d));
  }

  get receivedBytes(): number {
    return this.expected * UdpStream.CHUNK;
  }

  start(): void {
    this.lastAckAt = Date.now();
    this.timer = setInterval(() => this.pump(), 5);
  }

  private chunk(seq: number): Buffer {
    const b = Buffer.alloc(4 + UdpStream.CHUNK);
    b.writeUInt32BE(seq, 0);
    fillStream(b.subarray(4), seq * UdpStream.CHUNK, UdpStream.CHUNK);
    return b;
  }

  private pump(): void {
    const now = Date.now();
    if (this.next > this.base && now - this.lastAckAt > 100) {
      // nothing acked for a while: go back to the first unacked chunk
      this.retransmissions += this.next - this.base;
      this.next = this.base;
      this.lastAckAt = now;
    }
    while (this.next < this.base + UdpStream.WINDOW && !(this.stopping && this.next >= this.stopAt)) {
      const c = this.chunk(this.next);
      if (this.next >= this.hashed) {
        this.txHash.update(c.subarray(4));
        this.hashed = this.next + 1;
      }
      this.tx.send(c, 5002, this.toAddress);
      this.next++;
    }
  }

  private hashed = 0;
  private stopAt = Infinity;

  private onData(d: Buffer, info: { address: string; port: number }): void {
    if (d.length !== 4 + UdpStream.CHUNK) return;
    const seq = d.readUInt32BE(0);
    if (seq === this.expected) {
      const want = Buffer.alloc(UdpStream.CHUNK);
      fillStream(want, seq * UdpStream.CHUNK, UdpStream.CHUNK);
      if (!want.equals(d.subarray(4))) this.bad++;
      this.rxHash.update(d.subarray(4));
      this.expected++;
      const now = Date.now();
      if (this.lastProgressAt > 0 && now - this.lastProgressAt >= 5) this.stalls.push([this.lastProgressAt, now]);
      this.lastProgressAt = now;
    }
    const ack = Buffer.alloc(4);
    ack.writeUInt32BE(this.expected, 0);
    this.rx.send(ack, info.port, info.address);
  }

  private onAck(d: Buffer): void {
    if (d.length !== 4) return;
    const n = d.readUInt32BE(0);
    if (n > this.base) {
      this.base = n;
      this.lastAckAt = Date.now();
      if (this.next < this.base) this.next = this.base;
    }
  }

  /** Stop sending new data, wait (up to `ms`) until all is acked, report. */
  async stop(ms = 5000): Promise<StreamReport> {
    this.stopping = true;
    this.stopAt = this.next;
    const end = Date.now() + ms;
    while (this.base < this.stopAt && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    if (this.timer) clearInterval(this.timer);
    this.tx.close();
    this.rx.close();
    const sent = this.stopAt * UdpStream.CHUNK;
    const received = this.expected * UdpStream.CHUNK;
    const a = this.txHash.digest('hex');
    const b = this.rxHash.digest('hex');
    return { sent, received, bad: this.bad, intact: this.bad === 0 && sent === received && a === b, sha256Sent: a, sha256Received: b, retransmissions: this.retransmissions, restarts: 0 };
  }
}

/** The in-process world: home agent and mobile node endpoints, the two hosts, the home link. */
export class UserspaceMobileWorld {
  ha!: Endpoint;
  mn!: Endpoint;
  readonly cn = new UserspaceHost({ addresses: [US.cn], mtu: 1400, name: 'cn' });
  readonly host = new UserspaceHost({ addresses: [US.home], mtu: 1400, name: 'mn' });
  /** The home agent endpoint's device: the home agent host's "kernel" side. */
  haDev = new MemoryDevice({ name: 'ha-lan', mtu: 1400, queueLimit: 4096 });
  private haSink: ((b: Uint8Array, o: number, l: number) => void) | null = null;
  atHome = false;
  haPort = 0;
  mnPort = 0;
  log: string[] = [];

  /** `extra` (tests): the home agent's cache cap and one more node. */
  async start(log: (line: string) => void, extra: { homeAgent?: { maxBindings?: number; keepalive?: number; extraNode?: { name: string; homeAddress: string; key: string } } } = {}): Promise<void> {
    this.haPort = await freeUdpPort(US.ha);
    this.mnPort = await freeUdpPort(US.attach.wifi!);
    const haConfig = parseConfig({
      interface: { name: 'ha0', mtu: 1400 },
      listen: `${US.ha}:${this.haPort}`,
      kernelRoutes: false,
      control: false,
      mobility: {
        homeAgent: {
          homePrefixes: ['10.77.0.0/24'],
          nodes: [{ name: 'laptop', homeAddress: US.home, key: US.key }, ...(extra.homeAgent?.extraNode ? [extra.homeAgent.extraNode] : [])],
          bicastMs: 250,
          ...(extra.homeAgent?.maxBindings ? { maxBindings: extra.homeAgent.maxBindings } : {}),
          ...(extra.homeAgent?.keepalive ? { keepalive: extra.homeAgent.keepalive } : {}),
        },
      },
    }, 'home-agent (userspace)');
    const mnConfig = parseConfig({
      interface: { name: 'mn0', address: [`${US.home}/32`], mtu: 1400 },
      listen: `${US.attach.wifi}:${this.mnPort}`,
      kernelRoutes: false,
      control: false,
      peers: [{ name: 'ha', endpoint: `${US.ha}:${this.haPort}`, routes: [`${US.cn}/32`], keepalive: 1 }],
      mobility: { mobileNode: { name: 'laptop', homeAddress: US.home, homeAgent: 'ha', key: US.key, homeNetworks: [US.homeNetwork], monitor: false, pollMs: 1000 } },
    }, 'mobile-node (userspace)');
    // The home agent host's kernel: the correspondent's packets for the home address go into the
    // tunnel while the home agent holds a binding (its host route), else onto the home link.
    const home = readV4(Buffer.from([10, 77, 0, 5]), 0);
    const cn = readV4(Buffer.from([192, 0, 2, 6]), 0);
    const bound = () => (this.ha.mobility.ha?.ha.bindingForV4(home) ?? -1) >= 0;
    const deliver = (buf: Uint8Array, off: number, len: number, fromTunnel: boolean): void => {
      const dst = readV4(buf, off + IPV4_DST);
      if (dst === cn) this.cn.device.inject(buf, off, len);
      else if (dst === home) {
        if (!fromTunnel && bound()) this.haDev.inject(buf, off, len);
        else if (this.atHome) this.host.device.inject(buf, off, len);
      } else log(`home agent kernel: no route to ${v4Text(dst)}`);
    };
    this.haSink = (b, o, l) => deliver(b, o, l, true);
    this.haDev.setSink(this.haSink);
    this.cn.device.setSink((b, o, l) => deliver(b, o, l, false));
    this.host.device.setSink((b, o, l) => {
      if (this.atHome) deliver(b, o, l, false);
      else this.host.link.inject(b, o, l);
    });
    const logAs = (who: string) => (line: string) => {
      this.log.push(`${who}: ${line}`);
    };
    this.ha = new Endpoint(haConfig, { device: this.haDev, log: logAs('ha'), warmUp: 0 });
    this.mn = new Endpoint(mnConfig, { device: this.host.link, log: logAs('mn'), warmUp: 0 });
    await this.ha.start();
    await this.mn.start();
  }

  /** Attach the node at `where` (wifi, cellular, foreign2, home). */
  async move(where: string): Promise<void> {
    const addr = US.attach[where];
    if (addr === undefined) throw new Error(`no such network ${where}`);
    // the home link carries the host's traffic from the moment it is plugged in
    this.atHome = where === 'home';
    await this.mn.moveUnderlay(addr);
  }

  /** The home agent's device, for a new home agent endpoint after a restart (the old one closed it). */
  haDev2(): MemoryDevice {
    const d = new MemoryDevice({ name: 'ha-lan', mtu: 1400, queueLimit: 4096 });
    d.setSink(this.haSink!);
    this.haDev = d;
    return d;
  }

  async stop(): Promise<void> {
    await this.mn?.stop();
    await this.ha?.stop();
    await this.cn.close();
    await this.host.close();
    await this.haDev.close();
  }
}
