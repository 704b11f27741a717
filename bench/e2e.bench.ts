/**
 * End to end through two ipferry endpoints (root): the seed's topology in namespaces
 * (examples/site-topology.ts), `ipferry up` on each gateway (TUN MTU 1400, IPv4 underlay), iperf3
 * TCP and UDP host to host through the tunnel, printed beside the same measurements on the bare
 * veth between the gateways, on plain routing host to host (no tunnel), and through OpenVPN 2.6
 * (`--cipher none --auth none --tun-mtu 1400`, the NOTES baseline) when `openvpn` is installed.
 * All rows come from this one run, one after the other on the same topology.
 *
 *   npx tsx bench/run.ts e2e
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchSection } from './run.ts';
import {
  EndpointProcess,
  haveCommand,
  isRoot,
  runIperf3,
  SITE,
  SiteTopology,
  siteConfigs,
  sleep,
  writeSiteConfigs,
  type Iperf3Result,
} from '../examples/site-topology.ts';

const TCP_SECONDS = 3;
const UDP_SECONDS = 3;
const UDP_ARGS = ['-u', '-b', '2G', '-l', '1300'];
const PINGS = 20;

interface Row {
  path: string;
  tcp: Iperf3Result | string;
  udp: Iperf3Result | string;
  rtt: number | string;
}

const TITLE = 'End to end: iperf3 through two ipferry endpoints (namespaces, kernel on both ends)';

function gbit(bps: number): string {
  return bps >= 1e9 ? `${(bps / 1e9).toFixed(2)} Gbit/s` : `${(bps / 1e6).toFixed(0)} Mbit/s`;
}

function cell(r: Iperf3Result | string, udp: boolean): string {
  if (typeof r === 'string') return r;
  if (udp) return `${gbit(r.bitsPerSecond)} (loss ${r.lostPercent === null ? '?' : r.lostPercent.toFixed(1)}%)`;
  return `${gbit(r.bitsPerSecond)} (${r.retransmits ?? 0} retr)`;
}

async function pingAvg(topo: SiteTopology, ns: string, addr: string): Promise<number | string> {
  const r = await topo.runAsync(ns, ['ping', '-c', String(PINGS), '-i', '0.05', '-W', '2', '-q', addr], 30_000);
  const m = /= [\d.]+\/([\d.]+)\//.exec(r.stdout);
  const got = /(\d+) received/.exec(r.stdout)?.[1];
  if (!m) return `failed (${got ?? 0}/${PINGS})`;
  return Number(m[1]);
}

async function measure(topo: SiteTopology, path: string, clientNs: string, serverNs: string, addr: string): Promise<Row> {
  const attempt = async (args: string[]): Promise<Iperf3Result | string> => {
    try {
      return await runIperf3(topo, serverNs, clientNs, addr, args);
    } catch (e) {
      return `failed: ${(e as Error).message.split('\n')[0]!.slice(0, 80)}`;
    }
  };
  const rtt = await pingAvg(topo, clientNs, addr);
  const tcp = await attempt(['-t', String(TCP_SECONDS)]);
  const udp = await attempt(['-t', String(UDP_SECONDS), ...UDP_ARGS]);
  const row = { path, tcp, udp, rtt };
  process.stdout.write(`  ${path}: TCP ${cell(tcp, false)}, UDP ${cell(udp, true)}, RTT ${typeof rtt === 'number' ? `${rtt.toFixed(3)} ms` : rtt}\n`);
  return row;
}

/** OpenVPN p2p on both gateways (the NOTES recipe) with routes for the two sites; null if it fails. */
async function openvpnUp(topo: SiteTopology): Promise<string | null> {
  const start = (ns: string, local: string, remote: string, me: string, peer: string) =>
    topo.spawn(ns, [
      'openvpn', '--dev', 'tun', '--proto', 'udp', '--local', local, '--lport', '1194', '--remote', remote, '--rport', '1194',
      '--ifconfig', me, peer, '--cipher', 'none', '--auth', 'none', '--tun-mtu', '1400', '--verb', '3',
    ]);
  const a = start(topo.gwA, SITE.gwA.wan4, SITE.gwB.wan4, '10.8.0.1', '10.8.0.2');
  const b = start(topo.gwB, SITE.gwB.wan4, SITE.gwA.wan4, '10.8.0.2', '10.8.0.1');
  let out = '';
  for (const p of [a, b]) {
    p.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  }
  for (let i = 0; i < 150 && (out.match(/Initialization Sequence Completed/g) ?? []).length < 2; i++) {
    if (a.exitCode !== null || b.exitCode !== null) break;
    await sleep(100);
  }
  if ((out.match(/Initialization Sequence Completed/g) ?? []).length < 2) {
    const last = out.trim().split('\n').slice(-1)[0] ?? 'no output';
    return `did not come up: ${last.slice(0, 120)}`;
  }
  const ra = topo.run(topo.gwA, ['ip', 'route', 'add', SITE.siteB.v4, 'dev', 'tun0']);
  const rb = topo.run(topo.gwB, ['ip', 'route', 'add', SITE.siteA.v4, 'dev', 'tun0']);
  if (ra.code !== 0 || rb.code !== 0) return `routes: ${(ra.stderr + rb.stderr).trim()}`;
  return null;
}

