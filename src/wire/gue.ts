/**
 * Generic UDP Encapsulation (draft-ietf-intarea-gue-09) as ipferry puts it on the wire.
 *
 * One UDP port carries everything. The first two bits of the UDP payload select the GUE variant:
 *
 * ## Data, variant 1 (what we send): the UDP payload IS the inner IP packet
 *
 * Zero bytes of overhead. The IP version nibble doubles as the variant: 0100 (IPv4) and 0110
 * (IPv6) both start with bits `01`. These are the bytes Linux sends for ipip/sit/ip6tnl tunnels
 * with `encap fou`, and what a Linux `ip fou add port P gue` receive port accepts ("direct IP
 * encapsulation"), so 4in4 (IPIP), 6in4, 4in6 and 6in6 all share one socket.
 *
 * | byte | bits | field                  | value                                        |
 * |------|------|------------------------|----------------------------------------------|
 * | 0    | 7-6  | GUE variant            | `01`                                         |
 * | 0    | 7-4  | inner IP version       | `0100` = IPv4, `0110` = IPv6 (5, 7: invalid) |
 * | 0..  |      | inner IPv4/IPv6 packet | unchanged, first byte included               |
 *
 * ## Variant 0 header (control messages; data from Linux `encap gue` is accepted too)
 *
 * ```
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |0 0|C|  Hlen   |  Proto/ctype  |             Flags             |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~       extension fields and private data (Hlen words)          ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                   payload (after 4 + 4*Hlen)                  ~
 * ```
 *
 * | byte | bits | field       | meaning                                                         |
 * |------|------|-------------|-----------------------------------------------------------------|
 * | 0    | 7-6  | Ver         | variant, `00`                                                   |
 * | 0    | 5    | C           | 1 = control message, 0 = data                                   |
 * | 0    | 4-0  | Hlen        | words (4 bytes) of optional fields after this first word, 0..31 |
 * | 1    |      | Proto/ctype | C=0: IP protocol of the payload (4 IPv4, 41 IPv6); C=1: ctype   |
 * | 2-3  |      | Flags       | extension flags; we set 0 and accept data only with 0           |
 * | 4..  |      | options     | 4*Hlen bytes (extension fields, private data); skipped          |
 *
 * Linux `encap gue` sends this variant-0 form for data (Hlen 0, proto 4 or 41): we accept it.
 * ipferry sends variant 0 only for control messages, always with Hlen 0 and Flags 0.
 *
 * ## Control message (ipferry), the payload of a variant-0 C=1 packet
 *
 * ctype numbers come from the draft's user-defined range 128..255 (0 is reserved by the draft,
 * 1..127 are for IANA-assigned standard types), so they never collide with standard GUE control.
 *
 * | ctype | name           | body                                                |
 * |-------|----------------|-----------------------------------------------------|
 * | 128   | KEEPALIVE      | 16 bytes, below                                     |
 * | 129   | BINDING_UPDATE | mobility: src/wire/binding.ts                       |
 * | 130   | BINDING_ACK    | mobility: src/wire/binding.ts                       |
 * | 131-133 |              | mobility: path challenge / response, refresh request|
 * | 134-143 |              | reserved for ipferry                                |
 *
 * Common control header (16 bytes), at the GUE payload offset (4 when Hlen = 0):
 *
 * | offset | size | field       | meaning                                                       |
 * |--------|------|-------------|---------------------------------------------------------------|
 * | 0      | 1    | msg version | 1                                                             |
 * | 1      | 1    | msg flags   | bit 0 (0x01) A: an HMAC trailer follows the body; others 0     |
 * | 2      | 2    | body length | bytes of body after this header (big-endian)                  |
 * | 4      | 4    | sender id   | 32-bit id of the sender (`senderIdFromName`: SHA-256 prefix)  |
 * | 8      | 8    | counter     | uint64 BE, strictly increasing per sender (replay protection) |
 * | 16     | n    | body        | per ctype                                                     |
 * | 16+n   | 16   | HMAC        | only when A: HMAC-SHA256 truncated to 16 bytes (RFC 4868 style)|
 *
 * The counter starts at the sender's clock in microseconds since 1970 and counts up by one per
 * message, never falling behind that clock while the sender runs (below 2^53: exact in a JS
 * number). Receivers keep the last accepted counter per peer and drop anything not greater —
 * within one sender epoch for keepalives (below). Mobility's messages (src/wire/binding.ts) keep
 * the counter as a clock on purpose: their receivers also refuse counters far from their own
 * clock, which is what protects a restarted home agent from replayed binding updates.
 * (This file is the codec; the counter, the replay window and the checks that need per-peer state
 * are in src/tunnel/control.ts and src/tunnel/replay.ts.)
 *
 * KEEPALIVE body (16 bytes; was 12 before the boot epoch was added, issue 12):
 *
 * | offset | size | field      | meaning                                                        |
 * |--------|------|------------|----------------------------------------------------------------|
 * | 0      | 8    | timestamp  | sender's clock, milliseconds since 1970, uint64 BE (informative)|
 * | 8      | 2    | interval   | sender's keepalive interval in seconds (0 = not periodic)      |
 * | 10     | 2    | reserved   | 0                                                              |
 * | 12     | 4    | boot epoch | uint32 BE, drawn at random each time the sender starts         |
 *
 * The boot epoch makes keepalive replay state survive clock steps: a receiver orders counters
 * only within one epoch; a new epoch is the sender's restart and starts a new order, whatever its
 * counter (a clock stepped back across the restart would otherwise make every keepalive look like
 * a replay); a receiver refuses the last few epochs it saw replaced (RETIRED_EPOCHS in
 * src/tunnel/replay.ts). Replay state is kept only for peers with a key: without a MAC a counter
 * (or epoch) proves nothing, and a spoofed 2^64-1 must not silence the real peer.
 *
 * HMAC trailer: HMAC-SHA256 keyed with the peer's pre-shared key over every byte from the first
 * byte of the GUE header to the last byte of the body (GUE header, options, control header,
 * body), truncated to the first 16 bytes. A keepalive is 36 bytes of UDP payload, 52 with HMAC.
 * When a key is configured for the peer, a control message without A or with a wrong MAC is
 * dropped (BadAuthentication); a message carrying our own sender id (a reflection) likewise.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { DropReason } from '../base/drop-reason.ts';
import { IP_PROTO_IPIP, IP_PROTO_IPV6 } from './ip.ts';

// --- variant 0 header field offsets and masks
export const GUE_HEADER_LEN = 4;
const FIELD_VER_C_HLEN = 0;
const FIELD_PROTO_CTYPE = 1;
const FIELD_FLAGS = 2;
const MASK_C = 0x20;
const MASK_HLEN = 0x1f;

/** Control message types (user-defined range of draft-ietf-intarea-gue). */
export const CTYPE_KEEPALIVE = 128;
export const CTYPE_BINDING_UPDATE = 129;
export const CTYPE_BINDING_ACK = 130;

