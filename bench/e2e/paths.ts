/**
 * The paths the end-to-end bench compares, all up at once on one SiteTopology (hostA - gwA ==
 * wan0 veth == gwB - hostB), so every row crosses the same veth in the same minutes:
 *
 *   lane k   hostA 192.168.(10+k).10  ->  hostB 192.168.(20+k).20
 *
 * Each lane has its own pair of host addresses, and the gateways route lane k's prefixes into
 * lane k's tunnel (or straight over the veth for the routed lane), so a client picks its path by
 * the address it talks to; the hosts' routes carry `src`, so replies come back the same way.
 * Lane 0 is the topology's own addresses. Bare veth needs no lane: gwA -> gwB on wan0.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { EndpointProcess, SITE, sleep, writeSiteConfigs, type SiteTopology } from '../../examples/site-topology.ts';
import { DEFAULT_PORT } from '../../src/transport/transport.ts';
import { reportedDataPath } from './parse.ts';

export interface Lane {
  index: number;
  hostA: string;
  hostB: string;
  /** The two sites' prefixes of this lane. */
  siteA: string;
  siteB: string;
}

export function lane(index: number): Lane {
  return {
    index,
    hostA: `192.168.${10 + index}.10`,
    hostB: `192.168.${20 + index}.20`,
    siteA: `192.168.${10 + index}.0/24`,
    siteB: `192.168.${20 + index}.0/24`,
  };
}

/**
 * Give the hosts lane `l`'s addresses, the gateways an address on each lane's LAN prefix, and the
 * hosts a route to the other side's lane prefix through their gateway with the lane's source.
 */
export function addLane(topo: SiteTopology, l: Lane): void {
  if (l.index !== 0) {
    topo.exec(topo.hostA, ['ip', 'addr', 'add', `${l.hostA}/24`, 'dev', 'eth0']);
    topo.exec(topo.gwA, ['ip', 'addr', 'add', `192.168.${10 + l.index}.1/24`, 'dev', 'lan0']);
    topo.exec(topo.hostB, ['ip', 'addr', 'add', `${l.hostB}/24`, 'dev', 'eth0']);
    topo.exec(topo.gwB, ['ip', 'addr', 'add', `192.168.${20 + l.index}.1/24`, 'dev', 'lan0']);
  }
  topo.exec(topo.hostA, ['ip', 'route', 'add', l.siteB, 'via', SITE.gwA.lan4, 'src', l.hostA]);
  topo.exec(topo.hostB, ['ip', 'route', 'add', l.siteA, 'via', SITE.gwB.lan4, 'src', l.hostB]);
}

/** Plain routing for a lane: each gateway sends the other site's lane prefix over the veth. */
export function routedUp(topo: SiteTopology, l: Lane): void {
  topo.exec(topo.gwA, ['ip', 'route', 'add', l.siteB, 'via', SITE.gwB.wan4]);
  topo.exec(topo.gwB, ['ip', 'route', 'add', l.siteA, 'via', SITE.gwA.wan4]);
}

/** An endpoint process of a path: its gateway and pid (for its CPU time). */
export interface PathProcess {
  gw: 'gwA' | 'gwB';
  pid: number;
}

export interface OpenVpnPair {
  processes: PathProcess[];
  /** The TUN device both sides use, and the UDP port. */
  dev: string;
  port: number;
  stop(): Promise<void>;
}

export const OPENVPN_PORT = 1194;
export const OPENVPN_DEV = 'ovpn0';

/**
 * OpenVPN 2.6 point to point on both gateways, the NOTES recipe (`--cipher none --auth none
 * --tun-mtu 1400`, UDP, --ifconfig 10.8.0.1 10.8.0.2), with routes for lane `l` into its TUN.
 * Throws with OpenVPN's last line when it does not come up within 15 s.
 */
