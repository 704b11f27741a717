/**
 * The configured mobile nodes a home agent (or a correspondent) knows: name, 32-bit sender id,
 * home address and key, indexed by home address (AddressTable) and by sender id. Node indices
 * are the config order and name everything else per node (bindings, replay state, rate buckets).
 *
 * A message names its sender with a 32-bit id (SHA-256 prefix of the name, gue.ts), which can
 * collide between names (at 100k nodes a collision somewhere is likely), so `authenticate` tries
 * every node with that id and takes the one whose key verifies the HMAC.
 */
import { DropReason } from '../base/drop-reason.ts';
import type { AddressBytes } from '../wire/address-text.ts';
import { senderIdFromName } from '../wire/gue.ts';
import { verifyControl } from '../tunnel/control.ts';
import { AddressTable } from './address-table.ts';

export interface NodeSpec {
  name: string;
  home: AddressBytes;
  /** The node's own key (never shared with another node). */
  key: Uint8Array;
  /** Correspondent role: may this node use route optimisation here (default false). */
  routeOptimisation?: boolean;
}

/** `authenticate` found no node with the message's sender id. */
export const AUTH_UNKNOWN_SENDER = -1;
/** `authenticate`: nodes with that id exist, but no key verifies the HMAC (or it is missing). */
export const AUTH_BAD_MAC = -2;

export class NodeTable {
  readonly count: number;
  readonly names: readonly string[];
  readonly senderIds: Uint32Array;
  readonly homeFamily: Uint8Array;
  /** 16 bytes per node (an IPv4 home address uses the first 4). */
  readonly homeBytes: Uint8Array;
  readonly keys: readonly Uint8Array[];
  readonly routeOptimisation: Uint8Array;
  private readonly byHome: AddressTable;
  private readonly bySender = new Map<number, number>();
  private readonly nextSame: Int32Array;

  constructor(specs: readonly NodeSpec[]) {
    const n = specs.length;
    this.count = n;
    this.names = specs.map((s) => s.name);
    this.senderIds = new Uint32Array(n);
    this.homeFamily = new Uint8Array(n);
    this.homeBytes = new Uint8Array(n * 16);
    this.keys = specs.map((s) => s.key);
    this.routeOptimisation = new Uint8Array(n);
    this.byHome = new AddressTable(n);
    this.nextSame = new Int32Array(n).fill(-1);
    for (let i = n - 1; i >= 0; i--) {
      const s = specs[i]!;
      if (s.home.bytes.length !== (s.home.family === 4 ? 4 : 16)) throw new RangeError(`node ${s.name}: home address length`);
      if (this.byHome.get(s.home.family, s.home.bytes, 0) >= 0) throw new RangeError(`node ${s.name}: home address used twice`);
      this.byHome.set(s.home.family, s.home.bytes, 0, i);
      this.homeFamily[i] = s.home.family;
      this.homeBytes.set(s.home.bytes, i * 16);
      this.routeOptimisation[i] = s.routeOptimisation ? 1 : 0;
      const id = senderIdFromName(s.name);
      this.senderIds[i] = id;
      const head = this.bySender.get(id);
      if (head !== undefined) this.nextSame[i] = head;
      this.bySender.set(id, i);
    }
  }

  /** Node whose home address is at buf[off], or -1. */
  byHomeAddress(family: 4 | 6, buf: Uint8Array, off: number): number {
    return this.byHome.get(family, buf, off);
  }

  /** Node whose IPv4 home address is `addr` (unsigned 32-bit), or -1. */
  byHomeV4(addr: number): number {
    return this.byHome.getV4(addr);
  }

  /** True when node i's home address is the `family` address at buf[off]. */
  homeEquals(i: number, family: number, buf: Uint8Array, off: number): boolean {
    if (this.homeFamily[i] !== family) return false;
    const n = family === 4 ? 4 : 16;
    const h = i * 16;
    for (let k = 0; k < n; k++) if (this.homeBytes[h + k] !== buf[off + k]) return false;
    return true;
  }

  /** Node i's home address bytes (a view into the table: do not modify). */
  home(i: number): Uint8Array {
    return this.homeBytes.subarray(i * 16, i * 16 + (this.homeFamily[i] === 4 ? 4 : 16));
  }

  /**
   * The node that signed the control datagram buf[off, off+len) (structure already checked by
   * the caller), or AUTH_UNKNOWN_SENDER / AUTH_BAD_MAC.
   */
  authenticate(buf: Buffer, off: number, len: number, senderId: number): number {
    let i = this.bySender.get(senderId >>> 0);
    if (i === undefined) return AUTH_UNKNOWN_SENDER;
    while (i >= 0) {
      if (verifyControl(buf, off, len, this.keys[i]!) === DropReason.None) return i;
      i = this.nextSame[i]!;
    }
    return AUTH_BAD_MAC;
  }

  /** Bytes held by the per-node arrays and indexes (keys counted by length; Map entries estimated). */
  get byteSize(): number {
    let keys = 0;
    for (const k of this.keys) keys += k.byteLength;
    return this.senderIds.byteLength + this.homeFamily.byteLength + this.homeBytes.byteLength + this.routeOptimisation.byteLength + this.nextSame.byteLength + this.byHome.byteSize + keys + this.bySender.size * 24;
  }
}
