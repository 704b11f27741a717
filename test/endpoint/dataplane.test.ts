/**
 * The data-plane boundary (src/endpoint/dataplane.ts) through the Endpoint, in-thread data plane:
 * two endpoints in process (memory devices, UDP on loopback), each operation observed from the
 * outside (pings, datagrams on a plain dgram socket, drop counters).
 */
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { DropReason } from '../../src/base/drop-reason.ts';
import { parseConfig } from '../../src/config/config.ts';
import { Endpoint } from '../../src/endpoint/endpoint.ts';
import type { ControlDatagram } from '../../src/endpoint/dataplane.ts';
import { UserspaceHost } from '../../src/endpoint/userspace-host.ts';
import { CTYPE_BINDING_UPDATE, emitControl } from '../../src/wire/gue.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const LOOP = Uint8Array.of(127, 0, 0, 1);

async function until(cond: () => boolean, ms = 3000): Promise<boolean> {
  for (let t = 0; t < ms / 20 && !cond(); t++) await sleep(20);
  return cond();
}

async function twoSites() {
  const pa = 20000 + Math.floor(Math.random() * 20000);
  const pb = pa + 1;
  const hostA = new UserspaceHost({ addresses: ['192.168.10.10'], name: 'a' });
  const hostB = new UserspaceHost({ addresses: ['192.168.20.20'], name: 'b' });
  const peerOfA = { name: 'shanghai', endpoint: `127.0.0.1:${pb}`, routes: ['192.168.20.0/24'] };
  const a = new Endpoint(
    parseConfig({
      interface: { name: 'ferryA', address: ['10.0.0.1/30'], mtu: 1400 },
      listen: `127.0.0.1:${pa}`,
      stack: { address: ['10.0.0.254'] },
      peers: [peerOfA],
    }),
    { device: hostA.link, warmUp: 0 },
  );
  const b = new Endpoint(
    parseConfig({
      interface: { name: 'ferryB', address: ['10.0.0.2/30'], mtu: 1400 },
      listen: `127.0.0.1:${pb}`,
      stack: { address: ['10.0.1.254'] },
      peers: [{ name: 'beijing', endpoint: `127.0.0.1:${pa}`, routes: ['192.168.10.0/24', '10.0.0.254/32'] }],
    }),
    { device: hostB.link, warmUp: 0 },
  );
  await a.start();
  await b.start();
  cleanups.push(async () => {
    await a.stop();
    await b.stop();
    await hostA.close();
    await hostB.close();
    expect(a.pools.live).toBe(0);
    expect(b.pools.live).toBe(0);
  });
  return { a, b, hostA, hostB, pa, pb };
}

/** A plain UDP socket on loopback collecting what arrives. */
async function listener(): Promise<{ port: number; got: Buffer[]; sock: dgram.Socket }> {
  const sock = dgram.createSocket('udp4');
  const got: Buffer[] = [];
  sock.on('message', (m) => got.push(m));
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise<void>((r) => sock.close(() => r())));
  return { port: sock.address().port, got, sock };
}

function bindingUpdate(): Buffer {
  const b = Buffer.alloc(64);
  const n = emitControl(b, 0, { ctype: CTYPE_BINDING_UPDATE, senderId: 7, counter: Date.now() * 1000, body: Buffer.alloc(12, 1) });
  return b.subarray(0, n);
}

