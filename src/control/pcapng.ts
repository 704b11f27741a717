/**
 * pcapng (the format Wireshark, tshark and tcpdump -r read; IETF draft-ietf-opsawg-pcapng),
 * the few blocks a capture stream needs, little-endian: the section header, one interface
 * (LINKTYPE_RAW: each packet is an IPv4 or IPv6 packet), one enhanced packet block per packet
 * with its direction (epb_flags), and at the end the interface statistics (packets received and
 * dropped: the capture ring's count when the reader was too slow).
 *
 * Why pcapng and not classic pcap: the direction of each packet and the drop count have a
 * standard place that Wireshark shows (Statistics > Capture File Properties), and a stream can
 * be framed block by block by its reader (each block says its length).
 */

export const LINKTYPE_RAW = 101;

export const BLOCK_SHB = 0x0a0d0d0a;
export const BLOCK_IDB = 1;
export const BLOCK_ISB = 5;
export const BLOCK_EPB = 6;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;

const OPT_END = 0;
const OPT_COMMENT = 1;
const IF_NAME = 2;
const IF_TSRESOL = 9;
const EPB_FLAGS = 2;
const ISB_STARTTIME = 2;
const ISB_ENDTIME = 3;
const ISB_IFRECV = 4;
const ISB_IFDROP = 5;

/** epb_flags direction bits. */
export const EPB_INBOUND = 1;
export const EPB_OUTBOUND = 2;

const pad4 = (n: number): number => (n + 3) & ~3;

interface Option {
  code: number;
  value: Uint8Array;
}

const text = (s: string): Uint8Array => Buffer.from(s, 'utf8');
const u32 = (v: number): Uint8Array => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0, 0);
  return b;
};
const u64 = (v: number): Uint8Array => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(Math.max(0, Math.floor(v))), 0);
  return b;
};
/** A timestamp option: high 32 bits, then low 32 bits, of microseconds. */
const ts64 = (us: number): Uint8Array => {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(Math.floor(us / 2 ** 32), 0);
  b.writeUInt32LE(us % 2 ** 32 >>> 0, 4);
  return b;
};

function optionsLength(opts: readonly Option[]): number {
  if (opts.length === 0) return 0;
  return opts.reduce((n, o) => n + 4 + pad4(o.value.length), 0) + 4;
}

function writeOptions(b: Buffer, off: number, opts: readonly Option[]): number {
  if (opts.length === 0) return off;
  for (const o of opts) {
    b.writeUInt16LE(o.code, off);
    b.writeUInt16LE(o.value.length, off + 2);
    b.set(o.value, off + 4);
    off += 4 + pad4(o.value.length);
  }
  b.writeUInt16LE(OPT_END, off);
  b.writeUInt16LE(0, off + 2);
  return off + 4;
}

/** A block: type, length, `body` bytes (already padded), options, length again. */
function block(type: number, bodyLength: number, fill: (b: Buffer, off: number) => void, opts: readonly Option[] = []): Buffer {
  const total = 12 + bodyLength + optionsLength(opts);
  const b = Buffer.alloc(total);
  b.writeUInt32LE(type, 0);
  b.writeUInt32LE(total, 4);
  fill(b, 8);
  writeOptions(b, 8 + bodyLength, opts);
  b.writeUInt32LE(total, total - 4);
  return b;
}

/** Section header + one interface description (LINKTYPE_RAW, microsecond timestamps). */
export function pcapngHeader(interfaceName: string, snaplen: number, comment?: string): Buffer {
  const shb = block(
    BLOCK_SHB,
    16,
    (b, o) => {
      b.writeUInt32LE(BYTE_ORDER_MAGIC, o);
      b.writeUInt16LE(1, o + 4);
      b.writeUInt16LE(0, o + 6);
      b.writeInt32LE(-1, o + 8); // section length unknown (a stream)
      b.writeInt32LE(-1, o + 12);
    },
    comment === undefined ? [] : [{ code: OPT_COMMENT, value: text(comment) }],
  );
  const idb = block(
    BLOCK_IDB,
    8,
    (b, o) => {
      b.writeUInt16LE(LINKTYPE_RAW, o);
      b.writeUInt16LE(0, o + 2);
      b.writeUInt32LE(snaplen, o + 4);
    },
    [
      { code: IF_NAME, value: text(interfaceName) },
      { code: IF_TSRESOL, value: Uint8Array.of(6) },
    ],
  );
  return Buffer.concat([shb, idb]);
}