export const CONTROL_VERSION = 1;
export const CONTROL_FLAG_AUTH = 0x01;
export const CONTROL_HEADER_LEN = 16;
export const HMAC_LEN = 16;
export const KEEPALIVE_BODY_LEN = 16;

// control header field offsets (relative to the GUE payload)
const CF_VERSION = 0;
const CF_FLAGS = 1;
const CF_BODY_LEN = 2;
const CF_SENDER = 4;
const CF_COUNTER = 8;
// keepalive body field offsets (relative to the body)
const KF_TIMESTAMP = 0;
const KF_INTERVAL = 8;
const KF_RESERVED = 10;
const KF_EPOCH = 12;

const TWO32 = 0x1_0000_0000;

/** What a UDP payload is. Ipv4/Ipv6 equal the inner IP version. */
export enum GueKind {
  Bad = 0,
  Control = 1,
  Ipv4 = 4,
  Ipv6 = 6,
}

const CTYPE_NAMES: Record<number, string> = {
  [CTYPE_KEEPALIVE]: 'keepalive',
  [CTYPE_BINDING_UPDATE]: 'binding-update',
  [CTYPE_BINDING_ACK]: 'binding-ack',
};

/**
 * Classify a UDP payload without allocating. Ipv4/Ipv6: the inner packet starts
 * `gueHeaderLength(buf, off)` bytes in (0 for variant 1). Control: check it with `ControlMessage`
 * / `verifyControl`. Bad: drop and count DropReason.BadGue.
 */
