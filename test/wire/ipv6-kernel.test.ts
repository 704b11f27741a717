/**
 * IPv6 wire views against real bytes the Linux kernel wrote to a TUN device
 * (test/fixtures/kernel, see its README): every field, every checksum, the fragment chain and
 * the reassembled payload, and ICMPv6 errors / echo replies we build compared byte for byte
 * with the kernel's own (except the flow label, which Linux picks from a hash).
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { DropReason } from '../../src/base/drop-reason.ts';
import { buildIcmpv6Error, echoReplyInPlace, mayReplyWithIcmpv6Error } from '../../src/wire/icmpv6-error.ts';
import { Icmpv6Packet } from '../../src/wire/icmpv6.ts';
import { Ipv6Chain, walkIpv6Chain } from '../../src/wire/ipv6-chain.ts';
import {
  Ipv6FragmentHeader,
  Ipv6OptionScan,
  Ipv6OptionsHeader,
  Ipv6RoutingHeader,
  OPTION_ACTION_SKIP,
} from '../../src/wire/ipv6-ext.ts';
import { Ipv6Packet } from '../../src/wire/ipv6.ts';
import { KERNEL_FIXTURE_DIR, kernelFixture, kernelManifest } from '../support/pcap.ts';
import { A, concat, hex, pseudo, refChecksum, seqBytes } from './ipv6-build.ts';
import { ipv6IsLinkLocal } from '../../src/wire/ip.ts';
import { describeIpv6 } from '../../src/wire/describe.ts';

const ME = A('fd00:10::1');
const HOST = A('fd00:20::20');

const v6Fixtures = kernelManifest().fixtures.filter((f) => kernelFixture(f.file)[0]![0]! >>> 4 === 6);

/**
 * Independent upper-layer checksum check (RFC 1071 reference over pseudo-header + bytes); the
 * pseudo-header destination is the final destination the chain walk found (RFC 8200 8.1).
 */
function upperSumOk(p: Uint8Array, c: Ipv6Chain, proto: number, len = c.end - c.upperOffset): boolean {
  const src = p.subarray(8, 24);
  const dst = p.subarray(c.finalDestinationOffset, c.finalDestinationOffset + 16);
  return refChecksum(pseudo(src, dst, proto, len), p.subarray(c.upperOffset, c.upperOffset + len)) === 0;
}

/** Source, destination and hop limit each fixture was captured with (see its manifest entry). */
function expectedAddresses(file: string): { src: Uint8Array | null; dst: Uint8Array; hopLimit: number } {
  if (file.startsWith('mld6')) return { src: null, dst: A('ff02::16'), hopLimit: 1 };
  if (file.startsWith('udp6-srh')) return { src: ME, dst: A('fd00:20::21'), hopLimit: 64 };
  return { src: ME, dst: HOST, hopLimit: 64 };
}

/** Bytes with the flow label (low 20 bits of the first word) cleared. */
function noFlow(b: Uint8Array): string {
  const c = Uint8Array.from(b);
  c[1]! &= 0xf0;
  c[2] = 0;
  c[3] = 0;
  return hex(c);
}

