import { describe, expect, it } from 'vitest';
import { DropReason } from '../../src/base/drop-reason.ts';
import {
  DEFAULT_MAX_EXT_BYTES,
  Ipv6Chain,
  PARAM_PROBLEM_CHAIN_TOO_LONG,
  PARAM_PROBLEM_HEADER_FIELD,
  PARAM_PROBLEM_INCOMPLETE_CHAIN,
  PARAM_PROBLEM_NEXT_HEADER,
  PARAM_PROBLEM_TOO_MANY_HEADERS,
  walkIpv6Chain,
} from '../../src/wire/ipv6-chain.ts';
import {
  ah,
  concat,
  dstOpts,
  echoRequest,
  frag,
  hbh,
  routing,
  seqBytes,
  udp,
  v6,
  type Ext,
} from './ipv6-build.ts';

const S = 'fd00:10::1';
const D = 'fd00:20::20';
const UDP = () => udp(S, D, 1234, 53, seqBytes(20));
const ECHO = () => echoRequest(S, D, 1, 1, seqBytes(56));

function walk(p: Uint8Array, c = new Ipv6Chain(), off = 0, len = p.length - off): Ipv6Chain {
  walkIpv6Chain(p, off, len, c);
  return c;
}

/** 8-byte Home Address destination option header body (needs 24 bytes: 2 + PadN(2) + HAO 18... ) */
function haoDstOpts(): Ext {
  // type 0xc9, len 16, address; preceded by PadN of 2 (RFC 6275: 8n+6 alignment)
  const body = new Uint8Array(22);
  body[0] = 1; // PadN
  body[1] = 2;
  body[4] = 0xc9;
  body[5] = 16;
  body.set(Uint8Array.from({ length: 16 }, (_, i) => 0x20 + i), 6);
  return { type: 60, body };
}

