/**
 * The mobile-node topology in network namespaces (needs root), after the MIPL testbed of the
 * seed (a home agent on its home link, access routers of visited networks, a correspondent on
 * the internet):
 *
 *                         cn 192.0.2.6
 *                              │ 192.0.2.4/30
 *   home agent 192.0.2.2 ─── "internet" router ─── wifi     198.51.100.0/24 ─┐
 *   ipferry (ferry0)       (net; masquerades    ─── cellular 203.0.113.0/24  ─┼─ mobile node
 *   home link 10.77.0.1/24   foreign2 if asked) ─── foreign2 100.64.2.0/24   ─┘  ipferry (ferry0, 10.77.0.5)
 *        └────────────────── home link 10.77.0.0/24 ───────────────────────────── (its "home" port)
 *
 * The mobile node has one port on each network; exactly one carries its default route at a time.
 * A move (`attach`): the new port is up already (`prepare`: associated, no route yet), then the
 * old port goes down (break) and the default route moves to the new one (make), as a laptop
 * leaving a Wi-Fi cell falls back to its cellular link. Its home address 10.77.0.5 lives on
 * its TUN; at home it is also on the home port (the home agent reaches it there natively once the
 * binding is gone). Every namespace name carries a unique suffix; destroy() (also on exit and
 * SIGINT/SIGTERM) removes them all with their links and TUNs.
 *
 * Also here, for examples/mobile-node.ts, test/integration/mobility-netns.test.ts and the
 * mobility bench: the two endpoint configs, the TCP stream between correspondent and mobile node
 * (examples/mobile-stream.mjs), asking an endpoint through its control socket, and `handover()`,
 * one measured move.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requestSnapshot } from '../src/control/control-socket.ts';
import type { HandoverSnapshot, ShowWhat, Snapshot } from '../src/endpoint/snapshot.ts';
import { EndpointProcess, SiteTopology, sleep } from './site-topology.ts';

export const MOB = {
  ha: { up: '192.0.2.2', home: '10.77.0.1' },
  cn: '192.0.2.6',
  home: '10.77.0.5',
  homePrefix: '10.77.0.0/24',
  port: 6080,
  /** The mobile node's ports: its address, the network, the access router. */
  nets: {
    wifi: { dev: 'wifi', addr: '198.51.100.10', prefix: 24, gw: '198.51.100.1' },
    cellular: { dev: 'cell', addr: '203.0.113.10', prefix: 24, gw: '203.0.113.1' },
    foreign2: { dev: 'f2', addr: '100.64.2.10', prefix: 24, gw: '100.64.2.1' },
    home: { dev: 'home', addr: '10.77.0.5', prefix: 24, gw: '10.77.0.1' },
  } as Record<string, { dev: string; addr: string; prefix: number; gw: string }>,
  key: 'hex:6d6f62696c652d6e6f64652d6b65792d30303031',
} as const;

export type Network = 'wifi' | 'cellular' | 'foreign2' | 'home';

export class MobileTopology extends SiteTopology {
  readonly net: string;
  readonly ha: string;
  readonly cn: string;
  readonly mn: string;
  /** Where the mobile node is attached now. */
  at: Network | null = null;

  constructor(
    tag: string = `${process.pid}${Math.random().toString(36).slice(2, 6)}`,
    /** Masquerade what leaves foreign2 (a NAT between the node and its home agent). */
    readonly natForeign2 = false,
  ) {
    super(tag);
    this.net = `ipf-mnet-${tag}`;
    this.ha = `ipf-mha-${tag}`;
    this.cn = `ipf-mcn-${tag}`;
    this.mn = `ipf-mmn-${tag}`;
  }

  override get namespaces(): string[] {
    return [this.net, this.ha, this.cn, this.mn];
  }

