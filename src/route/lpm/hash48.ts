/**
 * The /48 hash of a Poptrie (poptrie.ts, IPv6 only, `fast48` without buckets): an
 * open-addressing hash (linear probing, no tombstones, 4 Int32 per slot) with one slot per /48
 * prefix present: [key bits 0-31, key bits 32-47 | H_OCC, value + 1, deeper], where `deeper` says
 * whether prefixes longer than /48 exist below it (kept from the trie). An address inside a /48
 * with nothing longer below is answered by one probe instead of the 6-7 dependent loads of the
 * walk. The Router's tables use the /32 buckets instead (v6-bucket.ts); the note in trie.ts has
 * the figures of both.
 */

/** Marks an occupied slot in the second key word (a /48 key never has bits above 16 there). */
export const H_OCC = 0x10000;
/** Fewest slots (the hash shrinks no further). */
const H_MIN = 1024;

/** Slot hash of a /48 key (bits 0-31, bits 32-47 | H_OCC). */
export function hash48(w0: number, w1: number): number {
  let h = Math.imul(w0 ^ 0x2545f491, 0x9e3779b1) ^ Math.imul(w1, 0x85ebca6b);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  return h ^ (h >>> 13);
}

/** Value of the /48 hash entry for the address at buf[off] when it answers alone, else -1. */
export function probe48(H: Int32Array, buf: Uint8Array, off: number): number {
  const w0 = (buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!;
  const w1 = (buf[off + 4]! << 8) | buf[off + 5]! | H_OCC;
  const mask = (H.length >>> 2) - 1;
  for (let j = hash48(w0, w1) & mask; ; j = (j + 1) & mask) {
    const q = j << 2;
    const w = H[q + 1]!;
    if (w === 0) return -1;
    if (w === w1 && H[q] === w0) return H[q + 3] === 0 ? H[q + 2]! - 1 : -1;
  }
}

export class Hash48 {
  /** The slots (replaced when the hash grows or shrinks): read directly by the lookups. */
  slots = new Int32Array(H_MIN * 4);
  private used = 0;

  /** Index (in Int32s) of the slot holding the /48 key, or -1. */
  find(w0: number, w1: number): number {
    const H = this.slots;
    const mask = (H.length >>> 2) - 1;
    for (let j = hash48(w0, w1) & mask; ; j = (j + 1) & mask) {
      const q = j << 2;
      const w = H[q + 1]!;
      if (w === 0) return -1;
      if (w === w1 && H[q] === w0) return q;
    }
  }

  /** Set the /48 key's value + 1 and deeper flag (adding the key when new). */
  put(w0: number, w1: number, val: number, deeper: number): void {
    let q = this.find(w0, w1);
    if (q < 0) {
      if ((this.used + 1) * 2 > this.slots.length >>> 2) this.resize((this.slots.length >>> 2) * 2);
      const H = this.slots;
      const mask = (H.length >>> 2) - 1;
      let j = hash48(w0, w1) & mask;
      while (H[(j << 2) + 1] !== 0) j = (j + 1) & mask;
      q = j << 2;
      H[q] = w0;
      H[q + 1] = w1;
      this.used++;
    }
    this.slots[q + 2] = val;
    this.slots[q + 3] = deeper;
  }

  private resize(slots: number): void {
    const old = this.slots;
    const H = new Int32Array(slots * 4);
    const mask = slots - 1;
    for (let q = 0; q < old.length; q += 4) {
      if (old[q + 1] === 0) continue;
      let j = hash48(old[q]!, old[q + 1]!) & mask;
      while (H[(j << 2) + 1] !== 0) j = (j + 1) & mask;
      H.set(old.subarray(q, q + 4), j << 2);
    }
    this.slots = H;
  }

  /** Delete slot j (backward shift: linear probing without tombstones). */
  delete(j: number): void {
    const H = this.slots;
    const mask = (H.length >>> 2) - 1;
    let hole = j;
    for (let i = (j + 1) & mask; ; i = (i + 1) & mask) {
      const q = i << 2;
      if (H[q + 1] === 0) break;
      const home = hash48(H[q]!, H[q + 1]!) & mask;
      const inRange = hole <= i ? home > hole && home <= i : home > hole || home <= i;
      if (!inRange) {
        H.copyWithin(hole << 2, q, q + 4);
        hole = i;
      }
    }
    H.fill(0, hole << 2, (hole << 2) + 4);
    this.used--;
    if (this.used * 8 < H.length >>> 2 && H.length >>> 2 > H_MIN) this.resize((H.length >>> 2) >>> 1);
  }
}
