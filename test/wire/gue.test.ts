import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DropReason } from '../../src/base/drop-reason.ts';
import {
  CONTROL_HEADER_LEN,
  CTYPE_BINDING_UPDATE,
  CTYPE_KEEPALIVE,
  ControlMessage,
  GueHeader,
  GueKind,
  HMAC_LEN,
  controlLength,
  controlMac,
  describeGue,
  emitControl,
  emitKeepalive,
  gueClassify,
  gueHeaderLength,
  senderIdFromName,
} from '../../src/wire/gue.ts';
import { ControlCounter, verifyControl } from '../../src/tunnel/control.ts';
import { ReplayWindow } from '../../src/tunnel/replay.ts';
import { RFC4231_HMAC_SHA256 } from '../support/rfc4231.ts';

// An ICMP echo request 192.168.10.10 -> 192.168.20.20 (IPv4, 28 bytes, valid checksums).
const ipv4 = Buffer.from('4500001c1c4640004001' + '0000' + 'c0a80a0ac0a81414' + '0800f7ff00000000', 'hex');
// An ICMPv6 echo request fd00:10::10 -> fd00:20::20 (IPv6 header + 8 bytes).
const ipv6 = Buffer.from(
  '6000000000083a40' + 'fd000010000000000000000000000010' + 'fd000020000000000000000000000020' + '8000000000000000',
  'hex',
);

function kaRepr(counter = 1_700_000_000_000_001) {
  return { senderId: 0x11223344, counter, timestampMs: 1_700_000_000_123, interval: 25, epoch: 0xa1b2c3d4 };
}

describe('gueClassify', () => {
  it('takes a bare IPv4 packet as variant 1 IPv4 with no GUE header', () => {
    expect(gueClassify(ipv4, 0, ipv4.length)).toBe(GueKind.Ipv4);
    expect(gueHeaderLength(ipv4, 0)).toBe(0);
    expect(describeGue(ipv4)).toBe('GUE v1 IPv4 len 28');
  });

  it('takes a bare IPv6 packet as variant 1 IPv6', () => {
    expect(gueClassify(ipv6, 0, ipv6.length)).toBe(GueKind.Ipv6);
    expect(gueHeaderLength(ipv6, 0)).toBe(0);
  });

  it('works at an offset inside a bigger buffer', () => {
    const b = Buffer.concat([Buffer.alloc(7, 0xff), ipv6]);
    expect(gueClassify(b, 7, ipv6.length)).toBe(GueKind.Ipv6);
  });

  it('rejects variant 1 with version nibble 5 or 7, variants 2 and 3, and empty payloads', () => {
    for (const b0 of [0x50, 0x70, 0x80, 0xc0, 0xff]) {
      expect(gueClassify(Buffer.from([b0, 0, 0, 0]), 0, 4)).toBe(GueKind.Bad);
    }
    expect(gueClassify(Buffer.alloc(0), 0, 0)).toBe(GueKind.Bad);
  });

  it('accepts Linux "encap gue" variant-0 data (proto 4 / 41) and reports the header length', () => {
    const v4 = Buffer.concat([Buffer.from([0x00, 4, 0, 0]), ipv4]);
    expect(gueClassify(v4, 0, v4.length)).toBe(GueKind.Ipv4);
    expect(gueHeaderLength(v4, 0)).toBe(4);
    const v6 = Buffer.concat([Buffer.from([0x01, 41, 0, 0, 0xde, 0xad, 0xbe, 0xef]), ipv6]);
    expect(gueClassify(v6, 0, v6.length)).toBe(GueKind.Ipv6);
    expect(gueHeaderLength(v6, 0)).toBe(8);
    expect(describeGue(v6)).toBe('GUE v0 hlen 1 IPv6 len 48');
  });

  it('rejects variant-0 data with a mismatched proto, extension flags, or no payload', () => {
    const wrongProto = Buffer.concat([Buffer.from([0x00, 41, 0, 0]), ipv4]);
    expect(gueClassify(wrongProto, 0, wrongProto.length)).toBe(GueKind.Bad);
    const gre = Buffer.concat([Buffer.from([0x00, 47, 0, 0]), ipv4]);
    expect(gueClassify(gre, 0, gre.length)).toBe(GueKind.Bad);
    const flags = Buffer.concat([Buffer.from([0x00, 4, 0x80, 0]), ipv4]);
    expect(gueClassify(flags, 0, flags.length)).toBe(GueKind.Bad);
    expect(gueClassify(Buffer.from([0x00, 4, 0, 0]), 0, 4)).toBe(GueKind.Bad);
  });

  it('rejects a truncated variant-0 header and an Hlen beyond the buffer', () => {
    expect(gueClassify(Buffer.from([0x20, 128, 0]), 0, 3)).toBe(GueKind.Bad);
    const b = Buffer.from([0x22, 128, 0, 0, 1, 2, 3, 4]); // Hlen 2 = 8 option bytes, only 4 there
    expect(gueClassify(b, 0, b.length)).toBe(GueKind.Bad);
    expect(new GueHeader(b).check()).toBe(DropReason.BadGue);
  });

  it('classifies C=1 as control', () => {
    const b = Buffer.alloc(64);
    const n = emitKeepalive(b, 0, kaRepr());
    expect(gueClassify(b, 0, n)).toBe(GueKind.Control);
  });
});