export async function openvpnUp(topo: SiteTopology, l: Lane): Promise<OpenVpnPair> {
  const start = (ns: string, local: string, remote: string, me: string, peer: string) => {
    const child = topo.spawn(ns, [
      'openvpn', '--dev', OPENVPN_DEV, '--dev-type', 'tun', '--proto', 'udp',
      '--local', local, '--lport', String(OPENVPN_PORT), '--remote', remote, '--rport', String(OPENVPN_PORT),
      '--ifconfig', me, peer, '--cipher', 'none', '--auth', 'none', '--tun-mtu', '1400', '--verb', '3',
    ]);
    const p = { child, out: '' };
    child.stdout?.on('data', (d: Buffer) => (p.out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (p.out += d.toString()));
    return p;
  };
  const a = start(topo.gwA, SITE.gwA.wan4, SITE.gwB.wan4, '10.8.0.1', '10.8.0.2');
  const b = start(topo.gwB, SITE.gwB.wan4, SITE.gwA.wan4, '10.8.0.2', '10.8.0.1');
  const stop = async (): Promise<void> => {
    for (const p of [a, b]) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
    for (let i = 0; i < 50 && [a, b].some((p) => p.child.exitCode === null && p.child.signalCode === null); i++) await sleep(100);
    for (const p of [a, b]) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  };
  const up = (p: typeof a) => /Initialization Sequence Completed/.test(p.out);
  for (let i = 0; i < 150 && !(up(a) && up(b)); i++) {
    if (a.child.exitCode !== null || b.child.exitCode !== null) break;
    await sleep(100);
  }
  if (!(up(a) && up(b))) {
    await stop();
    const last = `${a.out}\n${b.out}`.trim().split('\n').slice(-1)[0] ?? 'no output';
    throw new Error(`OpenVPN did not come up: ${last.slice(0, 160)}`);
  }
  topo.exec(topo.gwA, ['ip', 'route', 'add', l.siteB, 'dev', OPENVPN_DEV]);
  topo.exec(topo.gwB, ['ip', 'route', 'add', l.siteA, 'dev', OPENVPN_DEV]);
  return {
    processes: [
      { gw: 'gwA', pid: a.child.pid! },
      { gw: 'gwB', pid: b.child.pid! },
    ],
    dev: OPENVPN_DEV,
    port: OPENVPN_PORT,
    stop,
  };
}

/** The TUN name and UDP port of lane k's ipferry pair. */
export const ipferryDev = (l: Lane): string => `ferry${l.index}`;
export const ipferryPort = (l: Lane): number => DEFAULT_PORT + l.index;

/**
 * One side's config for lane `l` (the shape of examples/site-topology.ts siteConfigs, IPv4 only):
 * TUN ferryK 10.(100+K).0.1/30 or .2/30, own stack .254/.253, UDP port 6080+K on the veth, the
 * other side's lane prefix and tunnel addresses as the peer's routes. Keepalive 25 s, log info
 * (the "up:" line says which data path runs, once the endpoint reports it).
 */
export function ipferryLaneConfig(l: Lane, side: 'a' | 'b', controlPath: string): Record<string, unknown> {
  const net = `10.${100 + l.index}.0`;
  const [me, other] = side === 'a' ? (['gwA', 'gwB'] as const) : (['gwB', 'gwA'] as const);
  const port = ipferryPort(l);
  return {
    interface: { name: ipferryDev(l), address: [`${net}.${side === 'a' ? 1 : 2}/30`], mtu: SITE.tunnelMtu },
    listen: `${SITE[me].wan4}:${port}`,
    stack: { address: [`${net}.${side === 'a' ? 254 : 253}/32`] },
    peers: [
      {
        name: side === 'a' ? 'site-b' : 'site-a',
        endpoint: `${SITE[other].wan4}:${port}`,
        routes: [side === 'a' ? l.siteB : l.siteA, `${net}.${side === 'a' ? 253 : 254}/32`, `${net}.${side === 'a' ? 2 : 1}/32`],
        mtu: SITE.tunnelMtu,
        keepalive: 25,
      },
    ],
    control: controlPath,
    log: 'info',
  };
}

export interface IpferryPair {
  endpoints: EndpointProcess[];
  processes: PathProcess[];
  dev: string;
  port: number;
  /** What each endpoint says it runs (e.g. "fast path"), null where it says nothing. */
  reported: (string | null)[];
  stop(): Promise<void>;
}

/**
 * `ipferry up` on both gateways for lane `l`, with `cli` (node arguments that run the CLI) and
 * `env` for both processes. Resolves once both are up (control sockets open); throws otherwise,
 * after stopping them.
 */
export async function ipferryUp(
  topo: SiteTopology,
  l: Lane,
  dir: string,
  cli: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<IpferryPair> {
  // writeSiteConfigs names the files a.json / b.json: each lane gets its own directory.
  const sub = join(dir, `lane${l.index}`);
  mkdirSync(sub, { recursive: true });
  const sockA = join(sub, 'a.sock');
  const sockB = join(sub, 'b.sock');
  const paths = writeSiteConfigs(sub, { a: ipferryLaneConfig(l, 'a', sockA), b: ipferryLaneConfig(l, 'b', sockB) });
  const endpoints = [
    new EndpointProcess(topo, topo.gwA, paths.a, sockA, [], { cli, env }),
    new EndpointProcess(topo, topo.gwB, paths.b, sockB, [], { cli, env }),
  ];
  const stop = async (): Promise<void> => {
    await Promise.all(endpoints.map((e) => e.stop(5000)));
  };
  try {
    await Promise.all(endpoints.map((e) => e.ready()));
    const reported: (string | null)[] = [];
    for (const e of endpoints) {
      const show = await e.show('all').catch(() => null);
      reported.push(reportedDataPath(e.output, show));
    }
    return {
      endpoints,
      processes: [
        { gw: 'gwA', pid: endpoints[0]!.child.pid! },
        { gw: 'gwB', pid: endpoints[1]!.child.pid! },
      ],
      dev: ipferryDev(l),
      port: ipferryPort(l),
      reported,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
