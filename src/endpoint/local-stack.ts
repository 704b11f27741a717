/**
 * A small userspace IP host: the endpoint's own addresses (`stack.address`), and the hosts of the
 * in-process example. It reassembles fragments addressed to it, answers ICMP/ICMPv6 echo (any
 * size up to 65535), delivers UDP to bound sockets (ICMP port unreachable otherwise), and offers
 * ping and UDP sockets to embedding apps — so a Node app joins the tunnel network with no root
 * and no kernel TUN.
 *
 * Output: full datagrams handed to `output` (which takes ownership): the endpoint routes them and
 * fragments them to the path MTU; a standalone host's output fragments to its device's MTU.
 * The app-facing API (sockets, ping) allocates per datagram; the echo path does not.
 *
 * `input` never throws: the packet in hand (`held`) is struck off when it is released or passed
 * on; if anything throws meanwhile, the packet still held is released (InternalError), the error
 * counted (`errors`) and reported (`onError`). A socket's 'message' listener that throws is the
 * app's error, not the stack's: counted (`listenerErrors`), reported, delivery carries on.
 */
import { EventEmitter } from 'node:events';
import { DropReason, type DropCounters } from '../base/drop-reason.ts';
import { Reassembler, ReassemblyStatus } from '../frag/reassembly.ts';
import type { PacketBuffer, PacketPools } from '../base/pool.ts';
import { formatAddress, parseAddress, type AddressBytes } from '../wire/address-text.ts';
import {
  buildEchoReply,
  buildIcmpv4Error,
  ICMP_DEST_UNREACHABLE,
  ICMP_ECHO_REPLY,
  ICMP_ECHO_REQUEST,
  ICMP_EXC_FRAGTIME,
  ICMP_TIME_EXCEEDED,
  ICMP_UNREACH_PORT,
  ICMP_UNREACH_PROTOCOL,
  ICMPV4_HEADER_LEN,
  Icmpv4Packet,
  mayReplyWithIcmpError,
} from '../wire/icmpv4.ts';
import { buildIcmpv6Error, echoReplyInPlace } from '../wire/icmpv6-error.ts';
import {
  ICMPV6_DEST_UNREACHABLE,
  ICMPV6_ECHO_REPLY,
  ICMPV6_ECHO_REQUEST,
  ICMPV6_HEADER_LEN,
  ICMPV6_PARAM_PROBLEM,
  ICMPV6_TIME_EXCEEDED,
  Icmpv6Packet,
  PARAM_PROBLEM_NEXT_HEADER,
  TIME_EXCEEDED_REASSEMBLY,
  UNREACH_PORT,
} from '../wire/icmpv6.ts';
import { IP_PROTO_ICMP, IP_PROTO_ICMPV6, IP_PROTO_TCP, IP_PROTO_UDP, ipVersion, IPV6_MIN_MTU, readV4 } from '../wire/ip.ts';
import { Ipv6Chain, walkIpv6Chain } from '../wire/ipv6-chain.ts';
import { IPV4_DST, IPV4_HEADER_LEN, IPV4_SRC, Ipv4Packet } from '../wire/ipv4.ts';
import { IPV6_DST, IPV6_HEADER_LEN, IPV6_SRC, Ipv6Packet, writeIpv6Header } from '../wire/ipv6.ts';
import { UDP_HEADER_LEN, UdpPacket } from '../wire/udp.ts';
import { EMPTY_BYTES } from '../wire/view.ts';
import type { IcmpRateLimiter } from './icmp-rate-limit.ts';

/** Room for an ICMP error of either family: the IPv6 minimum MTU. */
const ERROR_ROOM = IPV6_MIN_MTU;
/** Largest UDP payload in one IPv4 datagram: 65535 - 20 (IPv4) - 8 (UDP). */
const UDP_MAX_PAYLOAD = 65535 - IPV4_HEADER_LEN - UDP_HEADER_LEN;

