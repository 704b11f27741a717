// Imports icmpv4.ts before ipv4.ts on purpose: the two modules import each other, and this file
// proves that order works (ipv4.test.ts covers the other).
import {
  ICMP_DEST_UNREACHABLE,
  ICMP_ECHO_REPLY,
  ICMP_ECHO_REQUEST,
  ICMP_EXC_FRAGTIME,
  ICMP_EXC_TTL,
  ICMP_PARAM_PROBLEM,
  ICMP_REDIRECT,
  ICMP_TIME_EXCEEDED,
  ICMP_UNREACH_FRAG_NEEDED,
  ICMP_UNREACH_PORT,
  ICMPV4_ERROR_MAX_LEN,
  Icmpv4Packet,
  type Icmpv4Repr,
  buildEchoReply,
  buildIcmpv4Error,
  mayReplyWithIcmpError,
} from '../../src/wire/icmpv4.ts';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DropReason } from '../../src/base/drop-reason.ts';
import { checksum, verify } from '../../src/wire/checksum.ts';
import { Ipv4Packet } from '../../src/wire/ipv4.ts';
import { UdpPacket } from '../../src/wire/udp.ts';
import { kernelFixture } from '../support/pcap.ts';
import { tsharkAvailable, tsharkCheckPackets, TSHARK_MISSING } from '../support/tshark.ts';
import { IP_PROTO_ICMP, IP_PROTO_UDP, v4Text } from '../../src/wire/ip.ts';
import { describeIp } from '../../src/wire/describe.ts';

const A = (s: string) => s.split('.').reduce((a, b) => a * 256 + Number(b), 0);
const ip = (b: Uint8Array, off = 0) => new Ipv4Packet(b, off, b.length - off);
const icmpOf = (b: Uint8Array) => {
  const p = ip(b);
  return new Icmpv4Packet(b, p.payloadOffset, p.payloadLength);
};

describe('Icmpv4Packet on kernel fixtures', () => {
  it('echo requests (ping4): type, code, id, seq, checksum', () => {
    const pkts = kernelFixture('ping4');
    const ids = new Set<number>();
    pkts.forEach((b, i) => {
      const m = icmpOf(b);
      expect(m.check()).toBe(DropReason.None);
      expect(m.type).toBe(ICMP_ECHO_REQUEST);
      expect(m.code).toBe(0);
      expect(m.echoIdent).toBe(b.readUInt16BE(24));
      expect(m.echoSeq).toBe(i + 1);
      expect(m.checksum).toBe(b.readUInt16BE(22));
      expect(m.payloadLength).toBe(56);
      const kernelSum = m.checksum;
      expect(m.fillChecksum()).toBe(kernelSum);
      const r = m.parse() as Icmpv4Repr;
      expect(r).toMatchObject({ type: 8, code: 0, seq: i + 1, ident: m.echoIdent, mtu: 0, pointer: 0, payloadLength: 56 });
      expect(m.isError).toBe(false);
      ids.add(m.echoIdent);
    });
    expect(ids.size).toBe(1);
  });

  it('echo reply (icmp4-echo-reply): id 0x1234 seq 1', () => {
    const [b] = kernelFixture('icmp4-echo-reply');
    const m = icmpOf(b!);
    expect(m.check()).toBe(DropReason.None);
    expect(m.type).toBe(ICMP_ECHO_REPLY);
    expect(m.echoIdent).toBe(0x1234);
    expect(m.echoSeq).toBe(1);
    expect(m.describe()).toBe('ICMP echo reply, id 4660, seq 1, length 64');
  });

  it('port unreachable: quote of the UDP datagram to port 9', () => {
    const [b] = kernelFixture('icmp4-port-unreach');
    const p = ip(b!);
    expect(p.validate()).toBe(DropReason.None);
    expect(p.tos).toBe(0xc0);
    expect(p.dontFragment).toBe(false);
    const m = icmpOf(b!);
    expect(m.check()).toBe(DropReason.None);
    expect(m.type).toBe(ICMP_DEST_UNREACHABLE);
    expect(m.code).toBe(ICMP_UNREACH_PORT);
    expect(m.rest).toBe(0);
    expect(m.isError).toBe(true);
    const q = new Ipv4Packet(b!, m.quotedOffset, m.quotedLength);
    expect(q.validate()).toBe(DropReason.None);
    expect(v4Text(q.srcAddr)).toBe('192.168.20.20');
    expect(v4Text(q.dstAddr)).toBe('192.168.10.1');
    expect(q.protocol).toBe(IP_PROTO_UDP);
    const u = new UdpPacket(b!, q.payloadOffset, q.payloadLength);
    expect(u.check()).toBe(DropReason.None);
    expect(u.srcPort).toBe(40000);
    expect(u.dstPort).toBe(9);
    expect(u.verifyChecksumV4(b!, q.srcOffset, q.dstOffset)).toBe(true);
    expect(describeIp(p.buf, p.off, p.len)).toMatch(/^IP 192\.168\.10\.1 > 192\.168\.20\.20: ICMP 192\.168\.10\.1 udp port 9 unreachable, length 53 /);
  });

  it('time exceeded in transit: code 0, quoted TTL 1', () => {
    const [b] = kernelFixture('icmp4-time-exceeded');
    const m = icmpOf(b!);
    expect(m.check()).toBe(DropReason.None);
    expect(m.type).toBe(ICMP_TIME_EXCEEDED);
    expect(m.code).toBe(ICMP_EXC_TTL);
    const q = new Ipv4Packet(b!, m.quotedOffset, m.quotedLength);
    expect(q.validate()).toBe(DropReason.None);
    expect(q.ttl).toBe(1);
    expect(v4Text(q.dstAddr)).toBe('192.168.30.30');
    expect(describeIp(b!)).toContain('ICMP time exceeded in-transit, length 43');
  });

  it('fragmentation needed: next-hop MTU 1280, 576-byte datagram', () => {
    const [b] = kernelFixture('icmp4-frag-needed');
    expect(b!.length).toBe(ICMPV4_ERROR_MAX_LEN);
    const m = icmpOf(b!);
    expect(m.check()).toBe(DropReason.None);
    expect(m.type).toBe(ICMP_DEST_UNREACHABLE);
    expect(m.code).toBe(ICMP_UNREACH_FRAG_NEEDED);
    expect(m.nextHopMtu).toBe(1280);
    expect((m.parse() as Icmpv4Repr).mtu).toBe(1280);
    const q = new Ipv4Packet(b!, m.quotedOffset, m.quotedLength);
    expect(q.totalLength).toBe(1400);
    expect(q.dontFragment).toBe(true);
    expect(q.check()).toBe(DropReason.Truncated); // the quote is cut, as it must be
    expect(m.quotedLength).toBe(548);
    expect(describeIp(b!)).toContain('ICMP 192.168.40.40 unreachable - need to frag (mtu 1280), length 556');
  });
});

