/**
 * Differential fuzz (issue 12, point 4): IPv4 / IPv6 / ICMP / ICMPv6 headers decoded by ipferry's
 * wire views and by scapy (an independent implementation: test/fuzz/scapy_oracle.py), packet by
 * packet, over generated packets; every field, the structural verdict and every checksum verdict
 * must agree.
 *
 * Packets: built here byte by byte from the RFC layouts (RFC 791, 792, 8200, 4443) with random
 * field values, options, payload sizes and correct checksums, then mutated: bit flips in the
 * headers, truncation, random total length / IHL / payload length, broken checksums, another
 * version nibble, trailing bytes. Deterministic for a seed. Our side reads each packet through a
 * bounds-checked window (test/support/checked-bytes.ts).
 *
 * What is compared, per packet:
 * - IPv4 (20+ bytes, version 4): ihl, tos, total length, id, flags (reserved/DF/MF), fragment
 *   offset (8-byte units), ttl, protocol, checksum field, addresses; "structurally valid"
 *   (version 4, IHL >= 5, header and total length inside the packet, total >= header: ours is
 *   Ipv4Packet.check() apart from its option checks, which scapy does not do); header checksum
 *   verifies. IPv6 (40+ bytes, version 6): traffic class, flow label, payload length, next
 *   header, hop limit, addresses, valid (payload inside the packet).
 * - ICMP when the IP header is valid, protocol 1 and not a later fragment, message >= 8 bytes:
 *   type, code, checksum field, checksum verifies, and echo id/seq, fragmentation-needed MTU,
 *   parameter-problem pointer. ICMPv6 when next header is 58 right after the fixed header:
 *   type, code, checksum field, checksum verifies (pseudo-header), echo id/seq, packet-too-big
 *   MTU, parameter-problem pointer.
 *
 *   npm run fuzz:diff [-- --packets N --seed S]     (default 200,000)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DropReason } from '../../src/base/drop-reason.ts';
import { Icmpv4Packet } from '../../src/wire/icmpv4.ts';
import { Icmpv6Packet } from '../../src/wire/icmpv6.ts';
import { Ipv4Packet } from '../../src/wire/ipv4.ts';
import { Ipv6Packet } from '../../src/wire/ipv6.ts';
import { Rng } from '../support/rng.ts';
import { checkedWindow } from '../support/checked-bytes.ts';

const here = dirname(fileURLToPath(import.meta.url));
const PYTHON = '/usr/bin/python3';

/** scapy importable by the system python (python3-scapy)? */
export function scapyAvailable(): boolean {
  return spawnSync(PYTHON, ['-c', 'import scapy.layers.inet6'], { stdio: 'ignore', timeout: 30_000 }).status === 0;
}

// ---------------------------------------------------------------- packet generator

/** RFC 1071 Internet checksum of b[off, off+len) plus `extra` (a pseudo-header sum). */
function inetChecksum(b: Uint8Array, off: number, len: number, extra = 0): number {
  let s = extra;
  for (let i = 0; i + 1 < len; i += 2) s += (b[off + i]! << 8) | b[off + i + 1]!;
  if (len & 1) s += b[off + len - 1]! << 8;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 65536);
  return ~s & 0xffff;
}

const ICMP4_TYPES = [0, 8, 3, 3, 11, 12, 5, 13, 14, 4, 9, 10, 17, 18, 42, 255] as const;
const ICMP6_TYPES = [1, 2, 3, 4, 128, 129, 133, 134, 135, 136, 137, 130, 143, 100, 200, 255] as const;

function icmpMessage(r: Rng, six: boolean): Buffer {
  const type = six ? r.pick(ICMP6_TYPES) : r.pick(ICMP4_TYPES);
  const dataLen = r.chance(0.1) ? r.int(8) : r.int(r.chance(0.9) ? 120 : 1400);
  const m = Buffer.alloc(8 + dataLen);
  m[0] = type;
  m[1] = type === 3 && !six ? r.pick([0, 1, 3, 4, 4, 13]) : r.int(r.chance(0.8) ? 5 : 256);
  m.writeUInt32BE(r.u32(), 4); // id/seq, MTU, pointer, unused: all four bytes random
  if (!six && type === 3 && m[1] === 4) m.writeUInt16BE(r.int(65536), 6);
  for (let i = 8; i < m.length; i++) m[i] = r.int(256);
  return m;
}