export interface LocalStackOptions {
  pools: PacketPools;
  /** Our addresses (4 or 16 bytes each). */
  addresses: readonly AddressBytes[];
  /** Where our packets go; takes ownership. */
  output: (p: PacketBuffer) => void;
  drops: DropCounters;
  now?: () => number;
  ttl?: number;
  /** Rate limit for the ICMP errors the stack sends (port unreachable...); none when absent. */
  errorLimit?: IcmpRateLimiter;
  /** Told about exceptions caught in input (where "stack") and thrown by socket listeners ("listener 'message'"). Must not throw. */
  onError?: (err: unknown, where: string) => void;
}

export interface UdpMessageInfo {
  address: string;
  port: number;
  family: 4 | 6;
}

/** A UDP socket of the userspace stack: 'message' (data: Buffer, rinfo: UdpMessageInfo). */
export class StackUdpSocket extends EventEmitter {
  constructor(
    private readonly stack: LocalStack,
    readonly port: number,
  ) {
    super();
  }

  /** Send a datagram (up to 65507 bytes; fragmented on the way as needed). */
  send(data: Uint8Array, port: number, address: string): boolean {
    return this.stack.sendUdp(this.port, data, port, address);
  }

  close(): void {
    this.stack.unbind(this.port);
  }
}

interface PendingPing {
  resolve: (rttMs: number) => void;
  reject: (e: Error) => void;
  sent: number;
  timer: NodeJS.Timeout;
}

export class LocalStack {
  readonly reassembler: Reassembler;
  /** Echo requests answered, ICMP errors sent, UDP datagrams delivered. */
  echoReplies = 0;
  errorsSent = 0;
  udpDelivered = 0;
  /** Exceptions caught inside input (bugs); 'message' listeners that threw. */
  errors = 0;
  listenerErrors = 0;

  private readonly pools: PacketPools;
  private readonly addrs: AddressBytes[];
  private readonly output: (p: PacketBuffer) => void;
  private readonly drops: DropCounters;
  private readonly now: () => number;
  private readonly ttl: number;
  private readonly errorLimit: IcmpRateLimiter | null;
  private readonly sockets = new Map<number, StackUdpSocket>();
  private readonly pings = new Map<number, PendingPing>();
  private readonly chain = new Ipv6Chain();
  private readonly udp = new UdpPacket();
  private readonly icmp4 = new Icmpv4Packet();
  private readonly icmp6 = new Icmpv6Packet();
  private readonly ip4 = new Ipv4Packet();
  private readonly ip6 = new Ipv6Packet();
  private nextEphemeral = 49152;
  private pingId = (process.pid & 0x7fff) + 1;
  private pingSeq = 0;
  private readonly onError: ((err: unknown, where: string) => void) | undefined;
  /** The packet input() holds (not yet released or passed on). */
  private held: PacketBuffer | null = null;

  constructor(opts: LocalStackOptions) {
    this.pools = opts.pools;
    this.addrs = [...opts.addresses];
    this.output = opts.output;
    this.drops = opts.drops;
    this.now = opts.now ?? (() => performance.now());
    this.ttl = opts.ttl ?? 64;
    this.errorLimit = opts.errorLimit ?? null;
    this.onError = opts.onError;
    this.reassembler = new Reassembler({
      pools: opts.pools,
      now: this.now,
      drops: opts.drops,
      onTimeExceeded: (fam, buf, off, len) => this.timeExceeded(fam, buf, off, len),
    });
  }

  get addresses(): readonly AddressBytes[] {
    return this.addrs;
  }

  /** First address of a family (our source for packets we originate). */
  source(family: 4 | 6): AddressBytes | undefined {
    return this.addrs.find((a) => a.family === family);
  }

  /** Is the destination of the packet at buf[off] one of ours? */
  isLocal(buf: Uint8Array, off: number): boolean {
    const v4 = ipVersion(buf, off) === 4;
    const d = off + (v4 ? IPV4_DST : IPV6_DST);
    const n = v4 ? 4 : 16;
    outer: for (const a of this.addrs) {
      if (a.bytes.length !== n) continue;
      for (let i = 0; i < n; i++) if (a.bytes[i] !== buf[d + i]) continue outer;
      return true;
    }
    return false;
  }

