import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DropReason } from '../../src/base/drop-reason.ts';
import {
  BindingAck,
  BindingStatus,
  BindingUpdate,
  CTYPE_BINDING_ACK,
  CTYPE_BINDING_UPDATE,
  CTYPE_PATH_CHALLENGE,
  CTYPE_BINDING_REFRESH,
  CTYPE_PATH_RESPONSE,
  MOBILITY_BODY_OFFSET,
  RefreshRequest,
  emitRefreshRequest,
  isMobilityCtype,
  refreshRequestLength,
  PathProbe,
  bindingAckLength,
  bindingStatusName,
  bindingUpdateLength,
  bindingUpdatePaddingFor,
  describeMobility,
  emitBindingAck,
  emitBindingUpdate,
  emitPathProbe,
  lifetimeUnits,
  pathPaddingFor,
  pathProbeLength,
  seqGreater,
  type BindingAckRepr,
  type BindingUpdateRepr,
  type PathProbeRepr,
} from '../../src/wire/binding.ts';
import { ControlMessage, HMAC_LEN } from '../../src/wire/gue.ts';
import { verifyControl } from '../../src/tunnel/control.ts';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const KEY = hex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');

// Byte fixtures written by hand from the layout tables in src/wire/binding.ts; the 16-byte
// trailers were computed with `openssl dgst -sha256 -mac HMAC -macopt hexkey:KEY` (first 16 bytes).
const FIX_BU_V4 = hex(
  '20810000 01010010 11223344 00060a24181e4001' + // GUE ctype 129, ctl v1 A len 16, id, counter
    '0007 0096 c0 44 9c40 0a4d0005 c0a80114' + // seq 7, 150 units, A|H, v4/v4, port 40000, home, coa
    '5139f600bd9a5f1d337f4c7e5fe6f1db',
);
const FIX_BA_V4 = hex(
  '20820000 01010014 aabbccdd 00060a241825e120' +
    '00 80 0007 0096 0000 44 00 d431 0a4d0005 c6336407' + // accepted, N, seq 7, 600 s, observed 198.51.100.7:54321
    '2cbd1a247ca5dc2c8f04219e62083276',
);
const FIX_BU_V6 = hex(
  '20810000 01010028 11223344 00060a24181e4002' +
    'ffff 0000 e0 66 17c0 fd770000000000000000000000000005 20010db8000100000000000000000020' +
    '378c331557e0b23bd1b0f91ddfcfd192',
);
const FIX_BA_130 = hex(
  '20820000 01010010 aabbccdd 00060a241825e121' +
    '82 00 0009 0000 001e 40 00 0000 0a4d0005' + // 130, seq 9, lifetime 0, retry-after 30 s, no observed
    '6a990d57e4fdee27a294558af7e3a445',
);
const FIX_PATH = hex(
  '20830000 01010014 55667788 00060a241825e122' +
    '0123456789abcdef 40 000000 0a4d0005 00000000' + // challenge data, home 10.77.0.5, 4 bytes of padding
    '9da266003b3d788c4370f5c2b43e966f',
);

const FIX_BRR = hex(
  '20850000 01010008 aabbccdd 00060a241825e123' +
    '40 000000 0a4d0005' + // home 10.77.0.5
    'b59b352fdf1abbf84bff05cc0dfa198d',
);

const home4 = hex('0a4d0005');
const buV4: BindingUpdateRepr = {
  sequence: 7,
  lifetime: 600,
  ackRequested: true,
  homeRegistration: true,
  routeOptimisation: false,
  homeFamily: 4,
  home: home4,
  careOf: { family: 4, bytes: hex('c0a80114'), port: 40000 },
  padding: 0,
};
const baV4: BindingAckRepr = {
  status: 0,
  nat: true,
  sequence: 7,
  lifetime: 600,
  retryAfter: 0,
  homeFamily: 4,
  home: home4,
  observed: { family: 4, bytes: hex('c6336407'), port: 54321 },
};

function body(buf: Buffer): [number, number] {
  const m = new ControlMessage(buf);
  expect(m.check()).toBe(DropReason.None);
  return [m.bodyOffset, m.bodyLength];
}