describe('walkIpv6Chain: plain packets', () => {
  it('finds UDP right after the fixed header', () => {
    const p = v6(17, UDP());
    const c = walk(p);
    expect(c.reason).toBe(DropReason.None);
    expect(c.upperProtocol).toBe(17);
    expect(c.upperOffset).toBe(40);
    expect(c.upperNextHeaderOffset).toBe(6);
    expect(c.upperLength).toBe(28);
    expect(c.end).toBe(p.length);
    expect(c.headerCount).toBe(0);
    expect(c.unfragmentableEnd).toBe(40);
    expect(c.unfragmentableLength).toBe(40);
    expect(c.unfragmentableNextHeaderOffset).toBe(6);
    expect(c.fragmentHeaderOffset).toBe(-1);
    expect(c.isFragment).toBe(false);
    expect(c.headerChainComplete).toBe(true);
    expect(c.icmpCode).toBe(-1);
  });

  it('works at a non-zero offset inside a larger buffer and ignores trailing bytes', () => {
    const p = v6(17, UDP());
    const buf = concat(new Uint8Array(100), p, new Uint8Array(30).fill(0xee));
    const c = walk(buf, new Ipv6Chain(), 100, p.length + 30);
    expect(c.reason).toBe(DropReason.None);
    expect(c.start).toBe(100);
    expect(c.upperOffset).toBe(140);
    expect(c.end).toBe(100 + p.length);
    expect(c.unfragmentableLength).toBe(40);
  });

  it('rejects short buffers, wrong versions and payload lengths past the buffer', () => {
    const p = v6(17, UDP());
    expect(walk(p.subarray(0, 39)).reason).toBe(DropReason.Truncated);
    const v4 = p.slice();
    v4[0] = 0x45;
    expect(walk(v4).reason).toBe(DropReason.BadVersion);
    expect(walk(p, new Ipv6Chain(), 0, p.length - 1).reason).toBe(DropReason.BadPayloadLength);
    // len past the end of the buffer is a truncation, not a read past the end
    expect(walk(p, new Ipv6Chain(), 0, p.length + 10).reason).toBe(DropReason.Truncated);
  });

  it('accepts a zero payload with No Next Header (59)', () => {
    const c = walk(v6(59, new Uint8Array(0)));
    expect(c.reason).toBe(DropReason.None);
    expect(c.upperProtocol).toBe(59);
    expect(c.upperOffset).toBe(40);
    expect(c.headerChainComplete).toBe(true);
  });

  it('stops at No Next Header after an extension header, ignoring bytes after it', () => {
    const c = walk(v6(59, new Uint8Array([1, 2, 3, 4]), { exts: [dstOpts()] }));
    expect(c.reason).toBe(DropReason.None);
    expect(c.upperProtocol).toBe(59);
    expect(c.upperOffset).toBe(48);
    expect(c.headerCount).toBe(1);
  });

  it('treats ESP as opaque: the chain stops there', () => {
    const esp = concat(new Uint8Array([0, 0, 0x10, 0x01, 0, 0, 0, 9]), seqBytes(40));
    const c = walk(v6(50, esp, { exts: [hbh()] }));
    expect(c.reason).toBe(DropReason.None);
    expect(c.upperProtocol).toBe(50);
    expect(c.upperOffset).toBe(48);
    expect(c.hopByHopOffset).toBe(40);
  });

  it('treats Mobility (135) as the end of the chain', () => {
    const mh = new Uint8Array([59, 1, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const c = walk(v6(135, mh, { exts: [dstOpts()] }));
    expect(c.reason).toBe(DropReason.None);
    expect(c.upperProtocol).toBe(135);
    expect(c.upperOffset).toBe(48);
  });
});

describe('walkIpv6Chain: extension headers', () => {
  it('walks HBH, DestOpts, Routing, Fragment, AH, DestOpts to TCP and records every header', () => {
    const tcp = new Uint8Array(20);
    tcp[12] = 0x50;
    const p = v6(6, tcp, {
      exts: [hbh(), dstOpts(), routing(4, 0, 12), frag(0, false, 0xdeadbeef), ah(0x1000, 7, 12), dstOpts()],
    });
    const c = walk(p);
    expect(c.reason).toBe(DropReason.None);
    expect(c.headerCount).toBe(6);
    expect(c.hopByHopOffset).toBe(40);
    expect(c.destOptsOffset).toBe(48);
    expect(c.routingOffset).toBe(56);
    expect(c.routingType).toBe(4);
    expect(c.segmentsLeft).toBe(0);
    expect(c.fragmentHeaderOffset).toBe(56 + 16);
    expect(c.fragmentOffset).toBe(0);
    expect(c.moreFragments).toBe(false);
    expect(c.fragmentId).toBe(0xdeadbeef);
    expect(c.fragmentNextHeader).toBe(51);
    expect(c.isAtomicFragment).toBe(true);
    expect(c.ahOffset).toBe(80);
    expect(c.upperProtocol).toBe(6);
    expect(c.upperOffset).toBe(80 + 24 + 8);
    expect(c.upperNextHeaderOffset).toBe(80 + 24);
    // unfragmentable: fixed + HBH + DestOpts + Routing (RFC 8200 4.5)
    expect(c.unfragmentableEnd).toBe(72);
    expect(c.unfragmentableNextHeaderOffset).toBe(56);
  });

  it('unfragmentable part: fixed header only / after HBH / DestOpts without Routing is fragmentable', () => {
    expect(walk(v6(17, UDP())).unfragmentableEnd).toBe(40);
    const h = walk(v6(17, UDP(), { exts: [hbh()] }));
    expect(h.unfragmentableEnd).toBe(48);
    expect(h.unfragmentableNextHeaderOffset).toBe(40);
    const d = walk(v6(17, UDP(), { exts: [hbh(), dstOpts()] }));
    expect(d.unfragmentableEnd).toBe(48);
    expect(d.unfragmentableNextHeaderOffset).toBe(40);
    const dr = walk(v6(17, UDP(), { exts: [dstOpts(), routing(2, 1, 20)] }));
    expect(dr.unfragmentableEnd).toBe(40 + 8 + 24);
    expect(dr.unfragmentableNextHeaderOffset).toBe(48);
  });

  it('unfragmentable part includes a DestOpts header carrying a Home Address option (RFC 6275 6.3)', () => {
    const c = walk(v6(17, UDP(), { exts: [routing(2, 1, 20), haoDstOpts()] }));
    expect(c.reason).toBe(DropReason.None);
    expect(c.unfragmentableEnd).toBe(40 + 24 + 24);
    expect(c.unfragmentableNextHeaderOffset).toBe(64);
  });

  it('unfragmentable part stops at an existing Fragment header', () => {
    const c = walk(v6(17, UDP(), { exts: [hbh(), frag(0, false, 1), routing(2, 0, 20)] }));
    expect(c.reason).toBe(DropReason.None);
    expect(c.unfragmentableEnd).toBe(48);
    expect(c.fragmentHeaderOffset).toBe(48);
  });

  it('hop-by-hop anywhere but first is BadExtHeaderOrder with Parameter Problem code 1 at its Next Header', () => {
    const c = walk(v6(17, UDP(), { exts: [dstOpts(), hbh()] }));
    expect(c.reason).toBe(DropReason.BadExtHeaderOrder);
    expect(c.icmpCode).toBe(PARAM_PROBLEM_NEXT_HEADER);
    expect(c.icmpPointer).toBe(40); // the DestOpts header's Next Header byte names HBH
    const twice = walk(v6(17, UDP(), { exts: [hbh(), hbh()] }));
    expect(twice.reason).toBe(DropReason.BadExtHeaderOrder);
    expect(twice.icmpPointer).toBe(40);
  });

  it('too many extension headers (default 8) -> ExtHeaderChainTooLong, code 8; limit is configurable', () => {
    const eight = Array.from({ length: 8 }, () => dstOpts());
    expect(walk(v6(17, UDP(), { exts: eight })).reason).toBe(DropReason.None);
    const nine = Array.from({ length: 9 }, () => dstOpts());
    const c = walk(v6(17, UDP(), { exts: nine }));
    expect(c.reason).toBe(DropReason.ExtHeaderChainTooLong);
    expect(c.icmpCode).toBe(PARAM_PROBLEM_TOO_MANY_HEADERS);
    expect(c.icmpPointer).toBe(40 + 8 * 8);
    const lax = new Ipv6Chain();
    lax.maxHeaders = 9;
    expect(walk(v6(17, UDP(), { exts: nine }), lax).reason).toBe(DropReason.None);
    const strict = new Ipv6Chain();
    strict.maxHeaders = 1;
    expect(walk(v6(17, UDP(), { exts: [hbh(), dstOpts()] }), strict).reason).toBe(DropReason.ExtHeaderChainTooLong);
  });

  it('too many extension-header bytes -> ExtHeaderTooManyBytes, code 7', () => {
    expect(DEFAULT_MAX_EXT_BYTES).toBe(1240);
    // one DestOpts of 1248 bytes (PadN runs are not scanned by the walker)
    const big: Ext = { type: 60, body: new Uint8Array(1246) };
    const c = walk(v6(17, UDP(), { exts: [big] }));
    expect(c.reason).toBe(DropReason.ExtHeaderTooManyBytes);
    expect(c.icmpCode).toBe(PARAM_PROBLEM_CHAIN_TOO_LONG);
    expect(c.icmpPointer).toBe(40);
    const ok: Ext = { type: 60, body: new Uint8Array(1238) }; // exactly 1240
    expect(walk(v6(17, UDP(), { exts: [ok] })).reason).toBe(DropReason.None);
    const small = new Ipv6Chain();
    small.maxBytes = 16;
    expect(walk(v6(17, UDP(), { exts: [hbh(), dstOpts()] }), small).reason).toBe(DropReason.None);
    expect(walk(v6(17, UDP(), { exts: [hbh(), dstOpts(), dstOpts()] }), small).reason).toBe(
      DropReason.ExtHeaderTooManyBytes,
    );
  });

  it('a header length running past the payload is BadExtHeaderLength (silent drop), never a throw', () => {
    const p = v6(17, new Uint8Array(0), { exts: [{ type: 60, body: new Uint8Array(6), rawLen: 3 }] });
    const c = walk(p);
    expect(c.reason).toBe(DropReason.BadExtHeaderLength);
    expect(c.icmpCode).toBe(-1);
    expect(c.icmpPointer).toBe(41);
    // only one byte of an extension header present
    const q = v6(60, new Uint8Array([17]));
    expect(walk(q).reason).toBe(DropReason.BadExtHeaderLength);
    // extension header declared but payload empty
    expect(walk(v6(0, new Uint8Array(0))).reason).toBe(DropReason.BadExtHeaderLength);
    // a fragment header cut short
    expect(walk(v6(44, new Uint8Array([17, 0, 0, 0]))).reason).toBe(DropReason.BadExtHeaderLength);
  });

  it('routing type 0 with segments left is BadRoutingHeader, code 0 at the Routing Type (RFC 5095)', () => {
    const c = walk(v6(17, UDP(), { exts: [routing(0, 1, 20)] }));
    expect(c.reason).toBe(DropReason.BadRoutingHeader);
    expect(c.icmpCode).toBe(PARAM_PROBLEM_HEADER_FIELD);
    expect(c.icmpPointer).toBe(42);
    // segments left 0: treated like any unrecognised type with nothing left to do (RFC 8200 4.4)
    expect(walk(v6(17, UDP(), { exts: [routing(0, 0, 20)] })).reason).toBe(DropReason.None);
    const lax = new Ipv6Chain();
    lax.acceptRoutingType0 = true;
    expect(walk(v6(17, UDP(), { exts: [routing(0, 1, 20)] }), lax).reason).toBe(DropReason.None);
    // other types are the destination's business: recorded, not judged
    const t2 = walk(v6(17, UDP(), { exts: [routing(2, 1, 20)] }));
    expect(t2.reason).toBe(DropReason.None);
    expect(t2.routingType).toBe(2);
    expect(t2.segmentsLeft).toBe(1);
  });

  it('unassigned Next Header values are UnknownNextHeader, code 1 pointing at the field', () => {
    const c = walk(v6(200, seqBytes(8)));
    expect(c.reason).toBe(DropReason.UnknownNextHeader);
    expect(c.icmpCode).toBe(PARAM_PROBLEM_NEXT_HEADER);
    expect(c.icmpPointer).toBe(6);
    const d = walk(v6(255, seqBytes(8), { exts: [hbh()] }));
    expect(d.reason).toBe(DropReason.UnknownNextHeader);
    expect(d.icmpPointer).toBe(40);
    const lax = new Ipv6Chain();
    lax.acceptUnknownNextHeader = true;
    expect(walk(v6(200, seqBytes(8)), lax).upperProtocol).toBe(200);
    // assigned protocols are upper layers: SCTP, GRE, IPv4-in-IPv6, IPv6-in-IPv6
    for (const proto of [132, 47, 4, 41]) expect(walk(v6(proto, seqBytes(40))).upperProtocol).toBe(proto);
  });

  it('AH length is (len + 2) * 4 and must be a multiple of 8 of at least 16 bytes', () => {
    const ok = walk(v6(17, UDP(), { exts: [ah(1, 1, 12)] })); // 24 bytes
    expect(ok.reason).toBe(DropReason.None);
    expect(ok.ahOffset).toBe(40);
    expect(ok.upperOffset).toBe(64);
    const four = walk(v6(17, UDP(), { exts: [ah(1, 1, 4)] })); // 16 bytes
    expect(four.upperOffset).toBe(56);
    const odd = walk(v6(17, UDP(), { exts: [ah(1, 1, 8)] })); // 20 bytes: not 8-aligned in IPv6
    expect(odd.reason).toBe(DropReason.BadExtHeaderLength);
    expect(odd.icmpCode).toBe(PARAM_PROBLEM_HEADER_FIELD);
    expect(odd.icmpPointer).toBe(41);
    const tiny = walk(v6(17, UDP(), { exts: [{ type: 51, body: new Uint8Array(6), rawLen: 0 }] })); // 8 bytes
    expect(tiny.reason).toBe(DropReason.BadExtHeaderLength);
  });
});

describe('walkIpv6Chain: fragments (RFC 8200 4.5, RFC 7112)', () => {
  it('first fragment: records the header and walks on to the upper layer', () => {
    const body = ECHO().subarray(0, 64);
    const c = walk(v6(58, body, { exts: [frag(0, true, 0x12345678)] }));
    expect(c.reason).toBe(DropReason.None);
    expect(c.isFragment).toBe(true);
    expect(c.isFirstFragment).toBe(true);
    expect(c.isAtomicFragment).toBe(false);
    expect(c.fragmentHeaderOffset).toBe(40);
    expect(c.fragmentId).toBe(0x12345678);
    expect(c.upperProtocol).toBe(58);
    expect(c.upperOffset).toBe(48);
    expect(c.headerChainComplete).toBe(true);
    expect(c.unfragmentableEnd).toBe(40);
  });

  it('non-first fragment: stops at the fragment data, chain not complete', () => {
    const c = walk(v6(58, seqBytes(64), { exts: [hbh(), frag(1448, true, 7)] }));
    expect(c.reason).toBe(DropReason.None);
    expect(c.fragmentOffset).toBe(1448);
    expect(c.moreFragments).toBe(true);
    expect(c.isFirstFragment).toBe(false);
    expect(c.upperProtocol).toBe(58);
    expect(c.upperOffset).toBe(56);
    expect(c.headerChainComplete).toBe(false);
    expect(c.unfragmentableEnd).toBe(48);
    // a last fragment may have any length
    expect(walk(v6(58, seqBytes(13), { exts: [frag(1448, false, 7)] })).reason).toBe(DropReason.None);
  });

  it('M=1 with data not a multiple of 8 -> FragmentBadLength, code 0 at the Payload Length', () => {
    const c = walk(v6(58, seqBytes(13), { exts: [frag(8, true, 7)] }));
    expect(c.reason).toBe(DropReason.FragmentBadLength);
    expect(c.icmpCode).toBe(PARAM_PROBLEM_HEADER_FIELD);
    expect(c.icmpPointer).toBe(4);
  });

  it('offset + data beyond 65535 -> FragmentTooBig, code 0 at the Fragment Offset', () => {
    const c = walk(v6(58, seqBytes(64), { exts: [frag(65528 - 8, false, 7)] }));
    expect(c.reason).toBe(DropReason.FragmentTooBig);
    expect(c.icmpCode).toBe(PARAM_PROBLEM_HEADER_FIELD);
    expect(c.icmpPointer).toBe(42);
    expect(walk(v6(58, seqBytes(7), { exts: [frag(65528, false, 7)] })).reason).toBe(DropReason.None);
  });

  it('first fragment whose chain ends past the fragment -> FragmentIncompleteChain, code 3 pointer 0', () => {
    // DestOpts header claims 16 bytes but the first fragment holds only 8 of it
    const p = v6(17, new Uint8Array(0), {
      exts: [frag(0, true, 9), { type: 60, body: new Uint8Array(6), rawLen: 1 }],
    });
    const c = walk(p);
    expect(c.reason).toBe(DropReason.FragmentIncompleteChain);
    expect(c.icmpCode).toBe(PARAM_PROBLEM_INCOMPLETE_CHAIN);
    expect(c.icmpPointer).toBe(0);
    expect(c.headerChainComplete).toBe(false);
  });

  it('first fragment with a partial upper-layer header -> FragmentIncompleteChain (TCP needs 20 bytes)', () => {
    const c = walk(v6(6, seqBytes(16), { exts: [frag(0, true, 9)] }));
    expect(c.reason).toBe(DropReason.FragmentIncompleteChain);
    const u = walk(v6(17, seqBytes(8), { exts: [frag(0, true, 9)] }));
    expect(u.reason).toBe(DropReason.None);
    expect(u.headerChainComplete).toBe(true);
    // not a fragment: a short upper layer is the upper layer's problem, the chain walk is fine
    const plain = walk(v6(6, seqBytes(16)));
    expect(plain.reason).toBe(DropReason.None);
    expect(plain.headerChainComplete).toBe(false);
  });

  it('atomic fragment (offset 0, M=0) is walked like a whole packet (RFC 6946)', () => {
    const c = walk(v6(17, UDP(), { exts: [frag(0, false, 5)] }));
    expect(c.reason).toBe(DropReason.None);
    expect(c.isAtomicFragment).toBe(true);
    expect(c.upperProtocol).toBe(17);
    expect(c.headerChainComplete).toBe(true);
  });
});

describe('Ipv6Chain reuse', () => {
  it('resets every result field between walks', () => {
    const c = new Ipv6Chain();
    walk(v6(6, new Uint8Array(20), { exts: [hbh(), routing(2, 1, 20), frag(0, true, 3), ah(1, 1)] }), c);
    const fresh = walk(v6(17, UDP()));
    walk(v6(17, UDP()), c);
    for (const k of Object.keys(fresh) as (keyof Ipv6Chain)[]) expect([k, c[k]]).toEqual([k, fresh[k]]);
  });
});

describe('walker constants agree with ipv6.ts / ipv6-ext.ts', () => {
  it('is checked through behaviour: every named Next Header walks as its kind', async () => {
    const ext = await import('../../src/wire/ipv6-ext.ts');
    const num = await import('../../src/wire/ip.ts');
    const ip = await import('../../src/wire/ipv6.ts');
    expect([ip.IPV6_HEADER_LEN, ip.IPV6_PAYLOAD_LENGTH, ip.IPV6_NEXT_HEADER, ip.IPV6_DST]).toEqual([40, 4, 6, 24]);
    expect(ext.FRAG_HEADER_LEN).toBe(8);
    expect(ext.ROUTING_TYPE_0).toBe(0);
    const c = new Ipv6Chain();
    for (const [nh, ext1] of [
      [num.IP_PROTO_HOP_BY_HOP, hbh()],
      [num.IP_PROTO_DEST_OPTS, dstOpts()],
      [num.IP_PROTO_ROUTING, routing(2, 0, 4)],
      [num.IP_PROTO_FRAGMENT, frag(0, false, 1)],
      [num.IP_PROTO_AH, ah(1, 1, 4)],
    ] as const) {
      expect(ext1.type).toBe(nh);
      walk(v6(num.IP_PROTO_UDP, UDP(), { exts: [ext1] }), c);
      expect([nh, c.reason, c.headerCount, c.upperProtocol]).toEqual([nh, DropReason.None, 1, 17]);
    }
    for (const nh of [num.IP_PROTO_ESP, num.IP_PROTO_NONE, num.IP_PROTO_MOBILITY, num.IP_PROTO_HIP]) {
      walk(v6(nh, seqBytes(16)), c);
      expect([nh, c.upperProtocol, c.headerCount]).toEqual([nh, nh, 0]);
    }
    for (const nh of [num.IP_PROTO_TCP, num.IP_PROTO_UDP, num.IP_PROTO_ICMPV6]) {
      walk(v6(nh, seqBytes(20)), c);
      expect([nh, c.upperProtocol, c.headerChainComplete]).toEqual([nh, nh, true]);
    }
  });
});

describe('property: random well-formed chains', () => {
  it('upper layer, header count and unfragmentable part match an independent computation', async () => {
    const fc = (await import('fast-check')).default;
    type H = { kind: 'dst' | 'rt' | 'ah' | 'frag'; size: number };
    const header = fc.oneof(
      fc.record({ kind: fc.constant<'dst'>('dst'), size: fc.integer({ min: 1, max: 4 }) }),
      fc.record({ kind: fc.constant<'rt'>('rt'), size: fc.integer({ min: 1, max: 4 }) }),
      fc.record({ kind: fc.constant<'ah'>('ah'), size: fc.integer({ min: 1, max: 3 }) }),
      fc.record({ kind: fc.constant<'frag'>('frag'), size: fc.constant(1) }),
    );
    fc.assert(
      fc.property(fc.boolean(), fc.array(header, { maxLength: 7 }), fc.constantFrom(6, 17, 58), (withHbh, hs: H[], upper) => {
        const exts: Ext[] = [];
        if (withHbh) exts.push(hbh());
        for (const h of hs) {
          if (h.kind === 'dst') exts.push(dstOpts(new Uint8Array(h.size * 8 - 2).fill(0).map((_, i) => (i === 0 ? 1 : i === 1 ? h.size * 8 - 4 : 0))));
          else if (h.kind === 'rt') exts.push(routing(2, 0, h.size * 8 - 4));
          else if (h.kind === 'ah') exts.push(ah(7, 1, h.size * 8 + 4));
          else exts.push(frag(0, false, 99));
        }
        const p = v6(upper, new Uint8Array(20), { exts });
        const c = walk(p);
        // independent: sizes, and RFC 8200 4.5 (HBH, anything up to the last Routing header
        // before a Fragment header; an existing Fragment header ends it)
        let pos = 40;
        let unfrag = 40;
        let fragAt = -1;
        for (const e of exts) {
          const len = e.type === 44 ? 8 : e.type === 51 ? e.body.length + 2 : e.body.length + 2;
          if (e.type === 44 && fragAt < 0) fragAt = pos;
          if (fragAt < 0 && (e.type === 0 || e.type === 43)) unfrag = pos + len;
          pos += len;
        }
        if (fragAt >= 0) unfrag = fragAt;
        expect(c.reason).toBe(DropReason.None);
        expect(c.headerCount).toBe(exts.length);
        expect(c.upperOffset).toBe(pos);
        expect(c.upperProtocol).toBe(upper);
        expect(c.unfragmentableEnd).toBe(unfrag);
        expect(c.fragmentHeaderOffset).toBe(fragAt);
        expect(c.end).toBe(p.length);
      }),
      { numRuns: 500 },
    );
  });
});