  /** Expire reassembly timers (call about once a second). */
  poll(now = this.now()): void {
    this.reassembler.poll(now);
  }

  // ------------------------------------------------------------------ input

  /** A packet addressed to us (already header-checked). Takes ownership; never throws. */
  input(p: PacketBuffer): void {
    const outer = this.held; // input re-entered (our reply routed back to us): keep its record
    this.held = p;
    try {
      const v4 = ipVersion(p.buf, p.offset) === 4;
      const whole = v4 ? this.reassembler.submitV4(p.buf, p.offset, p.length) : this.reassembler.submitV6(p.buf, p.offset, p.length);
      const st = this.reassembler.lastStatus;
      if (st !== ReassemblyStatus.NotFragment) {
        this.release(p); // the reassembler copied what it keeps
        if (whole === null) return;
        p = whole;
        this.held = p;
      }
      if (v4) this.inputV4(p);
      else this.inputV6(p);
    } catch (e) {
      const h = this.held;
      if (h !== null) {
        h.release();
        this.drops.count(DropReason.InternalError);
      }
      this.errors++;
      this.report(e, 'stack');
    } finally {
      this.held = outer;
    }
  }

  /** Release p (struck off `held`). */
  private release(p: PacketBuffer): void {
    if (this.held === p) this.held = null;
    p.release();
  }

  /** Pass p to output (struck off `held` first: output takes ownership). */
  private send(p: PacketBuffer): void {
    if (this.held === p) this.held = null;
    this.output(p);
  }

  private report(err: unknown, where: string): void {
    try {
      this.onError?.(err, where);
    } catch {
      /* the reporter must not throw */
    }
  }

  private inputV4(p: PacketBuffer): void {
    const b = p.buf;
    const off = p.offset;
    const ip = this.ip4.wrap(b, off, p.length);
    const hl = ip.headerLength;
    const proto = ip.protocol;
    if (proto === IP_PROTO_ICMP) {
      const ic = this.icmp4.wrap(b, off + hl, p.length - hl);
      const r = ic.check();
      if (r !== DropReason.None) return this.drop(p, r);
      if (ic.type === ICMP_ECHO_REQUEST) {
        const n = buildEchoReply(b, off, this.ttl);
        if (n === 0) return this.drop(p, DropReason.BadIcmpType);
        p.length = n;
        this.echoReplies++;
        return this.send(p);
      }
      if (ic.type === ICMP_ECHO_REPLY) this.pingReply(ic.echoIdent, ic.echoSeq);
      this.release(p);
      return;
    }
    if (proto === IP_PROTO_UDP) {
      const u = this.udp.wrap(b, off + hl, p.length - hl);
      let r = u.check();
      if (r === DropReason.None && !u.verifyChecksumV4(b, ip.srcOffset, ip.dstOffset)) r = DropReason.BadUdpChecksum;
      if (r !== DropReason.None) return this.drop(p, r);
      const sock = this.sockets.get(u.dstPort);
      if (sock === undefined) return this.unreachable(p, 4, ICMP_DEST_UNREACHABLE, ICMP_UNREACH_PORT);
      this.deliverUdp(sock, b, u.payloadOffset, u.payloadLength, formatAddress(b, ip.srcOffset, 4), u.srcPort, 4);
      this.release(p);
      return;
    }
    if (proto === IP_PROTO_TCP) return this.unreachable(p, 4, ICMP_DEST_UNREACHABLE, ICMP_UNREACH_PORT);
    this.unreachable(p, 4, ICMP_DEST_UNREACHABLE, ICMP_UNREACH_PROTOCOL);
  }