  override build(): this {
    this.destroyOnExit();
    try {
      for (const ns of this.namespaces) {
        ip(['netns', 'add', ns]);
        this.exec(ns, ['ip', 'link', 'set', 'lo', 'up']);
        // arp_notify: a port coming up announces itself (gratuitous ARP), as a Wi-Fi or cellular
        // stack does on association, so a router that still has the node's address INCOMPLETE
        // from before learns it at once instead of at its next probe (up to 1 s later).
        this.exec(ns, ['sysctl', '-qw', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0', 'net.ipv4.conf.all.arp_notify=1', 'net.ipv4.conf.default.arp_notify=1']);
      }
      for (const ns of [this.net, this.ha]) this.exec(ns, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
      const veth = (a: string, an: string, b: string, bn: string) => ip(['-n', a, 'link', 'add', an, 'type', 'veth', 'peer', 'name', bn, 'netns', b]);
      veth(this.net, 'to-ha', this.ha, 'wan0');
      veth(this.net, 'to-cn', this.cn, 'eth0');
      veth(this.net, 'ar-wifi', this.mn, 'wifi');
      veth(this.net, 'ar-cell', this.mn, 'cell');
      veth(this.net, 'ar-f2', this.mn, 'f2');
      veth(this.ha, 'home', this.mn, 'home');
      const addrs: [string, string, string][] = [
        [this.net, 'to-ha', '192.0.2.1/30'],
        [this.ha, 'wan0', `${MOB.ha.up}/30`],
        [this.net, 'to-cn', '192.0.2.5/30'],
        [this.cn, 'eth0', `${MOB.cn}/30`],
        [this.net, 'ar-wifi', '198.51.100.1/24'],
        [this.net, 'ar-cell', '203.0.113.1/24'],
        [this.net, 'ar-f2', '100.64.2.1/24'],
        [this.ha, 'home', `${MOB.ha.home}/24`],
      ];
      for (const n of ['wifi', 'cellular', 'foreign2', 'home']) {
        const x = MOB.nets[n]!;
        addrs.push([this.mn, x.dev, `${x.addr}/${x.prefix}`]);
      }
      for (const [ns, dev, a] of addrs) this.exec(ns, ['ip', 'addr', 'add', a, 'dev', dev]);
      for (const [ns, dev] of [
        [this.net, 'to-ha'], [this.net, 'to-cn'], [this.net, 'ar-wifi'], [this.net, 'ar-cell'], [this.net, 'ar-f2'],
        [this.ha, 'wan0'], [this.ha, 'home'], [this.cn, 'eth0'],
      ] as const) {
        this.exec(ns, ['ip', 'link', 'set', 'dev', dev, 'up']);
      }
      this.exec(this.net, ['ip', 'route', 'add', MOB.homePrefix, 'via', MOB.ha.up]);
      this.exec(this.ha, ['ip', 'route', 'add', 'default', 'via', '192.0.2.1']);
      this.exec(this.cn, ['ip', 'route', 'add', 'default', 'via', '192.0.2.5']);
      if (this.natForeign2) {
        this.exec(this.net, ['nft', 'add', 'table', 'ip', 'ipfnat']);
        this.exec(this.net, ['nft', 'add', 'chain', 'ip', 'ipfnat', 'post', '{ type nat hook postrouting priority srcnat; }']);
        this.exec(this.net, ['nft', 'add', 'rule', 'ip', 'ipfnat', 'post', 'ip', 'saddr', '100.64.2.0/24', 'oifname', '!=', 'ar-f2', 'masquerade']);
      }
      return this;
    } catch (e) {
      this.destroy();
      throw e;
    }
  }

  override destroy(): void {
    if (this.batch !== null && this.batch.exitCode === null) this.batch.kill('SIGKILL');
    super.destroy();
  }

  /**
   * Bring the port for `to` up ahead of a move (the radio associates; takes no route yet). A port
   * that just came up drops what it is given until the kernel's link watcher activates its queue,
   * which it does at most once a second: a move wants the port up for longer than that (see
   * `ready`), as a phone's cellular is up long before Wi-Fi goes away.
   */
  prepare(to: Network): void {
    const dev = MOB.nets[to]!.dev;
    if (this.upSince.has(dev)) return;
    this.exec(this.mn, ['ip', 'link', 'set', 'dev', dev, 'up']);
    this.upSince.set(dev, Date.now());
  }

  /** Since when `to`'s port is up (0: down). */
  ready(to: Network): number {
    return this.upSince.get(MOB.nets[to]!.dev) ?? 0;
  }

  private readonly upSince = new Map<string, number>();

  /** The `ip -batch` lines of a move to `to`: the old port goes down (break), the default route moves (make). */
  attachCommands(to: Network): string[] {
    const x = MOB.nets[to]!;
    const lines: string[] = [];
    if (this.at !== null && this.at !== to) lines.push(`link set ${MOB.nets[this.at]!.dev} down`);
    lines.push(`link set ${x.dev} up`, `route replace default via ${x.gw} dev ${x.dev}`);
    return lines;
  }

  /**
   * Move the node to `to` (see attachCommands). The commands go to one `ip -batch` process kept
   * running in the node's namespace (started on first use), so a move is a write to a pipe the
   * process is already reading, not a fork and exec of `ip` (which alone took 5-170 ms on a busy
   * machine, and would land in the measured gap).
   */
  attach(to: Network): void {
    if (this.batch === null || this.batch.exitCode !== null) {
      this.batch = spawn('ip', ['-n', this.mn, '-force', '-batch', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
      this.batch.stderr?.on('data', (d: Buffer) => (this.batchErrors += d.toString()));
      this.batch.stdin!.on('error', () => {});
    }
    this.batch.stdin!.write(`${this.attachCommands(to).join('\n')}\n`);
    if (this.at !== null && this.at !== to) this.upSince.delete(MOB.nets[this.at]!.dev);
    this.upSince.set(MOB.nets[to]!.dev, this.upSince.get(MOB.nets[to]!.dev) ?? Date.now());
    this.at = to;
  }

  private batch: ChildProcess | null = null;
  /** What the `ip -batch` process said on stderr (its commands' errors). */
  batchErrors = '';

  /** Before the first move: every port of the node down but its first network's, which carries the default route. */
  initialAttach(to: Network): void {
    for (const n of ['wifi', 'cellular', 'foreign2', 'home'] as const) {
      if (n !== to) this.exec(this.mn, ['ip', 'link', 'set', MOB.nets[n]!.dev, 'down']);
    }
    const x = MOB.nets[to]!;
    this.exec(this.mn, ['ip', 'link', 'set', x.dev, 'up']);
    this.exec(this.mn, ['ip', 'route', 'replace', 'default', 'via', x.gw, 'dev', x.dev]);
    this.upSince.set(x.dev, Date.now());
    this.at = to;
  }
}

function ip(args: string[]): string {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${(r.stderr || '').trim()}`);
  return r.stdout;
}

// ---------------------------------------------------------------------------------------------
// configs

export interface MobileConfigOptions {
  /** Directory for the control sockets (ha.sock, mn.sock). */
  controlDir: string;
  /** Lifetime the node asks for, seconds (default 60). */
  lifetime?: number;
  /** The home agent's longest lifetime, seconds (default 600). */
  maxLifetime?: number;
  log?: 'error' | 'warn' | 'info' | 'debug';
}

/** The home agent's and the mobile node's configs (JSON objects; see src/config/mobility.ts). */
export function mobileConfigs(o: MobileConfigOptions): { ha: Record<string, unknown>; mn: Record<string, unknown> } {
  const ha = {
    interface: { name: 'ferry0', mtu: 1400 },
    listen: `${MOB.ha.up}:${MOB.port}`,
    mobility: {
      homeAgent: {
        homePrefixes: [MOB.homePrefix],
        nodes: [{ name: 'laptop', homeAddress: MOB.home, key: MOB.key }],
        bicastMs: 250,
        ...(o.maxLifetime ? { maxLifetime: o.maxLifetime } : {}),
      },
    },
    control: join(o.controlDir, 'ha.sock'),
    log: o.log ?? 'info',
  };
  const mn = {
    interface: { name: 'ferry0', address: [`${MOB.home}/32`], mtu: 1400 },
    listen: `:${MOB.port}`,
    // the correspondent is reached through the home agent (a reverse tunnel)
    peers: [{ name: 'ha', endpoint: `${MOB.ha.up}:${MOB.port}`, routes: [`${MOB.cn}/32`], keepalive: 1 }],
    mobility: {
      mobileNode: {
        name: 'laptop', homeAddress: MOB.home, homeAgent: 'ha', key: MOB.key, lifetime: o.lifetime ?? 60, homeNetworks: [MOB.homePrefix],
      },
    },
    control: join(o.controlDir, 'mn.sock'),
    log: o.log ?? 'info',
  };
  return { ha, mn };
}

export function writeConfig(dir: string, name: string, config: unknown): string {
  const p = join(dir, `${name}.json`);
  writeFileSync(p, `${JSON.stringify(config, null, 2)}\n`);
  return p;
}

/** A snapshot part through an endpoint's control socket (what `ipferry show WHAT --json` prints). */
export function ask(ep: EndpointProcess, what: ShowWhat): Promise<Partial<Snapshot>> {
  return requestSnapshot(ep.controlPath!, what, { timeoutMs: 5000 });
}

// ---------------------------------------------------------------------------------------------
// the TCP stream correspondent -> mobile node (examples/mobile-stream.mjs)

const STREAM = fileURLToPath(new URL('./mobile-stream.mjs', import.meta.url));

export interface StreamDone {
  bytes: number;
  bad: number;
  sha256: string;
  resets: number;
  error: string | null;
}

/** One side of the stream, as a process in a namespace. */
class StreamProcess {
  readonly child: ChildProcess;
  out = '';
  listening = false;
  connected = false;
  /** Receiver: bytes so far and when they last grew (epoch ms). */
  bytes = 0;
  progressAt = 0;
  /** Receiver: pauses of 5 ms or more between arriving bytes, [start, end] epoch ms. */
  readonly stalls: [number, number][] = [];
  done: StreamDone | null = null;

  constructor(topo: SiteTopology, ns: string, args: string[]) {
    this.child = topo.spawn(ns, [process.execPath, STREAM, ...args]);
    let buf = '';
    this.child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        this.out += `${line}\n`;
        let m: Record<string, unknown>;
        try {
          m = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        if (m.ev === 'listening') this.listening = true;
        else if (m.ev === 'connected') this.connected = true;
        else if (m.ev === 'progress') {
          if ((m.bytes as number) > this.bytes) this.progressAt = m.at as number;
          this.bytes = m.bytes as number;
        } else if (m.ev === 'stall') this.stalls.push([(m.at as number) - (m.ms as number), m.at as number]);
        else if (m.ev === 'done') this.done = m as unknown as StreamDone;
      }
    });
    this.child.stderr?.on('data', (d: Buffer) => (this.out += d.toString()));
  }
}

export class TcpStream {
  readonly rx: StreamProcess;
  tx: StreamProcess | null = null;

  constructor(
    private readonly topo: MobileTopology,
    /** Bytes per second. */
    private readonly rate = 2_000_000,
  ) {
    this.rx = new StreamProcess(topo, topo.mn, ['receive', MOB.home, '5001']);
  }

  async start(): Promise<void> {
    for (let i = 0; i < 200 && !this.rx.listening; i++) await sleep(25);
    if (!this.rx.listening) throw new Error(`stream receiver did not start: ${this.rx.out.trim()}`);
    this.tx = new StreamProcess(this.topo, this.topo.cn, ['send', MOB.home, '5001', String(this.rate)]);
    for (let i = 0; i < 400 && !(this.tx.connected && this.rx.bytes > 0); i++) await sleep(25);
    if (!this.tx.connected) throw new Error(`stream sender did not connect: ${this.tx.out.trim()}`);
  }

  /** Bytes the receiver has checked so far. */
  get received(): number {
    return this.rx.bytes;
  }

  /** Wait until the receiver has more than `bytes`; returns when that was (epoch ms), or null after `ms`. */
  async growsBeyond(bytes: number, ms = 15_000): Promise<number | null> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (this.rx.bytes > bytes) return this.rx.progressAt;
      await sleep(5);
    }
    return null;
  }

  /** End the stream (the sender finishes and closes) and collect both sides' reports. */
  async stop(ms = 30_000): Promise<{ sent: StreamDone | null; received: StreamDone | null }> {
    this.tx?.child.kill('SIGTERM');
    const end = Date.now() + ms;
    while (Date.now() < end && (this.tx?.done === null || this.rx.done === null)) await sleep(20);
    return { sent: this.tx?.done ?? null, received: this.rx.done };
  }
}

// ---------------------------------------------------------------------------------------------
// one measured move

export interface HandoverResult {
  from: Network | null;
  to: Network;
  /** Switch command -> the home agent's ack at the node (the binding points at the new care-of), ms. */
  gapMs: number;
  /** Switch command -> the node noticed, ms. */
  detectMs: number;
  /** How it noticed. */
  detection: string;
  /** How long the switch command itself ran (fork/exec of `ip -batch` included), ms. */
  commandMs: number;
  /**
   * The longest pause in the bytes arriving at the stream's receiver that overlaps the move
   * (TCP's recovery included; 0: none of 5 ms or more); null without a stream.
   */
  stallMs: number | null;
  event: HandoverSnapshot;
}

/**
 * Move the node to `to` and measure: from just before the switch command to the handover the
 * node reports (its control socket), and to the first new bytes of the stream.
 */
export async function handover(topo: MobileTopology, mn: EndpointProcess, to: Network, stream: TcpStream | null, timeoutMs = 15_000): Promise<HandoverResult> {
  const from = topo.at;
  // the new port up for a while first (its queue active: see MobileTopology.prepare)
  topo.prepare(to);
  const wait = topo.ready(to) + 1200 - Date.now();
  if (wait > 0) await sleep(wait);
  const t0 = Date.now();
  topo.attach(to);
  const commandMs = Date.now() - t0;
  const end = t0 + timeoutMs;
  let event: HandoverSnapshot | undefined;
  while (Date.now() < end) {
    event = [...((await ask(mn, 'binding-updates')).mobility?.handovers ?? [])].reverse().find((e) => e.at >= t0);
    if (event !== undefined) break;
    await sleep(5);
  }
  if (event === undefined) throw new Error(`no handover ${from ?? '-'} -> ${to} within ${timeoutMs / 1000} s`);
  let stallMs: number | null = null;
  if (stream !== null) {
    // bytes that left after the node was registered have arrived: any pause of the move is over
    const reg = Date.now();
    await sleep(50);
    const at = await stream.growsBeyond(stream.received, timeoutMs);
    if (at === null) throw new Error(`the stream did not resume within ${timeoutMs / 1000} s after ${from ?? '-'} -> ${to}`);
    stallMs = 0;
    for (const [s0, s1] of stream.rx.stalls) if (s1 >= t0 - 50 && s0 <= reg) stallMs = Math.max(stallMs, s1 - s0);
  }
  return { from, to, gapMs: event.at - t0, detectMs: (event.detectedAt ?? event.at) - t0, detection: event.detection ?? '?', commandMs, stallMs, event };
}

export { EndpointProcess, sleep };

// ---------------------------------------------------------------------------------------------
// a running testbed, and a series of moves (the integration test and the bench share them)

export interface MobileWorld {
  topo: MobileTopology;
  dir: string;
  ha: EndpointProcess;
  mn: EndpointProcess;
  /** Stop both endpoints, remove the namespaces and the directory. */
  close(): Promise<void>;
}

/** Build the testbed with the node on `start`, run both endpoints, wait for the first registration. */
export async function startMobileWorld(start: Network, opts: Partial<MobileConfigOptions> = {}, nat = false, dir?: string): Promise<MobileWorld> {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const topo = new MobileTopology(undefined, nat);
  const d = dir ?? mkdtempSync(join(tmpdir(), 'ipferry-mob-'));
  const w: MobileWorld = {
    topo,
    dir: d,
    ha: null as unknown as EndpointProcess,
    mn: null as unknown as EndpointProcess,
    close: async () => {
      for (const e of [w.mn, w.ha]) if (e?.running) await e.stop(5000);
      topo.destroy();
      if (dir === undefined) rmSync(d, { recursive: true, force: true });
    },
  };
  try {
    topo.build();
    topo.initialAttach(start);
    const c = mobileConfigs({ controlDir: d, ...opts });
    w.ha = new EndpointProcess(topo, topo.ha, writeConfig(d, 'ha', c.ha), join(d, 'ha.sock'));
    await w.ha.ready();
    w.mn = new EndpointProcess(topo, topo.mn, writeConfig(d, 'mn', c.mn), join(d, 'mn.sock'));
    await w.mn.ready();
    const end = Date.now() + 15_000;
    while (((await ask(w.ha, 'bindings')).mobility?.bindings?.length ?? 0) === 0) {
      if (Date.now() > end) throw new Error(`the node did not register:\n${w.mn.output.trim()}`);
      await sleep(10);
    }
    return w;
  } catch (e) {
    await w.close();
    throw e;
  }
}

export interface SwitchSeries {
  results: HandoverResult[];
  sent: StreamDone | null;
  received: StreamDone | null;
}

/** `n` moves cycling cellular -> foreign2 -> wifi under a running TCP stream; the stream's reports at the end. */
export async function switchSeries(w: MobileWorld, n: number, onEach?: (r: HandoverResult) => void): Promise<SwitchSeries> {
  const stream = new TcpStream(w.topo);
  const cycle: Network[] = ['cellular', 'foreign2', 'wifi'];
  const results: HandoverResult[] = [];
  try {
    await stream.start();
    for (let i = 0; i < n; i++) {
      const r = await handover(w.topo, w.mn, cycle[i % 3]!, stream);
      results.push(r);
      onEach?.(r);
      await sleep(100);
    }
  } catch (e) {
    await stream.stop(2000);
    throw e;
  }
  return { results, ...(await stream.stop()) };
}