describe('kernel IPv6 fixtures: fixed header and chain', () => {
  it('has the IPv6 fixtures this file relies on', () => {
    const names = v6Fixtures.map((f) => f.file).sort();
    for (const n of ['ping6.pcap', 'udp6.pcap', 'tcp-syn6.pcap', 'ping6-frag.pcap', 'icmp6-port-unreach.pcap',
      'icmp6-time-exceeded.pcap', 'icmp6-packet-too-big.pcap', 'icmp6-echo-reply.pcap', 'icmp6-echo-reply-frag.pcap']) {
      expect(names).toContain(n);
    }
  });

  for (const f of v6Fixtures) {
    it(`${f.file}: check(), fixed-header fields, chain walk and upper-layer checksum`, () => {
      const pkts = kernelFixture(f.file);
      expect(pkts.length).toBe(f.packets);
      pkts.forEach((p, i) => {
        expect(p.length).toBe(f.sizes[i]);
        const v = new Ipv6Packet(p);
        expect(v.check()).toBe(DropReason.None);
        expect(v.version).toBe(6);
        expect(v.trafficClass).toBe(0);
        expect(v.payloadLength).toBe(p.length - 40);
        expect(v.totalLength).toBe(p.length);
        const want = expectedAddresses(f.file);
        expect(v.hopLimit).toBe(want.hopLimit);
        if (want.src) expect(v.srcEquals(want.src, 0)).toBe(true);
        else expect(ipv6IsLinkLocal(p, v.srcOff)).toBe(true);
        expect(v.dstEquals(want.dst, 0)).toBe(true);
        expect(v.flowLabel).toBe(((p[1]! & 15) << 16) | (p[2]! << 8) | p[3]!);
        const c = new Ipv6Chain();
        expect(walkIpv6Chain(p, 0, p.length, c)).toBe(DropReason.None);
        expect(c.end).toBe(p.length);
        if (!c.isFragment) {
          if (c.headerCount === 0) {
            expect(c.upperOffset).toBe(40);
            expect(c.upperProtocol).toBe(v.nextHeader);
            expect(c.unfragmentableLength).toBe(40);
          }
          expect(c.headerChainComplete).toBe(true);
          expect(upperSumOk(p, c, c.upperProtocol)).toBe(true);
          if (c.upperProtocol === 58) {
            const m = new Icmpv6Packet(p, c.upperOffset, c.upperLength);
            expect(m.check()).toBe(DropReason.None);
            expect(m.verifyChecksum(v.srcOff, v.dstOff)).toBe(true);
          }
        } else {
          expect(c.fragmentHeaderOffset).toBeGreaterThanOrEqual(40);
          expect(c.unfragmentableEnd).toBe(c.fragmentHeaderOffset);
        }
      });
    });
  }
});

describe('kernel ping6 / udp6 / tcp-syn6', () => {
  it('ping6: echo requests, same id, seq 1 and 2, 56 data bytes', () => {
    const ps = kernelFixture('ping6');
    const ids = ps.map((p) => {
      const m = new Icmpv6Packet(p, 40, p.length - 40);
      expect(m.msgType).toBe(128);
      expect(m.code).toBe(0);
      expect(m.bodyLength).toBe(56);
      expect(m.parse()).toEqual({ type: 128, code: 0, identifier: m.identifier, sequence: m.sequence, bodyLength: 56 });
      return [m.identifier, m.sequence];
    });
    expect(ids[0]![0]).toBe(ids[1]![0]);
    expect(ids.map((x) => x[1])).toEqual([1, 2]);
    // ping's pattern after the 16-byte timestamp: bytes 0x10, 0x11, ...
    expect(hex(ps[0]!.subarray(48 + 16, 48 + 56))).toBe(hex(seqBytes(40, 0x10)));
  });

  it('udp6: ports, lengths and checksums', () => {
    const [a, b] = kernelFixture('udp6');
    for (const [p, dport, dlen] of [[a!, 5555, 34], [b!, 5556, 0]] as const) {
      expect(p[6]).toBe(17);
      expect((p[42]! << 8) | p[43]!).toBe(dport);
      expect((p[44]! << 8) | p[45]!).toBe(8 + dlen);
      expect(refChecksum(pseudo(ME, HOST, 17, 8 + dlen), p.subarray(40))).toBe(0);
    }
    expect((a![40]! << 8) | a![41]!).toBe((b![40]! << 8) | b![41]!);
  });

  it('tcp-syn6: SYN to port 8080 with options, checksum over the pseudo-header', () => {
    const [p] = kernelFixture('tcp-syn6');
    expect(p![6]).toBe(6);
    expect((p![42]! << 8) | p![43]!).toBe(8080);
    expect(p![40 + 13]).toBe(0x02);
    expect(p![40 + 12]! >>> 4).toBe(10); // 40-byte header: MSS, SACK-perm, TS, NOP, WS
    expect(p![60]).toBe(2); // MSS option kind
    expect((p![62]! << 8) | p![63]!).toBe(1340); // 1400 - 40 - 20
    expect(refChecksum(pseudo(ME, HOST, 6, 40), p!.subarray(40))).toBe(0);
  });
});

