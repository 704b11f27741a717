import { afterEach, describe, expect, it } from 'vitest';
import { DropReason } from '../../src/base/drop-reason.ts';
import { PacketPools } from '../../src/base/pool.ts';
import { Reassembler, ReassemblyStatus, type ReassemblyOptions } from '../../src/frag/reassembly.ts';
import { verify } from '../../src/wire/checksum.ts';
import { pattern, udpLike, v4, v6 } from './packets.ts';

const pools = new PacketPools({ small: { slots: 256 }, large: { slots: 16 } });

afterEach(() => {
  expect(pools.live).toBe(0);
});

function engine(extra: Partial<ReassemblyOptions> = {}) {
  let t = 1000;
  const quotes: Array<{ family: number; bytes: Buffer }> = [];
  const r = new Reassembler({
    pools,
    now: () => t,
    onTimeExceeded: (family, buf, off, len) => quotes.push({ family, bytes: Buffer.from(buf.subarray(off, off + len)) }),
    ...extra,
  });
  return { r, quotes, advance: (ms: number) => (t += ms), now: () => t };
}

/** Split an IPv4 datagram's payload by hand: pieces of [offsetBytes, length, more]. */
function v4frags(payload: Buffer, cuts: Array<[number, number, boolean]>, base: Partial<Parameters<typeof v4>[0]> = {}) {
  return cuts.map(([o, l, mf]) => v4({ ...base, payload: payload.subarray(o, o + l), mf, offset8: o / 8 }));
}

function v6frags(payload: Buffer, cuts: Array<[number, number, boolean]>, id = 7, base: Partial<Parameters<typeof v6>[0]> = {}) {
  return cuts.map(([o, l, more]) => v6({ ...base, payload: payload.subarray(o, o + l), frag: { offset: o, more, id } }));
}

function submit4(r: Reassembler, p: Buffer) {
  return r.submitV4(p, 0, p.length);
}
function submit6(r: Reassembler, p: Buffer) {
  return r.submitV6(p, 0, p.length);
}