describe('buildIcmpv4Error reproduces the kernel byte for byte', () => {
  /** Rebuild the kernel's error from its own quote (same ident) and compare every byte. */
  function rebuild(name: string, type: number, code: number, param: number, offendingLen?: number) {
    const [k] = kernelFixture(name);
    const kp = ip(k!);
    const m = icmpOf(k!);
    const quote = k!.subarray(m.quotedOffset);
    const offending = new Uint8Array(offendingLen ?? quote.length);
    offending.set(quote);
    const out = new Uint8Array(1600).fill(0xaa);
    const n = buildIcmpv4Error(out, 7, type, code, param, offending, 0, offending.length, kp.srcAddr, 64, kp.ident);
    expect(n).toBe(k!.length);
    expect(Buffer.from(out.subarray(7, 7 + n)).toString('hex')).toBe(k!.toString('hex'));
    expect(out[6]).toBe(0xaa);
    expect(out[7 + n]).toBe(0xaa);
    expect(mayReplyWithIcmpError(offending, 0)).toBe(true);
  }
  it('port unreachable', () => rebuild('icmp4-port-unreach', 3, 3, 0));
  it('time exceeded', () => rebuild('icmp4-time-exceeded', 11, 0, 0));
  it('fragmentation needed (quote cut at 576 total)', () => rebuild('icmp4-frag-needed', 3, 4, 1280, 1400));
});