export default async function e2eBench(): Promise<BenchSection> {
  if (!isRoot() || !haveCommand('ip') || !haveCommand('iperf3') || !haveCommand('ping')) {
    const why = !isRoot() ? 'not root' : 'needs ip (iproute2), iperf3 and ping';
    process.stdout.write(`e2e bench skipped: ${why}\n`);
    return { title: TITLE, markdown: `Skipped: ${why} (needs root, network namespaces, iperf3, ping).` };
  }
  const topo = new SiteTopology(`e${process.pid}${Math.random().toString(36).slice(2, 5)}`);
  const dir = mkdtempSync(join(tmpdir(), 'ipferry-e2e-'));
  const rows: Row[] = [];
  const notes: string[] = [];
  const eps: EndpointProcess[] = [];
  try {
    topo.build();
    topo.warmUp();

    // 1. the bare veth between the gateways
    rows.push(await measure(topo, 'bare veth gwA -> gwB (wan0)', topo.gwA, topo.gwB, SITE.gwB.wan4));

    // 2. plain routing host to host over the same veth (no tunnel): same hops as the tunnel path
    topo.exec(topo.gwA, ['ip', 'route', 'add', SITE.siteB.v4, 'via', SITE.gwB.wan4]);
    topo.exec(topo.gwB, ['ip', 'route', 'add', SITE.siteA.v4, 'via', SITE.gwA.wan4]);
    rows.push(await measure(topo, 'routed hostA -> hostB, no tunnel', topo.hostA, topo.hostB, SITE.hostB.v4));
    topo.exec(topo.gwA, ['ip', 'route', 'del', SITE.siteB.v4]);
    topo.exec(topo.gwB, ['ip', 'route', 'del', SITE.siteA.v4]);

    // 3. through the two ipferry endpoints
    const paths = writeSiteConfigs(dir, siteConfigs({ underlay: 4, controlDir: dir, keepalive: 25, log: 'warn' }));
    eps.push(new EndpointProcess(topo, topo.gwA, paths.a, join(dir, 'a.sock')));
    eps.push(new EndpointProcess(topo, topo.gwB, paths.b, join(dir, 'b.sock')));
    try {
      await Promise.all(eps.map((e) => e.ready()));
      topo.exec(topo.hostA, ['ping', '-c', '1', '-W', '2', SITE.hostB.v4]);
      rows.push(await measure(topo, 'ipferry hostA -> hostB (TUN MTU 1400, GUE over UDP/IPv4)', topo.hostA, topo.hostB, SITE.hostB.v4));
      for (const [name, e] of [['gwA', eps[0]!], ['gwB', eps[1]!]] as const) {
        const s = (await e.show('stats')).stats as { drops: Record<string, number>; poolExhausted: number; udpRx: { packets: number } };
        notes.push(`${name} endpoint after the run: drops ${JSON.stringify(s.drops)}, pool exhausted ${s.poolExhausted}x, ${s.udpRx.packets} datagrams received.`);
      }
    } catch (e) {
      rows.push({ path: 'ipferry hostA -> hostB', tcp: `failed: ${(e as Error).message.split('\n')[0]}`, udp: '-', rtt: '-' });
    }
    for (const e of eps) await e.stop();

    // 4. OpenVPN, the NOTES baseline, if installed
    if (haveCommand('openvpn')) {
      const err = await openvpnUp(topo);
      if (err === null) {
        topo.run(topo.hostA, ['ping', '-c', '1', '-W', '2', SITE.hostB.v4]);
        rows.push(await measure(topo, 'OpenVPN 2.6 hostA -> hostB (--cipher none --auth none --tun-mtu 1400)', topo.hostA, topo.hostB, SITE.hostB.v4));
      } else {
        notes.push(`OpenVPN row skipped: ${err}.`);
      }
    } else {
      notes.push('OpenVPN row skipped: openvpn not installed.');
    }
  } finally {
    for (const e of eps) if (e.running) await e.stop(5000);
    topo.destroy();
    rmSync(dir, { recursive: true, force: true });
  }

  const bare = rows[0]?.tcp;
  const ratio = (r: Row): string =>
    typeof r.tcp === 'object' && typeof bare === 'object' ? `${((100 * r.tcp.bitsPerSecond) / bare.bitsPerSecond).toFixed(1)}%` : '-';
  const table = [
    `| path | iperf3 TCP (${TCP_SECONDS} s) | TCP vs bare veth | iperf3 UDP ${UDP_ARGS.join(' ')} (${UDP_SECONDS} s), received | ping RTT avg (${PINGS} x v4) |`,
    '|---|---|---|---|---|',
    ...rows.map(
      (r) => `| ${r.path} | ${cell(r.tcp, false)} | ${ratio(r)} | ${cell(r.udp, true)} | ${typeof r.rtt === 'number' ? `${r.rtt.toFixed(3)} ms` : r.rtt} |`,
    ),
  ];
  return {
    title: TITLE,
    markdown: [
      ...table,
      '',
      'One run, rows measured one after the other on the same namespaces: hostA - gwA == veth == gwB - hostB.',
      'TCP: receiver throughput and sender retransmits; UDP: what the receiver got of a 2 Gbit/s offer of',
      '1300-byte datagrams, and the loss. The ipferry row runs `ipferry up` (under tsx, or compiled in bench:compiled) on each gateway, TUN',
      'MTU 1400, MSS clamping on. NOTES anchors: bare veth TCP 6.41 Gbit/s, OpenVPN 280 Mbit/s.',
      ...notes,
    ].join('\n'),
  };
}
