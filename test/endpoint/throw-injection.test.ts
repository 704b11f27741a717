/**
 * Exactly-once release under exceptions (issue 12, point 2): a throw injected at every call of
 * every stage of the pipeline — the batch entry, IPv4/IPv6 validation, burst and single routing,
 * the source check, control handling, ICMP error building, fragmentation, the MSS clamp, device
 * writes, the local stack, transport sends and the event listeners — must leave the pool's live
 * count at exactly zero with no double release, be counted and reported, and the next batch must
 * carry exactly the traffic a clean run carries.
 *
 * Each stage is hit at its 1st, 2nd, ... call within the two batches below (one from the device,
 * one from the peers), so every position a throw can take in those batches is tried.
 */
import { describe, expect, it } from 'vitest';
import { DropReason } from '../../src/base/drop-reason.ts';
import type { PacketBuffer } from '../../src/base/pool.ts';
import type { Endpoint } from '../../src/endpoint/endpoint.ts';
import type { MemoryDevice } from '../../src/device/memory-device.ts';
import { ControlSender } from '../../src/tunnel/control.ts';
import { controlLength, KEEPALIVE_BODY_LEN } from '../../src/wire/gue.ts';
import { Ipv4Packet } from '../../src/wire/ipv4.ts';
import { detachedEndpoint } from '../support/endpoint-harness.ts';
import { kernelFixture } from '../support/pcap.ts';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Any = Record<string, any>;

const CONFIG = {
  interface: { name: 'ferry0', address: ['192.168.10.1/24', 'fd00:10::1/64'], mtu: 1400 },
  listen: '127.0.0.1:6080',
  stack: { address: ['10.0.0.254', 'fd00::254'] },
  hub: true,
  peers: [
    { name: 'shanghai', endpoint: '127.0.0.1:6081', routes: ['192.168.20.0/24', 'fd00:20::/64'], mtu: 1300 },
    { name: 'hangzhou', endpoint: '127.0.0.1:6082', routes: ['192.168.30.0/24', 'fd00:30::/64'] },
  ],
  icmpRateLimit: { rate: 1_000_000, burst: 1_000_000, perDestinationMs: 0 },
};

const ip4 = (s: string) => s.split('.').reduce((a, x) => a * 256 + Number(x), 0);

/** A copy of a kernel fixture with new addresses / TTL / DF, header checksum fixed. */
function v4(name: string, opts: { src?: string; dst?: string; ttl?: number; df?: boolean } = {}): Buffer {
  const b = Buffer.from(kernelFixture(name)[0]!);
  const ip = new Ipv4Packet(b, 0, b.length);
  if (opts.src) ip.rewriteSrcAddr(ip4(opts.src));
  if (opts.dst) ip.rewriteDstAddr(ip4(opts.dst));
  if (opts.ttl !== undefined) b[8] = opts.ttl;
  if (opts.df) {
    b[6] = 0x40;
    b[7] = 0;
  }
  ip.fillChecksum();
  return b;
}

function v6dst(name: string, hi: number): Buffer {
  const b = Buffer.from(kernelFixture(name)[0]!);
  b[24] = 0xfd;
  b[25] = hi; // fdXX:... (v6 fixtures go fd00:10::1 -> fd00:20::...)
  return b;
}

/** Packets the kernel writes into the TUN: every device-side path once. */
const FROM_DEVICE: Buffer[] = [
  kernelFixture('ping4')[0]!, // to peer 0
  kernelFixture('ping6')[0]!, // to peer 0
  v4('ping4', { dst: '172.16.1.1' }), // no route: ICMP unreachable back into the device
  v4('ping4-frag', { df: true }), // DF, above the peer MTU: fragmentation needed
  kernelFixture('ping4-frag')[0]!, // DF clear, above the peer MTU: two fragments
  v4('ping4', { dst: '10.0.0.254' }), // the endpoint's stack: echo reply back into the device
  kernelFixture('tcp-syn4')[0]!, // MSS clamp
  Buffer.from([0x75, 0, 0, 20]), // garbage
  v4('udp4', { dst: '10.0.0.254' }), // the stack: a bound socket (port of udp4)
  kernelFixture('ping6-frag')[0]!, // above the peer MTU: packet too big
  v4('ping4', { dst: '192.168.30.30' }), // to peer 1
  v6dst('ping6', 0x99), // no route v6
];