  private inputV6(p: PacketBuffer): void {
    const b = p.buf;
    const off = p.offset;
    const c = this.chain;
    const r = walkIpv6Chain(b, off, p.length, c);
    if (r !== DropReason.None) {
      if (c.icmpCode >= 0) return this.unreachable(p, 6, ICMPV6_PARAM_PROBLEM, c.icmpCode, c.icmpPointer);
      return this.drop(p, r);
    }
    const u = c.upperOffset;
    const proto = c.upperProtocol;
    if (proto === IP_PROTO_ICMPV6) {
      const m = this.icmp6.wrap(b, u, c.end - u);
      const type = c.end - u >= ICMPV6_HEADER_LEN ? m.msgType : -1;
      if (type === ICMPV6_ECHO_REQUEST) {
        const src = this.source(6);
        const rr = echoReplyInPlace(b, off, p.length, this.ttl, src ? src.bytes : null, 0);
        if (rr !== DropReason.None) return this.drop(p, rr);
        p.length = this.ip6.wrap(b, off, p.length).totalLength;
        this.echoReplies++;
        return this.send(p);
      }
      if (type === ICMPV6_ECHO_REPLY) this.pingReply(m.identifier, m.sequence);
      this.release(p);
      return;
    }
    if (proto === IP_PROTO_UDP) {
      const ul = this.udp.wrap(b, u, c.end - u);
      let rr = ul.check();
      if (rr === DropReason.None && !ul.verifyChecksumV6(b, off + IPV6_SRC, off + IPV6_DST)) rr = DropReason.BadUdpChecksum;
      if (rr !== DropReason.None) return this.drop(p, rr);
      const sock = this.sockets.get(ul.dstPort);
      if (sock === undefined) return this.unreachable(p, 6, ICMPV6_DEST_UNREACHABLE, UNREACH_PORT);
      this.deliverUdp(sock, b, ul.payloadOffset, ul.payloadLength, formatAddress(b, off + IPV6_SRC, 6), ul.srcPort, 6);
      this.release(p);
      return;
    }
    if (proto === IP_PROTO_TCP) return this.unreachable(p, 6, ICMPV6_DEST_UNREACHABLE, UNREACH_PORT);
    // Unknown upper layer: parameter problem, unrecognized next header, pointing at it.
    this.unreachable(p, 6, ICMPV6_PARAM_PROBLEM, PARAM_PROBLEM_NEXT_HEADER, c.upperNextHeaderOffset - off);
  }

  private deliverUdp(sock: StackUdpSocket, b: Uint8Array, off: number, len: number, address: string, port: number, family: 4 | 6): void {
    this.udpDelivered++;
    try {
      sock.emit('message', Buffer.from(b.subarray(off, off + len)), { address, port, family } satisfies UdpMessageInfo);
    } catch (e) {
      // the app's listener threw: its error, reported; the datagram was delivered
      this.listenerErrors++;
      this.report(e, "listener 'message'");
    }
  }

  private unreachable(p: PacketBuffer, fam: 4 | 6, type: number, code: number, param = 0): void {
    this.drop(p, DropReason.NotForUs, false);
    const b = p.buf;
    const off = p.offset;
    if (this.errorLimit !== null) {
      const r = this.errorLimit.check(fam, type, code, b, off + (fam === 4 ? IPV4_SRC : IPV6_SRC), this.now());
      if (r !== DropReason.None) {
        this.drops.count(r);
        this.release(p);
        return;
      }
    }
    // We answer from the address the packet was sent to.
    const ours = fam === 4 ? b.subarray(off + IPV4_DST, off + IPV4_DST + 4) : b.subarray(off + IPV6_DST, off + IPV6_DST + 16);
    const q = this.pools.acquire(ERROR_ROOM);
    if (q !== null) {
      const out = q.buf.subarray(0, q.offset + ERROR_ROOM);
      let n = 0;
      try {
        if (fam === 4) {
          if (mayReplyWithIcmpError(b, off, p.length)) n = buildIcmpv4Error(out, q.offset, type, code, param, b, off, p.length, readV4(ours, 0), this.ttl);
        } else {
          n = buildIcmpv6Error(out, q.offset, type, code, param, b, off, p.length, ours, 0, this.ttl);
        }
      } catch (e) {
        q.release();
        throw e;
      }
      if (n > 0) {
        q.length = n;
        this.errorsSent++;
        this.release(p);
        return this.output(q);
      }
      q.release();
    }
    this.release(p);
  }

