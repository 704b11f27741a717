/**
 * TSO split: super-packets built as the kernel hands them out (test/device/tcp-super.ts) cut
 * into segments; every segment checked with the wire views (IPv4 header checksum, TCP checksum
 * over the pseudo-header), by tshark with checksum validation on (an independent dissector), and
 * over random sizes, MSS values, flags and options (fast-check). Kernel-captured super-packets:
 * test/device/offload-fixtures.test.ts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DropReason } from '../../src/base/drop-reason.ts';
import {
  completePartialChecksum, SegmentList, SEGMENT_HEADER_STRIDE, SPLIT_BAD_GSO, SPLIT_BAD_HEADER, SPLIT_TOO_MANY,
  SPLIT_UNSUPPORTED, TsoSplitter,
} from '../../src/device/tso-split.ts';
import { VnetHdr, VNET_HDR_LEN, VIRTIO_NET_HDR_GSO_TCPV6 } from '../../src/sys/virtio-net-hdr.ts';
import { fold, pseudoHeaderSumV4, pseudoHeaderSumV6 } from '../../src/wire/checksum.ts';
import { Ipv4Packet } from '../../src/wire/ipv4.ts';
import { Ipv6Packet } from '../../src/wire/ipv6.ts';
import { TCP_ACK, TCP_CWR, TCP_ECE, TCP_FIN, TCP_PSH, TcpPacket } from '../../src/wire/tcp.ts';
import { tsharkCheckPackets, tsharkFields } from '../support/tshark.ts';
import { writePcap } from '../support/pcap.ts';
import { pattern, tsOption, writeSegment, writeSuper, type TcpSpec } from './tcp-super.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const OFF = 18; // the IP header 2 bytes past a 4-byte boundary, as when a TUN read lands at +8

interface Segment {
  bytes: Uint8Array;
  ipHdrLen: number;
}

/** Split and return contiguous copies of the segments (or the failure code). */
function splitToSegments(spec: TcpSpec, mss: number, capacity = 256): Segment[] | number {
  const buf = new Uint8Array(new SharedArrayBuffer(OFF + 70000));
  const len = writeSuper(spec, mss, buf, OFF);
  const out = new SegmentList(capacity);
  const n = new TsoSplitter().split(buf, OFF, len, new VnetHdr(buf, OFF - VNET_HDR_LEN), out);
  if (n < 0) return n;
  const segs: Segment[] = [];
  for (let i = 0; i < n; i++) {
    const b = new Uint8Array(out.length(i));
    expect(out.copySegment(i, b, 0)).toBe(b.length);
    segs.push({ bytes: b, ipHdrLen: spec.v6 ? 40 : 20 });
  }
  return segs;
}

/** Every invariant of a correct split; returns a message per violation. */
function violations(spec: TcpSpec, mss: number, segs: Segment[]): string[] {
  const bad: string[] = [];
  const flags0 = spec.flags ?? TCP_ACK;
  const seq0 = spec.seq ?? 1000;
  const payload: number[] = [];
  const thl = 20 + (((spec.options?.length ?? 0) + 3) & ~3);
  segs.forEach(({ bytes: b, ipHdrLen: ihl }, i) => {
    const last = i === segs.length - 1;
    if (spec.v6) {
      const ip = new Ipv6Packet(b, 0, b.length);
      if (ip.payloadLength !== b.length - 40) bad.push(`${i}: v6 payload length ${ip.payloadLength}`);
    } else {
      const ip = new Ipv4Packet(b, 0, b.length);
      if (ip.validate() !== DropReason.None) bad.push(`${i}: IPv4 header invalid (${ip.validate()})`);
      if (ip.totalLength !== b.length) bad.push(`${i}: total length`);
      if (ip.ident !== (((spec.ident ?? 0x1234) + i) & 0xffff)) bad.push(`${i}: ident ${ip.ident}`);
    }
    const t = new TcpPacket(b, ihl, b.length - ihl);
    const ok = spec.v6 ? t.verifyChecksumV6(b, 8, 24) : t.verifyChecksumV4(b, 12, 16);
    if (!ok) bad.push(`${i}: TCP checksum`);
    if (t.seq !== ((seq0 + i * mss) >>> 0)) bad.push(`${i}: seq ${t.seq}`);
    const want = (flags0 & ~(last ? 0 : TCP_FIN | TCP_PSH)) & ~(i === 0 ? 0 : TCP_CWR);
    if (t.flags !== want) bad.push(`${i}: flags ${t.flags.toString(16)} want ${want.toString(16)}`);
    if (t.headerLength !== thl) bad.push(`${i}: data offset`);
    const pl = b.length - ihl - thl;
    if (!last && pl !== mss) bad.push(`${i}: payload ${pl} != mss`);
    if (last && (pl < 1 || pl > mss)) bad.push(`${i}: last payload ${pl}`);
    for (let k = ihl + thl; k < b.length; k++) payload.push(b[k]!);
    // byte for byte what the wire emitters build for this segment (checksums by checksum.ts)
    const want4 = new Uint8Array(b.length + 8);
    const n = writeSegment(
      { ...spec, payload: spec.payload.subarray(i * mss, i * mss + pl), seq: (seq0 + i * mss) >>> 0, flags: want, ident: ((spec.ident ?? 0x1234) + i) & 0xffff },
      want4,
      0,
    );
    if (n !== b.length || want4.subarray(0, n).some((x, k) => x !== b[k])) bad.push(`${i}: bytes differ from the emitted segment`);
  });
  if (payload.length !== spec.payload.length || payload.some((x, k) => x !== spec.payload[k])) bad.push('payload differs');
  return bad;
}

