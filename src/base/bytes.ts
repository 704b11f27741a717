/**
 * Byte copy between packet buffers without creating an object per call.
 *
 * `dst.set(src.subarray(a, b))` and Node 20's `Buffer.prototype.copy` (for a source range not
 * starting at 0) both create a typed-array view per call: garbage per packet. Here, views over
 * each whole underlying ArrayBuffer / SharedArrayBuffer (pool slabs, long-lived) are made once and
 * cached in WeakMaps, then:
 * - same underlying buffer (e.g. fragmenting a packet in the small pool into small-pool slots):
 *   one `copyWithin` on the cached whole-buffer Uint8Array (memmove speed, overlap-safe);
 * - same alignment mod 4: 32-bit word loop over cached Int32Arrays (word copies are
 *   endian-agnostic), bytes before and after;
 * - otherwise: 32-bit loads/stores through cached DataViews (unaligned-safe).
 * Short copies use a plain byte loop.
 */

const u8Views = new WeakMap<ArrayBufferLike, Uint8Array>();
const i32Views = new WeakMap<ArrayBufferLike, Int32Array>();
const dataViews = new WeakMap<ArrayBufferLike, DataView>();

function u8Of(b: ArrayBufferLike): Uint8Array {
  let v = u8Views.get(b);
  if (v === undefined) {
    v = new Uint8Array(b);
    u8Views.set(b, v);
  }
  return v;
}

function i32Of(b: ArrayBufferLike): Int32Array {
  let v = i32Views.get(b);
  if (v === undefined) {
    v = new Int32Array(b, 0, b.byteLength >>> 2);
    i32Views.set(b, v);
  }
  return v;
}

function dvOf(b: ArrayBufferLike): DataView {
  let v = dataViews.get(b);
  if (v === undefined) {
    v = new DataView(b);
    dataViews.set(b, v);
  }
  return v;
}

const SHORT = 48;

/** Copy src[srcOff, srcOff+len) to dst[dstOff...]. Ranges must be in bounds (callers check). */
export function copyBytes(src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number, len: number): void {
  if (len <= 0) return;
  if (len < SHORT) {
    for (let i = 0; i < len; i++) dst[dstOff + i] = src[srcOff + i]!;
    return;
  }
  const sb = src.buffer;
  const db = dst.buffer;
  let s = src.byteOffset + srcOff;
  let d = dst.byteOffset + dstOff;
  if (sb === db) {
    u8Of(sb).copyWithin(d, s, s + len);
    return;
  }
  let n = len;
  if ((s & 3) === (d & 3)) {
    const su = u8Of(sb);
    const du = u8Of(db);
    while ((s & 3) !== 0) {
      du[d++] = su[s++]!;
      n--;
    }
    const sw = i32Of(sb);
    const dw = i32Of(db);
    let si = s >>> 2;
    let di = d >>> 2;
    const words = n >>> 2;
    const end8 = si + (words & ~7);
    while (si < end8) {
      dw[di] = sw[si]!;
      dw[di + 1] = sw[si + 1]!;
      dw[di + 2] = sw[si + 2]!;
      dw[di + 3] = sw[si + 3]!;
      dw[di + 4] = sw[si + 4]!;
      dw[di + 5] = sw[si + 5]!;
      dw[di + 6] = sw[si + 6]!;
      dw[di + 7] = sw[si + 7]!;
      si += 8;
      di += 8;
    }
    const endW = (s >>> 2) + words;
    while (si < endW) dw[di++] = sw[si++]!;
    const done = words << 2;
    s += done;
    d += done;
    n -= done;
    for (let i = 0; i < n; i++) du[d + i] = su[s + i]!;
    return;
  }
  const sv = dvOf(sb);
  const dv = dvOf(db);
  const end16 = n - 15;
  let i = 0;
  for (; i < end16; i += 16) {
    dv.setInt32(d + i, sv.getInt32(s + i));
    dv.setInt32(d + i + 4, sv.getInt32(s + i + 4));
    dv.setInt32(d + i + 8, sv.getInt32(s + i + 8));
    dv.setInt32(d + i + 12, sv.getInt32(s + i + 12));
  }
  const su = u8Of(sb);
  const du = u8Of(db);
  for (; i < n; i++) du[d + i] = su[s + i]!;
}
