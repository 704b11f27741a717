/**
 * `npm run profile` (root): where an endpoint's time goes while it carries iperf3 TCP — the
 * evidence for what limits the data path. Builds the site topology (hostA - gwA == veth == gwB -
 * hostB, namespaces it creates and removes, also on Ctrl-C), runs `node --cpu-prof dist/cli.js up`
 * on both gateways (the fast path by default; PROFILE_PORTABLE=1 sets IPFERRY_NO_FFI=1), pushes
 * iperf3 TCP hostA -> hostB for PROFILE_SECONDS (default 8) — or with PROFILE_LOAD=ping, pings
 * one at a time (`ping -i 0.002`, what a latency-bound flow looks like: every packet its own
 * round) — and reports for each gateway:
 *
 * - CPU per thread over the transfer, user and system time apart (/proc/PID/task/TID/stat): how
 *   much of the data-plane thread is the kernel (system calls, the network stack, TUN and UDP)
 *   against our JavaScript;
 * - the self time of the hottest functions of each thread's V8 CPU profile (--cpu-prof writes one
 *   per thread: the main thread and the data-plane worker).
 *
 * The profiler itself costs throughput: the iperf3 figure printed here is not a result (the e2e
 * bench measures throughput). Output: markdown on stdout and in tmp/profile/PROFILE.md
 * (`-o FILE` writes it there instead).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isRoot, SiteTopology } from '../examples/site-topology.ts';
import { benchDate, machineText } from './machine.ts';
import { clockTicksPerSecond, runIperf3, runPing } from './e2e/measure.ts';
import { addLane, ipferryUp, lane } from './e2e/paths.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const seconds = Math.max(2, Math.min(60, Number(process.env.PROFILE_SECONDS ?? 8) || 8));
const portable = process.env.PROFILE_PORTABLE === '1';
const pingLoad = process.env.PROFILE_LOAD === 'ping';
/** PROFILE_V8=0: thread CPU only, no V8 profiler (it samples with signals: its own cost shows in the threads' time). */
const v8Profile = process.env.PROFILE_V8 !== '0';
const PING_INTERVAL = 0.002;
const outArg = process.argv.indexOf('-o');
const outFile = outArg > 0 ? process.argv[outArg + 1]! : join(root, 'tmp', 'profile', 'PROFILE.md');
const TOP = 14;
/** The profiler's sampling interval (µs): fine enough to see a packet's worth of work. */
const SAMPLE_US = 200;

interface ThreadCpu {
  tid: number;
  comm: string;
  utime: number;
  stime: number;
}

/** Every thread of `pid` with its user and system ticks so far. */
function threads(pid: number): Map<number, ThreadCpu> {
  const out = new Map<number, ThreadCpu>();
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const comm = readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim();
      out.set(Number(t), { tid: Number(t), comm, utime: Number(f[11]), stime: Number(f[12]) });
    } catch {
      /* the thread ended */
    }
  }
  return out;
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Self time (ms) per function of one profile, hottest first, and the profile's total. */
function selfTimes(p: CpuProfile): { rows: { name: string; ms: number }[]; totalMs: number } {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const ms = new Map<string, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const n = byId.get(p.samples[i]!);
    if (n === undefined) continue;
    const f = n.callFrame;
    const where = f.url === '' ? '' : ` (${basename(f.url)}:${f.lineNumber + 1})`;
    const name = `${f.functionName === '' ? '(anonymous)' : f.functionName}${where}`;
    ms.set(name, (ms.get(name) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000);
  }
  const rows = [...ms].map(([name, v]) => ({ name, ms: v })).sort((a, b) => b.ms - a.ms);
  return { rows, totalMs: (p.endTime - p.startTime) / 1000 };
}

