/**
 * tcpdump-style one-liners for whole packets: each view's describe() renders its own header, and
 * this file composes them, handing each IP header's payload to the describer of the protocol
 * inside (ICMP, UDP, TCP; ICMPv6 and the IPv6 extension headers). Kept apart from the views so
 * that no codec imports another only to print it. Allocates: control plane, tests, debugging.
 *
 *   describeIp(buf)            "IP 10.0.0.1.5000 > 10.0.0.2.53: UDP, length 4 (tos 0x0, ...)"
 *   describeIpv4(buf, off, n)  the same for a known IPv4 packet
 *   describeIpv6(buf, off, n)  "IP6 fd00:10::1 > fd00:20::20: HBH ICMP6, multicast listener ..."
 */
import { DropReason } from '../base/drop-reason.ts';
import { formatAddress } from './address-text.ts';
import { describeIcmpv4Body } from './icmpv4.ts';
import { describeIcmpv6Body } from './icmpv6.ts';
import {
  IP_PROTO_AH,
  IP_PROTO_DEST_OPTS,
  IP_PROTO_ESP,
  IP_PROTO_FRAGMENT,
  IP_PROTO_HOP_BY_HOP,
  IP_PROTO_ICMP,
  IP_PROTO_ICMPV6,
  IP_PROTO_NONE,
  IP_PROTO_ROUTING,
  IP_PROTO_TCP,
  IP_PROTO_UDP,
  ipVersion,
} from './ip.ts';
import { Ipv4Packet, type Ipv4PayloadText } from './ipv4.ts';
import { Ipv6Packet, IPV6_HEADER_LEN, IPV6_NEXT_HEADER } from './ipv6.ts';
import { Ipv6Chain, walkIpv6Chain } from './ipv6-chain.ts';
import { nextHeaderName } from './ipv6-ext.ts';
import { describeTcpSegment } from './tcp.ts';
import { describeUdpBody } from './udp.ts';

/** The IPv4 or IPv6 packet at buf[off, off+len) as one line (by its version nibble). Never throws. */
export function describeIp(buf: Uint8Array, off = 0, len = buf.length - off): string {
  if (len > 0 && off >= 0 && off < buf.length && ipVersion(buf, off) === 6) return describeIpv6(buf, off, len);
  return describeIpv4(buf, off, len);
}

/** See Ipv4Packet.describe(): with the ICMP, UDP and TCP payload decoded. Never throws. */
export function describeIpv4(buf: Uint8Array, off: number, len: number): string {
  return new Ipv4Packet(buf, off, len).describe(ipv4Payload);
}

/** See Ipv6Packet.describe(): extension headers named, ICMPv6, UDP and TCP decoded. Never throws. */
export function describeIpv6(buf: Uint8Array, off: number, len: number): string {
  return new Ipv6Packet(buf, off, len).describe(ipv6Payload);
}

const ipv4Payload: Ipv4PayloadText = (protocol, buf, off, len, src, dst, complete) => {
  switch (protocol) {
    case IP_PROTO_ICMP:
      return describeIcmpv4Body(buf, off, len, src, dst, complete);
    case IP_PROTO_UDP:
      return describeUdpBody(buf, off, len, src, dst, complete);
    case IP_PROTO_TCP:
      return describeTcpSegment(buf, off, len, src, dst);
    default:
      return null;
  }
};

let describeChain: Ipv6Chain | null = null;

