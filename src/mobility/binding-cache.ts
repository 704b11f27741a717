/**
 * Binding cache: per mobile node, where it is now. Struct-of-arrays over `capacity` slots (the
 * `maxBindings` cap), one slot per node with a binding, found by node index in O(1) (node indices
 * come from NodeTable, which maps home addresses to nodes). No strings, no object per binding:
 * the data path reads the care-of address straight from `careOfFamily/careOfBytes/careOfPort`.
 *
 * Per binding: the care-of address:port as observed (the source of the authenticated update, what
 * we send to), the care-of the node claimed (its own view; differs behind a NAT, `nat`), the
 * RFC 6275 fields (sequence, granted lifetime), when it expires, when it was last updated, and
 * the previous care-of with `bicastUntil` (copies go there for a short overlap after a move).
 * Expiry order is kept in an indexed min-heap, so the next expiry is O(1) and removal O(log n).
 * About 140 bytes per slot, whatever the address family: 100k bindings ~ 14 MB.
 */
import { formatAddress, type Family } from '../wire/address-text.ts';
import type { SocketAddress } from '../wire/binding.ts';
import { ExpiryHeap } from './expiry-heap.ts';

/** What an update did to the care-of address. */
export enum CareOfChange {
  Same = 0,
  /** The binding had none (new binding). */
  First = 1,
  /** It moved; the old one is kept as `prev*` for bicasting. */
  Moved = 2,
}

export const BINDING_FLAG_HOME = 0x01;
export const BINDING_FLAG_ROUTE_OPT = 0x02;

/** One binding, for show/JSON (control plane; allocates). */
export interface BindingRow {
  node: number;
  careOf: SocketAddress;
  claimedCareOf: SocketAddress | null;
  nat: boolean;
  /** Seconds granted. */
  lifetime: number;
  /** Seconds left (rounded down, >= 0). */
  remaining: number;
  sequence: number;
  registeredAt: number;
  lastUpdate: number;
  updates: number;
  /** Previous care-of while bicasting, else null. */
  bicastTo: SocketAddress | null;
}

function copyAddr(dst: Uint8Array, dOff: number, family: number, src: Uint8Array, sOff: number): void {
  const n = family === 4 ? 4 : family === 6 ? 16 : 0;
  for (let k = 0; k < n; k++) dst[dOff + k] = src[sOff + k]!;
}

function equalAddr(fa: number, a: Uint8Array, aOff: number, fb: number, b: Uint8Array, bOff: number): boolean {
  if (fa !== fb) return false;
  const n = fa === 4 ? 4 : fa === 6 ? 16 : 0;
  for (let k = 0; k < n; k++) if (a[aOff + k] !== b[bOff + k]) return false;
  return true;
}

export class BindingCache {
  readonly capacity: number;
  /** slot -> node, -1 = free. */
  readonly node: Int32Array;
  /** node -> slot, -1 = no binding. */
  private readonly slotOfNode: Int32Array;
  private readonly free: Int32Array;
  private freeTop: number;

  // care-of as observed (send here)
  readonly careOfFamily: Uint8Array;
  readonly careOfBytes: Uint8Array;
  readonly careOfPort: Uint16Array;
  // care-of as the node claimed it
  readonly claimedFamily: Uint8Array;
  readonly claimedBytes: Uint8Array;
  readonly claimedPort: Uint16Array;
  readonly nat: Uint8Array;
  // previous care-of, while bicasting
  readonly prevFamily: Uint8Array;
  readonly prevBytes: Uint8Array;
  readonly prevPort: Uint16Array;
  readonly bicastUntil: Float64Array;

  readonly flags: Uint8Array;
  readonly sequence: Uint16Array;
  /** Granted lifetime, seconds. */
  readonly lifetime: Uint32Array;
  readonly expires: Float64Array;
  readonly registeredAt: Float64Array;
  readonly lastUpdate: Float64Array;
  readonly updates: Uint32Array;

  private readonly heap: ExpiryHeap;

