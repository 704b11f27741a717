/**
 * Child of dataplane-worker.test.ts, run inside a network namespace the test made: an Endpoint
 * on a kernel TUN (the worker data plane where the FFI loads, else whatever the environment
 * says), plain dgram sockets on 127.0.0.1 as the peer and as other underlay addresses, the
 * namespace's own kernel as the host behind the TUN. Each boundary operation is done and what
 * it did is observed from outside; prints one JSON object of observations.
 */
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import { parseConfig } from '../../src/config/config.ts';
import type { ControlDatagram } from '../../src/endpoint/dataplane.ts';
import { Endpoint } from '../../src/endpoint/endpoint.ts';
import { checksum } from '../../src/wire/checksum.ts';
import { ControlSender } from '../../src/tunnel/control.ts';
import { controlLength, CTYPE_BINDING_UPDATE, emitControl, KEEPALIVE_BODY_LEN } from '../../src/wire/gue.ts';

const LOOP = Uint8Array.of(127, 0, 0, 1);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const out: Record<string, unknown> = {};

interface Sock {
  s: dgram.Socket;
  port: number;
  got: Buffer[];
}
async function sock(): Promise<Sock> {
  const s = dgram.createSocket('udp4');
  const got: Buffer[] = [];
  s.on('message', (m) => got.push(m));
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return { s, port: s.address().port, got };
}
async function until(cond: () => boolean, ms = 3000): Promise<boolean> {
  for (let t = 0; t < ms / 20 && !cond(); t++) await sleep(20);
  return cond();
}
/** The kernel in this namespace pings `dst` once (no wait for a reply: the peer is a plain socket). */
function kernelPing(dst: string): void {
  try {
    execFileSync('ping', ['-c', '1', '-W', '0.1', dst], { stdio: 'ignore', timeout: 5000 });
  } catch {
    /* no reply expected */
  }
}
/** An ICMP echo request src -> dst (IPv4, id 0x4242, seq n). */
function echo(src: number[], dst: number[], seq: number): Buffer {
  const p = Buffer.alloc(28 + 8);
  p[0] = 0x45;
  p.writeUInt16BE(p.length, 2);
  p[8] = 64;
  p[9] = 1;
  p.set(src, 12);
  p.set(dst, 16);
  p.writeUInt16BE(checksum(p, 0, 20), 10);
  p[20] = 8;
  p.writeUInt16BE(0x4242, 24);
  p.writeUInt16BE(seq, 26);
  p.write('ipferry!', 28);
  p.writeUInt16BE(checksum(p, 20, p.length - 20), 22);
  return p;
}
const isEcho = (m: Buffer, type: number) => m.length >= 28 && m[0] === 0x45 && m[9] === 1 && m[20] === type;