export function gueClassify(buf: Uint8Array, off: number, len: number): GueKind {
  if (len < 1) return GueKind.Bad;
  const b0 = buf[off]!;
  switch (b0 >> 6) {
    case 1: {
      const v = b0 >> 4;
      return v === 4 ? GueKind.Ipv4 : v === 6 ? GueKind.Ipv6 : GueKind.Bad;
    }
    case 0: {
      if (len < GUE_HEADER_LEN) return GueKind.Bad;
      const hdrLen = GUE_HEADER_LEN + (b0 & MASK_HLEN) * 4;
      if (hdrLen > len) return GueKind.Bad;
      if (b0 & MASK_C) return GueKind.Control;
      // data: only plain encapsulation (no extension flags we would have to process)
      if (buf[off + FIELD_FLAGS]! !== 0 || buf[off + FIELD_FLAGS + 1]! !== 0) return GueKind.Bad;
      if (hdrLen === len) return GueKind.Bad;
      const proto = buf[off + FIELD_PROTO_CTYPE]!;
      const v = buf[off + hdrLen]! >> 4;
      if (proto === IP_PROTO_IPIP && v === 4) return GueKind.Ipv4;
      if (proto === IP_PROTO_IPV6 && v === 6) return GueKind.Ipv6;
      return GueKind.Bad;
    }
    default:
      return GueKind.Bad;
  }
}

/** The ctype of a variant-0 header at buf[off] (after gueClassify said Control). */
export function gueCtype(buf: Uint8Array, off: number): number {
  return buf[off + FIELD_PROTO_CTYPE]!;
}

/** Bytes of GUE header in front of the inner packet: 0 for variant 1, 4 + 4*Hlen for variant 0. */
export function gueHeaderLength(buf: Uint8Array, off: number): number {
  const b0 = buf[off]!;
  return b0 >> 6 === 0 ? GUE_HEADER_LEN + (b0 & MASK_HLEN) * 4 : 0;
}

/** Plain representation of a variant-0 GUE header. */
export interface GueRepr {
  control: boolean;
  /** IP protocol (data) or control type. */
  protoCtype: number;
  flags: number;
  /** Bytes of optional fields (extension fields + private data) after the first word; multiple of 4. */
  optionsLength: number;
}

/** View of a variant-0 GUE header over (buf, off, len), len = the whole UDP payload. */
export class GueHeader {
  constructor(
    public buf: Buffer,
    public off = 0,
    public len = buf.length - off,
  ) {}

  /** Re-point the view (reuse one instance on the hot path). */
  wrap(buf: Buffer, off: number, len: number): this {
    this.buf = buf;
    this.off = off;
    this.len = len;
    return this;
  }

  /** The 2-bit variant ("Ver"): 0 for this header. */
  get version(): number {
    return this.buf[this.off + FIELD_VER_C_HLEN]! >> 6;
  }
  get control(): boolean {
    return (this.buf[this.off + FIELD_VER_C_HLEN]! & MASK_C) !== 0;
  }
  get hlen(): number {
    return this.buf[this.off + FIELD_VER_C_HLEN]! & MASK_HLEN;
  }
  get protoCtype(): number {
    return this.buf[this.off + FIELD_PROTO_CTYPE]!;
  }
  get flags(): number {
    return this.buf.readUInt16BE(this.off + FIELD_FLAGS);
  }
  /** Bytes of optional fields after the first word (4 * Hlen). */
  get optionsLength(): number {
    return this.hlen * 4;
  }
  /** Total header length in bytes (4 + 4 * Hlen). */
  get headerLength(): number {
    return GUE_HEADER_LEN + this.hlen * 4;
  }
  /** Absolute offset of the payload in `buf`. */
  get payloadOffset(): number {
    return this.off + this.headerLength;
  }
  get payloadLength(): number {
    return this.len - this.headerLength;
  }

