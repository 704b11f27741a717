/**
 * Pipeline unit tests: an Endpoint built (not started) around a MemoryDevice and a recording
 * transport, fed real kernel packets (test/fixtures/kernel). 192.168.10.1 / fd00:10::1 is the
 * kernel side (TUN), 192.168.20.0/24 / fd00:20::/64 are behind peer 0 ("shanghai").
 */
import { describe, expect, it } from 'vitest';
import { DropReason } from '../../src/base/drop-reason.ts';
import type { PacketBuffer } from '../../src/base/pool.ts';
import { ControlSender } from '../../src/tunnel/control.ts';
import { verify } from '../../src/wire/checksum.ts';
import { ControlMessage, controlLength, KEEPALIVE_BODY_LEN } from '../../src/wire/gue.ts';
import { Icmpv4Packet } from '../../src/wire/icmpv4.ts';
import { Ipv4Packet } from '../../src/wire/ipv4.ts';
import { TcpPacket } from '../../src/wire/tcp.ts';
import { detachedEndpoint } from '../support/endpoint-harness.ts';
import { kernelFixture } from '../support/pcap.ts';

interface Sent {
  peer: number;
  bytes: Buffer;
}

function setup(extra: Record<string, unknown> = {}, peerExtra: Record<string, unknown> = {}) {
  const cfg = {
    interface: { name: 'ferry0', address: ['192.168.10.1/24', 'fd00:10::1/64'], mtu: 1400 },
    listen: '127.0.0.1:6080',
    stack: { address: ['10.0.0.254', 'fd00::254'] },
    peers: [
      { name: 'shanghai', endpoint: '127.0.0.1:6081', routes: ['192.168.20.0/24', 'fd00:20::/64'], ...peerExtra },
      { name: 'hangzhou', endpoint: '127.0.0.1:6082', routes: ['192.168.30.0/24', 'fd00:30::/64'] },
    ],
    routes: ['unreachable 10.99.0.0/16', 'prohibit 10.98.0.0/16', 'blackhole 10.97.0.0/16', 'unreachable fd00:99::/32'],
    icmpRateLimit: { rate: 1, burst: 5 },
    ...extra,
  };
  const sent: Sent[] = [];
  const { ep, dev } = detachedEndpoint(cfg, (p, peer) => sent.push({ peer, bytes: Buffer.from(p.bytes()) }));
  const pool = ep.pools.small;
  const pkt = (bytes: Uint8Array, tag = 0): PacketBuffer => {
    const p = pool.acquire()!;
    p.fill(bytes);
    p.tag = tag;
    return p;
  };
  const fromDevice = (bytes: Uint8Array) => ep.pipeline.fromDevice([pkt(bytes)], 1);
  const fromPeer = (bytes: Uint8Array, peer: number) => ep.pipeline.fromTransport([pkt(bytes, peer)], 1);
  const drops = (r: DropReason) => ep.drops.get(r);
  const written = () => dev.takeWritten();
  return { ep, sent, fromDevice, fromPeer, drops, written, done: () => expect(ep.pools.live).toBe(0) };
}

/** A copy of the fixture packet with new addresses and fixed header checksum. */
function v4(name: string, src?: string, dst?: string, ttl?: number): Buffer {
  const b = Buffer.from(kernelFixture(name)[0]!);
  const ip = new Ipv4Packet(b, 0, b.length);
  const toNum = (s: string) => s.split('.').reduce((a, x) => a * 256 + Number(x), 0);
  if (src) ip.rewriteSrcAddr(toNum(src));
  if (dst) ip.rewriteDstAddr(toNum(dst));
  if (ttl !== undefined) {
    b[8] = ttl;
    ip.fillChecksum();
  }
  return b;
}

