import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DropReason } from '../../src/base/drop-reason.ts';
import { checksum, fold, pseudoHeaderSumV4, sumWords } from '../../src/wire/checksum.ts';
import { Ipv4Packet } from '../../src/wire/ipv4.ts';
import {
  TCP_ACK,
  TCP_FIN,
  TCP_OPT_MSS,
  TCP_OPT_TIMESTAMP,
  TCP_OPT_WSCALE,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  TCP_ECE,
  TCP_CWR,
  TCP_URG,
  TCP_AE,
  TcpPacket,
  type TcpRepr,
} from '../../src/wire/tcp.ts';
import { kernelFixture } from '../support/pcap.ts';
import { tsharkAvailable, tsharkCheckPackets, TSHARK_MISSING } from '../support/tshark.ts';
import { describeIp } from '../../src/wire/describe.ts';

const V6_SRC = 8;
const V6_DST = 24;

function tcpOf(b: Buffer): { t: TcpPacket; v6: boolean; so: number; dof: number } {
  if (b[0]! >> 4 === 6) return { t: new TcpPacket(b, 40, b.readUInt16BE(4)), v6: true, so: V6_SRC, dof: V6_DST };
  const ip = new Ipv4Packet(b);
  return { t: new TcpPacket(b, ip.payloadOffset, ip.payloadLength), v6: false, so: ip.srcOffset, dof: ip.dstOffset };
}
const verifyAny = (x: ReturnType<typeof tcpOf>) =>
  x.v6 ? x.t.verifyChecksumV6(x.t.buf, x.so, x.dof) : x.t.verifyChecksumV4(x.t.buf, x.so, x.dof);
const fillAny = (x: ReturnType<typeof tcpOf>) =>
  x.v6 ? x.t.fillChecksumV6(x.t.buf, x.so, x.dof) : x.t.fillChecksumV4(x.t.buf, x.so, x.dof);

describe('TcpPacket on kernel fixtures', () => {
  it('tcp-syn4: every header field, options and checksum', () => {
    const [b] = kernelFixture('tcp-syn4');
    const x = tcpOf(b!);
    const t = x.t;
    expect(t.check()).toBe(DropReason.None);
    expect(t.checkOptions()).toBe(DropReason.None);
    expect(t.srcPort).toBe(b!.readUInt16BE(20));
    expect(t.dstPort).toBe(8080);
    expect(t.seq).toBe(b!.readUInt32BE(24));
    expect(t.ack).toBe(0);
    expect(t.headerLength).toBe(40);
    expect(t.flags).toBe(TCP_SYN);
    expect([t.syn, t.ackFlag, t.fin, t.rst, t.psh, t.urg, t.ece, t.cwr]).toEqual([true, false, false, false, false, false, false, false]);
    expect(t.window).toBe(b!.readUInt16BE(34));
    expect(t.checksum).toBe(b!.readUInt16BE(36));
    expect(t.urgent).toBe(0);
    expect(t.optionsOffset).toBe(40);
    expect(t.optionsLength).toBe(20);
    expect(t.payloadLength).toBe(0);
    expect(t.mss).toBe(1360);
    expect(t.findOption(TCP_OPT_MSS)).toBe(40);
    expect(b![t.findOption(TCP_OPT_WSCALE) + 2]).toBe(b![59]);
    expect(t.findOption(TCP_OPT_TIMESTAMP)).toBeGreaterThan(40);
    expect(verifyAny(x)).toBe(true);
    const kernel = t.checksum;
    expect(fillAny(x)).toBe(kernel);
    const r = t.parse() as TcpRepr;
    expect(r.flags).toBe(TCP_SYN);
    expect(r.options.length).toBe(20);
    // emit from the repr gives the kernel's header (checksum zeroed, then filled again).
    const out = Buffer.from(b!);
    out.fill(0, 20);
    TcpPacket.emit(r, out, 20);
    new TcpPacket(out, 20, 40).fillChecksumV4(out, 12, 16);
    expect(out.equals(b!)).toBe(true);
    expect(describeIp(b!)).toMatch(
      /^IP 192\.168\.10\.1\.\d+ > 192\.168\.20\.20\.8080: Flags \[S\], seq \d+, win \d+, options \[mss 1360,sackOK,TS val \d+ ecr 0,nop,wscale \d+\], length 0 /,
    );
  });

  it('tcp-synack4, tcp-rst4 and the IPv6 segments', () => {
    const sa = tcpOf(kernelFixture('tcp-synack4')[0]!);
    expect(sa.t.check()).toBe(DropReason.None);
    expect(sa.t.flags).toBe(TCP_SYN | TCP_ACK);
    expect(sa.t.srcPort).toBe(8000);
    expect(sa.t.dstPort).toBe(40003);
    expect(sa.t.ack).toBe(0x01020305); // the script's ISN 0x01020304 + 1
    expect(sa.t.mss).toBe(1360);
    expect(verifyAny(sa)).toBe(true);
    const rst = tcpOf(kernelFixture('tcp-rst4')[0]!);
    expect(rst.t.check()).toBe(DropReason.None);
    expect(rst.t.flags).toBe(TCP_RST | TCP_ACK);
    expect(rst.t.headerLength).toBe(20);
    expect(rst.t.window).toBe(0);
    expect(rst.t.mss).toBe(-1);
    expect(verifyAny(rst)).toBe(true);
    expect(describeIp(rst.t.buf)).toContain('Flags [R.], seq 0, ack 8, win 0, length 0');
    for (const [n, mss] of [['tcp-syn6', 1340], ['tcp-synack6', 1340], ['tcp-rst6', -1]] as const) {
      const x = tcpOf(kernelFixture(n)[0]!);
      expect(x.v6).toBe(true);
      expect(x.t.check()).toBe(DropReason.None);
      expect(x.t.mss).toBe(mss);
      expect(verifyAny(x)).toBe(true);
      expect(x.t.verifyChecksumV4(x.t.buf, V6_SRC, V6_DST)).toBe(false);
      const k = x.t.checksum;
      expect(fillAny(x)).toBe(k);
    }
  });
});

