import { describe, expect, it } from 'vitest';
import { DropReason } from '../../src/base/drop-reason.ts';
import {
  FRAG_HEADER_LEN,
  Ipv6AuthHeader,
  Ipv6FragmentHeader,
  Ipv6OptionScan,
  Ipv6OptionsHeader,
  Ipv6RoutingHeader,
  OPTION_ACTION_DISCARD,
  OPTION_ACTION_DISCARD_ICMP,
  OPTION_ACTION_DISCARD_ICMP_UNICAST,
  OPTION_ACTION_SKIP,
  ahHeaderLength,
  extHeaderLength,
  hasHomeAddressOption,
  isIpv6ExtensionHeader,
  optionAction,
  optionMayChange,
  scanIpv6Options,
  writeFragmentHeader,
  writePadding,
} from '../../src/wire/ipv6-ext.ts';
import { hex } from './ipv6-build.ts';

/** An options header: next header 17, then the given option bytes, padded with PadN/Pad1. */
function opts(...options: number[][]): Uint8Array {
  const body = options.flat();
  const len = Math.ceil((2 + body.length) / 8) * 8;
  const h = new Uint8Array(len);
  h[0] = 17;
  h[1] = len / 8 - 1;
  h.set(body, 2);
  writePadding(h, 2 + body.length, len - 2 - body.length);
  return h;
}

function scan(h: Uint8Array, max?: number): Ipv6OptionScan {
  const s = new Ipv6OptionScan();
  scanIpv6Options(h, 0, h.length, s, max);
  return s;
}

describe('option TLV scan (RFC 8200 4.2)', () => {
  it('action bits and the may-change bit', () => {
    expect(optionAction(0x1e)).toBe(OPTION_ACTION_SKIP);
    expect(optionAction(0x5e)).toBe(OPTION_ACTION_DISCARD);
    expect(optionAction(0x9e)).toBe(OPTION_ACTION_DISCARD_ICMP);
    expect(optionAction(0xde)).toBe(OPTION_ACTION_DISCARD_ICMP_UNICAST);
    expect(optionMayChange(0x3e)).toBe(true);
    expect(optionMayChange(0x1e)).toBe(false);
  });

  it('recognises router alert, jumbo payload, tunnel encapsulation limit, home address', () => {
    const ra = scan(opts([5, 2, 0x00, 0x01]));
    expect(ra.reason).toBe(DropReason.None);
    expect(ra.routerAlert).toBe(1);
    expect(ra.optionCount).toBe(1);
    const j = scan(opts([0xc2, 4, 0x00, 0x01, 0x00, 0x00]));
    expect(j.jumboPayloadLength).toBe(65536);
    const t = scan(opts([4, 1, 3]));
    expect(t.tunnelEncapLimit).toBe(3);
    const hao = opts([1, 2, 0, 0], [0xc9, 16, ...Array.from({ length: 16 }, (_, i) => i)]);
    const hs = scan(hao);
    expect(hs.reason).toBe(DropReason.None);
    expect(hs.homeAddressOffset).toBe(8);
    expect(hasHomeAddressOption(hao, 0, hao.length)).toBe(true);
    expect(hasHomeAddressOption(opts([5, 2, 0, 0]), 0, 8)).toBe(false);
  });

  it('skips unknown options with action 00 and reports others with their offset and action', () => {
    const skip = scan(opts([0x1e, 4, 1, 2, 3, 4]));
    expect(skip.reason).toBe(DropReason.None);
    expect(skip.unknownType).toBe(-1);
    for (const [type, action] of [[0x5e, 1], [0x9e, 2], [0xde, 3]] as const) {
      const h = opts([0x1e, 0], [type, 2, 0, 0]);
      const s = scan(h);
      expect(s.reason).toBe(DropReason.UnrecognizedOption);
      expect(s.unknownType).toBe(type);
      expect(s.unknownOffset).toBe(4);
      expect(s.errorOffset).toBe(4);
      expect(s.action).toBe(action);
    }
  });

  it('option lengths: past the header -> BadOptionLength at the length byte; wrong known lengths too', () => {
    const h = new Uint8Array([17, 0, 0x1e, 9, 0, 0, 0, 0]);
    const s = scan(h);
    expect(s.reason).toBe(DropReason.BadOptionLength);
    expect(s.errorOffset).toBe(3);
    const lone = new Uint8Array([17, 0, 1, 2, 0, 0, 0, 0x1e]); // type byte with no length byte
    expect(scan(lone).reason).toBe(DropReason.BadOptionLength);
    expect(scan(opts([5, 3, 0, 0, 0])).reason).toBe(DropReason.BadOptionLength);
    expect(scan(opts([0xc2, 2, 0, 0])).reason).toBe(DropReason.BadOptionLength);
    expect(scan(opts([4, 2, 0, 0])).reason).toBe(DropReason.BadOptionLength);
    expect(scan(opts([0xc9, 4, 0, 0, 0, 0])).reason).toBe(DropReason.BadOptionLength);
  });

  it('padding: non-zero PadN bytes and runs over 7 bytes are BadOption (as Linux)', () => {
    expect(scan(new Uint8Array([17, 0, 1, 4, 0, 0, 0, 0])).reason).toBe(DropReason.None);
    expect(scan(new Uint8Array([17, 0, 1, 4, 0, 9, 0, 0])).reason).toBe(DropReason.BadOption);
    expect(scan(new Uint8Array([17, 0, 0, 0, 0, 0, 0, 0])).reason).toBe(DropReason.None); // 6 x Pad1
    const long = new Uint8Array(16);
    long[0] = 17;
    long[1] = 1;
    long[2] = 1;
    long[3] = 12; // 14 bytes of PadN
    expect(scan(long).reason).toBe(DropReason.BadOption);
  });

  it('more than maxOptions non-padding options -> TooManyOptions', () => {
    const many = opts(...Array.from({ length: 9 }, () => [0x1e, 0]));
    expect(scan(many).reason).toBe(DropReason.TooManyOptions);
    expect(scan(many, 9).reason).toBe(DropReason.None);
  });

  it('reset between scans', () => {
    const s = new Ipv6OptionScan();
    const a = opts([0xde, 0]);
    scanIpv6Options(a, 0, a.length, s);
    expect(s.unknownType).toBe(0xde);
    const b = opts([5, 2, 0, 0]);
    scanIpv6Options(b, 0, b.length, s);
    expect(s).toEqual(scan(b));
  });
});

