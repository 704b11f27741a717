/**
 * The seed's site-to-site topology in network namespaces (needs root):
 *
 *   hostA 192.168.10.10 ── lan ── gwA 203.0.113.10 ══ "internet" veth ══ 203.0.113.20 gwB ── lan ── hostB 192.168.20.20
 *         fd00:10::10                 2001:db8:113::10                   2001:db8:113::20              fd00:20::20
 *
 * Each gateway forwards; the ipferry endpoints run on the gateways. Every namespace name carries
 * a unique suffix, and `destroy()` (also run on exit, SIGINT, SIGTERM and SIGHUP) removes them all: the
 * veths and any TUN inside go with their namespace.
 *
 * Also here, for the example, the integration tests and the end-to-end bench: `siteConfigs()` (the
 * two endpoint configs for this topology), `EndpointProcess` (`ipferry up` inside a namespace).
 */
import { execFile, execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_PORT } from '../src/transport/udp-transport.ts';

export const SITE = {
  hostA: { v4: '192.168.10.10', v6: 'fd00:10::10' },
  gwA: { lan4: '192.168.10.1', lan6: 'fd00:10::1', wan4: '203.0.113.10', wan6: '2001:db8:113::10' },
  gwB: { lan4: '192.168.20.1', lan6: 'fd00:20::1', wan4: '203.0.113.20', wan6: '2001:db8:113::20' },
  hostB: { v4: '192.168.20.20', v6: 'fd00:20::20' },
  siteA: { v4: '192.168.10.0/24', v6: 'fd00:10::/64' },
  siteB: { v4: '192.168.20.0/24', v6: 'fd00:20::/64' },
  tunnelMtu: 1400,
} as const;

const live = new Set<SiteTopology>();
let hooked = false;
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  const cleanAll = () => {
    for (const t of live) t.destroy();
  };
  process.on('exit', cleanAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      cleanAll();
      process.exit(130);
    });
  }
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

export class SiteTopology {
  readonly hostA: string;
  readonly gwA: string;
  readonly gwB: string;
  readonly hostB: string;
  private readonly children = new Set<ChildProcess>();
  private destroyed = false;

  constructor(readonly tag: string = `${process.pid}${Math.random().toString(36).slice(2, 6)}`) {
    this.hostA = `ipf-ha-${tag}`;
    this.gwA = `ipf-ga-${tag}`;
    this.gwB = `ipf-gb-${tag}`;
    this.hostB = `ipf-hb-${tag}`;
  }

  get namespaces(): string[] {
    return [this.hostA, this.gwA, this.gwB, this.hostB];
  }

  /** destroy() this topology (its override, in a subclass) when the process exits or is signalled. */
  protected destroyOnExit(): void {
    hookExit();
    live.add(this);
  }