  private timeExceeded(fam: 4 | 6, buf: Buffer, off: number, len: number): void {
    if (this.errorLimit !== null) {
      const type = fam === 4 ? ICMP_TIME_EXCEEDED : ICMPV6_TIME_EXCEEDED;
      const r = this.errorLimit.check(fam, type, fam === 4 ? ICMP_EXC_FRAGTIME : TIME_EXCEEDED_REASSEMBLY, buf, off + (fam === 4 ? IPV4_SRC : IPV6_SRC), this.now());
      if (r !== DropReason.None) return this.drops.count(r);
    }
    const q = this.pools.acquire(ERROR_ROOM);
    if (q === null) return;
    const out = q.buf.subarray(0, q.offset + ERROR_ROOM);
    // From the address the fragments were sent to (ours).
    let n = 0;
    try {
      n =
        fam === 4
          ? mayReplyWithIcmpError(buf, off, len)
            ? buildIcmpv4Error(out, q.offset, ICMP_TIME_EXCEEDED, ICMP_EXC_FRAGTIME, 0, buf, off, len, readV4(buf, off + IPV4_DST), this.ttl)
            : 0
          : buildIcmpv6Error(out, q.offset, ICMPV6_TIME_EXCEEDED, TIME_EXCEEDED_REASSEMBLY, 0, buf, off, len, buf, off + IPV6_DST, this.ttl);
    } catch (e) {
      q.release();
      throw e;
    }
    if (n === 0) return q.release();
    q.length = n;
    this.errorsSent++;
    this.output(q);
  }

  private drop(p: PacketBuffer, reason: DropReason, release = true): void {
    this.drops.count(reason);
    if (release) this.release(p);
  }

  // ------------------------------------------------------------------ app API