/** Datagrams from the peers: [bytes, peer index]; keepalives are made fresh per run. */
function fromPeers(ka: ControlSender): [Buffer, number][] {
  const kb = Buffer.alloc(controlLength(KEEPALIVE_BODY_LEN, true));
  const keepalive = Buffer.from(kb.subarray(0, ka.keepalive(kb, 0, 25, null)));
  return [
    [v4('ping4', { src: '192.168.20.20', dst: '192.168.10.1' }), 0], // to the device
    [v4('ping4', { src: '192.168.20.20', dst: '192.168.10.7' }), 0],
    [v4('ping4', { src: '192.168.30.30', dst: '192.168.10.1' }), 1], // another ingress: the burst is cut
    [v4('ping4', { src: '192.168.20.20', dst: '192.168.30.30', ttl: 64 }), 0], // hub: to peer 1
    [v4('ping4', { src: '192.168.20.20', dst: '192.168.30.30', ttl: 1 }), 0], // hub: time exceeded back
    [keepalive, 0],
    [v4('ping4', { src: '192.168.30.30', dst: '192.168.10.1' }), 0], // source not allowed
    [v4('ping4', { src: '192.168.20.20', dst: '192.168.10.1' }), -1], // unknown peer
    [v4('ping4', { src: '192.168.20.20', dst: '10.0.0.254' }), 0], // the stack: reply to peer 0
    [Buffer.from([0xc0, 1, 2, 3]), 0], // bad GUE
    [v4('ping4', { src: '192.168.30.30', dst: '192.168.10.9' }), 1],
  ];
}

interface Rig {
  ep: Endpoint;
  dev: MemoryDevice;
  sent: number[];
  /** Throw from the stand-in transport at its n-th send from now (after taking the slot, as the contract says). */
  throwOnSend: number;
  /** Errors reported as 'internal-error', by where. */
  reported: string[];
  /** One run: the device batch, then the peers' batch. Returns [datagrams sent, packets written]. */
  run(): [number, number];
  live(): number;
  badReleases(): number;
}

function rig(): Rig {
  const r = { sent: [] as number[], throwOnSend: 0, reported: [] as string[] } as Rig;
  const { ep, dev } = detachedEndpoint(CONFIG);
  // A transport that, like the real ones, owns the slot from the call on: released, then thrown.
  (ep.pipeline as unknown as Any).transport = {
    send(p: PacketBuffer, peer: number) {
      r.sent.push(peer);
      p.release();
      if (r.throwOnSend > 0 && --r.throwOnSend === 0) throw new Error('injected: transport send');
      return DropReason.None;
    },
  };
  ep.on('internal-error', (_e, where) => r.reported.push(where));
  const sock = ep.stack.udpBind(FROM_DEVICE[8]!.readUInt16BE(22)); // the udp4 fixture's destination port (20-byte IPv4 header)
  sock.on('message', () => {});
  const ka = new ControlSender(0x4242);
  const pool = ep.pools.small;
  const pkt = (bytes: Uint8Array, tag = 0): PacketBuffer => {
    const p = pool.acquire()!;
    p.fill(bytes);
    p.tag = tag;
    return p;
  };
  r.ep = ep;
  r.dev = dev;
  r.run = () => {
    const s0 = r.sent.length;
    ep.pipeline.fromDevice(FROM_DEVICE.map((b) => pkt(b)), FROM_DEVICE.length);
    const peers = fromPeers(ka);
    ep.pipeline.fromTransport(peers.map(([b, t]) => pkt(b, t)), peers.length);
    return [r.sent.length - s0, dev.takeWritten().length];
  };
  r.live = () => ep.pools.live;
  r.badReleases = () => ep.pools.small.badReleases + ep.pools.large.badReleases;
  return r;
}

/** Make obj[method] throw at its k-th call from now; returns [restore, did it throw]. */
function throwAt(obj: Any, method: string, k: number): [() => void, () => boolean] {
  const own = Object.prototype.hasOwnProperty.call(obj, method);
  const orig = obj[method];
  let n = 0;
  let threw = false;
  obj[method] = function (this: unknown, ...args: unknown[]) {
    if (++n === k) {
      threw = true;
      throw new Error(`injected: ${method} #${k}`);
    }
    return orig.apply(this, args);
  };
  return [() => (own ? (obj[method] = orig) : delete obj[method]), () => threw];
}

/** Stages: the object whose method throws, as the pipeline reaches it. */
const STAGES: [string, (ep: Endpoint) => [Any, string]][] = [
  ['batch entry (clock)', (ep) => [(ep.pipeline as unknown as Any).o, 'now']],
  ['validate IPv4', (ep) => [(ep.pipeline as unknown as Any).v4, 'validate']],
  ['validate IPv6', (ep) => [(ep.pipeline as unknown as Any).v6, 'check']],
  ['route (burst)', (ep) => [ep.router as unknown as Any, 'lookupBatch']],
  ['route (one packet)', (ep) => [ep.router as unknown as Any, 'lookup']],
  ['source check', (ep) => [ep.allowed as unknown as Any, 'lookup']],
  ['control handling', (ep) => [(ep.pipeline as unknown as Any).controlIn, 'receive']],
  ['ICMP error build', (ep) => [(ep.pipeline as unknown as Any).o.icmp, 'build']],
  ['fragmenter', (ep) => [(ep.pipeline as unknown as Any).o.fragmenter, 'fragmentV4']],
  ['MSS clamp', (ep) => [(ep.pipeline as unknown as Any).tcp, 'clampMss']],
  ['device write', (ep) => [(ep.pipeline as unknown as Any).device, 'write']],
  ['local stack', (ep) => [ep.stack as unknown as Any, 'inputV4']],
  ['local stack reassembly', (ep) => [ep.stack.reassembler as unknown as Any, 'submitV4']],
];

