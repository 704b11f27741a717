/**
 * The seed's site-to-site case, end to end:  tsx examples/site-to-site.ts [--userspace]
 *
 *   Beijing 192.168.10.0/24 ── gwA 203.0.113.10 ══ UDP (GUE) ══ 203.0.113.20 gwB ── Shanghai 192.168.20.0/24
 *
 * As root with /dev/net/tun: builds the topology in network namespaces (examples/site-topology.ts),
 * writes the two endpoint configs (examples/beijing.json, examples/shanghai.json; tunnel MTU 1400)
 * to a temp dir, runs `ipferry up` on each gateway, then from host A pings host B (v4, v6, 4000
 * bytes), runs a TCP transfer (iperf3, or a small node sender/receiver without it), captures what
 * the underlay carried during one ping (outer line from tcpdump, inner packet from our own wire
 * views), stops the endpoints with SIGTERM and checks they left nothing behind.
 *
 * Otherwise (or with --userspace): the same two sites in this process. The hosts are userspace
 * stacks on in-memory links, the two endpoints talk over real UDP sockets on 127.0.0.1: the same
 * pings, and a UDP bulk transfer between the stacks instead of TCP.
 *
 * Exit 0 when everything worked; 1 with "FAILED: <reason>" when not; 2 on a bad argument.
 * Ctrl-C tears everything down.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../src/config/config.ts';
import { Endpoint } from '../src/endpoint/endpoint.ts';
import { UserspaceHost } from '../src/endpoint/userspace-host.ts';
import { DEFAULT_PORT } from '../src/transport/udp-transport.ts';
import { describeGue, gueClassify, gueHeaderLength, GueKind } from '../src/wire/gue.ts';
import { describeIp } from '../src/wire/describe.ts';
import {
  EndpointProcess,
  haveCommand,
  isRoot,
  REPO_ROOT,
  runIperf3,
  SITE,
  SiteTopology,
  sleep,
  writeSiteConfigs,
  type Iperf3Result,
} from './site-topology.ts';

const say = (line = ''): void => {
  process.stdout.write(`${line}\n`);
};

class Failure extends Error {}
const fail = (why: string): never => {
  throw new Failure(why);
};

// ---------------------------------------------------------------------------------------------
// ping output

interface PingResult {
  sent: number;
  received: number;
  avg: number | null;
  min: number | null;
  max: number | null;
  text: string;
}

export function parsePing(text: string): PingResult {
  const m = /(\d+) packets transmitted, (\d+) received/.exec(text);
  const r = /= ([\d.]+)\/([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(text);
  return {
    sent: m ? Number(m[1]) : 0,
    received: m ? Number(m[2]) : 0,
    min: r ? Number(r[1]) : null,
    avg: r ? Number(r[2]) : null,
    max: r ? Number(r[3]) : null,
    text,
  };
}

function pingLine(what: string, p: PingResult): string {
  const rtt = p.avg === null ? '' : `, rtt min/avg/max ${p.min!.toFixed(3)}/${p.avg.toFixed(3)}/${p.max!.toFixed(3)} ms`;
  let note = '';
  const ptb = /(Packet too big: mtu=\d+|Frag needed and DF set \(mtu = \d+\))/.exec(p.text);
  if (ptb && p.received < p.sent) note = ` (path MTU discovery: "${ptb[1]}"; the big reply meets the same on the way back)`;
  return `${what}: ${p.received}/${p.sent} replies${rtt}${note}`;
}

// ---------------------------------------------------------------------------------------------
// namespace mode

function exampleConfig(file: string): Record<string, any> {
  return JSON.parse(readFileSync(join(REPO_ROOT, 'examples', file), 'utf8')) as Record<string, any>;
}

async function ping(topo: SiteTopology, what: string, addr: string, size: number, count: number, needAll: boolean): Promise<PingResult> {
  const r = await topo.runAsync(topo.hostA, ['ping', '-c', String(count), '-i', '0.2', '-W', '2', '-s', String(size), addr], 30_000);
  const p = parsePing(r.stdout + r.stderr);
  say(pingLine(what, p));
  if (p.received === 0 || (needAll && p.received < p.sent)) fail(`${what}: ${p.received}/${p.sent} replies\n${p.text.trim()}`);
  return p;
}

/** TCP hostA -> hostB for ~3 s: iperf3 when installed, else a node sender/receiver. */
async function tcpTransfer(topo: SiteTopology): Promise<void> {
  const seconds = 3;
  if (haveCommand('iperf3')) {
    let r: Iperf3Result;
    try {
      r = await runIperf3(topo, topo.hostB, topo.hostA, SITE.hostB.v4, ['-t', String(seconds)]);
    } catch (e) {
      return fail((e as Error).message);
    }
    say(
      `TCP hostA -> hostB (iperf3, ${seconds} s): ${(r.bitsPerSecond / 1e6).toFixed(0)} Mbit/s ` +
        `(${(r.bytes / 1e6).toFixed(1)} MB received, ${r.retransmits ?? 0} retransmits)`,
    );
    return;
  }
  // No iperf3: a node receiver on hostB counts bytes, a node sender on hostA writes for `seconds`.
  const port = 5201;
  const receiver = `const s=require('net').createServer(c=>{let n=0,t0=0;c.on('data',d=>{if(!t0)t0=Date.now();n+=d.length});c.on('end',()=>{console.log(JSON.stringify({bytes:n,ms:Date.now()-t0}));process.exit(0)})});s.listen(${port},'${SITE.hostB.v4}',()=>console.log('listening'))`;
  const sender = `const c=require('net').connect(${port},'${SITE.hostB.v4}');const b=Buffer.alloc(65536);const end=Date.now()+${seconds * 1000};const w=()=>{while(Date.now()<end){if(!c.write(b))return c.once('drain',w)}c.end()};c.on('connect',w);c.on('error',e=>{console.error(e.message);process.exit(1)})`;
  const rx = topo.spawn(topo.hostB, [process.execPath, '-e', receiver]);
  let out = '';
  rx.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  try {
    for (let i = 0; i < 100 && !out.includes('listening'); i++) await sleep(50);
    const r = await topo.runAsync(topo.hostA, [process.execPath, '-e', sender], (seconds + 20) * 1000);
    if (r.code !== 0) fail(`TCP sender failed: ${r.stderr.trim()}`);
    for (let i = 0; i < 100 && !out.includes('bytes'); i++) await sleep(50);
    const line = out.split('\n').find((l) => l.startsWith('{'));
    if (!line) fail('TCP receiver reported nothing');
    const { bytes, ms } = JSON.parse(line!) as { bytes: number; ms: number };
    say(`TCP hostA -> hostB (node sender/receiver: iperf3 not installed, ${seconds} s): ${((bytes * 8) / (ms * 1000)).toFixed(0)} Mbit/s (${(bytes / 1e6).toFixed(1)} MB)`);
  } finally {
    kill(rx);
  }
}