  /** Create the namespaces, links, addresses and routes. Throws (after cleaning up) on failure. */
  build(): this {
    this.destroyOnExit();
    try {
      for (const ns of this.namespaces) {
        ip(['netns', 'add', ns]);
        this.exec(ns, ['ip', 'link', 'set', 'lo', 'up']);
        this.exec(ns, ['sysctl', '-qw', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0']);
      }
      for (const gw of [this.gwA, this.gwB]) {
        this.exec(gw, ['sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
      }
      // LAN links host <-> gateway, and the "internet" between the gateways.
      ip(['-n', this.hostA, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'lan0', 'netns', this.gwA]);
      ip(['-n', this.hostB, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'lan0', 'netns', this.gwB]);
      ip(['-n', this.gwA, 'link', 'add', 'wan0', 'type', 'veth', 'peer', 'name', 'wan0', 'netns', this.gwB]);
      const addrs: [string, string, string][] = [
        [this.hostA, 'eth0', `${SITE.hostA.v4}/24`],
        [this.hostA, 'eth0', `${SITE.hostA.v6}/64`],
        [this.gwA, 'lan0', `${SITE.gwA.lan4}/24`],
        [this.gwA, 'lan0', `${SITE.gwA.lan6}/64`],
        [this.gwA, 'wan0', `${SITE.gwA.wan4}/24`],
        [this.gwA, 'wan0', `${SITE.gwA.wan6}/64`],
        [this.gwB, 'wan0', `${SITE.gwB.wan4}/24`],
        [this.gwB, 'wan0', `${SITE.gwB.wan6}/64`],
        [this.gwB, 'lan0', `${SITE.gwB.lan4}/24`],
        [this.gwB, 'lan0', `${SITE.gwB.lan6}/64`],
        [this.hostB, 'eth0', `${SITE.hostB.v4}/24`],
        [this.hostB, 'eth0', `${SITE.hostB.v6}/64`],
      ];
      for (const [ns, dev, a] of addrs) this.exec(ns, ['ip', 'addr', 'add', a, 'dev', dev, ...(a.includes(':') ? ['nodad'] : [])]);
      for (const [ns, dev] of [
        [this.hostA, 'eth0'],
        [this.gwA, 'lan0'],
        [this.gwA, 'wan0'],
        [this.gwB, 'wan0'],
        [this.gwB, 'lan0'],
        [this.hostB, 'eth0'],
      ] as const) {
        this.exec(ns, ['ip', 'link', 'set', dev, 'up']);
      }
      this.exec(this.hostA, ['ip', 'route', 'add', 'default', 'via', SITE.gwA.lan4]);
      this.exec(this.hostA, ['ip', '-6', 'route', 'add', 'default', 'via', SITE.gwA.lan6]);
      this.exec(this.hostB, ['ip', 'route', 'add', 'default', 'via', SITE.gwB.lan4]);
      this.exec(this.hostB, ['ip', '-6', 'route', 'add', 'default', 'via', SITE.gwB.lan6]);
      return this;
    } catch (e) {
      this.destroy();
      throw e;
    }
  }

  /** Run a command inside a namespace; returns stdout. */
  exec(ns: string, cmd: string[], timeoutMs = 30_000): string {
    return execFileSync('ip', ['netns', 'exec', ns, ...cmd], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: timeoutMs,
    });
  }

  /** Like exec, but never throws: exit code (-1 on timeout / spawn failure), stdout, stderr. */
  run(ns: string, cmd: string[], timeoutMs = 30_000): { code: number; stdout: string; stderr: string } {
    const r = spawnSync('ip', ['netns', 'exec', ns, ...cmd], { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
    return { code: r.error || r.status === null ? -1 : r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? r.error?.message ?? '' };
  }

  /**
   * Like run, but asynchronous: the event loop stays free (signals are handled at once, e.g. tsx
   * gives a child 30 ms to acknowledge Ctrl-C before it SIGKILLs it). Killed by destroy().
   */
  runAsync(ns: string, cmd: string[], timeoutMs = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn('ip', ['netns', 'exec', ns, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
      this.children.add(child);
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const done = (code: number, extra = ''): void => {
        clearTimeout(timer);
        this.children.delete(child);
        resolve({ code, stdout, stderr: stderr + extra });
      };
      child.once('error', (e) => done(-1, e.message));
      child.once('close', (code) => done(code ?? -1));
    });
  }

  /**
   * Resolve neighbours on every link (hosts <-> gateways, gateway <-> gateway, v4 and v6): the first
   * IPv6 packet across a fresh veth waits ~1 s for neighbour discovery, which would otherwise land
   * in the first measurement.
   */
  warmUp(): void {
    const pings: [string, string][] = [
      [this.hostA, SITE.gwA.lan4],
      [this.hostA, SITE.gwA.lan6],
      [this.hostB, SITE.gwB.lan4],
      [this.hostB, SITE.gwB.lan6],
      [this.gwA, SITE.gwB.wan4],
      [this.gwA, SITE.gwB.wan6],
    ];
    for (const [ns, addr] of pings) {
      const r = this.run(ns, ['ping', '-c', '1', '-W', '3', addr], 10_000);
      if (r.code !== 0) throw new Error(`warm-up ping ${addr} from ${ns} failed: ${(r.stdout + r.stderr).trim()}`);
    }
  }

  /** Namespaces of this topology that still exist (empty after destroy()). */
  leftovers(): string[] {
    const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
    const names = new Set(list.split('\n').map((l) => l.split(' ')[0]));
    return this.namespaces.filter((n) => names.has(n));
  }

  /** Start a long-running process inside a namespace; killed by destroy(). */
  spawn(ns: string, cmd: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'], env });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** Kill children, delete namespaces. Safe to call twice. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const c of this.children) {
      try {
        c.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
    for (const ns of this.namespaces) {
      // Kill anything still running inside, then delete.
      try {
        const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
          .split('\n')
          .filter(Boolean);
        for (const pid of pids) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            /* gone */
          }
        }
      } catch {
        /* namespace absent */
      }
      try {
        ip(['netns', 'del', ns]);
      } catch {
        /* absent */
      }
    }
    live.delete(this);
  }
}

function ip(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
}

// ---------------------------------------------------------------------------------------------
// Configs and endpoint processes for the topology

/** Repository root. */
export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
/**
 * Node arguments that run the `ipferry` command, from any cwd: spawn(process.execPath,
 * [...CLI, 'up', CONFIG]) is `node --import tsx src/cli.ts up CONFIG` from the sources, or
 * `node src/cli.js up CONFIG` when this file runs compiled (`npm run bench:compiled -- e2e`
 * compiles src/ beside it), so the e2e rows compare the compiled CLI with the loader.
 */
export const CLI: readonly string[] = import.meta.url.endsWith('.js')
  ? [join(REPO_ROOT, 'src', 'cli.js')]
  : ['--import', import.meta.resolve('tsx'), join(REPO_ROOT, 'src', 'cli.ts')];

export interface SiteConfigOptions {
  /** Underlay family the endpoints listen and peer on (default 4). */
  underlay?: 4 | 6;
  /** UDP port of both endpoints (default DEFAULT_PORT). */
  port?: number;
  /** TUN MTU (default SITE.tunnelMtu). */
  tunnelMtu?: number;
  /** Path MTU toward the peer (default: the TUN MTU). */
  peerMtu?: number;
  /** Keepalive seconds (default 1: peers see each other up quickly). */
  keepalive?: number;
  /** Directory the control sockets go into (a.sock, b.sock); null = no control socket. */
  controlDir: string | null;
  log?: 'error' | 'warn' | 'info' | 'debug';
}

/** Stack addresses the test configs give each endpoint (answering pings, sourcing ICMP errors). */
export const STACK = {
  a: { v4: '10.0.0.254', v6: 'fd00::254' },
  b: { v4: '10.0.0.253', v6: 'fd00::253' },
} as const;

/** The TUN's own addresses on each gateway (as in examples/beijing.json / shanghai.json). */
export const TUN_ADDR = { a: ['10.0.0.1/30', 'fd00::1/64'], b: ['10.0.0.2/30', 'fd00::2/64'] } as const;
const hostPrefix = (a: string): string => a.replace(/\/\d+$/, a.includes(':') ? '/128' : '/32');

/** Underlay address text of a gateway ("203.0.113.10" or "[2001:db8:113::10]"). */
export function wanHost(gw: 'gwA' | 'gwB', underlay: 4 | 6): string {
  return underlay === 4 ? SITE[gw].wan4 : `[${SITE[gw].wan6}]`;
}

/**
 * The two endpoint configs (JSON objects, see src/config/config.ts) for the topology: each gateway
 * routes the other site's v4/v6 prefixes and the other endpoint's stack addresses into the tunnel.
 */
export function siteConfigs(opts: SiteConfigOptions): { a: Record<string, unknown>; b: Record<string, unknown> } {
  const underlay = opts.underlay ?? 4;
  const port = opts.port ?? DEFAULT_PORT;
  const mtu = opts.tunnelMtu ?? SITE.tunnelMtu;
  const side = (me: 'a' | 'b') => {
    const other = me === 'a' ? 'b' : 'a';
    const [gw, peerGw] = me === 'a' ? (['gwA', 'gwB'] as const) : (['gwB', 'gwA'] as const);
    const peerSite = me === 'a' ? SITE.siteB : SITE.siteA;
    return {
      interface: { name: 'ferry0', address: [...TUN_ADDR[me]], mtu },
      listen: `${wanHost(gw, underlay)}:${port}`,
      stack: { address: [`${STACK[me].v4}/32`, `${STACK[me].v6}/128`] },
      peers: [
        {
          name: me === 'a' ? 'shanghai' : 'beijing',
          endpoint: `${wanHost(peerGw, underlay)}:${port}`,
          // The other site, the other endpoint's stack, and the other TUN's own addresses (so the
          // gateways themselves can talk through the tunnel, as in examples/beijing.json).
          routes: [peerSite.v4, peerSite.v6, `${STACK[other].v4}/32`, `${STACK[other].v6}/128`, ...TUN_ADDR[other].map(hostPrefix)],
          mtu: opts.peerMtu ?? mtu,
          keepalive: opts.keepalive ?? 1,
        },
      ],
      control: opts.controlDir === null ? false : join(opts.controlDir, `${me}.sock`),
      log: opts.log ?? 'info',
    };
  };
  return { a: side('a'), b: side('b') };
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * `ipferry up CONFIG` running inside a namespace (`ip netns exec NS node --import tsx src/cli.ts up CONFIG`).
 * `ready()` waits until it is up (its control socket open, or its "up:" line without one);
 * `stop()` sends SIGTERM and resolves with the exit status.
 */
export interface EndpointProcessOptions {
  /** Environment of the endpoint process (default: this process's), e.g. with IPFERRY_NO_FFI=1. */
  env?: NodeJS.ProcessEnv;
  /** Node arguments that run the CLI (default CLI; the e2e bench passes the compiled dist/cli.js). */
  cli?: readonly string[];
}

export class EndpointProcess {
  readonly child: ChildProcess;
  /** The Node arguments this endpoint's CLI runs with (`show` uses the same). */
  readonly cli: readonly string[];
  /** Everything the endpoint printed (stdout and stderr). */
  output = '';
  readonly exited: Promise<ExitStatus>;
  private status: ExitStatus | null = null;

  constructor(
    readonly topo: SiteTopology,
    readonly ns: string,
    readonly configPath: string,
    /** The config's control socket path, or null when it has none. */
    readonly controlPath: string | null,
    extraArgs: string[] = [],
    opts: EndpointProcessOptions = {},
  ) {
    this.cli = opts.cli ?? CLI;
    this.child = topo.spawn(ns, [process.execPath, ...this.cli, 'up', configPath, ...extraArgs], opts.env);
    const take = (d: Buffer) => {
      this.output += d.toString();
    };
    this.child.stdout?.on('data', take);
    this.child.stderr?.on('data', take);
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.status = { code, signal };
        resolve(this.status);
      });
      this.child.once('error', (e) => {
        this.output += `spawn error: ${e.message}\n`;
        this.status = { code: null, signal: null };
        resolve(this.status);
      });
    });
  }

  get running(): boolean {
    return this.status === null;
  }

  /**
   * Resolves once the endpoint is up; rejects (with its output) if it exits or times out first.
   * A leftover socket file from an earlier endpoint would fool it: give each run fresh paths.
   */
  async ready(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    // With a control socket: it exists once start() has finished (its log line may be filtered by
    // the log level). Without one: the endpoint's "up:" line.
    const isUp = (): boolean =>
      this.controlPath !== null ? /control socket /.test(this.output) || existsSync(this.controlPath) : /\bup: /.test(this.output);
    while (Date.now() < deadline) {
      if (isUp() && this.status === null) return;
      if (this.status !== null) {
        throw new Error(`endpoint in ${this.ns} exited (${this.status.code ?? this.status.signal}) before it was up:\n${this.output.trim()}`);
      }
      await sleep(50);
    }
    throw new Error(`endpoint in ${this.ns} not up after ${timeoutMs / 1000} s:\n${this.output.trim()}`);
  }

  /** SIGTERM, then wait for the exit (SIGKILL after timeoutMs). */
  async stop(timeoutMs = 15_000): Promise<ExitStatus> {
    if (this.status !== null) return this.status;
    this.child.kill('SIGTERM');
    let t: NodeJS.Timeout | undefined;
    const killed = new Promise<ExitStatus>((resolve) => {
      t = setTimeout(() => {
        this.output += `(no exit ${timeoutMs / 1000} s after SIGTERM: SIGKILL)\n`;
        this.child.kill('SIGKILL');
        void this.exited.then(resolve);
      }, timeoutMs);
    });
    const st = await Promise.race([this.exited, killed]);
    clearTimeout(t);
    return st;
  }

  /** `ipferry show WHAT --json` through the control socket (parsed). */
  show(what: 'all' | 'peers' | 'routes' | 'stats' = 'all'): Promise<Record<string, any>> {
    const path = this.controlPath;
    if (path === null) return Promise.reject(new Error('this endpoint has no control socket'));
    return new Promise((resolve, reject) => {
      execFile(process.execPath, [...this.cli, 'show', what, '--json', '--socket', path], { encoding: 'utf8', timeout: 20_000 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`ipferry show ${what}: ${(stderr || err.message).trim()}`));
        else resolve(JSON.parse(stdout) as Record<string, any>);
      });
    });
  }
}