describe('a throw at every call of every stage: pool back to zero, counted, traffic continues (issue 12)', () => {
  // What a clean run carries once the peers are up.
  const ref = rig();
  ref.run();
  const clean = ref.run();
  it('the clean run exercises every path (reference)', () => {
    expect(clean[0]).toBeGreaterThanOrEqual(8);
    expect(clean[1]).toBeGreaterThanOrEqual(8);
    expect(ref.live()).toBe(0);
    expect(ref.ep.pipeline.errors).toBe(0);
    expect(ref.reported).toEqual([]);
  });

  it.each(STAGES)('%s', (_name, target) => {
    const r = rig();
    r.run();
    let positions = 0;
    for (let k = 1; k < 200; k++) {
      const errorsBefore = r.ep.pipeline.errors + r.ep.stack.errors;
      const [obj, method] = target(r.ep);
      const [restore, threw] = throwAt(obj, method, k);
      try {
        r.run();
      } finally {
        restore();
      }
      expect(r.live(), `live slots after a throw at call ${k}`).toBe(0);
      expect(r.badReleases(), `double releases after a throw at call ${k}`).toBe(0);
      if (!threw()) break; // past the last call of this stage in one run
      positions++;
      expect(r.ep.pipeline.errors + r.ep.stack.errors).toBe(errorsBefore + 1);
      expect(r.reported.at(-1)).toMatch(/^(pipeline|stack)$/);
      // the next run carries what a clean one does
      expect(r.run()).toEqual(clean);
      expect(r.live()).toBe(0);
    }
    expect(positions).toBeGreaterThan(0);
    expect(r.ep.drops.get(DropReason.InternalError)).toBeGreaterThan(0);
    expect(r.ep.stats().extra!.internalErrors).toBe(positions);
  });

  it('transport send (the slot taken, then a throw), at every send', () => {
    const r = rig();
    r.run();
    for (let k = 1; k <= clean[0]; k++) {
      r.throwOnSend = k;
      r.run();
      r.throwOnSend = 0;
      expect(r.live()).toBe(0);
      expect(r.badReleases()).toBe(0);
      expect(r.run()).toEqual(clean);
    }
    expect(r.ep.pipeline.errors).toBe(clean[0]);
  });

  it('local stack input (the packet taken, then a throw), at every call', () => {
    const r = rig();
    r.run();
    const pipe = r.ep.pipeline as unknown as Any;
    const stack = r.ep.stack;
    let calls = 0;
    for (let k = 1; ; k++) {
      let n = 0;
      pipe.local = {
        input(p: PacketBuffer) {
          if (++n !== k) return stack.input(p);
          p.release(); // took ownership, as input() does, then failed
          throw new Error('injected: stack input');
        },
      };
      r.run();
      pipe.local = stack;
      expect(r.live()).toBe(0);
      expect(r.badReleases()).toBe(0);
      if (n < k) break;
      calls++;
      expect(r.run()).toEqual(clean);
    }
    expect(calls).toBeGreaterThanOrEqual(3);
    expect(r.ep.pipeline.errors).toBe(calls);
  });

  it("listeners: a throwing 'peer-up' or socket 'message' listener costs no packet and is counted", () => {
    const r = rig();
    r.run();
    const sock = r.ep.stack.udpBind(9999);
    let after = 0;
    r.ep.on('peer-up', () => {
      throw new Error('listener bug');
    });
    r.ep.on('peer-up', () => after++); // the listeners after it still run
    (r.ep.stack as unknown as Any).sockets.get(FROM_DEVICE[8]!.readUInt16BE(22)).on('message', () => {
      throw new Error('app bug');
    });
    for (let i = 0; i < 3; i++) {
      for (const p of r.ep.peers) if (p) p.up = false;
      expect(r.run()).toEqual(clean);
      expect(r.live()).toBe(0);
    }
    sock.close();
    expect(after).toBe(6);
    expect(r.ep.pipeline.errors).toBe(0);
    const extra = r.ep.stats().extra!;
    expect(extra.listenerErrors).toBe(6 + 3);
    expect(extra.internalErrors).toBe(0);
    expect(r.reported.filter((w) => w === "listener 'peer-up'")).toHaveLength(6);
    expect(r.reported.filter((w) => w === "listener 'message'")).toHaveLength(3);
  });
});
