/**
 * Fast path: the peers' underlay endpoints as the raw socket sees them — a sockaddr to send to
 * per peer, and sockaddr -> peer index for every received datagram — derived from the one
 * PeerEndpoints record (src/transport/peer-endpoints.ts) and updated whenever it changes.
 *
 * Lookups allocate nothing: an endpoint is keyed as 16 address bytes (IPv4 as ::ffff:a.b.c.d,
 * so a dual-stack IPv6 socket's v4-mapped sources and an IPv4 socket's sources match the same
 * key) plus the port, in an open-addressing table of typed arrays, with the last hit cached
 * (a GRO chunk and the next one mostly come from the same peer).
 */
import { AF_INET, AF_INET6 } from '../sys/linux.ts';
import { SIN6_ADDR, SIN_ADDR, sockaddrFamily, sockaddrPort, writeSockaddrIn, writeSockaddrIn6 } from '../sys/sockaddr.ts';
import type { PeerEndpoint, PeerEndpoints } from '../transport/peer-endpoints.ts';
import type { UnderlayAddress } from './dataplane.ts';
import type { DatagramSources } from './pipeline.ts';

/** Room per peer for its sockaddr (sockaddr_in6). */
export const SOCKADDR_SPACE = 28;

const V4MAPPED_W2 = 0x0000ffff;

export class UnderlayIndex implements DatagramSources {
  /** Per peer: its sockaddr for this socket (SOCKADDR_SPACE bytes each) and its length (0 = none). */
  private names = new Uint8Array(16 * SOCKADDR_SPACE);
  private nameLen = new Int32Array(16);
  // hash table: key words (4) + port per slot, value = peer index, -1 = empty
  private keys = new Int32Array(64 * 4);
  private ports = new Int32Array(64);
  private vals = new Int32Array(64).fill(-1);
  private mask = 63;
  private count = 0;
  private readonly w = new Int32Array(4);
  private lastSlot = -1;
  private unsubscribe: (() => void) | null = null;

  // ---- sources of the current receive batch (DatagramSources)
  /** The receive vector's memory and, per datagram of the batch, the offset of its sockaddr there. */
  batchMem: Uint8Array = new Uint8Array(0);
  readonly batchName: Int32Array;

  constructor(
    /** The socket's family: 6 writes sockaddr_in6 for every peer (v4 ones mapped). */
    readonly family: 4 | 6,
    batchMax: number,
  ) {
    this.batchName = new Int32Array(batchMax);
  }

  /** Follow `endpoints`: index every entry now and every change from now on. */
  follow(endpoints: PeerEndpoints): void {
    for (const [i, ep] of endpoints.entries()) this.set(i, ep);
    this.unsubscribe = endpoints.subscribe((i, ep) => (ep === undefined ? this.remove(i) : this.set(i, ep)));
  }

