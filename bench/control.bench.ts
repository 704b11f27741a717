/**
 * `show routes` with a million routes while the endpoint forwards (issue 12 point 5): how long
 * the data plane stalls when the control socket lists the table.
 *
 * Two endpoints in this process (userspace hosts on memory links, GUE over UDP on loopback); endpoint
 * A holds 1,000,000 extra routes. Host A sends a burst of 4 UDP datagrams to host B every
 * millisecond through the tunnel; host B notes when each arrives. While that runs, a child process
 * asks A's control socket for `show routes` and reads the whole answer. Reported: the longest
 * gap between datagrams arriving at B (the forwarding stall), the event loop's longest delay
 * (perf_hooks), the answer's size and time — for a quiet window (no show), the route list built
 * in one go (the answer before paging: snapshot('routes') then one write) and streamed a page at a
 * time (routePages through the socket, writes that wait for the client).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseConfig } from '../src/config/config.ts';
import { ControlServer } from '../src/control/control-socket.ts';
import { Endpoint } from '../src/endpoint/endpoint.ts';
import { UserspaceHost } from '../src/endpoint/userspace-host.ts';
import type { BenchSection } from './run.ts';

const ROUTES = Number(process.env.CONTROL_BENCH_ROUTES ?? 1_000_000);
const QUIET_MS = 4000;
/** Routes per page (the control socket's default). */
const PAGE = 256;

interface Window {
  name: string;
  /** Longest gap between datagrams arriving at host B (ms). */
  maxGap: number;
  /** Event loop delay: max and p99 (ms). */
  loopMax: number;
  loopP99: number;
  received: number;
  /** The answer: bytes and how long the client took (ms), or null for the quiet window. */
  answerBytes: number | null;
  answerMs: number | null;
}

/** A client in another process: send `show routes`, read the answer line, print bytes and ms. */
function showRoutesInChild(path: string): Promise<{ bytes: number; ms: number }> {
  const js = `
    const s = require('net').connect(${JSON.stringify(path)});
    const t0 = Date.now(); let bytes = 0;
    s.on('connect', () => s.write('{"cmd":"show","what":"routes"}\\n'));
    s.on('data', (d) => { bytes += d.length; if (d[d.length - 1] === 10) { console.log(JSON.stringify({ bytes, ms: Date.now() - t0 })); process.exit(0); } });
    s.on('error', (e) => { console.error(e.message); process.exit(1); });`;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['-e', js], { encoding: 'utf8', timeout: 300_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`show client: ${stderr || err.message}`));
      else resolve(JSON.parse(stdout) as { bytes: number; ms: number });
    });
  });
}

