/**
 * Bounds-checked packet bytes for fuzz runs (issue 12, point 4).
 *
 * JavaScript hides out-of-bounds reads: `u8[i]` past the end is `undefined` (and `undefined << 8`
 * is 0), and inside a pool slot or a fuzz scratch buffer the bytes past a packet are stale data
 * that read as if they were the packet's. So a deleted length check goes unnoticed by a fuzzer.
 * Here the fuzzers hand the code under test a Proxy over the real bytes that throws
 * OutOfPacketError on any indexed read outside the packet — and on any write outside what the
 * code may write — so such a read is an exception the fuzzer reports.
 *
 * Zero cost when off: nothing in src/ changes or checks a flag; production never sees a Proxy.
 * What is checked: every indexed read/write (`b[i]`, which is all the wire views and the raw
 * readers above wire/ do), Buffer's JavaScript readers/writers (readUInt16BE... index through
 * the Proxy), and the ranges given to subarray/slice/fill/set/copyWithin/copy. Not checked: what
 * code then does through a plain subarray it was allowed to take (natives such as createHmac need
 * a real typed array), and bulk copies that go through the underlying ArrayBuffer
 * (src/base/bytes.ts copyBytes) — their ranges come from header fields the checked reads vetted.
 *
 * Two kinds:
 * - checkedWindow(bytes, lo, hi): reads and writes inside [lo, hi) (a packet in a scratch buffer).
 * - checkPools(pools): every pool slot's PacketBuffer.buf becomes a Proxy that reads only inside
 *   its packet as it is now ([offset, offset + length): the window follows the pipeline trimming,
 *   consuming and rewriting) and writes only inside its slot. A slot being built (acquired, its
 *   length not set yet: a fragment, an ICMP error, a reassembled datagram) may be read anywhere
 *   in the slot, since builders read back what they write; from the first `length = n` on, the
 *   packet is the window — and it cannot grow past the bytes that were there: a later, larger
 *   `length` (say, set from a header field a deleted check let through) opens no stale bytes,
 *   only bytes written since through the Proxy. The slabs (BufferPool.bytes, what
 *   Router.lookupBatch reads) read only inside the packet of a live slot.
 */
import type { BufferPool, PacketBuffer, PacketPools } from '../../src/base/pool.ts';

export class OutOfPacketError extends RangeError {
  override name = 'OutOfPacketError';
}

type Bounds = {
  /** Readable [lo, hi) for index i, or null when i may not be read. */
  read(i: number): boolean;
  write(i: number): boolean;
  describe(i: number, what: 'read' | 'write'): string;
};

const targets = new WeakMap<object, Uint8Array>();

/** The real bytes behind a checked Proxy (or the argument itself). */
export function unwrap<T extends Uint8Array>(b: T): T {
  return (targets.get(b) as T | undefined) ?? b;
}

function isIndex(prop: string | symbol): prop is string {
  if (typeof prop !== 'string' || prop.length === 0) return false;
  const c = prop.charCodeAt(0);
  return c >= 48 && c <= 57 && String(Number(prop)) === prop;
}

function fail(bounds: Bounds, i: number, what: 'read' | 'write'): never {
  throw new OutOfPacketError(bounds.describe(i, what));
}

function checkRange(bounds: Bounds, a: number, b: number, what: 'read' | 'write'): void {
  if (b <= a) return;
  // the range is inside the window when both of its ends are
  if (what === 'read' ? !bounds.read(a) || !bounds.read(b - 1) : !bounds.write(a) || !bounds.write(b - 1)) fail(bounds, bounds.read(a) ? b - 1 : a, what);
}

function norm(v: number | undefined, len: number, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Math.trunc(Number(v)) || 0;
  return n < 0 ? Math.max(len + n, 0) : Math.min(n, len);
}

function makeProxy<T extends Uint8Array>(target: T, bounds: Bounds): T {
  const methods: Record<string, (...a: never[]) => unknown> = {
    // Views are not reads: allowed over what the code may write (it builds headers through them).
    subarray: (a?: number, b?: number) => {
      const s = norm(a, target.length, 0);
      const e = norm(b, target.length, target.length);
      checkRange(bounds, s, e, 'write');
      return target.subarray(s, e);
    },
    slice: (a?: number, b?: number) => {
      const s = norm(a, target.length, 0);
      const e = norm(b, target.length, target.length);
      checkRange(bounds, s, e, 'read');
      return target.slice(s, e);
    },
    fill: (v: number, a?: number, b?: number) => {
      const s = norm(a, target.length, 0);
      const e = norm(b, target.length, target.length);
      checkRange(bounds, s, e, 'write');
      target.fill(v, s, e);
      return proxy;
    },
    set: (src: ArrayLike<number>, at = 0) => {
      checkRange(bounds, at, at + src.length, 'write');
      target.set(unwrap(src as Uint8Array), at);
    },
    copyWithin: (to: number, a: number, b?: number) => {
      const s = norm(a, target.length, 0);
      const e = norm(b, target.length, target.length);
      checkRange(bounds, s, e, 'read');
      const t = norm(to, target.length, 0);
      checkRange(bounds, t, t + Math.min(e - s, target.length - t), 'write');
      target.copyWithin(t, s, e);
      return proxy;
    },
    copy: (dst: Uint8Array, dstStart = 0, a = 0, b?: number) => {
      const s = norm(a, target.length, 0);
      const e = norm(b, target.length, target.length);
      checkRange(bounds, s, e, 'read');
      return (target as unknown as Buffer).copy(unwrap(dst), dstStart, s, e);
    },
  };
  const proxy = new Proxy(target, {
    get(t, prop) {
      if (isIndex(prop)) {
        const i = Number(prop);
        if (!bounds.read(i)) fail(bounds, i, 'read');
        return t[i];
      }
      const m = typeof prop === "string" ? methods[prop] : undefined;
      if (m !== undefined) return m;
      const v = Reflect.get(t, prop, t);
      // Buffer's JavaScript methods (readUInt16BE...) index `this`: call them on the Proxy.
      // Natives (toString, equals...) need the real typed array.
      if (typeof v === 'function') return isJsBufferMethod(prop) ? v : v.bind(t);
      return v;
    },
    set(t, prop, value) {
      if (isIndex(prop)) {
        const i = Number(prop);
        if (!bounds.write(i)) fail(bounds, i, 'write');
        t[i] = value;
        return true;
      }
      return Reflect.set(t, prop, value, t);
    },
  });
  targets.set(proxy, target);
  return proxy;
}