describe('buildIcmpv4Error limits and fields', () => {
  function offendingUdp(len: number, extra = 0): Uint8Array {
    const b = new Uint8Array(len + extra).fill(0x5a);
    Ipv4Packet.emit(
      { src: A('192.0.2.7'), dst: A('198.51.100.9'), protocol: 17, ttl: 1, dscp: 10, ecn: 1, ident: 99,
        dontFragment: true, moreFragments: false, fragOffset: 0, payloadLength: len - 20, options: new Uint8Array(0) },
      b,
      0,
    );
    return b;
  }

  it('quotes all of a small datagram and never its link padding', () => {
    const off = offendingUdp(60, 17);
    const out = new Uint8Array(2000);
    const n = buildIcmpv4Error(out, 0, ICMP_TIME_EXCEEDED, ICMP_EXC_FRAGTIME, 0, off, 0, off.length, A('203.0.113.1'));
    expect(n).toBe(20 + 8 + 60);
    const p = ip(out.subarray(0, n));
    expect(p.validate()).toBe(DropReason.None);
    expect(p.tos).toBe(((10 << 2 | 1) & 0x1e) | 0xc0);
    expect(p.ttl).toBe(64);
    expect(p.protocol).toBe(IP_PROTO_ICMP);
    expect(v4Text(p.srcAddr)).toBe('203.0.113.1');
    expect(v4Text(p.dstAddr)).toBe('192.0.2.7');
    const m = new Icmpv4Packet(out, 20, n - 20);
    expect(m.check()).toBe(DropReason.None);
    expect(m.code).toBe(ICMP_EXC_FRAGTIME);
    expect(Buffer.from(out.subarray(28, n)).equals(Buffer.from(off.subarray(0, 60)))).toBe(true);
  });

  it('is at most 576 bytes for any offending size, and fits a small output buffer', () => {
    fc.assert(
      fc.property(fc.integer({ min: 20, max: 3000 }), fc.integer({ min: 0, max: 700 }), (len, room) => {
        const off = offendingUdp(len);
        const out = new Uint8Array(room);
        const n = buildIcmpv4Error(out, 0, ICMP_DEST_UNREACHABLE, 1, 0, off, 0, len, A('10.0.0.1'));
        if (room < 48) {
          expect(n).toBe(0);
          return;
        }
        expect(n).toBe(Math.min(28 + len, ICMPV4_ERROR_MAX_LEN, room));
        expect(ip(out.subarray(0, n)).validate()).toBe(DropReason.None);
        expect(new Icmpv4Packet(out, 20, n - 20).check()).toBe(DropReason.None);
      }),
      { numRuns: 500 },
    );
  });

  it('puts the parameter where each type wants it', () => {
    const off = offendingUdp(40);
    const out = new Uint8Array(600);
    buildIcmpv4Error(out, 0, ICMP_PARAM_PROBLEM, 0, 22, off, 0, 40, 1);
    expect(Array.from(out.subarray(24, 28))).toEqual([22, 0, 0, 0]);
    expect(new Icmpv4Packet(out, 20, 76).pointer).toBe(22);
    buildIcmpv4Error(out, 0, ICMP_DEST_UNREACHABLE, ICMP_UNREACH_FRAG_NEEDED, 1400, off, 0, 40, 1);
    expect(Array.from(out.subarray(24, 28))).toEqual([0, 0, 0x05, 0x78]);
    buildIcmpv4Error(out, 0, ICMP_REDIRECT, 1, A('10.9.8.7'), off, 0, 40, 1);
    expect(new Icmpv4Packet(out, 20, 76).gateway).toBe(A('10.9.8.7'));
    buildIcmpv4Error(out, 0, ICMP_DEST_UNREACHABLE, 1, 1400, off, 0, 40, 1);
    expect(Array.from(out.subarray(24, 28))).toEqual([0, 0, 0, 0]);
  });

  it('may quote from the same buffer it writes into', () => {
    const slab = new Uint8Array(1200);
    slab.set(offendingUdp(300), 600);
    const copy = slab.slice(600, 900);
    const n = buildIcmpv4Error(slab, 560, ICMP_DEST_UNREACHABLE, 1, 0, slab, 600, 300, A('10.0.0.1'));
    expect(n).toBe(328);
    expect(Buffer.from(slab.subarray(588, 888)).equals(Buffer.from(copy))).toBe(true);
    expect(new Icmpv4Packet(slab, 580, 308).check()).toBe(DropReason.None);
  });
});

