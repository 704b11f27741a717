/**
 * A mobile node keeps its home address while it moves:  tsx examples/mobile-node.ts [--userspace]
 *
 * A TCP stream runs from a correspondent to the mobile node's home address 10.77.0.5 while the
 * node moves wifi -> cellular -> foreign2 (behind a NAT) -> wifi -> home. The home agent
 * (ipferry on the home link) tunnels the stream to wherever the node is; the node tells it each
 * move with a signed binding update; at home it deregisters and the stream flows natively.
 * Printed: each handover with its gap (the move's switch command -> the home agent's ack at the
 * node: detection included) and when the stream resumed, the home agent's binding cache after
 * each step (`ipferry show bindings`), and a summary (bytes intact, resets 0).
 *
 * As root with /dev/net/tun: network namespaces (examples/mobile-topology.ts) and `ipferry up` on
 * the home agent and the mobile node, a kernel TCP stream (examples/mobile-stream.mjs).
 * Otherwise (or with --userspace): the same in this process over UDP on loopback, the hosts
 * userspace stacks (examples/mobile-userspace.ts) and the stream a reliable byte stream over UDP
 * between them (they have no TCP); a move is the node's socket moving to another loopback address.
 *
 * Exit 0 when every step worked; 1 with "FAILED: <reason>" when not; 2 on a bad argument.
 * Everything is torn down at the end, on failure and on Ctrl-C.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatBindings } from '../src/control/show-mobility.ts';
import type { HandoverEvent } from '../src/endpoint/mobility/events.ts';
import { percentile } from '../src/endpoint/mobility/gap-histogram.ts';
import {
  ask,
  EndpointProcess,
  handover,
  MOB,
  MobileTopology,
  mobileConfigs,
  sleep,
  TcpStream,
  writeConfig,
  type HandoverResult,
  type Network,
} from './mobile-topology.ts';
import { UdpStream, US, UserspaceMobileWorld } from './mobile-userspace.ts';
import { haveCommand, isRoot } from './site-topology.ts';

const say = (line = ''): void => {
  process.stdout.write(`${line}\n`);
};

class Failure extends Error {}
const fail = (why: string): never => {
  throw new Failure(why);
};

/** The moves, in order (the node starts on wifi). */
export const STEPS: readonly Network[] = ['cellular', 'foreign2', 'wifi', 'home'];

const indent = (text: string, by = '  '): string =>
  text
    .split('\n')
    .map((l) => by + l)
    .join('\n');

function summary(gaps: number[]): string {
  const sorted = [...gaps].sort((a, b) => a - b);
  return `median ${percentile(sorted, 0.5)} ms, max ${sorted.at(-1)} ms`;
}

// ---------------------------------------------------------------------------------------------
// namespace mode

