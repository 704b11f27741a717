/**
 * The control socket's limits (issue 12 point 5): the connection cap, the per-connection request
 * queue cap, backpressure-aware writes with a bounded wait for a stalled reader, and the route
 * list streamed a page at a time (built only as fast as the client takes it).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ControlError, ControlServer, controlRequest, requestSnapshot } from '../../src/control/control-socket.ts';
import { parseConfig } from '../../src/config/config.ts';
import { Endpoint } from '../../src/endpoint/endpoint.ts';
import type { RouteSnapshot } from '../../src/endpoint/snapshot.ts';
import { fakeSnapshot } from './fake-snapshot.ts';

const dir = mkdtempSync(join(tmpdir(), 'ipferry-limits-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const sockPath = () => join(dir, `l${n++}.sock`);

function fakeRoute(i: number): RouteSnapshot {
  const dst = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/32`;
  return { text: `${dst} dev shanghai`, uses: i, bytes: i * 100, json: { dst, prefix: dst, type: 'unicast', table: 'main', metric: 0, dev: 'shanghai', packets: i, bytes: i * 100 } };
}

/** A lazy route source of `total` routes; counts the pages it was asked to build. */
function routeSource(total: number) {
  const counter = { pages: 0 };
  const routes = async function* (pageSize: number): AsyncIterableIterator<RouteSnapshot[]> {
    for (let i = 0; i < total; i += pageSize) {
      await new Promise<void>((r) => setImmediate(r));
      counter.pages++;
      const page: RouteSnapshot[] = [];
      for (let k = i; k < Math.min(total, i + pageSize); k++) page.push(fakeRoute(k));
      yield page;
    }
  };
  return { counter, routes };
}

function open(path: string): Promise<Socket> {
  return new Promise((res, rej) => {
    const s = connect(path);
    s.once('connect', () => res(s));
    s.once('error', rej);
  });
}

const closed = (s: Socket): Promise<void> => new Promise((r) => (s.destroyed ? r() : s.once('close', () => r())));

describe('control socket limits', () => {
  it('connection cap: the N+1th client is told "busy" and closed; a slot frees when one leaves', async () => {
    const path = sockPath();
    const server = await ControlServer.start({ path, snapshot: fakeSnapshot, maxConnections: 2 });
    const idle: Socket[] = [];
    try {
      idle.push(await open(path), await open(path));
      await expect(controlRequest(path, { cmd: 'ping' })).rejects.toSatisfy((e: unknown) => {
        expect(e).toBeInstanceOf(ControlError);
        expect((e as ControlError).kind).toBe('busy');
        expect((e as ControlError).message).toBe(`${path}: busy: 2 control connections are open, the most this endpoint serves; try again`);
        return true;
      });
      expect(server.stats.refused).toBe(1);
      expect(server.stats.connections).toBe(2);
      const one = idle.pop()!;
      one.destroy();
      await closed(one);
      while (server.stats.connections > 1) await new Promise((r) => setTimeout(r, 10));
      expect(await controlRequest(path, { cmd: 'ping' })).toEqual({ pid: 4242, interface: 'ferry0' });
    } finally {
      for (const s of idle) s.destroy();
      await server.close();
    }
  });

  it('request queue cap: a client pipelining 20,000 requests makes the server read ahead at most maxQueued, all answered in order', async () => {
    const path = sockPath();
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const server = await ControlServer.start({
      path,
      snapshot: fakeSnapshot,
      maxQueued: 3,
      maxLine: 1024,
      handlers: { slow: async (req) => (await gate, req.i) },
    });
    try {
      const total = 20_000;
      const lines = Array.from({ length: total }, (_, i) => `{"cmd":"slow","i":${i}}\n`).join('');
      expect(lines.length).toBeGreaterThan(400_000);
      const s = await open_(path);
      const answers: number[] = [];
      let buf = '';
      const all = new Promise<void>((res, rej) => {
        s.setEncoding('utf8');
        s.on('data', (d: string) => {
          buf += d;
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            answers.push((JSON.parse(buf.slice(0, nl)) as { data: number }).data);
            buf = buf.slice(nl + 1);
          }
          if (answers.length === total) res();
        });
        s.on('error', rej);
      });
      s.write(lines);
      // the handler is stuck: give the client time to push everything it can
      await new Promise((r) => setTimeout(r, 300));
      expect(server.stats.peakQueued).toBeLessThanOrEqual(3);
      // unparsed text held: one read chunk (64 KiB) and a line at most, not the 400 KB sent
      expect(server.stats.peakHeld).toBeLessThan(64 * 1024 + 1024 + 3 * 64 + 1);
      open();
      await all;
      s.destroy();
      expect(answers).toEqual(Array.from({ length: total }, (_, i) => i));
    } finally {
      await server.close();
    }
  });

  it('a stalled reader: pages are built only as the socket takes them, the server holds about one page, and gives up after writeTimeoutMs', async () => {
    const path = sockPath();
    const total = 200_000;
    const src = routeSource(total);
    const logs: string[] = [];
    const server = await ControlServer.start({
      path,
      snapshot: fakeSnapshot,
      routes: src.routes,
      routePageSize: 256,
      writeTimeoutMs: 400,
      log: (l) => logs.push(l),
    });
    try {
      const s = await open_(path);
      s.pause(); // never read
      s.write('{"cmd":"show","what":"routes"}\n');
      // the server hangs up on us (a paused client does not see it: watch the server)
      for (let i = 0; i < 600 && server.stats.connections > 0; i++) await new Promise((r) => setTimeout(r, 50));
      s.destroy();
      expect(server.stats.connections).toBe(0);
      expect(server.stats.stalled).toBe(1);
      expect(logs.some((l) => l.includes('read nothing for 0.4 s with an answer waiting'))).toBe(true);
      const pageChars = JSON.stringify(Array.from({ length: 256 }, (_, i) => fakeRoute(total - 256 + i))).length;
      // the socket's write buffer (16 KiB) plus the page that did not fit: not the ~45 MB answer
      expect(server.stats.peakHeld).toBeLessThanOrEqual(16 * 1024 + pageChars + 1024);
      // what the kernel buffers took, and no more: a few dozen of the 782 pages
      expect(src.counter.pages).toBeLessThan(60);
    } finally {
      await server.close();
    }
  });

  it('a streamed route list is the same answer as the built one (show routes and show all), also for 100,000 routes', async () => {
    const path = sockPath();
    const src = routeSource(100_000);
    const small = fakeSnapshot();
    const few = async function* (): AsyncIterableIterator<RouteSnapshot[]> {
      yield [];
      yield small.routes.slice(0, 1);
      yield small.routes.slice(1);
    };
    const path2 = sockPath();
    const built = await ControlServer.start({ path: path2, snapshot: fakeSnapshot });
    const streamed = await ControlServer.start({ path, snapshot: fakeSnapshot, routes: () => few() });
    try {
      for (const what of ['routes', 'all'] as const) {
        expect(await requestSnapshot(path, what)).toEqual(await requestSnapshot(path2, what));
      }
    } finally {
      await streamed.close();
      await built.close();
    }
    const asked: unknown[] = [];
    const big = await ControlServer.start({
      path,
      snapshot: (what, o) => (asked.push([what, o]), fakeSnapshot()),
      routes: src.routes,
    });
    try {
      const got = await requestSnapshot(path, 'routes', { timeoutMs: 20_000 });
      expect(got.interface).toBe('ferry0');
      expect(got.routes).toHaveLength(100_000);
      expect(got.routes![99_999]).toEqual(fakeRoute(99_999));
      expect(asked).toEqual([['routes', { routes: false }]]); // the provider is not asked for the list
    } finally {
      await big.close();
    }
  });
});

