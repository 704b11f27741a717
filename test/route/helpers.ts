/** Shared helpers for route tests: seeded random, prefixes as bytes, packet builders. */
import type { Family, Prefix } from '../../src/wire/address-text.ts';

export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function maskBytes(b: Uint8Array, len: number): Uint8Array {
  const out = b.slice();
  for (let bit = len; bit < out.length * 8; bit++) out[bit >> 3]! &= ~(1 << (7 - (bit & 7)));
  return out;
}

export function matches(p: Prefix, addr: Uint8Array): boolean {
  for (let bit = 0; bit < p.length; bit++) {
    const m = 1 << (7 - (bit & 7));
    if ((p.bytes[bit >> 3]! & m) !== (addr[bit >> 3]! & m)) return false;
  }
  return true;
}

/** Random addresses clustered around a few bases (so prefixes nest and siblings exist). */
export function addressGen(rand: () => number, family: Family, bases = 6): () => Uint8Array {
  const n = family === 4 ? 4 : 16;
  const bs: Uint8Array[] = [];
  for (let i = 0; i < bases; i++) bs.push(Uint8Array.from({ length: n }, () => Math.floor(rand() * 256)));
  return () => {
    const a = bs[Math.floor(rand() * bs.length)]!.slice();
    // flip a few random bits, biased towards the low end
    const flips = Math.floor(rand() * 4);
    for (let f = 0; f < flips; f++) {
      const bit = Math.floor(Math.sqrt(rand()) * n * 8);
      a[bit >> 3]! ^= 1 << (7 - (bit & 7));
    }
    return a;
  };
}

export function randomPrefix(rand: () => number, gen: () => Uint8Array, family: Family): Prefix {
  const max = family === 4 ? 32 : 128;
  const r = rand();
  const length = r < 0.05 ? 0 : r < 0.1 ? max : Math.floor(rand() * (max + 1));
  return { family, bytes: maskBytes(gen(), length), length };
}

export function ipv4Packet(src: string, dst: string, proto = 17, sport = 1000, dport = 2000, frag = 0): Uint8Array {
  const b = new Uint8Array(28);
  b[0] = 0x45;
  b[3] = 28;
  b[6] = frag >> 8;
  b[7] = frag & 255;
  b[8] = 64;
  b[9] = proto;
  b.set(src.split('.').map(Number), 12);
  b.set(dst.split('.').map(Number), 16);
  b[20] = sport >> 8;
  b[21] = sport & 255;
  b[22] = dport >> 8;
  b[23] = dport & 255;
  return b;
}

export function ipv6Packet(src: Uint8Array, dst: Uint8Array, proto = 17, sport = 1000, dport = 2000, flowLabel = 0): Uint8Array {
  const b = new Uint8Array(48);
  b[0] = 0x60 | ((flowLabel >> 16) & 0);
  b[1] = (flowLabel >> 16) & 15;
  b[2] = (flowLabel >> 8) & 255;
  b[3] = flowLabel & 255;
  b[5] = 8;
  b[6] = proto;
  b[7] = 64;
  b.set(src, 8);
  b.set(dst, 24);
  b[40] = sport >> 8;
  b[41] = sport & 255;
  b[42] = dport >> 8;
  b[43] = dport & 255;
  return b;
}

/** A 4-word big-endian key from address bytes. */
export function words(bytes: Uint8Array): Uint32Array {
  const w = new Uint32Array(4);
  for (let i = 0; i < bytes.length; i++) w[i >> 2]! |= bytes[i]! << (24 - 8 * (i & 3));
  return w;
}
export const keyOf = (p: Prefix) => `${p.length}/${Buffer.from(p.bytes).toString('hex')}`;

/** Brute-force reference: the value of the longest present prefix holding addr, or -1. */
export function refLookup(present: Map<string, { p: Prefix; v: number }>, addr: Uint8Array): number {
  let best = -1;
  let bestLen = -1;
  for (const { p, v } of present.values()) {
    if (p.length > bestLen && matches(p, addr)) {
      best = v;
      bestLen = p.length;
    }
  }
  return best;
}

/** The covering prefix (length, value) a removal of p must restore: [0, -1] when none. */
export function cover(present: Map<string, { p: Prefix; v: number }>, p: Prefix): [number, number] {
  let best: [number, number] = [0, -1];
  for (const { p: q, v } of present.values()) {
    if (q.length < p.length && matches(q, p.bytes) && (best[1] < 0 || q.length > best[0])) best = [q.length, v];
  }
  return best;
}
