/** Hand-built IPv4/IPv6 packets for the fragmentation tests (plain Buffers, valid checksums). */
import { checksum } from '../../src/wire/checksum.ts';

export interface V4Spec {
  src?: number[];
  dst?: number[];
  proto?: number;
  id?: number;
  ttl?: number;
  df?: boolean;
  /** Raw option bytes (padded to a multiple of 4 here). */
  options?: number[];
  payload: Uint8Array;
  /** Fragment fields (for hand-made fragments). */
  mf?: boolean;
  offset8?: number;
}

export function v4(spec: V4Spec): Buffer {
  const opts = spec.options ?? [];
  const optLen = (opts.length + 3) & ~3;
  const ihl = 20 + optLen;
  const total = ihl + spec.payload.length;
  const b = Buffer.alloc(total);
  b[0] = 0x40 | (ihl >> 2);
  b.writeUInt16BE(total, 2);
  b.writeUInt16BE(spec.id ?? 0x1234, 4);
  b.writeUInt16BE((spec.df ? 0x4000 : 0) | (spec.mf ? 0x2000 : 0) | (spec.offset8 ?? 0), 6);
  b[8] = spec.ttl ?? 64;
  b[9] = spec.proto ?? 17;
  b.set(spec.src ?? [10, 0, 0, 1], 12);
  b.set(spec.dst ?? [10, 0, 0, 2], 16);
  b.set(opts, 20);
  b.writeUInt16BE(checksum(b, 0, ihl), 10);
  b.set(spec.payload, ihl);
  return b;
}

export const SRC6 = [0xfd, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
export const DST6 = [0xfd, 0, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20];

export interface V6Spec {
  src?: number[];
  dst?: number[];
  /** Next header after the whole extension chain (the upper layer). */
  nh?: number;
  /** Extension headers, in order: [type, bodyBytes] (length field and next header filled in). */
  ext?: Array<[number, number]>;
  /** Insert a fragment header at the end of the chain with these fields. */
  frag?: { offset: number; more: boolean; id: number };
  payload: Uint8Array;
  hopLimit?: number;
}

/** Build an IPv6 packet; ext entries are [type, total header length in bytes (multiple of 8)]. */
export function v6(spec: V6Spec): Buffer {
  const ext = spec.ext ?? [];
  const chain: Array<[number, number]> = [...ext];
  if (spec.frag) chain.push([44, 8]);
  let extLen = 0;
  for (const [, l] of chain) extLen += l;
  const b = Buffer.alloc(40 + extLen + spec.payload.length);
  b[0] = 0x60;
  b.writeUInt16BE(extLen + spec.payload.length, 4);
  b[7] = spec.hopLimit ?? 64;
  b.set(spec.src ?? SRC6, 8);
  b.set(spec.dst ?? DST6, 24);
  let nhAt = 6;
  let pos = 40;
  for (const [t, l] of chain) {
    b[nhAt] = t;
    nhAt = pos;
    if (t === 44) {
      const f = spec.frag!;
      b.writeUInt16BE((f.offset & 0xfff8) | (f.more ? 1 : 0), pos + 2);
      b.writeUInt32BE(f.id >>> 0, pos + 4);
    } else {
      b[pos + 1] = l / 8 - 1;
      // PadN filling the option area
      if (t === 0 || t === 60) {
        b[pos + 2] = 1;
        b[pos + 3] = l - 4;
      } else if (t === 43) {
        b[pos + 2] = 4; // SRH-ish type, segments left 0: harmless
      }
    }
    pos += l;
  }
  b[nhAt] = spec.nh ?? 17;
  b.set(spec.payload, pos);
  return b;
}

export function pattern(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** A UDP-looking upper layer (8-byte header then data) of n bytes total (n >= 8). */
export function udpLike(n: number, seed = 1): Buffer {
  const b = pattern(n, seed);
  if (n >= 8) {
    b.writeUInt16BE(4000, 0);
    b.writeUInt16BE(5000, 2);
    b.writeUInt16BE(n & 0xffff, 4);
    b.writeUInt16BE(0, 6);
  }
  return b;
}