describe('pipeline: device -> peer', () => {
  it('routes a kernel ping to the peer owning the destination, bytes unchanged (GUE variant 1)', () => {
    const t = setup();
    const ping = kernelFixture('ping4')[0]!;
    t.fromDevice(ping);
    expect(t.sent).toHaveLength(1);
    expect(t.sent[0]!.peer).toBe(0);
    expect(t.sent[0]!.bytes.equals(ping)).toBe(true);
    t.fromDevice(kernelFixture('ping6')[0]!);
    expect(t.sent[1]!.peer).toBe(0);
    t.done();
  });

  it('no route from the device: ICMP net unreachable back into the device; v6 no route', () => {
    const t = setup();
    t.fromDevice(v4('ping4', undefined, '172.16.1.1'));
    const w = t.written();
    expect(w).toHaveLength(1);
    const ip = new Ipv4Packet(w[0]!, 0, w[0]!.length);
    expect(ip.validate()).toBe(DropReason.None);
    expect(ip.dstAddr).toBe(0xc0a80a01); // back to 192.168.10.1
    const ic = new Icmpv4Packet(w[0]!, 20, w[0]!.length - 20);
    expect([ic.type, ic.code]).toEqual([3, 0]);
    expect(t.drops(DropReason.NoRoute)).toBe(1);
    // IPv6: ICMPv6 destination unreachable, no route (1/0), from our v6 address.
    const p6 = Buffer.from(kernelFixture('ping6')[0]!);
    p6[24] = 0xfd;
    p6[25] = 0x99; // fd99:... : no route
    t.fromDevice(p6);
    const w6 = t.written();
    expect(w6).toHaveLength(1);
    expect([w6[0]![40], w6[0]![41]]).toEqual([1, 0]);
    t.done();
  });

  it('route types: unreachable -> host unreachable, prohibit -> admin prohibited, blackhole -> silent', () => {
    const t = setup();
    t.fromDevice(v4('ping4', undefined, '10.99.1.1'));
    t.fromDevice(v4('ping4', undefined, '10.98.1.1'));
    t.fromDevice(v4('ping4', undefined, '10.97.1.1'));
    const w = t.written();
    expect(w.map((b) => [b[20], b[21]])).toEqual([
      [3, 1],
      [3, 13],
    ]);
    expect(t.drops(DropReason.RouteBlackhole)).toBe(1);
    t.done();
  });

  it('rate-limits ICMP errors with the token bucket', () => {
    const t = setup();
    for (let i = 0; i < 20; i++) t.fromDevice(v4('ping4', undefined, '172.16.1.1'));
    expect(t.written()).toHaveLength(5); // burst 5, 1/s
    expect(t.drops(DropReason.IcmpRateLimited)).toBe(15);
    t.done();
  });

  it('too big for the peer: DF -> fragmentation needed with the peer MTU; DF clear -> fragments; v6 -> packet too big', () => {
    const t = setup({}, { mtu: 1300 });
    // A 1396-byte first fragment of the kernel's 4000-byte ping has DF clear: re-fragmented.
    const frag = kernelFixture('ping4-frag')[0]!;
    t.fromDevice(frag);
    expect(t.sent.length).toBe(2);
    expect(t.sent.every((s) => s.bytes.length <= 1300)).toBe(true);
    // Set DF on a big packet: ICMP frag needed, mtu 1300.
    const df = Buffer.from(frag);
    df[6] = 0x40;
    df[7] = 0;
    new Ipv4Packet(df, 0, df.length).fillChecksum();
    t.fromDevice(df);
    const w = t.written();
    expect(w).toHaveLength(1);
    const ic = new Icmpv4Packet(w[0]!, 20, w[0]!.length - 20);
    expect([ic.type, ic.code, ic.nextHopMtu]).toEqual([3, 4, 1300]);
    expect(verify(w[0]!, 20, w[0]!.length - 20)).toBe(true);
    expect(w[0]!.length).toBeLessThanOrEqual(576);
    // IPv6 1400-byte fragment: packet too big, mtu 1300.
    t.fromDevice(kernelFixture('ping6-frag')[0]!);
    const w6 = t.written();
    expect(w6).toHaveLength(1);
    expect(w6[0]![40]).toBe(2);
    expect(w6[0]!.readUInt32BE(44)).toBe(1300);
    expect(w6[0]!.length).toBeLessThanOrEqual(1280);
    t.done();
  });

  it('without a v4 stack address, ICMP errors come from another host of the TUN subnet (not the kernel\'s own)', () => {
    const t = setup({ interface: { name: 'ferry0', address: ['10.0.0.1/30'], mtu: 1400 }, stack: { address: ['fd00::254'] } });
    t.fromDevice(v4('ping4', '10.0.0.1', '172.16.1.1'));
    const w = t.written();
    expect(w).toHaveLength(1);
    expect(new Ipv4Packet(w[0]!, 0, w[0]!.length).srcAddr).toBe(0x0a000002); // 10.0.0.2
    t.done();
  });

  it('clamps the MSS of a SYN to the tunnel MTU, checksum still valid', () => {
    const t = setup({}, { mtu: 1300 });
    t.fromDevice(kernelFixture('tcp-syn4')[0]!);
    const b = t.sent[0]!.bytes;
    const tcp = new TcpPacket(b, 20, b.length - 20);
    expect(tcp.mss).toBe(1260);
    const ph = Buffer.concat([b.subarray(12, 20), Buffer.from([0, 6, 0, b.length - 20])]);
    expect(verify(Buffer.concat([ph, b.subarray(20)]), 0, ph.length + b.length - 20)).toBe(true);
    t.fromDevice(kernelFixture('tcp-syn6')[0]!);
    const b6 = t.sent[1]!.bytes;
    expect(new TcpPacket(b6, 40, b6.length - 40).mss).toBe(1240);
    t.done();
  });
});

