/**
 * Text <-> bytes for IPv4/IPv6 addresses and prefixes, for config, CLI and display only (never
 * on the hot path: the dataplane reads addresses straight out of packet buffers).
 * Parsing uses ip-address; errors are AddressTextError with a one-line message that names the
 * offending text, so config and CLI code can prefix it with a path or line number.
 */
import { Address4, Address6 } from 'ip-address';
import { readV4 } from './ip.ts';

export type Family = 4 | 6;

export interface AddressBytes {
  family: Family;
  /** 4 or 16 bytes, network order. */
  bytes: Uint8Array;
}

export interface Prefix extends AddressBytes {
  /** Prefix length in bits. */
  length: number;
}

export class AddressTextError extends Error {
  override name = 'AddressTextError';
}

const V4_RE = /^\d{1,3}(\.\d{1,3}){3}$/;

/** Parse "192.0.2.1" or "2001:db8::1" (no prefix length, no zone). */
export function parseAddress(text: string): AddressBytes {
  const t = text.trim();
  if (t.includes('/')) throw new AddressTextError(`unexpected prefix length in address ${t}`);
  if (V4_RE.test(t)) {
    if (!Address4.isValid(t)) throw new AddressTextError(`invalid IPv4 address ${t}`);
    return { family: 4, bytes: Uint8Array.from(new Address4(t).toArray()) };
  }
  if (t.includes(':') && !t.includes('%') && Address6.isValid(t)) {
    return { family: 6, bytes: v6Bytes(new Address6(t)) };
  }
  throw new AddressTextError(`invalid address ${t}`);
}

function v6Bytes(a: Address6): Uint8Array {
  const raw = a.toUnsignedByteArray();
  const out = new Uint8Array(16);
  out.set(raw.slice(-16), 16 - Math.min(16, raw.length));
  return out;
}

/**
 * Parse "192.168.20.0/24", "fd00:20::/64", or a bare address (a host prefix).
 * `hostBits` says what to do with bits set beyond the prefix length: 'error' (the default, as
 * Linux does for routes: "host bits set in 192.168.20.1/24"), 'clear' them, or 'keep' them (an
 * interface address such as 10.0.0.1/30, where they are the address).
 */
export function parsePrefix(text: string, hostBits: 'error' | 'clear' | 'keep' = 'error'): Prefix {
  const t = text.trim();
  const slash = t.indexOf('/');
  const a = parseAddress(slash < 0 ? t : t.slice(0, slash));
  const max = a.family === 4 ? 32 : 128;
  let length = max;
  if (slash >= 0) {
    const lenText = t.slice(slash + 1);
    if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > max) {
      throw new AddressTextError(`invalid prefix length in ${t}`);
    }
    length = Number(lenText);
  }
  if (hostBits !== 'keep' && hostBitsSet(a.bytes, length)) {
    if (hostBits === 'error') throw new AddressTextError(`host bits set in ${t}`);
    maskInPlace(a.bytes, length);
  }
  return { family: a.family, bytes: a.bytes, length };
}

export function hostBitsSet(bytes: Uint8Array, length: number): boolean {
  for (let bit = length; bit < bytes.length * 8; bit++) {
    if ((bytes[bit >> 3]! >> (7 - (bit & 7))) & 1) return true;
  }
  return false;
}

export function maskInPlace(bytes: Uint8Array, length: number): void {
  for (let bit = length; bit < bytes.length * 8; bit++) {
    bytes[bit >> 3]! &= ~(1 << (7 - (bit & 7)));
  }
}

/** Is address `a` inside prefix `p` (same family, first p.length bits equal)? */
export function prefixContains(p: Prefix, a: AddressBytes): boolean {
  if (p.family !== a.family) return false;
  for (let bit = 0; bit < p.length; bit++) {
    const m = 1 << (7 - (bit & 7));
    if ((p.bytes[bit >> 3]! & m) !== (a.bytes[bit >> 3]! & m)) return false;
  }
  return true;
}

/** Format 4 or 16 bytes at buf[off] as text (RFC 5952 compressed form for IPv6). */
export function formatAddress(buf: Uint8Array, off: number, family: Family): string {
  if (family === 4) return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
  const parts: number[] = [];
  for (let i = 0; i < 16; i += 2) parts.push((buf[off + i]! << 8) | buf[off + i + 1]!);
  // Longest run of >= 2 zero groups, first one on ties (RFC 5952 4.2).
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (parts[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && parts[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (ns: number[]) => ns.map((n) => n.toString(16)).join(':');
  // IPv4-mapped ::ffff:a.b.c.d
  if (bestStart === 0 && bestLen === 5 && parts[5] === 0xffff) {
    return `::ffff:${buf[off + 12]}.${buf[off + 13]}.${buf[off + 14]}.${buf[off + 15]}`;
  }
  if (bestStart < 0) return hex(parts);
  return `${hex(parts.slice(0, bestStart))}::${hex(parts.slice(bestStart + bestLen))}`;
}

/** Format a Prefix as CIDR text. */
export function formatPrefix(p: Prefix): string {
  return `${formatAddress(p.bytes, 0, p.family)}/${p.length}`;
}

/** An IPv4 address as an unsigned 32-bit number (the dataplane's representation). */
export function v4ToNumber(bytes: Uint8Array, off = 0): number {
  return readV4(bytes, off);
}

/**
 * Parse "host:port", "[v6]:port" or "v4:port" into address bytes and port; `defaultPort` used
 * when the port is omitted. Host names are not resolved (an endpoint is an address).
 */
export function parseEndpoint(text: string, defaultPort?: number): AddressBytes & { port: number } {
  const t = text.trim();
  let host: string;
  let portText: string | undefined;
  if (t.startsWith('[')) {
    const close = t.indexOf(']');
    if (close < 0) throw new AddressTextError(`missing ] in ${t}`);
    host = t.slice(1, close);
    const rest = t.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) throw new AddressTextError(`invalid endpoint ${t}`);
      portText = rest.slice(1);
    }
  } else {
    const colons = t.split(':').length - 1;
    if (colons === 1) {
      host = t.slice(0, t.indexOf(':'));
      portText = t.slice(t.indexOf(':') + 1);
    } else {
      host = t; // bare v4, or bare v6 without brackets (no port)
    }
  }
  let port: number;
  if (portText === undefined) {
    if (defaultPort === undefined) throw new AddressTextError(`missing port in ${t}`);
    port = defaultPort;
  } else {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
      throw new AddressTextError(`port out of range in ${t} (1-65535)`);
    }
    port = Number(portText);
  }
  return { ...parseAddress(host), port };
}
