/**
 * Mobility messages (binding update, binding acknowledgement, path challenge and response) as
 * bodies of ipferry GUE control messages (src/wire/gue.ts: variant 0, C bit, the 16-byte control
 * header, the HMAC-SHA256 trailer). Every mobility message carries the trailer, keyed with the
 * mobile node's own key (home agent <-> node) or the key the node shares with one correspondent.
 * The semantics follow Mobile IPv6 (RFC 6275) where they apply: 16-bit sequence numbers compared
 * modulo 2^16 (section 9.5.1), lifetimes in 4-second units, the binding-ack status codes.
 *
 * | ctype | name           | body                      | sent by                             |
 * |-------|----------------|---------------------------|-------------------------------------|
 * | 129   | BINDING_UPDATE | BU, below                 | mobile node -> home agent / corresp.|
 * | 130   | BINDING_ACK    | BA, below                 | home agent / correspondent -> node  |
 * | 131   | PATH_CHALLENGE | PATH, below               | correspondent -> node's care-of     |
 * | 132   | PATH_RESPONSE  | PATH, below (same data)   | node -> correspondent               |
 * | 133   | REFRESH_REQUEST| BRR, below                | home agent -> node                  |
 *
 * (129/130 are the numbers gue.ts reserves for mobility; 131-133 come from its 131-143 range.)
 * The binding refresh request is RFC 6275's (6.1.2): the home agent asks a node to send a
 * binding update now, when an authenticated message of the node (a keepalive) reaches it from an
 * address it holds no binding for — after a home agent restart, or when the node moved without
 * noticing. It carries no state; the node answers with an ordinary update.
 * Replay protection is the control header's 64-bit counter: the sender's clock in microseconds,
 * +1 per message, so it survives restarts; receivers keep the last accepted counter per sender and
 * a freshness window around their own clock (src/tunnel/replay.ts). The 16-bit sequence orders
 * registrations as in RFC 6275; a retransmission carries a new sequence and a new counter.
 *
 * Address fields: a "families" byte tells the families, IPv4 = 4 (4 bytes), IPv6 = 6 (16 bytes),
 * 0 = absent (no bytes). Padding is zero bytes after the last field, counted in the control
 * header's body length; it makes a message as big as the path MTU probe or earns the receiver an
 * anti-amplification budget (QUIC style, 3x what it received).
 *
 * ## BINDING_UPDATE body (12 bytes minimum: IPv4 home address, no care-of)
 *
 * | offset | size   | field         | meaning                                                   |
 * |--------|--------|---------------|-----------------------------------------------------------|
 * | 0      | 2      | sequence      | uint16 BE, compared modulo 2^16 (RFC 6275 9.5.1)          |
 * | 2      | 2      | lifetime      | uint16 BE, 4-second units; 0 = deregistration             |
 * | 4      | 1      | flags         | 0x80 A ack requested, 0x40 H home registration (RFC 6275  |
 * |        |        |               | bit positions), 0x20 R route optimisation allowed; rest 0 |
 * | 5      | 1      | families      | bits 7-4 home address (4, 6); bits 3-0 care-of (0, 4, 6)  |
 * | 6      | 2      | care-of port  | UDP port the node sends from, as it sees it (0: no c/o)   |
 * | 8      | 4/16   | home address  | the node's permanent address                              |
 * | 8+h    | 0/4/16 | care-of addr  | the node's underlay address as it sees it (NAT: private)  |
 * | ...    | n      | padding       | zeros                                                     |
 *
 * ## BINDING_ACK body (16 bytes minimum)
 *
 * | offset | size   | field         | meaning                                                   |
 * |--------|--------|---------------|-----------------------------------------------------------|
 * | 0      | 1      | status        | 0 accepted; 128.. rejected (BindingStatus, RFC 6275 codes)|
 * | 1      | 1      | flags         | 0x80 N: the observed care-of differs from the claimed one |
 * |        |        |               | (a NAT is in between); rest 0                             |
 * | 2      | 2      | sequence      | the update's sequence; with 135 the last accepted one     |
 * | 4      | 2      | lifetime      | granted, 4-second units (0 on rejection/deregistration)   |
 * | 6      | 2      | retry-after   | seconds before trying again; with 130 only, else 0        |
 * | 8      | 1      | families      | bits 7-4 home address (4, 6); bits 3-0 observed (0, 4, 6) |
 * | 9      | 1      | reserved      | 0                                                         |
 * | 10     | 2      | observed port | source port of the update as the receiver saw it          |
 * | 12     | 4/16   | home address  | copied from the update                                    |
 * | 12+h   | 0/4/16 | observed addr | source address of the update as the receiver saw it       |
 *
 * ## PATH_CHALLENGE / PATH_RESPONSE body (16 bytes minimum)
 *
 * | offset | size | field        | meaning                                                      |
 * |--------|------|--------------|--------------------------------------------------------------|
 * | 0      | 8    | data         | random (challenge); echoed unchanged (response)              |
 * | 8      | 1    | families     | bits 7-4 home address family (4, 6); bits 3-0 0              |
 * | 9      | 3    | reserved     | 0                                                            |
 * | 12     | 4/16 | home address | the mobile node the path is validated for                    |
 * | ...    | n    | padding      | zeros up to the probed size                                  |
 *
 * ## BINDING_REFRESH_REQUEST body (8 bytes minimum)
 *
 * | offset | size | field        | meaning                                                      |
 * |--------|------|--------------|--------------------------------------------------------------|
 * | 0      | 1    | families     | bits 7-4 home address family (4, 6); bits 3-0 0              |
 * | 1      | 3    | reserved     | 0                                                            |
 * | 4      | 4/16 | home address | the node asked to register                                   |
 *
 * Sizes on the wire (UDP payload: GUE 4 + control header 16 + body + HMAC 16): BU IPv4/IPv4 52,
 * IPv6/IPv6 76; BA IPv4/IPv4 56, IPv6/IPv6 80; PATH IPv4 52, IPv6 64 (plus padding); BRR IPv4 44,
 * IPv6 56.
 *
 * One file past 600 lines on purpose: the three bodies are one small protocol (shared families
 * byte, address fields, padding rule, and one emit path through gue.ts's emitControl), and a
 * fifth of the file is the layout tables above.
 */
