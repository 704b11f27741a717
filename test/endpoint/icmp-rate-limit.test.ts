/**
 * ICMP error rate limiting as Linux does it (issue 12, point 1): a global bucket plus one per
 * destination, fragmentation needed / packet too big exempt from both. The pipeline tests feed
 * real kernel packets (test/fixtures/kernel) and check the bytes of the errors that come out.
 */
import { describe, expect, it } from 'vitest';
import { DropReason } from '../../src/base/drop-reason.ts';
import type { PacketBuffer } from '../../src/base/pool.ts';
import { DestinationBuckets, WAYS } from '../../src/endpoint/destination-buckets.ts';
import { icmpExempt, IcmpRateLimiter } from '../../src/endpoint/icmp-rate-limit.ts';
import { verify } from '../../src/wire/checksum.ts';
import { Icmpv4Packet } from '../../src/wire/icmpv4.ts';
import { Ipv4Packet } from '../../src/wire/ipv4.ts';
import { detachedEndpoint } from '../support/endpoint-harness.ts';
import { kernelFixture } from '../support/pcap.ts';

const v4addr = (s: string) => Uint8Array.from(s.split('.').map(Number));
const ip4 = (s: string) => s.split('.').reduce((a, x) => a * 256 + Number(x), 0);

describe('DestinationBuckets (inet_peer_xrlim_allow)', () => {
  it('a new destination gets a burst of 6, then one per interval; destinations are independent', () => {
    const b = new DestinationBuckets(64, 1000, 6);
    const a = v4addr('192.168.10.1');
    const c = v4addr('192.168.10.2');
    const got = Array.from({ length: 8 }, () => b.take(4, a, 0, 0));
    expect(got).toEqual([true, true, true, true, true, true, false, false]);
    expect(b.take(4, c, 0, 0)).toBe(true);
    expect(b.take(4, a, 0, 999)).toBe(false);
    expect(b.take(4, a, 0, 1000)).toBe(true); // credit accrues from the last try (999 ms) + 1 ms: one token
    expect(b.take(4, a, 0, 1500)).toBe(false);
    expect(b.take(4, a, 0, 100_000)).toBe(true); // refilled, capped at 6
    for (let i = 0; i < 5; i++) expect(b.take(4, a, 0, 100_000)).toBe(true);
    expect(b.take(4, a, 0, 100_000)).toBe(false);
  });

  it('IPv6 keys are the whole 16 bytes; v4 and v6 never share an entry', () => {
    const b = new DestinationBuckets(64, 1000, 1);
    const x = new Uint8Array(16);
    x[0] = 0xfd;
    const y = Uint8Array.from(x);
    y[15] = 1;
    expect(b.take(6, x, 0, 0)).toBe(true);
    expect(b.take(6, x, 0, 0)).toBe(false);
    expect(b.take(6, y, 0, 0)).toBe(true);
    expect(b.take(4, x, 0, 0)).toBe(true); // the first 4 bytes as an IPv4 address: another entry
  });

  it('is bounded: many destinations evict the least recently used, never grow the table', () => {
    const b = new DestinationBuckets(64, 1000, 2);
    expect(b.capacity).toBe(64);
    const addr = new Uint8Array(4);
    for (let i = 0; i < 10_000; i++) {
      addr[0] = 10;
      addr[1] = (i >> 16) & 255;
      addr[2] = (i >> 8) & 255;
      addr[3] = i & 255;
      b.take(4, addr, 0, i); // each new, each at a later time
    }
    expect(b.size).toBe(64);
  });

  it('a full set evicts its least recently used entry; a recently used, drained one keeps its state', () => {
    const b = new DestinationBuckets(WAYS, 1000, 2); // one set
    const addr = (i: number) => v4addr(`198.51.100.${i}`);
    for (let i = 0; i < WAYS; i++) expect(b.take(4, addr(i), 0, i)).toBe(true);
    expect(b.take(4, addr(0), 0, 100)).toBe(true); // #0: drained now, and the most recent
    expect(b.take(4, v4addr('203.0.113.1'), 0, 101)).toBe(true); // a new one evicts #1 (used at 1)
    expect(b.evictedEarly).toBe(1); // #1 had not refilled yet
    expect(b.take(4, addr(0), 0, 102)).toBe(false); // #0 kept its (drained) bucket
    expect(b.take(4, addr(1), 0, 103)).toBe(true); // #1 starts again with a full bucket
    expect(b.size).toBe(WAYS);
  });
});