  constructor(capacity: number, nodeCount: number) {
    if (!(capacity >= 0) || !Number.isInteger(capacity)) throw new RangeError('binding cache capacity');
    const c = capacity;
    this.capacity = c;
    this.node = new Int32Array(c).fill(-1);
    this.slotOfNode = new Int32Array(nodeCount).fill(-1);
    this.free = new Int32Array(c);
    for (let i = 0; i < c; i++) this.free[i] = c - 1 - i;
    this.freeTop = c;
    this.careOfFamily = new Uint8Array(c);
    this.careOfBytes = new Uint8Array(c * 16);
    this.careOfPort = new Uint16Array(c);
    this.claimedFamily = new Uint8Array(c);
    this.claimedBytes = new Uint8Array(c * 16);
    this.claimedPort = new Uint16Array(c);
    this.nat = new Uint8Array(c);
    this.prevFamily = new Uint8Array(c);
    this.prevBytes = new Uint8Array(c * 16);
    this.prevPort = new Uint16Array(c);
    this.bicastUntil = new Float64Array(c);
    this.flags = new Uint8Array(c);
    this.sequence = new Uint16Array(c);
    this.lifetime = new Uint32Array(c);
    this.expires = new Float64Array(c);
    this.registeredAt = new Float64Array(c);
    this.lastUpdate = new Float64Array(c);
    this.updates = new Uint32Array(c);
    this.heap = new ExpiryHeap(c);
  }

  get size(): number {
    return this.capacity - this.freeTop;
  }

  get full(): boolean {
    return this.freeTop === 0;
  }

  /** Bytes held by the typed arrays (the whole cache: fixed at construction). */
  get byteSize(): number {
    const arrays = [
      this.node, this.slotOfNode, this.free, this.careOfFamily, this.careOfBytes, this.careOfPort, this.claimedFamily,
      this.claimedBytes, this.claimedPort, this.nat, this.prevFamily, this.prevBytes, this.prevPort, this.bicastUntil,
      this.flags, this.sequence, this.lifetime, this.expires, this.registeredAt, this.lastUpdate, this.updates,
    ];
    let n = this.heap.byteSize;
    for (const a of arrays) n += a.byteLength;
    return n;
  }

  /** Slot of node's binding, or -1. */
  slotOf(node: number): number {
    return this.slotOfNode[node]!;
  }

  /** A new, empty binding for `node` (which has none), or -1 when the cache is full. */
  create(node: number, now: number): number {
    if (this.slotOfNode[node]! >= 0) return this.slotOfNode[node]!;
    if (this.freeTop === 0) return -1;
    const s = this.free[--this.freeTop]!;
    this.node[s] = node;
    this.slotOfNode[node] = s;
    this.careOfFamily[s] = 0;
    this.claimedFamily[s] = 0;
    this.prevFamily[s] = 0;
    this.nat[s] = 0;
    this.bicastUntil[s] = 0;
    this.flags[s] = 0;
    this.sequence[s] = 0;
    this.lifetime[s] = 0;
    this.expires[s] = now;
    this.registeredAt[s] = now;
    this.lastUpdate[s] = now;
    this.updates[s] = 0;
    return s;
  }

  remove(slot: number): void {
    const node = this.node[slot]!;
    if (node < 0) return;
    this.heap.remove(slot);
    this.node[slot] = -1;
    this.slotOfNode[node] = -1;
    this.free[this.freeTop++] = slot;
  }