/** Write the two configs into `dir` (a.json, b.json) and return their paths. */
export function writeSiteConfigs(dir: string, configs: { a: unknown; b: unknown }): { a: string; b: string } {
  const a = join(dir, 'a.json');
  const b = join(dir, 'b.json');
  writeFileSync(a, `${JSON.stringify(configs.a, null, 2)}\n`);
  writeFileSync(b, `${JSON.stringify(configs.b, null, 2)}\n`);
  return { a, b };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Whether a command is on PATH. */
export function haveCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

export interface Iperf3Result {
  /** What the receiver got, bits per second. */
  bitsPerSecond: number;
  bytes: number;
  /** TCP: sender retransmits; UDP: null. */
  retransmits: number | null;
  /** UDP: lost datagrams in percent; TCP: null. */
  lostPercent: number | null;
  /** iperf3's JSON as printed (the e2e bench reads more of it: bench/e2e/parse.ts). */
  raw: string;
}

/**
 * iperf3 from `clientNs` to a one-shot server (`iperf3 -s -1`) bound to `serverAddr` in `serverNs`;
 * `args` go to the client (e.g. ['-t', '3'] or ['-u', '-b', '2G', '-l', '1300']). Retries while the
 * server is not listening yet. Throws with iperf3's error text on failure.
 */
export async function runIperf3(topo: SiteTopology, serverNs: string, clientNs: string, serverAddr: string, args: string[]): Promise<Iperf3Result> {
  const server = topo.spawn(serverNs, ['iperf3', '-s', '-1', '-B', serverAddr]);
  type J = {
    error?: string;
    end?: {
      sum_received?: { bits_per_second: number; bytes: number; lost_percent?: number };
      sum_sent?: { retransmits?: number };
      sum?: { bits_per_second: number; bytes: number; lost_percent?: number };
    };
  };
  const seconds = Number(args[args.indexOf('-t') + 1] ?? 10) || 10;
  try {
    let j: J = {};
    let raw = '';
    for (let attempt = 0; attempt < 40; attempt++) {
      const r = await topo.runAsync(clientNs, ['iperf3', '-c', serverAddr, '-J', ...args], (seconds + 30) * 1000);
      raw = r.stdout;
      try {
        j = JSON.parse(r.stdout) as J;
      } catch {
        j = { error: (r.stdout + r.stderr).trim().slice(0, 400) || `exit ${r.code}` };
      }
      if (!/refused/i.test(j.error ?? '')) break;
      await sleep(100); // the server is not listening yet
    }
    if (j.error !== undefined) throw new Error(`iperf3 ${args.join(' ')} -> ${serverAddr}: ${j.error}`);
    const udp = args.includes('-u');
    // The receiver's view: end.sum_received (UDP in older iperf3: end.sum, sender bytes with the loss).
    const rx = j.end?.sum_received ?? (udp ? j.end?.sum : undefined);
    if (rx === undefined) throw new Error(`iperf3 ${args.join(' ')} -> ${serverAddr}: no result`);
    return {
      bitsPerSecond: rx.bits_per_second,
      bytes: rx.bytes,
      retransmits: udp ? null : (j.end?.sum_sent?.retransmits ?? 0),
      lostPercent: udp ? (j.end?.sum_received?.lost_percent ?? j.end?.sum?.lost_percent ?? null) : null,
      raw,
    };
  } finally {
    if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
  }
}
