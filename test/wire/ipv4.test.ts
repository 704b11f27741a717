import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DropReason } from '../../src/base/drop-reason.ts';
import { checksum, sumWords, fold, verify } from '../../src/wire/checksum.ts';
import { Ipv4Packet, type Ipv4Repr } from '../../src/wire/ipv4.ts';
import {
  IPV4_OPT_LSRR,
  IPV4_OPT_NOP,
  IPV4_OPT_RA,
  IPV4_OPT_RR,
  IPV4_OPT_TS,
  Ipv4OptionCursor,
  copiedOptionsLength,
  copyOptionsForFragment,
  findOption,
  lastOptionErrorOffset,
  nextOption,
  optionCopied,
  validateOptions,
} from '../../src/wire/ipv4-options.ts';
import { Icmpv4Packet } from '../../src/wire/icmpv4.ts';
import { UdpPacket } from '../../src/wire/udp.ts';
import { TcpPacket } from '../../src/wire/tcp.ts';
import { kernelFixture } from '../support/pcap.ts';
import {
  IP_PROTO_ICMP,
  IP_PROTO_TCP,
  IP_PROTO_UDP,
  isClassEV4,
  isLimitedBroadcastV4,
  isLoopbackV4,
  isMulticastV4,
  isThisNetworkV4,
  readV4,
  v4Text,
} from '../../src/wire/ip.ts';
import { describeIp } from '../../src/wire/describe.ts';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const A = (s: string) => s.split('.').reduce((a, b) => a * 256 + Number(b), 0);
const u16 = (b: Uint8Array, o: number) => (b[o]! << 8) | b[o + 1]!;

/** Independent header decode with DataView, to compare the view's getters against. */
function decode(b: Buffer) {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const ff = dv.getUint16(6);
  return {
    version: dv.getUint8(0) >> 4,
    ihl: dv.getUint8(0) & 15,
    tos: dv.getUint8(1),
    totalLength: dv.getUint16(2),
    ident: dv.getUint16(4),
    df: (ff & 0x4000) !== 0,
    mf: (ff & 0x2000) !== 0,
    fragOffset: (ff & 0x1fff) * 8,
    ttl: dv.getUint8(8),
    protocol: dv.getUint8(9),
    checksum: dv.getUint16(10),
    src: dv.getUint32(12),
    dst: dv.getUint32(16),
  };
}

function expectFieldsMatch(p: Ipv4Packet, b: Buffer) {
  const d = decode(b);
  expect(p.version).toBe(d.version);
  expect(p.ihl).toBe(d.ihl);
  expect(p.headerLength).toBe(d.ihl * 4);
  expect(p.tos).toBe(d.tos);
  expect(p.dscp).toBe(d.tos >> 2);
  expect(p.ecn).toBe(d.tos & 3);
  expect(p.totalLength).toBe(d.totalLength);
  expect(p.ident).toBe(d.ident);
  expect(p.dontFragment).toBe(d.df);
  expect(p.moreFragments).toBe(d.mf);
  expect(p.fragOffset).toBe(d.fragOffset);
  expect(p.fragOffsetRaw).toBe(d.fragOffset / 8);
  expect(p.ttl).toBe(d.ttl);
  expect(p.protocol).toBe(d.protocol);
  expect(p.checksum).toBe(d.checksum);
  expect(p.srcAddr).toBe(d.src);
  expect(p.dstAddr).toBe(d.dst);
}

describe('Ipv4Packet fields on hand-checked bytes', () => {
  // ping 192.168.10.10 -> 192.168.20.20, id 0x42a8, DF, TTL 64, ICMP, checksum 0x5892
  const h = hex('4500005442a8400040015892c0a80a0ac0a81414');

  it('reads every field', () => {
    const b = Buffer.alloc(84);
    h.copy(b);
    const p = new Ipv4Packet(b);
    expect(p.check()).toBe(DropReason.None);
    expect(p.version).toBe(4);
    expect(p.ihl).toBe(5);
    expect(p.headerLength).toBe(20);
    expect(p.dscp).toBe(0);
    expect(p.ecn).toBe(0);
    expect(p.totalLength).toBe(84);
    expect(p.ident).toBe(0x42a8);
    expect(p.dontFragment).toBe(true);
    expect(p.moreFragments).toBe(false);
    expect(p.reservedFlag).toBe(false);
    expect(p.isFragment).toBe(false);
    expect(p.fragOffset).toBe(0);
    expect(p.ttl).toBe(64);
    expect(p.protocol).toBe(IP_PROTO_ICMP);
    expect(p.checksum).toBe(0x5892);
    expect(p.srcAddr).toBe(A('192.168.10.10'));
    expect(p.dstAddr).toBe(A('192.168.20.20'));
    expect(p.srcOffset).toBe(12);
    expect(p.dstOffset).toBe(16);
    expect(p.payloadOffset).toBe(20);
    expect(p.payloadLength).toBe(64);
    expect(p.optionsLength).toBe(0);
    expect(p.verifyChecksum()).toBe(true);
    expect(p.validate()).toBe(DropReason.None);
  });

  it('setters write exactly the bits they own', () => {
    const b = Buffer.alloc(40);
    h.copy(b, 10);
    const p = new Ipv4Packet(b, 10, 20);
    p.dscp = 46;
    p.ecn = 1;
    expect(b[11]).toBe((46 << 2) | 1);
    p.ecn = 3;
    expect(p.dscp).toBe(46);
    p.moreFragments = true;
    p.fragOffset = 1480;
    expect(p.dontFragment).toBe(true);
    expect(p.moreFragments).toBe(true);
    expect(p.fragOffsetRaw).toBe(185);
    expect(u16(b, 16)).toBe(0x4000 | 0x2000 | 185);
    p.dontFragment = false;
    p.reservedFlag = true;
    expect(u16(b, 16)).toBe(0x8000 | 0x2000 | 185);
    p.fragOffsetRaw = 0x1fff;
    expect(p.fragOffset).toBe(0x1fff * 8);
    expect(p.moreFragments).toBe(true);
    p.srcAddr = A('10.1.2.3');
    p.dstAddr = 0xffffffff;
    expect(b.subarray(22, 30).toString('hex')).toBe('0a010203ffffffff');
    expect(b.subarray(0, 10).every((x) => x === 0)).toBe(true);
    expect(b.subarray(30).every((x) => x === 0)).toBe(true);
    p.fillChecksum();
    expect(verify(b, 10, 20)).toBe(true);
    p.ihl = 6;
    p.version = 6;
    expect(b[10]).toBe(0x66);
  });
});

