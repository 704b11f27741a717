/**
 * sumWordsWide against sumWords (the byte-at-a-time reference, itself checked against published
 * vectors in test/checksum.test.ts): every alignment of start and end, odd and even lengths,
 * views with a byteOffset, shared and plain buffers, random contents.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fold, fold16, sumShort, sumWords, sumWordsWide } from '../../src/wire/checksum.ts';

describe('sumWordsWide', () => {
  it('equals sumWords (folded) at every start and end alignment', () => {
    const ab = new SharedArrayBuffer(4096);
    const all = new Uint8Array(ab);
    for (let i = 0; i < all.length; i++) all[i] = (i * 197 + (i >> 3) * 13 + 5) & 0xff;
    for (const viewStart of [0, 1, 2, 3, 8]) {
      const view = new Uint8Array(ab, viewStart, 4000);
      for (let off = 0; off < 9; off++) {
        for (const len of [0, 1, 63, 64, 65, 66, 67, 100, 1347, 1348, 3000]) {
          expect(fold(sumWordsWide(view, off, len, 17)), `view ${viewStart} off ${off} len ${len}`).toBe(fold(sumWords(view, off, len, 17)));
        }
      }
    }
  });

  it('equals sumWords on random data (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 5000, size: 'max' }),
        fc.nat(7),
        fc.nat(),
        fc.nat(),
        fc.boolean(),
        (data, viewStart, a, b, shared) => {
          const ab = shared ? new SharedArrayBuffer(data.length + 8) : new ArrayBuffer(data.length + 8);
          const view = new Uint8Array(ab, viewStart, data.length);
          view.set(data);
          const off = data.length === 0 ? 0 : a % data.length;
          const len = data.length - off === 0 ? 0 : b % (data.length - off + 1);
          return fold(sumWordsWide(view, off, len)) === fold(sumWords(view, off, len));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('sumShort equals sumWords on headers of every length', () => {
    const b = Uint8Array.from({ length: 130 }, (_, i) => (i * 89 + 3) & 0xff);
    for (let off = 0; off < 4; off++) {
      for (let len = 0; len <= 120; len++) expect(fold16(sumShort(b, off, len, 5))).toBe(fold(sumWords(b, off, len, 5)));
    }
  });

  it('all 0xff and all-zero runs keep their ones-complement class', () => {
    const ff = new Uint8Array(new ArrayBuffer(1024)).fill(0xff);
    expect(fold(sumWordsWide(ff, 1, 1000))).toBe(0xffff);
    const z = new Uint8Array(new ArrayBuffer(1024));
    expect(fold(sumWordsWide(z, 3, 1000))).toBe(0);
  });
});
