/**
 * Indexed binary min-heap of slot numbers keyed by a time: what expires next, in O(log n) for
 * set/remove and O(1) for peek, in three typed arrays sized once (no allocation afterwards).
 */
export class ExpiryHeap {
  /** heap[k] = slot at heap position k. */
  private readonly heap: Int32Array;
  /** pos[slot] = its heap position, -1 when absent. */
  private readonly pos: Int32Array;
  private readonly key: Float64Array;
  private n = 0;

  constructor(capacity: number) {
    this.heap = new Int32Array(capacity);
    this.pos = new Int32Array(capacity).fill(-1);
    this.key = new Float64Array(capacity);
  }

  get size(): number {
    return this.n;
  }

  get byteSize(): number {
    return this.heap.byteLength + this.pos.byteLength + this.key.byteLength;
  }

  has(slot: number): boolean {
    return this.pos[slot]! >= 0;
  }

  /** Insert `slot` with time `t`, or move it to `t`. */
  set(slot: number, t: number): void {
    const p = this.pos[slot]!;
    this.key[slot] = t;
    if (p < 0) {
      const k = this.n++;
      this.heap[k] = slot;
      this.pos[slot] = k;
      this.up(k);
    } else {
      this.up(p);
      this.down(this.pos[slot]!);
    }
  }

  remove(slot: number): void {
    const p = this.pos[slot]!;
    if (p < 0) return;
    this.pos[slot] = -1;
    const last = --this.n;
    if (p === last) return;
    const moved = this.heap[last]!;
    this.heap[p] = moved;
    this.pos[moved] = p;
    this.up(p);
    this.down(this.pos[moved]!);
  }

  /** Slot with the smallest time, or -1. */
  peek(): number {
    return this.n > 0 ? this.heap[0]! : -1;
  }

  /** The smallest time, or Infinity. */
  peekTime(): number {
    return this.n > 0 ? this.key[this.heap[0]!]! : Infinity;
  }

  private up(k: number): void {
    const h = this.heap;
    const slot = h[k]!;
    const t = this.key[slot]!;
    while (k > 0) {
      const parent = (k - 1) >> 1;
      const ps = h[parent]!;
      if (this.key[ps]! <= t) break;
      h[k] = ps;
      this.pos[ps] = k;
      k = parent;
    }
    h[k] = slot;
    this.pos[slot] = k;
  }

  private down(k: number): void {
    const h = this.heap;
    const slot = h[k]!;
    const t = this.key[slot]!;
    for (;;) {
      let c = 2 * k + 1;
      if (c >= this.n) break;
      if (c + 1 < this.n && this.key[h[c + 1]!]! < this.key[h[c]!]!) c++;
      const cs = h[c]!;
      if (this.key[cs]! >= t) break;
      h[k] = cs;
      this.pos[cs] = k;
      k = c;
    }
    h[k] = slot;
    this.pos[slot] = k;
  }
}