describe('binding update', () => {
  it('emits the IPv4 fixture byte for byte (header, body, HMAC trailer)', () => {
    const out = Buffer.alloc(bindingUpdateLength(buV4));
    expect(emitBindingUpdate(out, 0, { senderId: 0x11223344, counter: 1_700_000_000_000_001 }, buV4, KEY)).toBe(52);
    expect(out.toString('hex')).toBe(FIX_BU_V4.toString('hex'));
  });

  it('parses the IPv4 fixture back', () => {
    const [o, n] = body(FIX_BU_V4);
    const v = new BindingUpdate(FIX_BU_V4, o, n);
    expect(v.check()).toBe(DropReason.None);
    expect(v.parse()).toEqual({ ...buV4, home: Uint8Array.from(home4), careOf: { ...buV4.careOf!, bytes: Uint8Array.from(buV4.careOf!.bytes) } });
    expect(v.lifetimeUnits).toBe(150);
    expect(verifyControl(FIX_BU_V4, 0, FIX_BU_V4.length, KEY)).toBe(DropReason.None);
    expect(describeMobility(FIX_BU_V4)).toBe(
      'GUE ctrl binding-update id 0x11223344 ctr 1700000000000001 hmac: BU seq 7 lifetime 600s A H home 10.77.0.5 coa 192.168.1.20:40000',
    );
  });

  it('emits and parses the IPv6 deregistration fixture (sequence 0xffff, lifetime 0, A H R)', () => {
    const r: BindingUpdateRepr = {
      sequence: 0xffff,
      lifetime: 0,
      ackRequested: true,
      homeRegistration: true,
      routeOptimisation: true,
      homeFamily: 6,
      home: hex('fd770000000000000000000000000005'),
      careOf: { family: 6, bytes: hex('20010db8000100000000000000000020'), port: 6080 },
      padding: 0,
    };
    const out = Buffer.alloc(bindingUpdateLength(r));
    emitBindingUpdate(out, 0, { senderId: 0x11223344, counter: 1_700_000_000_000_002 }, r, KEY);
    expect(out.toString('hex')).toBe(FIX_BU_V6.toString('hex'));
    expect(out.length).toBe(76);
    const [o, n] = body(FIX_BU_V6);
    const v = new BindingUpdate(FIX_BU_V6, o, n);
    expect(v.check()).toBe(DropReason.None);
    expect(v.describe()).toBe('BU seq 65535 lifetime 0s A H R home fd77::5 coa [2001:db8:1::20]:6080');
  });

  it('a deregistration without care-of and padded to a size round-trips', () => {
    const r: BindingUpdateRepr = { ...buV4, lifetime: 0, careOf: null, padding: 0 };
    r.padding = bindingUpdatePaddingFor(200, r);
    const out = Buffer.alloc(bindingUpdateLength(r));
    expect(emitBindingUpdate(out, 0, { senderId: 1, counter: 5 }, r, KEY)).toBe(200);
    const [o, n] = body(out);
    const v = new BindingUpdate(out, o, n);
    expect(v.check()).toBe(DropReason.None);
    expect(v.careOfFamily).toBe(0);
    expect(v.padding).toBe(200 - 48); // GUE 4 + control 16 + fields 12 + HMAC 16
    expect(v.parse().careOf).toBeNull();
  });

  it('rejects short bodies, unknown families, reserved flags, a port without care-of, non-zero padding', () => {
    const [o, n] = body(FIX_BU_V4);
    const b = Buffer.from(FIX_BU_V4);
    const v = new BindingUpdate(b, o, n);
    expect(new BindingUpdate(b, o, 11).check()).toBe(DropReason.Truncated);
    expect(new BindingUpdate(b, o, n - 1).check()).toBe(DropReason.Truncated); // care-of cut
    const bad = (i: number, val: number, want = DropReason.BadControlMessage) => {
      const c = Buffer.from(b);
      c[o + i] = val;
      expect(new BindingUpdate(c, o, n).check()).toBe(want);
    };
    bad(5, 0x54); // home family 5
    bad(5, 0x45); // care-of family 5
    bad(5, 0x04); // home family 0
    bad(4, 0xc1); // reserved flag bit
    const noCoa = Buffer.from(b);
    noCoa[o + 5] = 0x40; // care-of family 0 but port 40000 set
    expect(new BindingUpdate(noCoa, o, 12).check()).toBe(DropReason.BadControlMessage);
    const padded = Buffer.concat([b.subarray(o, o + n), Buffer.from([0, 0, 1])]);
    expect(new BindingUpdate(padded, 0, padded.length).check()).toBe(DropReason.BadControlMessage);
    expect(v.check()).toBe(DropReason.None);
  });

  it('round-trips any representable update (property)', () => {
    const addr = (fam: 4 | 6) => fc.uint8Array({ minLength: fam === 4 ? 4 : 16, maxLength: fam === 4 ? 4 : 16 });
    const repr = fc
      .record({ hf: fc.constantFrom<4 | 6>(4, 6), cf: fc.constantFrom<0 | 4 | 6>(0, 4, 6) })
      .chain(({ hf, cf }) =>
        fc.record({
          sequence: fc.integer({ min: 0, max: 0xffff }),
          lifetime: fc.integer({ min: 0, max: 0xffff }).map((u) => u * 4),
          ackRequested: fc.boolean(),
          homeRegistration: fc.boolean(),
          routeOptimisation: fc.boolean(),
          homeFamily: fc.constant(hf),
          home: addr(hf),
          careOf: cf === 0 ? fc.constant(null) : fc.record({ family: fc.constant(cf), bytes: addr(cf), port: fc.integer({ min: 1, max: 65535 }) }),
          padding: fc.integer({ min: 0, max: 64 }),
        }),
      );
    fc.assert(
      fc.property(repr, fc.integer({ min: 0, max: 2 ** 53 - 1 }), (r, counter) => {
        const out = Buffer.alloc(bindingUpdateLength(r) + 3);
        const len = emitBindingUpdate(out, 3, { senderId: 0xdeadbeef, counter }, r, KEY);
        if (verifyControl(out, 3, len, KEY) !== DropReason.None) return false;
        const m = new ControlMessage(out, 3, len);
        if (m.ctype !== CTYPE_BINDING_UPDATE || m.counter !== counter) return false;
        const v = new BindingUpdate(out, m.bodyOffset, m.bodyLength);
        if (v.check() !== DropReason.None) return false;
        expect(v.parse()).toEqual({ ...r, home: Uint8Array.from(r.home), careOf: r.careOf && { ...r.careOf, bytes: Uint8Array.from(r.careOf.bytes) } });
        return true;
      }),
      { numRuns: 300 },
    );
  });
});