import { DropReason } from '../base/drop-reason.ts';
import { formatAddress, type Family } from './address-text.ts';
import {
  CONTROL_HEADER_LEN,
  CTYPE_BINDING_ACK,
  CTYPE_BINDING_UPDATE,
  ControlMessage,
  GUE_HEADER_LEN,
  HMAC_LEN,
  controlLength,
  emitControl,
} from './gue.ts';
import { WireView } from './view.ts';

export { CTYPE_BINDING_ACK, CTYPE_BINDING_UPDATE };
export const CTYPE_PATH_CHALLENGE = 131;
export const CTYPE_PATH_RESPONSE = 132;
export const CTYPE_BINDING_REFRESH = 133;

// --- BINDING_UPDATE body field offsets
const BU_SEQUENCE = 0;
const BU_LIFETIME = 2;
const BU_FLAGS = 4;
const BU_FAMILIES = 5;
const BU_CARE_OF_PORT = 6;
const BU_HOME = 8;
export const BU_MIN_LEN = BU_HOME + 4;

export const BU_FLAG_ACK = 0x80;
export const BU_FLAG_HOME = 0x40;
export const BU_FLAG_ROUTE_OPT = 0x20;
const BU_FLAGS_KNOWN = BU_FLAG_ACK | BU_FLAG_HOME | BU_FLAG_ROUTE_OPT;

// --- BINDING_ACK body field offsets
const BA_STATUS = 0;
const BA_FLAGS = 1;
const BA_SEQUENCE = 2;
const BA_LIFETIME = 4;
const BA_RETRY_AFTER = 6;
const BA_FAMILIES = 8;
const BA_RESERVED = 9;
const BA_OBSERVED_PORT = 10;
const BA_HOME = 12;
export const BA_MIN_LEN = BA_HOME + 4;

export const BA_FLAG_NAT = 0x80;
/** The longest BINDING_ACK datagram: IPv6 home and observed addresses, HMAC trailer (80 bytes). */
export const BINDING_ACK_MAX_LEN = GUE_HEADER_LEN + CONTROL_HEADER_LEN + BA_HOME + 16 + 16 + HMAC_LEN;

// --- PATH_CHALLENGE / PATH_RESPONSE body field offsets
const PATH_DATA = 0;
export const PATH_DATA_LEN = 8;
const PATH_FAMILIES = 8;
const PATH_RESERVED = 9;
const PATH_HOME = 12;
export const PATH_MIN_LEN = PATH_HOME + 4;

// --- BINDING_REFRESH_REQUEST body field offsets
const BRR_FAMILIES = 0;
const BRR_RESERVED = 1;
const BRR_HOME = 4;
export const BRR_MIN_LEN = BRR_HOME + 4;

/** Lifetime unit of RFC 6275: 4 seconds; the longest lifetime 65535 units. */
export const LIFETIME_UNIT_S = 4;
export const LIFETIME_MAX_S = 0xffff * LIFETIME_UNIT_S;

