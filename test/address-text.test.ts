import { describe, expect, it } from 'vitest';
import { formatAddress, parseAddress, parseEndpoint, parsePrefix } from '../src/wire/address-text.ts';

describe('address text', () => {
  it('parses and formats v4 and v6', () => {
    const a = parseAddress('192.168.20.20');
    expect(a.family).toBe(4);
    expect([...a.bytes]).toEqual([192, 168, 20, 20]);
    const b = parseAddress('fd00:20::1');
    expect(formatAddress(b.bytes, 0, 6)).toBe('fd00:20::1');
    expect(formatAddress(parseAddress('::').bytes, 0, 6)).toBe('::');
    expect(formatAddress(parseAddress('2001:db8:0:0:1:0:0:1').bytes, 0, 6)).toBe('2001:db8::1:0:0:1');
    expect(formatAddress(parseAddress('::ffff:1.2.3.4').bytes, 0, 6)).toBe('::ffff:1.2.3.4');
  });

  it('rejects host bits like Linux and bad text with one line naming it', () => {
    expect(() => parsePrefix('192.168.20.1/24')).toThrow('host bits set in 192.168.20.1/24');
    expect(parsePrefix('192.168.20.1/24', 'clear').bytes[3]).toBe(0);
    expect(parsePrefix('10.0.0.1/30', 'keep').bytes[3]).toBe(1);
    expect(() => parsePrefix('10.0.0.0/33')).toThrow('invalid prefix length in 10.0.0.0/33');
    expect(() => parseAddress('300.1.1.1')).toThrow('invalid IPv4 address 300.1.1.1');
    expect(parsePrefix('fd00:20::/64').length).toBe(64);
  });

  it('parses endpoints', () => {
    expect(parseEndpoint('203.0.113.20:5555').port).toBe(5555);
    const e = parseEndpoint('[fd00::2]:6080');
    expect(e.family).toBe(6);
    expect(e.port).toBe(6080);
    expect(() => parseEndpoint('1.2.3.4:70000')).toThrow('port out of range');
    expect(parseEndpoint('1.2.3.4', 6080).port).toBe(6080);
  });
});
