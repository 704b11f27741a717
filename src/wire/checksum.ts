/**
 * Internet checksum (RFC 1071): one's-complement sum of 16-bit words, wide accumulation,
 * pseudo-headers for IPv4 (RFC 768/793) and IPv6 (RFC 8200 section 8.1), and incremental
 * update (RFC 1624, eqn. 3).
 *
 * Wide accumulation: 32-bit big-endian words are added into a JS number (exact up to 2^53, so no
 * carry handling until the end for any buffer below 2 MiB) and folded once. Reading 32 bits at a
 * time halves the loop count of the 16-bit version; see bench/packet.bench.ts for the figures.
 *
 * Specialised entry points: for the IPv4 header (every forwarded packet, every fragment written),
 * ipv4HeaderSum / ipv4HeaderChecksum; for short ranges and long payloads in small-integer
 * arithmetic (the offload paths), sumShort / fold16 / sumWordsWide (at the end of this file).
 * test/checksum.test.ts and test/wire/checksum-wide.test.ts check them against the general routine.
 */

/** Sum buf[off, off+len) as 16-bit big-endian words into `acc` (not folded). Odd tail padded. */
export function sumWords(buf: Uint8Array, off: number, len: number, acc = 0): number {
  let i = off;
  const end = off + len;
  const end32 = end - 3;
  // Unrolled by four 32-bit words: V8 keeps acc as a double; no overflow below 2^53.
  const end128 = end - 15;
  while (i < end128) {
    acc +=
      ((buf[i]! << 24) | (buf[i + 1]! << 16) | (buf[i + 2]! << 8) | buf[i + 3]!) >>> 0;
    acc +=
      ((buf[i + 4]! << 24) | (buf[i + 5]! << 16) | (buf[i + 6]! << 8) | buf[i + 7]!) >>> 0;
    acc +=
      ((buf[i + 8]! << 24) | (buf[i + 9]! << 16) | (buf[i + 10]! << 8) | buf[i + 11]!) >>> 0;
    acc +=
      ((buf[i + 12]! << 24) | (buf[i + 13]! << 16) | (buf[i + 14]! << 8) | buf[i + 15]!) >>> 0;
    i += 16;
  }
  while (i < end32) {
    acc += ((buf[i]! << 24) | (buf[i + 1]! << 16) | (buf[i + 2]! << 8) | buf[i + 3]!) >>> 0;
    i += 4;
  }
  if (i + 1 < end) {
    acc += (buf[i]! << 8) | buf[i + 1]!;
    i += 2;
  }
  if (i < end) acc += buf[i]! << 8;
  return acc;
}

/**
 * Folded (not complemented) sum over the IPv4 header at b[o] (IHL * 4 bytes, IHL read from the
 * buffer; the caller checked IHL >= 5 and that the header is there): 0xffff when its checksum
 * is right. Int-only arithmetic on 16-bit words: at most 30 words of 0xffff, far below 2^31, so
 * V8 keeps everything in small integers, where sumWords' double accumulator would be boxed (an
 * allocation) when it crosses a call boundary. The fixed 20 bytes are unrolled. (A DataView
 * would read faster but needs `buf.buffer`, whose getter costs more than the whole sum.)
 */