describe('TsoSplitter', () => {
  for (const v6 of [false, true]) {
    it(`IPv${v6 ? 6 : 4}: a 64 KB super-packet becomes MSS-sized valid segments (FIN/PSH last, CWR first)`, () => {
      const spec: TcpSpec = {
        v6, payload: pattern(64000 - (v6 ? 72 : 52)), seq: 0xffff_f000, flags: TCP_ACK | TCP_PSH | TCP_FIN | TCP_CWR | TCP_ECE,
        options: tsOption(111, 222), ident: 0xfffe,
      };
      const mss = v6 ? 1328 : 1348;
      const segs = splitToSegments(spec, mss);
      expect(Array.isArray(segs)).toBe(true);
      const s = segs as Segment[];
      expect(s.length).toBe(Math.ceil(spec.payload.length / mss));
      expect(violations(spec, mss, s)).toEqual([]);
    });
  }

  it('segments pass tshark with checksum validation (an independent dissector)', (ctx) => {
    const all: Uint8Array[] = [];
    for (const v6 of [false, true]) {
      for (const [len, mss] of [[20000, 1348], [1349, 1348], [7, 1348], [5000, 536]] as const) {
        const segs = splitToSegments({ v6, payload: pattern(len, len), flags: TCP_ACK | TCP_PSH, options: tsOption(1, 2) }, mss);
        all.push(...(segs as Segment[]).map((s) => s.bytes));
      }
    }
    const v = tsharkCheckPackets(all, { failOn: 'warning', ignore: [/previous segment not captured|Retransmission|out-of-order|ACKed segment that wasn't captured|Spurious|Dup/i] });
    if (!v.available) return ctx.skip(v.skipReason);
    expect(v.problems).toEqual([]);
    // and tshark reads the checksums as verified, not merely unchecked
    const dir = mkdtempSync(join(tmpdir(), 'ipferry-tso-'));
    try {
      writePcap(join(dir, 's.pcap'), all);
      const rows = tsharkFields(join(dir, 's.pcap'), ['tcp.checksum.status', 'ip.checksum.status']);
      expect(rows.length).toBe(all.length);
      for (const [tcpStatus] of rows) expect(tcpStatus).toEqual(['1']); // 0 bad, 1 good, 2 unverified
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps every invariant over random sizes, MSS, flags and options (property)', () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.integer({ min: 1, max: 65000 }),
        fc.integer({ min: 1, max: 9000 }),
        fc.subarray([TCP_PSH, TCP_FIN, TCP_CWR, TCP_ECE]),
        fc.boolean(),
        fc.nat({ max: 0xffffffff }),
        fc.nat({ max: 0xffff }),
        (v6, len, mss, extra, ts, seq, ident) => {
          const spec: TcpSpec = {
            v6, payload: pattern(len, len ^ mss), seq, ident, flags: TCP_ACK | extra.reduce((a, f) => a | f, 0),
            options: ts ? tsOption(seq, ident) : undefined,
          };
          const segs = splitToSegments(spec, mss, 70000);
          if (!Array.isArray(segs)) return false;
          expect(violations(spec, mss, segs)).toEqual([]);
          return true;
        },
      ),
      { numRuns: 150 },
    );
  });

  it('refuses inconsistent input with a code instead of throwing', () => {
    const buf = new Uint8Array(new SharedArrayBuffer(OFF + 70000));
    const split = (mutate: (b: Uint8Array, h: VnetHdr, len: number) => number | void, v6 = false, cap = 64): number => {
      const len = writeSuper({ v6, payload: pattern(5000) }, 1000, buf, OFF);
      const h = new VnetHdr(buf, OFF - VNET_HDR_LEN);
      const l = mutate(buf, h, len) ?? len;
      return new TsoSplitter().split(buf, OFF, l, h, new SegmentList(cap));
    };
    expect(split(() => {})).toBe(5);
    expect(split((_b, h) => { h.gsoSize = 0; })).toBe(SPLIT_BAD_GSO);
    expect(split((_b, h) => { h.gsoType = VIRTIO_NET_HDR_GSO_TCPV6; })).toBe(SPLIT_BAD_GSO);
    expect(split((_b, h) => { h.gsoType = 5; })).toBe(SPLIT_BAD_GSO);
    expect(split((_b, h) => { h.csumStart = 24; })).toBe(SPLIT_BAD_HEADER);
    expect(split((_b, h) => { h.csumOffset = 6; })).toBe(SPLIT_BAD_HEADER);
    expect(split((_b, _h, len) => len - 1)).toBe(SPLIT_BAD_HEADER); // total length says more
    expect(split((b) => { b[OFF + 20 + 12] = 0x40; })).toBe(SPLIT_BAD_HEADER); // data offset 16
    expect(split((b) => { b[OFF + 20 + 12] = 0xf0; b[OFF + 3] = 60; b[OFF + 2] = 0; }, false)).toBe(SPLIT_BAD_HEADER);
    expect(split(() => {}, false, 4)).toBe(SPLIT_TOO_MANY);
    expect(split((b) => { b[OFF + 6] = 0; }, true)).toBe(SPLIT_UNSUPPORTED); // next header hop-by-hop
    expect(new SegmentList(4).hdr.length).toBe(4 * SEGMENT_HEADER_STRIDE);
  });

  it('never throws on random bytes under a random virtio header (property)', () => {
    const sp = new TsoSplitter();
    const out = new SegmentList(64);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 3000, size: 'max' }), fc.uint8Array({ minLength: 10, maxLength: 10 }), fc.boolean(), (data, hdr, fix) => {
        const b = new Uint8Array(data.length + 16);
        b.set(data, 16);
        if (fix && data.length >= 20) {
          b[16] = (b[16]! & 0x0f) | (hdr[0]! & 1 ? 0x60 : 0x40);
          hdr[1] = hdr[1]! & 1 ? 4 : 1;
        }
        const h = new VnetHdr(hdr, 0);
        const n = sp.split(b, 16, data.length, h, out);
        return Number.isInteger(n) && n <= 64;
      }),
      { numRuns: 2000 },
    );
  });
});