/** Binding acknowledgement status (RFC 6275 6.1.8, the codes that apply here). */
export enum BindingStatus {
  Accepted = 0,
  Unspecified = 128,
  AdministrativelyProhibited = 129,
  InsufficientResources = 130,
  HomeRegistrationNotSupported = 131,
  NotHomeSubnet = 132,
  NotHomeAgentForThisNode = 133,
  SequenceOutOfWindow = 135,
}

/** Status >= 128 is a rejection (a "NAck" in mipdiag's counters). */
export const STATUS_REJECTED_MIN = 128;

const STATUS_NAMES: Record<number, string> = {
  0: 'accepted',
  128: 'reason unspecified',
  129: 'administratively prohibited',
  130: 'insufficient resources',
  131: 'home registration not supported',
  132: 'not home subnet',
  133: 'not home agent for this node',
  135: 'sequence number out of window',
};

export function bindingStatusName(s: number): string {
  return STATUS_NAMES[s] ?? (s < STATUS_REJECTED_MIN ? `accepted (${s})` : `rejected (${s})`);
}

/**
 * RFC 6275 9.5.1: `a` is greater than `b` modulo 2^16 when it lies in the 32768 values after `b`
 * (b itself and the 32768 values before it, inclusive, are "less than or equal").
 */
export function seqGreater(a: number, b: number): boolean {
  const d = (a - b) & 0xffff;
  return d !== 0 && d <= 0x8000;
}

/** Seconds to 4-second lifetime units, rounded down (never more than granted), capped at 65535. */
export function lifetimeUnits(seconds: number): number {
  if (!(seconds >= 0)) return 0;
  const u = Math.floor(seconds / LIFETIME_UNIT_S);
  return u > 0xffff ? 0xffff : u;
}

function addrLen(family: number): number {
  return family === 4 ? 4 : family === 6 ? 16 : family === 0 ? 0 : -1;
}

/** A plain Uint8Array copy (parse() results compare equal whatever buffer type they came from). */
function copy(buf: Uint8Array, from: number, to: number): Uint8Array {
  return new Uint8Array(buf.subarray(from, to));
}

function u16(buf: Uint8Array, i: number): number {
  return (buf[i]! << 8) | buf[i + 1]!;
}
function put16(buf: Uint8Array, i: number, v: number): void {
  buf[i] = (v >>> 8) & 0xff;
  buf[i + 1] = v & 0xff;
}
function zeros(buf: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (buf[i] !== 0) return false;
  return true;
}

/** An underlay (UDP) address: where a node is reachable, as seen by someone. */
export interface SocketAddress {
  family: Family;
  /** 4 or 16 bytes. */
  bytes: Uint8Array;
  port: number;
}

export function formatSocketAddress(a: SocketAddress): string {
  const h = formatAddress(a.bytes, 0, a.family);
  return a.family === 6 ? `[${h}]:${a.port}` : `${h}:${a.port}`;
}

export interface BindingUpdateRepr {
  sequence: number;
  /** Seconds; sent in 4-second units (rounded down). 0 = deregistration. */
  lifetime: number;
  ackRequested: boolean;
  homeRegistration: boolean;
  routeOptimisation: boolean;
  homeFamily: Family;
  /** 4 or 16 bytes. */
  home: Uint8Array;
  /** The node's own view of its underlay address; null when it has none (deregistration). */
  careOf: SocketAddress | null;
  /** Zero bytes after the last field. */
  padding: number;
}

/** View of a BINDING_UPDATE body over (buf, off, len) = the control message body. */
export class BindingUpdate extends WireView {
  get sequence(): number {
    return u16(this.buf, this.off + BU_SEQUENCE);
  }
  set sequence(v: number) {
    put16(this.buf, this.off + BU_SEQUENCE, v);
  }
  /** Raw 4-second units. */
  get lifetimeUnits(): number {
    return u16(this.buf, this.off + BU_LIFETIME);
  }
  set lifetimeUnits(v: number) {
    put16(this.buf, this.off + BU_LIFETIME, v);
  }
  /** Lifetime in seconds. */
  get lifetime(): number {
    return this.lifetimeUnits * LIFETIME_UNIT_S;
  }
  get flags(): number {
    return this.buf[this.off + BU_FLAGS]!;
  }
  set flags(v: number) {
    this.buf[this.off + BU_FLAGS] = v;
  }
  get ackRequested(): boolean {
    return (this.flags & BU_FLAG_ACK) !== 0;
  }
  get homeRegistration(): boolean {
    return (this.flags & BU_FLAG_HOME) !== 0;
  }
  get routeOptimisation(): boolean {
    return (this.flags & BU_FLAG_ROUTE_OPT) !== 0;
  }
  get homeFamily(): number {
    return this.buf[this.off + BU_FAMILIES]! >> 4;
  }
  get careOfFamily(): number {
    return this.buf[this.off + BU_FAMILIES]! & 0x0f;
  }
  get careOfPort(): number {
    return u16(this.buf, this.off + BU_CARE_OF_PORT);
  }
  /** Absolute offset of the home address in buf. */
  get homeOffset(): number {
    return this.off + BU_HOME;
  }
  /** Absolute offset of the care-of address in buf. */
  get careOfOffset(): number {
    return this.homeOffset + addrLen(this.homeFamily);
  }
  /** Absolute offset of the padding (end of the fields). */
  get paddingOffset(): number {
    return this.careOfOffset + addrLen(this.careOfFamily);
  }
  get padding(): number {
    return this.off + this.len - this.paddingOffset;
  }

