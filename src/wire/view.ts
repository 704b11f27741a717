/**
 * What every wire view shares: a window (buf, off, len) over packet bytes. `wrap()` re-points it,
 * so one view instance per pipeline stage serves every packet with no allocation. Each view class
 * adds its field offsets, getters/setters, check(), parse/emit and describe().
 */
export const EMPTY_BYTES: Uint8Array = Buffer.alloc(0);

export class WireView {
  buf: Uint8Array;
  /** Where the header starts in buf. */
  off: number;
  /** Bytes available at off (the packet, or the payload the layer below says is ours). */
  len: number;

  constructor(buf: Uint8Array = EMPTY_BYTES, off = 0, len = buf.length - off) {
    this.buf = buf;
    this.off = off;
    this.len = len;
  }

  /** Re-point the view (no allocation). */
  wrap(buf: Uint8Array, off: number, len: number): this {
    this.buf = buf;
    this.off = off;
    this.len = len;
    return this;
  }
}
