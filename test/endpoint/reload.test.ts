/**
 * Endpoint.reload: peer, route, rule and key changes applied to a running endpoint while
 * traffic runs. Three sites in process (memory devices, UDP on loopback): A has peers b and c;
 * pings from A's host to B's host run back to back while A's config is reloaded again and again
 * with changes to c, a peer added and removed, routes and rules: not one of them is lost, and
 * the changes are live (c is reachable through its new prefix, the rules and routes are there).
 * A config that cannot run here changes nothing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, type Config } from '../../src/config/config.ts';
import { Endpoint } from '../../src/endpoint/endpoint.ts';
import type { LogEvent } from '../../src/endpoint/log-event.ts';
import { planReload } from '../../src/endpoint/reload-plan.ts';
import { UserspaceHost } from '../../src/endpoint/userspace-host.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const KEY1 = 'hex:' + '11'.repeat(32);
const KEY2 = 'hex:' + '22'.repeat(32);

function ports(): [number, number, number, number] {
  const p = 20000 + Math.floor(Math.random() * 20000);
  return [p, p + 1, p + 2, p + 3];
}

interface Sites {
  a: Endpoint;
  hostA: UserspaceHost;
  hostC: UserspaceHost;
  configA: (extra?: Record<string, unknown>, peerC?: Record<string, unknown>, more?: unknown[]) => Config;
  events: LogEvent[];
  pa: number;
  pc: number;
  pd: number;
}

async function threeSites(): Promise<Sites> {
  const [pa, pb, pc, pd] = ports();
  const hostA = new UserspaceHost({ addresses: ['192.168.10.10'], name: 'a' });
  const hostB = new UserspaceHost({ addresses: ['192.168.20.20'], name: 'b' });
  const hostC = new UserspaceHost({ addresses: ['192.168.30.30', '192.168.31.31'], name: 'c' });
  const events: LogEvent[] = [];
  const configA = (extra: Record<string, unknown> = {}, peerC: Record<string, unknown> = {}, more: unknown[] = []): Config =>
    parseConfig(
      {
        interface: { name: 'ferryA', address: ['10.0.0.1/24'] },
        listen: `127.0.0.1:${pa}`,
        peers: [
          { name: 'b', endpoint: `127.0.0.1:${pb}`, routes: ['192.168.20.0/24'], keepalive: 1 },
          { name: 'c', endpoint: `127.0.0.1:${pc}`, routes: ['192.168.30.0/24'], key: KEY1, ...peerC },
          ...more,
        ],
        ...extra,
      },
      'a.json',
    );
  const a = new Endpoint(configA(), { device: hostA.link, warmUp: 0, onEvent: (e) => events.push(e) });
  const b = new Endpoint(
    parseConfig({
      interface: { name: 'ferryB', address: ['10.0.0.2/24'] },
      listen: `127.0.0.1:${pb}`,
      peers: [{ name: 'a', endpoint: `127.0.0.1:${pa}`, routes: ['192.168.10.0/24'], keepalive: 1 }],
    }),
    { device: hostB.link, warmUp: 0 },
  );
  const c = new Endpoint(
    parseConfig({
      interface: { name: 'ferryC', address: ['10.0.0.3/24'] },
      listen: `127.0.0.1:${pc}`,
      peers: [{ name: 'a', endpoint: `127.0.0.1:${pa}`, routes: ['192.168.10.0/24'], key: KEY1 }],
    }),
    { device: hostC.link, warmUp: 0 },
  );
  for (const ep of [a, b, c]) await ep.start();
  cleanups.push(async () => {
    for (const ep of [a, b, c]) await ep.stop();
    for (const h of [hostA, hostB, hostC]) await h.close();
    for (const ep of [a, b, c]) expect(ep.pools.live).toBe(0);
  });
  return { a, hostA, hostC, configA, events, pa, pc, pd };
}

describe('planReload', () => {
  const base = {
    interface: { name: 'f0', address: ['10.0.0.1/30'] },
    listen: '127.0.0.1:6080',
    peers: [
      { name: 'p', endpoint: '127.0.0.1:6081', routes: ['10.1.0.0/16'] },
      { name: 'q', endpoint: '127.0.0.1:6082', routes: ['10.2.0.0/16'], key: KEY1 },
    ],
    routes: ['unreachable 10.9.0.0/16'],
  };
  const cfg = (over: Record<string, unknown>) => parseConfig({ ...base, ...over });

  it('says what changes live and what needs a restart, one phrase each', () => {
    const next = cfg({
      listen: '127.0.0.1:7000',
      interface: { name: 'f0', address: ['10.0.0.1/30'], mtu: 1300 },
      peers: [
        { name: 'q', endpoint: '127.0.0.1:6083', routes: ['10.2.0.0/16', '10.3.0.0/16'], key: KEY2, mtu: 1200 },
        { name: 'r', endpoint: '127.0.0.1:6084', routes: ['10.4.0.0/16'] },
      ],
      routes: ['blackhole 10.8.0.0/16'],
      rules: ['from 10.1.0.0/16 lookup main'],
    });
    const plan = planReload(cfg({}), next);
    expect(plan.restart).toEqual(['interface.mtu 1400 -> 1300', 'listen 127.0.0.1:6080 -> 127.0.0.1:7000']);
    expect(plan.live).toEqual([
      'peer p removed',
      'peer q: endpoint 127.0.0.1:6082 -> 127.0.0.1:6083, routes +10.3.0.0/16, mtu 1400 -> 1200, key changed, mss clamp 1360/1340 -> 1160/1140',
      'peer r added (127.0.0.1:6084, routes 10.4.0.0/16)',
      'route removed: unreachable 10.9.0.0/16',
      'route added: blackhole 10.8.0.0/16',
      'rules replaced (from 10.1.0.0/16 lookup main)',
    ]);
    // the running listen and interface stay in the config the endpoint runs from now on
    expect(plan.effective.listen.port).toBe(6080);
    expect(plan.effective.interface.mtu).toBe(1400);
    expect(plan.effective.peers.map((p) => p.name)).toEqual(['q', 'r']);
    expect(plan.changed[0]!.keptRoutes.map((r) => r.text)).toEqual(['10.2.0.0/16']);
  });

  it('the same config again: nothing to do', () => {
    const plan = planReload(cfg({}), cfg({}));
    expect(plan.live).toEqual([]);
    expect(plan.restart).toEqual([]);
    expect(plan.rules).toBeNull();
  });
});

describe('Endpoint.reload: prefixes that move', () => {
  it('two peers swap their prefixes in one reload: routes and source checks follow', () => {
    const cfg = (b: string[], c: string[]) =>
      parseConfig({
        interface: { name: 'ferryS' },
        listen: '127.0.0.1:6080',
        peers: [
          { name: 'b', endpoint: '127.0.0.1:6081', routes: b },
          { name: 'c', endpoint: '127.0.0.1:6082', routes: c },
        ],
        routes: ['10.50.0.0/16 via 192.168.20.1'],
      });
    const ep = new Endpoint(cfg(['192.168.20.0/24'], ['192.168.30.0/24']), { warmUp: 0 });
    const r = ep.reload(cfg(['192.168.30.0/24'], ['192.168.20.0/24']));
    expect(r.applied).toEqual([
      'peer b: routes +192.168.30.0/24 -192.168.20.0/24',
      'peer c: routes +192.168.20.0/24 -192.168.30.0/24',
      // the same line now leads elsewhere: its via is inside c's prefix
      'route removed: 10.50.0.0/16 via 192.168.20.1',
      'route added: 10.50.0.0/16 via 192.168.20.1',
    ]);
    const routes = ep.snapshot('routes').routes.map((x) => x.text);
    expect(routes).toEqual(expect.arrayContaining(['192.168.30.0/24 dev b', '192.168.20.0/24 dev c']));
    expect(routes).not.toContain('192.168.20.0/24 dev b');
    const src = (a: number[]) => ep.allowed.lookup(Uint8Array.from(a), 0, 4);
    expect(src([192, 168, 30, 5])).toBe(0);
    expect(src([192, 168, 20, 5])).toBe(1);
    const nh = ep.router.nexthopsOf(ep.router.list().find((id) => ep.router.textOf(id) === '10.50.0.0/16 via 192.168.20.1')!);
    expect(nh[0]!.dev).toBe('c');
  });
});

describe('Endpoint.reload while traffic runs', () => {
  it('changes c, adds and removes a peer, routes and rules: no ping to b is lost', async () => {
    const { a, hostA, hostC, configA, events, pc, pd } = await threeSites();
    expect(await hostA.ping('192.168.20.20')).toBeGreaterThan(0);
    expect(await hostA.ping('192.168.30.30')).toBeGreaterThan(0);
    const peerB = a.peers[0]!;
    const bTx = peerB.txPackets;

    // b's traffic, back to back, while A reloads
    let lost = 0;
    let sent = 0;
    let stop = false;
    const pinging = (async () => {
      while (!stop || sent < 30) {
        sent++;
        await hostA.ping('192.168.20.20', 56, 1000).catch(() => lost++);
      }
    })();
    const steps: Config[] = [
      // c: mtu, keepalive; a route and a rule
      configA({ routes: ['unreachable 10.99.0.0/16'], rules: ['from 192.168.10.0/24 to 10.98.0.0/16 prohibit'] }, { mtu: 1300, keepalive: 2 }),
      // a peer d added
      configA({ routes: ['unreachable 10.99.0.0/16'] }, { mtu: 1300 }, [{ name: 'd', endpoint: `127.0.0.1:${pd}`, routes: ['192.168.40.0/24'] }]),
      // c gains a prefix and moves to a dead port; d goes
      configA({}, { routes: ['192.168.30.0/24', '192.168.31.0/24'], endpoint: `127.0.0.1:${pd}` }),
      // c back on its port
      configA({}, { routes: ['192.168.30.0/24', '192.168.31.0/24'] }),
    ];
    const results = [];
    for (const step of steps) {
      await new Promise((r) => setTimeout(r, 20));
      results.push(a.reload(step));
    }
    stop = true;
    await pinging;
    expect(lost).toBe(0);
    expect(sent).toBeGreaterThanOrEqual(30);
    expect(a.peers[0]).toBe(peerB); // b itself untouched: same object, counters go on
    expect(peerB.txPackets).toBeGreaterThan(bTx);

    expect(results.map((r) => r.applied)).toEqual([
      ['peer c: mtu 1400 -> 1300, keepalive off -> 2, mss clamp 1360/1340 -> 1260/1240', 'route added: unreachable 10.99.0.0/16', 'rules replaced (from 192.168.10.0/24 to 10.98.0.0/16 prohibit)'],
      ['peer c: keepalive 2 -> off', `peer d added (127.0.0.1:${pd}, routes 192.168.40.0/24)`, 'rules replaced (none)'],
      ['peer d removed', `peer c: endpoint 127.0.0.1:${pc} -> 127.0.0.1:${pd}, routes +192.168.31.0/24, mtu 1300 -> 1400, mss clamp 1260/1240 -> 1360/1340`, 'route removed: unreachable 10.99.0.0/16'],
      [`peer c: endpoint 127.0.0.1:${pd} -> 127.0.0.1:${pc}`],
    ]);
    expect(results.every((r) => r.restart.length === 0)).toBe(true);
    // live: c through its new prefix, its settings; d gone; routes and rules as configured
    expect(await hostA.ping('192.168.31.31')).toBeGreaterThan(0);
    const c = a.peers.find((p) => p?.name === 'c')!;
    expect(c.mtu).toBe(1400);
    expect(a.peers.some((p) => p?.name === 'd')).toBe(false);
    const routes = a.snapshot('routes').routes.map((r) => r.text);
    expect(routes).toContain('192.168.31.0/24 dev c');
    expect(routes).not.toContain('192.168.40.0/24 dev d');
    expect(routes).not.toContain('unreachable 10.99.0.0/16');
    expect(a.router.rules().map((r) => r.priority)).toEqual([0, 32766, 32767]);
    expect(events.filter((e) => e.event === 'reload')).toHaveLength(4);
    void hostC;
  }, 60_000);

  it('a config that cannot run here changes nothing and says why in one line', async () => {
    const { a, hostA, configA } = await threeSites();
    const before = a.snapshot();
    // IPv6 peers with an IPv6 listen address: fine as a file, but the running socket is IPv4
    const bad = parseConfig(
      {
        interface: { name: 'ferryA', address: ['10.0.0.1/24'] },
        listen: '[::1]:7000',
        peers: [{ name: 'v6', endpoint: '[::1]:7001', routes: ['192.168.60.0/24'] }],
      },
      'a.json',
    );
    let err: unknown;
    try {
      a.reload(bad);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toBe('a.json: peers[0].endpoint: [::1]:7001 is IPv6 but listen 127.0.0.1:' + a.config.listen.port + ' is IPv4 (listen on all addresses, or an IPv6 address)');
    expect(a.snapshot().peers.map((p) => p.name)).toEqual(before.peers.map((p) => p.name));
    expect(a.snapshot('routes').routes.map((r) => r.text)).toEqual(before.routes.map((r) => r.text));
    expect(await hostA.ping('192.168.20.20')).toBeGreaterThan(0);
    void configA;
  });
});

describe('peers given by DNS name', () => {
  it('are looked up again when they go down, and on reload', async () => {
    const { resolveConfig } = await import('../../src/config/config.ts');
    const { MemoryDevice } = await import('../../src/device/memory-device.ts');
    const [pa, pf] = ports();
    const names = new Map([['gw.test', '127.0.0.1']]);
    const lookup = async (host: string) => {
      const a = names.get(host);
      if (a === undefined) throw Object.assign(new Error('no'), { code: 'ENOTFOUND' });
      return [{ address: a, family: 4 }];
    };
    const raw = {
      interface: { name: 'ferryN', address: ['10.0.0.1/24'] },
      listen: `127.0.0.1:${pa}`,
      peers: [{ name: 'far', endpoint: `gw.test:${pf}`, routes: ['192.168.20.0/24'], keepalive: 1 }],
    };
    const events: LogEvent[] = [];
    const [host, link] = MemoryDevice.pair();
    const ep = new Endpoint(await resolveConfig(parseConfig(raw, 'n.json'), { lookup }), { device: link, warmUp: 0, resolve: { lookup }, onEvent: (e) => events.push(e) });
    await ep.start();
    cleanups.push(async () => {
      await ep.stop();
      await host.close();
    });
    expect(ep.peers[0]!.endpointText).toBe(`127.0.0.1:${pf}`);

    // the name moves; the peer was up and has not been heard from for a while: down, looked up again
    names.set('gw.test', '127.0.0.2');
    const l = ep.peers[0]!.liveness;
    l.up = true;
    l.lastRx = Date.now() - 60_000;
    const t0 = Date.now();
    while (!events.some((e) => e.event === 'endpoint-resolved') && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 20));
    expect(events.map((e) => e.event)).toContain('peer-down');
    expect(events.find((e) => e.event === 'endpoint-resolved')!.msg).toBe('peer far: gw.test now resolves to 127.0.0.2 (was 127.0.0.1)');
    expect(ep.peers[0]!.endpointText).toBe(`127.0.0.2:${pf}`);

    // reload looks names up again (as `ipferry up` resolves the file it reads)
    names.set('gw.test', '127.0.0.3');
    const r = ep.reload(await resolveConfig(parseConfig(raw, 'n.json'), { lookup }));
    expect(r.applied).toEqual([`peer far: endpoint gw.test (127.0.0.2:${pf}) -> gw.test (127.0.0.3:${pf})`]);
    expect(ep.peers[0]!.endpointText).toBe(`127.0.0.3:${pf}`);
  }, 20_000);
});