/** Buffer.prototype methods implemented in JavaScript over `this[i]` (Node 20 lib/internal/buffer.js). */
function isJsBufferMethod(prop: string | symbol): boolean {
  return typeof prop === 'string' && /^(read|write)(U?Int(8|16|32)|BigU?Int64|Float|Double)(BE|LE)?$/.test(prop);
}

/** `bytes` readable and writable only inside [lo, hi). */
export function checkedWindow<T extends Uint8Array>(bytes: T, lo: number, hi: number): T {
  const target = unwrap(bytes);
  return makeProxy(target, {
    read: (i) => i >= lo && i < hi,
    write: (i) => i >= lo && i < hi,
    describe: (i, what) => `${what} of byte ${i} outside the packet [${lo}, ${hi})`,
  });
}

/** Make every slot of `pools` bounds-checked (see the header). Returns a function that undoes it. */
export function checkPools(pools: PacketPools): () => void {
  const undo: (() => void)[] = [];
  for (const pool of [pools.small, pools.large]) undo.push(checkPool(pool));
  return () => {
    for (const u of undo) u();
  };
}

function checkPool(pool: BufferPool): () => void {
  const handles: PacketBuffer[] = [];
  const origBufs: Buffer[] = [];
  const lengths = new Int32Array(pool.slots);
  /** 1 once the slot's length was set after it was acquired (see the header). */
  const built = new Uint8Array(pool.slots).fill(1);
  /** End of the bytes that are really there: the packet end when built, or later writes. */
  const limit = new Int32Array(pool.slots).fill(pool.slotSize);
  for (let slot = 0; slot < pool.slots; slot++) {
    const h = pool.handle(slot);
    handles.push(h);
    origBufs.push(h.buf);
    lengths[slot] = h.length;
    Object.defineProperty(h, 'length', {
      get: () => lengths[slot]!,
      set: (v: number) => {
        lengths[slot] = v;
        if (built[slot] === 0) {
          built[slot] = 1;
          limit[slot] = h.offset + v;
        }
      },
      configurable: true,
      enumerable: true,
    });
    const proxy = makeProxy(h.buf, {
      read: (i) => (built[slot] === 1 ? i >= h.offset && i < h.offset + lengths[slot]! && i < limit[slot]! : i >= 0 && i < pool.slotSize),
      write: (i) => {
        if (i < 0 || i >= pool.slotSize) return false;
        if (i >= limit[slot]!) limit[slot] = i + 1;
        return true;
      },
      describe: (i, what) =>
        `${what} of byte ${i} of slot ${slot} outside the ${what === 'read' ? `packet [${h.offset}, ${h.offset + h.length})` : `slot [0, ${pool.slotSize})`}`,
    });
    Object.defineProperty(h, 'buf', { value: proxy, writable: true, configurable: true, enumerable: true });
  }
  const acquire = pool.acquire;
  Object.defineProperty(pool, 'acquire', {
    value: function (this: BufferPool) {
      const p = acquire.call(this);
      if (p !== null) built[p.slot] = 0;
      return p;
    },
    writable: true,
    configurable: true,
  });
  const slab = pool.bytes;
  const size = pool.slotSize;
  const slabProxy = makeProxy(slab, {
    read: (i) => {
      const slot = Math.floor(i / size);
      if (slot < 0 || slot >= pool.slots || !pool.isLive(slot)) return false;
      const h = handles[slot]!;
      const at = i - slot * size;
      return built[slot] === 0 || (at >= h.offset && at < h.offset + lengths[slot]! && at < limit[slot]!);
    },
    write: (i) => i >= 0 && i < slab.length && pool.isLive(Math.floor(i / size)),
    describe: (i, what) => `${what} of slab byte ${i} (slot ${Math.floor(i / size)}, byte ${i % size}) outside a live packet`,
  });
  Object.defineProperty(pool, 'bytes', { value: slabProxy, writable: true, configurable: true, enumerable: true });
  return () => {
    for (let k = 0; k < handles.length; k++) {
      Object.defineProperty(handles[k]!, 'buf', { value: origBufs[k], writable: false, configurable: true, enumerable: true });
      Object.defineProperty(handles[k]!, 'length', { value: lengths[k], writable: true, configurable: true, enumerable: true });
    }
    Object.defineProperty(pool, 'bytes', { value: slab, writable: false, configurable: true, enumerable: true });
    delete (pool as unknown as { acquire?: unknown }).acquire;
  };
}