export default async function bench(): Promise<BenchSection> {
  const load0 = loadavg()[0]!;
  const pa = 30000 + Math.floor(Math.random() * 20000);
  const pb = pa + 1;
  const hostA = new UserspaceHost({ addresses: ['192.168.10.10'], name: 'a' });
  const hostB = new UserspaceHost({ addresses: ['192.168.20.20'], name: 'b' });
  const a = new Endpoint(
    parseConfig({
      interface: { name: 'ferryA', address: ['10.0.0.1/30'], mtu: 1400 },
      listen: `127.0.0.1:${pa}`,
      peers: [{ name: 'shanghai', endpoint: `127.0.0.1:${pb}`, routes: ['192.168.20.0/24'] }],
    }),
    { device: hostA.link },
  );
  const b = new Endpoint(
    parseConfig({
      interface: { name: 'ferryB', address: ['10.0.0.2/30'], mtu: 1400 },
      listen: `127.0.0.1:${pb}`,
      peers: [{ name: 'beijing', endpoint: `127.0.0.1:${pa}`, routes: ['192.168.10.0/24'] }],
    }),
    { device: hostB.link },
  );
  await a.start();
  await b.start();
  const t0 = performance.now();
  const bytes = new Uint8Array(4);
  for (let i = 0; i < ROUTES; i++) {
    const v = (0x0b000000 + i * 256) >>> 0;
    bytes[0] = v >>> 24;
    bytes[1] = (v >>> 16) & 255;
    bytes[2] = (v >>> 8) & 255;
    a.addRoute({ prefix: { family: 4, bytes, length: 24 }, dev: 'shanghai' });
  }
  const loadMs = performance.now() - t0;

  const dir = mkdtempSync(join(tmpdir(), 'ipferry-ctlbench-'));
  const rx = hostB.stack.udpBind(9999);
  const tx = hostA.stack.udpBind(0);
  const payload = new Uint8Array(200);
  let last = 0;
  let maxGap = 0;
  let received = 0;
  rx.on('message', () => {
    const now = performance.now();
    if (last > 0 && now - last > maxGap) maxGap = now - last;
    last = now;
    received++;
  });
  const sender = setInterval(() => {
    for (let k = 0; k < 4; k++) tx.send(payload, 9999, '192.168.20.20');
  }, 1);

  const windows: Window[] = [];
  const steps: number[] = [];
  const cursorSteps: number[] = [];
  const measure = async (name: string, run: () => Promise<{ bytes: number; ms: number } | null>): Promise<void> => {
    (globalThis as { gc?: () => void }).gc?.();
    await new Promise((r) => setTimeout(r, 300));
    const h = monitorEventLoopDelay({ resolution: 1 });
    h.enable();
    last = 0;
    maxGap = 0;
    received = 0;
    const answer = await run();
    h.disable();
    windows.push({
      name,
      maxGap,
      loopMax: h.max / 1e6,
      loopP99: h.percentile(99) / 1e6,
      received,
      answerBytes: answer?.bytes ?? null,
      answerMs: answer?.ms ?? null,
    });
    process.stdout.write(`  ${name}: longest gap ${maxGap.toFixed(1)} ms, loop delay max ${(h.max / 1e6).toFixed(1)} ms\n`);
  };

  try {
    await measure('quiet (no show)', async () => {
      await new Promise((r) => setTimeout(r, QUIET_MS));
      return null;
    });
    const variants: [string, boolean][] = [
      ['show routes, list built in one go (before)', false],
      ['show routes, streamed a page at a time (after)', true],
    ];
    for (const [name, streamed] of variants) {
      const path = join(dir, `${streamed ? 's' : 'b'}.sock`);
      const server = await ControlServer.start({
        path,
        snapshot: (what, o) => a.snapshotAsync(what, o),
        routes: streamed ? (n) => a.routePages(n) : undefined,
        routePageSize: PAGE,
      });
      try {
        await measure(name, () => showRoutesInChild(path));
      } finally {
        await server.close();
      }
    }
    // The work of one page on its own (cursor step + route snapshots + JSON), no event loop.
    sender.unref();
    clearInterval(sender);
    const cursor = a.router.cursor({ table: 'all' });
    for (let ids = cursor.next(PAGE); ids !== null; ids = cursor.next(PAGE)) {
      const t = performance.now();
      JSON.stringify(a.core.routeSnapshots(ids));
      const ms = performance.now() - t;
      steps.push(ms);
    }
    // the sort steps (no routes handed out) are timed too
    const c2 = a.router.cursor({ table: 'all' });
    for (;;) {
      const t = performance.now();
      const ids = c2.next(PAGE);
      const ms = performance.now() - t;
      if (ids === null) break;
      cursorSteps.push(ms);
    }
  } finally {
    clearInterval(sender);
    rx.close();
    tx.close();
    await a.stop();
    await b.stop();
    await hostA.close();
    await hostB.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const load1 = loadavg()[0]!;
  const f = (v: number) => v.toFixed(1);
  const q = (xs: number[], p: number): number => {
    const sorted = [...xs].sort((x, y) => x - y);
    return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
  };
  const rows = windows.map(
    (w) =>
      `| ${w.name} | ${f(w.maxGap)} | ${f(w.loopMax)} | ${f(w.loopP99)} | ${w.received} | ${w.answerBytes === null ? '-' : `${(w.answerBytes / 1e6).toFixed(0)} MB`} | ${w.answerMs === null ? '-' : `${(w.answerMs / 1000).toFixed(1)} s`} |`,
  );
  return {
    title: `Control socket: show routes with ${(ROUTES / 1e6).toFixed(1)}M routes while forwarding`,
    markdown: [
      '| window | longest forwarding gap (ms) | event loop delay max (ms) | p99 (ms) | datagrams through | answer | answer time |',
      '|---|---|---|---|---|---|---|',
      ...rows,
      '',
      `Work per step of the streamed list, timed alone: a cursor step (sorting a run of 4096 ids, or merging a page) median ${f(q(cursorSteps, 0.5))} ms, max ${f(q(cursorSteps, 1))} ms; a page of ${PAGE} routes built and turned into JSON median ${f(q(steps, 0.5))} ms, p99 ${f(q(steps, 0.99))} ms, max ${f(q(steps, 1))} ms (${steps.length} pages).`,
      '',
      `In process: host A sends 4 UDP datagrams per millisecond timer tick through endpoint A (holding ${ROUTES.toLocaleString('en')} extra routes, loaded in ${(loadMs / 1000).toFixed(1)} s) and GUE on loopback to endpoint B and host B; the gap is the longest time between two datagrams arriving at host B. The show client runs in another process and reads the whole answer. Load average ${load0.toFixed(1)} at start, ${load1.toFixed(1)} at the end (2 cores shared with other work: the quiet row is the noise floor).`,
    ].join('\n'),
  };
}