function kill(c: ChildProcess): void {
  if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

/**
 * One line per captured underlay datagram: tcpdump's own outer line, then the inner packet as our
 * wire views describe the UDP payload. `hex` is tcpdump -x output (the IP packet, no link header).
 */
export function describeUnderlay(tcpdumpText: string): string[] {
  const lines: string[] = [];
  let outer: string | null = null;
  let hex = '';
  const flush = (): void => {
    if (outer === null) return;
    const bytes = Buffer.from(hex, 'hex');
    lines.push(`${outer} | ${describeInner(bytes)}`);
    outer = null;
    hex = '';
  };
  for (const raw of tcpdumpText.split('\n')) {
    const m = /^\s+0x[0-9a-f]+:\s+((?:[0-9a-f]{2,4}\s?)+)/i.exec(raw);
    if (m && outer !== null) {
      hex += m[1]!.replace(/\s+/g, '');
    } else if (raw.trim() !== '') {
      flush();
      outer = raw.trim();
    }
  }
  flush();
  return lines;
}

function describeInner(ip: Buffer): string {
  if (ip.length < 20) return 'inner ? (truncated capture)';
  const v = ip[0]! >> 4;
  const hl = v === 4 ? (ip[0]! & 15) * 4 : 40;
  const payload = ip.subarray(hl + 8);
  const kind = gueClassify(payload, 0, payload.length);
  if (kind === GueKind.Control || kind === GueKind.Bad) return describeGue(payload);
  const inner = payload.subarray(gueHeaderLength(payload, 0));
  const text = describeIp(inner, 0, inner.length);
  // Keep tcpdump's short form: the verbose "(tos .., ttl .., ...)" tail of our IPv4 view goes.
  return `inner ${text.replace(/\s+\(tos 0x.*\)$/, '')}`;
}

/** Capture on gwA's wan0 during one ping and print outer and inner addresses per packet. */
async function showUnderlay(topo: SiteTopology, dir: string, port: number): Promise<void> {
  if (!haveCommand('tcpdump')) {
    say('underlay: tcpdump not installed, capture skipped');
    return;
  }
  const pcap = join(dir, 'wan0.pcap');
  const cap = topo.spawn(topo.gwA, ['tcpdump', '-i', 'wan0', '-nn', '--immediate-mode', '-U', '-w', pcap, 'udp', 'port', String(port)]);
  let err = '';
  cap.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  try {
    for (let i = 0; i < 100 && !/listening on/.test(err); i++) await sleep(50);
    if (!/listening on/.test(err)) fail(`tcpdump did not start: ${err.trim()}`);
    const r = await topo.runAsync(topo.hostA, ['ping', '-c', '1', '-W', '2', SITE.hostB.v4]);
    if (r.code !== 0) fail(`ping during capture failed: ${r.stdout.trim()}`);
    await sleep(200);
  } finally {
    cap.kill('SIGINT');
    await new Promise((r) => (cap.exitCode !== null ? r(null) : cap.once('exit', r)));
  }
  const text = execFileSync('tcpdump', ['-nn', '-t', '-x', '-r', pcap], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const lines = describeUnderlay(text);
  say(`underlay (gwA wan0, tcpdump -w during one ping hostA -> hostB), ${lines.length} datagram(s):`);
  for (const l of lines) say(`  ${l}`);
  if (!lines.some((l) => l.includes(`inner IP ${SITE.hostA.v4} > ${SITE.hostB.v4}: ICMP echo request`))) {
    fail('the capture shows no echo request inside the tunnel');
  }
}

async function runNamespaces(why: string): Promise<void> {
  say(`mode: network namespaces (${why})`);
  const topo = new SiteTopology();
  const dir = mkdtempSync(join(tmpdir(), 'ipferry-s2s-'));
  const removeDir = (): void => rmSync(dir, { recursive: true, force: true });
  process.once('exit', removeDir);
  const endpoints: EndpointProcess[] = [];
  try {
    topo.build();
    say(`topology: hostA ${SITE.hostA.v4} / ${SITE.hostA.v6} -- gwA ${SITE.gwA.wan4} == veth "internet" == ${SITE.gwB.wan4} gwB -- hostB ${SITE.hostB.v4} / ${SITE.hostB.v6}`);
    say(`namespaces: ${topo.namespaces.join(' ')}`);
    topo.warmUp();

    // The shipped example configs, with control sockets in our temp dir (both TUNs are "ferry0").
    const a = exampleConfig('beijing.json');
    const b = exampleConfig('shanghai.json');
    a.control = join(dir, 'a.sock');
    b.control = join(dir, 'b.sock');
    const paths = writeSiteConfigs(dir, { a, b });
    const port = Number(/:(\d+)$/.exec(String(a.listen))?.[1] ?? DEFAULT_PORT);
    endpoints.push(new EndpointProcess(topo, topo.gwA, paths.a, a.control as string));
    endpoints.push(new EndpointProcess(topo, topo.gwB, paths.b, b.control as string));
    await Promise.all(endpoints.map((e) => e.ready()));
    say(`endpoints up: gwA ${a.listen} (${a.interface.name}, mtu ${a.interface.mtu}), gwB ${b.listen}; configs in ${dir}`);

    const v4 = await ping(topo, `ping hostB ${SITE.hostB.v4} (v4)`, SITE.hostB.v4, 56, 5, true);
    const v6 = await ping(topo, `ping hostB ${SITE.hostB.v6} (v6)`, SITE.hostB.v6, 56, 5, true);
    await ping(topo, `ping hostB ${SITE.hostB.v4} 4000 bytes (v4, fragmented)`, SITE.hostB.v4, 4000, 3, false);
    await ping(topo, `ping hostB ${SITE.hostB.v6} 4000 bytes (v6, fragmented)`, SITE.hostB.v6, 4000, 4, false);
    await ping(topo, `ping gwA's endpoint stack 10.0.0.254 65000 bytes`, '10.0.0.254', 65000, 2, false);
    await tcpTransfer(topo);
    await showUnderlay(topo, dir, port);

    const s = await endpoints[0]!.show('peers');
    const peer = (s.peers as { name: string; up: boolean; txPackets: number; rxPackets: number }[])[0];
    if (peer) say(`gwA's view of peer ${peer.name}: ${peer.up ? 'up' : 'down'}, ${peer.txPackets} packets out, ${peer.rxPackets} in`);
    say(`RTT through the tunnel: v4 ${v4.avg?.toFixed(3)} ms, v6 ${v6.avg?.toFixed(3)} ms (avg)`);

    // Stop both with SIGTERM: exit 0, TUN and its routes gone.
    for (const [i, e] of endpoints.entries()) {
      const st = await e.stop();
      if (st.code !== 0) fail(`endpoint on ${e.ns} exited ${st.code ?? st.signal} on SIGTERM:\n${e.output.trim()}`);
      const ns = i === 0 ? topo.gwA : topo.gwB;
      if (topo.run(ns, ['ip', 'link', 'show', 'ferry0']).code === 0) fail(`ferry0 still exists in ${ns} after the endpoint stopped`);
      const routes = topo.run(ns, ['ip', 'route', 'show', 'table', 'all']).stdout;
      if (/dev ferry0/.test(routes)) fail(`routes through ferry0 left in ${ns}: ${routes.trim()}`);
    }
    say('endpoints stopped (SIGTERM): exit 0, ferry0 and its routes gone');
  } catch (e) {
    for (const ep of endpoints) if (ep.output.trim() && e instanceof Failure) process.stderr.write(`--- endpoint on ${ep.ns}:\n${ep.output}`);
    throw e;
  } finally {
    for (const ep of endpoints) if (ep.running) await ep.stop(5000);
    topo.destroy();
    removeDir();
  }
  const left = topo.leftovers();
  if (left.length) fail(`namespaces left behind: ${left.join(' ')}`);
  say('torn down: no namespace left');
}

// ---------------------------------------------------------------------------------------------
// userspace mode

async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function runUserspace(why: string): Promise<void> {
  say(`mode: userspace, in-process (${why}): hosts are userspace stacks, endpoints joined by UDP on 127.0.0.1`);
  const pa = await freeUdpPort();
  let pb = await freeUdpPort();
  while (pb === pa) pb = await freeUdpPort();
  const a = exampleConfig('beijing.json');
  const b = exampleConfig('shanghai.json');
  a.listen = `127.0.0.1:${pa}`;
  b.listen = `127.0.0.1:${pb}`;
  a.peers[0].endpoint = `127.0.0.1:${pb}`;
  b.peers[0].endpoint = `127.0.0.1:${pa}`;
  for (const c of [a, b]) {
    c.control = false;
    c.kernelRoutes = false;
  }
  const mtu = Number(a.interface.mtu);
  const hostA = new UserspaceHost({ addresses: [SITE.hostA.v4, SITE.hostA.v6], mtu, name: 'hostA' });
  const hostB = new UserspaceHost({ addresses: [SITE.hostB.v4, SITE.hostB.v6], mtu, name: 'hostB' });
  const epA = new Endpoint(parseConfig(a, 'beijing.json'), { device: hostA.link });
  const epB = new Endpoint(parseConfig(b, 'shanghai.json'), { device: hostB.link });
  try {
    await epA.start();
    await epB.start();
    say(`endpoints up: beijing 127.0.0.1:${pa}, shanghai 127.0.0.1:${pb} (tunnel MTU ${mtu})`);

    const pings = async (what: string, addr: string, size: number, count: number): Promise<number> => {
      const rtts: number[] = [];
      for (let i = 0; i < count; i++) {
        try {
          rtts.push(await hostA.ping(addr, size, 2000));
        } catch {
          /* counted as lost */
        }
      }
      const avg = rtts.length ? rtts.reduce((x, y) => x + y, 0) / rtts.length : null;
      say(
        `${what}: ${rtts.length}/${count} replies` +
          (avg === null ? '' : `, rtt min/avg/max ${Math.min(...rtts).toFixed(3)}/${avg.toFixed(3)}/${Math.max(...rtts).toFixed(3)} ms`),
      );
      if (rtts.length < count) fail(`${what}: ${rtts.length}/${count} replies`);
      return avg!;
    };
    const v4 = await pings(`ping hostB ${SITE.hostB.v4} (v4)`, SITE.hostB.v4, 56, 5);
    const v6 = await pings(`ping hostB ${SITE.hostB.v6} (v6)`, SITE.hostB.v6, 56, 5);
    await pings(`ping hostB ${SITE.hostB.v4} 4000 bytes (v4, fragmented)`, SITE.hostB.v4, 4000, 3);
    await pings(`ping hostB ${SITE.hostB.v6} 4000 bytes (v6, fragmented)`, SITE.hostB.v6, 4000, 3);
    await pings(`ping beijing endpoint stack 10.0.0.254 65000 bytes`, '10.0.0.254', 65000, 2);

    await udpBulk(hostA, hostB);
    say(`RTT through the tunnel: v4 ${v4.toFixed(3)} ms, v6 ${v6.toFixed(3)} ms (avg)`);
  } finally {
    await epA.stop();
    await epB.stop();
    await hostA.close();
    await hostB.close();
  }
  if (epA.pools.live !== 0 || epB.pools.live !== 0) fail(`pool slots still in use after stop: ${epA.pools.live} / ${epB.pools.live}`);
  say('stopped: sockets closed, every pool slot back');
}

/**
 * UDP bulk hostA -> hostB between the userspace stacks: 1200-byte datagrams for up to 3 s (at most
 * 200000), with at most 512 in flight (the receiver is in this process, so we can see what arrived);
 * a window that stops moving for 200 ms counts its datagrams as lost.
 */
async function udpBulk(hostA: UserspaceHost, hostB: UserspaceHost): Promise<void> {
  const size = 1200;
  const window = 512;
  const maxCount = 200_000;
  const seconds = 3;
  const rx = hostB.stack.udpBind(5001);
  const tx = hostA.stack.udpBind(0);
  let received = 0;
  let bytes = 0;
  let lastRx = 0;
  rx.on('message', (d: Buffer) => {
    received++;
    bytes += d.length;
    lastRx = performance.now();
  });
  const payload = Buffer.alloc(size, 0x5a);
  let sent = 0;
  let lost = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let progressAt = t0;
  let progressMark = 0;
  while (performance.now() < end && sent < maxCount) {
    while (sent - received - lost < window && sent < maxCount) {
      tx.send(payload, 5001, SITE.hostB.v4);
      sent++;
    }
    await new Promise((r) => setImmediate(r));
    const now = performance.now();
    if (received !== progressMark) {
      progressMark = received;
      progressAt = now;
    } else if (now - progressAt > 200) {
      lost = sent - received;
      progressAt = now;
    }
  }
  for (let i = 0; i < 50 && received < sent; i++) await sleep(20);
  rx.close();
  tx.close();
  const secs = ((lastRx || performance.now()) - t0) / 1000;
  const loss = sent ? (100 * (sent - received)) / sent : 0;
  say(
    `UDP bulk hostA -> hostB (stack to stack, ${size}-byte datagrams): sent ${sent}, received ${received} ` +
      `(${(bytes / 1e6).toFixed(1)} MB) in ${secs.toFixed(2)} s: ${((bytes * 8) / secs / 1e6).toFixed(0)} Mbit/s, loss ${loss.toFixed(1)}%`,
  );
  if (received === 0) fail('UDP bulk transfer: nothing arrived');
}

// ---------------------------------------------------------------------------------------------
// main

function namespaceModeUnavailable(): string | null {
  if (!isRoot()) return 'not root';
  if (!existsSync('/dev/net/tun')) return 'no /dev/net/tun';
  if (!haveCommand('ip')) return 'no ip command (iproute2)';
  return null;
}

async function main(argv: string[]): Promise<number> {
  const unknown = argv.filter((a) => a !== '--userspace');
  if (unknown.length > 0 || argv.includes('--help') || argv.includes('-h')) {
    process.stderr.write(`usage: tsx examples/site-to-site.ts [--userspace]\n`);
    return unknown.some((a) => a !== '--help' && a !== '-h') ? 2 : 0;
  }
  const forced = argv.includes('--userspace');
  const unavailable = forced ? '--userspace given' : namespaceModeUnavailable();
  const mode = unavailable === null ? 'namespaces' : 'userspace';
  process.once('SIGINT', () => {
    process.stderr.write('interrupted: tearing down\n');
    process.exit(130); // exit handlers remove namespaces (site-topology) and the temp dir
  });
  try {
    if (unavailable === null) await runNamespaces('root, /dev/net/tun present');
    else await runUserspace(unavailable);
    say(`OK: site-to-site works (${mode} mode)`);
    return 0;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`FAILED (${mode} mode): ${msg}\n`);
    return 1;
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('site-to-site.ts')) {
  const code = await main(process.argv.slice(2));
  // Timers or handles a failure left behind must not keep the process alive.
  setTimeout(() => process.exit(code), 200).unref();
  process.exitCode = code;
}
