/**
 * Routing reads IP headers in two places (route/flow.ts: FlowKey, route/lookup.ts: the batch
 * path) through module-local copies of wire/ constants (an imported binding costs a read per use
 * on the hot path). Here: every copy equals its wire/ source, and FlowKey reads the kernel's own
 * packets (test/fixtures/kernel) as the wire views and the IPv6 chain walker do.
 */
import { describe, expect, it } from 'vitest';
import { FLOW_HEADER_FIELDS, FlowKey } from '../../src/route/flow.ts';
import { LOOKUP_HEADER_FIELDS } from '../../src/route/lookup.ts';
import * as ip from '../../src/wire/ip.ts';
import * as ipv4 from '../../src/wire/ipv4.ts';
import * as ipv6 from '../../src/wire/ipv6.ts';
import * as ext from '../../src/wire/ipv6-ext.ts';
import { Ipv6Chain, walkIpv6Chain } from '../../src/wire/ipv6-chain.ts';
import { TcpPacket } from '../../src/wire/tcp.ts';
import * as udp from '../../src/wire/udp.ts';
import { kernelFixture, kernelManifest } from '../support/pcap.ts';

/** The sources of truth, by the names the copies carry. */
const WIRE: Record<string, number> = {
  IPV4_HEADER_LEN: ipv4.IPV4_HEADER_LEN,
  F_TOTAL_LENGTH: ipv4.IPV4_TOTAL_LENGTH,
  F_FLAGS_FRAG: ipv4.IPV4_FLAGS_FRAG,
  IPV4_FRAGMENT: ipv4.IPV4_FLAG_MF | ipv4.IPV4_FRAG_OFFSET_MASK,
  F_PROTOCOL: ipv4.IPV4_PROTOCOL,
  F_SRC: ipv4.IPV4_SRC,
  F_DST: ipv4.IPV4_DST,
  IPV6_HEADER_LEN: ipv6.IPV6_HEADER_LEN,
  IPV6_PAYLOAD_LENGTH: ipv6.IPV6_PAYLOAD_LENGTH,
  IPV6_NEXT_HEADER: ipv6.IPV6_NEXT_HEADER,
  IPV6_SRC: ipv6.IPV6_SRC,
  IPV6_DST: ipv6.IPV6_DST,
  EXT_NEXT_HEADER: ext.EXT_NEXT_HEADER,
  EXT_HDR_EXT_LEN: ext.EXT_HDR_EXT_LEN,
  EXT_MIN_LEN: ext.EXT_MIN_LEN,
  FRAG_HEADER_LEN: ext.FRAG_HEADER_LEN,
  FRAG_OFFSET_FLAGS: ext.FRAG_OFFSET_FLAGS,
  FRAG_FRAGMENT: ext.FRAG_OFFSET_MASK | ext.FRAG_M_FLAG,
  NH_HOP_BY_HOP: ip.IP_PROTO_HOP_BY_HOP,
  NH_ROUTING: ip.IP_PROTO_ROUTING,
  NH_FRAGMENT: ip.IP_PROTO_FRAGMENT,
  NH_AH: ip.IP_PROTO_AH,
  NH_DEST_OPTS: ip.IP_PROTO_DEST_OPTS,
  F_SRC_PORT: udp.F_SRC_PORT,
  F_DST_PORT: udp.F_DST_PORT,
  IP_PROTO_TCP: ip.IP_PROTO_TCP,
  IP_PROTO_UDP: ip.IP_PROTO_UDP,
  IP_PROTO_DCCP: ip.IP_PROTO_DCCP,
  IP_PROTO_SCTP: ip.IP_PROTO_SCTP,
  IP_PROTO_UDPLITE: ip.IP_PROTO_UDPLITE,
};

describe('header-field copies in route/', () => {
  for (const [where, fields] of [
    ['flow.ts', FLOW_HEADER_FIELDS],
    ['lookup.ts', LOOKUP_HEADER_FIELDS],
  ] as const) {
    it(`${where}: every copy equals its wire/ constant`, () => {
      const names = Object.keys(fields);
      expect(names.length).toBeGreaterThan(0);
      for (const name of names) {
        expect([name, WIRE[name]]).not.toEqual([name, undefined]);
        expect([name, (fields as Record<string, number>)[name]]).toEqual([name, WIRE[name]]);
      }
    });
  }
});

