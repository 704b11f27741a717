import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { adjust16, adjust32, checksum, fold, ipv4HeaderChecksum, ipv4HeaderSum, sumWords, verify } from '../src/wire/checksum.ts';

/** Reference: RFC 1071 byte-pair loop with end-around carry after every add. */
function reference(buf: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < buf.length; i += 2) {
    s += (buf[i]! << 8) | (i + 1 < buf.length ? buf[i + 1]! : 0);
    s = (s & 0xffff) + (s >>> 16);
  }
  return ~s & 0xffff;
}

describe('checksum (RFC 1071)', () => {
  it('matches the RFC 1071 section 3 example', () => {
    // 00 01 f2 03 f4 f5 f6 f7 -> sum 0xddf2, checksum 0x220d
    const b = Uint8Array.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
    expect(fold(sumWords(b, 0, b.length))).toBe(0xddf2);
    expect(checksum(b, 0, b.length)).toBe(0x220d);
  });

  it('validates an IPv4 header and notices a changed byte', () => {
    const h = Buffer.from('4500005442a8400040015892c0a80a0ac0a81414', 'hex');
    expect(verify(h, 0, 20)).toBe(true);
    h[8] = 63;
    expect(verify(h, 0, 20)).toBe(false);
  });

  it('equals the byte-pair reference for random buffers, offsets and odd lengths', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.nat(7), (data, pad) => {
        const b = new Uint8Array(data.length + pad);
        b.set(data, pad);
        expect(checksum(b, pad, data.length)).toBe(reference(data));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('IPv4 header entry point (ipv4HeaderSum / ipv4HeaderChecksum)', () => {
  it('equals the general routine and the byte-pair reference for every IHL, offset and content', () => {
    fc.assert(
      fc.property(fc.integer({ min: 5, max: 15 }), fc.uint8Array({ minLength: 60, maxLength: 60 }), fc.nat(7), (ihl, data, pad) => {
        const hl = ihl * 4;
        const b = new Uint8Array(pad + 64).fill(0xa5); // bytes after the header must not count
        b.set(data.subarray(0, hl), pad);
        b[pad] = 0x40 | ihl;
        expect(ipv4HeaderSum(b, pad)).toBe(fold(sumWords(b, pad, hl)));
        b[pad + 10] = 0;
        b[pad + 11] = 0;
        const c = ipv4HeaderChecksum(b, pad);
        expect(c).toBe(checksum(b, pad, hl));
        expect(c).toBe(reference(b.subarray(pad, pad + hl)));
        b[pad + 10] = c >> 8;
        b[pad + 11] = c & 0xff;
        expect(ipv4HeaderSum(b, pad)).toBe(0xffff);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('incremental update (RFC 1624)', () => {
  it('equals full recomputation for random 16-bit and 32-bit rewrites', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 20, maxLength: 60 }).map((a) => (a.length % 2 ? a.subarray(1) : a)),
        fc.nat(),
        fc.integer({ min: 0, max: 0xffffffff }),
        (data, pos, v) => {
          const b = Uint8Array.from(data);
          b[0] = 0;
          b[1] = 0;
          const c = checksum(b, 0, b.length);
          const i = 2 + 2 * (pos % ((b.length - 2) / 2));
          const old16 = (b[i]! << 8) | b[i + 1]!;
          const new16 = v & 0xffff;
          b[i] = new16 >> 8;
          b[i + 1] = new16 & 0xff;
          const full = checksum(b, 0, b.length);
          const inc = adjust16(c, old16, new16);
          // One's complement has two zeros: both must verify; recomputation yields the same field
          // except that eqn. 3 may legitimately give 0x0000 <-> 0xffff only when the data sums to zero.
          if (inc !== full) expect(inc ^ full).toBe(0xffff);
          b[0] = inc >> 8;
          b[1] = inc & 0xff;
          expect(verify(b, 0, b.length)).toBe(true);
          if (i + 3 < b.length) {
            const old32 = ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;
            const c2 = (b[0]! << 8) | b[1]!;
            b[i] = v >>> 24;
            b[i + 1] = (v >>> 16) & 0xff;
            b[i + 2] = (v >>> 8) & 0xff;
            b[i + 3] = v & 0xff;
            const inc2 = adjust32(c2, old32, v >>> 0);
            b[0] = inc2 >> 8;
            b[1] = inc2 & 0xff;
            expect(verify(b, 0, b.length)).toBe(true);
          }
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('handles the 0xffff / 0x0000 corner with the RFC 1624 section 4 example', () => {
    // Other words sum to 0xCD7A; m = 0x5555 becomes m' = 0x3285. Recomputation gives 0x0000;
    // eqn. 2 (HC - ~m - m') would give 0xFFFF, eqn. 3 gives 0x0000.
    const b = Uint8Array.from([0, 0, 0xcd, 0x7a, 0x55, 0x55]);
    const c = checksum(b, 0, 6);
    expect(c).toBe(0xdd2f);
    const inc = adjust16(c, 0x5555, 0x3285);
    b[4] = 0x32;
    b[5] = 0x85;
    expect(checksum(b, 0, 6)).toBe(0x0000);
    expect(inc).toBe(0x0000);
    b[0] = inc >> 8;
    b[1] = inc & 0xff;
    expect(verify(b, 0, 6)).toBe(true);
  });

  it('TTL decrement matches recomputation on an IPv4 header', () => {
    const h = Buffer.from('4500005442a8400040015892c0a80a0ac0a81414', 'hex');
    const oldWord = h.readUInt16BE(8);
    h[8]! -= 1;
    const inc = adjust16(h.readUInt16BE(10), oldWord, h.readUInt16BE(8));
    h.writeUInt16BE(0, 10);
    expect(inc).toBe(checksum(h, 0, 20));
  });
});