describe('clampMss (RFC 1624 incremental)', () => {
  it('rewrites the kernel SYN and SYN-ACK (v4 and v6) and matches recomputation', () => {
    for (const n of ['tcp-syn4', 'tcp-synack4', 'tcp-syn6', 'tcp-synack6']) {
      const b = Buffer.from(kernelFixture(n)[0]!);
      const x = tcpOf(b);
      const before = x.t.mss;
      expect(x.t.clampMss(before)).toBe(false); // not above the limit: untouched
      expect(x.t.clampMss(before + 100)).toBe(false);
      expect(x.t.clampMss(1200)).toBe(true);
      expect(x.t.mss).toBe(1200);
      expect(verifyAny(x)).toBe(true);
      const inc = x.t.checksum;
      expect(fillAny(x)).toBe(inc);
    }
  });

  it('leaves non-SYN segments and segments without MSS alone', () => {
    const rst = Buffer.from(kernelFixture('tcp-rst4')[0]!);
    const copy = Buffer.from(rst);
    expect(tcpOf(rst).t.clampMss(100)).toBe(false);
    expect(rst.equals(copy)).toBe(true);
    // An ACK with an MSS option (nonsense, but must not be touched).
    const syn = Buffer.from(kernelFixture('tcp-syn4')[0]!);
    const x = tcpOf(syn);
    x.t.flags = TCP_ACK;
    fillAny(x);
    const c2 = Buffer.from(syn);
    expect(x.t.clampMss(100)).toBe(false);
    expect(syn.equals(c2)).toBe(true);
  });

  /** A SYN with `lead` NOPs before MSS (so the value sits at an odd or even offset). */
  function syn(lead: number, mss: number, payload: Uint8Array, flags: number): Buffer {
    const opts = [...new Array(lead).fill(1), 2, 4, mss >> 8, mss & 0xff];
    while (opts.length % 4) opts.push(0);
    const hl = 20 + opts.length;
    const b = Buffer.alloc(20 + hl + payload.length);
    Ipv4Packet.emit(
      { src: 0x0a000001, dst: 0x0a000002, protocol: 6, ttl: 64, dscp: 0, ecn: 0, ident: 1, dontFragment: true,
        moreFragments: false, fragOffset: 0, payloadLength: hl + payload.length, options: new Uint8Array(0) },
      b,
      0,
    );
    TcpPacket.emit({ srcPort: 1, dstPort: 2, seq: 3, ack: 0, flags, window: 100, urgent: 0, options: Uint8Array.from(opts), payloadLength: payload.length }, b, 20);
    b.set(payload, 20 + hl);
    new TcpPacket(b, 20, hl + payload.length).fillChecksumV4(b, 12, 16);
    return b;
  }

  it('property: any MSS position (odd/even), value and limit gives a verifying, recomputation-equal checksum', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 3 }),
        fc.nat(0xffff),
        fc.nat(0xffff),
        fc.uint8Array({ maxLength: 64 }),
        fc.constantFrom(TCP_SYN, TCP_SYN | TCP_ACK, TCP_SYN | TCP_ECE | TCP_CWR),
        (lead, mss, limit, payload, flags) => {
          const b = syn(lead, mss, payload, flags);
          const t = new TcpPacket(b, 20, b.length - 20);
          expect(t.mss).toBe(mss);
          const changed = t.clampMss(limit);
          expect(changed).toBe(mss > limit);
          expect(t.mss).toBe(Math.min(mss, limit));
          expect(t.verifyChecksumV4(b, 12, 16)).toBe(true);
          const inc = t.checksum;
          const full = t.fillChecksumV4(b, 12, 16);
          if (inc !== full) expect(inc ^ full).toBe(0xffff); // the one's-complement zero corner only
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('the 0x0000 corner: a clamp whose recomputed checksum is 0x0000 gives 0x0000 incrementally', () => {
    // Sweep one payload word over all 65536 values: exactly the one that makes the clamped
    // segment's data sum 0xffff has a recomputed checksum of 0x0000 (never 0xffff for TCP).
    let hits = 0;
    for (let w = 0; w < 65536; w++) {
      const b = syn(1, 1460, Uint8Array.from([w >> 8, w & 0xff]), TCP_SYN);
      const t = new TcpPacket(b, 20, b.length - 20);
      expect(t.clampMss(1400)).toBe(true);
      const inc = t.checksum;
      const full = t.fillChecksumV4(b, 12, 16);
      expect(full).not.toBe(0xffff);
      if (full === 0) {
        hits++;
        expect(inc).toBe(0);
      } else expect(inc).toBe(full);
    }
    expect(hits).toBe(1);
  });
});

