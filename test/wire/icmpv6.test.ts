import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DropReason } from '../../src/base/drop-reason.ts';
import {
  ICMPV6_ERROR_MAX_QUOTE,
  buildIcmpv6Error,
  echoReplyInPlace,
  mayReplyWithIcmpv6Error,
} from '../../src/wire/icmpv6-error.ts';
import {
  ICMPV6_DEST_UNREACHABLE,
  ICMPV6_ECHO_REPLY,
  ICMPV6_ECHO_REQUEST,
  ICMPV6_PACKET_TOO_BIG,
  ICMPV6_PARAM_PROBLEM,
  ICMPV6_TIME_EXCEEDED,
  Icmpv6Packet,
  PARAM_PROBLEM_NEXT_HEADER,
  PARAM_PROBLEM_OPTION,
  TIME_EXCEEDED_HOP_LIMIT,
  TIME_EXCEEDED_REASSEMBLY,
  UNREACH_PORT,
  describeIcmpv6Body,
  isIcmpv6Error,
} from '../../src/wire/icmpv6.ts';
import { Ipv6Chain, walkIpv6Chain } from '../../src/wire/ipv6-chain.ts';
import { Ipv6Packet } from '../../src/wire/ipv6.ts';
import {
  A,
  concat,
  dstOpts,
  echoRequest,
  frag,
  hbh,
  hex,
  icmp6,
  pseudo,
  refChecksum,
  seqBytes,
  udp,
  v6,
} from './ipv6-build.ts';
import { describeIp } from '../../src/wire/describe.ts';

const S = 'fd00:10::1';
const D = 'fd00:20::20';
const ME = A('fd00:99::1');

/** The ICMPv6 message of an IPv6 packet verifies against the reference checksum. */
function icmpSumOk(p: Uint8Array): boolean {
  const c = new Ipv6Chain();
  if (walkIpv6Chain(p, 0, p.length, c) !== DropReason.None || c.upperProtocol !== 58) return false;
  return refChecksum(pseudo(p.subarray(8, 24), p.subarray(24, 40), 58, c.upperLength), p.subarray(c.upperOffset, c.end)) === 0;
}

describe('Icmpv6Packet view', () => {
  it('fields of an echo request built by hand, checksum verify/fill', () => {
    const pkt = v6(58, echoRequest(S, D, 0x1234, 7, seqBytes(8)));
    const m = new Icmpv6Packet(pkt, 40, pkt.length - 40);
    expect(m.check()).toBe(DropReason.None);
    expect(m.msgType).toBe(ICMPV6_ECHO_REQUEST);
    expect(m.code).toBe(0);
    expect(m.identifier).toBe(0x1234);
    expect(m.sequence).toBe(7);
    expect(m.rest).toBe(0x12340007);
    expect(m.bodyOffset).toBe(48);
    expect(m.bodyLength).toBe(8);
    expect(m.isError).toBe(false);
    expect(m.verifyChecksum(8, 24)).toBe(true);
    const good = m.checksum;
    m.checksum = 0;
    expect(m.verifyChecksum(8, 24)).toBe(false);
    m.fillChecksum(8, 24);
    expect(m.checksum).toBe(good);
    pkt[50] ^= 1;
    expect(m.verifyChecksum(8, 24)).toBe(false);
    // addresses may live in another buffer
    const addrs = concat(A(S), A(D));
    pkt[50] ^= 1;
    expect(m.verifyChecksum(0, 16, addrs)).toBe(true);
  });

  it('parse/emit round trip for echo, packet too big, parameter problem, time exceeded', () => {
    for (const repr of [
      { type: 128, code: 0, identifier: 1, sequence: 65535, bodyLength: 0 },
      { type: 129, code: 0, identifier: 65535, sequence: 0, bodyLength: 0 },
      { type: 2, code: 0, mtu: 1280, bodyLength: 0 },
      { type: 4, code: 2, pointer: 0xffffffff, bodyLength: 0 },
      { type: 3, code: 1, bodyLength: 0 },
    ]) {
      const b = new Uint8Array(8).fill(0xee);
      const m = new Icmpv6Packet(b);
      m.emit(repr);
      expect(m.parse()).toEqual(repr);
    }
    const b = new Uint8Array(8);
    new Icmpv6Packet(b).emit({ type: 2, code: 0, mtu: 1400, bodyLength: 0 });
    expect(hex(b)).toBe('0200000000000578');
  });

  it('check: Truncated below 4 bytes, BadIcmpLength for echo/errors below 8', () => {
    expect(new Icmpv6Packet(new Uint8Array(3)).check()).toBe(DropReason.Truncated);
    expect(new Icmpv6Packet(Uint8Array.from([128, 0, 0, 0, 0])).check()).toBe(DropReason.BadIcmpLength);
    expect(new Icmpv6Packet(Uint8Array.from([1, 0, 0, 0])).check()).toBe(DropReason.BadIcmpLength);
    expect(new Icmpv6Packet(Uint8Array.from([133, 0, 0, 0])).check()).toBe(DropReason.None);
    expect(new Icmpv6Packet(new Uint8Array(8), 4, 8).check()).toBe(DropReason.Truncated);
    expect(isIcmpv6Error(127)).toBe(true);
    expect(isIcmpv6Error(128)).toBe(false);
  });

  it('describe never throws on short or odd messages', () => {
    expect(describeIcmpv6Body(new Uint8Array(2), 0, 2)).toBe('ICMP6, [|icmp6] length 2');
    expect(describeIcmpv6Body(Uint8Array.from([128, 0, 0, 0]), 0, 4)).toBe('ICMP6, echo request [|icmp6]');
    expect(describeIcmpv6Body(Uint8Array.from([3, 0, 0, 0, 0, 0, 0, 0]), 0, 8)).toBe(
      'ICMP6, time exceeded in-transit for ?, length 8',
    );
    expect(describeIcmpv6Body(Uint8Array.from([99, 0, 0, 0]), 0, 4)).toBe('ICMP6, unknown icmp6 type (99), length 4');
    expect(describeIcmpv6Body(Uint8Array.from([1, 4, 0, 0, 0, 0, 0, 0]), 0, 100)).toBe(
      'ICMP6, destination unreachable, unreachable port, length 100',
    );
  });
});

