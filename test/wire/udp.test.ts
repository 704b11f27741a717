import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DropReason } from '../../src/base/drop-reason.ts';
import { checksum, fold, pseudoHeaderSumV4, pseudoHeaderSumV6, sumWords } from '../../src/wire/checksum.ts';
import { Ipv4Packet } from '../../src/wire/ipv4.ts';
import { UDP_HEADER_LEN, UdpPacket, type UdpRepr } from '../../src/wire/udp.ts';
import { kernelFixture } from '../support/pcap.ts';
import { tsharkAvailable, tsharkCheckPackets, TSHARK_MISSING } from '../support/tshark.ts';
import { describeIp } from '../../src/wire/describe.ts';

const V6_SRC = 8;
const V6_DST = 24;

/** RFC 768 reference: the pseudo-header built as bytes, then the plain RFC 1071 sum. */
function referenceV4(ip: Uint8Array): number {
  const p = new Ipv4Packet(ip);
  const l = p.payloadLength;
  const b = new Uint8Array(12 + l + (l & 1));
  b.set(ip.subarray(12, 20), 0);
  b[9] = 17;
  b[10] = l >> 8;
  b[11] = l & 0xff;
  b.set(ip.subarray(p.payloadOffset, p.payloadOffset + l), 12);
  b[12 + 6] = 0;
  b[12 + 7] = 0;
  const c = checksum(b, 0, b.length);
  return c === 0 ? 0xffff : c;
}

/** RFC 8200 8.1 reference for an IPv6 packet without extension headers. */
function referenceV6(ip: Uint8Array): number {
  const l = (ip[4]! << 8) | ip[5]!;
  const b = new Uint8Array(40 + l + (l & 1));
  b.set(ip.subarray(8, 40), 0);
  b[34] = l >> 8;
  b[35] = l & 0xff;
  b[39] = 17;
  b.set(ip.subarray(40, 40 + l), 40);
  b[40 + 6] = 0;
  b[40 + 7] = 0;
  const c = checksum(b, 0, b.length);
  return c === 0 ? 0xffff : c;
}

describe('UdpPacket on kernel fixtures', () => {
  it('udp4: ports, length, checksum with the IPv4 pseudo-header', () => {
    const pkts = kernelFixture('udp4');
    expect(pkts.map((b) => b.length)).toEqual([62, 28]);
    const expected = [
      { dstPort: 5555, payload: 34 },
      { dstPort: 5556, payload: 0 },
    ];
    pkts.forEach((b, i) => {
      const ip = new Ipv4Packet(b);
      expect(ip.validate()).toBe(DropReason.None);
      const u = new UdpPacket(b, ip.payloadOffset, ip.payloadLength);
      expect(u.check()).toBe(DropReason.None);
      expect(u.srcPort).toBe(b.readUInt16BE(20));
      expect(u.srcPort).toBeGreaterThanOrEqual(1024);
      expect(u.dstPort).toBe(expected[i]!.dstPort);
      expect(u.length).toBe(8 + expected[i]!.payload);
      expect(u.payloadLength).toBe(expected[i]!.payload);
      expect(u.payloadOffset).toBe(28);
      expect(u.checksum).toBe(b.readUInt16BE(26));
      expect(u.checksum).not.toBe(0);
      expect(u.verifyChecksumV4(b, ip.srcOffset, ip.dstOffset)).toBe(true);
      const kernel = u.checksum;
      expect(u.fillChecksumV4(b, ip.srcOffset, ip.dstOffset)).toBe(kernel);
      expect(referenceV4(b)).toBe(kernel);
      expect(u.parse()).toEqual({ srcPort: u.srcPort, dstPort: expected[i]!.dstPort, payloadLength: expected[i]!.payload });
      expect(describeIp(ip.buf, ip.off, ip.len)).toMatch(new RegExp(`^IP 192\\.168\\.10\\.1\\.${u.srcPort} > 192\\.168\\.20\\.20\\.${expected[i]!.dstPort}: UDP, length ${expected[i]!.payload} `));
    });
    expect(pkts[0]!.subarray(28).toString()).toBe('ipferry kernel fixture udp payload');
  });

  it('udp6: checksum with the IPv6 pseudo-header', () => {
    const pkts = kernelFixture('udp6');
    expect(pkts.map((b) => b.length)).toEqual([82, 48]);
    for (const b of pkts) {
      expect(b[0]! >> 4).toBe(6);
      expect(b[6]).toBe(17); // next header UDP, no extension headers
      const u = new UdpPacket(b, 40, b.readUInt16BE(4));
      expect(u.check()).toBe(DropReason.None);
      expect(u.verifyChecksumV6(b, V6_SRC, V6_DST)).toBe(true);
      const kernel = u.checksum;
      expect(u.fillChecksumV6(b, V6_SRC, V6_DST)).toBe(kernel);
      expect(referenceV6(b)).toBe(kernel);
      // The same bytes do not verify with the IPv4 rules.
      expect(u.verifyChecksumV4(b, V6_SRC, V6_DST)).toBe(false);
    }
  });
});

