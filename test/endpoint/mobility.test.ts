/**
 * Mobility in whole endpoints, in process, over real UDP on loopback (no root): a home agent and
 * a mobile node with userspace hosts (examples/mobile-userspace.ts), a route-optimising
 * correspondent, roaming keyed peers. The namespace tests (test/integration/mobility-netns.test.ts)
 * do the same with kernel TUNs, TCP, NAT and underlay links that go down.
 */
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/config.ts';
import { Endpoint } from '../../src/endpoint/endpoint.ts';
import type { BindingEvent, HandoverEvent } from '../../src/endpoint/mobility/events.ts';
import { UserspaceHost } from '../../src/endpoint/userspace-host.ts';
import { ControlCounter, ControlSender } from '../../src/tunnel/control.ts';
import { BindingAck, bindingUpdateLength, emitBindingUpdate, MOBILITY_BODY_OFFSET, type BindingUpdateRepr } from '../../src/wire/binding.ts';
import { controlLength, HMAC_LEN, KEEPALIVE_BODY_LEN, senderIdFromName } from '../../src/wire/gue.ts';
import { UserspaceMobileWorld, US } from '../../examples/mobile-userspace.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, cond: () => boolean, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

async function udp(host = '127.0.0.1'): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, host, r));
  return s;
}

async function freePort(host = '127.0.0.1'): Promise<number> {
  const s = await udp(host);
  const p = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

const KEY = Buffer.from(US.key.slice(4), 'hex');
const HOME = Uint8Array.from([10, 77, 0, 5]);

/** A binding update of node "laptop" as bytes (signed with `key`). */
function bu(seq: number, careOf: { bytes: Uint8Array; port: number }, key: Uint8Array = KEY, counter = Date.now() * 1000, lifetime = 600): Buffer {
  const r: BindingUpdateRepr = {
    sequence: seq, lifetime, ackRequested: true, homeRegistration: true, routeOptimisation: false,
    homeFamily: 4, home: HOME, careOf: { family: 4, ...careOf }, padding: 0,
  };
  const out = Buffer.alloc(bindingUpdateLength(r));
  emitBindingUpdate(out, 0, { senderId: senderIdFromName('laptop'), counter }, r, key);
  return out;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => {});
});

