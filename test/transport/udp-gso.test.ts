/**
 * GsoUdpSocket on loopback through the kernel: a TCP super-packet split into segments leaves in
 * UDP GSO messages (two iovecs per segment: header, payload in place; at most 65507 bytes per
 * message, so a 64 KB super-packet takes two messages in one sendmmsg), arrives through UDP_GRO
 * as chunks tagged with the segment size, is cut back into datagrams that are exactly the
 * segments, and those coalesce into the original super-packet. The whole fast path minus the
 * TUNs, with the kernel's UDP in the middle.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { GroCoalescer } from '../../src/device/gro-coalesce.ts';
import { SegmentList, TsoSplitter } from '../../src/device/tso-split.ts';
import { GsoUdpSocket, UDP_GSO_MAX_SEGMENTS, UDP_MAX_PAYLOAD_V4, UDP_MAX_PAYLOAD_V6 } from '../../src/transport/udp-gso.ts';
import { sysLibc, sysUnavailableReason } from '../../src/sys/libc.ts';
import { SysMemory } from '../../src/sys/memory.ts';
import { MmsgVector } from '../../src/sys/msg.ts';
import { VnetHdr, VNET_HDR_LEN } from '../../src/sys/virtio-net-hdr.ts';
import { pattern, tsOption, writeSuper } from '../device/tcp-super.ts';
import { TCP_ACK, TCP_PSH } from '../../src/wire/tcp.ts';

const libc = sysLibc();
const skip = libc ? '' : `fast path unavailable: ${sysUnavailableReason()}`;
const LO4 = Uint8Array.of(127, 0, 0, 1);
const LO6 = Uint8Array.from({ length: 16 }, (_, i) => (i === 15 ? 1 : 0));
const open: GsoUdpSocket[] = [];
afterAll(() => open.forEach((s) => s.close()));

function sock(mem: SysMemory, family: 4 | 6, gro = true): GsoUdpSocket {
  const r = GsoUdpSocket.open(libc!, mem, { family, address: family === 4 ? LO4 : LO6, port: 0, gro, sendBuffer: 4 << 20, receiveBuffer: 4 << 20 });
  if (!r.ok) throw new Error(r.reason);
  open.push(r.sock);
  return r.sock;
}

describe('GsoUdpSocket', () => {
  it('opens with GSO and GRO, reports its port; fails soft with a reason', (ctx) => {
    if (skip) return ctx.skip(skip);
    const mem = new SysMemory(libc!, 65536);
    const a = sock(mem, 4);
    expect([a.gso, a.gro, a.port > 0]).toEqual([true, true, true]);
    expect(GsoUdpSocket.open(libc!, mem, { family: 4, address: LO6, port: 0 })).toEqual({ ok: false, reason: 'IPv4 address must be 4 bytes' });
    expect(GsoUdpSocket.open(libc!, mem, { family: 4, address: LO4, port: a.port })).toEqual({ ok: false, reason: `bind port ${a.port}: EADDRINUSE` });
    const b = sock(mem, 6, false);
    expect([b.gso, b.gro]).toEqual([true, false]);
  });

  for (const family of [4, 6] as const) {
    it(`IPv${family}: split -> GSO sendmmsg -> GRO recvmmsg -> the same segments -> coalesced back to the super-packet`, (ctx) => {
      if (skip) return ctx.skip(skip);
      const mem = new SysMemory(libc!, 8 << 20);
      const rx = sock(mem, family);
      const tx = sock(mem, family);
      expect(tx.connect(family === 4 ? LO4 : LO6, rx.port)).toBe(0);

      // the super-packet as a TUN read leaves it: [vnet][IP], the IP header 2 past a 4-byte boundary
      const v6 = family === 6;
      const mss = v6 ? 1328 : 1348;
      const superOff = mem.alloc(70000) + 16 + 2;
      const spec = { v6, payload: pattern(65000 - (v6 ? 72 : 52), 4), flags: TCP_ACK | TCP_PSH, options: tsOption(1, 2), seq: 123 };
      const superLen = writeSuper(spec, mss, mem.u8, superOff);
      const original = mem.u8.slice(superOff, superOff + superLen);
      const segs = new SegmentList(64, mem.u8, mem.alloc(64 * 128));
      const n = new TsoSplitter().split(mem.u8, superOff, superLen, new VnetHdr(mem.u8, superOff - VNET_HDR_LEN), segs);
      expect(n).toBe(Math.ceil(spec.payload.length / mss));

      // pack segments into GSO messages: equal segment size, <= the datagram limit, <= 64 segments
      const segLen = segs.hdrLen + mss;
      const perMsg = Math.min(UDP_GSO_MAX_SEGMENTS, Math.floor((v6 ? UDP_MAX_PAYLOAD_V6 : UDP_MAX_PAYLOAD_V4) / segLen));
      const msgs = Math.ceil(n / perMsg);
      expect(msgs).toBe(2); // a 64 KB super-packet does not fit one datagram
      const vec = new MmsgVector(mem, 4, 2 * perMsg);
      for (let m = 0; m < msgs; m++) {
        let k = 0;
        for (let i = m * perMsg; i < Math.min(n, (m + 1) * perMsg); i++) {
          vec.setIov(m, k++, mem.addr(segs.hdrOff(i)), segs.hdrLen);
          vec.setIov(m, k++, mem.addr(segs.payOff[i]!), segs.payLen[i]!);
        }
        vec.setIovCount(m, k);
        vec.setNameLen(m, 0); // connected
        vec.setSegmentSize(m, segLen);
      }
      expect(tx.sendmmsg(vec, msgs)).toBe(msgs);

      // receive: GRO chunks of up to 64 KiB, each tagged with the segment size
      const CHUNK = 65536 + 256;
      const rvec = new MmsgVector(mem, 8, 1);
      const area = mem.alloc(8 * CHUNK);
      for (let i = 0; i < 8; i++) {
        rvec.setIov(i, 0, mem.addr(area + i * CHUNK), CHUNK);
        rvec.setIovCount(i, 1);
      }
      const gro = new GroCoalescer(256);
      gro.reset(mem.u8);
      const datagrams: Uint8Array[] = [];
      let chunks = 0;
      for (let tries = 0; tries < 1000 && datagrams.length < n; tries++) {
        const got = rx.recvmmsg(rvec, 8);
        expect(got).toBeGreaterThanOrEqual(0);
        for (let i = 0; i < got; i++) {
          chunks++;
          const len = rvec.received(i);
          const size = rvec.groSegmentSize(i) || len;
          for (let o = 0; o < len; o += size) {
            const off = area + i * CHUNK + o;
            const dl = Math.min(size, len - o);
            datagrams.push(mem.u8.slice(off, off + dl));
            expect(gro.add(off, dl)).toBe(0); // all one entry
          }
        }
      }
      expect(datagrams.length).toBe(n);
      expect(chunks).toBeLessThan(n); // GRO handed them over in chunks
      for (let i = 0; i < n; i++) {
        const b = new Uint8Array(segs.length(i));
        segs.copySegment(i, b, 0);
        expect(Buffer.from(datagrams[i]!).equals(Buffer.from(b)), `segment ${i}`).toBe(true);
      }
      gro.finish();
      const back = new Uint8Array(superLen + VNET_HDR_LEN);
      expect(gro.copyEntry(0, back, 0)).toBe(back.length);
      expect(Buffer.from(back.subarray(VNET_HDR_LEN)).equals(Buffer.from(original))).toBe(true);
    });
  }
});
