/**
 * The soak (issue 12 point 9): two `ipferry up` endpoints on the site topology's gateways
 * (examples/site-topology.ts) under mixed traffic for a while, with the disturbances an operator
 * and the network cause, while the endpoints' memory and health are watched.
 *
 * Traffic (every loop ends at the deadline and has a count bound):
 *   - a probe: `ping -D -O -i 0.05` hostA -> hostB for the whole run (outages and recovery times)
 *   - iperf3 TCP hostA -> hostB over IPv4 and hostB -> hostA over IPv6, 100 Mbit/s each, in runs
 *   - UDP bursts (iperf3 -u 200 Mbit/s for 2 s, IPv4 and IPv6 in turn), big pings (8000 bytes:
 *     fragmented on the way), every few seconds
 *   - floods from an address that is no peer (203.0.113.66 on gwA): random garbage, GUE-wrapped
 *     fragments, outer fragments that never complete; and inner fragments that never complete
 *     sent through the tunnel to endpoint B's own stack (its reassembly, until they time out)
 * Disturbances, all on endpoint B except the reload: a restart (SIGTERM, start), a reload of A
 * (SIGHUP), the TUN deleted (`ip link del ferry0`: B exits 1 and is started again, as systemd's
 * Restart=on-failure would), a SIGKILL and a start.
 * Watched: RSS of each endpoint every second; pool slots and drops through the control socket
 * every 15 s and at the end (pool slots in use = live - those parked at the TUN reader, waiting
 * until the reassembly of the flooded fragments timed out); every log line.
 * Teardown on every path: the topology's namespaces (and every process in them) go in a finally,
 * and on exit / SIGINT / SIGTERM / SIGHUP (site-topology's hooks).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { EndpointProcess, SITE, SiteTopology, STACK, siteConfigs, sleep, writeSiteConfigs } from '../../examples/site-topology.ts';
import { requestSnapshot } from '../../src/control/control-socket.ts';
import { ROUTE_PROTO } from '../../src/endpoint/kernel-routes.ts';
import { machineCpu } from '../e2e/measure.ts';
import { longestGap, outageAround, parsePingLog, rssSlope, unexpectedErrors, type Outage, type Sample, type Slope } from './analysis.ts';

export interface SoakOptions {
  /** How long the traffic runs (s). */
  seconds: number;
  /** Environment of the endpoints (e.g. IPFERRY_NO_FFI=1 for the portable path). */
  env?: NodeJS.ProcessEnv;
  /** Progress lines. */
  log?: (line: string) => void;
  /** iperf3 rates: each TCP direction (default 100M) and the UDP bursts (default 200M). */
  tcpRate?: string;
  udpRate?: string;
}

export interface SoakEvent {
  name: string;
  /** Seconds after the start. */
  atS: number;
  outage: Outage;
  /** For restarts: ms from the disturbance to the new endpoint's "up:" line. */
  downToUpMs: number | null;
  note: string;
}

export interface EndpointReport {
  name: string;
  /** RSS samples of the endpoint that ran longest to the end (A: the whole run; B: after its last start). */
  samples: Sample[];
  slope: Slope;
  rssStartMb: number;
  rssEndMb: number;
  rssMaxMb: number;
  /** Final `show stats --json`: pool live, parked at the TUN reader, in use (live - parked), capacity, exhausted. */
  poolLive: number | null;
  poolParked: number | null;
  poolInUse: number | null;
  poolExhausted: number | null;
  /** Seconds after the traffic stopped until the pool was back (fragments time out). */
  settleS: number | null;
  drops: Record<string, number>;
  dataPath: string;
  unexpected: string[];
  /** Exit of the last incarnation at the end (SIGTERM). */
  exitCode: number | null;
  /** Routes with our mark left in its namespace after it stopped. */
  leftRoutes: string;
  starts: number;
}

export interface SoakResult {
  seconds: number;
  startedAt: string;
  loadStart: number;
  loadEnd: number;
  busyBefore: number | null;
  events: SoakEvent[];
  endpoints: EndpointReport[];
  traffic: { name: string; value: string }[];
  probe: { sent: number; received: number };
}

const SOCK_WAIT_MS = 60_000;

/** The timestamp of a log line (ISO at its start), epoch ms, or null. */
function lineTime(line: string): number | null {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z) /.exec(line);
  return m ? Date.parse(m[1]!) : null;
}