describe('binding acknowledgement', () => {
  it('emits and parses the accepted + NAT fixture', () => {
    const out = Buffer.alloc(bindingAckLength(baV4));
    expect(emitBindingAck(out, 0, { senderId: 0xaabbccdd, counter: 1_700_000_000_500_000 }, baV4, KEY)).toBe(56);
    expect(out.toString('hex')).toBe(FIX_BA_V4.toString('hex'));
    const [o, n] = body(FIX_BA_V4);
    const v = new BindingAck(FIX_BA_V4, o, n);
    expect(v.check()).toBe(DropReason.None);
    expect(v.parse()).toEqual({ ...baV4, home: Uint8Array.from(home4), observed: { ...baV4.observed!, bytes: Uint8Array.from(baV4.observed!.bytes) } });
    expect(describeMobility(FIX_BA_V4)).toBe(
      'GUE ctrl binding-ack id 0xaabbccdd ctr 1700000000500000 hmac: BA status 0 (accepted) seq 7 lifetime 600s N home 10.77.0.5 observed 198.51.100.7:54321',
    );
  });

  it('emits and parses the 130 fixture with retry-after', () => {
    const r: BindingAckRepr = { status: BindingStatus.InsufficientResources, nat: false, sequence: 9, lifetime: 0, retryAfter: 30, homeFamily: 4, home: home4, observed: null };
    const out = Buffer.alloc(bindingAckLength(r));
    emitBindingAck(out, 0, { senderId: 0xaabbccdd, counter: 1_700_000_000_500_001 }, r, KEY);
    expect(out.toString('hex')).toBe(FIX_BA_130.toString('hex'));
    const [o, n] = body(FIX_BA_130);
    const v = new BindingAck(FIX_BA_130, o, n);
    expect(v.check()).toBe(DropReason.None);
    expect(v.status).toBe(130);
    expect(v.retryAfter).toBe(30);
    expect(v.describe()).toBe('BA status 130 (insufficient resources) seq 9 lifetime 0s retry-after 30s home 10.77.0.5');
  });

  it('rejects a short body, trailing bytes, reserved bits', () => {
    const [o, n] = body(FIX_BA_V4);
    expect(new BindingAck(FIX_BA_V4, o, 15).check()).toBe(DropReason.Truncated);
    expect(new BindingAck(FIX_BA_V4, o, n - 1).check()).toBe(DropReason.Truncated);
    const longer = Buffer.concat([FIX_BA_V4.subarray(o, o + n), Buffer.alloc(1)]);
    expect(new BindingAck(longer, 0, longer.length).check()).toBe(DropReason.BadControlMessage);
    for (const [i, val] of [[1, 0x40], [9, 1], [8, 0x47]] as const) {
      const c = Buffer.from(FIX_BA_V4);
      c[o + i] = val;
      expect(new BindingAck(c, o, n).check()).toBe(DropReason.BadControlMessage);
    }
  });

  it('names the RFC 6275 status codes', () => {
    expect(bindingStatusName(133)).toBe('not home agent for this node');
    expect(bindingStatusName(135)).toBe('sequence number out of window');
    expect(bindingStatusName(140)).toBe('rejected (140)');
  });
});

