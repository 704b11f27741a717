/**
 * End to end (root): ipferry beside OpenVPN 2.6 and the physical paths, in the seed's topology
 * (examples/site-topology.ts: hostA - gwA == wan0 veth == gwB - hostB, kernel TCP/UDP/ICMP on
 * both ends). Every path is up at once on the same veth (bench/e2e/paths.ts gives each its own
 * pair of host addresses), and the rounds interleave them, the order rotated each round:
 *
 *   bare veth         gwA -> gwB on wan0 (the physical reference)
 *   routed            hostA -> hostB through both gateways, plain kernel forwarding, no tunnel
 *   ipferry           `node dist/cli.js up` on both gateways (the compiled CLI operators run),
 *                     once with the environment as it is minus IPFERRY_NO_FFI and once with
 *                     IPFERRY_NO_FFI=1 (the portable path): labelled by what the endpoints say
 *                     they run, else by the variable
 *   OpenVPN 2.6       --cipher none --auth none --tun-mtu 1400 (the NOTES recipe)
 *
 * Per path and round: ping RTT avg/p99 sparse (-i 0.05) and back to back (-i 0.002); iperf3 TCP
 * 1 and 4 streams (Mbit/s, retransmits); iperf3 UDP of 1300-byte datagrams offered at 2 Gbit/s
 * (delivered pps, loss); CPU seconds per GB delivered of each endpoint process (utime + stime
 * from /proc/PID/stat around each transfer). Then medians, ratios to OpenVPN, the per-hop delays
 * inside the gateways (tcpdump), and a chart (e2e.svg).
 *
 *   npm run bench -- e2e          (E2E_ROUNDS=n, 1-7, default 3; E2E_KEEP=DIR keeps raw outputs;
 *                                 E2E_BASELINE=DIR adds a row run by the ipferry CLI of another checkout)
 *
 * Bounded: every tool run has a count and a timeout, rounds stop at a 9-minute budget, and the
 * namespaces (with the TUN devices inside) and every child go in a finally and on Ctrl-C.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchSection } from './run.ts';
import { benchDate, machineText } from './machine.ts';
import { haveCommand, isRoot, SITE, SiteTopology, sleep } from '../examples/site-topology.ts';
import { captureHops, hopDelays, type HopFilter } from './e2e/hops.ts';
import { clockTicksPerSecond, irqTimeAccounting, machineCpu, readProcCpu, runIperf3, runPing, type Keep } from './e2e/measure.ts';
import { dataPathKind, type Iperf3Run, type Iperf3Tcp, type Iperf3Udp } from './e2e/parse.ts';
import { addLane, ipferryUp, lane, openvpnUp, routedUp, type IpferryPair, type OpenVpnPair, type PathProcess } from './e2e/paths.ts';
import { renderReport, type HopRow, type PathResult, type RoundResult, type Transfer } from './e2e/report.ts';

const TITLE = 'End to end: ipferry vs OpenVPN 2.6, bare veth and routed (namespaces, kernel on both ends)';
const TRANSFER_SECONDS = 3;
const UDP_ARGS = ['-u', '-b', '2G', '-l', '1300'] as const;
/** Give up on a connection after 3 s instead of the kernel's SYN retries. */
const IPERF_ARGS = ['--connect-timeout', '3000'] as const;
const SPARSE = { count: 100, interval: 0.05 };
const DENSE = { count: 500, interval: 0.002 };
const HOP_PINGS = 31;
const BUDGET_MS = 9 * 60_000;
const CHART = 'e2e.svg';

/** A path under test: where its client and server run, and which processes carry it. */
interface PathDef extends PathResult {
  clientNs: string;
  serverNs: string;
  serverAddr: string;
  pids: PathProcess[];
  hop: HopFilter | null;
  /** Why the path stopped being measured mid-run (it died), if it did. */
  stopped: string | null;
}

/** The repository root: the nearest package.json named ipferry above this file (also when compiled). */
function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 10; i++) {
    const p = join(d, 'package.json');
    try {
      if (existsSync(p) && (JSON.parse(readFileSync(p, 'utf8')) as { name?: string }).name === 'ipferry') return d;
    } catch {
      /* not ours */
    }
    d = dirname(d);
  }
  throw new Error('no ipferry package.json above bench/');
}