function genV4(r: Rng): Buffer {
  const optWords = r.chance(0.2) ? 1 + r.int(10) : 0;
  const hl = 20 + optWords * 4;
  const proto = r.chance(0.75) ? 1 : r.pick([6, 17, 4, 41, 47, 50, r.int(256)]);
  const payload = proto === 1 ? icmpMessage(r, false) : Buffer.from(Array.from({ length: r.int(200) }, () => r.int(256)));
  const b = Buffer.alloc(hl + payload.length);
  b[0] = 0x40 | (hl >> 2);
  b[1] = r.int(256);
  b.writeUInt16BE(b.length, 2);
  b.writeUInt16BE(r.int(65536), 4);
  const df = r.chance(0.5) ? 0x4000 : 0;
  const frag = r.chance(0.85) ? 0 : r.chance(0.5) ? 0x2000 : (r.chance(0.5) ? 0x2000 : 0) | (1 + r.int(8191)); // MF and/or an offset
  b.writeUInt16BE((df | frag | (r.chance(0.05) ? 0x8000 : 0)) & 0xffff, 6);
  b[8] = r.int(256);
  b[9] = proto;
  b.writeUInt32BE(r.u32(), 12);
  b.writeUInt32BE(r.u32(), 16);
  // options: NOPs, a record-route option, an end-of-list (or random bytes now and then)
  let o = 20;
  while (o < hl) {
    const left = hl - o;
    if (r.chance(0.1)) b[o++] = r.int(256);
    else if (left >= 7 && r.chance(0.3)) {
      const len = Math.min(left, 3 + 4 * (1 + r.int(4)));
      b[o] = 7;
      b[o + 1] = len;
      b[o + 2] = 4;
      o += len;
    } else b[o++] = r.chance(0.9) ? 1 : 0;
  }
  b.writeUInt16BE(inetChecksum(b, 0, hl), 10);
  payload.copy(b, hl);
  if (proto === 1) b.writeUInt16BE(inetChecksum(b, hl, payload.length), hl + 2);
  return b;
}

function genV6(r: Rng): Buffer {
  const nh = r.chance(0.8) ? 58 : r.pick([0, 6, 17, 43, 44, 59, 60, r.int(256)]);
  const payload = nh === 58 ? icmpMessage(r, true) : Buffer.from(Array.from({ length: r.int(200) }, () => r.int(256)));
  const b = Buffer.alloc(40 + payload.length);
  b.writeUInt32BE(((6 << 28) | (r.int(256) << 20) | r.int(1 << 20)) >>> 0, 0);
  b.writeUInt16BE(payload.length, 4);
  b[6] = nh;
  b[7] = r.int(256);
  for (let i = 8; i < 40; i++) b[i] = r.int(256);
  payload.copy(b, 40);
  if (nh === 58) {
    // pseudo-header: source, destination, upper-layer length, next header 58
    let s = 0;
    for (let i = 8; i < 40; i += 2) s += (b[i]! << 8) | b[i + 1]!;
    s += payload.length + 58;
    b.writeUInt16BE(inetChecksum(b, 40, payload.length, s), 42);
  }
  return b;
}

/** Mutate a copy of p (or return it as is). */
function mutate(r: Rng, p: Buffer): Buffer {
  const k = r.int(12);
  let b = Buffer.from(p);
  const hdr = Math.min(b.length, 48);
  switch (k) {
    case 0:
    case 1:
    case 2:
    case 3:
      return b; // as built
    case 4:
      for (let i = 0, n = 1 + r.int(4); i < n; i++) b[r.int(hdr)]! ^= 1 << r.int(8);
      return b;
    case 5:
      return b.subarray(0, r.int(b.length + 1));
    case 6:
      if (b[0]! >> 4 === 4) b.writeUInt16BE(r.chance(0.5) ? r.int(65536) : r.int(b.length + 40), 2);
      else if (b.length >= 6) b.writeUInt16BE(r.chance(0.5) ? r.int(65536) : r.int(b.length), 4);
      return b;
    case 7:
      if (b[0]! >> 4 === 4) b[0] = 0x40 | r.int(16);
      return b;
    case 8:
      if (b.length > 12) b[r.chance(0.5) ? 10 : b.length > 43 ? 42 : 11]! ^= 1 + r.int(255);
      return b;
    case 9:
      b[0] = (r.pick([4, 6, r.int(16)]) << 4) | (b[0]! & 15);
      return b;
    case 10:
      b = Buffer.concat([b, Buffer.from(Array.from({ length: 1 + r.int(40) }, () => r.int(256)))]);
      return b;
    default:
      for (let i = 0, n = 1 + r.int(16); i < n && b.length > 0; i++) b[r.int(b.length)] = r.int(256);
      return b;
  }
}

