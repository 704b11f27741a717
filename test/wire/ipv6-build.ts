/**
 * Test helpers: hand-built IPv6 packets with extension headers, every byte derived here from
 * RFC 8200 / RFC 4443 / RFC 768 layouts (independent of src/wire), and an independent
 * checksum (plain RFC 1071 byte-pair loop).
 */
import { parseAddress } from '../../src/wire/address-text.ts';

export const A = (text: string): Uint8Array => parseAddress(text).bytes;

/** RFC 1071 reference: byte pairs with end-around carry after every add. */
export function refChecksum(...parts: Uint8Array[]): number {
  const all = concat(...parts);
  let s = 0;
  for (let i = 0; i < all.length; i += 2) {
    s += (all[i]! << 8) | (i + 1 < all.length ? all[i + 1]! : 0);
    s = (s & 0xffff) + (s >>> 16);
  }
  return ~s & 0xffff;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** The IPv6 pseudo-header (RFC 8200 8.1) as bytes. */
export function pseudo(src: Uint8Array, dst: Uint8Array, nh: number, len: number): Uint8Array {
  const p = new Uint8Array(40);
  p.set(src, 0);
  p.set(dst, 16);
  p[32] = (len >>> 24) & 0xff;
  p[33] = (len >>> 16) & 0xff;
  p[34] = (len >>> 8) & 0xff;
  p[35] = len & 0xff;
  p[39] = nh;
  return p;
}

/** One extension header: `type` is its own Next Header value; `body` is everything after byte 1. */
export interface Ext {
  type: number;
  /** Bytes 2.. of the header (the walker sets bytes 0 and 1 unless rawLen is given). */
  body: Uint8Array;
  /** Override byte 1 (Hdr Ext Len / AH payload len) verbatim. */
  rawLen?: number;
}

export const hbh = (body: Uint8Array = new Uint8Array([1, 4, 0, 0, 0, 0])): Ext => ({ type: 0, body });
export const dstOpts = (body: Uint8Array = new Uint8Array([1, 4, 0, 0, 0, 0])): Ext => ({ type: 60, body });
export const routing = (rtype: number, segLeft: number, extra = 4): Ext => ({
  type: 43,
  body: concat(new Uint8Array([rtype, segLeft]), new Uint8Array(extra)),
});
export const frag = (offsetBytes: number, more: boolean, id: number): Ext => ({
  type: 44,
  body: new Uint8Array([
    (offsetBytes >>> 8) & 0xff,
    (offsetBytes & 0xf8) | (more ? 1 : 0),
    (id >>> 24) & 0xff,
    (id >>> 16) & 0xff,
    (id >>> 8) & 0xff,
    id & 0xff,
  ]),
});
/** AH with `icvLen` bytes of ICV: 12 fixed bytes + ICV; payload len = total/4 - 2. */
export const ah = (spi: number, seq: number, icvLen = 4): Ext => {
  const b = new Uint8Array(10 + icvLen);
  b[2] = spi >>> 24;
  b[3] = (spi >>> 16) & 0xff;
  b[4] = (spi >>> 8) & 0xff;
  b[5] = spi & 0xff;
  b[6] = seq >>> 24;
  b[7] = (seq >>> 16) & 0xff;
  b[8] = (seq >>> 8) & 0xff;
  b[9] = seq & 0xff;
  return { type: 51, body: b };
};

function extBytes(e: Ext, next: number): Uint8Array {
  const out = new Uint8Array(2 + e.body.length);
  out[0] = next;
  out.set(e.body, 2);
  if (e.rawLen !== undefined) out[1] = e.rawLen;
  else if (e.type === 44) out[1] = 0;
  else if (e.type === 51) out[1] = out.length / 4 - 2;
  else out[1] = out.length / 8 - 1;
  return out;
}

export interface V6Opts {
  src?: string;
  dst?: string;
  hopLimit?: number;
  trafficClass?: number;
  flowLabel?: number;
  exts?: Ext[];
  /** Override the payload length field. */
  payloadLength?: number;
}

/** IPv6 packet: fixed header + extension headers + upper-layer bytes (checksums are the caller's). */
export function v6(upperProto: number, upper: Uint8Array, o: V6Opts = {}): Uint8Array {
  const exts = o.exts ?? [];
  const parts: Uint8Array[] = [];
  for (let i = 0; i < exts.length; i++) parts.push(extBytes(exts[i]!, i + 1 < exts.length ? exts[i + 1]!.type : upperProto));
  const payload = concat(...parts, upper);
  const h = new Uint8Array(40);
  const tc = o.trafficClass ?? 0;
  const fl = o.flowLabel ?? 0;
  h[0] = 0x60 | (tc >>> 4);
  h[1] = ((tc & 15) << 4) | ((fl >>> 16) & 15);
  h[2] = (fl >>> 8) & 0xff;
  h[3] = fl & 0xff;
  const plen = o.payloadLength ?? payload.length;
  h[4] = plen >>> 8;
  h[5] = plen & 0xff;
  h[6] = exts.length ? exts[0]!.type : upperProto;
  h[7] = o.hopLimit ?? 64;
  h.set(A(o.src ?? 'fd00:10::1'), 8);
  h.set(A(o.dst ?? 'fd00:20::20'), 24);
  return concat(h, payload);
}

/** UDP datagram with a correct checksum for src/dst. */
export function udp(src: string, dst: string, sport: number, dport: number, data: Uint8Array): Uint8Array {
  const u = new Uint8Array(8 + data.length);
  u[0] = sport >>> 8;
  u[1] = sport & 0xff;
  u[2] = dport >>> 8;
  u[3] = dport & 0xff;
  u[4] = u.length >>> 8;
  u[5] = u.length & 0xff;
  u.set(data, 8);
  let c = refChecksum(pseudo(A(src), A(dst), 17, u.length), u);
  if (c === 0) c = 0xffff;
  u[6] = c >>> 8;
  u[7] = c & 0xff;
  return u;
}

/** ICMPv6 message with a correct checksum for src/dst. */
export function icmp6(src: string, dst: string, type: number, code: number, rest: number, body: Uint8Array): Uint8Array {
  const m = new Uint8Array(8 + body.length);
  m[0] = type;
  m[1] = code;
  m[4] = rest >>> 24;
  m[5] = (rest >>> 16) & 0xff;
  m[6] = (rest >>> 8) & 0xff;
  m[7] = rest & 0xff;
  m.set(body, 8);
  const c = refChecksum(pseudo(A(src), A(dst), 58, m.length), m);
  m[2] = c >>> 8;
  m[3] = c & 0xff;
  return m;
}

export const echoRequest = (src: string, dst: string, id: number, seq: number, data: Uint8Array): Uint8Array =>
  icmp6(src, dst, 128, 0, ((id << 16) | seq) >>> 0, data);

export const seqBytes = (n: number, start = 0): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (start + i) & 0xff);

export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
