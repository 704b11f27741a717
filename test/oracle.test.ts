/**
 * Independent oracle: packets this project built — our IPv4/IPv6 fragments (and the datagrams we
 * reassembled from kernel fragments), ICMP errors from the wire builders (fragmentation needed
 * with the MTU, time exceeded in transit and in reassembly, port unreachable, packet too big,
 * parameter problem), and packets whose TTL / hop limit / TCP MSS we rewrote with incremental
 * checksums — written to a pcap and dissected by tshark with every checksum check on and
 * reassembly on. Any malformed packet, bad checksum, error-level expert item or fragment tshark
 * could not reassemble fails the test. Skips (with the reason) when tshark is not installed.
 */
import { describe, expect, it } from 'vitest';
import { DropReason } from '../src/base/drop-reason.ts';
import { Fragmenter } from '../src/frag/fragment.ts';
import { Reassembler } from '../src/frag/reassembly.ts';
import { PacketPools, type PacketBuffer } from '../src/base/pool.ts';
import { checksum } from '../src/wire/checksum.ts';
import { buildIcmpv4Error } from '../src/wire/icmpv4.ts';
import { buildIcmpv6Error } from '../src/wire/icmpv6-error.ts';
import { Ipv4Packet } from '../src/wire/ipv4.ts';
import { Ipv6Packet } from '../src/wire/ipv6.ts';
import { TcpPacket } from '../src/wire/tcp.ts';
import { kernelFixture } from './support/pcap.ts';
import { tsharkAvailable, tsharkCheckPackets, TSHARK_MISSING } from './support/tshark.ts';

const ROUTER4 = 0xc0a80a01; // 192.168.10.1
const ROUTER6 = Buffer.from('fd000010000000000000000000000001', 'hex');

function reassembleFixture(pools: PacketPools, name: string, quotes: Buffer[]): PacketBuffer {
  const r = new Reassembler({ pools, now: () => 0 });
  let out: PacketBuffer | null = null;
  for (const f of kernelFixture(name)) {
    const got = f[0]! >> 4 === 4 ? r.submitV4(f, 0, f.length) : r.submitV6(f, 0, f.length);
    if (got) out = got;
  }
  expect(out, name).not.toBeNull();
  // And a datagram whose last fragment never comes: the engine hands us the quote at timeout.
  let t = 0;
  const r2 = new Reassembler({
    pools,
    now: () => t,
    onTimeExceeded: (_f, buf, off, len) => quotes.push(Buffer.from(buf.subarray(off, off + len))),
  });
  const first = kernelFixture(name)[0]!;
  if (first[0]! >> 4 === 4) r2.submitV4(first, 0, first.length);
  else r2.submitV6(first, 0, first.length);
  t = 120_000;
  r2.poll();
  return out!;
}

/** Copy a datagram with a new IPv4 id (so tshark does not mix two fragment sets). */
function withId4(p: Buffer, id: number): Buffer {
  const b = Buffer.from(p);
  b.writeUInt16BE(id, 4);
  b.writeUInt16BE(0, 10);
  b.writeUInt16BE(checksum(b, 0, (b[0]! & 15) * 4), 10);
  return b;
}

function fragments(f: Fragmenter, p: Buffer, mtu: number): Buffer[] {
  const r = p[0]! >> 4 === 4 ? f.fragmentV4(p, 0, p.length, mtu) : f.fragmentV6(p, 0, p.length, mtu);
  expect(r).toBe(DropReason.None);
  expect(f.count).toBeGreaterThan(1);
  const out: Buffer[] = [];
  for (let i = 0; i < f.count; i++) out.push(Buffer.from(f.out[i]!.bytes()));
  f.releaseAll();
  return out;
}

