/**
 * Minimal pcap / pcapng reader and pcap writer for tests.
 *
 * readPcap() accepts classic pcap in both byte orders with microsecond (0xa1b2c3d4) or
 * nanosecond (0xa1b23c4d) magic, and pcapng (SHB/IDB/EPB/SPB; what tshark -w / dumpcap write).
 * For link types that carry a link header (Linux cooked v1 113 / v2 276, Ethernet 1, BSD loopback
 * 0/108) the header is stripped so `data` is always the IP packet; raw link types (101, 12, 14,
 * 228, 229) are passed through. `linktype` reports the file's original link type.
 */
import { readFileSync, writeFileSync } from 'node:fs';

export const LINKTYPE_NULL = 0;
export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_RAW = 101;
export const LINKTYPE_LOOP = 108;
export const LINKTYPE_LINUX_SLL = 113;
export const LINKTYPE_IPV4 = 228;
export const LINKTYPE_IPV6 = 229;
export const LINKTYPE_LINUX_SLL2 = 276;

export interface PcapPacket {
  /** capture time in seconds (fractional) */
  ts: number;
  /** the IP packet (link header stripped) */
  data: Buffer;
  /** original length on the wire as recorded (before any truncation by snaplen) */
  origLen: number;
}

export interface PcapFile {
  linktype: number;
  packets: PcapPacket[];
}

const MAGIC_USEC = 0xa1b2c3d4;
const MAGIC_NSEC = 0xa1b23c4d;
const PCAPNG_SHB = 0x0a0d0d0a;
const PCAPNG_BOM = 0x1a2b3c4d;

/** Strip the link-layer header for `linktype`; returns a view into `frame` (no copy). */
export function stripLinkHeader(linktype: number, frame: Buffer): Buffer {
  switch (linktype) {
    case LINKTYPE_LINUX_SLL:
      return frame.subarray(16);
    case LINKTYPE_LINUX_SLL2:
      return frame.subarray(20);
    case LINKTYPE_ETHERNET: {
      let off = 12;
      // skip 802.1Q / 802.1ad tags
      while (off + 4 <= frame.length) {
        const et = frame.readUInt16BE(off);
        if (et !== 0x8100 && et !== 0x88a8) break;
        off += 4;
      }
      return frame.subarray(off + 2);
    }
    case LINKTYPE_NULL:
    case LINKTYPE_LOOP:
      return frame.subarray(4);
    default:
      return frame;
  }
}

/** Parse a pcap or pcapng file image. Throws on a malformed file (test helper, not dataplane). */
export function decodePcap(buf: Buffer): PcapFile {
  if (buf.length < 4) throw new Error('pcap: file too short');
  if (buf.readUInt32LE(0) === PCAPNG_SHB) return decodePcapng(buf);
  if (buf.length < 24) throw new Error('pcap: file too short');
  let le: boolean;
  let nsec: boolean;
  const mLE = buf.readUInt32LE(0);
  const mBE = buf.readUInt32BE(0);
  if (mLE === MAGIC_USEC || mLE === MAGIC_NSEC) {
    le = true;
    nsec = mLE === MAGIC_NSEC;
  } else if (mBE === MAGIC_USEC || mBE === MAGIC_NSEC) {
    le = false;
    nsec = mBE === MAGIC_NSEC;
  } else {
    throw new Error(`pcap: bad magic 0x${mBE.toString(16)}`);
  }
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  // low 16 bits hold the link type (upper bits: FCS info)
  const linktype = u32(20) & 0xffff;
  const packets: PcapPacket[] = [];
  let off = 24;
  while (off < buf.length) {
    if (off + 16 > buf.length) throw new Error(`pcap: truncated record header at ${off}`);
    const sec = u32(off);
    const frac = u32(off + 4);
    const incl = u32(off + 8);
    const orig = u32(off + 12);
    off += 16;
    if (off + incl > buf.length) throw new Error(`pcap: truncated record at ${off}`);
    const frame = buf.subarray(off, off + incl);
    off += incl;
    packets.push({ ts: sec + frac / (nsec ? 1e9 : 1e6), data: stripLinkHeader(linktype, frame), origLen: orig });
  }
  return { linktype, packets };
}