async function runNamespaces(why: string): Promise<void> {
  say(`mode: network namespaces (${why})`);
  const topo = new MobileTopology(undefined, true);
  const dir = mkdtempSync(join(tmpdir(), 'ipferry-mobile-'));
  const removeDir = (): void => rmSync(dir, { recursive: true, force: true });
  process.once('exit', removeDir);
  const endpoints: EndpointProcess[] = [];
  let stream: TcpStream | null = null;
  try {
    topo.build();
    topo.initialAttach('wifi');
    say(
      `topology: correspondent ${MOB.cn} -- internet -- home agent ${MOB.ha.up} (home link ${MOB.homePrefix}); mobile node ${MOB.home} ` +
        `with wifi ${MOB.nets.wifi!.addr}, cellular ${MOB.nets.cellular!.addr}, foreign2 ${MOB.nets.foreign2!.addr} (behind a NAT) and a home port`,
    );
    say(`namespaces: ${topo.namespaces.join(' ')}`);
    const c = mobileConfigs({ controlDir: dir });
    const ha = new EndpointProcess(topo, topo.ha, writeConfig(dir, 'home-agent', c.ha), join(dir, 'ha.sock'));
    endpoints.push(ha);
    await ha.ready();
    const mn = new EndpointProcess(topo, topo.mn, writeConfig(dir, 'mobile-node', c.mn), join(dir, 'mn.sock'));
    endpoints.push(mn);
    await mn.ready();
    say(`endpoints up: home agent ${MOB.ha.up}:${MOB.port} (ipferry up ${join(dir, 'home-agent.json')}), mobile node on wifi (ipferry up ${join(dir, 'mobile-node.json')})`);
    const bound = async () => (await ask(ha, 'bindings')).mobility?.bindings ?? [];
    for (let i = 0; i < 200 && (await bound()).length === 0; i++) await sleep(25);
    if ((await bound()).length === 0) fail('the mobile node did not register on wifi');
    say('registered on wifi; the home agent\'s binding cache (ipferry show bindings):');
    say(indent(formatBindings(await ask(ha, 'bindings'))));

    stream = new TcpStream(topo);
    await stream.start();
    say(`TCP stream: correspondent ${MOB.cn} -> ${MOB.home}:5001, 2 MB/s, every byte checked where it lands`);
    const results: HandoverResult[] = [];
    for (const to of STEPS) {
      const r = await handover(topo, mn, to, stream);
      results.push(r);
      say(
        `handover ${r.from} -> ${r.to}: ${r.gapMs} ms (noticed after ${r.detectMs} ms by ${r.detection}, then ${to === 'home' ? 'deregistered' : 'registered'}); ` +
          `the stream ${r.stallMs! > 0 ? `stalled ${r.stallMs} ms` : 'did not stall (no pause of 5 ms)'}`,
      );
      const b = await ask(ha, 'bindings');
      say(indent(formatBindings(b)));
      const rows = b.mobility?.bindings ?? [];
      if (to === 'home' ? rows.length !== 0 : rows.length !== 1) fail(`binding cache after the move to ${to}: ${JSON.stringify(rows)}`);
      if (to === 'foreign2' && rows[0]?.nat !== true) fail('no NAT reported on foreign2');
      await sleep(300); // a little traffic on each network
    }
    const { sent, received } = await stream.stop();
    stream = null;
    if (sent === null || received === null) fail('the stream did not finish');
    const intact = sent!.bytes === received!.bytes && sent!.sha256 === received!.sha256 && received!.bad === 0;
    const resets = sent!.resets + received!.resets;
    say(
      `summary: ${results.length} handovers, gaps ${results.map((r) => r.gapMs).join(' / ')} ms (${summary(results.map((r) => r.gapMs))}); ` +
        `stream ${(sent!.bytes / 1e6).toFixed(1)} MB sent, ${(received!.bytes / 1e6).toFixed(1)} MB received, ` +
        `${intact ? 'every byte intact' : `NOT INTACT (${received!.bad} bad bytes)`} (sha256 ${received!.sha256.slice(0, 16)}...), resets ${resets}`,
    );
    if (!intact) fail('the stream arrived damaged');
    if (resets !== 0 || sent!.error !== null || received!.error !== null) fail(`the stream had errors: ${sent!.error ?? ''} ${received!.error ?? ''}`);

    for (const [i, e] of endpoints.entries()) {
      const st = await e.stop();
      if (st.code !== 0) fail(`endpoint in ${e.ns} exited ${st.code ?? st.signal} on SIGTERM:\n${e.output.trim()}`);
      const ns = i === 0 ? topo.ha : topo.mn;
      if (topo.run(ns, ['ip', 'link', 'show', 'ferry0']).code === 0) fail(`ferry0 still exists in ${ns} after the endpoint stopped`);
      if (/dev ferry0/.test(topo.run(ns, ['ip', 'route', 'show', 'table', 'all']).stdout)) fail(`routes through ferry0 left in ${ns}`);
    }
    say('endpoints stopped (SIGTERM): exit 0, ferry0 and its routes gone');
  } catch (e) {
    if (e instanceof Failure) for (const ep of endpoints) if (ep.output.trim()) process.stderr.write(`--- endpoint in ${ep.ns}:\n${ep.output}`);
    throw e;
  } finally {
    if (stream !== null) await stream.stop(2000);
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

async function runUserspace(why: string): Promise<void> {
  say(`mode: userspace, in-process (${why}): hosts are userspace stacks, endpoints joined by UDP on loopback; a move is the node's socket moving to another loopback address`);
  const w = new UserspaceMobileWorld();
  const events: HandoverEvent[] = [];
  let stream: UdpStream | null = null;
  try {
    await w.start(() => {});
    w.mn.on('handover', (e) => events.push(e));
    say(
      `endpoints up: home agent ${US.ha}:${w.haPort}, mobile node (home address ${US.home}) on wifi ${US.attach.wifi}:${w.mnPort}; ` +
        `correspondent ${US.cn} behind the home agent`,
    );
    const bindings = () => w.ha.snapshot('bindings');
    for (let i = 0; i < 200 && (bindings().mobility?.bindings?.length ?? 0) === 0; i++) await sleep(10);
    if ((bindings().mobility?.bindings?.length ?? 0) === 0) fail('the mobile node did not register on wifi');
    say('registered on wifi; the home agent\'s binding cache (ipferry show bindings):');
    say(indent(formatBindings(bindings())));
    stream = new UdpStream(w.cn, w.host, US.home);
    stream.start();
    say(`stream: correspondent ${US.cn} -> ${US.home}, a reliable byte stream over UDP (the userspace stacks have no TCP), every byte checked`);
    const gaps: number[] = [];
    let at: string = 'wifi';
    for (const to of STEPS) {
      await sleep(300);
      const seen = events.length;
      const t0 = Date.now();
      await w.move(to);
      for (let i = 0; i < 500 && events.length === seen; i++) await sleep(2);
      const e = events[seen];
      if (e === undefined) fail(`no handover ${at} -> ${to}`);
      await sleep(50);
      const mark = stream.receivedBytes;
      for (let i = 0; i < 1000 && stream.receivedBytes <= mark; i++) await sleep(2);
      if (stream.receivedBytes <= mark) fail(`the stream did not resume after ${at} -> ${to}`);
      const gap = e!.at - t0;
      gaps.push(gap);
      const stall = stream.stallDuring(t0, e!.at);
      say(
        `handover ${at} -> ${to}: ${gap} ms (noticed at once: the socket moved; then ${to === 'home' ? 'deregistered' : 'registered'}); ` +
          `the stream ${stall > 0 ? `stalled ${stall} ms` : 'did not stall (no pause of 5 ms)'}`,
      );
      say(indent(formatBindings(bindings())));
      at = to;
    }
    await sleep(200);
    const r = await stream.stop();
    stream = null;
    say(
      `summary: ${gaps.length} handovers, gaps ${gaps.join(' / ')} ms (${summary(gaps)}); stream ${(r.sent / 1e6).toFixed(1)} MB sent, ` +
        `${(r.received / 1e6).toFixed(1)} MB received, ${r.intact ? 'every byte intact' : `NOT INTACT (${r.bad} bad chunks)`} ` +
        `(sha256 ${r.sha256Received.slice(0, 16)}...), resets ${r.restarts}, ${r.retransmissions} chunks retransmitted`,
    );
    if (!r.intact) fail('the stream arrived damaged or incomplete');
  } finally {
    if (stream !== null) await stream.stop(500);
    await w.stop();
  }
  if (w.ha.pools.live !== 0 || w.mn.pools.live !== 0) fail(`pool slots still in use after stop: ${w.ha.pools.live} / ${w.mn.pools.live}`);
  say('stopped: sockets closed, every pool slot back');
}

// ---------------------------------------------------------------------------------------------
// main

function namespaceModeUnavailable(): string | null {
  if (!isRoot()) return 'not root';
  if (!existsSync('/dev/net/tun')) return 'no /dev/net/tun';
  if (!haveCommand('ip')) return 'no ip command (iproute2)';
  if (!haveCommand('nft')) return 'no nft command (nftables, for the NAT on foreign2)';
  return null;
}

async function main(argv: string[]): Promise<number> {
  const unknown = argv.filter((a) => a !== '--userspace');
  if (unknown.length > 0 || argv.includes('--help') || argv.includes('-h')) {
    process.stderr.write('usage: tsx examples/mobile-node.ts [--userspace]\n');
    return unknown.some((a) => a !== '--help' && a !== '-h') ? 2 : 0;
  }
  const forced = argv.includes('--userspace');
  const unavailable = forced ? '--userspace given' : namespaceModeUnavailable();
  const mode = unavailable === null ? 'namespaces' : 'userspace';
  process.once('SIGINT', () => {
    process.stderr.write('interrupted: tearing down\n');
    process.exit(130); // exit handlers remove the namespaces (mobile-topology) and the temp dir
  });
  try {
    if (unavailable === null) await runNamespaces('root, /dev/net/tun present');
    else await runUserspace(unavailable);
    say(`OK: mobile node works (${mode} mode)`);
    return 0;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`FAILED (${mode} mode): ${msg}\n`);
    return 1;
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('mobile-node.ts')) {
  const code = await main(process.argv.slice(2));
  setTimeout(() => process.exit(code), 200).unref();
  process.exitCode = code;
}