  /** Length, families, reserved bits and zero padding; None when every field is safe to read. */
  check(): DropReason {
    if (this.len < BU_MIN_LEN) return DropReason.Truncated;
    const hf = this.homeFamily;
    const cf = this.careOfFamily;
    if (hf !== 4 && hf !== 6) return DropReason.BadControlMessage;
    if (addrLen(cf) < 0) return DropReason.BadControlMessage;
    if ((this.flags & ~BU_FLAGS_KNOWN) !== 0) return DropReason.BadControlMessage;
    if (cf === 0 && this.careOfPort !== 0) return DropReason.BadControlMessage;
    const end = this.paddingOffset;
    if (end > this.off + this.len) return DropReason.Truncated;
    if (!zeros(this.buf, end, this.off + this.len)) return DropReason.BadControlMessage;
    return DropReason.None;
  }

  parse(): BindingUpdateRepr {
    const hf = this.homeFamily as Family;
    const cf = this.careOfFamily;
    const ho = this.homeOffset;
    const co = this.careOfOffset;
    return {
      sequence: this.sequence,
      lifetime: this.lifetime,
      ackRequested: this.ackRequested,
      homeRegistration: this.homeRegistration,
      routeOptimisation: this.routeOptimisation,
      homeFamily: hf,
      home: copy(this.buf, ho, ho + addrLen(hf)),
      careOf: cf === 0 ? null : { family: cf as Family, bytes: copy(this.buf, co, co + addrLen(cf)), port: this.careOfPort },
      padding: this.padding,
    };
  }

  /** Body length of `r`. */
  static bodyLength(r: BindingUpdateRepr): number {
    return BU_HOME + addrLen(r.homeFamily) + (r.careOf ? addrLen(r.careOf.family) : 0) + r.padding;
  }

  /** Write the body at buf[off...]; returns its length. Throws RangeError on bad input. */
  static emit(buf: Uint8Array, off: number, r: BindingUpdateRepr): number {
    const n = BindingUpdate.bodyLength(r);
    if (off + n > buf.length) throw new RangeError('binding update does not fit');
    if (r.home.length !== addrLen(r.homeFamily)) throw new RangeError('home address length');
    if (r.careOf && r.careOf.bytes.length !== addrLen(r.careOf.family)) throw new RangeError('care-of address length');
    if (r.lifetime > LIFETIME_MAX_S) throw new RangeError(`lifetime above ${LIFETIME_MAX_S} s`);
    put16(buf, off + BU_SEQUENCE, r.sequence & 0xffff);
    put16(buf, off + BU_LIFETIME, lifetimeUnits(r.lifetime));
    buf[off + BU_FLAGS] = (r.ackRequested ? BU_FLAG_ACK : 0) | (r.homeRegistration ? BU_FLAG_HOME : 0) | (r.routeOptimisation ? BU_FLAG_ROUTE_OPT : 0);
    buf[off + BU_FAMILIES] = (r.homeFamily << 4) | (r.careOf ? r.careOf.family : 0);
    put16(buf, off + BU_CARE_OF_PORT, r.careOf ? r.careOf.port : 0);
    let i = off + BU_HOME;
    buf.set(r.home, i);
    i += r.home.length;
    if (r.careOf) {
      buf.set(r.careOf.bytes, i);
      i += r.careOf.bytes.length;
    }
    buf.fill(0, i, off + n);
    return n;
  }