describe('GueHeader view', () => {
  it('reads every field of a hand-made header', () => {
    // 00 1 00011 = C, Hlen 3; ctype 129; flags 0x1234; 12 option bytes; 2 payload bytes
    const b = Buffer.from([0x23, 129, 0x12, 0x34, ...new Array(12).fill(0), 0xaa, 0xbb]);
    const h = new GueHeader(b);
    expect(h.check()).toBe(DropReason.None);
    expect(h.version).toBe(0);
    expect(h.control).toBe(true);
    expect(h.hlen).toBe(3);
    expect(h.protoCtype).toBe(129);
    expect(h.flags).toBe(0x1234);
    expect(h.optionsLength).toBe(12);
    expect(h.headerLength).toBe(16);
    expect(h.payloadOffset).toBe(16);
    expect(h.payloadLength).toBe(2);
    expect(h.parse()).toEqual({ control: true, protoCtype: 129, flags: 0x1234, optionsLength: 12 });
    expect(h.describe()).toBe('GUE v0 ctrl ctype 129 (binding-update) hlen 3 flags 0x1234 len 18');
  });

  it('emits what it parses, and setters change only their field', () => {
    const b = Buffer.alloc(12, 0xee);
    expect(GueHeader.emit(b, 0, { control: false, protoCtype: 4, flags: 0, optionsLength: 8 })).toBe(12);
    expect(b.toString('hex')).toBe('020400000000000000000000');
    const h = new GueHeader(b);
    h.control = true;
    h.hlen = 1;
    h.protoCtype = 128;
    h.flags = 0xbeef;
    expect(b.subarray(0, 4).toString('hex')).toBe('2180beef');
    h.control = false;
    expect(b[0]).toBe(0x01);
  });

  it('flags a wrong version and short buffers', () => {
    expect(new GueHeader(Buffer.from([0x40, 0, 0, 0])).check()).toBe(DropReason.BadGue);
    expect(new GueHeader(Buffer.from([0x00, 0, 0])).check()).toBe(DropReason.BadGue);
  });
});

