/**
 * What IPv4 and IPv6 share, defined once: the version nibble, protocol numbers, address classes
 * and the minimum MTUs. Every other file imports these from here.
 *
 * Protocol numbers: IANA's "Assigned Internet Protocol Numbers" is one registry for the IPv4
 * Protocol field and the IPv6 Next Header field, so there is one set of names, IP_PROTO_*, for
 * both (IPv6 extension headers included: IP_PROTO_HOP_BY_HOP, IP_PROTO_FRAGMENT, ...).
 *
 * Addresses on the dataplane are never strings: IPv4 as an unsigned 32-bit number (readV4,
 * writeV4), IPv6 as a 16-byte range of a buffer (buf, off); the class tests below take those.
 */

// ---------------------------------------------------------------- version

/** The IP version of the packet at buf[off]: the high nibble of its first byte (4 or 6). */
export function ipVersion(buf: Uint8Array, off: number): number {
  return buf[off]! >> 4;
}

// ---------------------------------------------------------------- protocol numbers (IANA)
export const IP_PROTO_HOP_BY_HOP = 0;
export const IP_PROTO_ICMP = 1;
export const IP_PROTO_IGMP = 2;
/** IPv4 inside IP (IPIP, 4in4 / 4in6). */
export const IP_PROTO_IPIP = 4;
export const IP_PROTO_TCP = 6;
export const IP_PROTO_EGP = 8;
export const IP_PROTO_UDP = 17;
export const IP_PROTO_DCCP = 33;
/** IPv6 inside IP (6in4 / 6in6). */
export const IP_PROTO_IPV6 = 41;
export const IP_PROTO_ROUTING = 43;
export const IP_PROTO_FRAGMENT = 44;
export const IP_PROTO_GRE = 47;
export const IP_PROTO_ESP = 50;
export const IP_PROTO_AH = 51;
export const IP_PROTO_ICMPV6 = 58;
/** IPv6 "No Next Header". */
export const IP_PROTO_NONE = 59;
export const IP_PROTO_DEST_OPTS = 60;
export const IP_PROTO_OSPF = 89;
export const IP_PROTO_SCTP = 132;
export const IP_PROTO_MOBILITY = 135;
export const IP_PROTO_UDPLITE = 136;
export const IP_PROTO_HIP = 139;
export const IP_PROTO_SHIM6 = 140;
/** RFC 3692 / RFC 4727: for experimentation and testing. */
export const IP_PROTO_EXPERIMENT1 = 253;
export const IP_PROTO_EXPERIMENT2 = 254;

// ---------------------------------------------------------------- minimum MTUs
/** Minimum MTU every IPv4 link must carry (RFC 791). */
export const IPV4_MIN_MTU = 68;
/**
 * Datagram size every IPv4 host must accept (RFC 791, RFC 1122 3.3.2 EMTU_R); the smallest
 * MTU a tunnel offers, and the cap on an ICMP error datagram (RFC 1812 4.3.2.3).
 */
export const IPV4_MIN_DATAGRAM = 576;
/** RFC 8200 section 5: every IPv6 link carries 1280-byte packets. */
export const IPV6_MIN_MTU = 1280;

// ---------------------------------------------------------------- IPv4 addresses (uint32)

/** The four bytes at buf[off] as an unsigned 32-bit number. */
export function readV4(buf: Uint8Array, off: number): number {
  return ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
}
export function writeV4(buf: Uint8Array, off: number, a: number): void {
  buf[off] = a >>> 24;
  buf[off + 1] = a >>> 16;
  buf[off + 2] = a >>> 8;
  buf[off + 3] = a;
}
/** Dotted quad of a uint32 (display only). */
export function v4Text(a: number): string {
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

/** 0.0.0.0/8 ("this network"; 0.0.0.0 itself is the unspecified address). */
export function isThisNetworkV4(a: number): boolean {
  return a >>> 24 === 0;
}
export function isLoopbackV4(a: number): boolean {
  return a >>> 24 === 127;
}
export function isMulticastV4(a: number): boolean {
  return a >>> 28 === 0xe;
}
/** 240.0.0.0/4 (class E, reserved), which includes 255.255.255.255. */
export function isClassEV4(a: number): boolean {
  return a >>> 28 === 0xf;
}
export function isLimitedBroadcastV4(a: number): boolean {
  return a >>> 0 === 0xffffffff;
}
export function isLinkLocalV4(a: number): boolean {
  return a >>> 16 === 0xa9fe;
}

// ---------------------------------------------------------------- IPv6 addresses (16-byte ranges)

/** :: */
export function ipv6IsUnspecified(b: Uint8Array, o: number): boolean {
  for (let i = 0; i < 16; i++) if (b[o + i] !== 0) return false;
  return true;
}

/** ::1 */
export function ipv6IsLoopback(b: Uint8Array, o: number): boolean {
  for (let i = 0; i < 15; i++) if (b[o + i] !== 0) return false;
  return b[o + 15] === 1;
}

/** ff00::/8 */
export function ipv6IsMulticast(b: Uint8Array, o: number): boolean {
  return b[o] === 0xff;
}

/** fe80::/10 */
export function ipv6IsLinkLocal(b: Uint8Array, o: number): boolean {
  return b[o] === 0xfe && (b[o + 1]! & 0xc0) === 0x80;
}

/** fc00::/7 (RFC 4193 unique local). */
export function ipv6IsUniqueLocal(b: Uint8Array, o: number): boolean {
  return (b[o]! & 0xfe) === 0xfc;
}

/** ::ffff:0:0/96 (IPv4-mapped). */
export function ipv6IsV4Mapped(b: Uint8Array, o: number): boolean {
  for (let i = 0; i < 10; i++) if (b[o + i] !== 0) return false;
  return b[o + 10] === 0xff && b[o + 11] === 0xff;
}

/** Multicast scope (RFC 4291 2.7): 1 interface, 2 link, 5 site, 8 organisation, 14 global; -1 if not multicast. */
export function ipv6MulticastScope(b: Uint8Array, o: number): number {
  return b[o] === 0xff ? b[o + 1]! & 0x0f : -1;
}