/**
 * One packet: `parts` are its captured bytes in order (e.g. synthesized headers, then the ring's
 * bytes), `originalLength` its length on the wire, `direction` EPB_INBOUND / EPB_OUTBOUND.
 */
export function pcapngPacket(timeUs: number, parts: readonly Uint8Array[], originalLength: number, direction: number): Buffer {
  const caplen = parts.reduce((n, p) => n + p.length, 0);
  return block(
    BLOCK_EPB,
    20 + pad4(caplen),
    (b, o) => {
      b.writeUInt32LE(0, o); // interface 0
      b.writeUInt32LE(Math.floor(timeUs / 2 ** 32), o + 4);
      b.writeUInt32LE(timeUs % 2 ** 32 >>> 0, o + 8);
      b.writeUInt32LE(caplen, o + 12);
      b.writeUInt32LE(originalLength, o + 16);
      let at = o + 20;
      for (const p of parts) {
        b.set(p, at);
        at += p.length;
      }
    },
    [{ code: EPB_FLAGS, value: u32(direction & 3) }],
  );
}

/** Interface statistics: packets the tap saw and the ones dropped (ring full), over [start, end]. */
export function pcapngStatistics(startUs: number, endUs: number, received: number, dropped: number): Buffer {
  return block(
    BLOCK_ISB,
    12,
    (b, o) => {
      b.writeUInt32LE(0, o);
      b.writeUInt32LE(Math.floor(endUs / 2 ** 32), o + 4);
      b.writeUInt32LE(endUs % 2 ** 32 >>> 0, o + 8);
    },
    [
      { code: ISB_STARTTIME, value: ts64(startUs) },
      { code: ISB_ENDTIME, value: ts64(endUs) },
      { code: ISB_IFRECV, value: u64(received) },
      { code: ISB_IFDROP, value: u64(dropped) },
    ],
  );
}

/** One block of a pcapng stream as the reader frames it. */
export interface PcapngBlock {
  type: number;
  /** The whole block (type and lengths included); a view into the reader's buffer. */
  bytes: Buffer;
}

/**
 * Frames a pcapng byte stream (little-endian, as written here) into blocks: push() chunks as
 * they arrive, get the complete blocks back. Throws on a length that cannot be (not a stream
 * this module wrote).
 */
export class PcapngReader {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): PcapngBlock[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: PcapngBlock[] = [];
    let off = 0;
    while (this.buf.length - off >= 12) {
      const len = this.buf.readUInt32LE(off + 4);
      if (len < 12 || len % 4 !== 0) throw new Error(`pcapng: bad block length ${len}`);
      if (this.buf.length - off < len) break;
      out.push({ type: this.buf.readUInt32LE(off), bytes: this.buf.subarray(off, off + len) });
      off += len;
    }
    this.buf = this.buf.subarray(off);
    return out;
  }

  /** Bytes received that do not make a whole block yet. */
  get pending(): number {
    return this.buf.length;
  }
}

/** An enhanced packet block's fields: time, direction and the packet's captured bytes. */
export function readPacketBlock(b: Buffer): { timeUs: number; direction: number; data: Buffer; originalLength: number } {
  const timeUs = b.readUInt32LE(12) * 2 ** 32 + b.readUInt32LE(16);
  const caplen = b.readUInt32LE(20);
  const originalLength = b.readUInt32LE(24);
  const data = b.subarray(28, 28 + caplen);
  let direction = 0;
  for (let o = 28 + pad4(caplen); o + 4 <= b.length - 4; ) {
    const code = b.readUInt16LE(o);
    const len = b.readUInt16LE(o + 2);
    if (code === OPT_END) break;
    if (code === EPB_FLAGS && len === 4) direction = b.readUInt32LE(o + 4) & 3;
    o += 4 + pad4(len);
  }
  return { timeUs, direction, data, originalLength };
}

/** An interface statistics block's received and dropped counts (0 when absent). */
export function readStatisticsBlock(b: Buffer): { received: number; dropped: number } {
  let received = 0;
  let dropped = 0;
  for (let o = 20; o + 4 <= b.length - 4; ) {
    const code = b.readUInt16LE(o);
    const len = b.readUInt16LE(o + 2);
    if (code === OPT_END) break;
    if (code === ISB_IFRECV && len === 8) received = Number(b.readBigUInt64LE(o + 4));
    if (code === ISB_IFDROP && len === 8) dropped = Number(b.readBigUInt64LE(o + 4));
    o += 4 + pad4(len);
  }
  return { received, dropped };
}