describe('mayReplyWithIcmpError (RFC 1812 4.3.2.7)', () => {
  function pkt(o: { src?: string; dst?: string; proto?: number; frag?: number; mf?: boolean; icmpType?: number; len?: number }): Uint8Array {
    const b = new Uint8Array(o.len ?? 48);
    Ipv4Packet.emit(
      { src: A(o.src ?? '192.0.2.1'), dst: A(o.dst ?? '198.51.100.1'), protocol: o.proto ?? 17, ttl: 1, dscp: 0, ecn: 0,
        ident: 1, dontFragment: false, moreFragments: o.mf ?? false, fragOffset: o.frag ?? 0,
        payloadLength: b.length - 20, options: new Uint8Array(0) },
      b,
      0,
    );
    if (o.icmpType !== undefined && b.length > 20) b[20] = o.icmpType;
    return b;
  }
  const cases: [string, Uint8Array, boolean][] = [
    ['ordinary UDP', pkt({}), true],
    ['first fragment', pkt({ mf: true }), true],
    ['non-first fragment', pkt({ frag: 8 }), false],
    ['ICMP echo request', pkt({ proto: 1, icmpType: 8 }), true],
    ['ICMP echo reply', pkt({ proto: 1, icmpType: 0 }), true],
    ['ICMP dest unreachable', pkt({ proto: 1, icmpType: 3 }), false],
    ['ICMP source quench', pkt({ proto: 1, icmpType: 4 }), false],
    ['ICMP redirect', pkt({ proto: 1, icmpType: 5 }), false],
    ['ICMP time exceeded', pkt({ proto: 1, icmpType: 11 }), false],
    ['ICMP parameter problem', pkt({ proto: 1, icmpType: 12 }), false],
    ['ICMP type 42 (unknown, treated as error)', pkt({ proto: 1, icmpType: 42 }), false],
    ['ICMP without its header', pkt({ proto: 1, len: 20 }), false],
    ['dst multicast', pkt({ dst: '224.0.0.5' }), false],
    ['dst limited broadcast', pkt({ dst: '255.255.255.255' }), false],
    ['src 0.0.0.0', pkt({ src: '0.0.0.0' }), false],
    ['src 0.1.2.3', pkt({ src: '0.1.2.3' }), false],
    ['src loopback', pkt({ src: '127.0.0.1' }), false],
    ['src multicast', pkt({ src: '239.1.1.1' }), false],
    ['src broadcast', pkt({ src: '255.255.255.255' }), false],
    ['src class E', pkt({ src: '240.0.0.1' }), false],
    ['truncated', pkt({}).subarray(0, 19), false],
    ['not IPv4', Uint8Array.from([0x60, ...new Array(39).fill(0)]), false],
    ['kernel IGMP report to 224.0.0.22', kernelFixture('igmp4-report')[0]!, false],
    ['kernel UDP first fragment', kernelFixture('udp4-frag')[0]!, true],
    ['kernel UDP second fragment', kernelFixture('udp4-frag')[1]!, false],
    ['kernel port unreachable (an ICMP error)', kernelFixture('icmp4-port-unreach')[0]!, false],
    ['kernel echo request', kernelFixture('ping4')[0]!, true],
  ];
  for (const [name, b, want] of cases) {
    it(`${name}: ${want}`, () => expect(mayReplyWithIcmpError(b, 0)).toBe(want));
  }
});

describe('buildEchoReply', () => {
  it('turns a request into exactly the kernel reply (apart from ident/DF/header checksum)', () => {
    const [k] = kernelFixture('icmp4-echo-reply');
    // Reconstruct the request the kernel answered: swap addresses, type 8, fresh checksums.
    const req = Buffer.from(k!);
    req.copy(req, 12, 16, 20);
    k!.copy(req, 16, 12, 16);
    req[20] = ICMP_ECHO_REQUEST;
    req.writeUInt16BE(0, 22);
    req.writeUInt16BE(checksum(req, 20, 64), 22);
    req[8] = 63;
    req.writeUInt16BE(0x4000, 6);
    ip(req).fillChecksum();
    const n = buildEchoReply(req, 0, 64);
    expect(n).toBe(84);
    // The kernel picks its own ident and clears DF; take those, then every byte must match.
    req.writeUInt16BE(k!.readUInt16BE(4), 4);
    req.writeUInt16BE(k!.readUInt16BE(6), 6);
    ip(req).fillChecksum();
    expect(req.toString('hex')).toBe(k!.toString('hex'));
  });

  it('incremental ICMP checksum equals recomputation for random echo requests', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(0xffff), fc.nat(0xffff), fc.nat(255), (data, id, seq, code) => {
        const b = new Uint8Array(28 + data.length);
        Ipv4Packet.emit(
          { src: A('192.0.2.1'), dst: A('192.0.2.2'), protocol: 1, ttl: 5, dscp: 0, ecn: 0, ident: 7, dontFragment: true,
            moreFragments: false, fragOffset: 0, payloadLength: 8 + data.length, options: new Uint8Array(0) },
          b,
          0,
        );
        Icmpv4Packet.emit({ type: 8, code, rest: 0, ident: id, seq, mtu: 0, pointer: 0, payloadLength: data.length }, b, 20);
        b.set(data, 28);
        new Icmpv4Packet(b, 20, 8 + data.length).fillChecksum();
        expect(buildEchoReply(b, 0)).toBe(b.length);
        const m = new Icmpv4Packet(b, 20, 8 + data.length);
        expect(m.type).toBe(0);
        expect(m.verifyChecksum()).toBe(true);
        expect(m.echoIdent).toBe(id);
        expect(m.echoSeq).toBe(seq);
        const p = ip(b);
        expect(p.validate()).toBe(DropReason.None);
        expect(v4Text(p.srcAddr)).toBe('192.0.2.2');
        expect(p.ttl).toBe(64);
      }),
      { numRuns: 1000 },
    );
  });

  it('strips IP options from the reply (kernel RR request)', () => {
    const [b] = kernelFixture('ping4-rr');
    const req = Buffer.from(b!);
    const n = buildEchoReply(req, 0, 64);
    expect(n).toBe(84);
    const p = ip(req.subarray(0, n));
    expect(p.validate()).toBe(DropReason.None);
    expect(p.headerLength).toBe(20);
    expect(v4Text(p.dstAddr)).toBe('192.168.10.1');
    const m = new Icmpv4Packet(req, 20, 64);
    expect(m.check()).toBe(DropReason.None);
    expect(m.type).toBe(ICMP_ECHO_REPLY);
  });

  it('refuses anything that is not an unfragmented echo request', () => {
    const [reply] = kernelFixture('icmp4-echo-reply');
    expect(buildEchoReply(Buffer.from(reply!), 0)).toBe(0);
    const [frag] = kernelFixture('ping4-frag');
    expect(buildEchoReply(Buffer.from(frag!), 0)).toBe(0);
    const [udp] = kernelFixture('udp4');
    expect(buildEchoReply(Buffer.from(udp!), 0)).toBe(0);
    expect(buildEchoReply(new Uint8Array(10), 0)).toBe(0);
  });
});