const peer = await sock();
const listen = 40000 + Math.floor(Math.random() * 20000);
const ep = new Endpoint(
  parseConfig({
    interface: { name: process.argv[2] ?? 'ferryW', address: ['10.77.0.1/30'], mtu: 1400 },
    listen: `127.0.0.1:${listen}`,
    stack: { address: ['10.77.0.254'] },
    peers: [{ name: 'peer', endpoint: `127.0.0.1:${peer.port}`, routes: ['192.168.77.0/24'] }],
  }),
  { log: (l) => ((out.log as string[]) ??= []).push(l) },
);
await ep.start();
out.path = ep.dataplanePath;
try {
  // 1. TUN -> UDP: the kernel's ping to the peer's site reaches the peer, encapsulated (GUE variant 1)
  kernelPing('192.168.77.1');
  out.tunToPeer = await until(() => peer.got.some((m) => isEcho(m, 8)));

  // 2. UDP -> TUN: the peer pings the TUN's address; the kernel answers through the tunnel
  peer.got.length = 0;
  peer.s.send(echo([192, 168, 77, 5], [10, 77, 0, 1], 1), listen, '127.0.0.1');
  out.peerToTun = await until(() => peer.got.some((m) => isEcho(m, 0)));

  // 3. the endpoint's own stack (main thread) through the worker: echo to 10.77.0.254
  peer.got.length = 0;
  peer.s.send(echo([192, 168, 77, 5], [10, 77, 0, 254], 2), listen, '127.0.0.1');
  out.stackEcho = await until(() => peer.got.some((m) => isEcho(m, 0) && m[15] === 254));

  // 4. setPeerEndpoint: traffic follows
  const moved = await sock();
  ep.setPeerEndpoint(0, { family: 4, address: LOOP, port: moved.port });
  kernelPing('192.168.77.1');
  out.moved = await until(() => moved.got.some((m) => isEcho(m, 8)));

  // 5. sendControl to an address
  const other = await sock();
  const msg = Buffer.alloc(64);
  const n = emitControl(msg, 0, { ctype: CTYPE_BINDING_UPDATE, senderId: 9, counter: Date.now() * 1000, body: Buffer.alloc(12, 1) });
  ep.sendControl(msg.subarray(0, n), { family: 4, address: LOOP, port: other.port });
  out.sentControl = await until(() => other.got.some((m) => m.length === n && m[1] === CTYPE_BINDING_UPDATE));

  // 6. control punted up: from the peer's endpoint (peer 0) and from an unknown one (-1)
  const seen: ControlDatagram[] = [];
  ep.on('control', (m) => seen.push(m));
  await sleep(50); // the listener turns punting on in the worker
  moved.s.send(msg.subarray(0, n), listen, '127.0.0.1');
  other.s.send(msg.subarray(0, n), listen, '127.0.0.1');
  await until(() => seen.length >= 2);
  out.control = seen.map((m) => ({ peer: m.peer, port: m.from.port, len: m.bytes.length })).sort((a, b) => a.peer - b.peer);
  out.controlPorts = { peer: moved.port, other: other.port, len: n };

  // 6b. data from an address:port that is no peer's: dropped, and reported once as an event (the
  // data plane's rate-limited events reach the endpoint's log on both paths)
  other.s.send(echo([192, 168, 77, 5], [10, 77, 0, 1], 3), listen, '127.0.0.1');
  other.s.send(echo([192, 168, 77, 5], [10, 77, 0, 1], 4), listen, '127.0.0.1');
  const unknown = new RegExp(`datagram from unknown source 127\\.0\\.0\\.1:${other.port}, dropped`);
  out.unknownSourceLines = (await until(() => (out.log as string[]).some((l) => unknown.test(l)))) ? (out.log as string[]).filter((l) => unknown.test(l)).length : 0;

  // 7. addRoute blackhole / removeRoute
  const id = ep.addRoute({ prefix: '192.168.77.0/25', type: 'blackhole' });
  moved.got.length = 0;
  kernelPing('192.168.77.1');
  await sleep(200);
  const blackholed = moved.got.length;
  const afterAdd = (await ep.snapshotAsync('stats')).stats.drops.RouteBlackhole ?? 0;
  ep.removeRoute(id);
  kernelPing('192.168.77.1');
  out.route = { blackholed, drops: afterAdd, afterRemove: await until(() => moved.got.some((m) => isEcho(m, 8))) };

  // 8. removePeer / addPeer
  ep.removePeer(0);
  moved.got.length = 0;
  kernelPing('192.168.77.1');
  await sleep(200);
  const whileRemoved = moved.got.length;
  const noRoute = (await ep.snapshotAsync('stats')).stats.drops.NoRoute ?? 0;
  const routes = parseConfig({ interface: { name: 'x', address: ['10.9.0.1/30'] }, peers: [{ name: 'p', endpoint: '127.0.0.1:1', routes: ['192.168.77.0/24'] }] }).peers[0]!.routes;
  const index = ep.addPeer({ name: 'peer2', routes, mtu: 1400, keepalive: null, key: null, mss: null, endpoint: { family: 4, address: LOOP, port: moved.port } });
  kernelPing('192.168.77.1');
  out.peers = { whileRemoved, noRoute, index, afterAdd: await until(() => moved.got.some((m) => isEcho(m, 8))), names: (await ep.snapshotAsync('peers')).peers.map((p) => p.name) };

  // 9. bicast to a second endpoint
  const second = await sock();
  ep.bicast(index, { family: 4, address: LOOP, port: second.port }, Date.now() + 60_000);
  moved.got.length = 0;
  kernelPing('192.168.77.1');
  out.bicast = { original: await until(() => moved.got.some((m) => isEcho(m, 8))), copy: await until(() => second.got.some((m) => isEcho(m, 8))) };

  // 10. counters through snapshotAsync
  const snap = await ep.snapshotAsync('all');
  out.snapshot = { dataplane: snap.dataplane, tunRx: snap.stats.tunRx.packets, udpRx: snap.stats.udpRx.packets, routes: snap.routes.length };
  // 10b. the route list a page at a time (what show routes streams): the snapshot's routes, in pages
  const paged: string[] = [];
  let pages = 0;
  for await (const page of ep.routePages(2)) {
    pages++;
    for (const r of page) paged.push(r.text);
  }
  out.routePages = { pages, paged: paged.sort(), all: snap.routes.map((r) => r.text).sort() };

  // 10c. a send the kernel refuses (the namespace has no route to 192.0.2.1: ENETUNREACH, nothing
  // leaves): counted by cause, one log line naming the peer, the data plane runs on
  ep.setPeerEndpoint(index, { family: 4, address: Uint8Array.from([192, 0, 2, 1]), port: 6080 });
  kernelPing('192.168.77.1');
  kernelPing('192.168.77.1');
  await sleep(300);
  const extra = (await ep.snapshotAsync('stats')).stats.extra ?? {};
  out.sendErrors = {
    other: extra.udpTxOtherErrors ?? 0,
    lines: (out.log as string[]).filter((l) => /udp: sending to peer peer2 .*failed: ENETUNREACH/.test(l)).length,
  };
  for (const s of [moved, other, second]) s.s.close();
} finally {
  await ep.stop();
  peer.s.close();
}
out.poolLiveAfter = ep.pools.live;
out.workerPoolLiveAfter = ep.snapshot('stats').stats.poolLive;