export function generate(n: number, seed: number): Buffer[] {
  const r = new Rng(seed, 1);
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) out.push(mutate(r, r.chance(0.55) ? genV4(r) : genV6(r)));
  return out;
}

// ---------------------------------------------------------------- our side

const ip4 = new Ipv4Packet();
const ip6 = new Ipv6Packet();
const ic4 = new Icmpv4Packet();
const ic6 = new Icmpv6Packet();
const STRUCTURAL_V4 = new Set<DropReason>([DropReason.Truncated, DropReason.BadVersion, DropReason.BadIhl, DropReason.BadTotalLength]);

const dotted = (a: number) => `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
const hex = (b: Uint8Array, o: number, n: number) => Buffer.from(b.subarray(o, o + n)).toString('hex');

/** Our decoding of one packet, in the oracle's JSON shape. */
export function ours(pkt: Buffer): Record<string, unknown> {
  const n = pkt.length;
  if (n === 0) return { n: 0 };
  const b = checkedWindow(pkt, 0, n);
  const ver = pkt[0]! >> 4;
  if (ver === 4 && n >= 20) {
    const p = ip4.wrap(b, 0, n);
    const r = p.check();
    const ok = !STRUCTURAL_V4.has(r);
    const d: Record<string, unknown> = {
      n, v: 4, ok, ihl: p.ihl, tos: p.tos, len: p.totalLength, id: p.ident,
      flags: (p.reservedFlag ? 4 : 0) | (p.dontFragment ? 2 : 0) | (p.moreFragments ? 1 : 0),
      frag: p.fragOffsetRaw, ttl: p.ttl, proto: p.protocol, chksum: p.checksum,
      src: dotted(p.srcAddr), dst: dotted(p.dstAddr), sumOk: p.verifyChecksum(),
    };
    if (ok && p.protocol === 1 && p.fragOffsetRaw === 0) {
      const hl = p.headerLength;
      const ml = p.totalLength - hl;
      if (ml < 8) d.icmp = null;
      else {
        const m = ic4.wrap(b, hl, ml);
        const t = m.type;
        const ic: Record<string, unknown> = { type: t, code: m.code, chksum: m.checksum, sumOk: m.verifyChecksum() };
        if (t === 0 || t === 8) {
          ic.id = m.echoIdent;
          ic.seq = m.echoSeq;
        } else if (t === 3 && m.code === 4) ic.mtu = m.nextHopMtu;
        else if (t === 12) ic.ptr = m.pointer;
        d.icmp = ic;
      }
    }
    return d;
  }
  if (ver === 6 && n >= 40) {
    const p = ip6.wrap(b, 0, n);
    const ok = p.check() === DropReason.None;
    const d: Record<string, unknown> = {
      n, v: 6, ok, tc: p.trafficClass, fl: p.flowLabel, plen: p.payloadLength, nh: p.nextHeader, hlim: p.hopLimit,
      src: hex(pkt, 8, 16), dst: hex(pkt, 24, 16),
    };
    if (ok && p.nextHeader === 58) {
      const ml = p.payloadLength;
      if (ml < 8) d.icmp = null;
      else {
        const m = ic6.wrap(b, 40, ml);
        const t = m.msgType;
        const ic: Record<string, unknown> = { type: t, code: m.code, chksum: m.checksum, sumOk: m.verifyChecksum(8, 24) };
        if (t === 128 || t === 129) {
          ic.id = m.identifier;
          ic.seq = m.sequence;
        } else if (t === 2) ic.mtu = m.mtu;
        else if (t === 4) ic.ptr = m.pointer;
        d.icmp = ic;
      }
    }
    return d;
  }
  return { n, v: ver, ok: false };
}

// ---------------------------------------------------------------- the comparison

export interface DiffResult {
  packets: number;
  /** Packets where some field or verdict differs, and the first few of them. */
  mismatches: number;
  samples: { packet: string; ours: Record<string, unknown>; scapy: Record<string, unknown> }[];
  /** Packets scapy could not decode (an exception in the oracle). */
  oracleErrors: number;
  /** How much of each kind was compared (the run reached the interesting cases). */
  counts: { v4: number; v4valid: number; icmp4: number; v6: number; v6valid: number; icmp6: number; badSum: number };
  ms: number;
}

function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

export function runDifferential(opts: { packets: number; seed?: number }): DiffResult {
  const t0 = performance.now();
  const packets = generate(opts.packets, opts.seed ?? 0xd1ff);
  const dir = mkdtempSync(join(tmpdir(), 'ipferry-diff-'));
  try {
    const file = join(dir, 'packets.bin');
    const parts: Buffer[] = [];
    for (const p of packets) {
      const h = Buffer.alloc(4);
      h.writeUInt32BE(p.length);
      parts.push(h, p);
    }
    writeFileSync(file, Buffer.concat(parts));
    const out = execFileSync(PYTHON, [join(here, 'scapy_oracle.py'), file], { encoding: 'utf8', maxBuffer: 1 << 30, timeout: 900_000 });
    const lines = out.split('\n');
    const res: DiffResult = {
      packets: packets.length,
      mismatches: 0,
      samples: [],
      oracleErrors: 0,
      counts: { v4: 0, v4valid: 0, icmp4: 0, v6: 0, v6valid: 0, icmp6: 0, badSum: 0 },
      ms: 0,
    };
    for (let i = 0; i < packets.length; i++) {
      const theirs = JSON.parse(lines[i]!) as Record<string, unknown>;
      if ('error' in theirs) {
        res.oracleErrors++;
        continue;
      }
      const icmp = theirs.icmp as Record<string, unknown> | null | undefined;
      if (icmp && 'undissected' in icmp) delete theirs.icmp; // scapy left it as raw bytes: nothing to compare
      const mine = ours(packets[i]!);
      if (!('icmp' in theirs)) delete mine.icmp;
      const c = res.counts;
      if (theirs.v === 4 && 'ihl' in theirs) {
        c.v4++;
        if (theirs.ok) c.v4valid++;
        if (theirs.icmp) c.icmp4++;
        if (theirs.sumOk === false) c.badSum++;
      } else if (theirs.v === 6 && 'plen' in theirs) {
        c.v6++;
        if (theirs.ok) c.v6valid++;
        if (theirs.icmp) c.icmp6++;
      }
      if (!same(mine, theirs)) {
        res.mismatches++;
        if (res.samples.length < 10) res.samples.push({ packet: packets[i]!.subarray(0, 96).toString('hex'), ours: mine, scapy: theirs });
      }
    }
    res.ms = Math.round(performance.now() - t0);
    return res;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name: string, d: number) => {
    const i = process.argv.indexOf(`--${name}`);
    return i < 0 ? d : Number(process.argv[i + 1]);
  };
  if (!scapyAvailable()) {
    process.stderr.write('fuzz:diff: needs scapy for /usr/bin/python3 (apt-get install python3-scapy)\n');
    process.exit(2);
  }
  const r = runDifferential({ packets: arg('packets', 200_000), seed: arg('seed', 0xd1ff) });
  process.stdout.write(`${r.packets} packets in ${r.ms} ms: ${r.mismatches} mismatch(es), ${r.oracleErrors} scapy error(s); compared ${JSON.stringify(r.counts)}\n`);
  for (const s of r.samples) process.stdout.write(`MISMATCH ${s.packet}\n  ours  ${JSON.stringify(s.ours)}\n  scapy ${JSON.stringify(s.scapy)}\n`);
  process.exit(r.mismatches === 0 ? 0 : 1);
}
