/**
 * The core of a Poptrie (poptrie.ts): its compressed layout in typed arrays and the update walks
 * that rewrite it (insert, remove with the cover, node encode/decode, block allocation). The
 * lookups and the fast paths in front of them (/32 buckets, /48 hash) are in poptrie.ts, which
 * extends this class; they read the same arrays directly (`top`, `nodes`, `leaves`).
 *
 * Layout
 * - A direct-pointing top level of 2^T Int32 entries (T = `topBits`, e.g. 16 or 18) indexed by the
 *   first T bits of the key. An entry is a leaf (sign bit clear) or PTR | record index.
 * - Below it, 6-bit strides: a node covers 64 entries but stores only
 *     vec      64-bit bitmap: which entries are child nodes,
 *     leafvec  64-bit bitmap: where a new run of equal leaves starts (leaf entries only, in order;
 *              children in between do not break a run),
 *   the children of a node contiguous in `nodes` (one block, in entry order) and its distinct leaf
 *   runs contiguous in `leaves`. The child for entry i is base1 + popcount(vec below i); the leaf
 *   is base0 + popcount(leafvec up to i) - 1. 64-bit maps are two Int32 halves (A = entries
 *   0..31, B = 32..63); the base of the B half is stored pre-added so a lookup needs one popcount
 *   (the classic SWAR bit trick, no BigInt).
 * - A node record is 8 Int32 (32 bytes): [vecA, vecB, leafA, leafB, base1A, base1B, base0A,
 *   base0B] with base1B = base1A + popcount(vecA) and base0B = base0A + popcount(leafA).
 * - Key bits past the end of the address (the last stride may overhang: 18 + 6*19 = 132 for IPv6)
 *   read as anything: a prefix always expands over all of them.
 * - A leaf is (prefix length << 23) | (value + 1), 0 = no prefix: the length is what lets an
 *   update overwrite exactly the entries a prefix owns (a longer prefix survives a shorter one
 *   arriving later) without a second, uncompressed copy of the trie.
 *
 * Updates work on the compressed nodes directly: the affected node is decoded into a 64-entry
 * scratch row, changed, and encoded back (its leaf block is rewritten in place when the run count
 * is unchanged, else moved; its children block is reallocated only when a child is created or
 * folded, which copies the 32-byte child records, not their subtrees). Blocks come from exact-size
 * free lists (1..64). Removal folds nodes that became uniform (no children, one leaf run).
 */

export const PTR = 0x80000000 | 0;
/** shrinkEntries results. */
const SHRUNK = 1;
const SHRUNK_FOLDED = 2;
export const VALUE_MASK = 0x7fffff;
export const LEN_SHIFT = 23;