describe('TcpPacket checks and options', () => {
  it('check(): truncated and data offset errors', () => {
    const b = new Uint8Array(24);
    expect(new TcpPacket(b, 0, 19).check()).toBe(DropReason.Truncated);
    b[12] = 0x40;
    expect(new TcpPacket(b, 0, 24).check()).toBe(DropReason.BadTcpHeaderLength);
    b[12] = 0x70;
    expect(new TcpPacket(b, 0, 24).check()).toBe(DropReason.BadTcpHeaderLength);
    expect(new TcpPacket(b, 0, 24).parse()).toBe(DropReason.BadTcpHeaderLength);
    b[12] = 0x60;
    expect(new TcpPacket(b, 0, 24).check()).toBe(DropReason.None);
    expect(new TcpPacket(b, 0, 24).payloadLength).toBe(0);
  });

  const optCases: [string, number[], DropReason, number][] = [
    ['nop nop eol', [1, 1, 0, 0], DropReason.None, -1],
    ['mss', [2, 4, 5, 0xb4], DropReason.None, 1460],
    ['mss after nop (odd)', [1, 2, 4, 5, 0xb4, 0, 0, 0], DropReason.None, 1460],
    ['mss length 3', [2, 3, 5, 0], DropReason.BadTcpOption, -1],
    ['length 0', [8, 0, 0, 0], DropReason.BadTcpOption, -1],
    ['length past header', [1, 1, 8, 10], DropReason.BadTcpOption, -1],
    ['length byte missing', [1, 1, 1, 8], DropReason.BadTcpOption, -1],
    ['wscale length 4', [3, 4, 7, 0], DropReason.BadTcpOption, -1],
    ['sack 1 block', [5, 10, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0], DropReason.None, -1],
    ['sack bad length', [5, 6, 0, 0, 0, 1, 0, 0], DropReason.BadTcpOption, -1],
    ['mss after broken option is not found', [30, 9, 2, 4, 5, 0xb4, 0, 0], DropReason.BadTcpOption, -1],
    ['unknown option ok', [30, 4, 1, 2], DropReason.None, -1],
  ];
  for (const [name, opts, want, mss] of optCases) {
    it(`options: ${name}`, () => {
      const b = new Uint8Array(20 + opts.length);
      b[12] = ((20 + opts.length) / 4) << 4;
      b[13] = TCP_SYN;
      b.set(opts, 20);
      const t = new TcpPacket(b);
      expect(t.check()).toBe(DropReason.None);
      expect(t.checkOptions()).toBe(want);
      expect(t.mss).toBe(mss);
      expect(typeof t.describe()).toBe('string');
      expect(t.clampMss(0)).toBe(mss > 0);
    });
  }

  it('flag setters and the AE bit', () => {
    const b = new Uint8Array(20);
    b[12] = 0x50;
    const t = new TcpPacket(b);
    t.flags = TCP_FIN | TCP_PSH | TCP_URG | TCP_AE;
    expect(b[12]).toBe(0x51);
    expect(b[13]).toBe(TCP_FIN | TCP_PSH | TCP_URG);
    expect(t.flags).toBe(TCP_FIN | TCP_PSH | TCP_URG | TCP_AE);
    expect(t.headerLength).toBe(20);
    t.headerLength = 60;
    expect(b[12]).toBe(0xf1);
    expect(t.describe()).toContain('Flags [FPUA]');
  });

  it('checksum equals a byte-built pseudo-header reference', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 20, maxLength: 200 }), fc.nat(0xffffffff), fc.nat(0xffffffff), (seg, src, dst) => {
        const b = new Uint8Array(20 + seg.length);
        Ipv4Packet.emit(
          { src, dst, protocol: 6, ttl: 1, dscp: 0, ecn: 0, ident: 0, dontFragment: false, moreFragments: false,
            fragOffset: 0, payloadLength: seg.length, options: new Uint8Array(0) },
          b,
          0,
        );
        b.set(seg, 20);
        const t = new TcpPacket(b, 20, seg.length);
        const c = t.fillChecksumV4(b, 12, 16);
        const ref = new Uint8Array(12 + seg.length + 1);
        ref.set(b.subarray(12, 20), 0);
        ref[9] = 6;
        ref[10] = seg.length >> 8;
        ref[11] = seg.length & 0xff;
        ref.set(b.subarray(20), 12);
        ref[12 + 16] = 0;
        ref[12 + 17] = 0;
        expect(c).toBe(checksum(ref, 0, 12 + seg.length));
        expect(fold(sumWords(b, 20, seg.length, pseudoHeaderSumV4(b, 12, 16, 6, seg.length)))).toBe(0xffff);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('tshark oracle', () => {
  it('accepts MSS-clamped SYN/SYN-ACKs (v4 and v6)', (ctx) => {
    if (!tsharkAvailable()) return ctx.skip(TSHARK_MISSING);
    const out: Buffer[] = [];
    for (const n of ['tcp-syn4', 'tcp-synack4', 'tcp-syn6', 'tcp-synack6']) {
      for (const limit of [1200, 536, 1000]) {
        const b = Buffer.from(kernelFixture(n)[0]!);
        expect(tcpOf(b).t.clampMss(limit)).toBe(true);
        out.push(b);
      }
    }
    const v = tsharkCheckPackets(out, { extraArgs: ['-o', 'tcp.analyze_sequence_numbers:FALSE'] });
    expect(v.problems).toEqual([]);
    expect(v.perPacket.length).toBe(12);
  });
});