  /** Bind a UDP port (0 = an ephemeral one). */
  udpBind(port = 0): StackUdpSocket {
    if (port === 0) {
      for (let i = 0; i < 16384 && this.sockets.has(this.nextEphemeral); i++) this.nextEphemeral = this.nextEphemeral >= 65535 ? 49152 : this.nextEphemeral + 1;
      port = this.nextEphemeral;
    }
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`udp port out of range: ${port}`);
    if (this.sockets.has(port)) throw new Error(`udp port ${port} in use`);
    const s = new StackUdpSocket(this, port);
    this.sockets.set(port, s);
    return s;
  }

  unbind(port: number): void {
    this.sockets.delete(port);
  }

  /** Build and send a UDP datagram from one of our addresses. Returns false when it could not. */
  sendUdp(srcPort: number, data: Uint8Array, dstPort: number, address: string): boolean {
    const dst = parseAddress(address);
    const src = this.source(dst.family);
    if (src === undefined || data.length > UDP_MAX_PAYLOAD) return false;
    const ipLen = dst.family === 4 ? IPV4_HEADER_LEN : IPV6_HEADER_LEN;
    const udpLen = UDP_HEADER_LEN + data.length;
    const p = this.pools.acquire(ipLen + udpLen);
    if (p === null) {
      this.drops.count(DropReason.PoolExhausted);
      return false;
    }
    const b = p.buf;
    const o = p.offset;
    const u = o + ipLen;
    b.set(data, u + UDP_HEADER_LEN);
    const udp = this.udp.wrap(b, u, udpLen);
    udp.srcPort = srcPort;
    udp.dstPort = dstPort;
    udp.length = udpLen;
    if (dst.family === 4) {
      this.ipv4Header(b, o, ipLen + udpLen, IP_PROTO_UDP, src.bytes, dst.bytes);
      udp.fillChecksumV4(b, o + IPV4_SRC, o + IPV4_DST);
    } else {
      writeIpv6Header(b, o, udpLen, IP_PROTO_UDP, this.ttl, src.bytes, 0, dst.bytes, 0);
      udp.fillChecksumV6(b, o + IPV6_SRC, o + IPV6_DST);
    }
    p.length = ipLen + udpLen;
    this.output(p);
    return true;
  }

  /**
   * Send an echo request of `size` data bytes (like `ping -s`) and resolve with the round-trip
   * time in ms, or reject after `timeoutMs`. The source is the first address of the family, or
   * `from` (one of the stack's own addresses).
   */
  ping(address: string, size = 56, timeoutMs = 2000, from?: string): Promise<number> {
    const dst = parseAddress(address);
    let src = this.source(dst.family);
    if (from !== undefined) {
      const f = parseAddress(from);
      src = this.addrs.find((a) => a.family === f.family && a.bytes.every((b, i) => b === f.bytes[i]));
      if (src === undefined) return Promise.reject(new Error(`${from} is not an address of this endpoint's stack`));
      if (f.family !== dst.family) return Promise.reject(new Error(`cannot ping IPv${dst.family} ${address} from IPv${f.family} ${from}`));
    }
    if (src === undefined) return Promise.reject(new Error(`no IPv${dst.family} address to ping ${address} from`));
    const v4 = dst.family === 4;
    const ipLen = v4 ? IPV4_HEADER_LEN : IPV6_HEADER_LEN;
    const icmpLen = (v4 ? ICMPV4_HEADER_LEN : ICMPV6_HEADER_LEN) + size;
    const p = this.pools.acquire(ipLen + icmpLen);
    if (p === null) return Promise.reject(new Error('buffer pool exhausted'));
    const seq = (this.pingSeq = (this.pingSeq + 1) & 0xffff);
    const id = this.pingId;
    const b = p.buf;
    const o = p.offset;
    const ic = o + ipLen;
    const data = ic + icmpLen - size;
    // ping's pattern: each data byte is its offset in the ICMP message
    for (let i = 0; i < size; i++) b[data + i] = (data - ic + i) & 255;
    if (v4) {
      Icmpv4Packet.emit({ type: ICMP_ECHO_REQUEST, code: 0, rest: 0, ident: id, seq, mtu: 0, pointer: 0, payloadLength: size }, b, ic);
      this.ipv4Header(b, o, ipLen + icmpLen, IP_PROTO_ICMP, src.bytes, dst.bytes);
      this.icmp4.wrap(b, ic, icmpLen).fillChecksum();
    } else {
      const m = this.icmp6.wrap(b, ic, icmpLen);
      m.emit({ type: ICMPV6_ECHO_REQUEST, code: 0, identifier: id, sequence: seq, bodyLength: size });
      writeIpv6Header(b, o, icmpLen, IP_PROTO_ICMPV6, this.ttl, src.bytes, 0, dst.bytes, 0);
      m.fillChecksum(o + IPV6_SRC, o + IPV6_DST, b);
    }
    p.length = ipLen + icmpLen;
    const key = (id << 16) | seq;
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pings.delete(key);
        reject(new Error(`ping ${address}: no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pings.set(key, { resolve, reject, sent: performance.now(), timer });
      this.output(p);
    });
  }

  private pingReply(id: number, seq: number): void {
    const key = (id << 16) | seq;
    const w = this.pings.get(key);
    if (w === undefined) return;
    this.pings.delete(key);
    clearTimeout(w.timer);
    w.resolve(performance.now() - w.sent);
  }

  /** An IPv4 header at b[o] from us: no options, DF clear (big datagrams get fragmented on the way). */
  private ipv4Header(b: Uint8Array, o: number, total: number, proto: number, src: Uint8Array, dst: Uint8Array): void {
    Ipv4Packet.emit(
      {
        src: readV4(src, 0),
        dst: readV4(dst, 0),
        protocol: proto,
        ttl: this.ttl,
        dscp: 0,
        ecn: 0,
        ident: (Math.random() * 65536) | 0,
        dontFragment: false,
        moreFragments: false,
        fragOffset: 0,
        payloadLength: total - IPV4_HEADER_LEN,
        options: EMPTY_BYTES,
      },
      b,
      o,
    );
  }

  /** Close sockets, fail pending pings, drop reassembly state. */
  close(): void {
    for (const w of this.pings.values()) {
      clearTimeout(w.timer);
      w.reject(new Error('stack closed'));
    }
    this.pings.clear();
    this.sockets.clear();
    this.reassembler.clear();
  }
}