describe('data plane boundary, in-thread', () => {
  it('names its path', async () => {
    const { a } = await twoSites();
    expect(a.dataplanePath).toBe(`memory (${a.device!.name})`);
    expect(a.snapshot().dataplane).toBe(a.dataplanePath);
  });

  it('removePeer takes its routes and source prefixes away; addPeer brings a peer back at run time', async () => {
    const { a, hostA, pb } = await twoSites();
    expect(await hostA.ping('192.168.20.20')).toBeGreaterThan(0);
    a.removePeer(0);
    expect(a.peers[0]).toBeUndefined();
    expect(a.router.list({ table: 'all' }).some((id) => a.router.textOf(id)?.includes('shanghai'))).toBe(false);
    const noRoute = a.drops.get(DropReason.NoRoute);
    await expect(hostA.ping('192.168.20.20', 56, 300)).rejects.toThrow(/no reply/);
    expect(a.drops.get(DropReason.NoRoute)).toBeGreaterThan(noRoute);
    const prefix = parseConfig({
      interface: { name: 'x', address: ['10.9.0.1/30'] },
      peers: [{ name: 'p', endpoint: '127.0.0.1:1', routes: ['192.168.20.0/24'] }],
    }).peers[0]!.routes;
    const index = a.addPeer({ name: 'shanghai2', routes: prefix, mtu: 1400, keepalive: null, key: null, mss: null, endpoint: { family: 4, address: LOOP, port: pb } });
    expect(index).toBe(0); // the hole is reused
    expect(a.peers[0]!.name).toBe('shanghai2');
    expect(await hostA.ping('192.168.20.20')).toBeGreaterThan(0);
    expect(a.snapshot().peers.map((p) => p.name)).toEqual(['shanghai2']);
  });

  it('addRoute / removeRoute change forwarding at once', async () => {
    const { a, hostA } = await twoSites();
    const id = a.addRoute({ prefix: '192.168.20.0/25', type: 'blackhole' });
    await expect(hostA.ping('192.168.20.20', 56, 300)).rejects.toThrow(/no reply/);
    expect(a.drops.get(DropReason.RouteBlackhole)).toBeGreaterThan(0);
    a.removeRoute(id);
    expect(await hostA.ping('192.168.20.20')).toBeGreaterThan(0);
  });

  it('setPeerEndpoint moves a peer: traffic follows the one record', async () => {
    const { a, hostA } = await twoSites();
    const l = await listener();
    a.setPeerEndpoint(0, { family: 4, address: LOOP, port: l.port });
    expect(a.peers[0]!.endpointText).toBe(`127.0.0.1:${l.port}`);
    await expect(hostA.ping('192.168.20.20', 56, 300)).rejects.toThrow(/no reply/);
    expect(await until(() => l.got.length > 0)).toBe(true);
    expect(l.got[0]![0]! >> 4).toBe(4); // variant 1: the inner IPv4 packet
  });

  it('sendControl to an underlay address; bicast copies until its time is up', async () => {
    const { a, hostA } = await twoSites();
    const l = await listener();
    const msg = bindingUpdate();
    expect(a.sendControl(msg, { family: 4, address: LOOP, port: l.port })).toBe(DropReason.None);
    expect(await until(() => l.got.length === 1)).toBe(true);
    expect(Buffer.compare(l.got[0]!, msg)).toBe(0);

    a.bicast(0, { family: 4, address: LOOP, port: l.port }, Date.now() + 60_000);
    expect(await hostA.ping('192.168.20.20')).toBeGreaterThan(0); // the original still goes to the peer
    expect(await until(() => l.got.length >= 2)).toBe(true);
    expect(l.got[1]![0]! >> 4).toBe(4);
    a.bicast(0, null, 0);
    const n = l.got.length;
    expect(await hostA.ping('192.168.20.20')).toBeGreaterThan(0);
    await sleep(100);
    expect(l.got.length).toBe(n);
  });

  it('punts control messages up with their source and peer; without a listener they count as before', async () => {
    const { a, b, pb } = await twoSites();
    const msg = bindingUpdate();
    // no listener: dropped and counted (a binding update is no keepalive)
    b.sendControl(msg, 0);
    expect(await until(() => a.drops.get(DropReason.BadControlMessage) === 1)).toBe(true);

    const seen: ControlDatagram[] = [];
    a.on('control', (m) => seen.push(m));
    b.sendControl(msg, 0);
    expect(await until(() => seen.length === 1)).toBe(true);
    expect(seen[0]!.peer).toBe(0);
    expect(seen[0]!.from).toEqual({ family: 4, address: LOOP, port: pb });
    expect(Buffer.compare(Buffer.from(seen[0]!.bytes), msg)).toBe(0);

    // from an address:port that is no peer's endpoint: peer -1 (a mobile node's new care-of address)
    const l = await listener();
    l.sock.send(msg, Number(a.snapshot().listen.split(':')[1]), '127.0.0.1');
    expect(await until(() => seen.length === 2)).toBe(true);
    expect(seen[1]!.peer).toBe(-1);
    expect(seen[1]!.from.port).toBe(l.port);
    expect(a.drops.get(DropReason.BadControlMessage)).toBe(1);
  });
});