  describe(): string {
    if (this.check() !== DropReason.None) return `BU bad len ${this.len}`;
    const f = `${this.ackRequested ? ' A' : ''}${this.homeRegistration ? ' H' : ''}${this.routeOptimisation ? ' R' : ''}`;
    const home = formatAddress(this.buf, this.homeOffset, this.homeFamily as Family);
    const cf = this.careOfFamily;
    const coa = cf === 0 ? 'none' : `${cf === 6 ? '[' : ''}${formatAddress(this.buf, this.careOfOffset, cf as Family)}${cf === 6 ? ']' : ''}:${this.careOfPort}`;
    return `BU seq ${this.sequence} lifetime ${this.lifetime}s${f} home ${home} coa ${coa}${this.padding ? ` pad ${this.padding}` : ''}`;
  }
}

export interface BindingAckRepr {
  status: number;
  /** The observed care-of differs from the claimed one. */
  nat: boolean;
  sequence: number;
  /** Seconds granted (sent in 4-second units, rounded down). */
  lifetime: number;
  /** Seconds (status 130), else 0. */
  retryAfter: number;
  homeFamily: Family;
  home: Uint8Array;
  /** The update's source as the sender of this ack saw it; null if not told. */
  observed: SocketAddress | null;
}

/** View of a BINDING_ACK body. */
export class BindingAck extends WireView {
  get status(): number {
    return this.buf[this.off + BA_STATUS]!;
  }
  set status(v: number) {
    this.buf[this.off + BA_STATUS] = v;
  }
  get flags(): number {
    return this.buf[this.off + BA_FLAGS]!;
  }
  get nat(): boolean {
    return (this.flags & BA_FLAG_NAT) !== 0;
  }
  get sequence(): number {
    return u16(this.buf, this.off + BA_SEQUENCE);
  }
  set sequence(v: number) {
    put16(this.buf, this.off + BA_SEQUENCE, v);
  }
  get lifetimeUnits(): number {
    return u16(this.buf, this.off + BA_LIFETIME);
  }
  set lifetimeUnits(v: number) {
    put16(this.buf, this.off + BA_LIFETIME, v);
  }
  get lifetime(): number {
    return this.lifetimeUnits * LIFETIME_UNIT_S;
  }
  get retryAfter(): number {
    return u16(this.buf, this.off + BA_RETRY_AFTER);
  }
  get homeFamily(): number {
    return this.buf[this.off + BA_FAMILIES]! >> 4;
  }
  get observedFamily(): number {
    return this.buf[this.off + BA_FAMILIES]! & 0x0f;
  }
  get observedPort(): number {
    return u16(this.buf, this.off + BA_OBSERVED_PORT);
  }
  get homeOffset(): number {
    return this.off + BA_HOME;
  }
  get observedOffset(): number {
    return this.homeOffset + addrLen(this.homeFamily);
  }

  check(): DropReason {
    if (this.len < BA_MIN_LEN) return DropReason.Truncated;
    const hf = this.homeFamily;
    const of = this.observedFamily;
    if (hf !== 4 && hf !== 6) return DropReason.BadControlMessage;
    if (addrLen(of) < 0) return DropReason.BadControlMessage;
    if ((this.flags & ~BA_FLAG_NAT) !== 0 || this.buf[this.off + BA_RESERVED] !== 0) return DropReason.BadControlMessage;
    if (of === 0 && this.observedPort !== 0) return DropReason.BadControlMessage;
    if (this.observedOffset + addrLen(of) !== this.off + this.len) return this.observedOffset + addrLen(of) > this.off + this.len ? DropReason.Truncated : DropReason.BadControlMessage;
    return DropReason.None;
  }

  parse(): BindingAckRepr {
    const hf = this.homeFamily as Family;
    const of = this.observedFamily;
    const ho = this.homeOffset;
    const oo = this.observedOffset;
    return {
      status: this.status,
      nat: this.nat,
      sequence: this.sequence,
      lifetime: this.lifetime,
      retryAfter: this.retryAfter,
      homeFamily: hf,
      home: copy(this.buf, ho, ho + addrLen(hf)),
      observed: of === 0 ? null : { family: of as Family, bytes: copy(this.buf, oo, oo + addrLen(of)), port: this.observedPort },
    };
  }

  static bodyLength(r: BindingAckRepr): number {
    return BA_HOME + addrLen(r.homeFamily) + (r.observed ? addrLen(r.observed.family) : 0);
  }

