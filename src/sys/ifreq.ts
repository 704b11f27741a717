/**
 * struct ifreq (40 bytes): the interface name (16 bytes, NUL-terminated) then a union whose
 * first member we use as `short ifr_flags` (TUNSETIFF / TUNGETIFF) or `int ifr_mtu`.
 */
import { IFNAMSIZ } from './linux.ts';

export const IFREQ_SIZE = 40;
export const IFR_NAME = 0;
export const IFR_FLAGS = 16;
export const IFR_MTU = 16;

/** Write `name` (ASCII, at most 15 bytes; '' lets the kernel pick) and clear the rest. */
export function writeIfreq(u8: Uint8Array, off: number, name: string, flags: number): boolean {
  if (name.length >= IFNAMSIZ || !/^[\x21-\x7e]*$/.test(name) || name.includes('/')) return false;
  u8.fill(0, off, off + IFREQ_SIZE);
  for (let i = 0; i < name.length; i++) u8[off + IFR_NAME + i] = name.charCodeAt(i);
  u8[off + IFR_FLAGS] = flags & 0xff;
  u8[off + IFR_FLAGS + 1] = (flags >>> 8) & 0xff;
  return true;
}

export function ifreqName(u8: Uint8Array, off: number): string {
  let s = '';
  for (let i = 0; i < IFNAMSIZ; i++) {
    const c = u8[off + IFR_NAME + i]!;
    if (c === 0) break;
    s += String.fromCharCode(c);
  }
  return s;
}

export function ifreqFlags(u8: Uint8Array, off: number): number {
  return u8[off + IFR_FLAGS]! | (u8[off + IFR_FLAGS + 1]! << 8);
}