describe('path challenge / response', () => {
  const r: PathProbeRepr = { data: hex('0123456789abcdef'), homeFamily: 4, home: home4, padding: 4 };

  it('emits and parses the padded challenge fixture', () => {
    const out = Buffer.alloc(pathProbeLength(r));
    emitPathProbe(out, 0, false, { senderId: 0x55667788, counter: 1_700_000_000_500_002 }, r, KEY);
    expect(out.toString('hex')).toBe(FIX_PATH.toString('hex'));
    const [o, n] = body(FIX_PATH);
    const v = new PathProbe(FIX_PATH, o, n);
    expect(v.check()).toBe(DropReason.None);
    expect(v.dataEquals(hex('0123456789abcdef'))).toBe(true);
    expect(v.dataEquals(hex('0123456789abcdee'))).toBe(false);
    expect(describeMobility(FIX_PATH)).toBe(
      'GUE ctrl path-challenge id 0x55667788 ctr 1700000000500002 hmac: data 0123456789abcdef home 10.77.0.5 pad 4',
    );
  });

  it('pads a probe to an exact UDP payload size; the response has its own ctype', () => {
    const p = { ...r, padding: pathPaddingFor(1372, 4) };
    const out = Buffer.alloc(pathProbeLength(p));
    expect(emitPathProbe(out, 0, true, { senderId: 1, counter: 2 }, p, KEY)).toBe(1372);
    expect(new ControlMessage(out).ctype).toBe(CTYPE_PATH_RESPONSE);
    expect(pathPaddingFor(10, 6)).toBe(0);
    expect(CTYPE_PATH_CHALLENGE).toBe(131);
    expect(CTYPE_BINDING_ACK).toBe(130);
  });

  it('rejects non-zero padding and reserved bytes', () => {
    const [o, n] = body(FIX_PATH);
    for (const i of [8, 9, 11, n - 1]) {
      const c = Buffer.from(FIX_PATH);
      c[o + i] = i === 8 ? 0x41 : 1;
      expect(new PathProbe(c, o, n).check()).toBe(DropReason.BadControlMessage);
    }
  });
});

describe('binding refresh request (RFC 6275 6.1.2)', () => {
  it('emits and parses the fixture', () => {
    const r = { homeFamily: 4 as const, home: home4 };
    const out = Buffer.alloc(refreshRequestLength(r));
    expect(emitRefreshRequest(out, 0, { senderId: 0xaabbccdd, counter: 1_700_000_000_500_003 }, r, KEY)).toBe(44);
    expect(out.toString('hex')).toBe(FIX_BRR.toString('hex'));
    const [o, n] = body(FIX_BRR);
    const v = new RefreshRequest(FIX_BRR, o, n);
    expect(v.check()).toBe(DropReason.None);
    expect(v.parse()).toEqual({ homeFamily: 4, home: Uint8Array.from(home4) });
    expect(new ControlMessage(FIX_BRR).ctype).toBe(CTYPE_BINDING_REFRESH);
    expect(describeMobility(FIX_BRR)).toBe('GUE ctrl refresh-request id 0xaabbccdd ctr 1700000000500003 hmac: BRR home 10.77.0.5');
    expect([128, 129, 133, 134].map(isMobilityCtype)).toEqual([false, true, true, false]);
    const six = { homeFamily: 6 as const, home: hex('fd770000000000000000000000000005') };
    expect(refreshRequestLength(six)).toBe(56);
  });

  it('rejects a short body, trailing bytes, reserved bits, an unknown family', () => {
    const [o, n] = body(FIX_BRR);
    expect(new RefreshRequest(FIX_BRR, o, n - 1).check()).toBe(DropReason.Truncated);
    const long = Buffer.alloc(n + 1);
    FIX_BRR.copy(long, 0, o, o + n);
    expect(new RefreshRequest(long, 0, n + 1).check()).toBe(DropReason.BadControlMessage);
    for (const [i, v] of [[0, 0x41], [0, 0x50], [2, 1]] as const) {
      const c = Buffer.from(FIX_BRR);
      c[o + i] = v;
      expect(new RefreshRequest(c, o, n).check()).toBe(DropReason.BadControlMessage);
    }
  });
});