describe('mayReplyWithIcmpv6Error (RFC 4443 2.4(e))', () => {
  const udpPkt = (o: { src?: string; dst?: string } = {}) =>
    v6(17, udp(o.src ?? S, o.dst ?? D, 1, 2, seqBytes(10)), o);

  it('allows errors about ordinary unicast packets', () => {
    const p = udpPkt();
    for (const [t, c] of [[1, 4], [2, 0], [3, 0], [3, 1], [4, 0], [4, 1], [4, 2]]) {
      expect(mayReplyWithIcmpv6Error(p, 0, p.length, t!, c!)).toBe(true);
    }
  });

  it('never about an ICMPv6 error message or a redirect, also behind extension headers', () => {
    for (const t of [1, 2, 3, 4, 100, 127, 137]) {
      const p = v6(58, icmp6(S, D, t, 0, 0, seqBytes(48)));
      expect(mayReplyWithIcmpv6Error(p, 0, p.length, 1, 4)).toBe(false);
      expect(mayReplyWithIcmpv6Error(p, 0, p.length, 2, 0)).toBe(false);
    }
    const hidden = v6(58, icmp6(S, D, 1, 4, 0, seqBytes(48)), { exts: [hbh(), dstOpts()] });
    expect(mayReplyWithIcmpv6Error(hidden, 0, hidden.length, 4, 0)).toBe(false);
    const infoBehind = v6(58, echoRequest(S, D, 1, 1, seqBytes(8)), { exts: [hbh(), dstOpts()] });
    expect(mayReplyWithIcmpv6Error(infoBehind, 0, infoBehind.length, 4, 0)).toBe(true);
    // ICMPv6 header missing (no type byte): treated as an error, like Linux
    const empty = v6(58, new Uint8Array(0));
    expect(mayReplyWithIcmpv6Error(empty, 0, empty.length, 4, 0)).toBe(false);
    // an error message with a payload length beyond the buffer: still seen as an error
    const cut = v6(58, icmp6(S, D, 1, 4, 0, seqBytes(48)), { payloadLength: 500 });
    expect(mayReplyWithIcmpv6Error(cut, 0, cut.length, 4, 0)).toBe(false);
    // a non-first fragment: its payload is not an ICMPv6 header
    const nf = v6(58, Uint8Array.from([1, 4, 0, 0, 0, 0, 0, 0]), { exts: [frag(1448, false, 3)] });
    expect(mayReplyWithIcmpv6Error(nf, 0, nf.length, 3, 1)).toBe(true);
  });

  it('never about unspecified or multicast sources', () => {
    for (const src of ['::', 'ff02::1', 'ff0e::5']) {
      const p = udpPkt({ src });
      expect(mayReplyWithIcmpv6Error(p, 0, p.length, 2, 0)).toBe(false);
      expect(mayReplyWithIcmpv6Error(p, 0, p.length, 4, 2)).toBe(false);
    }
    const ll = udpPkt({ src: 'fe80::1' });
    expect(mayReplyWithIcmpv6Error(ll, 0, ll.length, 1, 4)).toBe(true);
  });

  it('multicast destination: only Packet Too Big and Parameter Problem code 2 with action 10', () => {
    const p = udpPkt({ dst: 'ff02::1' });
    expect(mayReplyWithIcmpv6Error(p, 0, p.length, ICMPV6_PACKET_TOO_BIG, 0)).toBe(true);
    expect(mayReplyWithIcmpv6Error(p, 0, p.length, ICMPV6_DEST_UNREACHABLE, UNREACH_PORT)).toBe(false);
    expect(mayReplyWithIcmpv6Error(p, 0, p.length, ICMPV6_TIME_EXCEEDED, 0)).toBe(false);
    expect(mayReplyWithIcmpv6Error(p, 0, p.length, ICMPV6_PARAM_PROBLEM, 0)).toBe(false);
    expect(mayReplyWithIcmpv6Error(p, 0, p.length, ICMPV6_PARAM_PROBLEM, PARAM_PROBLEM_NEXT_HEADER)).toBe(false);
    expect(mayReplyWithIcmpv6Error(p, 0, p.length, ICMPV6_PARAM_PROBLEM, PARAM_PROBLEM_OPTION)).toBe(true);
    // with the pointer, the option's action bits decide
    const o10 = v6(17, udp(S, 'ff02::1', 1, 2, seqBytes(4)), { dst: 'ff02::1', exts: [dstOpts(Uint8Array.from([0x9e, 0, 1, 2, 0, 0]))] });
    expect(mayReplyWithIcmpv6Error(o10, 0, o10.length, 4, 2, 42)).toBe(true);
    const o11 = v6(17, udp(S, 'ff02::1', 1, 2, seqBytes(4)), { dst: 'ff02::1', exts: [dstOpts(Uint8Array.from([0xde, 0, 1, 2, 0, 0]))] });
    expect(mayReplyWithIcmpv6Error(o11, 0, o11.length, 4, 2, 42)).toBe(false);
    // unicast destination: action 11 is fine
    const u11 = v6(17, udp(S, D, 1, 2, seqBytes(4)), { exts: [dstOpts(Uint8Array.from([0xde, 0, 1, 2, 0, 0]))] });
    expect(mayReplyWithIcmpv6Error(u11, 0, u11.length, 4, 2, 42)).toBe(true);
  });

  it('never about garbage', () => {
    expect(mayReplyWithIcmpv6Error(new Uint8Array(39), 0, 39, 1, 0)).toBe(false);
    const p = udpPkt();
    p[0] = 0x45;
    expect(mayReplyWithIcmpv6Error(p, 0, p.length, 1, 0)).toBe(false);
    expect(mayReplyWithIcmpv6Error(p, 10, p.length, 1, 0)).toBe(false);
  });
});