describe('FlowKey on the kernel fixtures, against the wire views', () => {
  const word = (b: Uint8Array, o: number) => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
  const files = kernelManifest().fixtures.map((f) => f.file);

  it('addresses, destination offset, length, protocol, fragment state, ports and flow label', () => {
    const f = new FlowKey();
    const v4 = new ipv4.Ipv4Packet();
    const v6 = new ipv6.Ipv6Packet();
    const chain = new Ipv6Chain();
    const ports = new TcpPacket();
    let seen4 = 0;
    let seen6 = 0;
    let withPorts = 0;
    let fragments = 0;
    for (const file of files) {
      for (const [i, raw] of kernelFixture(file).entries()) {
        // at an odd offset inside a bigger buffer, as in a pool slab
        const buf = new Uint8Array(raw.length + 7);
        buf.set(raw, 5);
        const at = `${file}#${i}`;
        expect([at, f.read(buf, 5, 0, 5 + raw.length)]).toEqual([at, true]);
        let want: Record<string, unknown>;
        if (raw[0]! >> 4 === 4) {
          seen4++;
          const p = v4.wrap(buf, 5, raw.length);
          const fragment = p.moreFragments || p.fragOffsetRaw !== 0;
          const l4 = 5 + p.headerLength;
          const hasPorts = !fragment && (p.protocol === ip.IP_PROTO_TCP || p.protocol === ip.IP_PROTO_UDP);
          ports.wrap(buf, l4, 5 + raw.length - l4);
          want = {
            family: 4,
            src: [p.srcAddr, 0, 0, 0],
            dst: [p.dstAddr, 0, 0, 0],
            dstOffset: p.dstOffset,
            length: p.totalLength,
            proto: p.protocol,
            fragment,
            sport: hasPorts ? ports.srcPort : -1,
            dport: hasPorts ? ports.dstPort : -1,
            flowLabel: 0,
          };
        } else {
          seen6++;
          const p = v6.wrap(buf, 5, raw.length);
          expect(walkIpv6Chain(buf, 5, raw.length, chain)).toBe(0);
          const fragment = chain.fragmentHeaderOffset >= 0 && (chain.fragmentOffset !== 0 || chain.moreFragments);
          const proto = chain.upperProtocol;
          const hasPorts = !fragment && (proto === ip.IP_PROTO_TCP || proto === ip.IP_PROTO_UDP);
          ports.wrap(buf, chain.upperOffset, 5 + raw.length - chain.upperOffset);
          want = {
            family: 6,
            src: [0, 4, 8, 12].map((o) => word(buf, p.srcOff + o)),
            dst: [0, 4, 8, 12].map((o) => word(buf, p.dstOff + o)),
            dstOffset: p.dstOff,
            length: ipv6.IPV6_HEADER_LEN + p.payloadLength,
            proto,
            fragment,
            sport: hasPorts ? ports.srcPort : -1,
            dport: hasPorts ? ports.dstPort : -1,
            flowLabel: p.flowLabel,
          };
        }
        if (want.sport !== -1) withPorts++;
        if (want.fragment) fragments++;
        const got = {
          family: f.family,
          src: [...f.src],
          dst: [...f.dst],
          dstOffset: f.dstOffset,
          length: f.length,
          proto: f.proto,
          fragment: f.fragment,
          sport: f.sport,
          dport: f.dport,
          flowLabel: f.flowLabel,
        };
        expect([at, got]).toEqual([at, want]);
      }
    }
    // the fixtures cover both families, ports and fragments (first and later, v4 and v6)
    expect(seen4).toBeGreaterThan(10);
    expect(seen6).toBeGreaterThan(10);
    expect(withPorts).toBeGreaterThan(5);
    expect(fragments).toBeGreaterThan(4);
  });
});