describe('UDP checksum rules', () => {
  it('zero means "none" over IPv4 and "invalid" over IPv6', () => {
    const [b4] = kernelFixture('udp4');
    const c4 = Buffer.from(b4!);
    const u4 = new UdpPacket(c4, 20, 42);
    u4.checksum = 0;
    expect(u4.verifyChecksumV4(c4, 12, 16)).toBe(true);
    const [b6] = kernelFixture('udp6');
    const c6 = Buffer.from(b6!);
    const u6 = new UdpPacket(c6, 40, 42);
    u6.checksum = 0;
    expect(u6.verifyChecksumV6(c6, V6_SRC, V6_DST)).toBe(false);
  });

  it('a computed 0x0000 is transmitted as 0xffff and verifies (v4 and v6)', () => {
    for (const [name, hl, v6] of [['udp4', 20, false], ['udp6', 40, true]] as const) {
      const b = Buffer.from(kernelFixture(name)[0]!);
      const so = v6 ? V6_SRC : 12;
      const dof = v6 ? V6_DST : 16;
      const u = new UdpPacket(b, hl, 42);
      // Make the sum come out 0xffff: zero one payload word, then set it to the complement.
      b.writeUInt16BE(0, hl + 8);
      u.checksum = 0;
      const pseudo = v6 ? pseudoHeaderSumV6(b, so, dof, 17, 42) : pseudoHeaderSumV4(b, so, dof, 17, 42);
      const s = fold(sumWords(b, hl, 42, pseudo));
      b.writeUInt16BE(~s & 0xffff, hl + 8);
      expect(v6 ? u.fillChecksumV6(b, so, dof) : u.fillChecksumV4(b, so, dof)).toBe(0xffff);
      expect(u.checksum).toBe(0xffff);
      expect(v6 ? u.verifyChecksumV6(b, so, dof) : u.verifyChecksumV4(b, so, dof)).toBe(true);
      expect(v6 ? referenceV6(b) : referenceV4(b)).toBe(0xffff);
    }
  });

  it('fill equals the byte-built pseudo-header reference for random datagrams (v4 and v6)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 8, maxLength: 16 }), fc.uint8Array({ maxLength: 300 }), fc.nat(0xffff), fc.nat(0xffff), (addrs, payload, sp, dp) => {
        // IPv4
        const b = new Uint8Array(28 + payload.length);
        Ipv4Packet.emit(
          { src: 0, dst: 0, protocol: 17, ttl: 64, dscp: 0, ecn: 0, ident: 0, dontFragment: false, moreFragments: false,
            fragOffset: 0, payloadLength: 8 + payload.length, options: new Uint8Array(0) },
          b,
          0,
        );
        b.set(addrs.subarray(0, 8), 12);
        UdpPacket.emit({ srcPort: sp, dstPort: dp, payloadLength: payload.length }, b, 20);
        b.set(payload, 28);
        const u = new UdpPacket(b, 20, 8 + payload.length);
        expect(u.check()).toBe(DropReason.None);
        expect(u.fillChecksumV4(b, 12, 16)).toBe(referenceV4(b));
        expect(u.verifyChecksumV4(b, 12, 16)).toBe(true);
        // IPv6
        const c = new Uint8Array(48 + payload.length);
        c[0] = 0x60;
        c[4] = (8 + payload.length) >> 8;
        c[5] = (8 + payload.length) & 0xff;
        c[6] = 17;
        for (let i = 0; i < 32; i++) c[8 + i] = addrs[i % addrs.length]! ^ i;
        UdpPacket.emit({ srcPort: sp, dstPort: dp, payloadLength: payload.length }, c, 40);
        c.set(payload, 48);
        const v = new UdpPacket(c, 40, 8 + payload.length);
        expect(v.fillChecksumV6(c, V6_SRC, V6_DST)).toBe(referenceV6(c));
        expect(v.verifyChecksumV6(c, V6_SRC, V6_DST)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('UdpPacket.check()', () => {
  const cases: [string, number[], number, DropReason][] = [
    ['7 bytes', [0, 1, 0, 2, 0, 8, 0], 7, DropReason.Truncated],
    ['length 7', [0, 1, 0, 2, 0, 7, 0, 0], 8, DropReason.BadUdpLength],
    ['length 0 (jumbo unsupported)', [0, 1, 0, 2, 0, 0, 0, 0], 8, DropReason.BadUdpLength],
    ['length beyond IP payload', [0, 1, 0, 2, 0, 12, 0, 0, 1, 2, 3], 11, DropReason.BadUdpLength],
    ['exact', [0, 1, 0, 2, 0, 11, 0, 0, 1, 2, 3], 11, DropReason.None],
    ['shorter than IP payload (padding)', [0, 1, 0, 2, 0, 9, 0, 0, 1, 2, 3], 11, DropReason.None],
  ];
  for (const [name, bytes, len, want] of cases) {
    it(`${name} -> ${DropReason[want]}`, () => {
      const u = new UdpPacket(Uint8Array.from(bytes), 0, len);
      expect(u.check()).toBe(want);
      const r = u.parse();
      if (want === DropReason.None) expect((r as UdpRepr).srcPort).toBe(1);
      else expect(r).toBe(want);
      expect(typeof u.describe()).toBe('string');
    });
  }

  it('emit writes the header and a zero checksum', () => {
    const b = new Uint8Array(12).fill(0xff);
    expect(UdpPacket.emit({ srcPort: 0x1234, dstPort: 53, payloadLength: 4 }, b, 0)).toBe(UDP_HEADER_LEN);
    expect(Array.from(b.subarray(0, 8))).toEqual([0x12, 0x34, 0, 53, 0, 12, 0, 0]);
    expect(new UdpPacket(b).describe()).toBe('UDP 4660 > 53, length 4');
  });
});

describe('tshark oracle', () => {
  it('accepts datagrams we checksummed (v4 and v6, incl. the 0xffff case)', (ctx) => {
    if (!tsharkAvailable()) return ctx.skip(TSHARK_MISSING);
    const out: Uint8Array[] = [];
    for (const n of ['udp4', 'udp6']) {
      for (const b0 of kernelFixture(n)) {
        const b = Buffer.from(b0);
        const v6 = n === 'udp6';
        const hl = v6 ? 40 : 20;
        const u = new UdpPacket(b, hl, b.length - hl);
        u.srcPort = 4242;
        if (v6) u.fillChecksumV6(b, V6_SRC, V6_DST);
        else u.fillChecksumV4(b, 12, 16);
        out.push(b);
      }
    }
    const v = tsharkCheckPackets(out);
    expect(v.problems).toEqual([]);
    expect(v.perPacket.every((p) => p.protocols.endsWith('udp') || p.protocols.includes(':udp:'))).toBe(true);
  });
});