describe('IcmpRateLimiter (icmpv4_global_allow + icmpv4_xrlim_allow)', () => {
  it('exempts fragmentation needed (3/4) and packet too big (v6 2), and types outside the rate masks', () => {
    expect(icmpExempt(4, 3, 4)).toBe(true);
    expect(icmpExempt(4, 3, 1)).toBe(false);
    expect(icmpExempt(4, 11, 0)).toBe(false);
    expect(icmpExempt(4, 12, 0)).toBe(false);
    expect(icmpExempt(4, 0, 0)).toBe(true); // echo reply: not in icmp_ratemask 0x1818
    expect(icmpExempt(6, 2, 0)).toBe(true);
    expect(icmpExempt(6, 1, 4)).toBe(false);
    expect(icmpExempt(6, 3, 0)).toBe(false);
    expect(icmpExempt(6, 4, 1)).toBe(false);
    expect(icmpExempt(6, 129, 0)).toBe(true);
  });

  it('global first; a destination-limited error spends no global token; exempt ones spend nothing', () => {
    const l = new IcmpRateLimiter({ rate: 1, burst: 10, perDestinationMs: 1000 });
    const a = v4addr('192.168.10.1');
    const b = v4addr('192.168.10.2');
    const r = Array.from({ length: 8 }, () => l.check(4, 3, 1, a, 0, 0));
    expect(r).toEqual([...Array(6).fill(DropReason.None), DropReason.IcmpRateLimitedDestination, DropReason.IcmpRateLimitedDestination]);
    // 6 global tokens spent, 4 left: b gets 4 and then the global bucket says no
    const rb = Array.from({ length: 6 }, () => l.check(4, 3, 1, b, 0, 0));
    expect(rb).toEqual([0, 0, 0, 0, DropReason.IcmpRateLimited, DropReason.IcmpRateLimited].map(Number));
    for (let i = 0; i < 100; i++) expect(l.check(4, 3, 4, a, 0, 0)).toBe(DropReason.None);
    expect([l.limitedGlobal, l.limitedDestination, l.exempt]).toEqual([2, 2, 100]);
  });

  it('perDestinationMs 0 turns the per-destination limit off', () => {
    const l = new IcmpRateLimiter({ rate: 1, burst: 20, perDestinationMs: 0 });
    const a = v4addr('192.168.10.1');
    const r = Array.from({ length: 21 }, () => l.check(4, 3, 1, a, 0, 0));
    expect(r.filter((x) => x === DropReason.None)).toHaveLength(20);
    expect(r[20]).toBe(DropReason.IcmpRateLimited);
  });
});

/** A copy of a kernel fixture with new addresses (and DF), header checksum fixed. */
function v4(name: string, opts: { src?: string; dst?: string; df?: boolean } = {}): Buffer {
  const b = Buffer.from(kernelFixture(name)[0]!);
  const ip = new Ipv4Packet(b, 0, b.length);
  if (opts.src) ip.rewriteSrcAddr(ip4(opts.src));
  if (opts.dst) ip.rewriteDstAddr(ip4(opts.dst));
  if (opts.df) {
    b[6] = 0x40;
    b[7] = 0;
  }
  ip.fillChecksum();
  return b;
}

function setup(extra: Record<string, unknown> = {}) {
  const sent: Buffer[] = [];
  const { ep, dev } = detachedEndpoint(
    {
      interface: { name: 'ferry0', address: ['192.168.10.1/24', 'fd00:10::1/64'], mtu: 1500 },
      listen: '127.0.0.1:6080',
      stack: { address: ['10.0.0.254', 'fd00::254'] },
      peers: [{ name: 'shanghai', endpoint: '127.0.0.1:6081', routes: ['192.168.20.0/24', 'fd00:20::/64'], mtu: 1300 }],
      routes: ['unreachable 10.99.0.0/16'],
      icmpRateLimit: { rate: 10, burst: 5 },
      ...extra,
    },
    (p) => sent.push(Buffer.from(p.bytes())),
  );
  // The ICMP clock, frozen: what passes is decided by the buckets alone, not by how fast this runs.
  (ep.core.icmp as unknown as { now: () => number }).now = () => 1000;
  const pool = ep.pools.small;
  const batch = (bytes: Buffer[]) => {
    const ps: PacketBuffer[] = bytes.map((b) => {
      const p = pool.acquire()!;
      p.fill(b);
      return p;
    });
    ep.pipeline.fromDevice(ps, ps.length);
  };
  return { ep, dev, sent, batch };
}