  unfollow(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  /** Can this socket reach `ep`? (An IPv6 endpoint on an IPv4 socket cannot.) */
  reachable(ep: { family: 4 | 6 }): boolean {
    return ep.family === 4 || this.family === 6;
  }

  /** Write `ep`'s sockaddr for this socket at u8[off]; returns its length (0: unreachable). */
  writeName(u8: Uint8Array, off: number, family: 4 | 6, bytes: Uint8Array, port: number): number {
    if (family === 6 && this.family === 4) return 0;
    if (this.family === 4) {
      return writeSockaddrIn(u8, off, ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0, port);
    }
    if (family === 6) return writeSockaddrIn6(u8, off, bytes, 0, port);
    const mapped = new Uint8Array(16);
    mapped[10] = 0xff;
    mapped[11] = 0xff;
    mapped.set(bytes, 12);
    return writeSockaddrIn6(u8, off, mapped, 0, port);
  }

  set(index: number, ep: PeerEndpoint): void {
    this.remove(index);
    if (index >= this.nameLen.length) this.growNames(index + 1);
    const len = this.writeName(this.names, index * SOCKADDR_SPACE, ep.family, ep.bytes, ep.port);
    this.nameLen[index] = len;
    if (len === 0) return;
    this.keyOf(ep.family, ep.bytes);
    this.insert(ep.port, index);
  }

  remove(index: number): void {
    if (index >= this.nameLen.length || this.nameLen[index] === 0) return;
    this.nameLen[index] = 0;
    // rebuild without it (control plane; tables are small)
    const old = { keys: this.keys, ports: this.ports, vals: this.vals };
    this.keys = new Int32Array(old.keys.length);
    this.ports = new Int32Array(old.ports.length);
    this.vals = new Int32Array(old.vals.length).fill(-1);
    this.count = 0;
    this.lastSlot = -1;
    for (let s = 0; s < old.vals.length; s++) {
      const v = old.vals[s]!;
      if (v < 0 || v === index) continue;
      for (let k = 0; k < 4; k++) this.w[k] = old.keys[s * 4 + k]!;
      this.insert(old.ports[s]!, v);
    }
  }

  /** Peer `index`'s sockaddr length (0: none or unreachable); its bytes at nameOffset(index) in names(). */
  nameLength(index: number): number {
    return index >= 0 && index < this.nameLen.length ? this.nameLen[index]! : 0;
  }
  get nameBytes(): Uint8Array {
    return this.names;
  }
  nameOffset(index: number): number {
    return index * SOCKADDR_SPACE;
  }

  /** The peer index of the sockaddr at u8[off] (as recvmmsg wrote it), or -1. */
  lookup(u8: Uint8Array, off: number): number {
    const w = this.w;
    const fam = sockaddrFamily(u8, off);
    if (fam === AF_INET) {
      const a = off + SIN_ADDR;
      w[0] = 0;
      w[1] = 0;
      w[2] = V4MAPPED_W2;
      w[3] = (u8[a]! << 24) | (u8[a + 1]! << 16) | (u8[a + 2]! << 8) | u8[a + 3]!;
    } else if (fam === AF_INET6) {
      const a = off + SIN6_ADDR;
      for (let k = 0; k < 4; k++) {
        const o = a + 4 * k;
        w[k] = (u8[o]! << 24) | (u8[o + 1]! << 16) | (u8[o + 2]! << 8) | u8[o + 3]!;
      }
    } else {
      return -1;
    }
    const port = sockaddrPort(u8, off);
    const last = this.lastSlot;
    if (last >= 0 && this.matches(last, port)) return this.vals[last]!;
    const mask = this.mask;
    for (let s = this.hash(port) & mask, probes = 0; probes <= mask; s = (s + 1) & mask, probes++) {
      const v = this.vals[s]!;
      if (v < 0) return -1;
      if (this.matches(s, port)) {
        this.lastSlot = s;
        return v;
      }
    }
    return -1;
  }

  /** DatagramSources: the underlay source of datagram i of the current batch (allocates: control plane). */
  source(i: number): UnderlayAddress {
    const u8 = this.batchMem;
    const off = this.batchName[i]!;
    const port = sockaddrPort(u8, off);
    if (sockaddrFamily(u8, off) === AF_INET) return { family: 4, address: u8.slice(off + SIN_ADDR, off + SIN_ADDR + 4), port };
    const a = u8.slice(off + SIN6_ADDR, off + SIN6_ADDR + 16);
    const mapped = a.subarray(0, 10).every((x) => x === 0) && a[10] === 0xff && a[11] === 0xff;
    return mapped ? { family: 4, address: a.slice(12), port } : { family: 6, address: a, port };
  }

  /** A 32-bit hash (FNV-1a) of datagram i's sockaddr bytes (port and address), allocation-free. */
  sourceKey(i: number): number {
    const u8 = this.batchMem;
    const off = this.batchName[i]!;
    const len = sockaddrFamily(u8, off) === AF_INET ? 8 : 24;
    let h = 0x811c9dc5;
    for (let k = 2; k < len; k++) h = Math.imul(h ^ u8[off + k]!, 0x01000193);
    return h >>> 0;
  }

  // ---- internals

  private keyOf(family: 4 | 6, bytes: Uint8Array): void {
    const w = this.w;
    if (family === 4) {
      w[0] = 0;
      w[1] = 0;
      w[2] = V4MAPPED_W2;
      w[3] = (bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!;
    } else {
      for (let k = 0; k < 4; k++) w[k] = (bytes[4 * k]! << 24) | (bytes[4 * k + 1]! << 16) | (bytes[4 * k + 2]! << 8) | bytes[4 * k + 3]!;
    }
  }

  private hash(port: number): number {
    const w = this.w;
    let h = Math.imul(w[3]! ^ port, 0x9e3779b1);
    h = Math.imul(h ^ w[2]! ^ (h >>> 15), 0x85ebca6b);
    h = Math.imul(h ^ w[1]! ^ w[0]! ^ (h >>> 13), 0xc2b2ae35);
    return (h ^ (h >>> 16)) >>> 0;
  }

  private matches(s: number, port: number): boolean {
    const k = this.keys;
    const w = this.w;
    const b = s * 4;
    return this.ports[s] === port && k[b] === w[0] && k[b + 1] === w[1] && k[b + 2] === w[2] && k[b + 3] === w[3] && this.vals[s]! >= 0;
  }

  /** Insert the key in this.w with `port` -> index (replacing an equal key). */
  private insert(port: number, index: number): void {
    if ((this.count + 1) * 2 > this.vals.length) this.growTable();
    const mask = this.mask;
    for (let s = this.hash(port) & mask; ; s = (s + 1) & mask) {
      if (this.vals[s]! < 0 || this.matches(s, port)) {
        if (this.vals[s]! < 0) this.count++;
        for (let k = 0; k < 4; k++) this.keys[s * 4 + k] = this.w[k]!;
        this.ports[s] = port;
        this.vals[s] = index;
        return;
      }
    }
  }

  private growTable(): void {
    const old = { keys: this.keys, ports: this.ports, vals: this.vals };
    const size = old.vals.length * 2;
    const saved = Int32Array.from(this.w);
    this.keys = new Int32Array(size * 4);
    this.ports = new Int32Array(size);
    this.vals = new Int32Array(size).fill(-1);
    this.mask = size - 1;
    this.count = 0;
    this.lastSlot = -1;
    for (let s = 0; s < old.vals.length; s++) {
      if (old.vals[s]! < 0) continue;
      for (let k = 0; k < 4; k++) this.w[k] = old.keys[s * 4 + k]!;
      this.insert(old.ports[s]!, old.vals[s]!);
    }
    this.w.set(saved);
  }

  private growNames(n: number): void {
    const size = Math.max(n, this.nameLen.length * 2);
    const names = new Uint8Array(size * SOCKADDR_SPACE);
    names.set(this.names);
    const lens = new Int32Array(size);
    lens.set(this.nameLen);
    this.names = names;
    this.nameLen = lens;
  }
}