describe('home agent and mobile node in process (UDP on loopback, userspace hosts)', () => {
  it('registers, follows every move with a handover event, deregisters at home; the binding cache and routes follow', async () => {
    const w = new UserspaceMobileWorld();
    cleanups.push(() => w.stop());
    await w.start(() => {});
    const handovers: HandoverEvent[] = [];
    const bindings: BindingEvent[] = [];
    w.mn.on('handover', (e) => handovers.push(e));
    w.ha.on('binding', (e) => bindings.push(e));
    await waitFor('registration', () => (w.ha.snapshot('bindings').mobility?.bindings?.length ?? 0) === 1);
    expect(await w.cn.ping(US.home, 56, 2000)).toBeGreaterThan(0);
    const routeText = () => w.ha.snapshot('routes').routes.map((r) => r.text);
    expect(routeText()).toContain('10.77.0.5 dev laptop');

    for (const [i, where] of ['cellular', 'foreign2', 'wifi'].entries()) {
      await w.move(where);
      await waitFor(`handover to ${where}`, () => handovers.length === i + 1);
      const h = handovers[i]!;
      expect(h.to).toBe(`${US.attach[where]}:${w.mnPort}`);
      expect(h.detection).toBe('rebind');
      expect(h.gapMs).toBeGreaterThanOrEqual(0);
      const b = w.ha.snapshot('bindings').mobility!.bindings![0]!;
      expect(b.careOf).toBe(h.to);
      expect(b.state).toBe('bicasting'); // the old care-of gets copies for bicastMs
      expect(b.bicastTo).toBe(h.from);
      expect(await w.cn.ping(US.home, 56, 2000)).toBeGreaterThan(0);
    }
    expect(bindings.map((b) => b.change)).toEqual(['added', 'moved', 'moved', 'moved']);

    await w.move('home');
    await waitFor('deregistration', () => handovers.length === 4);
    expect(handovers[3]!.to).toBeNull();
    expect(w.ha.snapshot('bindings').mobility!.bindings).toEqual([]);
    expect(routeText()).not.toContain('10.77.0.5 dev laptop');
    expect(bindings.at(-1)).toMatchObject({ change: 'removed', reason: 'deregistered' });
    // at home the host is reached natively
    expect(await w.cn.ping(US.home, 56, 2000)).toBeGreaterThan(0);

    const mn = w.mn.snapshot('binding-updates').mobility!;
    expect(mn.atHome).toBe(true);
    expect(mn.bindingUpdates![0]).toMatchObject({ homeAgent: true, state: 'idle', home: '10.77.0.5' });
    const st = w.mn.stats().mobility!;
    expect(st.handoverGaps!.count).toBe(4);
    expect(st.counters.NBindAcksRcvd).toBe(5);
    expect(w.ha.stats().mobility!.counters.NCareOfChanges).toBe(3);
  });

  it('forged and replayed updates never move the binding, and are counted', async () => {
    const w = new UserspaceMobileWorld();
    cleanups.push(() => w.stop());
    await w.start(() => {});
    await waitFor('registration', () => (w.ha.snapshot('bindings').mobility?.bindings?.length ?? 0) === 1);
    const careOf = () => w.ha.snapshot('bindings').mobility!.bindings![0]!.careOf;
    const before = careOf();
    const attacker = await udp('127.0.0.66');
    cleanups.push(async () => void attacker.close());
    const me = { bytes: Uint8Array.from([127, 0, 0, 66]), port: attacker.address().port };
    const send = (m: Buffer) => new Promise<void>((r) => attacker.send(m, w.haPort, US.ha, () => r()));
    const counters = () => w.ha.stats().mobility!.counters;

    // forged: the right node name, a key of our own; and an unknown node
    await send(bu(60000, me, Buffer.alloc(32, 7)));
    await waitFor('bad MAC counted', () => counters().NBindUpdatesBadMac === 1);
    // replayed: a genuine update (the node's key) with a counter the home agent has seen newer
    // ones from, sent again from the attacker's address
    const old = bu(60001, me, KEY, (Date.now() - 60_000) * 1000);
    await send(old);
    await waitFor('replay counted', () => counters().NBindUpdatesReplayed === 1);
    await send(old);
    await waitFor('second replay counted', () => counters().NBindUpdatesReplayed === 2);
    // stale: far outside the freshness window
    await send(bu(60002, me, KEY, (Date.now() + 3_600_000) * 1000));
    await waitFor('stale counted', () => counters().NBindUpdatesStale === 1);
    expect(careOf()).toBe(before);
    expect(counters().NBindUpdatesDropAuth).toBe(4);
    expect(counters().NCareOfChanges).toBe(0);
    expect(w.ha.stats().drops.BadAuthentication).toBeGreaterThanOrEqual(1);
  });

  it('a home agent that restarts gets the node back: keepalive, refresh request, registration', async () => {
    const w = new UserspaceMobileWorld();
    cleanups.push(() => w.stop());
    await w.start(() => {});
    await waitFor('registration', () => (w.ha.snapshot('bindings').mobility?.bindings?.length ?? 0) === 1);
    const config = w.ha.config;
    await w.ha.stop();
    await sleep(300);
    const ha2 = new Endpoint(config, { device: w.haDev2(), warmUp: 0 });
    w.ha = ha2;
    const t0 = Date.now();
    await ha2.start();
    await waitFor('re-registration', () => (ha2.snapshot('bindings').mobility?.bindings?.length ?? 0) === 1, 10_000);
    const took = Date.now() - t0;
    process.stdout.write(`home agent restart: node registered again ${took} ms after the home agent was up\n`);
    const c = ha2.stats().mobility!.counters;
    expect(c.NBindRqsSent).toBeGreaterThanOrEqual(1);
    expect(w.mn.stats().mobility!.counters.NBindRqsRcvd).toBeGreaterThanOrEqual(1);
    expect(await w.cn.ping(US.home, 56, 2000)).toBeGreaterThan(0);
  });

  it('an expired binding takes its peer and route with it', async () => {
    const port = await freePort('127.0.0.2');
    const ha = new Endpoint(
      parseConfig({
        interface: { name: 'ha0' }, listen: `127.0.0.2:${port}`, kernelRoutes: false, control: false,
        mobility: { homeAgent: { homePrefixes: ['10.77.0.0/24'], nodes: [{ name: 'laptop', homeAddress: US.home, key: US.key }], maxLifetime: 4 } },
      }),
      { tun: false, warmUp: 0 },
    );
    cleanups.push(() => ha.stop());
    await ha.start();
    const node = await udp('127.0.0.1');
    cleanups.push(async () => void node.close());
    const events: BindingEvent[] = [];
    ha.on('binding', (e) => events.push(e));
    await new Promise<void>((r) => node.send(bu(1, { bytes: Uint8Array.from([127, 0, 0, 1]), port: node.address().port }, KEY, Date.now() * 1000, 600), port, '127.0.0.2', () => r()));
    await waitFor('binding', () => events.length === 1);
    const b = ha.snapshot('bindings').mobility!.bindings![0]!;
    expect(b.lifetime).toBe(4); // capped by maxLifetime
    expect(ha.snapshot('routes').routes.map((r) => r.text)).toContain('10.77.0.5 dev laptop');
    expect(ha.peers.filter((p) => p?.name === 'laptop')).toHaveLength(1);
    await waitFor('expiry', () => events.length === 2, 8000);
    expect(events[1]).toMatchObject({ change: 'removed', reason: 'expired' });
    expect(ha.snapshot('routes').routes.map((r) => r.text)).not.toContain('10.77.0.5 dev laptop');
    expect(ha.peers.filter((p) => p?.name === 'laptop')).toHaveLength(0);
    expect(ha.stats().mobility!.counters.NBindingsExpired).toBe(1);
  });
});

