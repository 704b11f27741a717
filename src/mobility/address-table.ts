/**
 * Exact-match table from an IPv4 or IPv6 address to a small integer (a node or binding index),
 * for lookups by home address straight out of packet bytes: open addressing with linear probing
 * over typed arrays (the key as four 32-bit words + its family), no strings and no allocation per
 * lookup; deletion shifts the probe run back (no tombstones), so lookups stay short under churn.
 */

const EMPTY = 0;

function fnvWord(h: number, w: number): number {
  h = Math.imul(h ^ (w & 0xff), 0x01000193);
  h = Math.imul(h ^ ((w >>> 8) & 0xff), 0x01000193);
  h = Math.imul(h ^ ((w >>> 16) & 0xff), 0x01000193);
  return Math.imul(h ^ (w >>> 24), 0x01000193);
}

/** A 32-bit hash of (family, words): FNV-1a over the bytes, then a final avalanche. */
function hashKey(family: number, w0: number, w1: number, w2: number, w3: number): number {
  let h = 0x811c9dc5 ^ family;
  h = fnvWord(h, w0);
  if (family === 6) {
    h = fnvWord(h, w1);
    h = fnvWord(h, w2);
    h = fnvWord(h, w3);
  }
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  return (h ^ (h >>> 12)) >>> 0;
}

function word(buf: Uint8Array, off: number): number {
  return ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
}

export class AddressTable {
  private mask: number;
  /** 0 = empty slot, else 4 or 6. */
  private fam: Uint8Array;
  private keys: Uint32Array;
  private vals: Int32Array;
  private count = 0;

  constructor(expected = 16) {
    let cap = 16;
    while (cap < expected * 2) cap *= 2;
    this.mask = cap - 1;
    this.fam = new Uint8Array(cap);
    this.keys = new Uint32Array(cap * 4);
    this.vals = new Int32Array(cap);
  }

  get size(): number {
    return this.count;
  }

  /** Bytes held by the typed arrays. */
  get byteSize(): number {
    return this.fam.byteLength + this.keys.byteLength + this.vals.byteLength;
  }

  /** Value for the address at buf[off] (4 or 16 bytes), or -1. */
  get(family: 4 | 6, buf: Uint8Array, off: number): number {
    if (family === 4) return this.find(4, word(buf, off), 0, 0, 0);
    return this.find(6, word(buf, off), word(buf, off + 4), word(buf, off + 8), word(buf, off + 12));
  }

  /** Value for an IPv4 address given as an unsigned 32-bit number, or -1. */
  getV4(addr: number): number {
    return this.find(4, addr >>> 0, 0, 0, 0);
  }

  /** Insert or replace. Value must be >= 0. */
  set(family: 4 | 6, buf: Uint8Array, off: number, value: number): void {
    if (this.count + 1 > (this.mask + 1) >> 1) this.grow();
    const w0 = word(buf, off);
    const w1 = family === 6 ? word(buf, off + 4) : 0;
    const w2 = family === 6 ? word(buf, off + 8) : 0;
    const w3 = family === 6 ? word(buf, off + 12) : 0;
    let i = hashKey(family, w0, w1, w2, w3) & this.mask;
    for (;;) {
      const f = this.fam[i]!;
      if (f === EMPTY) {
        this.fam[i] = family;
        const k = i * 4;
        this.keys[k] = w0;
        this.keys[k + 1] = w1;
        this.keys[k + 2] = w2;
        this.keys[k + 3] = w3;
        this.vals[i] = value;
        this.count++;
        return;
      }
      if (this.same(i, family, w0, w1, w2, w3)) {
        this.vals[i] = value;
        return;
      }
      i = (i + 1) & this.mask;
    }
  }

  /** Remove; returns the old value or -1. */
  delete(family: 4 | 6, buf: Uint8Array, off: number): number {
    const w0 = word(buf, off);
    const w1 = family === 6 ? word(buf, off + 4) : 0;
    const w2 = family === 6 ? word(buf, off + 8) : 0;
    const w3 = family === 6 ? word(buf, off + 12) : 0;
    let i = this.slotOf(family, w0, w1, w2, w3);
    if (i < 0) return -1;
    const old = this.vals[i]!;
    // backward-shift deletion: move later members of the probe run into the hole
    let j = i;
    for (;;) {
      j = (j + 1) & this.mask;
      if (this.fam[j] === EMPTY) break;
      const k = j * 4;
      const home = hashKey(this.fam[j]!, this.keys[k]!, this.keys[k + 1]!, this.keys[k + 2]!, this.keys[k + 3]!) & this.mask;
      // j may move to i when its home slot is not in (i, j] cyclically
      const between = i <= j ? home > i && home <= j : home > i || home <= j;
      if (between) continue;
      this.fam[i] = this.fam[j]!;
      this.keys.copyWithin(i * 4, k, k + 4);
      this.vals[i] = this.vals[j]!;
      i = j;
    }
    this.fam[i] = EMPTY;
    this.count--;
    return old;
  }

  private same(i: number, family: number, w0: number, w1: number, w2: number, w3: number): boolean {
    const k = i * 4;
    return this.fam[i] === family && this.keys[k] === w0 && this.keys[k + 1] === w1 && this.keys[k + 2] === w2 && this.keys[k + 3] === w3;
  }

  private slotOf(family: number, w0: number, w1: number, w2: number, w3: number): number {
    let i = hashKey(family, w0, w1, w2, w3) & this.mask;
    for (;;) {
      const f = this.fam[i]!;
      if (f === EMPTY) return -1;
      if (f === family && this.same(i, family, w0, w1, w2, w3)) return i;
      i = (i + 1) & this.mask;
    }
  }

  private find(family: number, w0: number, w1: number, w2: number, w3: number): number {
    const i = this.slotOf(family, w0, w1, w2, w3);
    return i < 0 ? -1 : this.vals[i]!;
  }

  private grow(): void {
    const oldFam = this.fam;
    const oldKeys = this.keys;
    const oldVals = this.vals;
    const cap = (this.mask + 1) * 2;
    this.mask = cap - 1;
    this.fam = new Uint8Array(cap);
    this.keys = new Uint32Array(cap * 4);
    this.vals = new Int32Array(cap);
    this.count = 0;
    const tmp = new Uint8Array(16);
    for (let i = 0; i < oldFam.length; i++) {
      const f = oldFam[i]!;
      if (f === EMPTY) continue;
      for (let w = 0; w < 4; w++) {
        const v = oldKeys[i * 4 + w]!;
        tmp[w * 4] = v >>> 24;
        tmp[w * 4 + 1] = (v >>> 16) & 0xff;
        tmp[w * 4 + 2] = (v >>> 8) & 0xff;
        tmp[w * 4 + 3] = v & 0xff;
      }
      this.set(f as 4 | 6, tmp, 0, oldVals[i]!);
    }
  }
}