  set control(c: boolean) {
    const i = this.off + FIELD_VER_C_HLEN;
    this.buf[i] = c ? this.buf[i]! | MASK_C : this.buf[i]! & ~MASK_C;
  }
  set hlen(h: number) {
    const i = this.off + FIELD_VER_C_HLEN;
    this.buf[i] = (this.buf[i]! & ~MASK_HLEN) | (h & MASK_HLEN);
  }
  set protoCtype(v: number) {
    this.buf[this.off + FIELD_PROTO_CTYPE] = v;
  }
  set flags(v: number) {
    this.buf.writeUInt16BE(v & 0xffff, this.off + FIELD_FLAGS);
  }

  /** Length and consistency check; None when the fields above are safe to use. */
  check(): DropReason {
    if (this.len < GUE_HEADER_LEN) return DropReason.BadGue;
    if (this.version !== 0) return DropReason.BadGue;
    if (this.headerLength > this.len) return DropReason.BadGue;
    return DropReason.None;
  }

  parse(): GueRepr {
    return { control: this.control, protoCtype: this.protoCtype, flags: this.flags, optionsLength: this.optionsLength };
  }

  /** Write the header (options area zero-filled); returns the header length. */
  static emit(buf: Buffer, off: number, r: GueRepr): number {
    if (r.optionsLength % 4 !== 0 || r.optionsLength > MASK_HLEN * 4) throw new RangeError('GUE options length');
    buf[off] = (r.control ? MASK_C : 0) | (r.optionsLength / 4);
    buf[off + FIELD_PROTO_CTYPE] = r.protoCtype;
    buf.writeUInt16BE(r.flags & 0xffff, off + FIELD_FLAGS);
    buf.fill(0, off + GUE_HEADER_LEN, off + GUE_HEADER_LEN + r.optionsLength);
    return GUE_HEADER_LEN + r.optionsLength;
  }

  describe(): string {
    if (this.check() !== DropReason.None) return `GUE bad len ${this.len}`;
    const what = this.control
      ? `ctrl ctype ${this.protoCtype}${CTYPE_NAMES[this.protoCtype] ? ` (${CTYPE_NAMES[this.protoCtype]})` : ''}`
      : `data proto ${this.protoCtype}`;
    return `GUE v0 ${what} hlen ${this.hlen} flags 0x${this.flags.toString(16).padStart(4, '0')} len ${this.len}`;
  }
}

/** One line for any UDP payload, tcpdump style (control plane / debugging only). */
export function describeGue(buf: Buffer, off = 0, len = buf.length - off): string {
  const kind = gueClassify(buf, off, len);
  if (kind === GueKind.Bad) return `GUE bad (first byte 0x${len > 0 ? buf[off]!.toString(16).padStart(2, '0') : '--'}, len ${len})`;
  if (kind === GueKind.Control) {
    const m = new ControlMessage(buf, off, len);
    return m.check() === DropReason.None ? m.describe() : new GueHeader(buf, off, len).describe();
  }
  const h = gueHeaderLength(buf, off);
  return `GUE ${h === 0 ? 'v1' : `v0 hlen ${(h - 4) / 4}`} IPv${kind} len ${len - h}`;
}

// ---------------------------------------------------------------------------------------------
// control messages

/** Plain representation of a control message (header fields + raw body). */
export interface ControlRepr {
  ctype: number;
  senderId: number;
  /** Non-negative integer below 2^53. */
  counter: number;
  body: Uint8Array;
}

export interface KeepaliveRepr {
  senderId: number;
  counter: number;
  /** Milliseconds since 1970. */
  timestampMs: number;
  /** Keepalive interval in seconds (0 = not periodic). */
  interval: number;
  /** The sender's boot epoch (uint32, random per start). */
  epoch: number;
}

/**
 * View of a whole ipferry control datagram (GUE variant-0 header + control header + body + optional
 * HMAC) over (buf, off, len), len = the UDP payload length.
 */
export class ControlMessage {
  readonly gue: GueHeader;

  constructor(
    public buf: Buffer,
    public off = 0,
    public len = buf.length - off,
  ) {
    this.gue = new GueHeader(buf, off, len);
  }

  wrap(buf: Buffer, off: number, len: number): this {
    this.buf = buf;
    this.off = off;
    this.len = len;
    this.gue.wrap(buf, off, len);
    return this;
  }