describe('header views', () => {
  it('generic lengths', () => {
    expect(extHeaderLength(new Uint8Array([0, 0]), 0)).toBe(8);
    expect(extHeaderLength(new Uint8Array([0, 255]), 0)).toBe(2048);
    expect(ahHeaderLength(new Uint8Array([0, 4]), 0)).toBe(24);
    expect(isIpv6ExtensionHeader(0)).toBe(true);
    expect(isIpv6ExtensionHeader(44)).toBe(true);
    expect(isIpv6ExtensionHeader(135)).toBe(true);
    expect(isIpv6ExtensionHeader(6)).toBe(false);
    expect(isIpv6ExtensionHeader(59)).toBe(false);
  });

  it('Ipv6OptionsHeader: check, fields, scan, emit with padding', () => {
    const b = new Uint8Array(16);
    const h = new Ipv6OptionsHeader(b);
    h.emit({ nextHeader: 6, length: 16 });
    expect(hex(b)).toBe('0601' + '010c' + '000000000000000000000000');
    expect(h.check()).toBe(DropReason.None);
    expect(h.parse()).toEqual({ nextHeader: 6, length: 16 });
    expect(h.describe()).toBe('opts(next 6, len 16)');
    expect(new Ipv6OptionsHeader(b, 0, 1).check()).toBe(DropReason.Truncated);
    expect(new Ipv6OptionsHeader(b, 0, 8).check()).toBe(DropReason.BadExtHeaderLength);
    const eight = new Uint8Array(8);
    new Ipv6OptionsHeader(eight).emit({ nextHeader: 59, length: 8 });
    expect(hex(eight)).toBe('3b000104' + '00000000');
    const s = new Ipv6OptionScan();
    expect(new Ipv6OptionsHeader(eight).scan(s)).toBe(DropReason.None);
  });

  it('writePadding: Pad1 for one byte, PadN otherwise', () => {
    const b = new Uint8Array(4).fill(0xee);
    writePadding(b, 0, 1);
    expect(b[0]).toBe(0);
    writePadding(b, 0, 2);
    expect(hex(b.subarray(0, 2))).toBe('0100');
    writePadding(b, 0, 4);
    expect(hex(b)).toBe('01020000');
  });

  it('Ipv6RoutingHeader: fields, type 0 with segments left is BadRoutingHeader', () => {
    const b = new Uint8Array(24);
    const r = new Ipv6RoutingHeader(b);
    r.emit({ nextHeader: 17, length: 24, routingType: 2, segmentsLeft: 1 });
    expect(hex(b.subarray(0, 4))).toBe('11020201');
    expect(r.check()).toBe(DropReason.None);
    expect(r.parse()).toEqual({ nextHeader: 17, length: 24, routingType: 2, segmentsLeft: 1 });
    expect(r.describe()).toBe('srcrt (len=2, type=2, segleft=1)');
    r.routingType = 0;
    expect(r.check()).toBe(DropReason.BadRoutingHeader);
    r.segmentsLeft = 0;
    expect(r.check()).toBe(DropReason.None);
    expect(new Ipv6RoutingHeader(b, 0, 3).check()).toBe(DropReason.Truncated);
    expect(new Ipv6RoutingHeader(b, 0, 16).check()).toBe(DropReason.BadExtHeaderLength);
  });

  it('Ipv6FragmentHeader: offset in bytes, M flag, identification; emit = writeFragmentHeader', () => {
    // next 58, offset 1352 (=169*8 -> 0x0548), M=1, id 0x01020304
    const bytes = Uint8Array.from([58, 0, 0x05, 0x49, 1, 2, 3, 4]);
    const f = new Ipv6FragmentHeader(bytes);
    expect(f.check()).toBe(DropReason.None);
    expect(f.fragmentOffset).toBe(1352);
    expect(f.moreFragments).toBe(true);
    expect(f.identification).toBe(0x01020304);
    expect(f.describe()).toBe('frag (1352|0)');
    const out = new Uint8Array(FRAG_HEADER_LEN);
    new Ipv6FragmentHeader(out).emit(f.parse());
    expect(hex(out)).toBe(hex(bytes));
    const w = new Uint8Array(8);
    writeFragmentHeader(w, 0, 58, 1352, true, 0x01020304);
    expect(hex(w)).toBe(hex(bytes));
    f.moreFragments = false;
    expect(bytes[3]).toBe(0x48);
    f.fragmentOffset = 65528;
    expect(hex(bytes.subarray(2, 4))).toBe('fff8');
    f.identification = 0xffffffff;
    expect(f.identification).toBe(0xffffffff);
    expect(new Ipv6FragmentHeader(bytes, 0, 7).check()).toBe(DropReason.Truncated);
  });

  it('Ipv6AuthHeader: (len + 2) * 4, SPI and sequence', () => {
    const b = Uint8Array.from([6, 4, 0, 0, 0, 0, 0x10, 0x01, 0, 0, 0, 9, ...new Array(12).fill(0xab)]);
    const a = new Ipv6AuthHeader(b);
    expect(a.check()).toBe(DropReason.None);
    expect(a.headerLength).toBe(24);
    expect(a.spi).toBe(0x1001);
    expect(a.sequence).toBe(9);
    expect(a.describe()).toBe('AH(spi=0x00001001,seq=0x9)');
    b[1] = 3; // 20 bytes: not a multiple of 8
    expect(a.check()).toBe(DropReason.BadExtHeaderLength);
    b[1] = 9; // 44 bytes > 24
    expect(a.check()).toBe(DropReason.BadExtHeaderLength);
    expect(new Ipv6AuthHeader(b, 0, 11).check()).toBe(DropReason.Truncated);
  });
});