describe('Ipv4Packet on kernel fixtures', () => {
  it('ping4: every field and the header checksum the kernel wrote', () => {
    const pkts = kernelFixture('ping4');
    expect(pkts.length).toBe(2);
    pkts.forEach((b, i) => {
      const p = new Ipv4Packet(b);
      expect(p.validate()).toBe(DropReason.None);
      expectFieldsMatch(p, b);
      expect(p.version).toBe(4);
      expect(p.headerLength).toBe(20);
      expect(p.totalLength).toBe(84);
      expect(p.dontFragment).toBe(true);
      expect(p.isFragment).toBe(false);
      expect(p.ttl).toBe(64);
      expect(p.protocol).toBe(IP_PROTO_ICMP);
      expect(v4Text(p.srcAddr)).toBe('192.168.10.1');
      expect(v4Text(p.dstAddr)).toBe('192.168.20.20');
      expect(p.payloadLength).toBe(64);
      const kernelSum = p.checksum;
      p.fillChecksum();
      expect(p.checksum).toBe(kernelSum);
      const icmp = new Icmpv4Packet(b, p.payloadOffset, p.payloadLength);
      expect(icmp.check()).toBe(DropReason.None);
      expect(icmp.echoSeq).toBe(i + 1);
      expect(describeIp(p.buf, p.off, p.len)).toMatch(
        new RegExp(`^IP 192\\.168\\.10\\.1 > 192\\.168\\.20\\.20: ICMP echo request, id ${icmp.echoIdent}, seq ${i + 1}, length 64 \\(tos 0x0, ttl 64, id ${p.ident}, offset 0, flags \\[DF\\], proto ICMP \\(1\\), length 84\\)$`),
      );
      // The view alone renders its own header; describe.ts decodes what is inside.
      expect(p.describe()).toBe(
        `IP 192.168.10.1 > 192.168.20.20: ICMP, length 64 (tos 0x0, ttl 64, id ${p.ident}, offset 0, flags [DF], proto ICMP (1), length 84)`,
      );
    });
  });

  it('ping4-frag: kernel fragments of a 4028-byte datagram over MTU 1400', () => {
    const frags = kernelFixture('ping4-frag');
    expect(frags.map((b) => b.length)).toEqual([1396, 1396, 1276]);
    const views = frags.map((b) => new Ipv4Packet(b));
    for (const [i, p] of views.entries()) {
      expect(p.validate()).toBe(DropReason.None);
      expectFieldsMatch(p, frags[i]!);
      expect(p.isFragment).toBe(true);
      expect(p.ident).toBe(views[0]!.ident);
      expect(p.protocol).toBe(IP_PROTO_ICMP);
      expect(p.dontFragment).toBe(false);
    }
    expect(views.map((p) => p.fragOffset)).toEqual([0, 1376, 2752]);
    expect(views.map((p) => p.moreFragments)).toEqual([true, true, false]);
    expect(views.map((p) => p.payloadLength)).toEqual([1376, 1376, 1256]);
    // Every non-last fragment carries a multiple of 8 bytes.
    expect(views[0]!.payloadLength % 8).toBe(0);
    // Reassemble by offset: the ICMP message checksum holds over the whole 4008 bytes.
    const msg = new Uint8Array(4008);
    for (const p of views) msg.set(p.buf.subarray(p.payloadOffset, p.payloadOffset + p.payloadLength), p.fragOffset);
    const icmp = new Icmpv4Packet(msg, 0, msg.length);
    expect(icmp.type).toBe(8);
    expect(icmp.check()).toBe(DropReason.None);
    // ping's data pattern after the 16-byte timestamp: 0x10, 0x11, ... (mod 256)
    for (let i = 16; i < 4000; i++) expect(msg[8 + i]).toBe(i & 0xff);
    expect(describeIp(views[1]!.buf, views[1]!.off, views[1]!.len)).toContain(`ip-proto-1 (frag ${views[0]!.ident}:1376@1376+)`);
    expect(describeIp(views[2]!.buf, views[2]!.off, views[2]!.len)).toContain(`(frag ${views[0]!.ident}:1256@2752)`);
    expect(describeIp(views[0]!.buf, views[0]!.off, views[0]!.len)).not.toContain('wrong icmp cksum');
  });

  it('ping4-rr: record-route option (IHL 15) walked and validated', () => {
    const [b] = kernelFixture('ping4-rr');
    const p = new Ipv4Packet(b!);
    expect(p.validate()).toBe(DropReason.None);
    expectFieldsMatch(p, b!);
    expect(p.ihl).toBe(15);
    expect(p.optionsLength).toBe(40);
    expect(p.payloadLength).toBe(64);
    const c = new Ipv4OptionCursor().reset(b!, p.optionsOffset, p.optionsOffset + p.optionsLength);
    const seen: [number, number][] = [];
    while (c.next()) seen.push([c.type, c.length]);
    expect(c.error).toBe(DropReason.None);
    expect(seen).toEqual([
      [IPV4_OPT_NOP, 1],
      [IPV4_OPT_RR, 39],
    ]);
    const rr = findOption(b!, 20, 60, IPV4_OPT_RR);
    expect(rr).toBe(21);
    expect(b![rr + 2]).toBe(8); // pointer after the first recorded address
    expect(readV4(b!, rr + 3)).toBe(A('192.168.10.1'));
    expect(optionCopied(IPV4_OPT_RR)).toBe(false);
    expect(copiedOptionsLength(b!, 20, 40)).toBe(0);
    expect(copyOptionsForFragment(b!, 20, 40, new Uint8Array(40), 0)).toBe(0);
    expect(describeIp(p.buf, p.off, p.len)).toContain('options (NOP,RR{192.168.10.1 0.0.0.0#');
    const icmp = new Icmpv4Packet(b!, p.payloadOffset, p.payloadLength);
    expect(icmp.check()).toBe(DropReason.None);
  });

  it('ping4-ts: timestamp option', () => {
    const [b] = kernelFixture('ping4-ts');
    const p = new Ipv4Packet(b!);
    expect(p.validate()).toBe(DropReason.None);
    expectFieldsMatch(p, b!);
    const ts = findOption(b!, 20, 60, IPV4_OPT_TS);
    expect(ts).toBe(20);
    expect(b![ts + 1]).toBe(40);
    expect(b![ts + 2]).toBe(9);
    expect(b![ts + 3]! & 15).toBe(0);
    expect(optionCopied(IPV4_OPT_TS)).toBe(false);
    expect(describeIp(p.buf, p.off, p.len)).toContain('TS{ptr 9, oflw 0, flag 0}');
  });

  it('igmp4-report: router-alert option (IHL 6), TOS 0xc0, TTL 1 to 224.0.0.22', () => {
    const [b] = kernelFixture('igmp4-report');
    const p = new Ipv4Packet(b!);
    expect(p.validate()).toBe(DropReason.None);
    expectFieldsMatch(p, b!);
    expect(p.ihl).toBe(6);
    expect(p.tos).toBe(0xc0);
    expect(p.ttl).toBe(1);
    expect(p.protocol).toBe(2);
    expect(v4Text(p.dstAddr)).toBe('224.0.0.22');
    expect(isMulticastV4(p.dstAddr)).toBe(true);
    expect(Array.from(b!.subarray(20, 24))).toEqual([IPV4_OPT_RA, 4, 0, 0]);
    // Router alert has the copied flag: every fragment carries it.
    const dst = new Uint8Array(8);
    expect(copiedOptionsLength(b!, 20, 4)).toBe(4);
    expect(copyOptionsForFragment(b!, 20, 4, dst, 0)).toBe(4);
    expect(Array.from(dst.subarray(0, 4))).toEqual([148, 4, 0, 0]);
    // TTL 1: not forwardable, unchanged.
    const copy = Buffer.from(b!);
    expect(new Ipv4Packet(copy).decrementTtl()).toBe(false);
    expect(copy.equals(b!)).toBe(true);
    expect(describeIp(p.buf, p.off, p.len)).toBe('IP 192.168.10.1 > 224.0.0.22: IGMP, length 16 (tos 0xc0, ttl 1, id 0, offset 0, flags [DF], proto IGMP (2), length 40, options (RA value 0))');
  });

  it('udp4-frag: kernel UDP fragments reassemble to a datagram whose UDP checksum holds', () => {
    const frags = kernelFixture('udp4-frag');
    const views = frags.map((b) => new Ipv4Packet(b));
    for (const p of views) expect(p.validate()).toBe(DropReason.None);
    expect(views.map((p) => p.fragOffset)).toEqual([0, 1376, 2752]);
    expect(views.map((p) => p.moreFragments)).toEqual([true, true, false]);
    expect(views.every((p) => p.protocol === IP_PROTO_UDP && !p.dontFragment && p.ident === views[0]!.ident)).toBe(true);
    const dgram = new Uint8Array(3008);
    for (const p of views) dgram.set(p.buf.subarray(p.payloadOffset, p.payloadOffset + p.payloadLength), p.fragOffset);
    const u = new UdpPacket(dgram, 0, dgram.length);
    expect(u.check()).toBe(DropReason.None);
    expect(u.dstPort).toBe(5557);
    expect(u.length).toBe(3008);
    expect(u.verifyChecksumV4(frags[0]!, views[0]!.srcOffset, views[0]!.dstOffset)).toBe(true);
    for (let i = 0; i < 3000; i++) expect(dgram[8 + i]).toBe(i & 0xff);
    // The first fragment alone: UDP length exceeds what is present, which is not an error here.
    expect(describeIp(views[0]!.buf, views[0]!.off, views[0]!.len)).toMatch(/UDP, length 3000 \(frag \d+:1376@0\+\)/);
  });

  it('every IPv4 fixture validates and its header checksum recomputes to the kernel value', () => {
    const names = [
      'igmp4-report', 'udp4-frag', 'ping4', 'udp4', 'tcp-syn4', 'ping4-frag', 'ping4-rr', 'ping4-ts', 'icmp4-port-unreach',
      'icmp4-time-exceeded', 'icmp4-frag-needed', 'icmp4-echo-reply', 'icmp4-echo-reply-frag',
      'tcp-synack4', 'tcp-rst4',
    ];
    for (const n of names) {
      for (const b of kernelFixture(n)) {
        const p = new Ipv4Packet(b);
        expect(p.validate(), n).toBe(DropReason.None);
        expectFieldsMatch(p, b);
        const repr = p.parse() as Ipv4Repr;
        expect(typeof repr).toBe('object');
        // emit() from the repr reproduces the kernel's header byte for byte.
        const out = new Uint8Array(p.headerLength);
        expect(Ipv4Packet.emit(repr, out, 0)).toBe(p.headerLength);
        expect(Buffer.from(out).equals(b.subarray(0, p.headerLength)), n).toBe(true);
      }
    }
  });
});