  static emit(buf: Uint8Array, off: number, r: BindingAckRepr): number {
    const n = BindingAck.bodyLength(r);
    if (off + n > buf.length) throw new RangeError('binding ack does not fit');
    if (r.home.length !== addrLen(r.homeFamily)) throw new RangeError('home address length');
    if (r.observed && r.observed.bytes.length !== addrLen(r.observed.family)) throw new RangeError('observed address length');
    if (r.lifetime > LIFETIME_MAX_S) throw new RangeError(`lifetime above ${LIFETIME_MAX_S} s`);
    buf[off + BA_STATUS] = r.status;
    buf[off + BA_FLAGS] = r.nat ? BA_FLAG_NAT : 0;
    put16(buf, off + BA_SEQUENCE, r.sequence & 0xffff);
    put16(buf, off + BA_LIFETIME, lifetimeUnits(r.lifetime));
    put16(buf, off + BA_RETRY_AFTER, Math.min(0xffff, Math.max(0, Math.ceil(r.retryAfter))));
    buf[off + BA_FAMILIES] = (r.homeFamily << 4) | (r.observed ? r.observed.family : 0);
    buf[off + BA_RESERVED] = 0;
    put16(buf, off + BA_OBSERVED_PORT, r.observed ? r.observed.port : 0);
    buf.set(r.home, off + BA_HOME);
    if (r.observed) buf.set(r.observed.bytes, off + BA_HOME + r.home.length);
    return n;
  }

  describe(): string {
    if (this.check() !== DropReason.None) return `BA bad len ${this.len}`;
    const home = formatAddress(this.buf, this.homeOffset, this.homeFamily as Family);
    const of = this.observedFamily;
    const obs = of === 0 ? '' : ` observed ${of === 6 ? '[' : ''}${formatAddress(this.buf, this.observedOffset, of as Family)}${of === 6 ? ']' : ''}:${this.observedPort}`;
    const retry = this.retryAfter ? ` retry-after ${this.retryAfter}s` : '';
    return `BA status ${this.status} (${bindingStatusName(this.status)}) seq ${this.sequence} lifetime ${this.lifetime}s${retry}${this.nat ? ' N' : ''} home ${home}${obs}`;
  }
}

export interface PathProbeRepr {
  /** 8 bytes. */
  data: Uint8Array;
  homeFamily: Family;
  home: Uint8Array;
  padding: number;
}

/** View of a PATH_CHALLENGE / PATH_RESPONSE body (same layout). */
export class PathProbe extends WireView {
  /** Absolute offset of the 8 data bytes. */
  get dataOffset(): number {
    return this.off + PATH_DATA;
  }
  get homeFamily(): number {
    return this.buf[this.off + PATH_FAMILIES]! >> 4;
  }
  get homeOffset(): number {
    return this.off + PATH_HOME;
  }
  get paddingOffset(): number {
    return this.homeOffset + addrLen(this.homeFamily);
  }
  get padding(): number {
    return this.off + this.len - this.paddingOffset;
  }
  /** True when the 8 data bytes equal data[0..8). */
  dataEquals(data: Uint8Array, dataOff = 0): boolean {
    const o = this.off + PATH_DATA;
    let d = 0;
    for (let i = 0; i < PATH_DATA_LEN; i++) d |= this.buf[o + i]! ^ data[dataOff + i]!;
    return d === 0;
  }

  check(): DropReason {
    if (this.len < PATH_MIN_LEN) return DropReason.Truncated;
    const hf = this.homeFamily;
    if (hf !== 4 && hf !== 6) return DropReason.BadControlMessage;
    if ((this.buf[this.off + PATH_FAMILIES]! & 0x0f) !== 0) return DropReason.BadControlMessage;
    if (!zeros(this.buf, this.off + PATH_RESERVED, this.off + PATH_HOME)) return DropReason.BadControlMessage;
    if (this.paddingOffset > this.off + this.len) return DropReason.Truncated;
    if (!zeros(this.buf, this.paddingOffset, this.off + this.len)) return DropReason.BadControlMessage;
    return DropReason.None;
  }

  parse(): PathProbeRepr {
    const hf = this.homeFamily as Family;
    return {
      data: copy(this.buf, this.off + PATH_DATA, this.off + PATH_DATA + PATH_DATA_LEN),
      homeFamily: hf,
      home: copy(this.buf, this.homeOffset, this.homeOffset + addrLen(hf)),
      padding: this.padding,
    };
  }

  static bodyLength(r: PathProbeRepr): number {
    return PATH_HOME + addrLen(r.homeFamily) + r.padding;
  }

  static emit(buf: Uint8Array, off: number, r: PathProbeRepr): number {
    const n = PathProbe.bodyLength(r);
    if (off + n > buf.length) throw new RangeError('path probe does not fit');
    if (r.data.length !== PATH_DATA_LEN) throw new RangeError('path data is 8 bytes');
    if (r.home.length !== addrLen(r.homeFamily)) throw new RangeError('home address length');
    buf.set(r.data, off + PATH_DATA);
    buf[off + PATH_FAMILIES] = r.homeFamily << 4;
    buf.fill(0, off + PATH_RESERVED, off + PATH_HOME);
    buf.set(r.home, off + PATH_HOME);
    buf.fill(0, off + PATH_HOME + r.home.length, off + n);
    return n;
  }