describe('home agent limits, node shutdown', () => {
  it('a full binding cache answers 130 with a retry-after, counted; a node that shuts down deregisters', async () => {
    const w = new UserspaceMobileWorld();
    cleanups.push(() => w.stop());
    await w.start(() => {}, { homeAgent: { maxBindings: 1, extraNode: { name: 'phone', homeAddress: '10.77.0.6', key: 'hex:70686f6e652d6b65792d303030303030303031' } } });
    await waitFor('registration', () => (w.ha.snapshot('bindings').mobility?.bindings?.length ?? 0) === 1);
    // a second node, signed with its own key: no room
    const phone = await udp('127.0.0.77');
    cleanups.push(async () => void phone.close());
    const acks: Buffer[] = [];
    phone.on('message', (m) => acks.push(m));
    const r: BindingUpdateRepr = {
      sequence: 1, lifetime: 600, ackRequested: true, homeRegistration: true, routeOptimisation: false,
      homeFamily: 4, home: Uint8Array.from([10, 77, 0, 6]), careOf: { family: 4, bytes: Uint8Array.from([127, 0, 0, 77]), port: phone.address().port }, padding: 0,
    };
    const m = Buffer.alloc(bindingUpdateLength(r));
    emitBindingUpdate(m, 0, { senderId: senderIdFromName('phone'), counter: Date.now() * 1000 }, r, Buffer.from('70686f6e652d6b65792d303030303030303031', 'hex'));
    await new Promise<void>((res) => phone.send(m, w.haPort, US.ha, () => res()));
    await waitFor('the 130', () => acks.length === 1);
    const ack = new BindingAck(acks[0]!, MOBILITY_BODY_OFFSET, acks[0]!.length - MOBILITY_BODY_OFFSET - HMAC_LEN);
    expect(ack.status).toBe(130);
    expect(ack.retryAfter).toBeGreaterThanOrEqual(1);
    expect(w.ha.stats().mobility!.counters.NCacheFull).toBe(1);
    expect(w.ha.snapshot('bindings').mobility!.bindings!.map((b) => b.node)).toEqual(['laptop']);

    // the mobile node stops: it deregisters on its way out
    const removed: BindingEvent[] = [];
    w.ha.on('binding', (e) => removed.push(e));
    await w.mn.stop();
    await waitFor('deregistration', () => removed.some((e) => e.change === 'removed'));
    expect(removed.at(-1)).toMatchObject({ node: 'laptop', change: 'removed', reason: 'deregistered' });
  });
});

describe('missed keepalives', () => {
  it('a home agent that sends no keepalives is silent while the node is idle: no re-registration', { timeout: 30_000 }, async () => {
    const w = new UserspaceMobileWorld();
    cleanups.push(() => w.stop());
    await w.start(() => {});
    await waitFor('registration', () => (w.ha.snapshot('bindings').mobility?.bindings?.length ?? 0) === 1);
    const sent = () => w.mn.stats().mobility!.counters.NBindUpdatesSent;
    const first = sent();
    await sleep(6500);
    expect(w.mn.peers.find((p) => p?.name === 'ha')!.up).toBe(false); // nothing heard for 5 s
    expect(sent()).toBe(first);
  });

  it('an idle node stays quiet; when its home agent, which sends keepalives, falls silent, it re-registers', { timeout: 30_000 }, async () => {
    const w = new UserspaceMobileWorld();
    cleanups.push(() => w.stop());
    await w.start(() => {}, { homeAgent: { keepalive: 1 } });
    await waitFor('registration', () => (w.ha.snapshot('bindings').mobility?.bindings?.length ?? 0) === 1);
    const sent = () => w.mn.stats().mobility!.counters.NBindUpdatesSent;
    const first = sent();
    // idle for longer than the 5 s a peer needs to count as down: keepalives both ways, no update
    await sleep(6500);
    expect(sent()).toBe(first);
    const ha = w.mn.peers.find((p) => p?.name === 'ha')!;
    expect(ha.up).toBe(true);
    expect(ha.keepalivesRx).toBeGreaterThanOrEqual(4);
    // the home agent goes away without a word: its keepalives stop, the node tries again
    await w.ha.stop();
    await waitFor('a re-registration attempt', () => sent() > first, 12_000);
    expect(w.mn.snapshot('binding-updates').mobility!.bindingUpdates![0]!.state).toBe('registering');
  });
});