describe('kernel IPv6 fragments (ping -6 -s 4000 over MTU 1400)', () => {
  for (const [name, dataLen, type, pattern] of [
    ['ping6-frag', 4000, 128, null],
    ['icmp6-echo-reply-frag', 3000, 129, (i: number) => i & 0xff],
  ] as const) {
    it(`${name}: fragment headers, offsets, M flags, one id; reassembled ICMPv6 checksum verifies`, () => {
      const ps = kernelFixture(name);
      const c = new Ipv6Chain();
      const parts: Uint8Array[] = [];
      let expectOff = 0;
      let id = -1;
      ps.forEach((p, i) => {
        expect(walkIpv6Chain(p, 0, p.length, c)).toBe(DropReason.None);
        expect(c.fragmentHeaderOffset).toBe(40);
        expect(c.unfragmentableEnd).toBe(40);
        expect(c.unfragmentableNextHeaderOffset).toBe(6);
        expect(c.fragmentNextHeader).toBe(58);
        expect(c.fragmentOffset).toBe(expectOff);
        expect(c.moreFragments).toBe(i < ps.length - 1);
        expect(c.isFirstFragment).toBe(i === 0);
        expect(c.headerChainComplete).toBe(i === 0);
        const fh = new Ipv6FragmentHeader(p, 40, 8);
        expect(fh.check()).toBe(DropReason.None);
        expect(fh.parse()).toEqual({
          nextHeader: 58,
          offset: expectOff,
          moreFragments: i < ps.length - 1,
          identification: c.fragmentId,
        });
        if (id < 0) id = c.fragmentId;
        expect(c.fragmentId).toBe(id);
        const data = p.subarray(48);
        if (i < ps.length - 1) {
          expect(data.length % 8).toBe(0);
          expect(p.length).toBe(1400); // the kernel fills the MTU
        }
        parts.push(data);
        expectOff += data.length;
      });
      const msg = concat(...parts);
      expect(msg.length).toBe(8 + dataLen);
      expect(msg[0]).toBe(type);
      expect(refChecksum(pseudo(ME, HOST, 58, msg.length), msg)).toBe(0);
      const whole = concat(ps[0]!.subarray(0, 40), msg);
      whole[4] = msg.length >>> 8;
      whole[5] = msg.length & 0xff;
      whole[6] = 58;
      const m = new Icmpv6Packet(whole, 40, msg.length);
      expect(m.verifyChecksum(8, 24)).toBe(true);
      if (pattern) {
        expect(m.identifier).toBe(0x4321);
        expect(m.sequence).toBe(7);
        for (let i = 0; i < dataLen; i++) if (msg[8 + i] !== pattern(i)) throw new Error(`data byte ${i}`);
      }
    });
  }
});