describe('pipeline: a flood of unreachable destinations does not silence path MTU discovery', () => {
  it('every DF packet above the peer MTU gets its fragmentation needed (v4) / packet too big (v6), from the flooding host itself', () => {
    const t = setup({ icmpRateLimit: { rate: 1000, burst: 1000 } });
    const bigDf = v4('ping4-frag', { df: true }); // 1396 bytes, DF, 192.168.10.1 -> 192.168.20.x
    const big6 = Buffer.from(kernelFixture('ping6-frag')[0]!); // 1400 bytes, fd00:10::1 -> fd00:20::
    let fragNeeded = 0;
    let tooBig = 0;
    let unreachable = 0;
    const rounds = 200;
    for (let r = 0; r < rounds; r++) {
      // 30 packets to destinations we have no route for (net unreachable back to the same host)
      // and to an unreachable route (host unreachable), then one big DF packet of each family.
      const flood: Buffer[] = [];
      for (let i = 0; i < 15; i++) flood.push(v4('ping4', { dst: `172.16.${r & 255}.${i}` }), v4('ping4', { dst: `10.99.${r & 255}.${i}` }));
      t.batch([...flood, bigDf, ...flood, big6]);
      for (const w of t.dev.takeWritten()) {
        if (w[0]! >> 4 === 4) {
          const ic = new Icmpv4Packet(w, 20, w.length - 20);
          expect(verify(w, 20, w.length - 20)).toBe(true);
          if (ic.type === 3 && ic.code === 4) {
            expect(ic.nextHopMtu).toBe(1300);
            expect(new Ipv4Packet(w, 0, w.length).dstAddr).toBe(ip4('192.168.10.1'));
            fragNeeded++;
          } else unreachable++;
        } else if (w[40] === 2) {
          expect(w.readUInt32BE(44)).toBe(1300);
          tooBig++;
        }
      }
    }
    expect(fragNeeded).toBe(rounds);
    expect(tooBig).toBe(rounds);
    // The flood itself was limited by the flooding host's bucket: a burst of 6, then nothing
    // (the clock stands still), while the global bucket had room for 1000.
    expect(unreachable).toBe(6);
    expect(t.ep.drops.get(DropReason.IcmpRateLimitedDestination)).toBe(rounds * 60 - 6);
    expect(t.ep.drops.get(DropReason.IcmpRateLimited)).toBe(0);
    expect(t.sent).toHaveLength(0); // nothing too big went to the peer
    expect(t.ep.pools.live).toBe(0);
  });

  it('many flooding hosts: the global bucket caps the total, PMTU messages still pass every time', () => {
    const t = setup({ icmpRateLimit: { rate: 10, burst: 5 } });
    let fragNeeded = 0;
    let others = 0;
    for (let r = 0; r < 100; r++) {
      const flood: Buffer[] = [];
      for (let i = 0; i < 20; i++) flood.push(v4('ping4', { src: `192.168.10.${10 + ((r * 20 + i) % 200)}`, dst: '172.16.0.1' }));
      t.batch([...flood, v4('ping4-frag', { src: `192.168.10.${r + 10}`, df: true })]);
      for (const w of t.dev.takeWritten()) {
        const ic = new Icmpv4Packet(w, 20, w.length - 20);
        if (ic.type === 3 && ic.code === 4) fragNeeded++;
        else others++;
      }
    }
    expect(fragNeeded).toBe(100);
    expect(others).toBe(5); // the global burst
    expect(t.ep.drops.get(DropReason.IcmpRateLimited)).toBe(2000 - 5);
    expect(t.ep.pools.live).toBe(0);
  });
});