describe('route optimisation at a correspondent endpoint', () => {
  it('after the path is validated the correspondent sends to the care-of directly, not through the home agent', async () => {
    const [pHa, pCn, pMn] = [await freePort('127.0.0.2'), await freePort('127.0.0.3'), await freePort('127.0.1.10')];
    const K2 = 'hex:636f72726573706f6e64656e742d6b65792d30303031';
    const ha = new Endpoint(parseConfig({
      interface: { name: 'ha0' }, listen: `127.0.0.2:${pHa}`, kernelRoutes: false, control: false,
      peers: [{ name: 'cn', endpoint: `127.0.0.3:${pCn}`, routes: ['192.0.2.6/32'] }],
      mobility: { homeAgent: { homePrefixes: ['10.77.0.0/24'], nodes: [{ name: 'laptop', homeAddress: US.home, key: US.key }] } },
    }), { tun: false, warmUp: 0 });
    const cn = new Endpoint(parseConfig({
      interface: { name: 'cn0' }, listen: `127.0.0.3:${pCn}`, kernelRoutes: false, control: false,
      stack: { address: ['192.0.2.6/32'] },
      peers: [{ name: 'ha', endpoint: `127.0.0.2:${pHa}`, routes: ['10.77.0.0/24'] }],
      mobility: { correspondent: { nodes: [{ name: 'laptop', homeAddress: US.home, key: K2, routeOptimisation: true }] } },
    }), { tun: false, warmUp: 0 });
    const host = new UserspaceHost({ addresses: [US.home], name: 'mn' });
    const mn = new Endpoint(parseConfig({
      interface: { name: 'mn0', address: [`${US.home}/32`] }, listen: `127.0.1.10:${pMn}`, kernelRoutes: false, control: false,
      peers: [{ name: 'ha', endpoint: `127.0.0.2:${pHa}`, routes: ['192.0.2.6/32'], keepalive: 1 }],
      mobility: { mobileNode: { name: 'laptop', homeAddress: US.home, homeAgent: 'ha', key: US.key, monitor: false, routeOptimisation: true, correspondents: [{ name: 'cn', endpoint: `127.0.0.3:${pCn}`, key: K2 }] } },
    }), { device: host.link, warmUp: 0 });
    cleanups.push(async () => {
      await mn.stop();
      await cn.stop();
      await ha.stop();
      await host.close();
    });
    const direct: BindingEvent[] = [];
    cn.on('binding', (e) => direct.push(e));
    await ha.start();
    await cn.start();
    await mn.start();
    await waitFor('path validated', () => direct.some((e) => e.change === 'direct'));
    const peerTx = (ep: Endpoint, name: string) => ep.peers.find((p) => p?.name === name)?.txPackets ?? 0;
    const viaHa = peerTx(cn, 'ha');
    const direct0 = peerTx(cn, 'laptop');
    expect(await cn.ping(US.home, 56, 2000)).toBeGreaterThan(0);
    expect(peerTx(cn, 'laptop')).toBe(direct0 + 1); // the request went straight to the care-of
    expect(peerTx(cn, 'ha')).toBe(viaHa);
    const b = cn.snapshot('bindings').mobility!.bindings![0]!;
    expect(b).toMatchObject({ type: 'correspondent', state: 'direct', careOf: `127.0.1.10:${pMn}` });
    expect(cn.stats().mobility!.counters.NPathValidated).toBe(1);

    // the node moves: through the home agent again until the new path is validated
    direct.length = 0;
    await mn.moveUnderlay('127.0.2.10');
    await waitFor('re-validated', () => direct.some((e) => e.change === 'direct'));
    expect(direct[0]).toMatchObject({ change: 'via-home-agent', reason: 'moved' });
    expect(cn.snapshot('bindings').mobility!.bindings![0]!.careOf).toBe(`127.0.2.10:${pMn}`);
    expect(await cn.ping(US.home, 56, 2000)).toBeGreaterThan(0);
  });
});