  /** Absolute offset of the control header. */
  get controlOffset(): number {
    return this.gue.payloadOffset;
  }
  get ctype(): number {
    return this.gue.protoCtype;
  }
  get msgVersion(): number {
    return this.buf[this.controlOffset + CF_VERSION]!;
  }
  get msgFlags(): number {
    return this.buf[this.controlOffset + CF_FLAGS]!;
  }
  get hasMac(): boolean {
    return (this.msgFlags & CONTROL_FLAG_AUTH) !== 0;
  }
  get bodyLength(): number {
    return this.buf.readUInt16BE(this.controlOffset + CF_BODY_LEN);
  }
  get senderId(): number {
    return this.buf.readUInt32BE(this.controlOffset + CF_SENDER);
  }
  get counterHi(): number {
    return this.buf.readUInt32BE(this.controlOffset + CF_COUNTER);
  }
  get counterLo(): number {
    return this.buf.readUInt32BE(this.controlOffset + CF_COUNTER + 4);
  }
  /** The counter as a number (exact below 2^53). */
  get counter(): number {
    return this.counterHi * TWO32 + this.counterLo;
  }
  /** Absolute offset of the body. */
  get bodyOffset(): number {
    return this.controlOffset + CONTROL_HEADER_LEN;
  }
  /** Absolute offset of the HMAC trailer (= end of the authenticated bytes). */
  get macOffset(): number {
    return this.bodyOffset + this.bodyLength;
  }

  check(): DropReason {
    const r = this.gue.check();
    if (r !== DropReason.None) return r;
    if (!this.gue.control) return DropReason.BadControlMessage;
    if (this.gue.payloadLength < CONTROL_HEADER_LEN) return DropReason.BadControlMessage;
    if (this.msgVersion !== CONTROL_VERSION) return DropReason.BadControlMessage;
    if ((this.msgFlags & ~CONTROL_FLAG_AUTH) !== 0) return DropReason.BadControlMessage;
    const end = this.macOffset + (this.hasMac ? HMAC_LEN : 0);
    if (end !== this.off + this.len) return DropReason.BadControlMessage;
    if (this.ctype === CTYPE_KEEPALIVE && this.bodyLength !== KEEPALIVE_BODY_LEN) return DropReason.BadControlMessage;
    return DropReason.None;
  }

  /** The body bytes (a subarray: control plane). */
  body(): Buffer {
    return this.buf.subarray(this.bodyOffset, this.macOffset);
  }

  parse(): ControlRepr {
    return { ctype: this.ctype, senderId: this.senderId, counter: this.counter, body: Buffer.from(this.body()) };
  }

  /** Keepalive fields; call after check() and ctype === CTYPE_KEEPALIVE. */
  parseKeepalive(): KeepaliveRepr {
    const b = this.bodyOffset;
    return {
      senderId: this.senderId,
      counter: this.counter,
      timestampMs: this.buf.readUInt32BE(b + KF_TIMESTAMP) * TWO32 + this.buf.readUInt32BE(b + KF_TIMESTAMP + 4),
      interval: this.buf.readUInt16BE(b + KF_INTERVAL),
      epoch: this.buf.readUInt32BE(b + KF_EPOCH),
    };
  }

  /** The keepalive's boot epoch, 0 for other ctypes; call after check(). */
  get epoch(): number {
    return this.ctype === CTYPE_KEEPALIVE ? this.buf.readUInt32BE(this.bodyOffset + KF_EPOCH) : 0;
  }

  describe(): string {
    if (this.check() !== DropReason.None) return this.gue.describe();
    const name = CTYPE_NAMES[this.ctype] ?? `ctype ${this.ctype}`;
    let extra = '';
    if (this.ctype === CTYPE_KEEPALIVE) {
      const k = this.parseKeepalive();
      extra = ` ts ${k.timestampMs} interval ${k.interval} epoch 0x${k.epoch.toString(16).padStart(8, '0')}`;
    }
    return `GUE ctrl ${name} id 0x${this.senderId.toString(16).padStart(8, '0')} ctr ${this.counter}${extra}${this.hasMac ? ' hmac' : ''} len ${this.len}`;
  }
}