describe('buildIcmpv6Error (RFC 4443)', () => {
  it('destination unreachable quoting a small datagram whole: every byte derived by hand', () => {
    const off = v6(17, udp(S, D, 40000, 9, seqBytes(10)));
    const out = new Uint8Array(200).fill(0xee);
    const n = buildIcmpv6Error(out, 0, 1, 4, 0, off, 0, off.length, ME, 0, 64);
    expect(n).toBe(40 + 8 + off.length);
    const e = out.subarray(0, n);
    const icmpLen = 8 + off.length;
    expect(hex(e.subarray(0, 8))).toBe(`60000000${icmpLen.toString(16).padStart(4, '0')}3a40`);
    expect(hex(e.subarray(8, 24))).toBe(hex(ME));
    expect(hex(e.subarray(24, 40))).toBe(hex(A(S)));
    expect(hex(e.subarray(40, 42))).toBe('0104');
    expect(hex(e.subarray(44, 48))).toBe('00000000');
    expect(hex(e.subarray(48))).toBe(hex(off));
    expect(icmpSumOk(e)).toBe(true);
    expect(describeIp(e)).toBe(
      `IP6 fd00:99::1 > fd00:10::1: ICMP6, destination unreachable, unreachable port, fd00:20::20 udp port 9, length ${icmpLen}`,
    );
  });

  it('packet too big carries the MTU, parameter problem the pointer; other types zero', () => {
    const off = v6(17, udp(S, D, 1, 2, seqBytes(10)));
    const out = new Uint8Array(200);
    buildIcmpv6Error(out, 0, ICMPV6_PACKET_TOO_BIG, 0, 1400, off, 0, off.length, ME, 0);
    expect(new Icmpv6Packet(out, 40, 8).mtu).toBe(1400);
    buildIcmpv6Error(out, 0, ICMPV6_PARAM_PROBLEM, 1, 6, off, 0, off.length, ME, 0);
    expect(new Icmpv6Packet(out, 40, 8).pointer).toBe(6);
    buildIcmpv6Error(out, 0, ICMPV6_TIME_EXCEEDED, TIME_EXCEEDED_REASSEMBLY, 1234, off, 0, off.length, ME, 0);
    expect(new Icmpv6Packet(out, 40, 8).rest).toBe(0);
    expect(icmpSumOk(out.subarray(0, 40 + 8 + off.length))).toBe(true);
  });

  it('never exceeds 1280 bytes: big offending packets are cut to a 1232-byte quote', () => {
    expect(ICMPV6_ERROR_MAX_QUOTE).toBe(1232);
    for (const size of [1233, 1280, 1500, 9000, 65535 - 8]) {
      const off = v6(17, udp(S, D, 1, 2, seqBytes(size)));
      const out = new Uint8Array(70000);
      const n = buildIcmpv6Error(out, 0, ICMPV6_PACKET_TOO_BIG, 0, 1280, off, 0, off.length, ME, 0);
      expect(n).toBe(1280);
      const e = out.subarray(0, n);
      expect(new Ipv6Packet(e).payloadLength).toBe(1240);
      expect(hex(e.subarray(48))).toBe(hex(off.subarray(0, 1232)));
      expect(icmpSumOk(e)).toBe(true);
    }
  });

  it('quotes only the packet (40 + payload length), not bytes behind it; fits a small out buffer', () => {
    const off = concat(v6(17, udp(S, D, 1, 2, seqBytes(10))), new Uint8Array(100).fill(0xaa));
    const out = new Uint8Array(1500);
    const n = buildIcmpv6Error(out, 0, 1, 4, 0, off, 0, off.length, ME, 0);
    expect(n).toBe(48 + 58);
    const small = new Uint8Array(60);
    const m = buildIcmpv6Error(small, 0, 1, 4, 0, off, 0, off.length, ME, 0);
    expect(m).toBe(60);
    expect(icmpSumOk(small)).toBe(true);
    expect(buildIcmpv6Error(new Uint8Array(47), 0, 1, 4, 0, off, 0, off.length, ME, 0)).toBe(0);
  });

  it('returns 0 where RFC 4443 forbids an error', () => {
    const out = new Uint8Array(1500);
    const err = v6(58, icmp6(S, D, 1, 4, 0, seqBytes(48)));
    expect(buildIcmpv6Error(out, 0, 1, 4, 0, err, 0, err.length, ME, 0)).toBe(0);
    const mc = v6(17, udp(S, 'ff02::1', 1, 2, seqBytes(4)), { dst: 'ff02::1' });
    expect(buildIcmpv6Error(out, 0, 1, 4, 0, mc, 0, mc.length, ME, 0)).toBe(0);
    expect(buildIcmpv6Error(out, 0, 2, 0, 1280, mc, 0, mc.length, ME, 0)).toBe(48 + mc.length);
  });

  it('builds in place in front of the offending packet (overlapping regions)', () => {
    const off = v6(17, udp(S, D, 1, 2, seqBytes(300)));
    const expected = new Uint8Array(1500);
    const n = buildIcmpv6Error(expected, 0, 3, 0, 0, off, 0, off.length, ME, 0);
    // slot: 48 bytes of headroom, then the packet
    const slot = new Uint8Array(48 + off.length);
    slot.set(off, 48);
    expect(buildIcmpv6Error(slot, 0, 3, 0, 0, slot, 48, off.length, ME, 0)).toBe(n);
    expect(hex(slot.subarray(0, n))).toBe(hex(expected.subarray(0, n)));
    // and over the packet itself (the quote moves back by 48 bytes)
    const over = new Uint8Array(48 + off.length);
    over.set(off, 0);
    expect(buildIcmpv6Error(over, 0, 3, 0, 0, over, 0, off.length, ME, 0)).toBe(n);
    expect(hex(over.subarray(0, n))).toBe(hex(expected.subarray(0, n)));
  });

  it('property: for random packets and sizes the checksum verifies and the size stays <= 1280', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 1, max: 4 }), (size, fill, type) => {
        const off = v6(17, udp(S, D, 1, 2, new Uint8Array(size).fill(fill)));
        const out = new Uint8Array(1400);
        const n = buildIcmpv6Error(out, 0, type, 0, 1280, off, 0, off.length, ME, 0);
        expect(n).toBe(Math.min(1280, 48 + off.length));
        expect(icmpSumOk(out.subarray(0, n))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

describe('echoReplyInPlace', () => {
  it('turns a request into the reply: swapped addresses, type 129, valid checksum, hop limit', () => {
    const req = v6(58, echoRequest(S, D, 9, 3, seqBytes(56)), { hopLimit: 7, flowLabel: 0xabcde, trafficClass: 0x20 });
    expect(echoReplyInPlace(req, 0, req.length, 64)).toBe(DropReason.None);
    const p = new Ipv6Packet(req);
    expect(p.srcEquals(A(D), 0) && p.dstEquals(A(S), 0)).toBe(true);
    expect(p.hopLimit).toBe(64);
    expect(p.flowLabel).toBe(0);
    expect(p.trafficClass).toBe(0x20);
    const m = new Icmpv6Packet(req, 40, req.length - 40);
    expect(m.parse()).toEqual({ type: ICMPV6_ECHO_REPLY, code: 0, identifier: 9, sequence: 3, bodyLength: 56 });
    expect(hex(req.subarray(48))).toBe(hex(seqBytes(56)));
    expect(icmpSumOk(req)).toBe(true);
    expect(hex(req.subarray(40))).toBe(hex(icmp6(D, S, 129, 0, (9 << 16) | 3, seqBytes(56))));
  });

  it('drops extension headers from the reply', () => {
    const req = v6(58, echoRequest(S, D, 1, 1, seqBytes(20)), { exts: [hbh(), dstOpts()] });
    expect(echoReplyInPlace(req, 0, req.length)).toBe(DropReason.None);
    const p = new Ipv6Packet(req);
    expect(p.nextHeader).toBe(58);
    expect(p.payloadLength).toBe(28);
    expect(icmpSumOk(req.subarray(0, 68))).toBe(true);
  });

  it('to a multicast group: needs our unicast source, checksum adjusted for it', () => {
    const req = v6(58, echoRequest(S, 'ff02::1', 1, 1, seqBytes(20)), { dst: 'ff02::1' });
    expect(echoReplyInPlace(req.slice(), 0, req.length)).toBe(DropReason.BadSourceAddress);
    expect(echoReplyInPlace(req, 0, req.length, 64, ME, 0)).toBe(DropReason.None);
    const p = new Ipv6Packet(req);
    expect(p.srcEquals(ME, 0) && p.dstEquals(A(S), 0)).toBe(true);
    expect(icmpSumOk(req)).toBe(true);
  });

  it('refuses what is not a valid unfragmented echo request', () => {
    const bad = v6(58, echoRequest(S, D, 1, 1, seqBytes(20)));
    bad[60] ^= 0xff;
    expect(echoReplyInPlace(bad, 0, bad.length)).toBe(DropReason.BadIcmpChecksum);
    const reply = v6(58, icmp6(S, D, 129, 0, 0, seqBytes(4)));
    expect(echoReplyInPlace(reply, 0, reply.length)).toBe(DropReason.BadIcmpType);
    const u = v6(17, udp(S, D, 1, 2, seqBytes(4)));
    expect(echoReplyInPlace(u, 0, u.length)).toBe(DropReason.BadIcmpType);
    const f = v6(58, echoRequest(S, D, 1, 1, seqBytes(64)).subarray(0, 48), { exts: [frag(0, true, 1)] });
    expect(echoReplyInPlace(f, 0, f.length)).toBe(DropReason.BadIcmpType);
    const short = v6(58, Uint8Array.from([128, 0, 0, 0]));
    expect(echoReplyInPlace(short, 0, short.length)).toBe(DropReason.BadIcmpLength);
    const fromMc = v6(58, echoRequest('ff02::1', D, 1, 1, seqBytes(4)), { src: 'ff02::1' });
    expect(echoReplyInPlace(fromMc, 0, fromMc.length)).toBe(DropReason.BadSourceAddress);
    expect(echoReplyInPlace(new Uint8Array(20), 0, 20)).toBe(DropReason.Truncated);
  });

  it('time exceeded built from a forwarded packet describes like tcpdump', () => {
    const off = v6(17, udp(D, 'fd00:30::30', 1, 2, seqBytes(13)), { src: D, dst: 'fd00:30::30', hopLimit: 1 });
    const out = new Uint8Array(200);
    const n = buildIcmpv6Error(out, 0, ICMPV6_TIME_EXCEEDED, TIME_EXCEEDED_HOP_LIMIT, 0, off, 0, off.length, A(S), 0);
    expect(describeIp(out, 0, n)).toBe(
      'IP6 fd00:10::1 > fd00:20::20: ICMP6, time exceeded in-transit for fd00:30::30, length 69',
    );
  });
});