/** Population count of a 32-bit integer. */
export function pop(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

export class PoptrieCore {
  readonly bits: 32 | 128;
  readonly topBits: number;
  /** Number of prefixes inserted (maintained by the caller's add/remove pairing). */
  prefixes = 0;
  protected readonly top: Int32Array;
  protected nodes: Int32Array;
  protected leaves: Int32Array;
  private nodeHigh = 0;
  private leafHigh = 0;
  private readonly nodeFree: number[][] = [];
  private readonly leafFree: number[][] = [];
  /** Nodes in use. */
  protected live = 0;
  /** Scratch rows, one per depth, for decoding nodes during updates. */
  private readonly rows: Int32Array[] = [];
  private readonly runs = new Int32Array(64);
  /** Set by removeTrie for a prefix longer than /64: whether longer ones remain under its /64. */
  protected deeperLeft = false;
  /** A standalone record created for a new child, copied into its parent's block by encode(). */
  private temp = -1;

  constructor(bits: 32 | 128, topBits: number) {
    if (topBits < 8 || topBits > 24) throw new Error(`unsupported top level of ${topBits} bits`);
    this.bits = bits;
    this.topBits = topBits;
    this.top = new Int32Array(1 << topBits);
    this.nodes = new Int32Array(8 * 1024);
    this.leaves = new Int32Array(4096);
    for (let n = 0; n <= 64; n++) {
      this.nodeFree.push([]);
      this.leafFree.push([]);
    }
    const levels = Math.ceil((bits - topBits) / 6);
    for (let d = 0; d <= levels + 1; d++) this.rows.push(new Int32Array(64));
  }

  /** Bytes held by the trie's own arrays. */
  protected coreByteSize(): number {
    return this.top.byteLength + this.nodes.byteLength + this.leaves.byteLength;
  }

  /** The 6 key bits at bit position s (bits past the key read as 0). */
  protected index(key: Uint32Array, s: number): number {
    const w = s >>> 5;
    const o = s & 31;
    if (o <= 26) return (key[w]! >>> (26 - o)) & 63;
    const lo = (w + 1) * 32 < this.bits ? key[w + 1]! >>> (58 - o) : 0;
    return ((key[w]! << (o - 26)) | lo) & 63;
  }

  /** Record index of the child at entry i of the node at `rec`, or -1 when the entry is a leaf. */
  protected childAt(rec: number, i: number): number {
    const r = rec << 3;
    const h = i >>> 5;
    const bit = 1 << i;
    const v = this.nodes[r + h]!;
    return (v & bit) === 0 ? -1 : this.nodes[r + 4 + h]! + pop(v & (bit - 1));
  }

  /** The leaf at entry i of the node at `rec` (which must be a leaf entry). */
  protected leafOf(rec: number, i: number): number {
    const n = this.nodes;
    const r = rec << 3;
    const h = i >>> 5;
    return this.leaves[n[r + 6 + h]! + pop(n[r + 2 + h]! & (((1 << i) << 1) - 1)) - 1]!;
  }

  protected insertTrie(key: Uint32Array, len: number, value: number): void {
    const leaf = (len << LEN_SHIFT) | (value + 1);
    const T = this.topBits;
    const ti = key[0]! >>> (32 - T);
    const top = this.top;
    if (len <= T) {
      const span = 1 << (T - len);
      const first = ti & ~(span - 1);
      for (let j = first; j < first + span; j++) {
        const e = top[j]!;
        if (e < 0) this.overwrite(e & ~PTR, 1, len, leaf);
        else if (e >>> LEN_SHIFT <= len) top[j] = leaf;
      }
      return;
    }
    let e = top[ti]!;
    if (e >= 0) {
      const rec = this.standalone(e);
      this.temp = -1; // a top-level node keeps its own one-record block
      top[ti] = e = PTR | rec;
    }
    this.insertAt(e & ~PTR, 1, T, key, len, leaf);
  }

  private insertAt(rec: number, d: number, s: number, key: Uint32Array, len: number, leaf: number): void {
    // Leaf of a node created by this insert (all 64 entries equal: no need to decode it), or -1.
    let fresh = -1;
    for (;;) {
      const E = this.rows[d]!;
      const i = this.index(key, s);
      const end = s + 6;
      if (len > end && fresh >= 0) {
        // A node this insert just created (all 64 entries `fresh`, one-run leaf block) gets its
        // only child at i: written straight into the record, the child keeping its own
        // one-record block as the children block (no decode/encode of 64 entries per level of
        // a host route's fresh chain, no copy).
        const child = this.standalone(fresh);
        this.temp = -1;
        const n = this.nodes;
        const r = rec << 3;
        const vecA = i < 32 ? 1 << i : 0;
        n[r] = vecA;
        n[r + 1] = i < 32 ? 0 : 1 << i;
        n[r + 2] = i === 0 ? 2 : 1; // the one leaf run starts at the first leaf entry
        n[r + 3] = 0;
        n[r + 4] = child;
        n[r + 5] = child + pop(vecA);
        n[r + 7] = n[r + 6]! + 1;
        rec = child;
        d++;
        s = end;
        continue;
      }
      if (len > end && fresh < 0) {
        const c = this.childAt(rec, i);
        if (c >= 0) {
          rec = c;
          d++;
          s = end;
          continue;
        }
      }
      if (fresh >= 0) E.fill(fresh);
      else this.decode(rec, E);
      if (len <= end) {
        const span = 1 << (end - len);
        const first = i & ~(span - 1);
        let changed = false;
        for (let j = first; j < first + span; j++) {
          const e = E[j]!;
          if (e < 0) this.overwrite(e & ~PTR, d + 1, len, leaf);
          else if (e >>> LEN_SHIFT <= len && e !== leaf) {
            E[j] = leaf;
            changed = true;
          }
        }
        if (changed) this.encode(rec, E, false);
        return;
      }
      // E[i] is a leaf: push it down into a new child.
      fresh = E[i]!;
      E[i] = PTR | this.standalone(fresh);
      this.encode(rec, E, true);
      rec = E[i]! & ~PTR;
      d++;
      s = end;
    }
  }

  /** Give every entry of the subtree at `rec` owned by a prefix no longer than `len` the leaf. */
  private overwrite(rec: number, d: number, len: number, leaf: number): void {
    const E = this.rows[d]!;
    this.decode(rec, E);
    let changed = false;
    for (let j = 0; j < 64; j++) {
      const e = E[j]!;
      if (e < 0) this.overwrite(e & ~PTR, d + 1, len, leaf);
      else if (e >>> LEN_SHIFT <= len && e !== leaf) {
        E[j] = leaf;
        changed = true;
      }
    }
    if (changed) this.encode(rec, E, false);
  }

  protected removeTrie(key: Uint32Array, len: number, coverLen: number, coverValue: number): void {
    const cover = coverValue < 0 ? 0 : (coverLen << LEN_SHIFT) | (coverValue + 1);
    this.deeperLeft = false;
    const T = this.topBits;
    const ti = key[0]! >>> (32 - T);
    const top = this.top;
    if (len <= T) {
      const span = 1 << (T - len);
      const first = ti & ~(span - 1);
      for (let j = first; j < first + span; j++) {
        const e = top[j]!;
        if (e < 0) {
          const rec = e & ~PTR;
          this.shrink(rec, 1, len, cover);
          if (this.uniform(rec)) top[j] = this.foldTop(rec);
        } else if (e >>> LEN_SHIFT === len) top[j] = cover;
      }
      return;
    }
    const e = top[ti]!;
    if (e >= 0) return;
    const rec = e & ~PTR;
    if (this.removeAt(rec, 1, T, key, len, cover)) top[ti] = this.foldTop(rec);
  }

  /** Returns true when the node at `rec` is now uniform. */
  private removeAt(rec: number, d: number, s: number, key: Uint32Array, len: number, cover: number): boolean {
    const E = this.rows[d]!;
    const i = this.index(key, s);
    const end = s + 6;
    if (len <= end) {
      this.decode(rec, E);
      const span = 1 << (end - len);
      const first = i & ~(span - 1);
      const r = this.shrinkEntries(E, first, first + span, d, len, cover);
      if (r !== 0) this.encode(rec, E, r === SHRUNK_FOLDED);
    } else {
      const c = this.childAt(rec, i);
      if (c >= 0 && this.removeAt(c, d + 1, end, key, len, cover)) {
        const n = this.nodes;
        const r = rec << 3;
        if (
          pop(n[r]!) + pop(n[r + 1]!) === 1 &&
          pop(n[r + 2]!) + pop(n[r + 3]!) === 1 &&
          this.leaves[n[r + 6]!] === this.leaves[n[(c << 3) + 6]!]
        ) {
          // Its only child folded into the node's only leaf run: the node is uniform now (the
          // usual case when a host route's chain folds), written straight into the record.
          this.release(c);
          this.nodeFree[1]!.push(c);
          n[r] = 0;
          n[r + 1] = 0;
          n[r + 2] = 1;
          n[r + 3] = 0;
          n[r + 4] = 0;
          n[r + 5] = 0;
          n[r + 7] = n[r + 6]! + 1;
        } else {
          this.decode(rec, E);
          E[i] = this.release(c);
          this.encode(rec, E, true);
        }
      }
    }
    if (len > 64 && s < 64 && end >= 64) this.deeperLeft = this.deeperAt(rec, key, s);
    return this.uniform(rec);
  }

  /**
   * For the node at `rec` covering bits s..s+5 with s < 64 <= s + 6 on key's path: true when it
   * holds a prefix longer than /64 under key's /64 (among the entries of that /64: a child, or a
   * leaf of a longer prefix).
   */
  private deeperAt(rec: number, key: Uint32Array, s: number): boolean {
    const span = 1 << (s + 6 - 64);
    const first = this.index(key, s) & ~(span - 1);
    const n = this.nodes;
    const r = rec << 3;
    for (let i = first; i < first + span; i++) {
      const h = i >>> 5;
      const bit = 1 << i;
      if ((n[r + h]! & bit) !== 0) return true;
      const leaf = this.leaves[n[r + 6 + h]! + pop(n[r + 2 + h]! & ((bit << 1) - 1)) - 1]!;
      if (leaf >>> LEN_SHIFT > 64) return true;
    }
    return false;
  }

  /** Entries of the subtree at `rec` owned by a prefix of exactly `len` get `cover`. */
  private shrink(rec: number, d: number, len: number, cover: number): void {
    const E = this.rows[d]!;
    this.decode(rec, E);
    const r = this.shrinkEntries(E, 0, 64, d, len, cover);
    if (r !== 0) this.encode(rec, E, r === SHRUNK_FOLDED);
  }

  /**
   * Decoded entries E[from..to) of a node at depth d: those owned by a prefix of exactly `len`
   * get `cover`, children are shrunk the same way and folded when uniform. Returns 0 (nothing
   * changed), SHRUNK (leaves changed) or SHRUNK_FOLDED (a child folded too).
   */
  private shrinkEntries(E: Int32Array, from: number, to: number, d: number, len: number, cover: number): number {
    let r = 0;
    for (let j = from; j < to; j++) {
      const e = E[j]!;
      if (e < 0) {
        const c = e & ~PTR;
        this.shrink(c, d + 1, len, cover);
        if (this.uniform(c)) {
          E[j] = this.release(c);
          r = SHRUNK_FOLDED;
        }
      } else if (e >>> LEN_SHIFT === len) {
        E[j] = cover;
        if (r === 0) r = SHRUNK;
      }
    }
    return r;
  }

  private uniform(rec: number): boolean {
    const r = rec << 3;
    const n = this.nodes;
    return n[r] === 0 && n[r + 1] === 0 && pop(n[r + 2]!) + pop(n[r + 3]!) === 1;
  }

  /** Free a uniform node's leaf block (its record lives in its parent's block); returns its leaf. */
  private release(rec: number): number {
    const r = rec << 3;
    const leaf = this.leaves[this.nodes[r + 6]!]!;
    this.freeLeaves(this.nodes[r + 6]!, 1);
    this.live--;
    return leaf;
  }

  private foldTop(rec: number): number {
    const leaf = this.release(rec);
    this.nodeFree[1]!.push(rec);
    return leaf;
  }

  /** A new node (own one-record block) whose 64 entries are all `leaf`. */
  private standalone(leaf: number): number {
    const rec = this.allocNodes(1);
    const lb = this.allocLeaves(1);
    this.leaves[lb] = leaf;
    const r = rec << 3;
    const n = this.nodes;
    n[r] = 0;
    n[r + 1] = 0;
    n[r + 2] = 1;
    n[r + 3] = 0;
    n[r + 4] = 0;
    n[r + 5] = 0;
    n[r + 6] = lb;
    n[r + 7] = lb + 1;
    this.live++;
    this.temp = rec;
    return rec;
  }

  /** Expand the node at `rec` into E: PTR | child record, or the leaf. */
  private decode(rec: number, E: Int32Array): void {
    const n = this.nodes;
    const leaves = this.leaves;
    const r = rec << 3;
    // Leaf runs first (a run starts at each leafvec bit and lasts to the next one; children
    // inside a run are written over it next), then the children (few) in bit order.
    let li = n[r + 6]!;
    // Before the first run start there are only children: any value will do.
    let cur = n[r + 2]! === 0 && n[r + 3]! === 0 ? 0 : leaves[li]!;
    let start = 0;
    for (let h = 0; h < 2; h++) {
      let lv = n[r + 2 + h]!;
      while (lv !== 0) {
        const low = lv & -lv;
        const at = (h << 5) | (31 - Math.clz32(low));
        if (at > start) E.fill(cur, start, at);
        cur = leaves[li++]!;
        start = at;
        lv ^= low;
      }
    }
    E.fill(cur, start, 64);
    let child = n[r + 4]!;
    for (let h = 0; h < 2; h++) {
      let v = n[r + h]!;
      while (v !== 0) {
        const low = v & -v;
        E[(h << 5) | (31 - Math.clz32(low))] = PTR | child++;
        v ^= low;
      }
    }
  }

  /**
   * Write E back as the node at `rec`. With `childrenChanged`, the children block is rebuilt from
   * the records E points at (E is updated to the new positions).
   */
  private encode(rec: number, E: Int32Array, childrenChanged: boolean): void {
    const runs = this.runs;
    let vecA = 0;
    let vecB = 0;
    let leafA = 0;
    let leafB = 0;
    let nc = 0;
    let nl = 0;
    let prev = -1;
    for (let i = 0; i < 64; i++) {
      const e = E[i]!;
      if (e < 0) {
        if (i < 32) vecA |= 1 << i;
        else vecB |= 1 << i;
        nc++;
      } else if (e !== prev) {
        if (i < 32) leafA |= 1 << i;
        else leafB |= 1 << i;
        runs[nl++] = e;
        prev = e;
      }
    }
    let r = rec << 3;
    let n = this.nodes;
    let lb = n[r + 6]!;
    const oldNl = pop(n[r + 2]!) + pop(n[r + 3]!);
    if (nl !== oldNl) {
      const nb = this.allocLeaves(nl);
      this.freeLeaves(lb, oldNl);
      lb = nb;
    }
    const leaves = this.leaves;
    for (let k = 0; k < nl; k++) leaves[lb + k] = runs[k]!;
    n = this.nodes;
    let cb = n[r + 4]!;
    if (childrenChanged) {
      const oldNc = pop(n[r]!) + pop(n[r + 1]!);
      const oldCb = cb;
      cb = nc > 0 ? this.allocNodes(nc) : 0;
      n = this.nodes;
      let k = cb;
      for (let i = 0; i < 64; i++) {
        const e = E[i]!;
        if (e >= 0) continue;
        const src = e & ~PTR;
        n.copyWithin(k << 3, src << 3, (src << 3) + 8);
        E[i] = PTR | k;
        if (src === this.temp) {
          this.nodeFree[1]!.push(src);
          this.temp = -1;
        }
        k++;
      }
      if (oldNc > 0) this.nodeFree[oldNc]!.push(oldCb);
    }
    r = rec << 3;
    n[r] = vecA;
    n[r + 1] = vecB;
    n[r + 2] = leafA;
    n[r + 3] = leafB;
    n[r + 4] = cb;
    n[r + 5] = cb + pop(vecA);
    n[r + 6] = lb;
    n[r + 7] = lb + pop(leafA);
  }

  private allocNodes(count: number): number {
    const f = this.nodeFree[count]!;
    if (f.length > 0) return f.pop()!;
    const at = this.nodeHigh;
    this.nodeHigh += count;
    if (this.nodeHigh * 8 > this.nodes.length) {
      const bigger = new Int32Array(Math.max(this.nodes.length * 2, this.nodeHigh * 8));
      bigger.set(this.nodes);
      this.nodes = bigger;
    }
    return at;
  }

  private allocLeaves(count: number): number {
    const f = this.leafFree[count]!;
    if (f.length > 0) return f.pop()!;
    const at = this.leafHigh;
    this.leafHigh += count;
    if (this.leafHigh > this.leaves.length) {
      const bigger = new Int32Array(Math.max(this.leaves.length * 2, this.leafHigh));
      bigger.set(this.leaves);
      this.leaves = bigger;
    }
    return at;
  }

  private freeLeaves(at: number, count: number): void {
    if (count > 0) this.leafFree[count]!.push(at);
  }
}
