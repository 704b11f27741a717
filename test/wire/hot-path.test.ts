/**
 * Hot-path shortcuts kept beside the views for speed answer exactly what the views answer.
 * (ipv4HeaderSum against the general checksum: test/checksum.test.ts.)
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IP_PROTO_ICMP, IP_PROTO_TCP, IP_PROTO_UDP } from '../../src/wire/ip.ts';
import { Ipv4Packet, ipv4UnfragmentedPayload } from '../../src/wire/ipv4.ts';
import { ipv6DirectPayload, Ipv6Packet } from '../../src/wire/ipv6.ts';

const protocols = fc.constantFrom(IP_PROTO_TCP, IP_PROTO_UDP, IP_PROTO_ICMP, 0, 255);

describe('hot-path shortcuts equal the views', () => {
  it('ipv4UnfragmentedPayload: protocol, MF / offset / reserved / DF bits, any IHL, any offset', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 60, maxLength: 60 }), fc.nat(9), protocols, protocols, (bytes, pad, proto, ask) => {
        const b = new Uint8Array(pad + 60);
        b.set(bytes, pad);
        b[pad + 9] = proto;
        const v = new Ipv4Packet(b, pad, 60);
        const want = v.protocol === ask && !v.isFragment ? v.payloadOffset : -1;
        expect(ipv4UnfragmentedPayload(b, pad, ask)).toBe(want);
      }),
      { numRuns: 5000 },
    );
    // each flag bit on its own: DF and the reserved bit leave a packet unfragmented, MF and offset do not
    const b = new Uint8Array(20);
    b[0] = 0x46;
    b[9] = IP_PROTO_TCP;
    for (const [hi, lo, unfragmented] of [[0x80, 0, true], [0x40, 0, true], [0x20, 0, false], [0x01, 0, false], [0, 1, false]] as const) {
      b[6] = hi;
      b[7] = lo;
      expect(ipv4UnfragmentedPayload(b, 0, IP_PROTO_TCP)).toBe(unfragmented ? 24 : -1);
    }
  });

  it('ipv6DirectPayload: the fixed header Next Header only', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 40, maxLength: 40 }), fc.nat(9), protocols, protocols, (bytes, pad, nh, ask) => {
        const b = new Uint8Array(pad + 40);
        b.set(bytes, pad);
        b[pad + 6] = nh;
        const v = new Ipv6Packet(b, pad, 40);
        expect(ipv6DirectPayload(b, pad, ask)).toBe(v.nextHeader === ask ? v.payloadOff : -1);
      }),
      { numRuns: 2000 },
    );
  });
});