describe('an endpoint streams its route list', () => {
  it('routePages through the socket give exactly snapshot("routes") (same order, same counters)', async () => {
    const ep = new Endpoint(
      parseConfig({
        interface: { name: 'ferryL', address: ['10.0.0.1/30', 'fd00::1/64'], mtu: 1400 },
        listen: `127.0.0.1:${30000 + Math.floor(Math.random() * 20000)}`,
        peers: [{ name: 'shanghai', endpoint: '127.0.0.1:9', routes: ['192.168.20.0/24', 'fd00:20::/64'] }],
      }),
      { tun: false, warmUp: 0 },
    );
    await ep.start();
    const path = sockPath();
    const server = await ControlServer.start({ path, snapshot: (w, o) => ep.snapshotAsync(w, o), routes: (k) => ep.routePages(k), routePageSize: 100 });
    try {
      // in random order, both families, a second table
      for (let i = 0; i < 3000; i++) {
        const k = (i * 7919) % 3000;
        const v4 = k % 3 !== 0;
        const prefix = v4
          ? { family: 4 as const, bytes: new Uint8Array([10, 50 + (k >> 8), k & 255, 0]), length: 24 }
          : { family: 6 as const, bytes: new Uint8Array([0xfd, 0, 0x30, 0, k >> 8, k & 255, ...new Array<number>(10).fill(0)]), length: 48 };
        ep.addRoute({ prefix, dev: 'shanghai', table: k % 5 === 0 ? 100 : 'main', metric: k % 4 });
      }
      const want = ep.snapshot('routes').routes;
      expect(want.length).toBeGreaterThan(3000);
      const got = await requestSnapshot(path, 'routes');
      expect(got.routes).toEqual(want);
      const all = await requestSnapshot(path, 'all');
      expect(all.routes).toEqual(want);
      expect(all.peers).toEqual(ep.snapshot('peers').peers);
    } finally {
      await server.close();
      await ep.stop();
    }
  });
});

function open_(path: string): Promise<Socket> {
  return open(path);
}
