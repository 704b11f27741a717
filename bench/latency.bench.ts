/**
 * Latency through two ipferry endpoints (root): the seed's topology in namespaces
 * (examples/site-topology.ts), `ipferry up` on each gateway, ping hostA -> hostB.
 *
 * The end-to-end bench (e2e.bench.ts) has the side-by-side table with OpenVPN, the fallback path
 * and the per-hop table; this one keeps the experiments: endpoint variants by environment.
 *
 * 1. Per-hop breakdown (bench/e2e/hops.ts): tcpdump -tt on `-i any` in both gateways while pinging (-i 0.05): per
 *    gateway, the ICMP packet on ferry0 (kernel -> TUN) to our datagram on wan0 (TUN -> UDP), and
 *    the datagram on wan0 to our write on ferry0 (UDP -> TUN), medians over the pings. Measured on
 *    fresh endpoints ("cold": the JavaScript still runs unoptimized, since 20 pings/s never make it
 *    hot) and again after 2 s of iperf3 TCP through them ("JIT warm": TurboFan code).
 * 2. RTT (median / p90 of 30 pings at -i 0.05 and at -i 0.2, 199 back to back at -i 0.002) and iperf3 TCP for
 *    each variant, rounds interleaved (A B A B) in the same run, beside routed-without-tunnel and
 *    OpenVPN 2.6 (when installed) measured in the same run. Every variant starts fresh endpoints.
 *
 * Built-in variants: the current code cold, and the same after the 2 s iperf3 warm-up. More with
 * LAT_VARIANTS="name:K=V,K=V;name2:K=V" (extra environment for `ipferry up`; LAT_PREWARM=1 is
 * taken by the bench: warm up with iperf3 first). LAT_ROUNDS=n (1-5, default 2).
 * Bounded: every ping/iperf3/tcpdump has a count and a timeout; the namespaces go in a finally.
 *
 *   npx tsx bench/run.ts latency
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchSection } from './run.ts';
import {
  EndpointProcess,
  haveCommand,
  isRoot,
  SITE,
  SiteTopology,
  siteConfigs,
  sleep,
  writeSiteConfigs,
} from '../examples/site-topology.ts';
import { DEFAULT_PORT } from '../src/transport/transport.ts';
import { captureHops, hopDelays, type HopFilter } from './e2e/hops.ts';
import { runIperf3 } from './e2e/measure.ts';
import { lane, openvpnUp } from './e2e/paths.ts';

/** The site configs' tunnel: TUN ferry0, GUE on the default port over wan0. */
const HOPS: HopFilter = { tun: 'ferry0', wan: 'wan0', port: DEFAULT_PORT };

const TITLE = 'Latency: ping through two ipferry endpoints, per-hop breakdown and variants';
const PINGS = 30;
const TCP_SECONDS = 3;

/** Endpoint variants: extra environment for `ipferry up`. */
const VARIANTS: { name: string; env: Record<string, string> }[] = [
  { name: 'current code, cold', env: {} },
  { name: 'current code, after 2 s iperf3 (JIT warm)', env: { LAT_PREWARM: '1' } },
];
for (const v of (process.env.LAT_VARIANTS ?? '').split(';').filter(Boolean)) {
  // LAT_VARIANTS="name:K=V,K=V;name2:K=V" adds experiment variants
  const [name, kv = ''] = v.split(':');
  VARIANTS.push({ name: name!, env: Object.fromEntries(kv.split(',').filter(Boolean).map((s) => s.split('=') as [string, string])) });
}

interface Rtt {
  median: number;
  p90: number;
  n: number;
}

function stats(xs: number[]): Rtt | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[s.length >> 1]!, p90: s[Math.min(s.length - 1, Math.floor(s.length * 0.9))]!, n: s.length };
}

function fmt(r: Rtt | null | string): string {
  if (r === null) return 'failed';
  if (typeof r === 'string') return r;
  return `${r.median.toFixed(3)} / ${r.p90.toFixed(3)}`;
}