  /**
   * Record an accepted update: observed care-of (family/buf/off/port), the claimed one (family 0
   * = none), sequence, granted lifetime in seconds. A changed care-of keeps the old one for
   * `bicastMs`. Returns what happened to the care-of.
   */
  update(
    slot: number,
    now: number,
    obsFamily: Family,
    obsBuf: Uint8Array,
    obsOff: number,
    obsPort: number,
    claimedFamily: number,
    claimedBuf: Uint8Array,
    claimedOff: number,
    claimedPort: number,
    sequence: number,
    lifetimeS: number,
    flags: number,
    bicastMs: number,
  ): CareOfChange {
    const b = slot * 16;
    const had = this.careOfFamily[slot]!;
    let change = CareOfChange.First;
    if (had !== 0) {
      if (equalAddr(had, this.careOfBytes, b, obsFamily, obsBuf, obsOff) && this.careOfPort[slot] === obsPort) {
        change = CareOfChange.Same;
      } else {
        change = CareOfChange.Moved;
        this.prevFamily[slot] = had;
        copyAddr(this.prevBytes, b, had, this.careOfBytes, b);
        this.prevPort[slot] = this.careOfPort[slot]!;
        this.bicastUntil[slot] = bicastMs > 0 ? now + bicastMs : 0;
      }
    }
    if (change !== CareOfChange.Same) {
      this.careOfFamily[slot] = obsFamily;
      copyAddr(this.careOfBytes, b, obsFamily, obsBuf, obsOff);
      this.careOfPort[slot] = obsPort;
    }
    this.claimedFamily[slot] = claimedFamily;
    copyAddr(this.claimedBytes, b, claimedFamily, claimedBuf, claimedOff);
    this.claimedPort[slot] = claimedFamily === 0 ? 0 : claimedPort;
    this.nat[slot] =
      claimedFamily !== 0 && !(equalAddr(claimedFamily, claimedBuf, claimedOff, obsFamily, obsBuf, obsOff) && claimedPort === obsPort) ? 1 : 0;
    this.sequence[slot] = sequence;
    this.lifetime[slot] = lifetimeS;
    this.flags[slot] = flags;
    this.lastUpdate[slot] = now;
    this.updates[slot]!++;
    this.expires[slot] = now + lifetimeS * 1000;
    this.heap.set(slot, this.expires[slot]!);
    return change;
  }

  /** True while copies should also go to the previous care-of. */
  bicasting(slot: number, now: number): boolean {
    return this.prevFamily[slot] !== 0 && this.bicastUntil[slot]! > now;
  }

  /** The earliest expiry time, or Infinity. */
  nextExpiry(): number {
    return this.heap.peekTime();
  }

  /** A slot whose binding has expired at `now` (the earliest), or -1. The caller removes it. */
  expired(now: number): number {
    const s = this.heap.peek();
    return s >= 0 && this.expires[s]! <= now ? s : -1;
  }

  /** The observed care-of of a slot as an object (control plane). */
  careOf(slot: number): SocketAddress {
    const f = this.careOfFamily[slot] as Family;
    const b = slot * 16;
    return { family: f, bytes: this.careOfBytes.slice(b, b + (f === 4 ? 4 : 16)), port: this.careOfPort[slot]! };
  }

  row(slot: number, now: number): BindingRow {
    const b = slot * 16;
    const cf = this.claimedFamily[slot]!;
    const pf = this.prevFamily[slot]!;
    return {
      node: this.node[slot]!,
      careOf: this.careOf(slot),
      claimedCareOf: cf === 0 ? null : { family: cf as Family, bytes: this.claimedBytes.slice(b, b + (cf === 4 ? 4 : 16)), port: this.claimedPort[slot]! },
      nat: this.nat[slot] === 1,
      lifetime: this.lifetime[slot]!,
      remaining: Math.max(0, Math.floor((this.expires[slot]! - now) / 1000)),
      sequence: this.sequence[slot]!,
      registeredAt: this.registeredAt[slot]!,
      lastUpdate: this.lastUpdate[slot]!,
      updates: this.updates[slot]!,
      bicastTo: this.bicasting(slot, now) ? { family: pf as Family, bytes: this.prevBytes.slice(b, b + (pf === 4 ? 4 : 16)), port: this.prevPort[slot]! } : null,
    };
  }

  /** Every binding as rows (control plane). */
  rows(now: number): BindingRow[] {
    const out: BindingRow[] = [];
    for (let s = 0; s < this.capacity; s++) if (this.node[s]! >= 0) out.push(this.row(s, now));
    return out;
  }

  /** "care-of text" of a slot, for logs (control plane). */
  describeCareOf(slot: number): string {
    const f = this.careOfFamily[slot] as Family;
    const h = formatAddress(this.careOfBytes, slot * 16, f);
    return f === 6 ? `[${h}]:${this.careOfPort[slot]}` : `${h}:${this.careOfPort[slot]}`;
  }
}
