/**
 * The offload code on packets the kernel really handed out (test/fixtures/offload): super-packets
 * split into segments that the wire views and tshark (checksum validation on) accept, NEEDS_CSUM
 * packets completed, and the segments coalesced back into a super-packet whose virtio header and
 * partial TCP checksum are the ones the kernel itself wrote.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GroCoalescer } from '../../src/device/gro-coalesce.ts';
import { completePartialChecksum, SegmentList, TsoSplitter } from '../../src/device/tso-split.ts';
import { VnetHdr, VNET_HDR_LEN, VIRTIO_NET_HDR_GSO_NONE, VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_TCPV6 } from '../../src/sys/virtio-net-hdr.ts';
import { Ipv4Packet } from '../../src/wire/ipv4.ts';
import { TcpPacket } from '../../src/wire/tcp.ts';
import { readPcap } from '../support/pcap.ts';
import { tsharkCheckPackets } from '../support/tshark.ts';

const DIR = new URL('../fixtures/offload/', import.meta.url).pathname;
interface Manifest {
  kernel: string;
  fixtures: { file: string; packets: { vnet: string; length: number }[] }[];
}
const manifest = JSON.parse(readFileSync(DIR + 'manifest.json', 'utf8')) as Manifest;

interface Fixture {
  vnet: Uint8Array;
  ip: Uint8Array;
}

function load(file: string): Fixture[] {
  const pkts = readPcap(DIR + file).packets;
  const meta = manifest.fixtures.find((f) => f.file === file)!.packets;
  expect(pkts.length).toBe(meta.length);
  return pkts.map((p, i) => {
    expect(p.data.length).toBe(meta[i]!.length);
    return { vnet: Uint8Array.from(Buffer.from(meta[i]!.vnet, 'hex')), ip: p.data };
  });
}

/** [vnet][packet] in a shared buffer at a 2-mod-4 offset, as a TUN read lands. */
function place(f: Fixture): { buf: Uint8Array; ipOff: number; hdr: VnetHdr } {
  const buf = new Uint8Array(new SharedArrayBuffer(f.ip.length + 64));
  const ipOff = 18;
  buf.set(f.vnet, ipOff - VNET_HDR_LEN);
  buf.set(f.ip, ipOff);
  return { buf, ipOff, hdr: new VnetHdr(buf, ipOff - VNET_HDR_LEN) };
}

function tcpOk(p: Uint8Array): boolean {
  const v6 = p[0]! >> 4 === 6;
  const t = new TcpPacket(p, v6 ? 40 : 20, p.length - (v6 ? 40 : 20));
  return v6 ? t.verifyChecksumV6(p, 8, 24) : t.verifyChecksumV4(p, 12, 16);
}

for (const family of [4, 6] as const) {
  describe(`kernel offload fixture tcp${family}-tso.pcap`, () => {
    const fx = load(`tcp${family}-tso.pcap`);
    const gsoType = family === 4 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6;
    const supers = fx.filter((f) => new VnetHdr(f.vnet, 0).gsoType !== VIRTIO_NET_HDR_GSO_NONE);

    it('holds the super-packets and NEEDS_CSUM packets the README describes', () => {
      expect(supers.length).toBeGreaterThanOrEqual(3);
      for (const s of supers) {
        const h = new VnetHdr(s.vnet, 0);
        expect([h.flags, h.gsoType, h.gsoSize, h.csumStart, h.csumOffset]).toEqual([1, gsoType, family === 4 ? 1348 : 1328, family === 4 ? 20 : 40, 16]);
        expect(s.ip.length).toBe((family === 4 ? 52 : 72) + 4000);
      }
      expect(fx.some((f) => new VnetHdr(f.vnet, 0).flags === 1 && new VnetHdr(f.vnet, 0).gsoType === 0)).toBe(true);
    });

    it('splits every super-packet into segments tshark and the views accept', (ctx) => {
      const out: Uint8Array[] = [];
      for (const s of supers) {
        const { buf, ipOff, hdr } = place(s);
        const segs = new SegmentList(16);
        const n = new TsoSplitter().split(buf, ipOff, s.ip.length, hdr, segs);
        expect(n).toBe(Math.ceil(4000 / hdr.gsoSize));
        let payload = 0;
        for (let i = 0; i < n; i++) {
          const b = new Uint8Array(segs.length(i));
          segs.copySegment(i, b, 0);
          expect(b.length).toBeLessThanOrEqual(1400);
          expect(tcpOk(b)).toBe(true);
          if (family === 4) expect(new Ipv4Packet(b, 0, b.length).verifyChecksum()).toBe(true);
          payload += segs.payLen[i]!;
          out.push(b);
        }
        expect(payload).toBe(4000);
      }
      const v = tsharkCheckPackets(out, { failOn: 'warning', ignore: [/previous segment not captured|ACKed segment|out-of-order|Retransmission/i] });
      if (!v.available) return ctx.skip(v.skipReason);
      expect(v.problems).toEqual([]);
    });

    it('completes the NEEDS_CSUM packets to valid checksums; flags-0 packets are valid as they are', () => {
      for (const f of fx) {
        const h = new VnetHdr(f.vnet, 0);
        if (h.gsoType !== 0) continue;
        const p = f.ip.slice();
        if (h.needsCsum) {
          expect(tcpOk(p)).toBe(false); // only the pseudo-header sum is there
          expect(completePartialChecksum(p, 0, p.length, h.csumStart, h.csumOffset)).toBe(true);
          expect(tcpOk(p)).toBe(true);
        }
      }
    });

    it('coalescing the segments rebuilds the kernel\'s own virtio header and partial checksum', () => {
      for (const s of supers) {
        const { buf, ipOff, hdr } = place(s);
        const segs = new SegmentList(16);
        const n = new TsoSplitter().split(buf, ipOff, s.ip.length, hdr, segs);
        const area = new Uint8Array(new SharedArrayBuffer(8192));
        const g = new GroCoalescer(16);
        g.reset(area);
        let p = 2;
        for (let i = 0; i < n; i++) {
          const len = segs.copySegment(i, area, p);
          g.add(p, len);
          p = ((p + len + 3) & ~3) + 2;
        }
        g.finish();
        expect(g.count).toBe(1);
        const back = new Uint8Array(s.ip.length + VNET_HDR_LEN);
        expect(g.copyEntry(0, back, 0)).toBe(back.length);
        // byte for byte the kernel's super-packet (IP ID of the head, TCP partial sum included)
        expect(Buffer.from(back.subarray(VNET_HDR_LEN)).equals(Buffer.from(s.ip))).toBe(true);
        const ours = new VnetHdr(back, 0);
        const theirs = new VnetHdr(s.vnet, 0);
        expect([ours.flags, ours.gsoType, ours.hdrLen, ours.gsoSize, ours.csumStart, ours.csumOffset]).toEqual([
          theirs.flags, theirs.gsoType, theirs.hdrLen, theirs.gsoSize, theirs.csumStart, theirs.csumOffset,
        ]);
      }
    });
  });
}