async function ping(topo: SiteTopology, interval: string, count = PINGS): Promise<Rtt | null> {
  const r = await topo.runAsync(topo.hostA, ['ping', '-n', '-c', String(count), '-i', interval, '-W', '2', SITE.hostB.v4], 60_000);
  const times = [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  return stats(times.slice(1)); // the first may still resolve neighbours
}

interface Measured {
  i05: Rtt | null;
  i2: Rtt | null;
  warm: Rtt | null;
  tcp: number | null;
}

async function measure(topo: SiteTopology, tcp: boolean): Promise<Measured> {
  await ping(topo, '0.05', 3);
  const i05 = await ping(topo, '0.05', PINGS + 1);
  const i2 = await ping(topo, '0.2', PINGS + 1);
  const warm = await ping(topo, '0.002', 200);
  let mbit: number | null = null;
  if (tcp) {
    try {
      mbit = (await runIperf3(topo, topo.hostB, topo.hostA, SITE.hostB.v4, ['-t', String(TCP_SECONDS)])).bitsPerSecond / 1e6;
    } catch {
      mbit = null;
    }
  }
  return { i05, i2, warm, tcp: mbit };
}

async function startEndpoints(topo: SiteTopology, dir: string, tag: string, env: Record<string, string>): Promise<EndpointProcess[]> {
  const sub = mkdtempSync(join(dir, `${tag.replace(/\W/g, '')}-`));
  const paths = writeSiteConfigs(sub, siteConfigs({ underlay: 4, controlDir: sub, keepalive: 25, log: 'warn' }));
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    const eps = [
      new EndpointProcess(topo, topo.gwA, paths.a, join(sub, 'a.sock')),
      new EndpointProcess(topo, topo.gwB, paths.b, join(sub, 'b.sock')),
    ];
    await Promise.all(eps.map((e) => e.ready()));
    topo.run(topo.hostA, ['ping', '-c', '1', '-W', '2', SITE.hostB.v4]);
    return eps;
  } finally {
    for (const k of Object.keys(env)) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  }
}