describe('roaming for ordinary peers', () => {
  it('a keyed peer is followed to the address of its authenticated keepalive; replays and keyless peers are not', async () => {
    const [pA, pB, pC] = [await freePort('127.0.0.2'), await freePort('127.0.4.1'), await freePort('127.0.5.1')];
    const KEYB = 'hex:726f616d696e672d706565722d6b65792d31';
    const a = new Endpoint(parseConfig({
      interface: { name: 'a0' }, listen: `127.0.0.2:${pA}`, kernelRoutes: false, control: false, stack: { address: ['10.9.0.1/32'] },
      peers: [
        { name: 'b', endpoint: `127.0.4.1:${pB}`, routes: ['10.9.0.2/32'], key: KEYB, keepalive: 1 },
        { name: 'c', endpoint: `127.0.5.1:${pC}`, routes: ['10.9.0.3/32'], keepalive: 1 },
      ],
    }), { tun: false, warmUp: 0 });
    const b = new Endpoint(parseConfig({
      interface: { name: 'b0' }, listen: `127.0.4.1:${pB}`, kernelRoutes: false, control: false, stack: { address: ['10.9.0.2/32'] },
      peers: [{ name: 'a', endpoint: `127.0.0.2:${pA}`, routes: ['10.9.0.1/32'], key: KEYB, keepalive: 1 }],
    }), { tun: false, warmUp: 0 });
    const c = new Endpoint(parseConfig({
      interface: { name: 'c0' }, listen: `127.0.5.1:${pC}`, kernelRoutes: false, control: false, stack: { address: ['10.9.0.3/32'] },
      peers: [{ name: 'a', endpoint: `127.0.0.2:${pA}`, routes: ['10.9.0.1/32'], keepalive: 1 }],
    }), { tun: false, warmUp: 0 });
    cleanups.push(async () => {
      await a.stop();
      await b.stop();
      await c.stop();
    });
    await a.start();
    await b.start();
    await c.start();
    const ep = (name: string) => a.peers.find((p) => p?.name === name)!.endpointText;
    expect(await a.ping('10.9.0.2', 56, 2000)).toBeGreaterThan(0);

    // b moves: its next keepalive (b speaks first) pulls a's record of b along
    await b.moveUnderlay('127.0.4.2');
    b.keepalive(0);
    await waitFor('a follows b', () => ep('b') === `127.0.4.2:${pB}`);
    expect(await a.ping('10.9.0.2', 56, 2000)).toBeGreaterThan(0);
    expect(a.stats().mobility?.counters.NPeersRoamed).toBe(1);

    // a keepalive of b recorded earlier (its current boot epoch, an older counter), replayed
    // from elsewhere: b stays where it is
    const bEpoch = (b as unknown as { control: ControlSender }).control.epoch;
    const kb = Buffer.from(KEYB.slice(4), 'hex');
    const recorded = new ControlSender(senderIdFromName('b'), new ControlCounter({ now: () => Date.now() - 10_000 }), bEpoch);
    const k = Buffer.alloc(controlLength(KEEPALIVE_BODY_LEN, true));
    const n = recorded.keepalive(k, 0, 1, kb);
    const attacker = await udp('127.0.0.66');
    cleanups.push(async () => void attacker.close());
    await new Promise<void>((r) => attacker.send(k.subarray(0, n), pA, '127.0.0.2', () => r()));
    // and one recorded long ago in another boot epoch (older than the window remembers): its timestamp gives it away
    const ancient = new ControlSender(senderIdFromName('b'), new ControlCounter({ now: () => Date.now() - 3_600_000 }), 0x5eed);
    const n2 = ancient.keepalive(k, 0, 1, kb, Date.now() - 3_600_000);
    await new Promise<void>((r) => attacker.send(k.subarray(0, n2), pA, '127.0.0.2', () => r()));
    await sleep(100);
    expect(ep('b')).toBe(`127.0.4.2:${pB}`);
    // keyless c moves: nothing follows it (pinned), its traffic from elsewhere is not c's
    await c.moveUnderlay('127.0.5.2');
    c.keepalive(0);
    await sleep(200);
    expect(ep('c')).toBe(`127.0.5.1:${pC}`);
    expect(a.stats().mobility?.counters.NRoamingRefused).toBeGreaterThanOrEqual(2);
  });
});
