/**
 * GRO coalesce: segments built with the wire emitters merged into super-packets; the result
 * re-split (TsoSplitter) must give back the very same segments byte for byte, the merged
 * header must carry the folded pseudo-header sum (checked by completing it and letting tshark
 * validate the whole packet), and every rule that keeps segments apart is exercised on its own.
 * Kernel acceptance of the coalesced writes: test/device/offload-kernel.test.ts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GroCoalescer, GRO_MAX_SEGMENTS } from '../../src/device/gro-coalesce.ts';
import { completePartialChecksum, SegmentList, TsoSplitter } from '../../src/device/tso-split.ts';
import {
  VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_ECN, VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_TCPV6, VnetHdr,
  VNET_HDR_LEN,
} from '../../src/sys/virtio-net-hdr.ts';
import { fold, pseudoHeaderSumV4, pseudoHeaderSumV6 } from '../../src/wire/checksum.ts';
import { TCP_ACK, TCP_CWR, TCP_ECE, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TCP_URG, TcpPacket } from '../../src/wire/tcp.ts';
import { tsharkCheckPackets } from '../support/tshark.ts';
import { pattern, streamSegments, tsOption, writeSegment, writeSuper, type TcpSpec } from './tcp-super.ts';

/** Packets laid out back to back (each at a 2-mod-4 offset) in one shared buffer. */
class Batch {
  readonly buf = new Uint8Array(new SharedArrayBuffer(1 << 21));
  readonly offs: number[] = [];
  readonly lens: number[] = [];
  private p = 2;
  add(spec: TcpSpec): number {
    const n = writeSegment(spec, this.buf, this.p);
    this.push(n);
    return this.offs.length - 1;
  }
  addRaw(bytes: Uint8Array): void {
    this.buf.set(bytes, this.p);
    this.push(bytes.length);
  }
  private push(n: number): void {
    this.offs.push(this.p);
    this.lens.push(n);
    this.p = ((this.p + n + 3) & ~3) + 2;
  }
  bytes(i: number): Uint8Array {
    return this.buf.slice(this.offs[i]!, this.offs[i]! + this.lens[i]!);
  }
  coalesce(g = new GroCoalescer(4096)): GroCoalescer {
    g.reset(this.buf);
    for (let i = 0; i < this.offs.length; i++) expect(g.add(this.offs[i]!, this.lens[i]!)).toBeGreaterThanOrEqual(0);
    g.finish();
    return g;
  }
}

/** Entry e as [vnet][packet]; the vnet header view and the IP packet. */
function entryBytes(g: GroCoalescer, e: number): { vnet: VnetHdr; pkt: Uint8Array; all: Uint8Array } {
  const all = new Uint8Array(new SharedArrayBuffer(70000));
  const n = g.copyEntry(e, all, 0);
  return { vnet: new VnetHdr(all, 0), pkt: all.subarray(VNET_HDR_LEN, n), all: all.subarray(0, n) };
}

/** Re-split a merged entry; contiguous copies of the segments. */
function resplit(g: GroCoalescer, e: number): Uint8Array[] {
  const { vnet, all, pkt } = entryBytes(g, e);
  const out = new SegmentList(128);
  const n = new TsoSplitter().split(all, VNET_HDR_LEN, pkt.length, vnet, out);
  expect(n).toBeGreaterThan(0);
  return Array.from({ length: n }, (_, i) => {
    const b = new Uint8Array(out.length(i));
    out.copySegment(i, b, 0);
    return b;
  });
}