export default async function latencyBench(): Promise<BenchSection> {
  if (!isRoot() || !haveCommand('ip') || !haveCommand('iperf3') || !haveCommand('ping') || !haveCommand('tcpdump')) {
    const why = !isRoot() ? 'not root' : 'needs ip (iproute2), iperf3, ping and tcpdump';
    process.stdout.write(`latency bench skipped: ${why}\n`);
    return { title: TITLE, markdown: `Skipped: ${why}.` };
  }
  const rounds = Math.max(1, Math.min(5, Number(process.env.LAT_ROUNDS ?? 2) || 2));
  const topo = new SiteTopology(`l${process.pid}${Math.random().toString(36).slice(2, 5)}`);
  const dir = mkdtempSync(join(tmpdir(), 'ipferry-lat-'));
  const rows: { path: string; m: Measured }[] = [];
  const hopRows: string[] = [];
  let eps: EndpointProcess[] = [];
  const say = (s: string) => process.stdout.write(`  ${s}\n`);
  const line = (path: string, m: Measured) =>
    say(`${path}: -i 0.05 ${fmt(m.i05)} ms, -i 0.2 ${fmt(m.i2)} ms, -i 0.002 ${fmt(m.warm)} ms, TCP ${m.tcp === null ? '-' : m.tcp.toFixed(0)} Mbit/s`);
  try {
    topo.build();
    topo.warmUp();

    topo.exec(topo.gwA, ['ip', 'route', 'add', SITE.siteB.v4, 'via', SITE.gwB.wan4]);
    topo.exec(topo.gwB, ['ip', 'route', 'add', SITE.siteA.v4, 'via', SITE.gwA.wan4]);
    const routed = await measure(topo, false);
    rows.push({ path: 'routed hostA -> hostB, no tunnel', m: routed });
    line('routed', routed);
    topo.exec(topo.gwA, ['ip', 'route', 'del', SITE.siteB.v4]);
    topo.exec(topo.gwB, ['ip', 'route', 'del', SITE.siteA.v4]);

    // per-hop breakdown on the current code, cold and JIT-warm
    const us = (xs: number[]) => {
      const st = stats(xs);
      return st === null ? '-' : `${st.median.toFixed(0)} / ${st.p90.toFixed(0)} (${st.n})`;
    };
    hopRows.push(
      '| endpoints | gwA TUN -> UDP (request) | gwB UDP -> TUN (request) | gwB TUN -> UDP (reply) | gwA UDP -> TUN (reply) |',
      '|---|---|---|---|---|',
    );
    for (const warm of [false, true]) {
      eps = await startEndpoints(topo, dir, warm ? 'hopwarm' : 'hop', {});
      if (warm) await runIperf3(topo, topo.hostB, topo.hostA, SITE.hostB.v4, ['-t', '2']).catch(() => undefined);
      const capA = captureHops(topo, topo.gwA, `icmp or udp port ${HOPS.port}`);
      const capB = captureHops(topo, topo.gwB, `icmp or udp port ${HOPS.port}`);
      await Promise.all([capA.ready, capB.ready]);
      await ping(topo, '0.05', PINGS + 1);
      const [la, lb] = await Promise.all([capA.stop(), capB.stop()]);
      for (const e of eps) await e.stop(5000);
      eps = [];
      const ha = hopDelays(la, HOPS);
      const hb = hopDelays(lb, HOPS);
      const name = warm ? 'after 2 s iperf3 (JIT warm)' : 'fresh (cold)';
      hopRows.push(`| ${name} | ${us(ha.out)} | ${us(hb.in)} | ${us(hb.out)} | ${us(ha.in)} |`);
      say(`hops ${name}: gwA out ${us(ha.out)}, gwB in ${us(hb.in)}, gwB out ${us(hb.out)}, gwA in ${us(ha.in)}`);
    }

    for (let r = 0; r < rounds; r++) {
      for (const v of VARIANTS) {
        const { LAT_PREWARM: prewarm, ...env } = v.env;
        eps = await startEndpoints(topo, dir, v.name, env);
        if (prewarm) await runIperf3(topo, topo.hostB, topo.hostA, SITE.hostB.v4, ['-t', '2']).catch(() => undefined);
        const m = await measure(topo, true);
        for (const e of eps) await e.stop(5000);
        eps = [];
        const path = `ipferry, ${v.name} (round ${r + 1})`;
        rows.push({ path, m });
        line(path, m);
      }
    }

    if (haveCommand('openvpn')) {
      // the NOTES recipe (bench/e2e/paths.ts), routing the sites' own prefixes (lane 0)
      try {
        const ovpn = await openvpnUp(topo, lane(0));
        const m = await measure(topo, true);
        rows.push({ path: 'OpenVPN 2.6 (--cipher none --auth none)', m });
        line('openvpn', m);
        await ovpn.stop();
      } catch (e) {
        say(`openvpn: ${(e as Error).message}`);
      }
    }
  } finally {
    for (const e of eps) if (e.running) await e.stop(5000);
    topo.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    title: TITLE,
    markdown: [
      'Per hop, µs median / p90 (n), from tcpdump -tt timestamps in the gateways (ping -i 0.05):',
      '',
      ...hopRows,
      '',
      `| path | RTT ms -i 0.05, median / p90 (${PINGS}) | -i 0.2 | -i 0.002 (199, back to back) | iperf3 TCP ${TCP_SECONDS} s, Mbit/s |`,
      '|---|---|---|---|---|',
      ...rows.map((r) => `| ${r.path} | ${fmt(r.m.i05)} | ${fmt(r.m.i2)} | ${fmt(r.m.warm)} | ${r.m.tcp === null ? '-' : r.m.tcp.toFixed(0)} |`),
      '',
      'One run on the same namespaces (hostA - gwA == veth == gwB - hostB); ipferry variants interleaved by round.',
    ].join('\n'),
  };
}