/** Bytes a control message with this body length takes on the wire. */
export function controlLength(bodyLength: number, withMac: boolean): number {
  return GUE_HEADER_LEN + CONTROL_HEADER_LEN + bodyLength + (withMac ? HMAC_LEN : 0);
}

function writeU64(buf: Buffer, off: number, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`not a uint53: ${v}`);
  buf.writeUInt32BE(Math.floor(v / TWO32), off);
  buf.writeUInt32BE(v % TWO32, off + 4);
}

/** The trailer: HMAC-SHA256 of buf[start, end) keyed with `key`, truncated to 16 bytes (HMAC_LEN). */
export function controlMac(key: Uint8Array, buf: Buffer, start: number, end: number): Buffer {
  return createHmac('sha256', key).update(buf.subarray(start, end)).digest().subarray(0, HMAC_LEN);
}

/**
 * Write a control message at buf[off...]: GUE header (Hlen 0, flags 0), control header, body and,
 * when `key` is given, the HMAC trailer. Returns the bytes written. Throws RangeError when it does
 * not fit (control plane: the caller sized the buffer with `controlLength`).
 */
export function emitControl(buf: Buffer, off: number, r: ControlRepr, key: Uint8Array | null = null): number {
  const total = controlLength(r.body.length, key !== null);
  if (off + total > buf.length) throw new RangeError('control message does not fit');
  const c = off + GueHeader.emit(buf, off, { control: true, protoCtype: r.ctype, flags: 0, optionsLength: 0 });
  buf[c + CF_VERSION] = CONTROL_VERSION;
  buf[c + CF_FLAGS] = key ? CONTROL_FLAG_AUTH : 0;
  buf.writeUInt16BE(r.body.length, c + CF_BODY_LEN);
  buf.writeUInt32BE(r.senderId >>> 0, c + CF_SENDER);
  writeU64(buf, c + CF_COUNTER, r.counter);
  buf.set(r.body, c + CONTROL_HEADER_LEN);
  const end = c + CONTROL_HEADER_LEN + r.body.length;
  if (key) controlMac(key, buf, off, end).copy(buf, end);
  return total;
}

/** Write a KEEPALIVE (36 bytes, 52 with `key`); returns the bytes written. */
export function emitKeepalive(buf: Buffer, off: number, k: KeepaliveRepr, key: Uint8Array | null = null): number {
  const body = Buffer.alloc(KEEPALIVE_BODY_LEN);
  writeU64(body, KF_TIMESTAMP, k.timestampMs);
  body.writeUInt16BE(k.interval & 0xffff, KF_INTERVAL);
  body.writeUInt16BE(0, KF_RESERVED);
  body.writeUInt32BE(k.epoch >>> 0, KF_EPOCH);
  return emitControl(buf, off, { ctype: CTYPE_KEEPALIVE, senderId: k.senderId, counter: k.counter, body }, key);
}

/** A 32-bit sender id from a node name: the first 4 bytes of SHA-256(name). */
export function senderIdFromName(name: string): number {
  return createHash('sha256').update(name).digest().readUInt32BE(0);
}

const scratch = new ControlMessage(Buffer.alloc(0), 0, 0);

/**
 * Check a received control datagram on its own (the UDP payload buf[off, off+len)): structure,
 * then the HMAC trailer when `key` is set (missing or wrong -> BadAuthentication). Without a key
 * a MAC, if present, is not checked. Who sent it and whether its counter is fresh are the
 * tunnel's questions (src/tunnel/control.ts verifyControl).
 */
export function authenticateControl(buf: Buffer, off: number, len: number, key: Uint8Array | null): DropReason {
  const m = scratch.wrap(buf, off, len);
  const r = m.check();
  if (r !== DropReason.None) return r;
  if (key) {
    if (!m.hasMac) return DropReason.BadAuthentication;
    const macOff = m.macOffset;
    const want = controlMac(key, buf, off, macOff);
    if (!timingSafeEqual(want, buf.subarray(macOff, macOff + HMAC_LEN))) return DropReason.BadAuthentication;
  }
  return DropReason.None;
}