export function ipv4HeaderSum(b: Uint8Array, o: number): number {
  const hl = (b[o]! & 0x0f) << 2;
  let s =
    ((b[o]! << 8) | b[o + 1]!) + ((b[o + 2]! << 8) | b[o + 3]!) +
    ((b[o + 4]! << 8) | b[o + 5]!) + ((b[o + 6]! << 8) | b[o + 7]!) +
    ((b[o + 8]! << 8) | b[o + 9]!) + ((b[o + 10]! << 8) | b[o + 11]!) +
    ((b[o + 12]! << 8) | b[o + 13]!) + ((b[o + 14]! << 8) | b[o + 15]!) +
    ((b[o + 16]! << 8) | b[o + 17]!) + ((b[o + 18]! << 8) | b[o + 19]!);
  // options, after the 20-byte fixed header
  for (let i = o + 20; i < o + hl; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return s;
}

/**
 * The header checksum field value for the IPv4 header at b[o] (its checksum field must be 0
 * while this runs, as for checksum()). Same rules and arithmetic as ipv4HeaderSum.
 */
export function ipv4HeaderChecksum(b: Uint8Array, o: number): number {
  return ~ipv4HeaderSum(b, o) & 0xffff;
}

/** Fold a wide accumulator to 16 bits (end-around carry), not complemented. */
export function fold(acc: number): number {
  // Split into 16-bit pieces with arithmetic that stays exact above 2^32.
  let hi = Math.floor(acc / 65536);
  let s = (acc - hi * 65536) + (hi % 65536) + Math.floor(hi / 65536);
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 65536);
  return s;
}

/** Internet checksum of buf[off, off+len): complemented folded sum (field value to store). */
export function checksum(buf: Uint8Array, off: number, len: number, initial = 0): number {
  return ~fold(sumWords(buf, off, len, initial)) & 0xffff;
}

/** True when the bytes including their checksum field sum to 0xffff (a valid checksum). */
export function verify(buf: Uint8Array, off: number, len: number, initial = 0): boolean {
  return fold(sumWords(buf, off, len, initial)) === 0xffff;
}

/** Unfolded IPv4 pseudo-header sum: src(4) dst(4) zero proto upperLength. */
export function pseudoHeaderSumV4(
  buf: Uint8Array,
  srcOff: number,
  dstOff: number,
  protocol: number,
  upperLength: number,
): number {
  return sumWords(buf, srcOff, 4, sumWords(buf, dstOff, 4, protocol + upperLength));
}

/** Unfolded IPv6 pseudo-header sum: src(16) dst(16) upperLength(32) zero(24) nextHeader(8). */
export function pseudoHeaderSumV6(
  buf: Uint8Array,
  srcOff: number,
  dstOff: number,
  nextHeader: number,
  upperLength: number,
): number {
  const lenSum = Math.floor(upperLength / 65536) + (upperLength & 0xffff);
  return sumWords(buf, srcOff, 16, sumWords(buf, dstOff, 16, nextHeader + lenSum));
}

/**
 * RFC 1624 eqn. 3: new checksum field after one 16-bit word of the covered data changed from
 * `oldWord` to `newWord`. HC' = ~(~HC + ~m + m'). Never yields 0x0000 from a sum that was not
 * all-zero, which eqn. 2 (HC' = HC - ~m - m') gets wrong.
 */