function rssKb(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

interface Incarnation {
  ep: EndpointProcess;
  samples: Sample[];
}

export async function runSoak(opts: SoakOptions): Promise<SoakResult> {
  const S = opts.seconds;
  const tcpRate = opts.tcpRate ?? '100M';
  const udpRate = opts.udpRate ?? '200M';
  const say = opts.log ?? (() => {});
  const cpu0 = machineCpu();
  await sleep(2000);
  const cpu1 = machineCpu();
  const busyBefore = cpu0 && cpu1 ? (cpu1.busy - cpu0.busy) / Math.max(1, cpu1.total - cpu0.total) : null;
  const loadStart = loadavg()[0]!;
  const startedAt = new Date().toISOString();
  const topo = new SiteTopology(`sk${process.pid % 10000}${Math.random().toString(36).slice(2, 5)}`);
  const dir = mkdtempSync(join(tmpdir(), 'ipferry-soak-'));
  const children: ChildProcess[] = [];
  try {
    topo.build();
    topo.warmUp();
    // the non-peer the floods come from
    topo.exec(topo.gwA, ['ip', 'addr', 'add', '203.0.113.66/24', 'dev', 'wan0']);
    const cfg = siteConfigs({ underlay: 4, controlDir: dir, keepalive: 1 }) as { a: Record<string, unknown>; b: Record<string, unknown> };
    const paths = writeSiteConfigs(dir, cfg);
    const sockA = join(dir, 'a.sock');
    const sockB = join(dir, 'b.sock');
    const start = (ns: string, config: string, sock: string): EndpointProcess => new EndpointProcess(topo, ns, config, sock, [], { env: { ...process.env, ...opts.env } });
    const waitUp = async (ep: EndpointProcess): Promise<number> => {
      const t0 = Date.now();
      for (;;) {
        const line = ep.output.split('\n').find((l) => / up: ferry0 /.test(l));
        if (line !== undefined && /control socket \//.test(ep.output)) return lineTime(line) ?? Date.now();
        if (!ep.running) throw new Error(`endpoint in ${ep.ns} exited before it was up:\n${ep.output}`);
        if (Date.now() - t0 > SOCK_WAIT_MS) throw new Error(`endpoint in ${ep.ns} not up:\n${ep.output}`);
        await sleep(20);
      }
    };

    const a: Incarnation = { ep: start(topo.gwA, paths.a, sockA), samples: [] };
    let b: Incarnation = { ep: start(topo.gwB, paths.b, sockB), samples: [] };
    const bOutputs: string[] = [];
    let bStarts = 1;
    await Promise.all([waitUp(a.ep), waitUp(b.ep)]);
    const dataPath = (ep: EndpointProcess): string => /data path: (.*)$/m.exec(ep.output)?.[1] ?? '?';
    say(`endpoints up (A: ${dataPath(a.ep)}; B: ${dataPath(b.ep)}); soak for ${S} s`);
    const t0 = Date.now();
    const end = t0 + S * 1000;
    const tS = (): number => (Date.now() - t0) / 1000;

    // ---- the probe, the iperf3 servers
    const probe = topo.spawn(topo.hostA, ['ping', '-D', '-O', '-n', '-i', '0.05', '-W', '1', '-w', String(S + 5), SITE.hostB.v4]);
    children.push(probe);
    let probeOut = '';
    probe.stdout!.on('data', (d: Buffer) => (probeOut += d.toString()));
    const servers = [
      topo.spawn(topo.hostB, ['iperf3', '-s', '-p', '5201']),
      topo.spawn(topo.hostA, ['iperf3', '-s', '-p', '5202']),
      topo.spawn(topo.hostB, ['iperf3', '-s', '-p', '5203']),
    ];
    children.push(...servers);
    await sleep(300);

    // ---- traffic loops
    const traffic = { tcpAB: 0, tcpBA: 0, tcpRuns: 0, tcpFailed: 0, udpBursts: 0, udpLoss: [] as number[], udpFailed: 0, bigPings: 0, bigReplies: 0, flooded: {} as Record<string, number> };
    const iperfLoop = async (ns: string, server: string, port: number, key: 'tcpAB' | 'tcpBA'): Promise<void> => {
      for (let i = 0; i < 1000 && Date.now() < end - 3000; i++) {
        const secs = Math.max(2, Math.min(20, Math.floor((end - Date.now()) / 1000) - 1));
        const r = await topo.runAsync(ns, ['iperf3', '-c', server, '-p', String(port), '-t', String(secs), '-b', tcpRate, '-J', '--connect-timeout', '3000'], (secs + 30) * 1000);
        traffic.tcpRuns++;
        try {
          const j = JSON.parse(r.stdout) as { error?: string; end?: { sum_received?: { bytes: number } } };
          if (j.error !== undefined || j.end?.sum_received === undefined) throw new Error(j.error ?? 'no result');
          traffic[key] += j.end.sum_received.bytes;
        } catch {
          traffic.tcpFailed++; // an endpoint restarting under it: try again
          await sleep(500);
        }
      }
    };
    const every = async (periodS: number, firstS: number, body: (i: number) => Promise<void>, stopBeforeEndS = 3): Promise<void> => {
      for (let i = 0; i < 10_000; i++) {
        const at = t0 + (firstS + i * periodS) * 1000;
        if (at > end - stopBeforeEndS * 1000) return;
        if (at > Date.now()) await sleep(at - Date.now());
        await body(i);
      }
    };
    const udpLoop = every(S >= 300 ? 15 : 10, 4, async (i) => {
      const dst = i % 2 === 0 ? SITE.hostB.v4 : SITE.hostB.v6;
      const r = await topo.runAsync(topo.hostA, ['iperf3', '-c', dst, '-p', '5203', '-u', '-b', udpRate, '-l', '1300', '-t', '2', '-J', '--connect-timeout', '3000'], 30_000);
      traffic.udpBursts++;
      try {
        const j = JSON.parse(r.stdout) as { error?: string; end?: { sum?: { lost_percent?: number } } };
        if (j.error !== undefined) throw new Error(j.error);
        traffic.udpLoss.push(j.end?.sum?.lost_percent ?? NaN);
      } catch {
        traffic.udpFailed++;
      }
    });
    const bigPingLoop = every(10, 2, async (i) => {
      const dst = i % 2 === 0 ? SITE.hostB.v4 : SITE.hostB.v6;
      const r = await topo.runAsync(topo.hostA, ['ping', '-n', '-c', '5', '-i', '0.2', '-W', '2', '-s', '8000', dst], 20_000);
      traffic.bigPings += 5;
      traffic.bigReplies += Number(/(\d+) received/.exec(r.stdout)?.[1] ?? 0);
    });
    const flood = async (ns: string, mode: string, count: number, src: string, dst: string): Promise<void> => {
      const r = await topo.runAsync(ns, ['/usr/bin/python3', FLOOD_PY, mode, String(count), src, dst, '6080', String(Math.floor(Math.random() * 1e6))], 120_000);
      traffic.flooded[mode] = (traffic.flooded[mode] ?? 0) + (Number(r.stdout.trim()) || 0);
      if (r.code !== 0) say(`flood ${mode}: exit ${r.code}: ${r.stderr.trim().split('\n').pop()}`);
    };
    // the inner fragments must time out (IPv4 30 s, IPv6 60 s) before the end: none in the last 75 s of a long run
    const floodLoop = every(S >= 300 ? 60 : 20, S >= 300 ? 30 : 6, async (i) => {
      const scale = S >= 300 ? 1 : 0.4;
      await flood(topo.gwA, 'garbage', Math.round(3000 * scale), '203.0.113.66', SITE.gwB.wan4);
      await flood(topo.gwA, 'gue-frag', Math.round(2000 * scale), '203.0.113.66', SITE.gwB.wan4);
      await flood(topo.gwA, 'outer-frag', Math.round(1000 * scale), '203.0.113.66', SITE.gwB.wan4);
      if (tS() < S - 75 || i === 0) {
        await flood(topo.hostA, 'inner-frag', Math.round(500 * scale), SITE.hostA.v4, STACK.b.v4);
        await flood(topo.hostA, 'inner-frag', Math.round(500 * scale), SITE.hostA.v6, STACK.b.v6);
      }
    });

    // ---- samplers
    const rssTimer = setInterval(() => {
      for (const inc of [a, b]) {
        const kb = rssKb(inc.ep.child.pid);
        if (kb !== null && inc.ep.running) inc.samples.push({ t: tS(), kb });
      }
    }, 1000);
    const statSamples: { t: number; who: string; poolLive: number; poolParked: number }[] = [];
    const statsTimer = setInterval(() => {
      for (const [who, sock] of [['A', sockA], ['B', sockB]] as const) {
        requestSnapshot(sock, 'stats', { timeoutMs: 5000 })
          .then((s) => statSamples.push({ t: tS(), who, poolLive: s.stats?.poolLive ?? -1, poolParked: s.stats?.extra?.poolParked ?? 0 }))
          .catch(() => undefined); // restarting
      }
    }, 15_000);

    // ---- disturbances
    const events: SoakEvent[] = [];
    const pending: { name: string; at: number; up: number | null; note: string }[] = [];
    const restartB = async (name: string, how: () => Promise<void>): Promise<void> => {
      const at = Date.now();
      await how();
      bOutputs.push(b.ep.output);
      const exitNote = await Promise.race([b.ep.exited.then((st) => `exit ${st.code ?? st.signal}`), sleep(20_000).then(() => 'no exit')]);
      b = { ep: start(topo.gwB, paths.b, sockB), samples: [] };
      bStarts++;
      const up = await waitUp(b.ep);
      pending.push({ name, at, up, note: exitNote });
      say(`${name} at ${((at - t0) / 1000).toFixed(0)} s: ${exitNote}, up again after ${up - at} ms`);
    };
    const plan: [number, string, () => Promise<void>][] = [
      [0.15, 'restart B (SIGTERM, start)', () => restartB('restart B (SIGTERM, start)', async () => void (await b.ep.stop()))],
      [
        0.25,
        'reload A (SIGHUP)',
        async () => {
          const at = Date.now();
          const before = a.ep.output.length;
          a.ep.child.kill('SIGHUP');
          await sleep(3000);
          const said = a.ep.output.slice(before).split('\n').filter((l) => l.trim() !== '');
          pending.push({ name: 'reload A (SIGHUP)', at, up: null, note: said.map((l) => l.replace(/^\S+ \w+ ferry0: /, '')).join(' / ') || 'nothing logged' });
          say(`reload A: ${said.join(' / ')}`);
        },
      ],
      [0.35, 'TUN deleted on B (exit 1, started again)', () => restartB('TUN deleted on B (exit 1, started again)', async () => void topo.exec(topo.gwB, ['ip', 'link', 'del', 'ferry0']))],
      [0.45, 'SIGKILL B, start', () => restartB('SIGKILL B, start', async () => void b.ep.child.kill('SIGKILL'))],
    ];
    const disturb = (async () => {
      for (const [frac, , run] of plan) {
        const at = t0 + frac * S * 1000;
        if (at > Date.now()) await sleep(at - Date.now());
        await run();
      }
    })();

    await Promise.all([
      iperfLoop(topo.hostA, SITE.hostB.v4, 5201, 'tcpAB'),
      iperfLoop(topo.hostB, SITE.hostA.v6, 5202, 'tcpBA'),
      udpLoop,
      bigPingLoop,
      floodLoop,
      disturb,
    ]);
    if (end > Date.now()) await sleep(end - Date.now());
    say(`traffic done at ${tS().toFixed(0)} s`);
    for (const s of servers) s.kill('SIGKILL');
    probe.kill('SIGINT');
    await new Promise<void>((r) => (probe.exitCode !== null ? r() : probe.once('exit', () => r())));

    // ---- settle: pool slots back once nothing moves and the flooded fragments timed out
    const settle = async (sock: string): Promise<number | null> => {
      const s0 = Date.now();
      for (let i = 0; i < 60; i++) {
        try {
          const s = await requestSnapshot(sock, 'stats', { timeoutMs: 5000 });
          if ((s.stats?.poolLive ?? 0) - (s.stats?.extra?.poolParked ?? 0) === 0) return (Date.now() - s0) / 1000;
        } catch {
          /* try again */
        }
        await sleep(2000);
      }
      return null;
    };
    const [settleA, settleB] = await Promise.all([settle(sockA), settle(sockB)]);
    clearInterval(rssTimer);
    clearInterval(statsTimer);
    const finals = await Promise.all([a.ep.show('stats'), b.ep.show('stats')]).catch((e: Error) => {
      say(`show stats failed: ${e.message}`);
      return [null, null];
    });
    const stA = await a.ep.stop();
    const stB = await b.ep.stop();
    bOutputs.push(b.ep.output);
    const left = (ns: string): string => topo.exec(ns, ['ip', 'route', 'show', 'table', 'all', 'proto', String(ROUTE_PROTO)]).trim();

    // ---- analysis
    const ping = parsePingLog(probeOut);
    for (const p of pending) {
      const o = p.up !== null ? outageAround(ping.replies, p.at, p.up) : { lastBefore: null, firstAfter: null, gapMs: longestGap(ping.replies, p.at, p.at + 5000), upToTrafficMs: null };
      events.push({ name: p.name, atS: (p.at - t0) / 1000, outage: o, downToUpMs: p.up !== null ? p.up - p.at : null, note: p.note });
    }
    const expectedB = [/error ferry0: device ferry0 went down: TUN ferry0: interface ferry0 was deleted; stopping with exit code 1/];
    const report = (name: string, inc: Incarnation, fin: Record<string, any> | null, settleS: number | null, log: string, exit: number | null, ns: string, starts: number): EndpointReport => {
      const kb = inc.samples.map((s) => s.kb);
      const st = fin?.stats as Record<string, any> | undefined;
      const parked = (st?.extra?.poolParked as number | undefined) ?? null;
      return {
        name,
        samples: inc.samples,
        slope: rssSlope(inc.samples),
        rssStartMb: (kb[0] ?? 0) / 1024,
        rssEndMb: (kb[kb.length - 1] ?? 0) / 1024,
        rssMaxMb: Math.max(0, ...kb) / 1024,
        poolLive: st?.poolLive ?? null,
        poolParked: parked,
        poolInUse: st?.poolLive !== undefined ? st.poolLive - (parked ?? 0) : null,
        poolExhausted: st?.poolExhausted ?? null,
        settleS,
        drops: (st?.drops as Record<string, number> | undefined) ?? {},
        dataPath: /data path: (.*)$/m.exec(log)?.[1] ?? '?',
        unexpected: unexpectedErrors(log, name.startsWith('B') ? expectedB : []),
        exitCode: exit,
        leftRoutes: left(ns),
        starts,
      };
    };
    const endpoints = [
      report('A (gwA, beijing side)', a, finals[0], settleA, a.ep.output, stA.code, topo.gwA, 1),
      report('B (gwB, shanghai side)', b, finals[1], settleB, bOutputs.join('\n'), stB.code, topo.gwB, bStarts),
    ];
    const pct = (xs: number[]): string => (xs.length === 0 ? '-' : `${(xs.reduce((x, y) => x + y, 0) / xs.length).toFixed(1)}% mean`);
    const trafficRows = [
      { name: `iperf3 TCP hostA -> hostB (IPv4, ${tcpRate}bit/s runs)`, value: `${(traffic.tcpAB / 1e9).toFixed(2)} GB` },
      { name: `iperf3 TCP hostB -> hostA (IPv6, ${tcpRate}bit/s runs)`, value: `${(traffic.tcpBA / 1e9).toFixed(2)} GB` },
      { name: 'TCP runs (failed: started during a restart)', value: `${traffic.tcpRuns} (${traffic.tcpFailed})` },
      { name: `UDP bursts ${udpRate}bit/s x 2 s (failed), loss`, value: `${traffic.udpBursts} (${traffic.udpFailed}), ${pct(traffic.udpLoss)}` },
      { name: 'big pings (8000 bytes, IPv4/IPv6): replies', value: `${traffic.bigReplies} / ${traffic.bigPings}` },
      ...Object.entries(traffic.flooded).map(([m, n]) => ({ name: `flood ${m} (packets)`, value: String(n) })),
      { name: 'probe ping every 50 ms: replies', value: `${ping.received} / ${ping.sent}` },
      { name: 'pool samples through the control socket (every 15 s)', value: String(statSamples.length) },
    ];
    return {
      seconds: S,
      startedAt,
      loadStart,
      loadEnd: loadavg()[0]!,
      busyBefore,
      events,
      endpoints,
      traffic: trafficRows,
      probe: { sent: ping.sent, received: ping.received },
    };
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    topo.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

const FLOOD_PY = new URL('./flood.py', import.meta.url).pathname;

/** The summary as markdown (bench/SOAK.md, and printed). */
export function soakMarkdown(r: SoakResult, machine: string): string {
  const f1 = (v: number | null | undefined): string => (v === null || v === undefined ? '-' : v.toFixed(1));
  const ms = (v: number | null): string => (v === null ? '-' : `${v}`);
  const [A, B] = r.endpoints as [EndpointReport, EndpointReport];
  const row = (name: string, fa: (e: EndpointReport) => string): string => `| ${name} | ${fa(A)} | ${fa(B)} |`;
  const lines = [
    `Soak of ${r.seconds} s started ${r.startedAt}; ${machine}. Load average ${r.loadStart.toFixed(1)} at the start, ${r.loadEnd.toFixed(1)} at the end; ${r.busyBefore === null ? '?' : `${(100 * r.busyBefore).toFixed(0)}%`} of the CPUs were busy with other work in the 2 s before.`,
    '',
    '| endpoint | A | B |',
    '|---|---|---|',
    row('data path', (e) => e.dataPath),
    row('starts', (e) => String(e.starts)),
    row('RSS start / end / max (MiB)', (e) => `${f1(e.rssStartMb)} / ${f1(e.rssEndMb)} / ${f1(e.rssMaxMb)}`),
    row('RSS slope after warm-up (least squares, last 80%)', (e) => `${f1(e.slope.kbPerMin)} KiB/min over ${e.slope.spanS.toFixed(0)} s (${e.slope.n} samples)`),
    row('pool slots in use at the end (live - parked at the TUN reader)', (e) => `${e.poolInUse ?? '-'} (${e.poolLive ?? '-'} - ${e.poolParked ?? '-'})`),
    row('seconds until the pool was back after the traffic', (e) => (e.settleS === null ? 'never (within 120 s)' : e.settleS.toFixed(0))),
    row('pool exhausted (acquire found it empty)', (e) => String(e.poolExhausted ?? '-')),
    row('unexpected error lines in the log', (e) => String(e.unexpected.length)),
    row('exit code at the end (SIGTERM)', (e) => String(e.exitCode)),
    row('routes with our mark left after the stop', (e) => (e.leftRoutes === '' ? 'none' : e.leftRoutes.replace(/\n/g, '; '))),
    row('drops (top 5 reasons)', (e) =>
      Object.entries(e.drops)
        .sort((x, y) => y[1] - x[1])
        .slice(0, 5)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ') || 'none',
    ),
    '',
    '| disturbance | at (s) | down -> up again (ms) | up -> traffic (ms) | probe outage (ms) | what happened |',
    '|---|---|---|---|---|---|',
    ...r.events.map((e) => `| ${e.name} | ${e.atS.toFixed(0)} | ${ms(e.downToUpMs)} | ${ms(e.outage.upToTrafficMs)} | ${ms(e.outage.gapMs)} | ${e.note.replace(/\|/g, '/')} |`),
    '',
    '| traffic | |',
    '|---|---|',
    ...r.traffic.map((t) => `| ${t.name} | ${t.value} |`),
    '',
    '"up -> traffic": from the restarted endpoint\'s "up:" log line to the first probe reply after it (the probe pings every 50 ms, so the figure is good to about 50 ms); "probe outage": from the last reply before the disturbance to the first after it (for the reload: the longest gap between replies in the 5 s after the SIGHUP). RSS is VmRSS of the endpoint process, sampled every second; the slope is fitted over the last 80% of the samples of the process that ran to the end (B: its last start).',
  ];
  const bad = r.endpoints.flatMap((e) => e.unexpected.map((l) => `- ${e.name}: \`${l}\``));
  if (bad.length > 0) lines.push('', 'Unexpected error lines:', ...bad.slice(0, 20));
  return `${lines.join('\n')}\n`;
}

/** Write the result's markdown to `file` under a title. */
export function writeSoak(file: string, r: SoakResult, machine: string): void {
  writeFileSync(file, `# Soak\n\nWritten by \`npm run soak\` (bench/soak.ts).\n\n${soakMarkdown(r, machine)}`);
}

/** Whether the soak can run here: root, ip netns, /dev/net/tun, iperf3, ping, python3 with scapy. */
export function soakSkipReason(): string | null {
  if (process.getuid?.() !== 0) return 'needs root';
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import scapy.all'], { stdio: 'ignore', timeout: 30_000 });
  } catch {
    return 'needs /usr/bin/python3 with scapy';
  }
  for (const c of ['iperf3', 'ping', 'ip']) {
    try {
      execFileSync('sh', ['-c', `command -v ${c}`], { stdio: 'ignore' });
    } catch {
      return `needs ${c}`;
    }
  }
  return null;
}
