/**
 * Underlay addresses between the data plane's UnderlayAddress ({ family, address, port }), the
 * mobility code's SocketAddress ({ family, bytes, port }) and text. Control plane (allocates).
 */
import { formatAddress, parseAddress } from '../../wire/address-text.ts';
import type { SocketAddress } from '../../wire/binding.ts';
import { ipv6IsV4Mapped } from '../../wire/ip.ts';
import type { UnderlayAddress } from '../dataplane.ts';

export function fromUnderlay(u: UnderlayAddress): SocketAddress | null {
  if (!(u.port > 0 && u.port < 65536)) return null;
  if (u.family === 6 && ipv6IsV4Mapped(u.address, 0)) return { family: 4, bytes: u.address.slice(12), port: u.port };
  return { family: u.family, bytes: u.address, port: u.port };
}

export function toUnderlay(a: SocketAddress): UnderlayAddress {
  return { family: a.family, address: a.bytes, port: a.port };
}

/** A socket's text address and port as a SocketAddress (IPv4-mapped as IPv4); null when unreadable. */
export function socketAddressOf(address: string, port: number): SocketAddress | null {
  if (address === '' || !(port > 0 && port < 65536)) return null;
  try {
    const a = parseAddress(address);
    if (a.family === 6 && ipv6IsV4Mapped(a.bytes, 0)) return { family: 4, bytes: a.bytes.slice(12), port };
    return { family: a.family, bytes: a.bytes, port };
  } catch {
    return null;
  }
}

/** "192.0.2.7:6080" / "[2001:db8::7]:6080"; "-" for null. */
export function socketAddressText(a: SocketAddress | null): string {
  if (a === null) return '-';
  const h = formatAddress(a.bytes, 0, a.family);
  return a.family === 6 ? `[${h}]:${a.port}` : `${h}:${a.port}`;
}

/** Equal address and port (null equals null). */
export function sameAddress(a: SocketAddress | null, b: SocketAddress | null): boolean {
  if (a === null || b === null) return a === b;
  if (a.family !== b.family || a.port !== b.port || a.bytes.length !== b.bytes.length) return false;
  for (let i = 0; i < a.bytes.length; i++) if (a.bytes[i] !== b.bytes[i]) return false;
  return true;
}