describe('tshark oracle', () => {
  it('our fragments, ICMP errors and rewritten packets dissect clean with checksum validation on', (ctx) => {
    if (!tsharkAvailable()) {
      console.warn(TSHARK_MISSING);
      ctx.skip();
      return;
    }
    const pools = new PacketPools({ small: { slots: 256 }, large: { slots: 8 } });
    const frag = new Fragmenter({ pool: pools });
    const packets: Array<{ what: string; data: Buffer }> = [];
    const add = (what: string, data: Buffer | Buffer[]) => {
      for (const d of Array.isArray(data) ? data : [data]) packets.push({ what, data: d });
    };
    const quotes: Buffer[] = [];

    // --- reassembled kernel datagrams, and our fragments of them
    const d4 = reassembleFixture(pools, 'ping4-frag', quotes);
    const u4 = reassembleFixture(pools, 'udp4-frag', quotes);
    const d6 = reassembleFixture(pools, 'ping6-frag', quotes);
    const u6x = reassembleFixture(pools, 'udp6-exthdrs-frag', quotes);
    add('reassembled ping4', Buffer.from(d4.bytes()));
    add('reassembled udp4', Buffer.from(u4.bytes()));
    add('reassembled ping6', Buffer.from(d6.bytes()));
    add('reassembled udp6 with HBH + DST', Buffer.from(u6x.bytes()));
    add('v4 fragments MTU 1400', fragments(frag, withId4(d4.bytes(), 0x1001), 1400));
    add('v4 fragments MTU 576', fragments(frag, withId4(d4.bytes(), 0x1002), 576));
    add('v4 fragments MTU 68', fragments(frag, withId4(u4.bytes(), 0x1003), 68));
    add('v6 fragments MTU 1280', fragments(frag, Buffer.from(d6.bytes()), 1280));
    add('v6 fragments MTU 1400', fragments(frag, Buffer.from(d6.bytes()), 1400));
    add('v6 fragments with HBH + DST, MTU 1280', fragments(frag, Buffer.from(u6x.bytes()), 1280));
    // A fragment fragmented again (IPv4): the pieces of the middle kernel fragment, to MTU 576,
    // together with the kernel's first and last fragments form the datagram again.
    const k4 = kernelFixture('ping4-frag').map((b) => withId4(b, 0x1004));
    add('v4 refragmented fragment', [k4[0]!, ...fragments(frag, k4[1]!, 576), k4[2]!]);

    // --- ICMP errors built by the wire builders
    const out = Buffer.alloc(1400);
    const e4 = (what: string, type: number, code: number, param: number, q: Buffer) => {
      const n = buildIcmpv4Error(out, 0, type, code, param, q, 0, q.length, ROUTER4, 64, 0x2000 + packets.length);
      expect(n, what).toBeGreaterThan(0);
      add(what, Buffer.from(out.subarray(0, n)));
    };
    const e6 = (what: string, type: number, code: number, param: number, q: Buffer) => {
      const n = buildIcmpv6Error(out, 0, type, code, param, q, 0, q.length, ROUTER6, 0);
      expect(n, what).toBeGreaterThan(0);
      add(what, Buffer.from(out.subarray(0, n)));
    };
    const udp4 = kernelFixture('udp4')[0]!;
    const udp6 = kernelFixture('udp6')[0]!;
    const big4 = Buffer.from(u4.bytes());
    big4.writeUInt16BE(big4.readUInt16BE(6) | 0x4000, 6); // DF
    big4.writeUInt16BE(0, 10);
    big4.writeUInt16BE(checksum(big4, 0, 20), 10);
    expect(frag.fragmentV4(big4, 0, big4.length, 1280)).toBe(DropReason.DontFragment);
    e4('frag needed, MTU from the fragmenter', 3, 4, frag.mtu, big4);
    e4('time exceeded in transit', 11, 0, 0, udp4);
    e4('port unreachable', 3, 3, 0, udp4);
    e4('parameter problem', 12, 0, 9, udp4);
    expect(quotes.length).toBe(4); // one per fixture: the first fragment had arrived
    for (const q of quotes) {
      if (q[0]! >> 4 === 4) e4('time exceeded in reassembly (quote from the engine)', 11, 1, 0, q);
      else e6('ICMPv6 time exceeded in reassembly (quote from the engine)', 3, 1, 0, q);
    }
    e6('packet too big 1280 about a 4048-byte datagram', 2, 0, 1280, Buffer.from(d6.bytes()));
    e6('hop limit exceeded', 3, 0, 0, udp6);
    e6('port unreachable', 1, 4, 0, udp6);
    e6('parameter problem', 4, 0, 6, udp6);

    // --- rewritten headers with incremental checksums
    const ip4 = new Ipv4Packet();
    for (const name of ['ping4', 'udp4', 'tcp-syn4', 'ping4-rr']) {
      const b = Buffer.from(kernelFixture(name)[0]!);
      ip4.wrap(b, 0, b.length);
      expect(ip4.decrementTtl()).toBe(true);
      add(`TTL rewritten: ${name}`, b);
    }
    const ip6 = new Ipv6Packet();
    for (const name of ['ping6', 'udp6', 'tcp-syn6']) {
      const b = Buffer.from(kernelFixture(name)[0]!);
      ip6.wrap(b, 0, b.length);
      expect(ip6.decrementHopLimit()).toBe(DropReason.None);
      add(`hop limit rewritten: ${name}`, b);
    }
    const tcp = new TcpPacket();
    for (const [name, hl] of [
      ['tcp-syn4', 20],
      ['tcp-synack4', 20],
      ['tcp-syn6', 40],
      ['tcp-synack6', 40],
    ] as const) {
      const b = Buffer.from(kernelFixture(name)[0]!);
      tcp.wrap(b, hl, b.length - hl);
      expect(tcp.clampMss(1200)).toBe(true);
      add(`MSS clamped to 1200: ${name}`, b);
    }

    d4.release();
    u4.release();
    d6.release();
    u6x.release();
    expect(pools.live).toBe(0);

    const v = tsharkCheckPackets(packets.map((p) => p.data));
    expect(v.available).toBe(true);
    const problems = v.problems.map((p) => {
      const frame = Number(/^frame (\d+)/.exec(p)?.[1] ?? 0);
      return `${packets[frame - 1]?.what ?? '?'}: ${p}`;
    });
    expect(problems).toEqual([]);
    expect(v.perPacket).toHaveLength(packets.length);
    // tshark reassembled every fragment set we wrote.
    const fragsSeen = v.perPacket.filter((p) => p.fragment);
    expect(fragsSeen.length).toBeGreaterThan(20);
    expect(fragsSeen.every((p) => p.reassembledIn > 0)).toBe(true);
  });
});