describe('Icmpv4Packet.check() on broken messages', () => {
  it('truncated, bad checksum, short quote', () => {
    expect(new Icmpv4Packet(new Uint8Array(7)).check()).toBe(DropReason.Truncated);
    const [b] = kernelFixture('icmp4-port-unreach');
    const m = icmpOf(Buffer.from(b!));
    m.buf[m.off + 30] ^= 1;
    expect(m.check()).toBe(DropReason.BadIcmpChecksum);
    // An error whose quote is shorter than an IPv4 header.
    const e = new Uint8Array(8 + 19);
    e[0] = 3;
    e[8] = 0x45;
    const em = new Icmpv4Packet(e);
    em.fillChecksum();
    expect(em.check()).toBe(DropReason.BadIcmpLength);
    // Quote that is not IPv4.
    const f = new Uint8Array(8 + 20);
    f[0] = 11;
    f[8] = 0x65;
    new Icmpv4Packet(f).fillChecksum();
    expect(new Icmpv4Packet(f).check()).toBe(DropReason.BadIcmpLength);
    expect(new Icmpv4Packet(f).parse()).toBe(DropReason.BadIcmpLength);
  });

  it('verify over odd lengths', () => {
    const e = Uint8Array.from([8, 0, 0, 0, 0, 1, 0, 2, 0xab]);
    const m = new Icmpv4Packet(e);
    m.fillChecksum();
    expect(verify(e, 0, 9)).toBe(true);
    expect(m.check()).toBe(DropReason.None);
  });
});

describe('tshark oracle on what we build', () => {
  it('dissects built ICMP errors and echo replies without checksum or malformed verdicts', (ctx) => {
    if (!tsharkAvailable()) return ctx.skip(TSHARK_MISSING);
    const out: Uint8Array[] = [];
    for (const n of ['udp4', 'tcp-syn4', 'ping4', 'ping4-frag', 'ping4-rr']) {
      for (const b of kernelFixture(n)) {
        if (!mayReplyWithIcmpError(b, 0)) continue;
        for (const [t, c, param] of [[3, 3, 0], [3, 4, 1280], [11, 0, 0], [11, 1, 0], [12, 0, 20]] as const) {
          const e = new Uint8Array(600);
          const len = buildIcmpv4Error(e, 0, t, c, param, b, 0, b.length, A('192.168.10.254'), 64, 4242);
          out.push(e.subarray(0, len));
        }
      }
    }
    for (const n of ['ping4', 'ping4-rr', 'ping4-ts']) {
      const b = Buffer.from(kernelFixture(n)[0]!);
      const len = buildEchoReply(b, 0);
      out.push(b.subarray(0, len));
    }
    expect(out.length).toBeGreaterThan(20);
    const v = tsharkCheckPackets(out, { requireReassembly: false });
    expect(v.problems).toEqual([]);
    expect(v.perPacket.length).toBe(out.length);
  });
});