describe('IPv4 reassembly', () => {
  it('reassembles in any order and rebuilds the header (length, MF/offset cleared, checksum)', () => {
    const payload = udpLike(3000);
    const whole = v4({ payload });
    const frags = v4frags(payload, [
      [0, 1480, true],
      [1480, 1480, true],
      [2960, 40, false],
    ]);
    for (const order of [[0, 1, 2], [2, 1, 0], [1, 2, 0]]) {
      const { r } = engine();
      let out = null;
      for (const i of order) {
        out = submit4(r, frags[i]!);
        if (i !== order[2]) expect(r.lastStatus).toBe(ReassemblyStatus.Held);
      }
      expect(r.lastStatus).toBe(ReassemblyStatus.Complete);
      expect(out).not.toBeNull();
      expect(out!.bytes()).toEqual(whole);
      expect(verify(out!.buf, out!.offset, 20)).toBe(true);
      expect(r.inProgress).toBe(0);
      expect(r.memory).toBe(0);
      out!.release();
    }
  });

  it('accepts exact duplicates silently and counts them', () => {
    const { r } = engine();
    const payload = udpLike(200);
    const f = v4frags(payload, [
      [0, 96, true],
      [96, 104, false],
    ]);
    expect(submit4(r, f[0]!)).toBeNull();
    expect(submit4(r, f[0]!)).toBeNull();
    expect(r.lastStatus).toBe(ReassemblyStatus.Duplicate);
    expect(r.duplicates).toBe(1);
    expect(r.drops.get(DropReason.FragmentDuplicate)).toBe(1);
    const out = submit4(r, f[1]!)!;
    expect(out.bytes()).toEqual(v4({ payload }));
    out.release();
  });

  it('returns NotFragment for an unfragmented packet and never holds it', () => {
    const { r } = engine();
    const p = v4({ payload: udpLike(100) });
    expect(submit4(r, p)).toBeNull();
    expect(r.lastStatus).toBe(ReassemblyStatus.NotFragment);
    expect(r.inProgress).toBe(0);
  });

  it('drops the whole datagram on any overlap and remembers nothing', () => {
    const { r } = engine();
    const payload = udpLike(64);
    expect(submit4(r, v4({ payload: payload.subarray(0, 32), mf: true }))).toBeNull();
    expect(r.inProgress).toBe(1);
    // [16, 48) overlaps [0, 32) without being a duplicate
    submit4(r, v4({ payload: payload.subarray(16, 48), mf: true, offset8: 2 }));
    expect(r.lastStatus).toBe(ReassemblyStatus.Dropped);
    expect(r.lastReason).toBe(DropReason.FragmentOverlap);
    expect(r.inProgress).toBe(0);
    expect(r.memory).toBe(0);
    // A later fragment starts a fresh datagram (the old data is gone).
    submit4(r, v4({ payload: payload.subarray(32, 64), offset8: 4 }));
    expect(r.lastStatus).toBe(ReassemblyStatus.Held);
    r.clear();
  });

  it('drops a datagram that would pass 65535 bytes (ping of death)', () => {
    const { r } = engine();
    submit4(r, v4({ payload: udpLike(64), mf: true }));
    submit4(r, v4({ payload: pattern(100), offset8: 8185 })); // 65480 + 100 + 20 > 65535
    expect(r.lastReason).toBe(DropReason.FragmentTooBig);
    expect(r.inProgress).toBe(0);
  });

  it('drops conflicting last-fragment ends and data beyond the end', () => {
    const { r } = engine();
    const p = pattern(256);
    submit4(r, v4({ payload: p.subarray(0, 64), mf: true }));
    submit4(r, v4({ payload: p.subarray(128, 160), offset8: 16 })); // end 160
    submit4(r, v4({ payload: p.subarray(128, 192), offset8: 16 })); // end 192: conflict
    expect(r.lastReason).toBe(DropReason.FragmentConflictingEnd);
    expect(r.inProgress).toBe(0);

    submit4(r, v4({ payload: p.subarray(64, 128), offset8: 8, mf: true })); // [64,128)
    submit4(r, v4({ payload: p.subarray(16, 48), offset8: 2 })); // last fragment ending before 128
    expect(r.lastReason).toBe(DropReason.FragmentConflictingEnd);
    expect(r.inProgress).toBe(0);

    submit4(r, v4({ payload: p.subarray(0, 32), offset8: 0, mf: true, id: 9 }));
    submit4(r, v4({ payload: p.subarray(64, 80), offset8: 8, id: 9 })); // end 80
    submit4(r, v4({ payload: p.subarray(80, 96), offset8: 10, id: 9, mf: true })); // beyond the end
    expect(r.lastReason).toBe(DropReason.FragmentConflictingEnd);
    expect(r.inProgress).toBe(0);
  });

  it('rejects a non-last fragment whose length is not a non-zero multiple of 8', () => {
    const { r } = engine();
    submit4(r, v4({ payload: pattern(30), mf: true }));
    expect(r.lastReason).toBe(DropReason.FragmentBadLength);
    submit4(r, v4({ payload: pattern(0), mf: true, offset8: 3 }));
    expect(r.lastReason).toBe(DropReason.FragmentBadLength);
    expect(r.inProgress).toBe(0);
  });

  it('keeps datagrams apart by (src, dst, protocol, id)', () => {
    const { r } = engine();
    const a = udpLike(64, 1);
    const b = udpLike(64, 2);
    const keyA = { id: 5, proto: 17 };
    const keyB = { id: 5, proto: 1 }; // same id, other protocol
    submit4(r, v4({ ...keyA, payload: a.subarray(0, 32), mf: true }));
    submit4(r, v4({ ...keyB, payload: b.subarray(0, 32), mf: true }));
    submit4(r, v4({ ...keyB, src: [10, 0, 0, 9], payload: b.subarray(32), offset8: 4 }));
    expect(r.inProgress).toBe(3);
    const outA = submit4(r, v4({ ...keyA, payload: a.subarray(32), offset8: 4 }))!;
    expect(outA.bytes()).toEqual(v4({ ...keyA, payload: a }));
    const outB = submit4(r, v4({ ...keyB, payload: b.subarray(32), offset8: 4 }))!;
    expect(outB.bytes()).toEqual(v4({ ...keyB, payload: b }));
    outA.release();
    outB.release();
    expect(r.inProgress).toBe(1);
    r.clear();
  });

  it('RFC 1858: drops TCP fragments at offset 8 bytes and TCP first fragments without the flags', () => {
    const { r } = engine();
    submit4(r, v4({ proto: 6, payload: pattern(16), offset8: 1, mf: true }));
    expect(r.lastReason).toBe(DropReason.FragmentTiny);
    submit4(r, v4({ proto: 6, payload: pattern(8), mf: true }));
    expect(r.lastReason).toBe(DropReason.FragmentTiny);
    // UDP at offset 8 is fine.
    submit4(r, v4({ proto: 17, payload: pattern(16), offset8: 1, mf: true }));
    expect(r.lastStatus).toBe(ReassemblyStatus.Held);
    // A TCP first fragment of 16 bytes holds the flags.
    submit4(r, v4({ proto: 6, payload: pattern(16), mf: true }));
    expect(r.lastStatus).toBe(ReassemblyStatus.Held);
    expect(r.drops.get(DropReason.FragmentTiny)).toBe(2);
    r.clear();
  });

  it('times out after 30 s; ICMP time exceeded only when the first fragment arrived, quoting it', () => {
    const { r, quotes, advance } = engine();
    const first = v4({ payload: udpLike(64), mf: true, id: 1 });
    submit4(r, first);
    submit4(r, v4({ payload: pattern(32), offset8: 8, id: 2 })); // no first fragment
    advance(29_999);
    expect(r.poll()).toBe(0);
    advance(1);
    expect(r.poll()).toBe(2);
    expect(r.timedOut).toBe(2);
    expect(r.timeExceededDue).toBe(1);
    expect(quotes).toHaveLength(1);
    expect(quotes[0]!.family).toBe(4);
    expect(quotes[0]!.bytes).toEqual(first);
    expect(r.drops.get(DropReason.FragmentTimeout)).toBe(2);
    expect(r.inProgress).toBe(0);
  });

  it('expires due datagrams on submit as well', () => {
    const { r, quotes, advance } = engine();
    submit4(r, v4({ payload: udpLike(64), mf: true, id: 1 }));
    advance(31_000);
    submit4(r, v4({ payload: pattern(32), offset8: 8, id: 1 }));
    expect(quotes).toHaveLength(1);
    expect(r.lastStatus).toBe(ReassemblyStatus.Held); // a new datagram, the old one is gone
    r.clear();
  });

  it('evicts the oldest datagram at the memory cap and at the datagram cap', () => {
    const slot = pools.large.slotSize;
    const { r, advance } = engine({ memoryLimit: 2 * slot });
    submit4(r, v4({ payload: pattern(8), mf: true, id: 1 }));
    advance(1);
    submit4(r, v4({ payload: pattern(8), mf: true, id: 2 }));
    advance(1);
    submit4(r, v4({ payload: pattern(8), mf: true, id: 3 }));
    expect(r.inProgress).toBe(2);
    expect(r.memory).toBe(2 * slot);
    expect(r.drops.get(DropReason.FragmentMemoryLimit)).toBe(1);
    // id 1 was evicted: its last fragment starts a new datagram, ids 2 and 3 still complete
    const out = submit4(r, v4({ payload: pattern(8), offset8: 1, id: 3 }));
    expect(out).not.toBeNull();
    out!.release();
    r.clear();

    const e2 = engine({ maxDatagrams: 3 });
    for (let id = 1; id <= 5; id++) {
      submit4(e2.r, v4({ payload: pattern(8), mf: true, id }));
      e2.advance(1);
    }
    expect(e2.r.inProgress).toBe(3);
    expect(e2.r.evicted).toBe(2);
    expect(e2.r.drops.get(DropReason.FragmentTableFull)).toBe(2);
    // The newest three (3, 4, 5) survive.
    for (const id of [3, 4, 5]) {
      const o = submit4(e2.r, v4({ payload: pattern(8), offset8: 1, id }));
      expect(o).not.toBeNull();
      o!.release();
    }
    e2.r.clear();
  });

  it('evicts its own oldest datagram when the large pool runs dry, else drops PoolExhausted', () => {
    const small = new PacketPools({ small: { slots: 8 }, large: { slots: 2 } });
    const r = new Reassembler({ pools: small, now: () => 0 });
    const held = small.large.acquire()!;
    submit4(r, v4({ payload: pattern(8), mf: true, id: 1 }));
    submit4(r, v4({ payload: pattern(8), mf: true, id: 2 }));
    expect(r.inProgress).toBe(1);
    expect(r.drops.get(DropReason.PoolExhausted)).toBe(1);
    const held2 = small.large.acquire(); // nothing left after the engine's slot
    expect(held2).toBeNull();
    r.clear();
    const held3 = small.large.acquire()!;
    submit4(r, v4({ payload: pattern(8), mf: true, id: 3 }));
    expect(r.lastReason).toBe(DropReason.PoolExhausted);
    held.release();
    held3.release();
    expect(small.live).toBe(0);
  });

  it('rejects malformed input with a reason, never throws', () => {
    const { r } = engine();
    const p = v4({ payload: pattern(16), mf: true });
    expect(r.submitV4(p, 0, 10)).toBeNull();
    expect(r.lastReason).toBe(DropReason.Truncated);
    const bad = Buffer.from(p);
    bad[0] = 0x45 | 0x10;
    r.submitV4(bad, 0, bad.length);
    expect(r.lastReason).toBe(DropReason.BadVersion);
    const bad2 = Buffer.from(p);
    bad2.writeUInt16BE(200, 2);
    r.submitV4(bad2, 0, bad2.length);
    expect(r.lastReason).toBe(DropReason.BadTotalLength);
    expect(r.submitV4(p, 30, 20)).toBeNull();
    expect(r.lastReason).toBe(DropReason.Truncated);
  });
});