function decodePcapng(buf: Buffer): PcapFile {
  let le = true;
  const ifaces: { linktype: number; tsDiv: number }[] = [];
  const packets: PcapPacket[] = [];
  let linktype = -1;
  let off = 0;
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const u16 = (o: number) => (le ? buf.readUInt16LE(o) : buf.readUInt16BE(o));
  while (off + 12 <= buf.length) {
    let type = buf.readUInt32LE(off);
    if (type === PCAPNG_SHB) {
      const bom = buf.readUInt32LE(off + 8);
      if (bom === PCAPNG_BOM) le = true;
      else if (buf.readUInt32BE(off + 8) === PCAPNG_BOM) le = false;
      else throw new Error('pcapng: bad byte-order magic');
      ifaces.length = 0; // a new section starts a new interface list
    }
    type = u32(off);
    const len = u32(off + 4);
    if (len < 12 || off + len > buf.length) throw new Error(`pcapng: bad block length at ${off}`);
    const body = off + 8;
    if (type === 1) {
      // Interface Description Block: linktype u16, reserved, snaplen, options
      const lt = u16(body);
      let tsDiv = 1e6;
      let o = body + 8;
      const end = off + len - 4;
      while (o + 4 <= end) {
        const code = u16(o);
        const olen = u16(o + 2);
        if (code === 0) break;
        if (code === 9 && olen >= 1) {
          const v = buf[o + 4]!;
          tsDiv = v & 0x80 ? 2 ** (v & 0x7f) : 10 ** (v & 0x7f);
        }
        o += 4 + ((olen + 3) & ~3);
      }
      ifaces.push({ linktype: lt, tsDiv });
      if (linktype < 0) linktype = lt;
    } else if (type === 6) {
      // Enhanced Packet Block
      const ifc = ifaces[u32(body)];
      if (!ifc) throw new Error('pcapng: packet for unknown interface');
      const ts = (u32(body + 4) * 2 ** 32 + u32(body + 8)) / ifc.tsDiv;
      const incl = u32(body + 12);
      const orig = u32(body + 16);
      if (body + 20 + incl > off + len) throw new Error('pcapng: truncated packet');
      const frame = buf.subarray(body + 20, body + 20 + incl);
      packets.push({ ts, data: stripLinkHeader(ifc.linktype, frame), origLen: orig });
    } else if (type === 3) {
      // Simple Packet Block (interface 0, no timestamp)
      const ifc = ifaces[0];
      if (!ifc) throw new Error('pcapng: packet for unknown interface');
      const orig = u32(body);
      const incl = Math.min(orig, len - 16);
      const frame = buf.subarray(body + 4, body + 4 + incl);
      packets.push({ ts: 0, data: stripLinkHeader(ifc.linktype, frame), origLen: orig });
    }
    off += len;
  }
  return { linktype, packets };
}

export function readPcap(path: string): PcapFile {
  return decodePcap(readFileSync(path));
}

export type PcapInput = Uint8Array | { ts?: number; data: Uint8Array };

/**
 * Build a classic little-endian microsecond pcap image. Packets without a timestamp get
 * deterministic ones (i microseconds) so written files are byte-for-byte reproducible.
 */
export function encodePcap(packets: readonly PcapInput[], linktype = LINKTYPE_RAW, snaplen = 262144): Buffer {
  let total = 24;
  for (const p of packets) total += 16 + (p instanceof Uint8Array ? p : p.data).length;
  const out = Buffer.alloc(total);
  out.writeUInt32LE(MAGIC_USEC, 0);
  out.writeUInt16LE(2, 4);
  out.writeUInt16LE(4, 6);
  out.writeInt32LE(0, 8);
  out.writeUInt32LE(0, 12);
  out.writeUInt32LE(snaplen, 16);
  out.writeUInt32LE(linktype, 20);
  let off = 24;
  packets.forEach((p, i) => {
    const data = p instanceof Uint8Array ? p : p.data;
    const ts = p instanceof Uint8Array || p.ts === undefined ? i / 1e6 : p.ts;
    let sec = Math.floor(ts);
    let usec = Math.round((ts - sec) * 1e6);
    if (usec >= 1e6) {
      sec += 1;
      usec -= 1e6;
    }
    out.writeUInt32LE(sec, off);
    out.writeUInt32LE(usec, off + 4);
    out.writeUInt32LE(data.length, off + 8);
    out.writeUInt32LE(data.length, off + 12);
    out.set(data, off + 16);
    off += 16 + data.length;
  });
  return out;
}

export function writePcap(path: string, packets: readonly PcapInput[], linktype = LINKTYPE_RAW): void {
  writeFileSync(path, encodePcap(packets, linktype));
}

// ---------------------------------------------------------------- kernel fixtures
/** Directory of the real-kernel captures (see test/fixtures/kernel/README.md). */
export const KERNEL_FIXTURE_DIR = new URL('../fixtures/kernel/', import.meta.url).pathname;

export interface KernelFixtureInfo {
  file: string;
  packets: number;
  what: string;
  how: string;
  sizes: number[];
}

export function kernelManifest(): { kernel: string; linktype: number; fixtures: KernelFixtureInfo[] } {
  return JSON.parse(readFileSync(KERNEL_FIXTURE_DIR + 'manifest.json', 'utf8'));
}

/** The IP packets of one kernel fixture, e.g. kernelFixture('ping4-frag') -> 3 Buffers. */
export function kernelFixture(name: string): Buffer[] {
  const file = name.endsWith('.pcap') ? name : name + '.pcap';
  return readPcap(KERNEL_FIXTURE_DIR + file).packets.map((p) => p.data);
}