describe('kernel ICMPv6 errors and echo reply vs ours', () => {
  it('port unreachable: fields, quote, and our builder writes the same bytes', () => {
    const [k] = kernelFixture('icmp6-port-unreach');
    const m = new Icmpv6Packet(k!, 40, k!.length - 40);
    expect(m.parse()).toEqual({ type: 1, code: 4, bodyLength: 65 });
    expect(m.rest).toBe(0);
    const quote = k!.subarray(48);
    const q = new Ipv6Packet(quote);
    expect(q.check()).toBe(DropReason.None);
    expect(q.srcEquals(HOST, 0) && q.dstEquals(ME, 0)).toBe(true);
    expect(q.totalLength).toBe(quote.length); // the whole datagram fits: quoted entirely
    expect((quote[40]! << 8) | quote[41]!).toBe(40000);
    expect((quote[42]! << 8) | quote[43]!).toBe(9);
    expect(Buffer.from(quote.subarray(48)).toString()).toBe('closed port probe');
    const offending = Uint8Array.from(quote);
    expect(mayReplyWithIcmpv6Error(offending, 0, offending.length, 1, 4)).toBe(true);
    const out = new Uint8Array(1500);
    const n = buildIcmpv6Error(out, 0, 1, 4, 0, offending, 0, offending.length, ME, 0, 64);
    expect(n).toBe(k!.length);
    expect(noFlow(out.subarray(0, n))).toBe(noFlow(k!));
    // the kernel's error is itself an error: never answered
    expect(mayReplyWithIcmpv6Error(k!, 0, k!.length, 1, 4)).toBe(false);
  });

  it('time exceeded: quotes the packet as received (hop limit 1); our builder matches', () => {
    const [k] = kernelFixture('icmp6-time-exceeded');
    const m = new Icmpv6Packet(k!, 40, k!.length - 40);
    expect(m.parse()).toEqual({ type: 3, code: 0, bodyLength: k!.length - 48 });
    const quote = Uint8Array.from(k!.subarray(48));
    const q = new Ipv6Packet(quote);
    expect(q.hopLimit).toBe(1);
    expect(q.dstEquals(A('fd00:30::30'), 0)).toBe(true);
    const out = new Uint8Array(1500);
    const n = buildIcmpv6Error(out, 0, 3, 0, 0, quote, 0, quote.length, ME, 0);
    expect(noFlow(out.subarray(0, n))).toBe(noFlow(k!));
  });

  it('packet too big: MTU 1280, quote cut so the error is exactly 1280 bytes; our builder matches', () => {
    const [k] = kernelFixture('icmp6-packet-too-big');
    expect(k!.length).toBe(1280);
    const m = new Icmpv6Packet(k!, 40, k!.length - 40);
    expect(m.parse()).toEqual({ type: 2, code: 0, mtu: 1280, bodyLength: 1232 });
    const quote = k!.subarray(48);
    const q = new Ipv6Packet(quote);
    expect(q.payloadLength).toBe(1360); // the original was 1400 bytes
    expect(q.check()).toBe(DropReason.BadPayloadLength); // ... and only 1232 of them are quoted
    // rebuild the 1400-byte original from the quote plus the script's known tail (zeros)
    const original = new Uint8Array(1400);
    original.set(quote, 0);
    const out = new Uint8Array(2000);
    const n = buildIcmpv6Error(out, 0, 2, 0, 1280, original, 0, original.length, ME, 0);
    expect(n).toBe(1280);
    expect(noFlow(out.subarray(0, n))).toBe(noFlow(k!));
  });

  it('echo reply: our in-place reply to the script request equals the kernel reply', () => {
    const [k] = kernelFixture('icmp6-echo-reply');
    const m = new Icmpv6Packet(k!, 40, k!.length - 40);
    expect(m.parse()).toEqual({ type: 129, code: 0, identifier: 0x1234, sequence: 1, bodyLength: 56 });
    expect(hex(k!.subarray(48))).toBe(hex(seqBytes(56)));
    // The request the script wrote: fd00:20::20 -> fd00:10::1, type 128, same id/seq/data.
    const req = Uint8Array.from(k!);
    req.set(HOST, 8);
    req.set(ME, 24);
    req[1]! &= 0xf0;
    req[2] = 0;
    req[3] = 0;
    req[40] = 128;
    req[42] = 0;
    req[43] = 0;
    const cs = refChecksum(pseudo(HOST, ME, 58, 64), req.subarray(40));
    req[42] = cs >>> 8;
    req[43] = cs & 0xff;
    expect(echoReplyInPlace(req, 0, req.length, 64)).toBe(DropReason.None);
    expect(noFlow(req)).toBe(noFlow(k!));
  });
});

