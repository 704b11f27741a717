/**
 * Nexthop groups: the nexthops of a route (one, or several for ECMP with weights), shared and
 * deduplicated (a million routes over three tunnels are three groups), reference-counted by the
 * routes that use them, and the weighted ECMP choice for a flow hash. Also the small integers
 * that stand for device/peer names (Nexthop.devIndex), so the dataplane maps a nexthop to its
 * target with an array read.
 */
import { parseAddress } from '../wire/address-text.ts';
import type { AddressBytes } from '../wire/address-text.ts';
import { RouteError } from './types.ts';
import type { Nexthop, NexthopSpec } from './types.ts';

export interface NexthopGroup {
  readonly nexthops: readonly Nexthop[];
  /** cum[i] = weight of nexthops 0..i. */
  readonly cum: Uint32Array;
  readonly total: number;
  readonly key: string;
  refs: number;
}

export class NexthopGroups {
  /** Group id -> group (null: free). Read directly by the lookups. */
  readonly groups: (NexthopGroup | null)[] = [];
  private readonly groupFree: number[] = [];
  private readonly groupByKey = new Map<string, number>();
  private readonly devNames: string[] = [];
  private readonly devIds = new Map<string, number>();

  /** Small integer for a device/peer name (stable for the life of the groups). */
  devIndex(name: string): number {
    let i = this.devIds.get(name);
    if (i === undefined) {
      i = this.devNames.length;
      this.devNames.push(name);
      this.devIds.set(name, i);
    }
    return i;
  }

  devName(index: number): string | undefined {
    return this.devNames[index];
  }

  /** The group for these nexthops (one more reference to an equal one, or a new one). */
  acquire(specs: readonly NexthopSpec[]): number {
    // Key from the specs as given (cheap; text and byte spellings of one address may make two
    // groups, which is harmless): a million routes over a few peers build a few groups.
    let key = '';
    for (const s of specs) {
      const v = s.via;
      const viaKey = v === undefined || v === null ? '' : typeof v === 'string' ? v : `${v.family}:${v.bytes.join('.')}`;
      key += `${s.dev ?? ''}|${viaKey}|${s.weight ?? 1}|${s.onlink ? 1 : 0},`;
    }
    const existing = this.groupByKey.get(key);
    if (existing !== undefined) {
      this.groups[existing]!.refs++;
      return existing;
    }
    const nhs: Nexthop[] = [];
    for (const s of specs) {
      let via: AddressBytes | null = null;
      if (s.via !== undefined && s.via !== null) {
        via = typeof s.via === 'string' ? parseAddress(s.via) : s.via;
      }
      const dev = s.dev ?? null;
      if (dev === null && via === null) throw new RouteError('nexthop needs dev or via');
      const weight = s.weight ?? 1;
      if (!Number.isInteger(weight) || weight < 1 || weight > 256) throw new RouteError(`invalid weight ${weight} (1-256)`);
      nhs.push(
        Object.freeze({
          dev,
          devIndex: dev === null ? -1 : this.devIndex(dev),
          via: via === null ? null : Object.freeze({ family: via.family, bytes: via.bytes.slice() }),
          weight,
          onlink: s.onlink ?? false,
        }),
      );
    }
    const cum = new Uint32Array(nhs.length);
    let total = 0;
    nhs.forEach((n, i) => (cum[i] = total += n.weight));
    const g: NexthopGroup = { nexthops: Object.freeze(nhs), cum, total, key, refs: 1 };
    const gid = this.groupFree.pop() ?? this.groups.length;
    this.groups[gid] = g;
    this.groupByKey.set(key, gid);
    return gid;
  }

  /** Drop one reference (gid -1: none). */
  release(gid: number): void {
    if (gid < 0) return;
    const g = this.groups[gid]!;
    if (--g.refs === 0) {
      this.groupByKey.delete(g.key);
      this.groups[gid] = null;
      this.groupFree.push(gid);
    }
  }

  /** The nexthops of group gid ([] for -1). */
  nexthops(gid: number): readonly Nexthop[] {
    return gid < 0 ? [] : this.groups[gid]!.nexthops;
  }

  /** The ECMP choice of group g for a flow hash (uint32): weighted, same hash, same nexthop. */
  choose(g: NexthopGroup, hash: number): Nexthop {
    const nhs = g.nexthops;
    if (nhs.length === 1) return nhs[0]!;
    const x = hash % g.total;
    const cum = g.cum;
    let i = 0;
    while (cum[i]! <= x) i++;
    return nhs[i]!;
  }
}