describe('GroCoalescer', () => {
  for (const v6 of [false, true]) {
    it(`IPv${v6 ? 6 : 4}: one flow's segments become one super-packet that re-splits into the same bytes`, () => {
      const mss = v6 ? 1328 : 1348;
      const spec: TcpSpec = { v6, payload: pattern(60000), seq: 0xfffff000, flags: TCP_ACK | TCP_PSH | TCP_CWR | TCP_ECE, options: tsOption(9, 8), ident: 0xfff0 };
      const segs = streamSegments(spec, mss);
      const batch = new Batch();
      for (const s of segs) batch.add(s);
      const before = segs.map((_, i) => batch.bytes(i)); // the head is rewritten in place
      const g = batch.coalesce();
      expect(g.count).toBe(1);
      expect(g.segs[0]).toBe(segs.length);
      const { vnet, pkt } = entryBytes(g, 0);
      const ihl = v6 ? 40 : 20;
      expect([vnet.flags, vnet.gsoType, vnet.hdrLen, vnet.gsoSize, vnet.csumStart, vnet.csumOffset]).toEqual([
        VIRTIO_NET_HDR_F_NEEDS_CSUM, (v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4) | VIRTIO_NET_HDR_GSO_ECN, ihl + 32, mss, ihl, 16,
      ]);
      expect(pkt.length).toBe(ihl + 32 + spec.payload.length);
      // the TCP checksum field: folded, not complemented pseudo-header sum over the full length
      const t = new TcpPacket(pkt, ihl, pkt.length - ihl);
      const ps = v6 ? pseudoHeaderSumV6(pkt, 8, 24, 6, pkt.length - ihl) : pseudoHeaderSumV4(pkt, 12, 16, 6, pkt.length - ihl);
      expect(t.checksum).toBe(fold(ps));
      expect(t.flags).toBe(TCP_ACK | TCP_PSH | TCP_CWR | TCP_ECE);
      expect([...pkt.subarray(ihl + 32)]).toEqual([...spec.payload]);
      // round trip: split gives back exactly the segments that went in
      const again = resplit(g, 0);
      expect(again.length).toBe(segs.length);
      again.forEach((b, i) => expect(Buffer.from(b).equals(Buffer.from(before[i]!)), `segment ${i}`).toBe(true));
    });
  }

  it('the completed super-packet passes tshark with checksum validation', (ctx) => {
    const pkts: Uint8Array[] = [];
    for (const v6 of [false, true]) {
      const batch = new Batch();
      for (const s of streamSegments({ v6, payload: pattern(20000, 3), flags: TCP_ACK | TCP_PSH, options: tsOption(1, 2) }, 1300)) batch.add(s);
      const g = batch.coalesce();
      expect(g.count).toBe(1);
      const { vnet, pkt } = entryBytes(g, 0);
      const copy = pkt.slice();
      expect(completePartialChecksum(copy, 0, copy.length, vnet.csumStart, vnet.csumOffset)).toBe(true);
      pkts.push(copy);
    }
    const v = tsharkCheckPackets(pkts, { failOn: 'warning', ignore: [/previous segment not captured|ACKed segment/i] });
    if (!v.available) return ctx.skip(v.skipReason);
    expect(v.problems).toEqual([]);
  });

  it('merges interleaved flows apart and passes other packets through in order', () => {
    const batch = new Batch();
    const a = streamSegments({ v6: false, payload: pattern(5000, 1) }, 1000);
    const b = streamSegments({ v6: true, payload: pattern(4000, 2) }, 1000);
    const c = streamSegments({ v6: false, payload: pattern(3000, 3), srcPort: 40001 }, 1000);
    const udp = new Uint8Array(28);
    udp.set([0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0, 53, 0, 53, 0, 8, 0, 0]);
    for (let i = 0; i < 5; i++) {
      if (a[i]) batch.add(a[i]!);
      if (b[i]) batch.add(b[i]!);
      if (i === 1) batch.addRaw(udp);
      if (c[i]) batch.add(c[i]!);
    }
    const g = batch.coalesce();
    expect(g.count).toBe(4);
    expect([...g.segs.subarray(0, 4)]).toEqual([5, 4, 3, 1]);
    expect(g.headLen[3]).toBe(28);
    const plain = entryBytes(g, 3).vnet;
    expect([plain.flags, plain.gsoType, plain.hdrLen]).toEqual([0, 0, 28]); // never an all-zero header
    expect(g.stats).toMatchObject({ packets: 13, merged: 9, badChecksum: 0 });
  });

  describe('keeps apart what must not merge', () => {
    const base: TcpSpec = { v6: false, payload: pattern(1000), options: tsOption(5, 6) };
    /** Two segments: the second built from `second` over the continuing defaults. */
    const pair = (second: Partial<TcpSpec>, first: Partial<TcpSpec> = {}): number[] => {
      const batch = new Batch();
      batch.add({ ...base, ...first, seq: 1000 });
      batch.add({ ...base, seq: 2000, ident: 0x1235, ...second });
      const g = batch.coalesce();
      return [...g.segs.subarray(0, g.count)];
    };
    it('merges the plain continuation (the control case)', () => expect(pair({})).toEqual([2]));
    it('a sequence gap or overlap', () => {
      expect(pair({ seq: 2001 })).toEqual([1, 1]);
      expect(pair({ seq: 1999 })).toEqual([1, 1]);
    });
    it('a different ACK number, window, TTL, TOS or DF', () => {
      expect(pair({ ack: 778 })).toEqual([1, 1]);
      expect(pair({ window: 503 })).toEqual([1, 1]);
      expect(pair({ ttl: 63 })).toEqual([1, 1]);
      expect(pair({ tos: 4 })).toEqual([1, 1]);
      expect(pair({ df: false })).toEqual([1, 1]);
      expect(pair({ v6: true, ttl: 63 }, { v6: true })).toEqual([1, 1]);
      expect(pair({ v6: true, tos: 8 }, { v6: true })).toEqual([1, 1]);
    });
    it('different or non-timestamp options', () => {
      expect(pair({ options: tsOption(5, 7) })).toEqual([1, 1]);
      const sack = Uint8Array.from([1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
      expect(pair({ options: sack }, { options: sack })).toEqual([1, 1]);
      expect(pair({ options: undefined }, { options: undefined })).toEqual([2]);
    });
    it('SYN, FIN, RST, URG, CWR after the head, a different ECE; PSH only ends', () => {
      for (const f of [TCP_SYN, TCP_FIN, TCP_RST, TCP_URG, TCP_CWR, TCP_ECE]) expect(pair({ flags: TCP_ACK | f }), `flag ${f}`).toEqual([1, 1]);
      expect(pair({ flags: TCP_SYN })).toEqual([1, 1]);
      expect(pair({ flags: TCP_ACK | TCP_PSH })).toEqual([2]);
      expect(pair({}, { flags: TCP_ACK | TCP_PSH })).toEqual([1, 1]); // nothing after a PSH
      expect(pair({}, { flags: TCP_ACK | TCP_CWR })).toEqual([2]); // CWR on the head is fine
    });
    it('a larger segment after the head, anything after a short one', () => {
      expect(pair({ payload: pattern(1001) })).toEqual([1, 1]);
      expect(pair({ payload: pattern(999) })).toEqual([2]);
      const batch = new Batch();
      batch.add({ ...base, seq: 1000 });
      batch.add({ ...base, seq: 2000, payload: pattern(500) });
      batch.add({ ...base, seq: 2500, payload: pattern(500) });
      expect([...batch.coalesce().segs.subarray(0, 2)]).toEqual([2, 1]);
    });
    it('a pure ACK or a bad checksum closes the flow: nothing overtakes it', () => {
      const batch = new Batch();
      batch.add({ ...base, seq: 1000 });
      batch.add({ ...base, seq: 2000, payload: new Uint8Array(0) });
      batch.add({ ...base, seq: 2000 });
      expect([...batch.coalesce().segs.subarray(0, 3)]).toEqual([1, 1, 1]);
      const bad = new Batch();
      bad.add({ ...base, seq: 1000 });
      const i = bad.add({ ...base, seq: 2000 });
      bad.buf[bad.offs[i]! + bad.lens[i]! - 1]! ^= 1; // payload corrupted, checksum now wrong
      bad.add({ ...base, seq: 3000 });
      const g = bad.coalesce();
      expect([...g.segs.subarray(0, g.count)]).toEqual([1, 1, 1]);
      expect(g.stats.badChecksum).toBe(1);
    });
    it('an IPv4 header with a bad checksum, options, or a fragment', () => {
      const batch = new Batch();
      batch.add({ ...base, seq: 1000 });
      const i = batch.add({ ...base, seq: 2000 });
      batch.buf[batch.offs[i]! + 10]! ^= 0x10;
      const g = batch.coalesce();
      expect(g.count).toBe(2);
      expect(g.stats.badChecksum).toBe(1);
      const frag = new Batch();
      frag.add({ ...base, seq: 1000 });
      const j = frag.add({ ...base, seq: 2000, df: false });
      frag.buf[frag.offs[j]! + 6] = 0x20; // MF (header checksum now wrong too, either way apart)
      expect(frag.coalesce().count).toBe(2);
    });
    it(`at most ${GRO_MAX_SEGMENTS} segments and 65535 bytes per super-packet`, () => {
      const batch = new Batch();
      for (const s of streamSegments({ ...base, payload: pattern(100 * (GRO_MAX_SEGMENTS + 5)) }, 100)) batch.add(s);
      expect([...batch.coalesce().segs.subarray(0, 2)]).toEqual([GRO_MAX_SEGMENTS, 5]);
      const big = new Batch();
      for (const s of streamSegments({ ...base, options: undefined, payload: pattern(8000 * 9) }, 8000)) big.add(s);
      const g = big.coalesce();
      expect([...g.segs.subarray(0, g.count)]).toEqual([8, 1]);
      expect(g.total[0]).toBe(40 + 8 * 8000);
    });
  });

  it('a full batch says so (-1) and resets cleanly', () => {
    const g = new GroCoalescer(2);
    const batch = new Batch();
    batch.add({ v6: false, payload: pattern(10), seq: 1 });
    batch.add({ v6: false, payload: pattern(10), seq: 1, srcPort: 1 });
    batch.add({ v6: false, payload: pattern(10), seq: 1, srcPort: 2 });
    g.reset(batch.buf);
    expect(g.add(batch.offs[0]!, batch.lens[0]!)).toBe(0);
    expect(g.add(batch.offs[1]!, batch.lens[1]!)).toBe(1);
    expect(g.add(batch.offs[2]!, batch.lens[2]!)).toBe(-1);
    g.reset(batch.buf);
    expect(g.add(batch.offs[2]!, batch.lens[2]!)).toBe(0);
    expect(g.add(batch.offs[0]!, batch.lens[0]!)).toBe(1);
  });

  it('split then coalesce round-trips any stream (property: sizes, MSS, flags, options, two flows)', () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.integer({ min: 1, max: 64000 }),
        fc.integer({ min: 64, max: 9000 }),
        fc.subarray([TCP_PSH, TCP_FIN, TCP_CWR, TCP_ECE]),
        fc.boolean(),
        fc.nat({ max: 0xffffffff }),
        fc.integer({ min: 1, max: 20000 }),
        (v6, len, mss, extra, ts, seq, len2) => {
          const flags = TCP_ACK | extra.reduce((a, f) => a | f, 0);
          const spec: TcpSpec = { v6, payload: pattern(len, len), seq, flags, options: ts ? tsOption(seq, 3) : undefined };
          // the sender: a super-packet through the real splitter
          const sbuf = new Uint8Array(new SharedArrayBuffer(70000));
          const slen = writeSuper(spec, mss, sbuf, 12);
          const out = new SegmentList(1100);
          const n = new TsoSplitter().split(sbuf, 12, slen, new VnetHdr(sbuf, 2), out);
          if (n < 1) return false;
          // the receiver's batch: those segments interleaved with a second flow's
          const other = streamSegments({ v6: !v6, payload: pattern(len2, 7), srcPort: 999 }, 1200);
          const batch = new Batch();
          for (let i = 0; i < n; i++) {
            const b = new Uint8Array(out.length(i));
            out.copySegment(i, b, 0);
            batch.addRaw(b);
            if (other[i]) batch.add(other[i]!);
          }
          for (let i = n; i < other.length; i++) batch.add(other[i]!);
          const g = batch.coalesce();
          // every entry re-splits (or is) exactly the packets that went in, in order per flow
          const mine: Uint8Array[] = [];
          const theirs: Uint8Array[] = [];
          for (let e = 0; e < g.count; e++) {
            const pkts = g.segs[e]! > 1 ? resplit(g, e) : [entryBytes(g, e).pkt.slice()];
            const t = new TcpPacket(pkts[0]!, pkts[0]![0]! >> 4 === 6 ? 40 : 20);
            (t.srcPort === 999 ? theirs : mine).push(...pkts);
          }
          expect(mine.length).toBe(n);
          for (let i = 0; i < n; i++) {
            const b = new Uint8Array(out.length(i));
            out.copySegment(i, b, 0);
            expect(Buffer.from(mine[i]!).equals(Buffer.from(b)), `segment ${i}`).toBe(true);
          }
          expect(theirs.length).toBe(other.length);
          // it merged what it could: runs of GRO_MAX_SEGMENTS, and a last segment with FIN apart
          const fin = n > 1 && (flags & TCP_FIN) !== 0 ? 1 : 0;
          const mineEntries = [...Array(g.count).keys()].filter((e) => {
            const p = entryBytes(g, e).pkt;
            return new TcpPacket(p, p[0]! >> 4 === 6 ? 40 : 20).srcPort !== 999;
          }).length;
          expect(mineEntries).toBe(Math.ceil((n - fin) / GRO_MAX_SEGMENTS) + fin);
          return true;
        },
      ),
      { numRuns: 120 },
    );
  });

  it('never throws on random packets (property)', () => {
    const g = new GroCoalescer(64);
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 0, maxLength: 200 }), { maxLength: 40 }), fc.boolean(), (pkts, tcpish) => {
        const buf = new Uint8Array(new SharedArrayBuffer(40 * 210));
        g.reset(buf);
        let p = 0;
        for (const d of pkts) {
          buf.set(d, p);
          if (tcpish && d.length >= 40) {
            buf[p] = 0x45;
            buf[p + 9] = 6;
          }
          g.add(p, d.length);
          p += 210;
        }
        g.finish();
        for (let e = 0; e < g.count; e++) g.copyEntry(e, new Uint8Array(70000), 0);
        return g.count <= pkts.length;
      }),
      { numRuns: 300 },
    );
  });
});
