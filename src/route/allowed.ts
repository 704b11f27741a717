/**
 * The source check for packets from peers (WireGuard's AllowedIPs, cryptokey routing turned
 * around): every peer's prefixes in one longest-prefix-match structure per family whose value
 * is the peer index itself, so checking an inner source address is one lookup and a compare.
 * The same LPM structures as the route tables (lpm/): IPv4 [16,8,8], switching to DIR-24-8 past
 * 16384 prefixes; IPv6 a Poptrie with /32 buckets. A prefix given to two peers stays with the
 * first (as the route table it replaces kept the first of two routes of equal metric).
 * Built from the config (endpoint/config-routes.ts); lookups allocate nothing.
 */
import type { Family, Prefix } from '../wire/address-text.ts';
import { Poptrie } from './lpm/poptrie.ts';
import { MAX_TRIE_VALUE, StrideTrie, V4_STRIDES_LARGE, V4_STRIDES_SMALL, V6_TOP_BITS } from './lpm/trie.ts';
import { loadPrefixKey } from './store.ts';
import { V4_LARGE_THRESHOLD } from './table.ts';
import { RouteError } from './types.ts';

export class AllowedSources {
  private v4: StrideTrie | null = null;
  private v6: Poptrie | null = null;
  /** Prefixes present ("family/length/w0.w1.w2.w3" key words -> peer): the first peer of a prefix keeps it. */
  private readonly owner = new Map<string, number>();
  /** IPv4 prefixes as [word, length, peer] triples, for the switch to DIR-24-8. */
  private readonly list4: number[] = [];
  private readonly key = new Uint32Array(4);

  /** Number of prefixes held. */
  get size(): number {
    return this.owner.size;
  }

  /**
   * Allow `prefix` as a source for peer `peer` (0 <= peer < 2^23 - 1). Host bits set, or a
   * length out of range, throw a RouteError. Returns false when the prefix already belongs to a
   * peer (that peer keeps it).
   */
  add(prefix: Prefix, peer: number): boolean {
    const max = prefix.family === 4 ? 32 : 128;
    if (!Number.isInteger(prefix.length) || prefix.length < 0 || prefix.length > max) {
      throw new RouteError(`invalid prefix length ${prefix.length}`);
    }
    if (!Number.isInteger(peer) || peer < 0 || peer > MAX_TRIE_VALUE) throw new RouteError(`invalid peer index ${peer}`);
    const k = this.key;
    loadPrefixKey(prefix, k);
    const id = `${prefix.family}/${prefix.length}/${k.join('.')}`;
    if (this.owner.has(id)) return false;
    this.owner.set(id, peer);
    this.insert(prefix.family, prefix.length, peer, k);
    return true;
  }

  /**
   * Forget every prefix of peer `peer` (a peer removed at run time). Control plane: the tries
   * are rebuilt from the prefixes that stay.
   */
  removePeer(peer: number): number {
    let removed = 0;
    for (const [id, p] of this.owner) {
      if (p === peer) {
        this.owner.delete(id);
        removed++;
      }
    }
    if (removed === 0) return 0;
    this.v4 = null;
    this.v6 = null;
    this.list4.length = 0;
    const k = new Uint32Array(4);
    for (const [id, p] of this.owner) {
      const [family, length, words] = id.split('/');
      words!.split('.').forEach((w, i) => (k[i] = Number(w)));
      this.insert(Number(family) as Family, Number(length), p, k);
    }
    return removed;
  }

  private insert(family: Family, length: number, peer: number, k: Uint32Array): void {
    if (family === 4) {
      this.list4.push(k[0]!, length, peer);
      if (this.v4 === null) this.v4 = new StrideTrie(32, V4_STRIDES_SMALL);
      if (!this.v4.dir24 && this.list4.length / 3 > V4_LARGE_THRESHOLD) this.rebuildV4();
      else this.v4.insert(k, length, peer);
    } else {
      if (this.v6 === null) this.v6 = new Poptrie(128, V6_TOP_BITS, true);
      this.v6.insert(k, length, peer);
    }
  }

  /** Peer index for the source address at buf[addrOff] of `family`, or -1 (no peer's prefix). */
  lookup(buf: Uint8Array, addrOff: number, family: Family): number {
    return family === 4 ? this.lookup4(buf, addrOff) : this.lookup6(buf, addrOff);
  }

  lookup4(buf: Uint8Array, addrOff: number): number {
    return this.v4 === null ? -1 : this.v4.lookup4(buf, addrOff);
  }

  lookup6(buf: Uint8Array, addrOff: number): number {
    return this.v6 === null ? -1 : this.v6.lookupBytes(buf, addrOff);
  }

  /** Bytes held by the tries. */
  byteSize(): number {
    return (this.v4?.byteSize() ?? 0) + (this.v6?.byteSize() ?? 0);
  }

  /** One-time switch of a large IPv4 set to DIR-24-8 (the new prefix is in list4 already). */
  private rebuildV4(): void {
    const trie = new StrideTrie(32, V4_STRIDES_LARGE);
    const k = new Uint32Array(4);
    const l = this.list4;
    for (let i = 0; i < l.length; i += 3) {
      k[0] = l[i]!;
      trie.insert(k, l[i + 1]!, l[i + 2]!);
    }
    this.v4 = trie;
  }
}