// Roaming of a keyed peer: an authentic, fresh keepalive from a new address moves the peer; a
// replay of one the data plane already accepted (from elsewhere) does not, also when the data
// plane is a worker (the control plane's replay windows follow the worker's).
{
  const key = Buffer.alloc(32, 7);
  const home = await sock();
  const listenK = listen + 1;
  const k = new Endpoint(
    parseConfig({
      interface: { name: `${process.argv[2] ?? 'ferryW'}k`, address: ['10.78.0.1/30'], mtu: 1400 },
      listen: `127.0.0.1:${listenK}`,
      peers: [{ name: 'keyed', endpoint: `127.0.0.1:${home.port}`, routes: ['192.168.78.0/24'], key: key.toString('hex') }],
    }),
    { log: (l) => ((out.logK as string[]) ??= []).push(l) },
  );
  await k.start();
  try {
    const sender = new ControlSender(0x5eed);
    const keepalive = (): Buffer => {
      const b = Buffer.alloc(controlLength(KEEPALIVE_BODY_LEN + 4, true) + 16);
      return b.subarray(0, sender.keepalive(b, 0, 1, key));
    };
    const first = keepalive();
    home.s.send(first, listenK, '127.0.0.1');
    await until(() => k.peers[0]!.up);
    await sleep(100); // the worker copies the accepted keepalive up
    const thief = await sock();
    thief.s.send(first, listenK, '127.0.0.1'); // a replay from elsewhere
    await sleep(300);
    const afterReplay = k.peers[0]!.port;
    const roamer = await sock();
    roamer.s.send(keepalive(), listenK, '127.0.0.1'); // the peer itself, from a new address
    await until(() => k.peers[0]!.port === roamer.port);
    out.roaming = { home: home.port, afterReplay, afterRoam: k.peers[0]!.port, roamer: roamer.port };
    for (const x of [thief, roamer]) x.s.close();
  } finally {
    await k.stop();
    home.s.close();
  }
}
process.stdout.write(`${JSON.stringify(out)}\n`);