describe('kernel extension headers (sticky IPV6_HOPOPTS / IPV6_DSTOPTS / IPV6_RTHDR, MLDv2)', () => {
  it('mld6-report: HBH router alert (MLD, value 0) + PadN, MLDv2 report to ff02::16, hop limit 1', () => {
    const [p] = kernelFixture('mld6-report');
    const c = new Ipv6Chain();
    expect(walkIpv6Chain(p!, 0, p!.length, c)).toBe(DropReason.None);
    expect(c.hopByHopOffset).toBe(40);
    expect(c.upperProtocol).toBe(58);
    expect(c.upperOffset).toBe(48);
    expect(c.unfragmentableEnd).toBe(48);
    const h = new Ipv6OptionsHeader(p!, 40, 8);
    expect(h.check()).toBe(DropReason.None);
    expect(h.nextHeader).toBe(58);
    const scan = new Ipv6OptionScan();
    expect(h.scan(scan)).toBe(DropReason.None);
    expect(scan.routerAlert).toBe(0);
    expect(scan.optionCount).toBe(1);
    const m = new Icmpv6Packet(p!, 48, p!.length - 48);
    expect(m.msgType).toBe(143);
    expect(m.verifyChecksum(8, 24)).toBe(true);
    expect(m.describe()).toBe('ICMP6, multicast listener report v2, 1 group record(s), length 28');
    // RFC 4443 2.4(e): to a multicast group only Packet Too Big may answer it
    expect(mayReplyWithIcmpv6Error(p!, 0, p!.length, 2, 0)).toBe(true);
    expect(mayReplyWithIcmpv6Error(p!, 0, p!.length, 1, 4)).toBe(false);
    expect(mayReplyWithIcmpv6Error(p!, 0, p!.length, 4, 0)).toBe(false);
  });

  it('udp6-exthdrs: HBH + DestOpts (skippable unknown option 0x1e) + UDP; both layouts of the unfragmentable part', () => {
    const [p] = kernelFixture('udp6-exthdrs');
    const c = new Ipv6Chain();
    expect(walkIpv6Chain(p!, 0, p!.length, c)).toBe(DropReason.None);
    expect([c.hopByHopOffset, c.destOptsOffset, c.upperOffset, c.upperProtocol]).toEqual([40, 48, 56, 17]);
    expect(c.headerCount).toBe(2);
    expect(c.unfragmentableEnd).toBe(48); // RFC 8200 4.5: DestOpts without Routing is fragmentable
    const linux = new Ipv6Chain();
    linux.linuxFragmentLayout = true;
    walkIpv6Chain(p!, 0, p!.length, linux);
    expect(linux.unfragmentableEnd).toBe(56); // what ip6_find_1stfragopt picks
    expect(linux.unfragmentableNextHeaderOffset).toBe(48);
    const scan = new Ipv6OptionScan();
    expect(new Ipv6OptionsHeader(p!, 48, 8).scan(scan)).toBe(DropReason.None);
    expect(scan.optionCount).toBe(1);
    expect(scan.unknownType).toBe(-1); // action 00: skipped, not reported
    expect(upperSumOk(p!, c, 17)).toBe(true);
    expect(hex(p!.subarray(64))).toBe(hex(seqBytes(100)));
  });

  it('udp6-srh: SRH type 4, segments left 1; the UDP checksum uses segment[0], the final destination', () => {
    const [p] = kernelFixture('udp6-srh');
    const c = new Ipv6Chain();
    expect(walkIpv6Chain(p!, 0, p!.length, c)).toBe(DropReason.None);
    expect(c.routingOffset).toBe(48);
    expect(c.routingType).toBe(4);
    expect(c.segmentsLeft).toBe(1);
    const rh = new Ipv6RoutingHeader(p!, 48, p!.length - 48);
    expect(rh.check()).toBe(DropReason.None);
    expect(rh.parse()).toEqual({ nextHeader: 60, length: 40, routingType: 4, segmentsLeft: 1 });
    expect(c.finalDestinationOffset).toBe(56);
    expect(hex(p!.subarray(56, 72))).toBe(hex(HOST));
    expect(hex(p!.subarray(72, 88))).toBe(hex(A('fd00:20::21')));
    expect(c.unfragmentableEnd).toBe(88); // up to and including the Routing header
    expect(c.destOptsOffset).toBe(88);
    expect(c.upperOffset).toBe(96);
    expect(upperSumOk(p!, c, 17)).toBe(true);
    // with the header's own destination the sum would be wrong
    expect(refChecksum(pseudo(ME, p!.subarray(24, 40), 17, 108), p!.subarray(96))).not.toBe(0);
    const linux = new Ipv6Chain();
    linux.linuxFragmentLayout = true;
    walkIpv6Chain(p!, 0, p!.length, linux);
    expect(linux.unfragmentableEnd).toBe(88); // DestOpts after a Routing header stays fragmentable
  });

  it('udp6-exthdrs-frag: every fragment is IPv6 + HBH + DST + FRAG; reassembled UDP checksum and payload', () => {
    const ps = kernelFixture('udp6-exthdrs-frag');
    const c = new Ipv6Chain();
    const parts: Uint8Array[] = [];
    let next = 0;
    ps.forEach((p, i) => {
      expect(walkIpv6Chain(p, 0, p.length, c)).toBe(DropReason.None);
      expect(c.hopByHopOffset).toBe(40);
      expect(c.destOptsOffset).toBe(48);
      expect(c.fragmentHeaderOffset).toBe(56);
      expect(c.unfragmentableEnd).toBe(56);
      expect(c.unfragmentableNextHeaderOffset).toBe(48);
      expect(c.fragmentNextHeader).toBe(17);
      expect(c.fragmentOffset).toBe(next);
      expect(c.moreFragments).toBe(i < 2);
      if (i === 0) {
        expect(c.isFirstFragment).toBe(true);
        expect(c.upperProtocol).toBe(17);
        expect(c.upperOffset).toBe(64);
        expect(c.headerChainComplete).toBe(true);
      }
      parts.push(p.subarray(64));
      next += p.length - 64;
    });
    const udpMsg = concat(...parts);
    expect(udpMsg.length).toBe(3008);
    expect((udpMsg[2]! << 8) | udpMsg[3]!).toBe(5557);
    expect((udpMsg[4]! << 8) | udpMsg[5]!).toBe(3008);
    expect(refChecksum(pseudo(ME, HOST, 17, 3008), udpMsg)).toBe(0);
    expect(hex(udpMsg.subarray(8))).toBe(hex(Uint8Array.from({ length: 3000 }, (_, i) => i & 0xff)));
    void OPTION_ACTION_SKIP;
  });
});