async function main(): Promise<void> {
  if (!isRoot()) {
    console.error('profile: needs root (network namespaces, TUN devices)');
    process.exitCode = 2;
    return;
  }
  const cli = join(root, 'dist', 'cli.js');
  if (!existsSync(cli)) execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'ignore' });
  const dir = mkdtempSync(join(tmpdir(), 'ipferry-profile-'));
  const profDir = join(dir, 'prof');
  mkdirSync(profDir);
  const topo = new SiteTopology();
  const lines: string[] = [];
  const say = (s: string): void => {
    lines.push(s);
    process.stdout.write(`${s}\n`);
  };
  try {
    topo.build();
    topo.warmUp();
    const l = lane(0);
    addLane(topo, l);
    const { IPFERRY_NO_FFI: _drop, ...env } = process.env;
    if (portable) env.IPFERRY_NO_FFI = '1';
    const flags = v8Profile ? ['--cpu-prof', '--cpu-prof-interval', String(SAMPLE_US), '--cpu-prof-dir', profDir] : [];
    const pair = await ipferryUp(topo, l, dir, [...flags, cli], env);
    let stopped = false;
    try {
      await runIperf3(topo, topo.hostB, topo.hostA, l.hostB, ['-t', '1']); // warm-up, not measured
      const before = pair.processes.map((p) => threads(p.pid));
      const count = Math.round(seconds / PING_INTERVAL);
      const costNote = v8Profile ? ' (under the V8 profiler, which costs time: not a result)' : ' (PROFILE_V8=0: no profiler)';
      const t0 = Date.now();
      let what: string;
      let packets = 0;
      if (pingLoad) {
        const ping = await runPing(topo, topo.hostA, l.hostB, count, PING_INTERVAL);
        const rtts = [...ping.rtts].sort((a, b) => a - b);
        packets = ping.received;
        what = `${ping.transmitted} pings hostA -> hostB at -i ${PING_INTERVAL}: ${ping.received} replies, RTT median ${(rtts[rtts.length >> 1] ?? Number.NaN).toFixed(3)} ms${costNote}`;
      } else {
        const run = await runIperf3(topo, topo.hostB, topo.hostA, l.hostB, ['-t', String(seconds)]);
        what = `iperf3 TCP hostA -> hostB for ${seconds} s: ${(run.bitsPerSecond / 1e6).toFixed(0)} Mbit/s${costNote}`;
      }
      const wall = (Date.now() - t0) / 1000;
      const after = pair.processes.map((p) => threads(p.pid));
      const hz = clockTicksPerSecond();
      say(`# Profile: ipferry under ${pingLoad ? 'one ping at a time' : 'iperf3 TCP'} (${portable ? 'portable path, IPFERRY_NO_FFI=1' : 'default path'})`);
      say('');
      say(`\`${v8Profile ? '' : 'PROFILE_V8=0 '}${pingLoad ? 'PROFILE_LOAD=ping ' : ''}npm run profile\` on ${benchDate()}; machine: ${machineText()}. Data path the endpoints report: ${pair.reported.map((r) => r ?? '?').join(' / ')}.`);
      say(`${what}.`);
      say('');
      say(`## CPU per thread over the ${wall.toFixed(1)} s (seconds; user = our JavaScript and V8, system = the kernel on our behalf)`);
      say('');
      say(`| gateway | thread | tid | user s | system s | of the wall time |${pingLoad ? ' µs per ping (request + reply) |' : ''}`);
      say(`|---|---|---|---|---|---|${pingLoad ? '---|' : ''}`);
      for (const [i, p] of pair.processes.entries()) {
        const rows = [...after[i]!.values()]
          .map((t) => {
            const b = before[i]!.get(t.tid);
            return { ...t, u: (t.utime - (b?.utime ?? 0)) / hz, s: (t.stime - (b?.stime ?? 0)) / hz };
          })
          .filter((t) => t.u + t.s >= 0.02)
          .sort((a, b) => b.u + b.s - (a.u + a.s));
        for (const t of rows) {
          const perPing = pingLoad && packets > 0 ? ` ${(((t.u + t.s) / packets) * 1e6).toFixed(1)} (user ${((t.u / packets) * 1e6).toFixed(1)}) |` : '';
          say(`| ${p.gw} | ${t.tid === p.pid ? 'main' : t.comm} | ${t.tid} | ${t.u.toFixed(2)} | ${t.s.toFixed(2)} | ${(((t.u + t.s) / wall) * 100).toFixed(0)}% |${perPing}`);
        }
      }
      await pair.stop();
      stopped = true;
    } finally {
      if (!stopped) await pair.stop().catch(() => undefined);
    }
    // --cpu-prof files: CPU.<date>.<time>.<pid>.<tid>.<seq>.cpuprofile, written at exit
    const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'));
    say('');
    if (v8Profile) say(`## Hottest functions by self time (V8 CPU profiles at ${SAMPLE_US} µs, ${files.length} threads)`);
    for (const p of pair.processes) {
      for (const f of files.filter((x) => x.split('.')[3] === String(p.pid)).sort()) {
        const prof = JSON.parse(readFileSync(join(profDir, f), 'utf8')) as CpuProfile;
        const { rows, totalMs } = selfTimes(prof);
        const tid = f.split('.')[4];
        // idle, and blocked in poll (the data-plane worker's wait, a system call through the FFI)
        const waiting = (name: string): boolean => name.startsWith('(idle)') || name.startsWith('wait (poll.');
        const busy = rows.filter((r) => !waiting(r.name)).reduce((a, r) => a + r.ms, 0);
        say('');
        say(`### ${p.gw} thread ${tid === '0' ? '0 (main)' : tid} — ${(totalMs / 1000).toFixed(1)} s profiled (start-up and warm-up included), ${(busy / 1000).toFixed(2)} s neither idle nor blocked in poll`);
        say('');
        say('| function | self ms | of that |');
        say('|---|---|---|');
        for (const r of rows.filter((x) => !waiting(x.name)).slice(0, TOP)) say(`| ${r.name.replace(/\|/g, '\\|')} | ${r.ms.toFixed(0)} | ${((r.ms / Math.max(1, busy)) * 100).toFixed(1)}% |`);
      }
    }
    mkdirSync(dirname(outFile), { recursive: true });
    writeFileSync(outFile, `${lines.join('\n')}\n`);
    process.stdout.write(`wrote ${outFile}\n`);
  } finally {
    topo.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