/** Everything after "IP6 " for the length-checked IPv6 packet at buf[off, off+avail). */
function ipv6Payload(buf: Uint8Array, off: number, avail: number, src: string, dst: string): string {
  const c = (describeChain ??= new Ipv6Chain());
  c.maxHeaders = 64;
  c.maxBytes = 65535;
  c.acceptUnknownNextHeader = true;
  c.acceptRoutingType0 = true;
  const reason = walkIpv6Chain(buf, off, avail, c);
  let prefix = '';
  // Name the extension headers in order, as tcpdump prints them (HBH, DSTOPT, srcrt, frag, AH).
  let nh = buf[off + IPV6_NEXT_HEADER]!;
  let p = off + IPV6_HEADER_LEN;
  const end = c.end;
  for (let n = 0; n < 64 && p + 2 <= end; n++) {
    if (nh === IP_PROTO_HOP_BY_HOP || nh === IP_PROTO_DEST_OPTS) {
      prefix += nh === IP_PROTO_HOP_BY_HOP ? 'HBH ' : 'DSTOPT ';
      const l = (buf[p + 1]! + 1) << 3;
      nh = buf[p]!;
      p += l;
    } else if (nh === IP_PROTO_ROUTING) {
      const l = (buf[p + 1]! + 1) << 3;
      if (p + 8 > end || p + l > end) break;
      prefix += `${describeRouting(buf, p, l)} `;
      nh = buf[p]!;
      p += l;
    } else if (nh === IP_PROTO_AH) {
      const l = (buf[p + 1]! + 2) << 2;
      if (p + 12 > end || p + l > end || l < 12) break;
      const spi = ((buf[p + 4]! << 24) | (buf[p + 5]! << 16) | (buf[p + 6]! << 8) | buf[p + 7]!) >>> 0;
      const seq = ((buf[p + 8]! << 24) | (buf[p + 9]! << 16) | (buf[p + 10]! << 8) | buf[p + 11]!) >>> 0;
      let icv = '';
      for (let i = p + 12; i < p + l; i++) icv += buf[i]!.toString(16).padStart(2, '0');
      prefix += `AH(spi=0x${spi.toString(16).padStart(8, '0')},seq=0x${seq.toString(16)},icv=0x${icv}): `;
      nh = buf[p]!;
      p += l;
    } else if (nh === IP_PROTO_FRAGMENT) {
      if (p + 8 > end) break;
      const fo = ((buf[p + 2]! << 8) | buf[p + 3]!) & 0xfff8;
      prefix += `frag (${fo}|${end - p - 8})`;
      if (fo !== 0) return `${src} > ${dst}: ${prefix}`;
      prefix += ' ';
      nh = buf[p]!;
      p += 8;
    } else break;
  }
  if (reason !== DropReason.None) {
    return `${src} > ${dst}: ${prefix}[bad header chain: ${DropReason[reason] ?? reason}]`;
  }
  const u = c.upperOffset;
  const ul = end - u;
  switch (c.upperProtocol) {
    case IP_PROTO_ICMPV6:
      return `${src} > ${dst}: ${prefix}${describeIcmpv6Body(buf, u, ul)}`;
    // After extension headers tcpdump prints the ports without the addresses: "HBH 1 > 2: UDP".
    case IP_PROTO_UDP:
      if (prefix === '') return describeUdpBody(buf, u, ul, src, dst); // (no frag header)
      if (ul < 8) return `${src} > ${dst}: ${prefix}UDP [truncated]`;
      {
        let t = describeUdpBody(buf, u, ul, '', '').replace(/^\.(\d+) > \.(\d+)/, '$1 > $2');
        // A first fragment holds only part of the datagram its UDP length announces.
        if (c.isFirstFragment) t = t.replace(/ \[bad udp length \d+\]$/, '');
        return `${src} > ${dst}: ${prefix}${t}`;
      }
    case IP_PROTO_TCP:
      if (prefix === '') return describeTcpSegment(buf, u, ul, src, dst);
      return `${src} > ${dst}: ${prefix}${describeTcpSegment(buf, u, ul, '', '')}`;
    case IP_PROTO_NONE:
      return `${src} > ${dst}: ${prefix}no next header`;
    case IP_PROTO_ESP: {
      if (ul < 8) return `${src} > ${dst}: ${prefix}ESP [|esp]`;
      const spi = ((buf[u]! << 24) | (buf[u + 1]! << 16) | (buf[u + 2]! << 8) | buf[u + 3]!) >>> 0;
      const seq = ((buf[u + 4]! << 24) | (buf[u + 5]! << 16) | (buf[u + 6]! << 8) | buf[u + 7]!) >>> 0;
      return `${src} > ${dst}: ${prefix}ESP(spi=0x${spi.toString(16).padStart(8, '0')},seq=0x${seq.toString(16)}), length ${ul}`;
    }
    default:
      return `${src} > ${dst}: ${prefix}${nextHeaderName(c.upperProtocol)} ${ul}`;
  }
}

/** tcpdump's "RT6 (len=2, type=2, segleft=1, [0]fd00:99::1)" for a Routing header inside the packet. */
function describeRouting(buf: Uint8Array, p: number, l: number): string {
  const type = buf[p + 2]!;
  let s = `RT6 (len=${buf[p + 1]}, type=${type}${type === 0 ? ' [Deprecated]' : ''}, segleft=${buf[p + 3]}`;
  if (type === 4) s += `, last-entry=${buf[p + 4]}, tag=${((buf[p + 6]! << 8) | buf[p + 7]!).toString(16)}`;
  if (type === 0 || type === 2 || type === 4) {
    for (let a = p + 8, i = 0; a + 16 <= p + l; a += 16, i++) s += `, [${i}]${formatAddress(buf, a, 6)}`;
  }
  return `${s})`;
}