describe('completePartialChecksum', () => {
  it('finishes a NEEDS_CSUM segment from its pseudo-header sum (v4 and v6)', () => {
    for (const v6 of [false, true]) {
      for (const len of [0, 1, 77, 1300]) {
        const b = new Uint8Array(new SharedArrayBuffer(1500));
        const n = writeSegment({ v6, payload: pattern(len), options: tsOption(5, 6) }, b, 2);
        const ihl = v6 ? 40 : 20;
        const t = new TcpPacket(b, 2 + ihl, n - ihl);
        const good = t.checksum;
        // what the kernel hands out: the folded pseudo-header sum in the field
        t.checksum = fold(v6 ? pseudoHeaderSumV6(b, 2 + 8, 2 + 24, 6, n - ihl) : pseudoHeaderSumV4(b, 2 + 12, 2 + 16, 6, n - ihl));
        expect(completePartialChecksum(b, 2, n, ihl, 16)).toBe(true);
        expect(t.checksum === good || (good === 0 && t.checksum === 0xffff)).toBe(true);
        expect(v6 ? t.verifyChecksumV6(b, 2 + 8, 2 + 24) : t.verifyChecksumV4(b, 2 + 12, 2 + 16)).toBe(true);
      }
    }
  });

  it('refuses offsets outside the packet', () => {
    const b = new Uint8Array(100);
    expect(completePartialChecksum(b, 0, 40, 20, 19)).toBe(false);
    expect(completePartialChecksum(b, 0, 40, 10, 0)).toBe(false);
    expect(completePartialChecksum(b, 90, 40, 20, 16)).toBe(false);
  });
});
