/**
 * Packet capture (`ipferry capture`): the ring the data plane copies packets into and the
 * control plane drains into a pcapng stream. One writer (the data plane, on its thread: the
 * main thread or the worker), one reader (the control socket's capture session); the memory is
 * a SharedArrayBuffer, so the same ring works across the worker boundary.
 *
 * Bounded: when the reader is slow (a pipe to a slow disk, a remote shell) the ring fills and
 * further packets are dropped and counted (`drops`), never queued without limit; the session
 * reports the count (pcapng interface statistics, and the CLI's last line).
 *
 * Layout: a control area of 4 Int32 (head, tail, drops, packets) and the data area. A record:
 *
 *   0  u32 record length (header + captured bytes, padded to 8; WRAP: continue at offset 0)
 *   4  u32 original length        8  u32 captured length
 *   12 u8 direction (1 in, 2 out) 13 u8 underlay family (0: none, 4, 6)  14 u16 underlay port
 *   16 16 bytes underlay address (the peer's side: source of what came in, destination of what went out)
 *   32 f64 time, microseconds since the epoch
 *   40 the bytes (the UDP payload for the outer view, the inner IP packet for the inner view)
 *
 * head (written by the writer only, published with Atomics.store after the record's bytes) and
 * tail (reader only) are byte offsets into the data area; head === tail is empty, and the writer
 * keeps one byte free so a full ring never looks empty.
 */
/** An underlay address (dataplane.ts UnderlayAddress has this shape). */
interface RingAddress {
  family: 4 | 6;
  address: Uint8Array;
  port: number;
}

export const CAPTURE_IN = 1;
export const CAPTURE_OUT = 2;

const CTRL_HEAD = 0;
const CTRL_TAIL = 1;
const CTRL_DROPS = 2;
const CTRL_PACKETS = 3;
const CTRL_BYTES = 16;

const REC_LEN = 0;
const REC_ORIG = 4;
const REC_CAPLEN = 8;
const REC_DIR = 12;
const REC_FAMILY = 13;
const REC_PORT = 14;
const REC_ADDR = 16;
const REC_TIME = 32;
export const REC_HEADER = 40;
const WRAP = 0xffffffff;

/** What the data plane should copy: which view, into which ring, at most how many bytes per packet. */
export interface CaptureSpec {
  view: 'inner' | 'outer';
  /** The ring's memory (CaptureRing.buffer). */
  buffer: SharedArrayBuffer;
  /** Bytes kept per packet (the rest is counted in the original length). */
  snaplen: number;
}

/** One record as the reader sees it (valid until the next drain step). */
export interface CaptureRecord {
  direction: number;
  /** 0 when the record carries no underlay address (inner view). */
  family: 0 | 4 | 6;
  port: number;
  /** The ring's bytes: address at addressOffset (4 or 16 bytes), packet at dataOffset. */
  bytes: Uint8Array;
  addressOffset: number;
  dataOffset: number;
  capturedLength: number;
  originalLength: number;
  /** Microseconds since the epoch. */
  timeUs: number;
}

export class CaptureRing {
  readonly buffer: SharedArrayBuffer;
  private readonly ctrl: Int32Array;
  private readonly data: Uint8Array;
  private readonly view: DataView;
  private readonly size: number;

  /** A new ring of `bytes` data bytes, or a view of an existing one's buffer. */
  constructor(bytesOrBuffer: number | SharedArrayBuffer) {
    this.buffer = typeof bytesOrBuffer === 'number' ? new SharedArrayBuffer(CTRL_BYTES + (Math.max(4096, bytesOrBuffer) & ~7)) : bytesOrBuffer;
    this.ctrl = new Int32Array(this.buffer, 0, 4);
    this.data = new Uint8Array(this.buffer, CTRL_BYTES);
    this.view = new DataView(this.buffer, CTRL_BYTES);
    this.size = this.data.length;
  }

  /** Packets the writer could not fit (the reader was too slow). */
  get drops(): number {
    return Atomics.load(this.ctrl, CTRL_DROPS) >>> 0;
  }
  /** Packets written. */
  get packets(): number {
    return Atomics.load(this.ctrl, CTRL_PACKETS) >>> 0;
  }