describe('Ipv4Packet.check() on broken headers', () => {
  const good = () => {
    const b = Buffer.alloc(40);
    hex('4500002842a8400040015892c0a80a0ac0a81414').copy(b);
    new Ipv4Packet(b, 0, 40).fillChecksum();
    return b;
  };
  const cases: [string, (b: Buffer) => number, DropReason][] = [
    ['19 bytes', () => 19, DropReason.Truncated],
    ['empty', () => 0, DropReason.Truncated],
    ['version 6', (b) => ((b[0] = 0x65), 40), DropReason.BadVersion],
    ['version 0', (b) => ((b[0] = 0x05), 40), DropReason.BadVersion],
    ['IHL 4', (b) => ((b[0] = 0x44), 40), DropReason.BadIhl],
    ['IHL 0', (b) => ((b[0] = 0x40), 40), DropReason.BadIhl],
    ['IHL 15 in 40 bytes', (b) => ((b[0] = 0x4f), 40), DropReason.Truncated],
    ['total length 19', (b) => (b.writeUInt16BE(19, 2), 40), DropReason.BadTotalLength],
    ['total length < IHL*4', (b) => ((b[0] = 0x46), b.writeUInt16BE(22, 2), b.fill(1, 20, 24), 40), DropReason.BadTotalLength],
    ['total length > buffer', (b) => (b.writeUInt16BE(41, 2), 40), DropReason.Truncated],
    ['total length 65535 in 40 bytes', (b) => (b.writeUInt16BE(65535, 2), 40), DropReason.Truncated],
    ['option length 0', (b) => ((b[0] = 0x46), b.set([7, 0, 4, 0], 20), 40), DropReason.BadOptionLength],
    ['option past header', (b) => ((b[0] = 0x46), b.set([148, 8, 0, 0], 20), 40), DropReason.BadOptionLength],
  ];
  for (const [name, mutate, reason] of cases) {
    it(`${name} -> ${DropReason[reason]}`, () => {
      const b = good();
      const len = mutate(b);
      const p = new Ipv4Packet(b, 0, len);
      expect(p.check()).toBe(reason);
      expect(p.validate()).toBe(reason);
      expect(p.parse()).toBe(reason);
      expect(typeof describeIp(p.buf, p.off, p.len)).toBe('string');
    });
  }

  it('a view that does not lie inside its buffer is Truncated, and nothing throws', () => {
    const b = good();
    for (const [off, len] of [[0, 41], [10, 40], [-1, 40], [39, 20], [40, 20], [1000, 20]] as const) {
      const p = new Ipv4Packet().wrap(b, off, len);
      expect(p.check()).toBe(DropReason.Truncated);
      expect(p.validate()).toBe(DropReason.Truncated);
      expect(typeof p.verifyChecksum()).toBe('boolean'); // needs only the header bytes
      expect(typeof describeIp(p.buf, p.off, p.len)).toBe('string');
    }
  });

  it('accepts trailing bytes beyond the total length (link padding)', () => {
    const b = good();
    const p = new Ipv4Packet(b, 0, 40);
    expect(p.check()).toBe(DropReason.None);
    expect(p.payloadLength).toBe(20);
  });

  it('reports a bad header checksum only from validate()', () => {
    const b = good();
    b[8] = 63;
    const p = new Ipv4Packet(b);
    expect(p.check()).toBe(DropReason.None);
    expect(p.verifyChecksum()).toBe(false);
    expect(p.validate()).toBe(DropReason.BadHeaderChecksum);
    expect(describeIp(p.buf, p.off, p.len)).toContain('bad cksum');
  });

  it('the unrolled 20-byte verify equals the generic sum on random headers', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 20, maxLength: 20 }), (raw) => {
        const b = Uint8Array.from(raw);
        b[0] = 0x45;
        const p = new Ipv4Packet(b);
        expect(p.verifyChecksum()).toBe(fold(sumWords(b, 0, 20)) === 0xffff);
        p.fillChecksum();
        expect(p.verifyChecksum()).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('IPv4 options', () => {
  /** Put `opts` (padded with EOL to 4) behind a 20-byte header and run check(). */
  function withOptions(opts: number[]): { p: Ipv4Packet; b: Buffer } {
    const ol = (opts.length + 3) & ~3;
    const b = Buffer.alloc(20 + ol + 8);
    b[0] = 0x40 | ((20 + ol) >> 2);
    b.writeUInt16BE(b.length, 2);
    b[8] = 64;
    b[9] = 17;
    b.set(opts, 20);
    const p = new Ipv4Packet(b);
    p.fillChecksum();
    return { p, b };
  }
  const rr = (len: number, ptr: number) => [IPV4_OPT_RR, len, ptr, ...new Array(Math.max(0, len - 3)).fill(0)];

  const valid: [string, number[]][] = [
    ['NOPs and EOL', [1, 1, 1, 0]],
    ['RR empty (ptr 4)', rr(39, 4)],
    ['RR full (ptr len+1)', rr(11, 12)],
    ['RR odd pointer inside with room', rr(11, 5)],
    ['LSRR', [131, 11, 4, 10, 0, 0, 1, 10, 0, 0, 2]],
    ['SSRR', [137, 7, 4, 10, 0, 0, 1]],
    ['RA', [148, 4, 0, 0]],
    ['TS tsonly', [68, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0]],
    ['TS ts+addr', [68, 12, 5, 1, 0, 0, 0, 0, 0, 0, 0, 0]],
    ['TS prespec', [68, 12, 5, 3, 0, 0, 0, 0, 0, 0, 0, 0]],
    ['TS full with overflow 14', [68, 8, 9, 0xe0, 0, 0, 0, 0]],
    ['unknown option 30 len 2', [30, 2]],
    ['unknown copied 0x99 len 6', [0x99, 6, 1, 2, 3, 4]],
    ['bytes after EOL are padding', [0, 7, 0, 0]],
  ];
  for (const [name, opts] of valid) {
    it(`valid: ${name}`, () => {
      const { p } = withOptions(opts);
      expect(p.validate()).toBe(DropReason.None);
      expect(typeof describeIp(p.buf, p.off, p.len)).toBe('string');
    });
  }

  // [name, options, reason, offset of the bad byte within the options]
  const broken: [string, number[], DropReason, number][] = [
    ['length byte missing', [1, 1, 1, 7], DropReason.BadOptionLength, 3],
    ['length 0', [30, 0, 0, 0], DropReason.BadOptionLength, 1],
    ['length 1', [30, 1, 0, 0], DropReason.BadOptionLength, 1],
    ['length past header', [148, 8, 0, 0], DropReason.BadOptionLength, 1],
    ['RR length 2', [7, 2, 0, 0], DropReason.BadOptionLength, 1],
    ['RR pointer 3', rr(7, 3), DropReason.BadOption, 2],
    ['RR pointer 0', rr(7, 0), DropReason.BadOption, 2],
    ['RR pointer leaves no room', rr(8, 8), DropReason.BadOption, 2],
    ['LSRR pointer 2', [131, 7, 2, 0, 0, 0, 0], DropReason.BadOption, 2],
    ['two RR', [...rr(7, 4), ...rr(7, 4)], DropReason.BadOption, 7],
    ['LSRR and SSRR', [131, 3, 4, 137, 3, 4], DropReason.BadOption, 3],
    ['TS length 3', [68, 3, 5, 0], DropReason.BadOptionLength, 1],
    ['TS pointer 4', [68, 8, 4, 0, 0, 0, 0, 0], DropReason.BadOption, 2],
    ['TS bad flag 2', [68, 8, 5, 2, 0, 0, 0, 0], DropReason.BadOption, 3],
    ['TS ts+addr no room', [68, 8, 5, 1, 0, 0, 0, 0], DropReason.BadOption, 2],
    ['TS full and overflow wraps', [68, 8, 9, 0xf0, 0, 0, 0, 0], DropReason.BadOption, 3],
    ['two TS', [68, 4, 5, 0, 68, 4, 5, 0], DropReason.BadOption, 4],
    ['RA length 2', [148, 2, 1, 1], DropReason.BadOptionLength, 1],
  ];
  for (const [name, opts, reason, at] of broken) {
    it(`broken: ${name} -> ${DropReason[reason]}`, () => {
      const { p } = withOptions(opts);
      expect(p.check()).toBe(reason);
      expect(lastOptionErrorOffset - 20).toBe(at);
      expect(p.parse()).toBe(reason);
      expect(typeof describeIp(p.buf, p.off, p.len)).toBe('string');
    });
  }

  it('nextOption and the cursor agree, and stop on a bad length', () => {
    const opts = [1, 148, 4, 0, 0, 1, 7, 7, 4, 0, 0, 0, 0, 0];
    const b = Uint8Array.from(opts);
    const offs: number[] = [];
    for (let o = 0; o < b.length && o >= 0; o = nextOption(b, o, b.length)) offs.push(o);
    expect(offs).toEqual([0, 1, 5, 6, 13]);
    const c = new Ipv4OptionCursor().reset(b, 0, b.length);
    const got: number[] = [];
    while (c.next()) got.push(c.offset);
    expect(got).toEqual([0, 1, 5, 6]);
    const bad = Uint8Array.from([1, 7, 9, 4]);
    expect(nextOption(bad, 1, 4)).toBe(-1);
    c.reset(bad, 0, 4);
    expect(c.next()).toBe(true);
    expect(c.next()).toBe(false);
    expect(c.error).toBe(DropReason.BadOptionLength);
    expect(c.errorOffset).toBe(2);
  });

  it('copyOptionsForFragment keeps only copied options, padded to 4', () => {
    // NOP, LSRR(131, copied) 7 bytes, RR(7) 7 bytes, RA(148, copied) 4 bytes, unknown copied 0x99 3 bytes, EOL
    const opts = [
      1, 131, 7, 4, 10, 0, 0, 1, 7, 7, 4, 0, 0, 0, 0, 148, 4, 0, 0, 0x99, 3, 0xaa, 0, 0,
    ];
    const src = Uint8Array.from([0xee, 0xee, ...opts]);
    const dst = new Uint8Array(48).fill(0x55);
    const n = copyOptionsForFragment(src, 2, opts.length, dst, 4);
    expect(n).toBe(16);
    expect(copiedOptionsLength(src, 2, opts.length)).toBe(16);
    expect(Array.from(dst.subarray(4, 4 + n))).toEqual([131, 7, 4, 10, 0, 0, 1, 148, 4, 0, 0, 0x99, 3, 0xaa, 0, 0]);
    expect(dst[3]).toBe(0x55);
    expect(dst[20]).toBe(0x55);
    expect(optionCopied(IPV4_OPT_LSRR)).toBe(true);
    expect(optionCopied(IPV4_OPT_RA)).toBe(true);
    // The copied options form a valid header for a fragment.
    const { p } = withOptions(Array.from(dst.subarray(4, 4 + n)));
    expect(p.validate()).toBe(DropReason.None);
    // Nothing to copy: 0 bytes; exactly 4 copied bytes: no padding.
    expect(copyOptionsForFragment(Uint8Array.from([1, 1, 7, 3, 4, 0]), 0, 6, dst, 0)).toBe(0);
    expect(copyOptionsForFragment(Uint8Array.from([148, 4, 0, 0]), 0, 4, dst, 0)).toBe(4);
    // Stops at a malformed option.
    expect(copyOptionsForFragment(Uint8Array.from([148, 4, 0, 0, 131, 9, 4, 0]), 0, 8, dst, 0)).toBe(4);
  });
});

describe('RFC 1624 incremental updates on IPv4 (property tests)', () => {
  /** A random valid IPv4 header + payload of the given protocol with correct checksums. */
  const arbPacket = fc.record({
    tos: fc.nat(255),
    ident: fc.nat(0xffff),
    df: fc.boolean(),
    ttl: fc.integer({ min: 0, max: 255 }),
    proto: fc.constantFrom(IP_PROTO_TCP, IP_PROTO_UDP, IP_PROTO_ICMP, 47),
    src: fc.nat(0xffffffff),
    dst: fc.nat(0xffffffff),
    payload: fc.uint8Array({ minLength: 20, maxLength: 120 }),
    udpZero: fc.boolean(),
  });
  function build(r: {
    tos: number; ident: number; df: boolean; ttl: number; proto: number; src: number; dst: number;
    payload: Uint8Array; udpZero: boolean;
  }): Buffer {
    const b = Buffer.alloc(20 + r.payload.length);
    Ipv4Packet.emit(
      {
        src: r.src, dst: r.dst, protocol: r.proto, ttl: r.ttl, dscp: r.tos >> 2, ecn: r.tos & 3,
        ident: r.ident, dontFragment: r.df, moreFragments: false, fragOffset: 0,
        payloadLength: r.payload.length, options: new Uint8Array(0),
      },
      b,
      0,
    );
    b.set(r.payload, 20);
    if (r.proto === IP_PROTO_TCP) {
      b[20 + 12] = 0x50;
      new TcpPacket(b, 20, r.payload.length).fillChecksumV4(b, 12, 16);
    } else if (r.proto === IP_PROTO_UDP) {
      b.writeUInt16BE(r.payload.length, 24);
      const u = new UdpPacket(b, 20, r.payload.length);
      if (r.udpZero) u.checksum = 0;
      else u.fillChecksumV4(b, 12, 16);
    }
    return b;
  }
  const fullIpSum = (b: Buffer) => {
    const c = Buffer.from(b.subarray(0, 20));
    c.writeUInt16BE(0, 10);
    return checksum(c, 0, 20);
  };

  it('TTL decrement equals full recomputation, and TTL 0/1 is refused unchanged', () => {
    fc.assert(
      fc.property(arbPacket, (r) => {
        const b = build(r);
        const before = Buffer.from(b);
        const p = new Ipv4Packet(b);
        const ok = p.decrementTtl();
        if (r.ttl <= 1) {
          expect(ok).toBe(false);
          expect(b.equals(before)).toBe(true);
          return;
        }
        expect(ok).toBe(true);
        expect(p.ttl).toBe(r.ttl - 1);
        expect(p.checksum).toBe(fullIpSum(b));
        expect(p.validate()).toBe(DropReason.None);
      }),
      { numRuns: 5000 },
    );
  });

  it('a TTL chain down to 1 keeps the checksum equal to recomputation at every hop', () => {
    const b = build({ tos: 0, ident: 0xffff, df: true, ttl: 255, proto: 1, src: 0xffffffff, dst: 0xfffffffe, payload: new Uint8Array(20), udpZero: false });
    const p = new Ipv4Packet(b);
    let hops = 0;
    while (p.decrementTtl()) {
      hops++;
      expect(p.checksum).toBe(fullIpSum(b));
    }
    expect(hops).toBe(254);
    expect(p.ttl).toBe(1);
  });

  it('address rewrite updates IP and TCP/UDP checksums like full recomputation', () => {
    fc.assert(
      fc.property(arbPacket, fc.nat(0xffffffff), fc.boolean(), (r, addr, which) => {
        const b = build(r);
        const p = new Ipv4Packet(b);
        if (which) p.rewriteSrcAddr(addr);
        else p.rewriteDstAddr(addr);
        expect(which ? p.srcAddr : p.dstAddr).toBe(addr);
        expect(p.checksum).toBe(fullIpSum(b));
        const l4len = r.payload.length;
        if (r.proto === IP_PROTO_TCP) {
          const t = new TcpPacket(b, 20, l4len);
          expect(t.verifyChecksumV4(b, 12, 16)).toBe(true);
          const inc = t.checksum;
          t.fillChecksumV4(b, 12, 16);
          // One's complement: both zeros verify; recomputation gives the same field except in
          // the all-zero-sum corner (which eqn. 3 resolves to 0x0000 vs recomputed 0xffff).
          if (inc !== t.checksum) expect(inc ^ t.checksum).toBe(0xffff);
        } else if (r.proto === IP_PROTO_UDP) {
          const u = new UdpPacket(b, 20, l4len);
          if (r.udpZero) expect(u.checksum).toBe(0);
          else {
            expect(u.checksum).not.toBe(0);
            expect(u.verifyChecksumV4(b, 12, 16)).toBe(true);
            const inc = u.checksum;
            expect(u.fillChecksumV4(b, 12, 16)).toBe(inc);
          }
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('UDP rewrite whose incremental result is 0 transmits 0xffff', () => {
    // Find a payload where the rewritten datagram's checksum computes to 0.
    const b = build({ tos: 0, ident: 1, df: false, ttl: 9, proto: IP_PROTO_UDP, src: A('10.0.0.1'), dst: A('10.0.0.2'), payload: new Uint8Array(12), udpZero: false });
    const p = new Ipv4Packet(b);
    const u = new UdpPacket(b, 20, 12);
    // Choose payload word w so that, after rewriting src to 10.0.0.9, the sum is 0xffff.
    b.writeUInt16BE(0, 30);
    const target = A('10.0.0.9');
    const tmp = Buffer.from(b);
    tmp.writeUInt32BE(target, 12);
    tmp.writeUInt16BE(0, 26);
    const s = fold(sumWords(tmp, 20, 12, sumWords(tmp, 12, 8, 17 + 12)));
    b.writeUInt16BE(~s & 0xffff, 30);
    u.fillChecksumV4(b, 12, 16);
    p.fillChecksum();
    p.rewriteSrcAddr(target);
    expect(u.checksum).toBe(0xffff);
    expect(u.verifyChecksumV4(b, 12, 16)).toBe(true);
    expect(u.fillChecksumV4(b, 12, 16)).toBe(0xffff);
  });

  it('non-first fragments get only the IP checksum updated', () => {
    const b = build({ tos: 0, ident: 1, df: false, ttl: 9, proto: IP_PROTO_UDP, src: 1, dst: 2, payload: new Uint8Array(40).fill(7), udpZero: false });
    const p = new Ipv4Packet(b);
    p.fragOffset = 1480;
    p.fillChecksum();
    const l4 = Buffer.from(b.subarray(20));
    p.rewriteDstAddr(A('192.0.2.1'));
    expect(b.subarray(20).equals(l4)).toBe(true);
    expect(p.validate()).toBe(DropReason.None);
  });
});

describe('Ipv4Repr parse/emit', () => {
  it('round-trips random representations with options', () => {
    const arbRepr = fc.record({
      src: fc.nat(0xffffffff),
      dst: fc.nat(0xffffffff),
      protocol: fc.nat(255),
      ttl: fc.nat(255),
      dscp: fc.nat(63),
      ecn: fc.nat(3),
      ident: fc.nat(0xffff),
      dontFragment: fc.boolean(),
      moreFragments: fc.boolean(),
      fragOffset: fc.nat(0x1fff).map((x) => x * 8),
      payloadLength: fc.nat(200),
      options: fc.constantFrom(
        new Uint8Array(0),
        Uint8Array.from([148, 4, 0, 0]),
        Uint8Array.from([1, 7, 7, 4, 0, 0, 0, 0]),
        Uint8Array.from([131, 7, 4, 1, 2, 3, 4, 0]),
      ),
    });
    fc.assert(
      fc.property(arbRepr, (r) => {
        const hl = Ipv4Packet.headerLength(r);
        const b = new Uint8Array(hl + r.payloadLength);
        expect(Ipv4Packet.emit(r, b, 0)).toBe(hl);
        const p = new Ipv4Packet(b);
        expect(p.validate()).toBe(DropReason.None);
        expect(p.parse()).toEqual({ ...r, options: Uint8Array.from(r.options) });
      }),
      { numRuns: 2000 },
    );
  });
});

describe('IPv4 address classes', () => {
  it('classifies', () => {
    expect(isThisNetworkV4(A('0.0.0.0'))).toBe(true);
    expect(isThisNetworkV4(A('0.1.2.3'))).toBe(true);
    expect(isThisNetworkV4(A('1.0.0.0'))).toBe(false);
    expect(isLoopbackV4(A('127.0.0.1'))).toBe(true);
    expect(isLoopbackV4(A('128.0.0.1'))).toBe(false);
    expect(isMulticastV4(A('224.0.0.1'))).toBe(true);
    expect(isMulticastV4(A('239.255.255.255'))).toBe(true);
    expect(isMulticastV4(A('240.0.0.0'))).toBe(false);
    expect(isClassEV4(A('240.0.0.1'))).toBe(true);
    expect(isClassEV4(A('255.255.255.255'))).toBe(true);
    expect(isLimitedBroadcastV4(A('255.255.255.255'))).toBe(true);
    expect(isLimitedBroadcastV4(A('255.255.255.254'))).toBe(false);
  });
});

describe('fuzz: random and mutated packets never throw', () => {
  it('100k buffers through check/validate/parse/describe, option walks, ICMP/UDP/TCP views and builders', async () => {
    const { buildEchoReply, buildIcmpv4Error, mayReplyWithIcmpError } = await import('../../src/wire/icmpv4.ts');
    const seeds: Buffer[] = [];
    for (const n of ['igmp4-report', 'udp4-frag', 'ping4', 'udp4', 'tcp-syn4', 'ping4-frag', 'ping4-rr', 'ping4-ts', 'icmp4-port-unreach', 'icmp4-time-exceeded', 'icmp4-frag-needed', 'tcp-synack4', 'tcp-rst4']) {
      seeds.push(...kernelFixture(n));
    }
    let s = 0x9e3779b9;
    const rnd = (n: number) => {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      return (s >>> 0) % n;
    };
    const ipv = new Ipv4Packet();
    const icmp = new Icmpv4Packet();
    const udp = new UdpPacket();
    const tcp = new TcpPacket();
    const cur = new Ipv4OptionCursor();
    const out = new Uint8Array(700);
    const scratch = new Uint8Array(2048);
    let accepted = 0;
    let sink = 0;
    const N = 100_000;
    for (let i = 0; i < N; i++) {
      let len: number;
      const mode = rnd(4);
      if (mode === 0) {
        // fully random bytes, often starting with 0x4X
        len = rnd(120);
        for (let j = 0; j < len; j++) scratch[j] = rnd(256);
        if (len > 0 && rnd(2)) scratch[0] = 0x40 | rnd(16);
      } else {
        const seed = seeds[rnd(seeds.length)]!;
        len = seed.length;
        scratch.set(seed);
        const muts = 1 + rnd(4);
        for (let m = 0; m < muts; m++) {
          const pos = rnd(Math.min(len, mode === 1 ? 64 : len));
          scratch[pos] = rnd(3) === 0 ? scratch[pos]! ^ (1 << rnd(8)) : rnd(256);
        }
        if (rnd(3) === 0) len = rnd(len + 1);
        // keep the header checksum right half the time so deeper layers get exercised
        if (rnd(2) && len >= 20) new Ipv4Packet(scratch, 0, len).fillChecksum();
      }
      const off = 0;
      ipv.wrap(scratch, off, len);
      const r = ipv.validate();
      sink += ipv.check() + r + describeIp(ipv.buf, ipv.off, ipv.len).length;
      const parsed = ipv.parse();
      if (typeof parsed === 'object') sink += parsed.ttl;
      if (len >= 20) {
        const hl = (scratch[0]! & 15) * 4;
        cur.reset(scratch, 20, Math.min(hl, len));
        while (cur.next()) sink += cur.length;
        sink += validateOptions(scratch, 20, Math.min(hl, len));
        sink += copyOptionsForFragment(scratch, 20, Math.max(0, Math.min(hl, len) - 20), out, 0);
      }
      sink += mayReplyWithIcmpError(scratch, off, len) ? 1 : 0;
      sink += buildIcmpv4Error(out, 0, 3, 1, 0, scratch, off, len, 1);
      if (r === DropReason.None) {
        accepted++;
        const po = ipv.payloadOffset;
        const pl = ipv.payloadLength;
        icmp.wrap(scratch, po, pl);
        sink += icmp.check() + icmp.describe().length;
        const ir = icmp.parse();
        if (typeof ir === 'object') sink += ir.type;
        udp.wrap(scratch, po, pl);
        sink += udp.check() + udp.describe().length + (udp.check() === DropReason.None && udp.verifyChecksumV4(scratch, 12, 16) ? 1 : 0);
        tcp.wrap(scratch, po, pl);
        sink += tcp.check() + tcp.checkOptions() + tcp.describe().length + tcp.mss;
        if (tcp.check() === DropReason.None) sink += tcp.clampMss(500) ? 1 : 0;
        sink += ipv.decrementTtl() ? 1 : 0;
        ipv.rewriteSrcAddr(0x0a000001);
        sink += buildEchoReply(scratch, off);
      }
    }
    expect(Number.isFinite(sink)).toBe(true);
    expect(accepted).toBeGreaterThan(N / 10);
  }, 120_000);
});