describe('pipeline: operator routing (policy rules, ECMP)', () => {
  it('seed 002: IPv6 TCP one way, other IPv6 the other way (ip rule ipproto tcp lookup TABLE)', () => {
    const t = setup({ routes: ['::/0 dev shanghai table 100', '::/0 dev hangzhou'], rules: ['priority 100 ipproto tcp lookup 100'] });
    const retarget = (b: Buffer) => {
      const c = Buffer.from(b);
      c[24] = 0xfd;
      c[25] = 0x99; // fd99:... : only the defaults match
      return c;
    };
    t.fromDevice(retarget(kernelFixture('tcp-syn6')[0]!));
    t.fromDevice(retarget(kernelFixture('ping6')[0]!));
    t.fromDevice(retarget(kernelFixture('udp6')[0]!));
    expect(t.sent.map((s) => s.peer)).toEqual([0, 1, 1]);
    t.done();
  });

  it('ECMP over two peers: one flow keeps one path, flows spread over both', () => {
    const t = setup({ routes: ['10.50.0.0/16 nexthop dev shanghai nexthop dev hangzhou'] });
    const udp = kernelFixture('udp4')[0]!;
    const flow = (sport: number) => {
      const b = Buffer.from(udp);
      b[16] = 10;
      b[17] = 50;
      b.writeUInt16BE(sport, 20);
      new Ipv4Packet(b, 0, b.length).fillChecksum();
      return b;
    };
    for (let sport = 1000; sport < 1100; sport++) for (let k = 0; k < 3; k++) t.fromDevice(flow(sport));
    const byFlow = new Map<number, Set<number>>();
    for (const s of t.sent) {
      const sp = s.bytes.readUInt16BE(20);
      if (!byFlow.has(sp)) byFlow.set(sp, new Set());
      byFlow.get(sp)!.add(s.peer);
    }
    expect([...byFlow.values()].every((peers) => peers.size === 1)).toBe(true);
    const onFirst = t.sent.filter((s) => s.peer === 0).length / 3;
    expect(onFirst).toBeGreaterThan(25);
    expect(onFirst).toBeLessThan(75);
    t.done();
  });
});