  // ---------------------------------------------------------------- writer (data plane)

  /**
   * Copy buf[off, off+len) (at most `snaplen` bytes) as one record; `to` is the underlay address
   * (or null) as (family, bytes, port). False when it did not fit (counted as a drop).
   */
  write(direction: number, buf: Uint8Array, off: number, len: number, snaplen: number, family: 0 | 4 | 6, addr: Uint8Array | null, port: number, timeUs: number): boolean {
    const cap = len < snaplen ? len : snaplen;
    const need = (REC_HEADER + cap + 7) & ~7;
    const size = this.size;
    let head = this.ctrl[CTRL_HEAD]!;
    const tail = Atomics.load(this.ctrl, CTRL_TAIL);
    const free = tail > head ? tail - head - 1 : size - head + tail - 1;
    let at = head;
    if (head + need > size) {
      // not enough room before the end: mark the rest as skipped and continue at 0
      if (tail <= need || tail > head || free < size - head + need) return this.dropped();
      if (size - head >= 4) this.view.setUint32(head + REC_LEN, WRAP, true);
      at = 0;
    } else if (free < need) {
      return this.dropped();
    }
    const v = this.view;
    v.setUint32(at + REC_LEN, need, true);
    v.setUint32(at + REC_ORIG, len, true);
    v.setUint32(at + REC_CAPLEN, cap, true);
    this.data[at + REC_DIR] = direction;
    this.data[at + REC_FAMILY] = family;
    v.setUint16(at + REC_PORT, port, true);
    if (addr !== null) this.data.set(addr.subarray(0, family === 4 ? 4 : 16), at + REC_ADDR);
    v.setFloat64(at + REC_TIME, timeUs, true);
    this.data.set(buf.subarray(off, off + cap), at + REC_HEADER);
    head = at + need;
    if (head === size) head = 0;
    Atomics.add(this.ctrl, CTRL_PACKETS, 1);
    Atomics.store(this.ctrl, CTRL_HEAD, head);
    return true;
  }

  /** write() with an UnderlayAddress (control-plane sends: keepalives, control datagrams). */
  writeTo(direction: number, buf: Uint8Array, off: number, len: number, snaplen: number, to: RingAddress | null, timeUs: number): boolean {
    return this.write(direction, buf, off, len, snaplen, to === null ? 0 : to.family, to === null ? null : to.address, to === null ? 0 : to.port, timeUs);
  }

  private dropped(): false {
    Atomics.add(this.ctrl, CTRL_DROPS, 1);
    return false;
  }

  // ---------------------------------------------------------------- reader (control plane)

  /** Hand each record written so far to `visit` (in order), then free them. Returns how many. */
  drain(visit: (r: CaptureRecord) => void, max = Infinity): number {
    const head = Atomics.load(this.ctrl, CTRL_HEAD);
    let tail = this.ctrl[CTRL_TAIL]!;
    const v = this.view;
    const rec: CaptureRecord = {
      direction: 0,
      family: 0,
      port: 0,
      bytes: this.data,
      addressOffset: 0,
      dataOffset: 0,
      capturedLength: 0,
      originalLength: 0,
      timeUs: 0,
    };
    let n = 0;
    while (tail !== head && n < max) {
      if (this.size - tail < 4 || v.getUint32(tail + REC_LEN, true) === WRAP) {
        tail = 0;
        continue;
      }
      const need = v.getUint32(tail + REC_LEN, true);
      rec.direction = this.data[tail + REC_DIR]!;
      rec.family = this.data[tail + REC_FAMILY]! as 0 | 4 | 6;
      rec.port = v.getUint16(tail + REC_PORT, true);
      rec.addressOffset = tail + REC_ADDR;
      rec.dataOffset = tail + REC_HEADER;
      rec.capturedLength = v.getUint32(tail + REC_CAPLEN, true);
      rec.originalLength = v.getUint32(tail + REC_ORIG, true);
      rec.timeUs = v.getFloat64(tail + REC_TIME, true);
      visit(rec);
      n++;
      tail += need;
      if (tail >= this.size) tail = 0;
      Atomics.store(this.ctrl, CTRL_TAIL, tail);
    }
    return n;
  }
}