export function adjust16(fieldValue: number, oldWord: number, newWord: number): number {
  let s = (~fieldValue & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff);
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** RFC 1624 for a 32-bit change (an IPv4 address, say): two 16-bit updates in one pass. */
export function adjust32(fieldValue: number, oldValue: number, newValue: number): number {
  let s =
    (~fieldValue & 0xffff) +
    (~(oldValue >>> 16) & 0xffff) +
    (~oldValue & 0xffff) +
    ((newValue >>> 16) & 0xffff) +
    (newValue & 0xffff);
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/**
 * RFC 1624 for a byte range rewritten in place (an IPv6 address): pass the old bytes' sum
 * (sumWords before the write) and the new bytes' sum (after). Ranges must start at an even
 * offset relative to the checksummed data.
 */
export function adjustSums(fieldValue: number, oldSum: number, newSum: number): number {
  const o = fold(oldSum);
  const n = fold(newSum);
  return adjust16(fieldValue, o, n);
}

// ---------------------------------------------------------------- wide sums over long payloads
//
// sumWordsWide: the same sum as sumWords (16-bit big-endian words of buf[off, off+len), odd tail
// padded, added to `acc`), read through a Uint32Array: one aligned 32-bit load per four bytes
// instead of four byte loads and shifts. Measured over 64 KiB: ~6 us against ~18-25 us for
// sumWords (bench/offload.bench.ts). Used for the payloads of TCP super-packets (TSO split, GRO
// checksum checks).
//
// Why it is the same sum. A little-endian u32 load of bytes b0 b1 b2 b3 is
// b0 + 256 b1 + 65536 b2 + 2^24 b3, which is congruent mod 65535 to (b0 + b2) + 256 (b1 + b3):
// the big-endian word sum (256 b0 + b1) + (256 b2 + b3) with its bytes swapped. Ones'-complement
// sums are sums mod 65535, and swapping the bytes of a folded sum multiplies it by 256 mod 65535
// (RFC 1071, "byte order independence"). The same rotation handles a range that starts at an
// odd address: pair bytes on even addresses, then swap the folded result.
//
// sumShort, fold16 and sumWordsWide return small integers (folded, at most 0xffff plus `acc`): a
// double that crossed a call boundary would be boxed, an allocation per call.

const u32Views = new WeakMap<ArrayBufferLike, Uint32Array>();

function u32Of(ab: ArrayBufferLike): Uint32Array {
  let v = u32Views.get(ab);
  if (v === undefined) {
    v = new Uint32Array(ab, 0, ab.byteLength >>> 2);
    u32Views.set(ab, v);
  }
  return v;
}

/**
 * Sum of the 16-bit big-endian words of a short range (a header: at most 64 KiB), odd tail
 * padded, added to `acc`, not folded. Small-integer arithmetic only.
 */
export function sumShort(b: Uint8Array, off: number, len: number, acc = 0): number {
  let s = 0;
  const end = off + len;
  let i = off;
  for (; i + 1 < end; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if (i < end) s += b[i]! << 8;
  return acc + s;
}

/** Fold a non-negative sum below 2^31 to 16 bits (end-around carry), not complemented. */
export function fold16(s: number): number {
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** Below this many bytes the byte loop is as fast and needs no view lookup. */
const WIDE_MIN = 64;

/** Sum of buf[off, off+len) as big-endian 16-bit words, folded, plus `acc`. */
export function sumWordsWide(buf: Uint8Array, off: number, len: number, acc = 0): number {
  if (len < WIDE_MIN) return fold16(sumShort(buf, off, len)) + acc;
  const words = u32Of(buf.buffer);
  const b = buf;
  let p = off; // index in buf
  const end = off + len;
  const odd = (buf.byteOffset + off) & 1;
  // t: sum with bytes paired on even absolute addresses (big-endian words)
  let t = 0;
  if (odd) {
    t += b[p]!; // low byte of the pair (p - 1, p)
    p++;
  }
  if (((buf.byteOffset + p) & 2) !== 0) {
    t += (b[p]! << 8) | b[p + 1]!;
    p += 2;
  }
  // p is 4-aligned in absolute terms
  const nWords = (end - p) >>> 2;
  let w = (buf.byteOffset + p) >>> 2;
  const wEnd = w + nWords;
  const wEnd4 = wEnd - 3;
  let l0 = 0;
  let l1 = 0;
  while (w < wEnd4) {
    l0 += words[w]!;
    l1 += words[w + 1]!;
    l0 += words[w + 2]!;
    l1 += words[w + 3]!;
    w += 4;
  }
  while (w < wEnd) l0 += words[w++]!;
  // fold the double l0 + l1 (< 2^53) without a call: split at 2^16, then end-around carries
  const l = l0 + l1;
  const hi = Math.floor(l / 65536);
  let f = l - hi * 65536 + (hi % 65536) + Math.floor(hi / 65536);
  f = (f & 0xffff) + (f >>> 16);
  f = (f & 0xffff) + (f >>> 16);
  t += ((f & 0xff) << 8) | (f >>> 8);
  p += nWords << 2;
  // tail: fewer than 4 bytes from an aligned address
  if (p + 1 < end) {
    t += (b[p]! << 8) | b[p + 1]!;
    p += 2;
  }
  if (p < end) t += b[p]! << 8;
  t = fold16(t);
  return acc + (odd ? ((t & 0xff) << 8) | (t >>> 8) : t);
}