describe('sequence numbers and lifetimes (RFC 6275)', () => {
  it('compares sequences modulo 2^16 (9.5.1), across the wrap', () => {
    expect(seqGreater(1, 0)).toBe(true);
    expect(seqGreater(0, 0)).toBe(false);
    expect(seqGreater(0, 1)).toBe(false);
    expect(seqGreater(0, 0xffff)).toBe(true); // wrap
    expect(seqGreater(5, 0xfff0)).toBe(true);
    expect(seqGreater(0xfff0, 5)).toBe(false);
    // the 32768 values up to and including the last one are "not greater"; 32768 after is greater
    expect(seqGreater(0x8000, 0)).toBe(true);
    expect(seqGreater(0x8001, 0)).toBe(false);
    expect(seqGreater(100 + 0x8000, 100)).toBe(true);
    expect(seqGreater(100 + 0x8001, 100)).toBe(false);
  });

  it('converts lifetimes to 4-second units, rounding down, capped', () => {
    expect(lifetimeUnits(600)).toBe(150);
    expect(lifetimeUnits(7)).toBe(1);
    expect(lifetimeUnits(3)).toBe(0);
    expect(lifetimeUnits(10_000_000)).toBe(0xffff);
    expect(MOBILITY_BODY_OFFSET).toBe(20);
  });
});

describe('HMAC-SHA256 trailer', () => {
  // The MAC function against the RFC 4231 vectors: test/wire/gue.test.ts (controlMac).

  it('the trailer of every fixture is HMAC-SHA256 over GUE header..body, as openssl computes it', (ctx) => {
    let ok = true;
    try {
      execFileSync('openssl', ['version'], { stdio: 'ignore' });
    } catch {
      ok = false;
    }
    if (!ok) return ctx.skip('openssl not installed');
    const msgs = [FIX_BU_V4, FIX_BA_V4, FIX_BU_V6, FIX_BA_130, FIX_PATH, FIX_BRR];
    // and fresh random messages, so the fixtures' trailers are not the only thing checked
    for (let i = 0; i < 3; i++) {
      const key = randomBytes(16 + i * 20);
      const r = { ...buV4, sequence: i, padding: i * 7 };
      const out = Buffer.alloc(bindingUpdateLength(r));
      emitBindingUpdate(out, 0, { senderId: i, counter: 1000 + i }, r, key);
      const opensslMac = execFileSync('openssl', ['dgst', '-sha256', '-mac', 'HMAC', '-macopt', `hexkey:${key.toString('hex')}`, '-binary'], {
        input: out.subarray(0, out.length - HMAC_LEN),
      });
      expect(out.subarray(out.length - HMAC_LEN).toString('hex')).toBe(opensslMac.subarray(0, HMAC_LEN).toString('hex'));
    }
    for (const m of msgs) {
      const opensslMac = execFileSync('openssl', ['dgst', '-sha256', '-mac', 'HMAC', '-macopt', `hexkey:${KEY.toString('hex')}`, '-binary'], {
        input: m.subarray(0, m.length - HMAC_LEN),
      });
      expect(m.subarray(m.length - HMAC_LEN).toString('hex')).toBe(opensslMac.subarray(0, HMAC_LEN).toString('hex'));
    }
  });

  it('rejects a wrong key, a missing or truncated trailer, and every single bit flip', () => {
    const m = FIX_BU_V4;
    expect(verifyControl(m, 0, m.length, KEY)).toBe(DropReason.None);
    const other = Buffer.from(KEY);
    other[31] ^= 1;
    expect(verifyControl(m, 0, m.length, other)).toBe(DropReason.BadAuthentication);
    // truncated trailer: the length no longer matches the header -> structurally bad
    expect(verifyControl(m, 0, m.length - 1, KEY)).not.toBe(DropReason.None);
    expect(verifyControl(m, 0, m.length - HMAC_LEN, KEY)).not.toBe(DropReason.None);
    // the A flag cleared and the trailer cut off: structurally fine, but unauthenticated
    const stripped = Buffer.from(m.subarray(0, m.length - HMAC_LEN));
    stripped[5] = 0;
    expect(verifyControl(stripped, 0, stripped.length, KEY)).toBe(DropReason.BadAuthentication);
    for (let bit = 0; bit < m.length * 8; bit++) {
      const c = Buffer.from(m);
      c[bit >> 3]! ^= 1 << (bit & 7);
      expect(verifyControl(c, 0, c.length, KEY), `bit ${bit}`).not.toBe(DropReason.None);
    }
  });
});