describe('pipeline: peer -> ...', () => {
  it('delivers a packet from a peer to the device when its source is inside the peer routes', () => {
    const t = setup();
    const p = v4('ping4', '192.168.20.20', '192.168.10.1');
    t.fromPeer(p, 0);
    expect(t.written()).toHaveLength(1);
    expect(t.ep.peers[0]!.up).toBe(true);
    t.done();
  });

  it('drops a source outside the peer routes (AllowedIPs) and unknown peers', () => {
    const t = setup();
    t.fromPeer(v4('ping4', '192.168.30.30', '192.168.10.1'), 0);
    t.fromPeer(v4('ping4', '192.168.20.20', '192.168.10.1'), -1);
    expect(t.written()).toHaveLength(0);
    expect(t.drops(DropReason.SourceNotAllowed)).toBe(1);
    expect(t.drops(DropReason.UnknownPeer)).toBe(1);
    t.done();
  });

  it('hub: peer to peer only when enabled, TTL decremented, time exceeded when it runs out', () => {
    const off = setup();
    off.fromPeer(v4('ping4', '192.168.20.20', '192.168.30.30'), 0);
    expect(off.drops(DropReason.HubDisabled)).toBe(1);
    off.done();

    const t = setup({ hub: true });
    t.fromPeer(v4('ping4', '192.168.20.20', '192.168.30.30', 64), 0);
    expect(t.sent).toHaveLength(1);
    const b = t.sent[0]!.bytes;
    expect(t.sent[0]!.peer).toBe(1);
    expect(b[8]).toBe(63);
    expect(verify(b, 0, 20)).toBe(true);
    t.fromPeer(v4('ping4', '192.168.20.20', '192.168.30.30', 1), 0);
    expect(t.sent).toHaveLength(2);
    const e = t.sent[1]!;
    expect(e.peer).toBe(0); // back to the sender
    expect([e.bytes[20], e.bytes[21]]).toEqual([11, 0]);
    expect(t.drops(DropReason.TtlExpired)).toBe(1);
    t.done();
  });

  it('rejects control messages with a bad key and counts bad GUE', () => {
    const key = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    const t = setup({}, { key: key.toString('hex') });
    // Structurally valid keepalives, so that only the MAC can be what is wrong: one keyed with
    // another key, one without a MAC; then the same message with the right key is taken.
    const other = new ControlSender(0x1234);
    const b = Buffer.alloc(controlLength(KEEPALIVE_BODY_LEN, true));
    const wrong = Buffer.from(b.subarray(0, other.keepalive(b, 0, 25, Buffer.from('ffeeddccbbaa99887766554433221100', 'hex'))));
    const none = Buffer.from(b.subarray(0, other.keepalive(b, 0, 25, null)));
    for (const m of [wrong, none]) expect(new ControlMessage(m, 0, m.length).check()).toBe(DropReason.None);
    t.fromPeer(wrong, 0);
    t.fromPeer(none, 0);
    expect(t.drops(DropReason.BadAuthentication)).toBe(2);
    expect(t.drops(DropReason.BadControlMessage)).toBe(0);
    expect(t.ep.peers[0]!.up).toBe(false);
    t.fromPeer(b.subarray(0, other.keepalive(b, 0, 25, key)), 0);
    expect(t.drops(DropReason.BadAuthentication)).toBe(2);
    expect(t.ep.peers[0]!.up).toBe(true);
    t.fromPeer(Buffer.from([0xc0, 0, 0, 0]), 0);
    expect(t.drops(DropReason.BadGue)).toBe(1);
    t.done();
  });

  it('a keyless peer stays audible after a spoofed keepalive with counter 2^64-1 (issue 12)', () => {
    const t = setup();
    const real = new ControlSender(0x1234);
    const b = Buffer.alloc(controlLength(KEEPALIVE_BODY_LEN, true));
    const spoof = Buffer.from(b.subarray(0, real.keepalive(b, 0, 25, null)));
    spoof.fill(0xff, 12, 20); // the control header's counter
    t.fromPeer(spoof, 0);
    const peer = t.ep.peers[0]!;
    peer.up = false;
    for (let i = 0; i < 3; i++) t.fromPeer(b.subarray(0, real.keepalive(b, 0, 25, null)), 0);
    expect(t.drops(DropReason.ReplayedMessage)).toBe(0);
    expect(peer.up).toBe(true);
    t.done();
  });
});
