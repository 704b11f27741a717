/**
 * Reassembly and fragmentation against real Linux kernel fragments (test/fixtures/kernel):
 * `ping -s 4000` over MTU 1400 and the kernel's fragmented echo replies, IPv4 and IPv6.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DropReason } from '../../src/base/drop-reason.ts';
import { PacketPools } from '../../src/base/pool.ts';
import { Fragmenter } from '../../src/frag/fragment.ts';
import { Reassembler, ReassemblyStatus } from '../../src/frag/reassembly.ts';
import { pseudoHeaderSumV4, pseudoHeaderSumV6, verify } from '../../src/wire/checksum.ts';
import { kernelFixture } from '../support/pcap.ts';

const pools = new PacketPools({ small: { slots: 64 }, large: { slots: 4 } });

afterEach(() => {
  expect(pools.live).toBe(0);
});

function reassemble(frags: Buffer[], family: 4 | 6, order: number[]) {
  const r = new Reassembler({ pools, now: () => 0 });
  let out = null;
  for (const i of order) {
    const b = frags[i]!;
    const got = family === 4 ? r.submitV4(b, 0, b.length) : r.submitV6(b, 0, b.length);
    if (got) out = got;
    else expect(r.lastStatus).toBe(ReassemblyStatus.Held);
  }
  expect(r.inProgress).toBe(0);
  return out!;
}

describe('kernel IPv4 fragments', () => {
  for (const [name, dataLen, type] of [
    ['ping4-frag', 4000, 8],
    ['icmp4-echo-reply-frag', 3000, 0],
    ['udp4-frag', 3000, -1],
  ] as const) {
    it(`${name}: reassembles in every order, and our fragmentation to MTU 1400 equals the kernel's`, () => {
      const frags = kernelFixture(name);
      for (const order of [[0, 1, 2], [2, 1, 0], [1, 0, 2], [2, 0, 1]]) {
        const p = reassemble(frags, 4, order);
        const b = p.bytes();
        expect(b.length).toBe(20 + 8 + dataLen);
        expect(b.readUInt16BE(2)).toBe(b.length);
        expect(b.readUInt16BE(6) & 0x3fff).toBe(0); // MF and offset cleared
        expect(b.readUInt16BE(4)).toBe(frags[0]!.readUInt16BE(4));
        expect(verify(b, 0, 20)).toBe(true);
        if (type >= 0) {
          expect(b[9]).toBe(1);
          expect(b[20]).toBe(type);
          expect(verify(b, 20, b.length - 20)).toBe(true); // ICMP checksum over the whole message
        } else {
          expect(b[9]).toBe(17);
          expect(b.readUInt16BE(24)).toBe(b.length - 20); // UDP length
          expect(verify(b, 20, b.length - 20, pseudoHeaderSumV4(b, 12, 16, 17, b.length - 20))).toBe(true);
        }
        // Payload = the fragments' payloads in offset order.
        expect(b.subarray(20).equals(Buffer.concat(frags.map((f) => f.subarray(20))))).toBe(true);

        const f = new Fragmenter({ pool: pools });
        expect(f.fragmentV4(b, 0, b.length, 1400)).toBe(DropReason.None);
        expect(f.count).toBe(frags.length);
        for (let i = 0; i < f.count; i++) expect(f.out[i]!.bytes().equals(frags[i]!)).toBe(true);
        f.releaseAll();
        p.release();
      }
    });
  }
});

describe('kernel IPv6 fragments', () => {
  for (const [name, dataLen, type] of [
    ['ping6-frag', 4000, 128],
    ['icmp6-echo-reply-frag', 3000, 129],
  ] as const) {
    it(`${name}: reassembles in every order, and our fragmentation to MTU 1400 matches the kernel's but for the id`, () => {
      const frags = kernelFixture(name);
      for (const order of [[0, 1, 2], [2, 1, 0], [1, 2, 0]]) {
        const p = reassemble(frags, 6, order);
        const b = p.bytes();
        expect(b.length).toBe(40 + 8 + dataLen);
        expect(b.readUInt16BE(4)).toBe(8 + dataLen);
        expect(b[6]).toBe(58);
        expect(b.subarray(8, 40).equals(frags[0]!.subarray(8, 40))).toBe(true);
        expect(b[40]).toBe(type);
        const ph = pseudoHeaderSumV6(b, 8, 24, 58, b.length - 40);
        expect(verify(b, 40, b.length - 40, ph)).toBe(true);
        expect(b.subarray(40).equals(Buffer.concat(frags.map((f) => f.subarray(48))))).toBe(true);

        const f = new Fragmenter({ pool: pools });
        expect(f.fragmentV6(b, 0, b.length, 1400)).toBe(DropReason.None);
        expect(f.count).toBe(frags.length);
        for (let i = 0; i < f.count; i++) {
          const ours = Buffer.from(f.out[i]!.bytes());
          const theirs = frags[i]!;
          expect(ours.length).toBe(theirs.length);
          expect(ours.readUInt16BE(42)).toBe(theirs.readUInt16BE(42)); // offset + M
          ours.writeUInt32BE(theirs.readUInt32BE(44), 44); // identification differs by design
          expect(ours.equals(theirs)).toBe(true);
        }
        f.releaseAll();
        p.release();
      }
    });
  }
});

describe('kernel IPv6 fragments with extension headers', () => {
  it('udp6-exthdrs-frag: reassembles (HBH + DST kept from the first fragment); ours put the fragment header after HBH', () => {
    const frags = kernelFixture('udp6-exthdrs-frag');
    const whole = kernelFixture('udp6-exthdrs')[0]!;
    for (const order of [[0, 1, 2], [2, 0, 1]]) {
      const p = reassemble(frags, 6, order);
      const b = p.bytes();
      // Linux keeps the destination options header in the unfragmentable part: after reassembly the
      // chain is IPv6, HBH, DST, UDP — the same chain as the unfragmented kernel packet.
      const hbhLen = (b[41]! + 1) * 8;
      const dstAt = 40 + hbhLen;
      expect(b[6]).toBe(0);
      expect(b[40]).toBe(60);
      expect(b[dstAt]).toBe(17);
      const dstLen = (b[dstAt + 1]! + 1) * 8;
      expect(b.subarray(40, dstAt + dstLen).equals(whole.subarray(40, dstAt + dstLen))).toBe(true);
      const udpAt = dstAt + dstLen;
      expect(b.readUInt16BE(4)).toBe(b.length - 40);
      expect(b.readUInt16BE(udpAt + 4)).toBe(b.length - udpAt);
      expect(verify(b, udpAt, b.length - udpAt, pseudoHeaderSumV6(b, 8, 24, 17, b.length - udpAt))).toBe(true);

      // RFC 8200 4.5: a destination options header not followed by a routing header is
      // fragmentable, so our fragment header goes right after hop-by-hop (Linux differs here).
      const f = new Fragmenter({ pool: pools });
      expect(f.fragmentV6(b, 0, b.length, 1400)).toBe(DropReason.None);
      const r = new Reassembler({ pools, now: () => 0 });
      let again = null;
      for (let i = f.count - 1; i >= 0; i--) {
        const o = f.out[i]!;
        expect(o.length).toBeLessThanOrEqual(1400);
        expect(o.buf[o.offset + 40]).toBe(44);
        again = r.submitV6(o.buf, o.offset, o.length) ?? again;
      }
      expect(again!.bytes().equals(b)).toBe(true);
      again!.release();
      f.releaseAll();
      p.release();
    }
  });
});
