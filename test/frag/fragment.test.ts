import { afterEach, describe, expect, it } from 'vitest';
import { DropReason } from '../../src/base/drop-reason.ts';
import { BufferPool, PacketPools } from '../../src/base/pool.ts';
import { Fragmenter } from '../../src/frag/fragment.ts';
import { Reassembler } from '../../src/frag/reassembly.ts';
import { verify } from '../../src/wire/checksum.ts';
import { pattern, udpLike, v4, v6 } from './packets.ts';

const pools = new PacketPools({ small: { slots: 512 }, large: { slots: 8 } });

afterEach(() => {
  expect(pools.live).toBe(0);
});

function frags(f: Fragmenter): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < f.count; i++) out.push(Buffer.from(f.out[i]!.bytes()));
  return out;
}

// LSRR (copied, type 131) with one address, and record route (not copied, type 7) with room for 2.
const LSRR = [131, 7, 4, 10, 9, 9, 9];
const RR = [7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0];

describe('IPv4 fragmentation', () => {
  it('splits into 8-byte aligned pieces that fit the MTU, MF on all but the last', () => {
    const f = new Fragmenter({ pool: pools });
    const payload = udpLike(4008);
    const p = v4({ payload, proto: 1 });
    expect(f.fragmentV4(p, 0, p.length, 1400)).toBe(DropReason.None);
    const out = frags(f);
    // What the kernel did for ping -s 4000 over MTU 1400: 1396 + 1396 + 1276.
    expect(out.map((b) => b.length)).toEqual([1396, 1396, 1276]);
    expect(out.map((b) => (b.readUInt16BE(6) & 0x1fff) * 8)).toEqual([0, 1376, 2752]);
    expect(out.map((b) => (b.readUInt16BE(6) & 0x2000) !== 0)).toEqual([true, true, false]);
    for (const b of out) {
      expect(verify(b, 0, 20)).toBe(true);
      expect(b.readUInt16BE(4)).toBe(0x1234);
    }
    expect(Buffer.concat(out.map((b) => b.subarray(20)))).toEqual(payload);
    f.releaseAll();
  });

  it('keeps the pool headroom in front of every fragment', () => {
    const f = new Fragmenter({ pool: pools });
    const p = v4({ payload: pattern(3000) });
    f.fragmentV4(p, 0, p.length, 1280);
    for (let i = 0; i < f.count; i++) expect(f.out[i]!.offset).toBe(pools.small.headroom);
    f.releaseAll();
  });

  it('returns count 0 when the packet fits, DontFragment with the MTU when DF is set', () => {
    const f = new Fragmenter({ pool: pools });
    const small = v4({ payload: pattern(100) });
    expect(f.fragmentV4(small, 0, small.length, 1400)).toBe(DropReason.None);
    expect(f.count).toBe(0);
    const df = v4({ payload: pattern(1500), df: true });
    expect(f.fragmentV4(df, 0, df.length, 1400)).toBe(DropReason.DontFragment);
    expect(f.mtu).toBe(1400);
    expect(f.count).toBe(0);
    expect(f.fragmentV4(small, 0, small.length, 60)).toBe(DropReason.MtuTooSmall);
    expect(f.drops.get(DropReason.DontFragment)).toBe(1);
  });

  it('copies all options into the first fragment and only copied-flag options into the rest', () => {
    const f = new Fragmenter({ pool: pools });
    const payload = pattern(400);
    const p = v4({ payload, options: [...LSRR, ...RR] }); // 18 bytes -> padded to 20, ihl 40
    expect(f.fragmentV4(p, 0, p.length, 200)).toBe(DropReason.None);
    const out = frags(f);
    expect(out[0]!.subarray(20, 40)).toEqual(p.subarray(20, 40));
    for (const b of out.slice(1)) {
      expect(b[0]! & 15).toBe(7); // 20 + 8 (LSRR 7 + 1 pad)
      expect([...b.subarray(20, 27)]).toEqual(LSRR);
      expect(b[27]).toBe(0);
      expect(verify(b, 0, 28)).toBe(true);
    }
    // Reassembly gives back the original datagram (header from the first fragment).
    const r = new Reassembler({ pools, now: () => 0 });
    let whole = null;
    for (const b of out.reverse()) whole = r.submitV4(b, 0, b.length) ?? whole;
    expect(whole!.bytes()).toEqual(p);
    whole!.release();
    f.releaseAll();
  });

  it('fragments a fragment: keeps the offset base and MF of the original last piece', () => {
    const f = new Fragmenter({ pool: pools });
    const mid = v4({ payload: pattern(1000), mf: true, offset8: 100 });
    f.fragmentV4(mid, 0, mid.length, 500);
    let out = frags(f);
    expect(out.map((b) => (b.readUInt16BE(6) & 0x1fff) * 8)).toEqual([800, 1280, 1760]);
    expect(out.every((b) => (b.readUInt16BE(6) & 0x2000) !== 0)).toBe(true);
    f.releaseAll();
    const last = v4({ payload: pattern(1000), offset8: 100 });
    f.fragmentV4(last, 0, last.length, 500);
    out = frags(f);
    expect(out.map((b) => (b.readUInt16BE(6) & 0x2000) !== 0)).toEqual([true, true, false]);
    f.releaseAll();
  });

  it('works down to MTU 68 with a full 60-byte header', () => {
    const f = new Fragmenter({ pool: pools });
    const p = v4({ payload: pattern(1000), options: [...LSRR, ...RR, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0] });
    expect(p[0]! & 15).toBe(15);
    expect(f.fragmentV4(p, 0, p.length, 68)).toBe(DropReason.None);
    const out = frags(f);
    expect(out[0]!.length).toBe(68);
    for (const b of out) expect(b.length).toBeLessThanOrEqual(68);
    f.releaseAll();
  });

  it('releases every partial fragment on pool exhaustion', () => {
    const tiny = new BufferPool({ slotSize: 2048, slots: 2 });
    const f = new Fragmenter({ pool: tiny });
    const p = v4({ payload: pattern(5000) });
    expect(f.fragmentV4(p, 0, p.length, 1400)).toBe(DropReason.PoolExhausted);
    expect(f.count).toBe(0);
    expect(tiny.live).toBe(0);
  });

  it('rejects malformed input with a reason', () => {
    const f = new Fragmenter({ pool: pools });
    const p = v4({ payload: pattern(3000) });
    expect(f.fragmentV4(p, 0, 10, 1400)).toBe(DropReason.Truncated);
    expect(f.fragmentV4(p, 0, 2000, 1400)).toBe(DropReason.BadTotalLength);
    expect(f.fragmentV4(p, 100, p.length, 1400)).toBe(DropReason.Truncated);
  });
});