describe('IPv6 reassembly', () => {
  it('reassembles, removes the fragment header and fixes next header and payload length', () => {
    const payload = udpLike(3000);
    const whole = v6({ payload });
    const f = v6frags(payload, [
      [0, 1448, true],
      [1448, 1448, true],
      [2896, 104, false],
    ]);
    const { r } = engine();
    submit6(r, f[2]!);
    submit6(r, f[0]!);
    expect(r.lastStatus).toBe(ReassemblyStatus.Held);
    const out = submit6(r, f[1]!)!;
    expect(out.bytes()).toEqual(whole);
    out.release();
  });

  it('keeps the unfragmentable part (hop-by-hop + routing) from the first fragment', () => {
    const payload = udpLike(500);
    const ext: Array<[number, number]> = [
      [0, 8],
      [43, 24],
    ];
    const whole = v6({ payload, ext });
    const f = v6frags(payload, [
      [0, 256, true],
      [256, 244, false],
    ], 99, { ext });
    const { r } = engine();
    submit6(r, f[1]!);
    const out = submit6(r, f[0]!)!;
    expect(out.bytes()).toEqual(whole);
    out.release();
  });

  it('RFC 5722: any overlap drops the datagram; exact duplicates are fine', () => {
    const { r } = engine();
    const p = udpLike(256);
    const [a, b] = v6frags(p, [
      [0, 128, true],
      [128, 128, false],
    ]);
    submit6(r, a!);
    submit6(r, a!);
    expect(r.lastStatus).toBe(ReassemblyStatus.Duplicate);
    submit6(r, v6({ payload: p.subarray(64, 192), frag: { offset: 64, more: true, id: 7 } }));
    expect(r.lastReason).toBe(DropReason.FragmentOverlap);
    expect(r.inProgress).toBe(0);
    submit6(r, b!);
    expect(r.lastStatus).toBe(ReassemblyStatus.Held);
    r.clear();
  });

  it('RFC 7112: a first fragment must hold the whole header chain through the upper-layer header', () => {
    const { r } = engine();
    // UDP header cut after 4 bytes... impossible with 8-byte units, so use TCP (20 bytes) in 16.
    submit6(r, v6({ nh: 6, payload: pattern(16), frag: { offset: 0, more: true, id: 1 } }));
    expect(r.lastReason).toBe(DropReason.FragmentIncompleteChain);
    // Destination options (fragmentable) of 16 bytes followed by UDP, all in an 16-byte fragment.
    submit6(r, v6({ nh: 60, payload: Buffer.concat([Buffer.from([17, 1, 1, 12]), Buffer.alloc(12)]), frag: { offset: 0, more: true, id: 2 } }));
    expect(r.lastReason).toBe(DropReason.FragmentIncompleteChain);
    // A 24-byte TCP first fragment is whole.
    submit6(r, v6({ nh: 6, payload: pattern(24), frag: { offset: 0, more: true, id: 3 } }));
    expect(r.lastStatus).toBe(ReassemblyStatus.Held);
    // Non-first fragments are not subject to the rule.
    submit6(r, v6({ nh: 6, payload: pattern(8), frag: { offset: 24, more: true, id: 3 } }));
    expect(r.lastStatus).toBe(ReassemblyStatus.Held);
    expect(r.drops.get(DropReason.FragmentIncompleteChain)).toBe(2);
    submit6(r, v6({ nh: 6, payload: pattern(16), frag: { offset: 0, more: true, id: 4 } }));
    expect([r.icmpCode, r.icmpPointer]).toEqual([3, 0]); // ICMPv6 parameter problem, RFC 7112
    r.clear();
  });

  it('RFC 6946: an atomic fragment is delivered at once and never mixed with a datagram in progress', () => {
    const { r } = engine();
    const p = udpLike(200);
    const [first, last] = v6frags(p, [
      [0, 96, true],
      [96, 104, false],
    ], 42);
    submit6(r, first!);
    const atomicPayload = udpLike(60, 9);
    const atomic = v6({ payload: atomicPayload, frag: { offset: 0, more: false, id: 42 } });
    const a = submit6(r, atomic)!;
    expect(r.lastStatus).toBe(ReassemblyStatus.Complete);
    expect(a.bytes()).toEqual(v6({ payload: atomicPayload }));
    a.release();
    expect(r.inProgress).toBe(1);
    const out = submit6(r, last!)!;
    expect(out.bytes()).toEqual(v6({ payload: p }));
    out.release();
  });

  it('times out after 60 s with ICMPv6 time exceeded only when the first fragment arrived', () => {
    const { r, quotes, advance } = engine();
    const first = v6({ payload: udpLike(64), frag: { offset: 0, more: true, id: 1 } });
    submit6(r, first);
    submit6(r, v6({ payload: pattern(32), frag: { offset: 64, more: false, id: 2 } }));
    advance(30_000);
    expect(r.poll()).toBe(0);
    advance(30_000);
    expect(r.poll()).toBe(2);
    expect(quotes).toEqual([{ family: 6, bytes: first }]);
  });

  it('rejects payload lengths past 65535 and bad fragment lengths', () => {
    const { r } = engine();
    submit6(r, v6({ payload: pattern(100), frag: { offset: 65528, more: false, id: 1 } }));
    expect(r.lastReason).toBe(DropReason.FragmentTooBig);
    expect([r.icmpCode, r.icmpPointer]).toEqual([0, 42]); // pointer to the Fragment Offset
    submit6(r, v6({ payload: pattern(12), frag: { offset: 8, more: true, id: 1 } }));
    expect(r.lastReason).toBe(DropReason.FragmentBadLength);
    expect([r.icmpCode, r.icmpPointer]).toEqual([0, 4]); // pointer to the Payload Length
    const p = v6({ payload: pattern(12), frag: { offset: 8, more: true, id: 1 } });
    p.writeUInt16BE(5000, 4);
    submit6(r, p);
    expect(r.lastReason).toBe(DropReason.BadPayloadLength);
    expect(r.inProgress).toBe(0);
  });

  it('returns NotFragment when there is no fragment header', () => {
    const { r } = engine();
    submit6(r, v6({ payload: udpLike(64), ext: [[0, 8]] }));
    expect(r.lastStatus).toBe(ReassemblyStatus.NotFragment);
  });

  it('evicts the oldest across both families', () => {
    const slot = pools.large.slotSize;
    const { r, advance } = engine({ memoryLimit: 2 * slot });
    submit6(r, v6({ payload: udpLike(64), frag: { offset: 0, more: true, id: 1 } }));
    advance(5);
    submit4(r, v4({ payload: pattern(8), mf: true, id: 1 }));
    advance(5);
    submit4(r, v4({ payload: pattern(8), mf: true, id: 2 }));
    // The v6 one was oldest.
    const o = submit6(r, v6({ payload: pattern(8), frag: { offset: 64, more: false, id: 1 } }));
    expect(o).toBeNull();
    expect(r.evicted).toBeGreaterThanOrEqual(1);
    r.clear();
  });
});