  describe(): string {
    if (this.check() !== DropReason.None) return `PATH bad len ${this.len}`;
    const d = Buffer.from(this.buf.subarray(this.off + PATH_DATA, this.off + PATH_DATA + PATH_DATA_LEN)).toString('hex');
    const home = formatAddress(this.buf, this.homeOffset, this.homeFamily as Family);
    return `data ${d} home ${home}${this.padding ? ` pad ${this.padding}` : ''}`;
  }
}

export interface RefreshRequestRepr {
  homeFamily: Family;
  home: Uint8Array;
}

/** View of a BINDING_REFRESH_REQUEST body. */
export class RefreshRequest extends WireView {
  get homeFamily(): number {
    return this.buf[this.off + BRR_FAMILIES]! >> 4;
  }
  get homeOffset(): number {
    return this.off + BRR_HOME;
  }

  check(): DropReason {
    if (this.len < BRR_MIN_LEN) return DropReason.Truncated;
    const hf = this.homeFamily;
    if (hf !== 4 && hf !== 6) return DropReason.BadControlMessage;
    if ((this.buf[this.off + BRR_FAMILIES]! & 0x0f) !== 0) return DropReason.BadControlMessage;
    if (!zeros(this.buf, this.off + BRR_RESERVED, this.off + BRR_HOME)) return DropReason.BadControlMessage;
    const end = this.homeOffset + addrLen(hf);
    if (end > this.off + this.len) return DropReason.Truncated;
    if (end < this.off + this.len) return DropReason.BadControlMessage;
    return DropReason.None;
  }

  parse(): RefreshRequestRepr {
    const hf = this.homeFamily as Family;
    return { homeFamily: hf, home: copy(this.buf, this.homeOffset, this.homeOffset + addrLen(hf)) };
  }

  static bodyLength(r: RefreshRequestRepr): number {
    return BRR_HOME + addrLen(r.homeFamily);
  }

  static emit(buf: Uint8Array, off: number, r: RefreshRequestRepr): number {
    const n = RefreshRequest.bodyLength(r);
    if (off + n > buf.length) throw new RangeError('refresh request does not fit');
    if (r.home.length !== addrLen(r.homeFamily)) throw new RangeError('home address length');
    buf[off + BRR_FAMILIES] = r.homeFamily << 4;
    buf.fill(0, off + BRR_RESERVED, off + BRR_HOME);
    buf.set(r.home, off + BRR_HOME);
    return n;
  }

  describe(): string {
    if (this.check() !== DropReason.None) return `BRR bad len ${this.len}`;
    return `BRR home ${formatAddress(this.buf, this.homeOffset, this.homeFamily as Family)}`;
  }
}

// ---------------------------------------------------------------------------------------------
// whole messages: GUE variant 0 + control header + body + HMAC trailer (gue.ts emitControl)

/** Control header fields of a mobility message. */
export interface MobilityHeader {
  senderId: number;
  /** 64-bit replay counter (below 2^53): the sender's clock in microseconds, +1 per message. */
  counter: number;
}

/** Largest body we build (padding included): a probe as big as a jumbo-frame MTU. */
export const MOBILITY_BODY_MAX = 9000;
const bodyScratch = Buffer.alloc(MOBILITY_BODY_MAX);

function emitWithBody(buf: Buffer, off: number, ctype: number, h: MobilityHeader, bodyLen: number, key: Uint8Array): number {
  return emitControl(buf, off, { ctype, senderId: h.senderId, counter: h.counter, body: bodyScratch.subarray(0, bodyLen) }, key);
}

function checkBodySize(n: number): void {
  if (n > MOBILITY_BODY_MAX) throw new RangeError(`mobility body above ${MOBILITY_BODY_MAX} bytes`);
}