const hasTcpdump = (() => {
  try {
    execFileSync('tcpdump', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('describe() vs tcpdump on the kernel fixtures', () => {
  it('known lines (tcpdump 4.99 -nn -t output, ids and ports from the capture)', () => {
    const [e] = kernelFixture('icmp6-port-unreach');
    expect(describeIpv6(e!, 0, e!.length)).toBe(
      'IP6 fd00:10::1 > fd00:20::20: ICMP6, destination unreachable, unreachable port, fd00:10::1 udp port 9, length 73',
    );
    const [t] = kernelFixture('icmp6-packet-too-big');
    expect(describeIpv6(t!, 0, t!.length)).toBe('IP6 fd00:10::1 > fd00:20::20: ICMP6, packet too big, mtu 1280, length 1240');
    const fr = kernelFixture('ping6-frag');
    expect(describeIpv6(fr[1]!, 0, fr[1]!.length)).toBe('IP6 fd00:10::1 > fd00:20::20: frag (1352|1352)');
  });

  it.skipIf(!hasTcpdump)('every IPv6 fixture line equals tcpdump -nn -t', () => {
    for (const f of v6Fixtures) {
      const lines = execFileSync('tcpdump', ['-nn', '-t', '-r', KERNEL_FIXTURE_DIR + f.file], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      })
        .trim()
        .split('\n');
      const ours = kernelFixture(f.file).map((p) => describeIpv6(p, 0, p.length));
      expect([f.file, ours]).toEqual([f.file, lines]);
    }
  });
});
