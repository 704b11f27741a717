/**
 * struct sockaddr_in (16 bytes) and sockaddr_in6 (28 bytes). The family is in host byte order
 * (little-endian on x86-64 / arm64), port and addresses in network byte order.
 *
 *   sockaddr_in   { u16 family; be16 port; be32 addr; u8 zero[8]; }
 *   sockaddr_in6  { u16 family; be16 port; be32 flowinfo; u8 addr[16]; u32 scope_id; }
 */
import { AF_INET, AF_INET6 } from './linux.ts';

export const SOCKADDR_IN_SIZE = 16;
export const SIN_FAMILY = 0;
export const SIN_PORT = 2;
export const SIN_ADDR = 4;

export const SOCKADDR_IN6_SIZE = 28;
export const SIN6_FAMILY = 0;
export const SIN6_PORT = 2;
export const SIN6_FLOWINFO = 4;
export const SIN6_ADDR = 8;
export const SIN6_SCOPE_ID = 24;

/** Write a sockaddr_in for `addr` (uint32, host value) and `port`; returns its size. */
export function writeSockaddrIn(u8: Uint8Array, off: number, addr: number, port: number): number {
  u8.fill(0, off, off + SOCKADDR_IN_SIZE);
  u8[off + SIN_FAMILY] = AF_INET & 0xff;
  u8[off + SIN_FAMILY + 1] = AF_INET >>> 8;
  u8[off + SIN_PORT] = port >>> 8;
  u8[off + SIN_PORT + 1] = port;
  u8[off + SIN_ADDR] = addr >>> 24;
  u8[off + SIN_ADDR + 1] = addr >>> 16;
  u8[off + SIN_ADDR + 2] = addr >>> 8;
  u8[off + SIN_ADDR + 3] = addr;
  return SOCKADDR_IN_SIZE;
}

/** Write a sockaddr_in6 for the 16 address bytes at src[srcOff]; returns its size. */
export function writeSockaddrIn6(
  u8: Uint8Array,
  off: number,
  src: Uint8Array,
  srcOff: number,
  port: number,
  scopeId = 0,
): number {
  u8.fill(0, off, off + SOCKADDR_IN6_SIZE);
  u8[off + SIN6_FAMILY] = AF_INET6 & 0xff;
  u8[off + SIN6_FAMILY + 1] = AF_INET6 >>> 8;
  u8[off + SIN6_PORT] = port >>> 8;
  u8[off + SIN6_PORT + 1] = port;
  for (let i = 0; i < 16; i++) u8[off + SIN6_ADDR + i] = src[srcOff + i]!;
  u8[off + SIN6_SCOPE_ID] = scopeId;
  u8[off + SIN6_SCOPE_ID + 1] = scopeId >>> 8;
  u8[off + SIN6_SCOPE_ID + 2] = scopeId >>> 16;
  u8[off + SIN6_SCOPE_ID + 3] = scopeId >>> 24;
  return SOCKADDR_IN6_SIZE;
}

export function sockaddrFamily(u8: Uint8Array, off: number): number {
  return u8[off + SIN_FAMILY]! | (u8[off + SIN_FAMILY + 1]! << 8);
}
export function sockaddrPort(u8: Uint8Array, off: number): number {
  return (u8[off + SIN_PORT]! << 8) | u8[off + SIN_PORT + 1]!;
}
/** The IPv4 address of a sockaddr_in as uint32. */
export function sockaddrInAddr(u8: Uint8Array, off: number): number {
  const o = off + SIN_ADDR;
  return ((u8[o]! << 24) | (u8[o + 1]! << 16) | (u8[o + 2]! << 8) | u8[o + 3]!) >>> 0;
}