/** UDP payload bytes of a BINDING_UPDATE (with the HMAC trailer). */
export function bindingUpdateLength(r: BindingUpdateRepr): number {
  return controlLength(BindingUpdate.bodyLength(r), true);
}
export function bindingAckLength(r: BindingAckRepr): number {
  return controlLength(BindingAck.bodyLength(r), true);
}
export function pathProbeLength(r: PathProbeRepr): number {
  return controlLength(PathProbe.bodyLength(r), true);
}
export function refreshRequestLength(r: RefreshRequestRepr): number {
  return controlLength(RefreshRequest.bodyLength(r), true);
}
/** Padding that makes a path probe `size` bytes of UDP payload (0 when it is already bigger). */
export function pathPaddingFor(size: number, homeFamily: Family): number {
  const bare = controlLength(PATH_HOME + addrLen(homeFamily), true);
  return size > bare ? size - bare : 0;
}
/** Padding that makes a binding update `size` bytes of UDP payload. */
export function bindingUpdatePaddingFor(size: number, r: BindingUpdateRepr): number {
  const bare = controlLength(BindingUpdate.bodyLength({ ...r, padding: 0 }), true);
  return size > bare ? size - bare : 0;
}

/** Write a signed BINDING_UPDATE datagram at buf[off...]; returns its length. */
export function emitBindingUpdate(buf: Buffer, off: number, h: MobilityHeader, r: BindingUpdateRepr, key: Uint8Array): number {
  checkBodySize(BindingUpdate.bodyLength(r));
  return emitWithBody(buf, off, CTYPE_BINDING_UPDATE, h, BindingUpdate.emit(bodyScratch, 0, r), key);
}

/** Write a signed BINDING_ACK datagram at buf[off...]; returns its length. */
export function emitBindingAck(buf: Buffer, off: number, h: MobilityHeader, r: BindingAckRepr, key: Uint8Array): number {
  return emitWithBody(buf, off, CTYPE_BINDING_ACK, h, BindingAck.emit(bodyScratch, 0, r), key);
}

/** Write a signed PATH_CHALLENGE (`response` false) or PATH_RESPONSE datagram; returns its length. */
export function emitPathProbe(buf: Buffer, off: number, response: boolean, h: MobilityHeader, r: PathProbeRepr, key: Uint8Array): number {
  checkBodySize(PathProbe.bodyLength(r));
  return emitWithBody(buf, off, response ? CTYPE_PATH_RESPONSE : CTYPE_PATH_CHALLENGE, h, PathProbe.emit(bodyScratch, 0, r), key);
}

/** Write a signed BINDING_REFRESH_REQUEST datagram at buf[off...]; returns its length. */
export function emitRefreshRequest(buf: Buffer, off: number, h: MobilityHeader, r: RefreshRequestRepr, key: Uint8Array): number {
  return emitWithBody(buf, off, CTYPE_BINDING_REFRESH, h, RefreshRequest.emit(bodyScratch, 0, r), key);
}

/** True for the ctypes this file defines (what the mobility code should be handed). */
export function isMobilityCtype(ctype: number): boolean {
  return ctype >= CTYPE_BINDING_UPDATE && ctype <= CTYPE_BINDING_REFRESH;
}

const MOBILITY_NAMES: Record<number, string> = {
  [CTYPE_BINDING_UPDATE]: 'binding-update',
  [CTYPE_BINDING_ACK]: 'binding-ack',
  [CTYPE_PATH_CHALLENGE]: 'path-challenge',
  [CTYPE_PATH_RESPONSE]: 'path-response',
  [CTYPE_BINDING_REFRESH]: 'refresh-request',
};

const describeMsg = new ControlMessage(Buffer.alloc(0), 0, 0);
const describeBu = new BindingUpdate();
const describeBa = new BindingAck();
const describePath = new PathProbe();
const describeBrr = new RefreshRequest();

/** One line for a mobility control datagram, tcpdump style (control plane / debugging only). */
export function describeMobility(buf: Buffer, off = 0, len = buf.length - off): string {
  const m = describeMsg.wrap(buf, off, len);
  if (m.check() !== DropReason.None || !isMobilityCtype(m.ctype)) return m.describe();
  const b = m.bodyOffset;
  const n = m.bodyLength;
  let body: string;
  switch (m.ctype) {
    case CTYPE_BINDING_UPDATE:
      body = describeBu.wrap(buf, b, n).describe();
      break;
    case CTYPE_BINDING_ACK:
      body = describeBa.wrap(buf, b, n).describe();
      break;
    case CTYPE_BINDING_REFRESH:
      body = describeBrr.wrap(buf, b, n).describe();
      break;
    default:
      body = describePath.wrap(buf, b, n).describe();
  }
  const id = m.senderId.toString(16).padStart(8, '0');
  return `GUE ctrl ${MOBILITY_NAMES[m.ctype]} id 0x${id} ctr ${m.counter}${m.hasMac ? ' hmac' : ''}: ${body}`;
}

/** Offset of the body of a control datagram starting at `off` (Hlen 0, as we send them). */
export const MOBILITY_BODY_OFFSET = GUE_HEADER_LEN + CONTROL_HEADER_LEN;