describe('control messages', () => {
  const key = Buffer.from('correct horse battery staple');

  it('lays out a keepalive byte by byte (no HMAC: 36 bytes)', () => {
    const b = Buffer.alloc(64);
    const n = emitKeepalive(b, 0, kaRepr());
    expect(n).toBe(36);
    expect(n).toBe(controlLength(16, false));
    const hex = b.subarray(0, n).toString('hex');
    // GUE: 00 1 00000 | ctype 128 | flags 0000
    expect(hex.slice(0, 8)).toBe('20800000');
    // control header: version 1, flags 0, body length 16, sender id, counter
    expect(hex.slice(8, 8 + 32)).toBe('01000010' + '11223344' + (1_700_000_000_000_001).toString(16).padStart(16, '0'));
    // body: timestamp ms, interval 25, reserved 0, boot epoch
    expect(hex.slice(40)).toBe((1_700_000_000_123).toString(16).padStart(16, '0') + '0019' + '0000' + 'a1b2c3d4');
    const m = new ControlMessage(b, 0, n);
    expect(m.check()).toBe(DropReason.None);
    expect(m.ctype).toBe(CTYPE_KEEPALIVE);
    expect(m.parseKeepalive()).toEqual(kaRepr());
    expect(m.describe()).toBe('GUE ctrl keepalive id 0x11223344 ctr 1700000000000001 ts 1700000000123 interval 25 epoch 0xa1b2c3d4 len 36');
  });

  it('appends a 16-byte HMAC-SHA256 over header + body when keyed (52 bytes)', () => {
    const b = Buffer.alloc(64);
    const n = emitKeepalive(b, 0, kaRepr(), key);
    expect(n).toBe(52);
    expect(b[5]).toBe(0x01); // A flag
    expect(b.subarray(0, 36).toString('hex')).toBe('20800000010100101122334400060a24181e40010000018bcfe5687b00190000a1b2c3d4');
    // computed independently: those 36 bytes | openssl dgst -sha256 -mac HMAC -macopt 'key:correct horse battery staple', first 16 bytes
    expect(b.subarray(36, 52).toString('hex')).toBe('c6215a1f7d5fb90cba52c48cdf57cbdd');
    expect(describeGue(b, 0, n)).toContain(' hmac len 52');
  });

  // RFC 4231 section 4 (shared with test/wire/binding.test.ts): the MAC function every trailer
  // goes through, at an offset inside a bigger buffer, is HMAC-SHA256 truncated to 128 bits.
  it.each(RFC4231_HMAC_SHA256)('controlMac: RFC 4231 test case %s', (_n, k, data, want) => {
    const buf = Buffer.concat([Buffer.alloc(7, 0xee), data, Buffer.alloc(5, 0xee)]);
    expect(controlMac(k, buf, 7, 7 + data.length).toString('hex')).toBe(want.slice(0, HMAC_LEN * 2));
  });

  it('round-trips a generic control message with a body at an offset', () => {
    const b = Buffer.alloc(100);
    const body = Buffer.from([1, 2, 3, 4, 5]);
    const n = emitControl(b, 10, { ctype: CTYPE_BINDING_UPDATE, senderId: 7, counter: 2 ** 40 + 5, body }, key);
    const m = new ControlMessage(b, 10, n);
    expect(m.check()).toBe(DropReason.None);
    expect(m.parse()).toEqual({ ctype: CTYPE_BINDING_UPDATE, senderId: 7, counter: 2 ** 40 + 5, body });
    expect(m.counterHi).toBe(256);
    expect(m.counterLo).toBe(5);
    expect(verifyControl(b, 10, n, key)).toBe(DropReason.None);
  });

  it('rejects malformed control messages', () => {
    const b = Buffer.alloc(64);
    const n = emitKeepalive(b, 0, kaRepr());
    expect(verifyControl(b, 0, n - 1, null)).toBe(DropReason.BadControlMessage); // truncated body
    expect(verifyControl(b, 0, 3, null)).toBe(DropReason.BadGue); // truncated GUE header
    expect(verifyControl(b, 0, 4 + CONTROL_HEADER_LEN - 1, null)).toBe(DropReason.BadControlMessage);
    const c = Buffer.from(b.subarray(0, n));
    c[4] = 2; // unknown message version
    expect(verifyControl(c, 0, n, null)).toBe(DropReason.BadControlMessage);
    const d = Buffer.from(b.subarray(0, n));
    d[5] = 0x80; // unknown message flag
    expect(verifyControl(d, 0, n, null)).toBe(DropReason.BadControlMessage);
    const e = Buffer.from(b.subarray(0, n));
    e[0] = 0x00; // C=0: data, not control
    expect(verifyControl(e, 0, n, null)).toBe(DropReason.BadControlMessage);
    const f = Buffer.from(b.subarray(0, n));
    f[0] = 0x3f; // Hlen 31: beyond the buffer
    expect(verifyControl(f, 0, n, null)).toBe(DropReason.BadGue);
    const g = Buffer.concat([b.subarray(0, n), Buffer.alloc(4)]); // trailing junk
    expect(verifyControl(g, 0, g.length, null)).toBe(DropReason.BadControlMessage);
  });

  it('accepts keyed messages, rejects missing / wrong / tampered MACs', () => {
    const b = Buffer.alloc(64);
    const n = emitKeepalive(b, 0, kaRepr(), key);
    expect(verifyControl(b, 0, n, key)).toBe(DropReason.None);
    expect(verifyControl(b, 0, n, Buffer.from('wrong key'))).toBe(DropReason.BadAuthentication);
    const plain = Buffer.alloc(64);
    const pn = emitKeepalive(plain, 0, kaRepr());
    expect(verifyControl(plain, 0, pn, key)).toBe(DropReason.BadAuthentication);
    for (const i of [1, 8, 20, 40, 47]) {
      const t = Buffer.from(b.subarray(0, n));
      t[i]! ^= 0x01;
      expect(verifyControl(t, 0, n, key)).not.toBe(DropReason.None);
    }
    // no key configured: a MAC present is not checked
    expect(verifyControl(b, 0, n, null)).toBe(DropReason.None);
  });

  it('drops replays per peer and only advances on authenticated messages', () => {
    const replay = new ReplayWindow(2);
    const b = Buffer.alloc(64);
    const ka = (ctr: number, k: Buffer | null = key) => emitKeepalive(b, 0, kaRepr(ctr), k);
    let n = ka(1000);
    expect(verifyControl(b, 0, n, key, replay, 0)).toBe(DropReason.None);
    expect(verifyControl(b, 0, n, key, replay, 0)).toBe(DropReason.ReplayedMessage);
    // another peer has its own state (and peer 5 makes the window grow)
    expect(verifyControl(b, 0, n, key, replay, 5)).toBe(DropReason.None);
    n = ka(999);
    expect(verifyControl(b, 0, n, key, replay, 0)).toBe(DropReason.ReplayedMessage);
    // a forged (wrong key) high counter must not advance the state
    n = ka(5000, Buffer.from('attacker'));
    expect(verifyControl(b, 0, n, key, replay, 0)).toBe(DropReason.BadAuthentication);
    n = ka(1001);
    expect(verifyControl(b, 0, n, key, replay, 0)).toBe(DropReason.None);
    // high 32 bits compare first
    n = ka(2 ** 33);
    expect(verifyControl(b, 0, n, key, replay, 0)).toBe(DropReason.None);
    n = ka(2 ** 32 + 0xffffffff - 2 ** 32); // 0xffffffff: lower
    expect(verifyControl(b, 0, n, key, replay, 0)).toBe(DropReason.ReplayedMessage);
    replay.reset(0);
    expect(verifyControl(b, 0, n, key, replay, 0)).toBe(DropReason.None);
  });

  it('rejects our own messages reflected back', () => {
    const b = Buffer.alloc(64);
    const n = emitKeepalive(b, 0, { ...kaRepr(), senderId: 0xdeadbeef }, key);
    expect(verifyControl(b, 0, n, key, null, 0, 0xdeadbeef)).toBe(DropReason.BadAuthentication);
    expect(verifyControl(b, 0, n, key, null, 0, 0x12345678)).toBe(DropReason.None);
  });

  it('counters increase and start at the clock in microseconds', () => {
    const before = Date.now() * 1000;
    const c = new ControlCounter();
    const a = c.next();
    const b2 = c.next();
    expect(a).toBeGreaterThanOrEqual(before);
    expect(b2).toBeGreaterThan(a);
    expect(Number.isSafeInteger(b2)).toBe(true);
  });

  it('derives stable sender ids from names', () => {
    expect(senderIdFromName('beijing')).toBe(senderIdFromName('beijing'));
    expect(senderIdFromName('beijing')).not.toBe(senderIdFromName('shanghai'));
    expect(senderIdFromName('x')).toBeLessThan(2 ** 32);
  });
});