describe('IPv6 fragmentation', () => {
  it('inserts a fragment header after the IPv6 header, like the kernel at MTU 1400', () => {
    const f = new Fragmenter({ pool: pools });
    const payload = udpLike(4008);
    const p = v6({ payload, nh: 58 });
    expect(f.fragmentV6(p, 0, p.length, 1400)).toBe(DropReason.None);
    const out = frags(f);
    expect(out.map((b) => b.length)).toEqual([1400, 1400, 1352]);
    const id = out[0]!.readUInt32BE(44);
    for (const [i, b] of out.entries()) {
      expect(b[6]).toBe(44);
      expect(b[40]).toBe(58);
      expect(b.readUInt16BE(4)).toBe(b.length - 40);
      expect(b.readUInt16BE(42) & 0xfff8).toBe(i * 1352);
      expect(b.readUInt16BE(42) & 1).toBe(i < 2 ? 1 : 0);
      expect(b.readUInt32BE(44)).toBe(id);
    }
    expect(Buffer.concat(out.map((b) => b.subarray(48)))).toEqual(payload);
    f.releaseAll();
  });

  it('puts the fragment header after hop-by-hop, destination options and the routing header', () => {
    const f = new Fragmenter({ pool: pools });
    const payload = udpLike(3000);
    // HBH, dest opts (before routing: unfragmentable), routing, dest opts (after routing: fragmentable)
    const ext: Array<[number, number]> = [
      [0, 8],
      [60, 16],
      [43, 24],
      [60, 8],
    ];
    const p = v6({ payload, ext });
    expect(f.fragmentV6(p, 0, p.length, 1280)).toBe(DropReason.None);
    const out = frags(f);
    const unfrag = 40 + 8 + 16 + 24;
    for (const b of out) {
      expect(b.subarray(6, 40 + 8 + 16).equals(p.subarray(6, 40 + 8 + 16))).toBe(true);
      expect(b.readUInt16BE(4)).toBe(b.length - 40);
      expect(b[40 + 8 + 16]).toBe(44); // routing header's next header now names the fragment header
      expect(b[unfrag]).toBe(60); // the fragment header's next header: the second dest opts
      expect(b.length).toBeLessThanOrEqual(1280);
    }
    const r = new Reassembler({ pools, now: () => 0 });
    let whole = null;
    for (const b of out.reverse()) whole = r.submitV6(b, 0, b.length) ?? whole;
    expect(whole!.bytes()).toEqual(p);
    whole!.release();
    f.releaseAll();
  });

  it('keeps a destination options header with a Home Address option unfragmentable (RFC 6275 6.3)', () => {
    const f = new Fragmenter({ pool: pools });
    const payload = udpLike(3000);
    const p = v6({ payload, ext: [[60, 24]] });
    // Rewrite the options area: PadN(2) then the Home Address option (type 0xc9, 16 bytes) at 8n+6.
    p.set([1, 0, 0xc9, 16, ...Array.from({ length: 16 }, (_, i) => 0x20 + i)], 42);
    expect(f.fragmentV6(p, 0, p.length, 1280)).toBe(DropReason.None);
    const out = frags(f);
    for (const b of out) {
      expect(b[40]).toBe(44); // the dest opts header's next header names the fragment header
      expect(b[64]).toBe(17);
    }
    const r = new Reassembler({ pools, now: () => 0 });
    let whole = null;
    for (const b of out) whole = r.submitV6(b, 0, b.length) ?? whole;
    expect(whole!.bytes()).toEqual(p);
    whole!.release();
    f.releaseAll();
  });

  it('refuses MTUs below 1280 unless asked to fit a smaller outer MTU', () => {
    const f = new Fragmenter({ pool: pools });
    const p = v6({ payload: pattern(2000) });
    expect(f.fragmentV6(p, 0, p.length, 1000)).toBe(DropReason.MtuTooSmall);
    expect(f.fragmentV6(p, 0, p.length, 1000, true)).toBe(DropReason.None);
    expect(f.count).toBe(3);
    f.releaseAll();
    expect(f.fragmentV6(p, 0, p.length, 50, true)).toBe(DropReason.MtuTooSmall);
  });

  it('does not fragment a packet that already carries a fragment header', () => {
    const f = new Fragmenter({ pool: pools });
    const p = v6({ payload: pattern(2000), frag: { offset: 0, more: true, id: 1 } });
    expect(f.fragmentV6(p, 0, p.length, 1280)).toBe(DropReason.PacketTooBig);
  });

  it('draws unpredictable, distinct identifications from a refilled random block', () => {
    const f = new Fragmenter({ pool: pools });
    const ids = new Set<number>();
    for (let i = 0; i < 3000; i++) ids.add(f.nextIdentification()); // crosses several refills
    expect(ids.size).toBeGreaterThan(2990);
    expect(ids.has(0)).toBe(false);
    const g = new Fragmenter({ pool: pools });
    expect(g.nextIdentification()).not.toBe(new Fragmenter({ pool: pools }).nextIdentification());
  });
});