function newestMtime(dir: string): number {
  let t = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    t = Math.max(t, st.isDirectory() ? newestMtime(p) : st.mtimeMs);
  }
  return t;
}

/** dist/cli.js, built with `npm run build` first when missing or older than src/. */
async function compiledCli(root: string, say: (s: string) => void): Promise<string> {
  const cli = join(root, 'dist', 'cli.js');
  if (existsSync(cli) && statSync(cli).mtimeMs >= newestMtime(join(root, 'src'))) return cli;
  say('dist/ is missing or older than src/: npm run build');
  const code = await new Promise<number>((resolve) => {
    const child = spawn('npm', ['run', 'build'], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', () => resolve(-1));
    child.once('close', (c) => {
      if (c !== 0) say(err.trim().split('\n').slice(-5).join('\n'));
      resolve(c ?? -1);
    });
  });
  if (code !== 0 || !existsSync(cli)) throw new Error(`npm run build failed (exit ${code})`);
  return cli;
}

function emptyTransfer<T>(n: number): Transfer<T> {
  return { run: null, cpuSeconds: new Array<number | null>(n).fill(null) };
}

export default async function e2eBench(): Promise<BenchSection> {
  const need = ['ip', 'iperf3', 'ping', 'tcpdump', 'getconf'];
  if (!isRoot() || need.some((c) => !haveCommand(c))) {
    const why = !isRoot() ? 'not root' : `needs ${need.filter((c) => !haveCommand(c)).join(', ')}`;
    process.stdout.write(`e2e bench skipped: ${why}\n`);
    return { title: TITLE, markdown: `Skipped: ${why} (needs root, network namespaces, iperf3, ping, tcpdump).` };
  }
  const t0 = Date.now();
  const say = (s: string) => process.stdout.write(`  ${s}\n`);
  const rounds = Math.max(1, Math.min(7, Number(process.env.E2E_ROUNDS ?? 3) || 3));
  const keepDir = process.env.E2E_KEEP;
  if (keepDir) mkdirSync(keepDir, { recursive: true });
  const keeper = (prefix: string): Keep | undefined =>
    keepDir ? (name, text) => writeFileSync(join(keepDir, `${prefix}-${name.replace(/[^\w.=-]+/g, '_')}.txt`), text) : undefined;
  const notes: string[] = [];
  const ticks = clockTicksPerSecond();
  // how busy the machine is before we start (other work shares these cores)
  const idleBefore = machineCpu();
  await sleep(2000);
  const idleAfter = machineCpu();
  const busyBefore = idleBefore && idleAfter ? (idleAfter.busy - idleBefore.busy) / Math.max(1, idleAfter.total - idleBefore.total) : null;
  const load0 = loadavg()[0]!;

  let cli: string;
  try {
    cli = await compiledCli(repoRoot(), say);
  } catch (e) {
    return { title: TITLE, markdown: `Not run: ${(e as Error).message}.` };
  }
  const topo = new SiteTopology(`e${process.pid}${Math.random().toString(36).slice(2, 5)}`);
  const dir = mkdtempSync(join(tmpdir(), 'ipferry-e2e-'));
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  process.once('exit', removeDir); // also on Ctrl-C: site-topology's handler exits the process
  const ipferryPairs: IpferryPair[] = [];
  let ovpn: OpenVpnPair | null = null;
  const L = { fast: lane(0), portable: lane(1), openvpn: lane(2), routed: lane(3), baseline: lane(4) };
  // E2E_BASELINE=DIR: also run the ipferry of another checkout (e.g. a git worktree of the code
  // before a change, its src/cli.mjs or dist/cli.js) as its own row, on the portable path
  const baselineDir = process.env.E2E_BASELINE ?? '';
  const base = (key: string, label: string, short: string, color: string, kind: PathResult['kind']): Omit<PathDef, 'clientNs' | 'serverNs' | 'serverAddr'> => ({
    key, label, short, color, kind, down: null, stopped: null, rounds: [], hops: [], pids: [], processes: [], hop: null,
  });
  const paths: PathDef[] = [
    { ...base('bare', 'bare veth gwA -> gwB', 'bare veth', '#8c8c8c', 'reference'), clientNs: topo.gwA, serverNs: topo.gwB, serverAddr: SITE.gwB.wan4 },
    { ...base('routed', 'routed hostA -> hostB, no tunnel', 'routed, no tunnel', '#b8b8b8', 'reference'), clientNs: topo.hostA, serverNs: topo.hostB, serverAddr: L.routed.hostB },
    { ...base('ipferry', 'ipferry', 'ipferry', '#1f77b4', 'ipferry'), clientNs: topo.hostA, serverNs: topo.hostB, serverAddr: L.fast.hostB },
    { ...base('ipferry-noffi', 'ipferry', 'ipferry', '#6baed6', 'ipferry'), clientNs: topo.hostA, serverNs: topo.hostB, serverAddr: L.portable.hostB },
    ...(baselineDir === ''
      ? []
      : [{ ...base('ipferry-base', 'ipferry baseline', 'ipferry baseline', '#c6dbef', 'ipferry'), clientNs: topo.hostA, serverNs: topo.hostB, serverAddr: L.baseline.hostB }]),
    { ...base('openvpn', 'OpenVPN 2.6 (--cipher none --auth none --tun-mtu 1400)', 'OpenVPN 2.6', '#ff7f0e', 'openvpn'), clientNs: topo.hostA, serverNs: topo.hostB, serverAddr: L.openvpn.hostB },
  ];
  const byKey = (k: string) => paths.find((p) => p.key === k)!;
  const attach = (p: PathDef, procs: PathProcess[], hop: HopFilter) => {
    p.pids = procs;
    p.processes = procs.map((x) => ({ gw: x.gw }));
    p.hop = hop;
  };

  try {
    topo.build();
    topo.warmUp();
    for (const l of Object.values(L)) addLane(topo, l);
    routedUp(topo, L.routed);

    // ipferry: the environment as it is without IPFERRY_NO_FFI, and with IPFERRY_NO_FFI=1
    const { IPFERRY_NO_FFI: _drop, ...envDefault } = process.env;
    for (const [key, l, env, varText] of [
      ['ipferry', L.fast, envDefault, 'IPFERRY_NO_FFI unset'],
      ['ipferry-noffi', L.portable, { ...envDefault, IPFERRY_NO_FFI: '1' }, 'IPFERRY_NO_FFI=1'],
    ] as const) {
      const p = byKey(key);
      try {
        const pair = await ipferryUp(topo, l, dir, [cli], env);
        ipferryPairs.push(pair);
        attach(p, pair.processes, { tun: pair.dev, wan: 'wan0', port: pair.port });
        const [a, b] = pair.reported;
        const kind = (r: string | null) => (r === null ? '?' : `${dataPathKind(r)} path`);
        const what = a === null && b === null ? varText : kind(a) === kind(b) ? kind(a) : `gwA ${kind(a)}, gwB ${kind(b)}`;
        p.label = `ipferry (${what}${a === null && b === null ? '' : `, ${varText}`})`;
        // the chart's bar label: short, and the two pairs told apart even when they report the same path
        const noFfi = key === 'ipferry-noffi';
        p.short =
          a === null && b === null
            ? `ipferry, ${noFfi ? 'NO_FFI=1' : 'NO_FFI unset'}`
            : `ipferry ${what.replace(/ path/g, '')}${noFfi ? ', NO_FFI=1' : ''}`;
        notes.push(
          `${p.label}: ${a === null && b === null ? 'the endpoints do not say which data path they run; labelled by the variable' : `the endpoints report data path "${a}" (gwA) and "${b}" (gwB)`}.`,
        );
      } catch (e) {
        p.label = `ipferry (${varText})`;
        p.down = (e as Error).message.split('\n')[0]!.slice(0, 160);
      }
    }
    if (baselineDir !== '') {
      const p = byKey('ipferry-base');
      const cliOf = ['dist/cli.js', 'src/cli.mjs'].map((f) => join(baselineDir, f)).find((f) => existsSync(f));
      let rev = '';
      try {
        rev = execFileSync('git', ['-C', baselineDir, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
      } catch {
        /* not a git checkout */
      }
      p.label = `ipferry baseline (${rev !== '' ? `commit ${rev}` : baselineDir}, IPFERRY_NO_FFI=1)`;
      if (cliOf === undefined) p.down = `no dist/cli.js or src/cli.mjs in ${baselineDir}`;
      else {
        try {
          const pair = await ipferryUp(topo, L.baseline, dir, [cliOf], { ...envDefault, IPFERRY_NO_FFI: '1' });
          ipferryPairs.push(pair);
          attach(p, pair.processes, { tun: pair.dev, wan: 'wan0', port: pair.port });
          notes.push(`${p.label}: the same config run by the CLI of ${baselineDir} (${cliOf.endsWith('.mjs') ? 'TypeScript under tsx' : 'compiled'}).`);
        } catch (e) {
          p.down = (e as Error).message.split('\n')[0]!.slice(0, 160);
        }
      }
    }
    const ov = byKey('openvpn');
    if (!haveCommand('openvpn')) ov.down = 'openvpn not installed';
    else {
      try {
        ovpn = await openvpnUp(topo, L.openvpn);
        attach(ov, ovpn.processes, { tun: ovpn.dev, wan: 'wan0', port: ovpn.port });
      } catch (e) {
        ov.down = (e as Error).message;
      }
    }

    // every path must carry a ping before it is measured
    for (const p of paths) {
      if (p.down !== null) continue;
      const r = await runPing(topo, p.clientNs, p.serverAddr, 3, 0.2);
      if (r.received === 0) p.down = `no ping reply through it (${p.serverAddr})`;
    }
    if (keepDir) for (const p of paths) for (const pr of p.pids) writeFileSync(join(keepDir, `${p.key}-${pr.gw}-stat.txt`), readFileSync(`/proc/${pr.pid}/stat`, 'utf8'));

    const hopRound = async (when: string): Promise<void> => {
      for (const p of paths) {
        if (p.down !== null || p.stopped !== null || p.hop === null) continue;
        const filter = `icmp or udp port ${p.hop.port}`;
        const capA = captureHops(topo, topo.gwA, filter);
        const capB = captureHops(topo, topo.gwB, filter);
        await Promise.all([capA.ready, capB.ready]);
        await runPing(topo, p.clientNs, p.serverAddr, HOP_PINGS, SPARSE.interval);
        const [la, lb] = await Promise.all([capA.stop(), capB.stop()]);
        keeper(`${p.key}-hops-${when.replace(/\W+/g, '-')}`)?.('tcpdump-gwA', la.join('\n'));
        keeper(`${p.key}-hops-${when.replace(/\W+/g, '-')}`)?.('tcpdump-gwB', lb.join('\n'));
        const ha = hopDelays(la, p.hop);
        const hb = hopDelays(lb, p.hop);
        const row: HopRow = { when, gwAOut: ha.out, gwBIn: hb.in, gwBOut: hb.out, gwAIn: ha.in };
        p.hops.push(row);
        say(`hops ${p.key} ${when}: n ${ha.out.length}/${hb.in.length}/${hb.out.length}/${ha.in.length}`);
      }
    };
    await hopRound('fresh');

    // warm-up through every tunnel (not recorded): JIT, buffers, neighbours
    for (const p of paths) {
      if (p.down !== null || p.kind === 'reference') continue;
      await runIperf3(topo, p.serverNs, p.clientNs, p.serverAddr, ['-t', '1']).catch(() => undefined);
    }

    const transfer = async <T extends Iperf3Run>(p: PathDef, args: readonly string[], keep: Keep | undefined, what: string): Promise<Transfer<T>> => {
      const t = emptyTransfer<T>(p.pids.length);
      const before = p.pids.map((x) => readProcCpu(x.pid));
      try {
        t.run = (await runIperf3(topo, p.serverNs, p.clientNs, p.serverAddr, args, keep)) as T;
      } catch (e) {
        notes.push(`${p.label}: ${what} failed: ${(e as Error).message.slice(0, 160)}`);
        return t;
      }
      const after = p.pids.map((x) => readProcCpu(x.pid));
      t.cpuSeconds = p.pids.map((_, i) => {
        const b = before[i];
        const a = after[i];
        return b && a ? (a.utime + a.stime - b.utime - b.stime) / ticks : null;
      });
      return t;
    };
    /** One round of a path; null (and the path skipped from then on) when it has died. */
    const measure = async (p: PathDef, round: number): Promise<RoundResult | null> => {
      const keep = keeper(`${p.key}-r${round}`);
      const stop = (why: string): null => {
        p.stopped = why;
        notes.push(`${p.label}: ${why}; its later rounds were skipped.`);
        return null;
      };
      const gone = p.pids.filter((x) => readProcCpu(x.pid) === null).map((x) => x.gw);
      if (gone.length > 0) return stop(`the endpoint process in ${gone.join(' and ')} exited before round ${round}`);
      const sparse = await runPing(topo, p.clientNs, p.serverAddr, SPARSE.count, SPARSE.interval, keep);
      // a dead path would cost every transfer its full timeout
      if (sparse.received === 0) return stop(`no ping reply in round ${round}`);
      const dense = await runPing(topo, p.clientNs, p.serverAddr, DENSE.count, DENSE.interval, keep);
      const T = String(TRANSFER_SECONDS);
      const tcp1 = await transfer<Iperf3Tcp>(p, ['-t', T, ...IPERF_ARGS], keep, 'TCP 1 stream');
      const tcp4 = await transfer<Iperf3Tcp>(p, ['-t', T, '-P', '4', ...IPERF_ARGS], keep, 'TCP 4 streams');
      const udp = await transfer<Iperf3Udp>(p, ['-t', T, ...UDP_ARGS, ...IPERF_ARGS], keep, 'UDP');
      return { round, sparse, dense: dense.received > 0 ? dense : null, tcp1, tcp4, udp };
    };

    const live = paths.filter((p) => p.down === null);
    let done = 0;
    for (let r = 1; r <= rounds; r++) {
      const elapsed = Date.now() - t0;
      const perRound = done > 0 ? elapsed / done : 0;
      if (r > 1 && elapsed + perRound > BUDGET_MS) {
        notes.push(`Stopped after ${done} of ${rounds} rounds: the next would pass the ${BUDGET_MS / 60_000}-minute budget.`);
        break;
      }
      // rotate the order each round so no path always runs first or after the same neighbour
      const order = live.map((_, i) => live[(i + r - 1) % live.length]!);
      for (const p of order) {
        if (p.stopped !== null) continue;
        const m = await measure(p, r);
        if (m === null) continue;
        p.rounds.push(m);
        const rtt = (x: typeof m.sparse) => (x === null ? '-' : (x.rtts.reduce((a, b) => a + b, 0) / Math.max(1, x.rtts.length)).toFixed(3));
        say(
          `round ${r} ${p.key}: TCP ${m.tcp1.run ? (m.tcp1.run.bitsPerSecond / 1e6).toFixed(0) : '-'} / x4 ${m.tcp4.run ? (m.tcp4.run.bitsPerSecond / 1e6).toFixed(0) : '-'} Mbit/s, ` +
            `UDP ${m.udp.run ? (m.udp.run.pps / 1e3).toFixed(1) : '-'} kpps, RTT ${rtt(m.sparse)} / ${rtt(m.dense)} ms, CPU s ${m.tcp1.cpuSeconds.map((c) => (c === null ? '-' : c.toFixed(2))).join('+') || 'n/a'}`,
        );
      }
      done = r;
    }
    await hopRound('after the rounds');

    for (const [i, pair] of ipferryPairs.entries()) {
      for (const [j, e] of pair.endpoints.entries()) {
        try {
          const s = (await e.show('stats')).stats as { drops: Record<string, number>; poolLive: number; poolExhausted: number };
          notes.push(
            `${ipferryPairs.length > 1 ? `pair ${i + 1} ` : ''}${j === 0 ? 'gwA' : 'gwB'} ${pair.dev} after the run: pool live ${s.poolLive}, pool exhausted ${s.poolExhausted}x, drops ${JSON.stringify(s.drops)}.`,
          );
        } catch (err) {
          notes.push(`${pair.dev} ${j === 0 ? 'gwA' : 'gwB'}: show stats failed: ${(err as Error).message.split('\n')[0]}`);
        }
      }
    }
  } catch (e) {
    notes.push(`Run aborted: ${(e as Error).message.split('\n')[0]}`);
  } finally {
    for (const pair of ipferryPairs) await pair.stop().catch(() => undefined);
    for (const pair of ipferryPairs) {
      for (const e of pair.endpoints) {
        const st = await e.exited;
        if (st.code !== 0) notes.push(`${pair.dev} in ${e.ns === topo.gwA ? 'gwA' : 'gwB'} ended with ${st.code ?? st.signal} (a clean stop exits 0 on SIGTERM).`);
      }
    }
    await ovpn?.stop();
    topo.destroy();
    removeDir();
    process.removeListener('exit', removeDir);
  }
  notes.push(
    `Machine before the run: ${busyBefore === null ? '?' : `${(100 * busyBefore).toFixed(0)}%`} of all ${cpus().length} CPUs busy with other work (2 s sample); ` +
      `load average ${load0.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end.`,
  );
  const left = topo.leftovers();
  if (left.length > 0) notes.push(`Namespaces left behind: ${left.join(', ')}.`);

  const date = benchDate();
  const machine = machineText();
  const cliText = 'ipferry = compiled CLI (node dist/cli.js up)';
  const irq = irqTimeAccounting();
  const irqText =
    irq === false
      ? 'no IRQ time accounting in this kernel, so softirq work counts to the task it interrupts'
      : irq === true
        ? 'IRQ time is accounted apart in this kernel, so softirq work is not included'
        : 'included or not by CONFIG_IRQ_TIME_ACCOUNTING, unknown here';
  const how = [
    `How: every path up at once on one set of namespaces (hostA - gwA == wan0 veth == gwB - hostB); each path has its own`,
    'pair of host addresses, so the client picks the path by the address it talks to. Rounds interleave the paths (order',
    `rotated each round). Per path and round: ping ${SPARSE.count} x -i ${SPARSE.interval} and ${DENSE.count} x -i ${DENSE.interval}; iperf3 TCP ${TRANSFER_SECONDS} s`,
    `with 1 and 4 streams (receiver Mbit/s, sender retransmits); iperf3 UDP ${UDP_ARGS.join(' ')} for ${TRANSFER_SECONDS} s (datagrams delivered per`,
    'second of the receiver, loss = 1 - delivered/sent). ipferry runs the compiled CLI operators run (`node dist/cli.js up`,',
    'rebuilt by `npm run build` when src/ is newer), TUN MTU 1400, IPv4 underlay, MSS clamping on; one pair with',
    'IPFERRY_NO_FFI unset, one with IPFERRY_NO_FFI=1. CPU s/GB: utime + stime of each endpoint process (all its threads)',
    'from /proc/PID/stat before and after the iperf3 client ran, over the bytes the receiver got (1 GB = 1e9 bytes); it',
    'includes the kernel work done in that process\'s context: its TUN and UDP system calls, and the packet processing',
    `they trigger in softirq (${irqText}); nothing done by other processes. Per-hop delays: tcpdump`,
    `timestamps in both gateways on a fresh start (before any traffic) and after the rounds, ${HOP_PINGS} pings each. A 2-core VM`,
    'shared with other work: absolute figures drift between runs; compare rows of one run.',
  ];
  const { markdown, svg } = renderReport({
    paths,
    rounds: Math.max(0, ...paths.map((p) => p.rounds.length)),
    transferSeconds: TRANSFER_SECONDS,
    udpArgs: UDP_ARGS,
    sparse: SPARSE,
    dense: DENSE,
    date,
    machine,
    cliText,
    method: how,
    notes,
    chartName: CHART,
  });
  return {
    title: TITLE,
    markdown,
    files: [{ name: CHART, content: svg }],
  };
}