describe('GUE on arbitrary bytes (fast-check)', () => {
  it('never throws, and whatever passes check() stays inside the buffer', () => {
    const key = Buffer.from('k');
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 96 }), fc.nat(8), (bytes, pad) => {
        const buf = Buffer.concat([Buffer.alloc(pad, 0xaa), Buffer.from(bytes)]);
        const len = bytes.length;
        const kind = gueClassify(buf, pad, len);
        if (kind === GueKind.Ipv4 || kind === GueKind.Ipv6) expect(gueHeaderLength(buf, pad)).toBeLessThan(len);
        const m = new ControlMessage(buf, pad, len);
        if (m.check() === DropReason.None) {
          expect(m.macOffset + (m.hasMac ? HMAC_LEN : 0)).toBe(pad + len);
          m.describe();
        }
        expect(() => verifyControl(buf, pad, len, key, new ReplayWindow(1), 0)).not.toThrow();
        expect(() => describeGue(buf, pad, len)).not.toThrow();
      }),
      { numRuns: 3000 },
    );
  });
});

describe('keepalive round trip (fast-check)', () => {
  it('parse(emit(x)) === x, verifies with its key and not with another', () => {
    fc.assert(
      fc.property(
        fc.record({
          senderId: fc.nat({ max: 0xffffffff }),
          counter: fc.maxSafeNat(),
          timestampMs: fc.maxSafeNat(),
          interval: fc.nat({ max: 0xffff }),
          epoch: fc.nat({ max: 0xffffffff }),
        }),
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        fc.boolean(),
        (k, keyBytes, keyed) => {
          const key = keyed ? Buffer.from(keyBytes) : null;
          const b = Buffer.alloc(64);
          const n = emitKeepalive(b, 3, k, key);
          const m = new ControlMessage(b, 3, n);
          expect(m.check()).toBe(DropReason.None);
          expect(m.parseKeepalive()).toEqual(k);
          expect(verifyControl(b, 3, n, key)).toBe(DropReason.None);
          if (key) expect(verifyControl(b, 3, n, Buffer.concat([key, Buffer.from([1])]))).toBe(DropReason.BadAuthentication);
        },
      ),
      { numRuns: 500 },
    );
  });
});
