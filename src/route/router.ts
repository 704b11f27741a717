/**
 * The route table of the endpoint: routes as Linux has them (prefix, type, metric, nexthops with
 * ECMP weights) in numbered/named tables, policy rules in front, and one allocation-free
 * `lookup(buf, off)` per packet.
 *
 * Layout, sized for full internet tables (~1M IPv4 + ~200k IPv6 routes):
 * - Routes live in a struct-of-arrays store indexed by a small integer route id (no object per
 *   route): table, family, prefix words, length, type, metric, nexthop group, counters.
 * - Routes of one (table, prefix) form a list sorted by metric; the head (lowest metric) is the one
 *   the LPM trie of the table points at. Removing the head exposes the next one.
 * - An open-addressing hash (typed arrays) maps (table, family, length, prefix) to that head, for
 *   exact add/remove and to find the covering prefix whose entries a removal restores.
 * - Nexthop groups are shared and deduplicated (a million routes over three tunnels are three
 *   groups); each has cumulative weights for the ECMP choice.
 */
import { formatAddress, parseAddress, parsePrefix } from '../wire/address-text.ts';
import type { AddressBytes, Family, Prefix } from '../wire/address-text.ts';
import { FlowKey } from './flow.ts';
import { compileRule, parseRule, Rule } from './rules.ts';
import type { RuleSpec } from './rules.ts';
import { matchLength, matchValue, Poptrie } from './lpm/poptrie.ts';
import { MAX_TRIE_VALUE, StrideTrie, V4_STRIDES_LARGE, V4_STRIDES_SMALL, V6_TOP_BITS } from './lpm/trie.ts';
import { ROUTE_TYPE_NAMES, RouteType, routeTypeCode } from './types.ts';
import type { Nexthop, NexthopSpec, RouteInfo, RouteSpec, RouteTypeCode } from './types.ts';

export const TABLE_MAIN = 254;
export const TABLE_LOCAL = 255;
export const TABLE_DEFAULT = 253;

/** Batch lookups work through bursts in chunks of this many (scratch arrays are this long). */
export const BATCH_MAX = 64;

/** A table switches its IPv4 trie from [16,8,8] to DIR-24-8 above this many IPv4 prefixes. */
const V4_LARGE_THRESHOLD = 16384;

export class RouteError extends Error {
  override name = 'RouteError';
}

/** One routing table: an IPv4 and an IPv6 trie of head route ids, created on first use. */
export class RouteTable {
  v4: StrideTrie | null = null;
  v6: Poptrie | null = null;
  count4 = 0;
  count6 = 0;
  /** Prefixes present per length (removal looks for the covering prefix only at these). */
  readonly lengths4 = new Uint32Array(33);
  readonly lengths6 = new Uint32Array(129);
  /** Scratch of lookupBatch4: first-level indices of one chunk. */
  private readonly idx = new Int32Array(BATCH_MAX);
  constructor(
    readonly id: number,
    readonly name: string,
  ) {}

  /** Route id (the lowest-metric route of the longest matching prefix) or -1. */
  lookup4(buf: Uint8Array, addrOff: number): number {
    return this.v4 === null ? -1 : this.v4.lookup4(buf, addrOff);
  }

  lookup6(buf: Uint8Array, addrOff: number): number {
    return this.v6 === null ? -1 : this.v6.lookupBytes(buf, addrOff);
  }

  /**
   * Batch of IPv4 lookups: out[k] = lookup4(buf, offs[k]) for k < n (route id or -1). The
   * addresses may sit anywhere in `buf` (e.g. one pool slab: offs = slot offset + 16), so one call
   * serves a burst of packets. Allocation-free; any n (bursts above BATCH_MAX go in chunks).
   * The DIR-24-8 walk is written out here in three passes over the burst: all first-level
   * indices, then a tight gather of the first-level entries (nothing in that loop depends on a
   * previous load, so the CPU keeps many cache/TLB misses in flight), then the rare second level
   * and the decoding. Measured (1M prefixes, 2-core shared VM, burst 32): 39-45 M/s random,
   * 23-45 in-table (load-dependent), where eight lookups written side by side per iteration gave
   * 28-32 and four 25-29 (the longer loop body keeps fewer loads in flight), one by one 15-25.
   * Details in the trie.ts note.
   */
  lookupBatch4(buf: Uint8Array, offs: Int32Array, n: number, out: Int32Array): void {
    const t = this.v4;
    if (t === null) {
      out.fill(-1, 0, n);
      return;
    }
    if (!t.dir24) {
      for (let k = 0; k < n; k++) out[k] = t.lookupBytes(buf, offs[k]!);
      return;
    }
    const d0 = t.d0;
    const d1 = t.d1;
    const idx = this.idx;
    for (let k0 = 0; k0 < n; k0 += BATCH_MAX) {
      const k1 = k0 + BATCH_MAX < n ? k0 + BATCH_MAX : n;
      for (let k = k0; k < k1; k++) {
        const o = offs[k]!;
        idx[k - k0] = (buf[o]! << 16) | (buf[o + 1]! << 8) | buf[o + 2]!;
      }
      for (let k = k0; k < k1; k++) out[k] = d0[idx[k - k0]!]!;
      for (let k = k0; k < k1; k++) {
        let e = out[k]!;
        if (e < 0) e = d1[((e & 0x7fffffff) << 8) | buf[offs[k]! + 3]!]!;
        out[k] = (e & 0x7fffff) - 1;
      }
    }
  }

  /**
   * Batch of IPv6 lookups: out[k] = lookup6(buf, offs[k]) for k < n, allocation-free, any n.
   * Answered by the Poptrie's /32 buckets (one index probe and a short scan, v6-bucket.ts);
   * addresses without a bucket by its short-prefix trie; the rest walk the Poptrie
   * (poptrie.ts lookupMany).
   */
  lookupBatch6(buf: Uint8Array, offs: Int32Array, n: number, out: Int32Array): void {
    if (this.v6 === null) out.fill(-1, 0, n);
    else this.v6.lookupMany(buf, offs, n, out);
  }

  byteSize(): number {
    return (this.v4?.byteSize() ?? 0) + (this.v6?.byteSize() ?? 0);
  }
}

interface Group {
  readonly nexthops: readonly Nexthop[];
  /** cum[i] = weight of nexthops 0..i. */
  readonly cum: Uint32Array;
  readonly total: number;
  readonly key: string;
  refs: number;
}

export interface RouterOptions {
  /** Keep each route's original text (iproute2 line) for display. Default false. */
  keepText?: boolean;
  /** ECMP hash seed (default fixed, so results are reproducible). */
  hashSeed?: number;
}

export interface RouteFilter {
  table?: string | number | 'all';
  family?: Family;
}

/** A rule that looks its table up for every packet (no selectors, no `not`). */
function unconditionalLookup(r: Rule): boolean {
  return (
    r.action === 'lookup' &&
    r.family === 0 &&
    !r.not &&
    r.from === null &&
    r.to === null &&
    r.ipproto < 0 &&
    r.sportLo < 0 &&
    r.dportLo < 0
  );
}

export class Router {
  // ---- route store (struct of arrays) ----
  private cap = 0;
  private top = 0;
  private freeIds: number[] = [];
  private rTable = new Uint32Array(0);
  private rFam = new Uint8Array(0);
  private rLen = new Uint8Array(0);
  private rKey = new Uint32Array(0);
  private rType = new Uint8Array(0);
  private rMetric = new Uint32Array(0);
  private rGroup = new Int32Array(0);
  private rNext = new Int32Array(0);
  private rLive = new Uint8Array(0);
  /** Per-route use counters. */
  /** Per-route use counters, interleaved [packets, bytes] (one cache line per route). */
  private rCount = new Float64Array(0);
  private readonly text = new Map<number, string>();
  private readonly keepText: boolean;

  // ---- exact prefix index: slot -> head route id, -1 empty ----
  private slots = new Int32Array(1 << 10).fill(-1);
  private used = 0;

  // ---- nexthops ----
  private readonly groups: (Group | null)[] = [];
  private readonly groupFree: number[] = [];
  private readonly groupByKey = new Map<string, number>();
  private readonly devNames: string[] = [];
  private readonly devIds = new Map<string, number>();

  // ---- tables and rules ----
  private readonly tables = new Map<number, RouteTable>();
  private readonly tableIds = new Map<string, number>([
    ['main', TABLE_MAIN],
    ['local', TABLE_LOCAL],
    ['default', TABLE_DEFAULT],
    ['unspec', 0],
  ]);
  private nextTableId = 10000;
  private ruleList: Rule[] = [];
  /** Every rule looks a table up for every packet (the defaults): lookupBatch works per table. */
  private simpleRules = true;
  // ---- lookupBatch scratch (BATCH_MAX lanes per family) ----
  private readonly bOff4 = new Int32Array(BATCH_MAX);
  private readonly bLane4 = new Int32Array(BATCH_MAX);
  private readonly bOut4 = new Int32Array(BATCH_MAX);
  private readonly bOff6 = new Int32Array(BATCH_MAX);
  private readonly bLane6 = new Int32Array(BATCH_MAX);
  private readonly bOut6 = new Int32Array(BATCH_MAX);

  // ---- per-lookup scratch and results (read them right after lookup) ----
  readonly flow = new FlowKey();
  /** Type of the last lookup's result (RouteType; NONE when nothing matched). */
  lastType: number = RouteType.NONE;
  /** Route id of the last lookup (-1 when none). */
  lastRoute = -1;
  /** Nexthop chosen by the last lookup (null for routes without nexthops or no route). */
  lastNexthop: Nexthop | null = null;
  /** Table id the last lookup matched in. */
  lastTable = 0;
  private readonly seed: number;
  private readonly key = new Uint32Array(4);
  private readonly key2 = new Uint32Array(4);
  private readonly scratch = new Uint8Array(64);

  constructor(opts: RouterOptions = {}) {
    this.keepText = opts.keepText ?? false;
    this.seed = opts.hashSeed ?? 0x1f2e3d4c;
    this.grow(1024);
    this.addRule({ priority: 0, table: 'local' });
    this.addRule({ priority: 32766, table: 'main' });
    this.addRule({ priority: 32767, table: 'default' });
  }

  // ================= tables =================

  /** Table id for a name or number; unknown names get a new id when `create`. */
  tableId(t: string | number, create = true): number {
    if (typeof t === 'number') {
      if (!Number.isInteger(t) || t < 0 || t > 0xffffffff) throw new RouteError(`invalid table ${t}`);
      return t;
    }
    if (/^\d{1,10}$/.test(t)) return this.tableId(Number(t));
    const id = this.tableIds.get(t);
    if (id !== undefined) return id;
    if (!create) throw new RouteError(`unknown table ${t}`);
    if (!/^[A-Za-z_][\w.-]*$/.test(t)) throw new RouteError(`invalid table name ${t}`);
    return this.defineTable(t, this.nextTableId++);
  }

  /** Name a table (like a line of /etc/iproute2/rt_tables). */
  defineTable(name: string, id: number): number {
    const old = this.tableIds.get(name);
    if (old !== undefined && old !== id) throw new RouteError(`table ${name} is already ${old}`);
    this.tableIds.set(name, id);
    return id;
  }

  tableName(id: number): string {
    for (const [n, i] of this.tableIds) if (i === id && n !== 'unspec') return n;
    return String(id);
  }

  /** The table object (created on first use). */
  table(t: string | number = 'main'): RouteTable {
    const id = this.tableId(t);
    let tab = this.tables.get(id);
    if (!tab) {
      tab = new RouteTable(id, this.tableName(id));
      this.tables.set(id, tab);
      for (const r of this.ruleList) if (r.action === 'lookup' && r.table === id) r.tableRef = tab;
    }
    return tab;
  }

  // ================= devices =================

  /** Small integer for a device/peer name (stable for the Router's life). */
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

  // ================= rules =================

  /** Add a policy rule (object or `ip rule` text). Returns its priority. */
  addRule(spec: RuleSpec | string): number {
    const s = typeof spec === 'string' ? parseRule(spec) : spec;
    let prio = s.priority;
    if (prio === undefined) {
      // Like ip rule: one below the lowest priority above 0.
      const above = this.ruleList.filter((r) => r.priority > 0).map((r) => r.priority);
      prio = Math.max(0, (above.length ? Math.min(...above) : 32766) - 1);
    }
    const rule = compileRule(s, prio, (t) => this.tableId(t));
    if (rule.action === 'lookup') {
      rule.tableRef = this.tables.get(rule.table) ?? null;
    }
    // Stable: after existing rules of the same priority.
    let at = this.ruleList.length;
    while (at > 0 && this.ruleList[at - 1]!.priority > prio) at--;
    this.ruleList = [...this.ruleList.slice(0, at), rule, ...this.ruleList.slice(at)];
    this.simpleRules = this.ruleList.every(unconditionalLookup);
    return prio;
  }

  /** Remove the first rule with this priority (and, if given, formatted the same). */
  removeRule(priority: number): boolean {
    const i = this.ruleList.findIndex((r) => r.priority === priority);
    if (i < 0) return false;
    this.ruleList = this.ruleList.filter((_, j) => j !== i);
    this.simpleRules = this.ruleList.every(unconditionalLookup);
    return true;
  }

  rules(): readonly Rule[] {
    return this.ruleList;
  }

  /** `ip rule show` text. */
  showRules(): string {
    return this.ruleList.map((r) => r.format((id) => this.tableName(id))).join('\n') + '\n';
  }

  // ================= route store =================

  private grow(n: number): void {
    const cap = Math.max(n, Math.ceil(this.cap * 1.5));
    const g = <T extends Uint8Array | Uint32Array | Int32Array | Float64Array>(old: T, ctor: new (n: number) => T, per = 1): T => {
      const a = new ctor(cap * per);
      a.set(old as never);
      return a;
    };
    this.rTable = g(this.rTable, Uint32Array);
    this.rFam = g(this.rFam, Uint8Array);
    this.rLen = g(this.rLen, Uint8Array);
    this.rKey = g(this.rKey, Uint32Array, 4);
    this.rType = g(this.rType, Uint8Array);
    this.rMetric = g(this.rMetric, Uint32Array);
    this.rGroup = g(this.rGroup, Int32Array);
    this.rNext = g(this.rNext, Int32Array);
    this.rLive = g(this.rLive, Uint8Array);
    this.rCount = g(this.rCount, Float64Array, 2);
    this.cap = cap;
  }

  private allocId(): number {
    const id = this.freeIds.pop();
    if (id !== undefined) return id;
    if (this.top >= MAX_TRIE_VALUE) throw new RouteError('route table full');
    if (this.top >= this.cap) this.grow(this.top + 1);
    return this.top++;
  }

  /** Number of routes stored. */
  get size(): number {
    return this.top - this.freeIds.length;
  }

  // ---- exact prefix index ----

  private hashKey(table: number, fam: number, len: number, k: Uint32Array): number {
    let h = Math.imul(table ^ 0x9e3779b9, 0x85ebca6b) ^ ((fam << 8) | len);
    for (let w = 0; w < 4; w++) {
      h = Math.imul(h ^ k[w]!, 0xcc9e2d51);
      h ^= h >>> 15;
    }
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return (h ^ (h >>> 16)) >>> 0;
  }

  private sameKey(id: number, table: number, fam: number, len: number, k: Uint32Array): boolean {
    if (this.rTable[id] !== table || this.rFam[id] !== fam || this.rLen[id] !== len) return false;
    const b = id * 4;
    return (
      this.rKey[b] === k[0] && this.rKey[b + 1] === k[1] && this.rKey[b + 2] === k[2] && this.rKey[b + 3] === k[3]
    );
  }

  /** Head route id for the exact prefix, or -1. */
  private findHead(table: number, fam: number, len: number, k: Uint32Array): number {
    const mask = this.slots.length - 1;
    for (let s = this.hashKey(table, fam, len, k) & mask; ; s = (s + 1) & mask) {
      const id = this.slots[s]!;
      if (id < 0) return -1;
      if (this.sameKey(id, table, fam, len, k)) return id;
    }
  }

  private slotOf(id: number): number {
    const b = id * 4;
    const k = this.key2;
    k[0] = this.rKey[b]!;
    k[1] = this.rKey[b + 1]!;
    k[2] = this.rKey[b + 2]!;
    k[3] = this.rKey[b + 3]!;
    const mask = this.slots.length - 1;
    for (let s = this.hashKey(this.rTable[id]!, this.rFam[id]!, this.rLen[id]!, k) & mask; ; s = (s + 1) & mask) {
      const at = this.slots[s]!;
      if (at < 0) return -1;
      if (this.sameKey(at, this.rTable[id]!, this.rFam[id]!, this.rLen[id]!, k)) return s;
    }
  }

  private indexInsert(id: number): void {
    if ((this.used + 1) * 2 > this.slots.length) this.rehash(this.slots.length * 2);
    const b = id * 4;
    const k = this.key2;
    for (let w = 0; w < 4; w++) k[w] = this.rKey[b + w]!;
    const mask = this.slots.length - 1;
    let s = this.hashKey(this.rTable[id]!, this.rFam[id]!, this.rLen[id]!, k) & mask;
    while (this.slots[s]! >= 0) s = (s + 1) & mask;
    this.slots[s] = id;
    this.used++;
  }

  private rehash(size: number): void {
    const old = this.slots;
    this.slots = new Int32Array(size).fill(-1);
    this.used = 0;
    for (let i = 0; i < old.length; i++) if (old[i]! >= 0) this.indexInsert(old[i]!);
  }

  /** Delete slot s with backward-shift (linear probing, no tombstones). */
  private indexDelete(s: number): void {
    const mask = this.slots.length - 1;
    const k = this.key2;
    let hole = s;
    for (let j = (s + 1) & mask; ; j = (j + 1) & mask) {
      const id = this.slots[j]!;
      if (id < 0) break;
      const b = id * 4;
      for (let w = 0; w < 4; w++) k[w] = this.rKey[b + w]!;
      const home = this.hashKey(this.rTable[id]!, this.rFam[id]!, this.rLen[id]!, k) & mask;
      // Move id into the hole if its home is not in (hole, j] cyclically.
      const inRange = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (!inRange) {
        this.slots[hole] = id;
        hole = j;
      }
    }
    this.slots[hole] = -1;
    this.used--;
  }

  // ---- nexthop groups ----

  private groupFor(specs: NexthopSpec[]): number {
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
    const g: Group = { nexthops: Object.freeze(nhs), cum, total, key, refs: 1 };
    const gid = this.groupFree.pop() ?? this.groups.length;
    this.groups[gid] = g;
    this.groupByKey.set(key, gid);
    return gid;
  }

  private releaseGroup(gid: number): void {
    if (gid < 0) return;
    const g = this.groups[gid]!;
    if (--g.refs === 0) {
      this.groupByKey.delete(g.key);
      this.groups[gid] = null;
      this.groupFree.push(gid);
    }
  }

  // ================= add / remove =================

  private resolvePrefix(p: string | Prefix, family?: Family): Prefix {
    if (typeof p !== 'string') {
      const max = p.family === 4 ? 32 : 128;
      if (!Number.isInteger(p.length) || p.length < 0 || p.length > max) throw new RouteError(`invalid prefix length ${p.length}`);
      return p;
    }
    if (p === 'default' || p === 'all' || p === 'any') {
      if (family === undefined) throw new RouteError(`${p} needs a family`);
      return { family, bytes: new Uint8Array(family === 4 ? 4 : 16), length: 0 };
    }
    return parsePrefix(p);
  }

  /** Load prefix bytes into words (this.key); throws on host bits set. */
  private loadKey(p: Prefix, out: Uint32Array): void {
    const words = p.family === 4 ? 1 : 4;
    for (let w = 0; w < 4; w++) {
      if (w >= words) {
        out[w] = 0;
        continue;
      }
      const b = w * 4;
      const v = ((p.bytes[b]! << 24) | (p.bytes[b + 1]! << 16) | (p.bytes[b + 2]! << 8) | p.bytes[b + 3]!) >>> 0;
      const bits = Math.max(0, Math.min(32, p.length - w * 32));
      const m = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
      if ((v & ~m) !== 0) {
        throw new RouteError(`host bits set in ${formatAddress(p.bytes, 0, p.family)}/${p.length}`);
      }
      out[w] = v;
    }
  }

  private trieFor(tab: RouteTable, fam: Family): StrideTrie | Poptrie {
    if (fam === 4) {
      if (tab.v4 === null) tab.v4 = new StrideTrie(32, V4_STRIDES_SMALL);
      return tab.v4;
    }
    if (tab.v6 === null) tab.v6 = new Poptrie(128, V6_TOP_BITS, true);
    return tab.v6;
  }

  /**
   * Add a route (like `ip route append`: routes with the same prefix and metric are kept in
   * insertion order, the first one wins). Returns the route id.
   */
  add(spec: RouteSpec): number {
    return this.insert(spec, false);
  }

  /** Add, or replace the route with the same table, prefix and metric (`ip route replace`). */
  replace(spec: RouteSpec): number {
    return this.insert(spec, true);
  }

  private insert(spec: RouteSpec, replace: boolean): number {
    const p = this.resolvePrefix(spec.prefix, spec.family);
    const fam = p.family;
    const k = this.key;
    this.loadKey(p, k);
    const tab = this.table(spec.table ?? 'main');
    let type: number = RouteType.UNICAST;
    if (spec.type !== undefined) {
      const t = typeof spec.type === 'number' ? spec.type : routeTypeCode(spec.type);
      if (t === undefined || t === RouteType.NONE) throw new RouteError(`unknown route type ${String(spec.type)}`);
      type = t;
    }
    const metric = spec.metric ?? (fam === 4 ? 0 : 1024);
    if (!Number.isInteger(metric) || metric < 0 || metric > 0xffffffff) throw new RouteError(`invalid metric ${metric}`);
    let nhSpecs: NexthopSpec[] = spec.nexthops ?? [];
    if (nhSpecs.length === 0 && ((spec.dev ?? null) !== null || (spec.via ?? null) !== null)) {
      nhSpecs = [{ dev: spec.dev ?? null, via: spec.via ?? null, onlink: spec.onlink ?? false }];
    }
    const needsNexthop = type === RouteType.UNICAST;
    if (needsNexthop && nhSpecs.length === 0) throw new RouteError('unicast route needs dev, via or nexthop');
    if (
      (type === RouteType.BLACKHOLE || type === RouteType.UNREACHABLE || type === RouteType.PROHIBIT || type === RouteType.THROW) &&
      nhSpecs.length > 0 &&
      nhSpecs.some((n) => (n.via ?? null) !== null)
    ) {
      throw new RouteError(`${ROUTE_TYPE_NAMES[type]} route cannot have a gateway`);
    }
    const gid = nhSpecs.length > 0 ? this.groupFor(nhSpecs) : -1;

    // Replace: drop the route with the same metric first.
    if (replace) {
      const head = this.findHead(tab.id, fam, p.length, k);
      for (let r = head; r >= 0; r = this.rNext[r]!) {
        if (this.rMetric[r] === metric) {
          this.removeId(r);
          this.loadKey(p, k);
          break;
        }
      }
    }

    const id = this.allocId();
    this.rTable[id] = tab.id;
    this.rFam[id] = fam;
    this.rLen[id] = p.length;
    this.rKey.set(k, id * 4);
    this.rType[id] = type;
    this.rMetric[id] = metric;
    this.rGroup[id] = gid;
    this.rNext[id] = -1;
    this.rLive[id] = 1;
    this.rCount[2 * id] = 0;
    this.rCount[2 * id + 1] = 0;
    if (this.keepText && spec.text !== undefined) this.text.set(id, spec.text);

    const head = this.findHead(tab.id, fam, p.length, k);
    if (head < 0) {
      this.indexInsert(id);
      this.trieAdd(tab, fam, k, p.length, id);
    } else if (metric < this.rMetric[head]!) {
      this.rNext[id] = head;
      const s = this.slotOf(head);
      this.slots[s] = id;
      this.trieFor(tab, fam).insert(k, p.length, id);
    } else {
      let prev = head;
      while (this.rNext[prev]! >= 0 && this.rMetric[this.rNext[prev]!]! <= metric) prev = this.rNext[prev]!;
      this.rNext[id] = this.rNext[prev]!;
      this.rNext[prev] = id;
    }
    return id;
  }

  private trieAdd(tab: RouteTable, fam: Family, k: Uint32Array, len: number, id: number): void {
    const trie = this.trieFor(tab, fam);
    trie.insert(k, len, id);
    trie.prefixes++;
    (fam === 4 ? tab.lengths4 : tab.lengths6)[len]!++;
    if (fam === 4) {
      tab.count4++;
      if (tab.count4 > V4_LARGE_THRESHOLD && (trie as StrideTrie).strides[0] !== 24) this.rebuildV4(tab);
    } else {
      tab.count6++;
    }
  }

  /** One-time switch of a growing table's IPv4 trie to DIR-24-8. */
  private rebuildV4(tab: RouteTable): void {
    const trie = new StrideTrie(32, V4_STRIDES_LARGE);
    const k = new Uint32Array(4);
    for (let s = 0; s < this.slots.length; s++) {
      const id = this.slots[s]!;
      if (id < 0 || this.rTable[id] !== tab.id || this.rFam[id] !== 4) continue;
      k[0] = this.rKey[id * 4]!;
      trie.insert(k, this.rLen[id]!, id);
      trie.prefixes++;
    }
    tab.v4 = trie;
  }

  /**
   * Remove one route: by id, or the first (lowest-metric) route of a prefix matching the given
   * metric/type if set (`ip route del`). Returns false when there is no such route.
   */
  remove(what: number | RouteSpec): boolean {
    if (typeof what === 'number') {
      if (what < 0 || what >= this.top || !this.rLive[what]) return false;
      this.removeId(what);
      return true;
    }
    const p = this.resolvePrefix(what.prefix, what.family);
    this.loadKey(p, this.key);
    const tab = this.tables.get(this.tableId(what.table ?? 'main', false));
    if (!tab) return false;
    const type = what.type === undefined ? -1 : typeof what.type === 'number' ? what.type : routeTypeCode(what.type);
    for (let r = this.findHead(tab.id, p.family, p.length, this.key); r >= 0; r = this.rNext[r]!) {
      if (what.metric !== undefined && this.rMetric[r] !== what.metric) continue;
      if (type !== -1 && this.rType[r] !== type) continue;
      if (what.dev !== undefined || what.via !== undefined) {
        const g = this.rGroup[r]! >= 0 ? this.groups[this.rGroup[r]!]! : null;
        const nh = g?.nexthops[0];
        if (what.dev !== undefined && nh?.dev !== what.dev) continue;
        if (what.via !== undefined && what.via !== null) {
          const via = typeof what.via === 'string' ? parseAddress(what.via) : what.via;
          if (!nh?.via || formatAddress(nh.via.bytes, 0, nh.via.family) !== formatAddress(via.bytes, 0, via.family)) continue;
        }
      }
      this.removeId(r);
      return true;
    }
    return false;
  }

  private removeId(id: number): void {
    const tab = this.tables.get(this.rTable[id]!)!;
    const fam = this.rFam[id]! as Family;
    const len = this.rLen[id]!;
    const k = this.key;
    const b = id * 4;
    for (let w = 0; w < 4; w++) k[w] = this.rKey[b + w]!;
    const s = this.slotOf(id);
    const head = this.slots[s]!;
    const trie = this.trieFor(tab, fam);
    if (head === id) {
      const next = this.rNext[id]!;
      if (next >= 0) {
        this.slots[s] = next;
        trie.insert(k, len, next);
      } else {
        this.indexDelete(s);
        // The covering prefix: longest shorter prefix present in this table.
        let coverLen = 0;
        let cover = -1;
        const c = this.key2;
        const lengths = fam === 4 ? tab.lengths4 : tab.lengths6;
        lengths[len]!--;
        // IPv6 shortcut: the prefixes no longer than len-1 that cover this prefix are exactly those
        // that cover its sibling half (flip bit len-1), so the sibling's longest match is the cover
        // whenever it is shorter than len (almost always for host routes): one trie walk instead
        // of a hash probe per populated length (up to ~10 for a /128; /128 updates 91 -> see
        // the trie.ts note). A longer sibling match falls back to the search by length.
        let l0 = len - 1;
        if (fam === 6 && len > 0) {
          for (let w = 0; w < 4; w++) c[w] = k[w]!;
          c[(len - 1) >>> 5] = (c[(len - 1) >>> 5]! ^ (1 << (31 - ((len - 1) & 31)))) >>> 0;
          const m = (trie as Poptrie).matchKey(c);
          if (matchLength(m) < len) {
            cover = matchValue(m);
            coverLen = cover < 0 ? 0 : matchLength(m);
            l0 = -1;
          }
        }
        for (let l = l0; l >= 0 && cover < 0; l--) {
          if (lengths[l] === 0) continue;
          for (let w = 0; w < 4; w++) {
            const bits = Math.max(0, Math.min(32, l - w * 32));
            c[w] = bits === 0 ? 0 : (k[w]! & (0xffffffff << (32 - bits))) >>> 0;
          }
          const h = this.findHead(tab.id, fam, l, c);
          if (h >= 0) {
            cover = h;
            coverLen = l;
          }
        }
        trie.remove(k, len, coverLen, cover);
        trie.prefixes--;
        if (fam === 4) tab.count4--;
        else tab.count6--;
      }
    } else {
      let prev = head;
      while (this.rNext[prev] !== id) prev = this.rNext[prev]!;
      this.rNext[prev] = this.rNext[id]!;
    }
    this.rLive[id] = 0;
    this.releaseGroup(this.rGroup[id]!);
    this.rGroup[id] = -1;
    this.text.delete(id);
    this.freeIds.push(id);
  }

  /** Remove every route (tables and rules stay). */
  clear(): void {
    for (let id = 0; id < this.top; id++) if (this.rLive[id]) this.removeId(id);
  }

  // ================= lookup (hot path: no allocation) =================

  /**
   * Route the IP packet at buf[off] (family from the version nibble unless given; `end` bounds
   * the packet): policy rules in priority order, then the LPM of the rule's table, skipping
   * `throw` results. Returns the route id, or -1 (no route, or a reject rule: see lastType).
   * Sets lastType / lastRoute / lastTable / lastNexthop (the ECMP choice for this flow), and
   * counts one packet of the IP total length on the route.
   */
  lookup(buf: Uint8Array, off: number, family = 0, end = buf.length): number {
    const id = this.resolve(buf, off, family, end);
    if (id >= 0) {
      this.rCount[2 * id]!++;
      this.rCount[2 * id + 1]! += this.flow.length;
    }
    return id;
  }

  /** lookup() without counting use. */
  resolve(buf: Uint8Array, off: number, family = 0, end = buf.length): number {
    const f = this.flow;
    this.lastRoute = -1;
    this.lastNexthop = null;
    this.lastTable = 0;
    this.lastType = RouteType.NONE;
    if (!f.read(buf, off, family, end)) return -1;
    const rules = this.ruleList;
    const v4 = f.family === 4;
    const dstOff = off + (v4 ? 16 : 24);
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!;
      if (!r.matches(f)) continue;
      if (r.action !== 'lookup') {
        this.lastType =
          r.action === 'blackhole' ? RouteType.BLACKHOLE : r.action === 'unreachable' ? RouteType.UNREACHABLE : RouteType.PROHIBIT;
        return -1;
      }
      const tab = r.tableRef as RouteTable | null;
      if (tab === null) continue;
      const id = v4 ? tab.lookup4(buf, dstOff) : tab.lookup6(buf, dstOff);
      if (id < 0) continue;
      const type = this.rType[id]!;
      if (type === RouteType.THROW) continue;
      this.lastRoute = id;
      this.lastType = type;
      this.lastTable = tab.id;
      const gid = this.rGroup[id]!;
      if (gid >= 0) this.lastNexthop = this.pick(this.groups[gid]!);
      return id;
    }
    return -1;
  }

  /**
   * Route a burst of packets: the IP header of packet k starts at buf[offs[k]] and `ends[k]`
   * bounds it (k < n; any n). Fills route[k] (route id or -1), type[k] (RouteType, NONE when
   * nothing matched or the header is not there) and nexthop[k] (the ECMP choice for the flow, or
   * null), and counts use: per packet the same answers and counters as lookup(). Does not set
   * lastRoute/lastType/lastNexthop/lastTable. `buf` is typically one pool slab (PacketBuffer.buf
   * views share it): offs = slot byte offset + packet offset. Allocation-free.
   * When every rule is an unconditional table lookup (the default local/main/default rules), the
   * tables are searched one after the other for the whole burst with the batch LPM (packets whose
   * answer is no route or `throw` go on to the next rule's table); otherwise packet by packet.
   */
  lookupBatch(
    buf: Uint8Array,
    offs: Int32Array,
    ends: Int32Array,
    n: number,
    route: Int32Array,
    type: Uint8Array,
    nexthop: (Nexthop | null)[],
  ): void {
    if (!this.simpleRules) {
      for (let k = 0; k < n; k++) {
        route[k] = this.lookup(buf, offs[k]!, 0, ends[k]!);
        type[k] = this.lastType;
        nexthop[k] = this.lastNexthop;
      }
      return;
    }
    const rules = this.ruleList;
    const o4 = this.bOff4;
    const l4 = this.bLane4;
    const r4 = this.bOut4;
    const o6 = this.bOff6;
    const l6 = this.bLane6;
    const r6 = this.bOut6;
    for (let k0 = 0; k0 < n; k0 += BATCH_MAX) {
      const k1 = n - k0 < BATCH_MAX ? n : k0 + BATCH_MAX;
      let n4 = 0;
      let n6 = 0;
      for (let k = k0; k < k1; k++) {
        const off = offs[k]!;
        route[k] = -1;
        type[k] = RouteType.NONE;
        nexthop[k] = null;
        const len = ends[k]! - off;
        if (off < 0 || len <= 0) continue;
        const ver = buf[off]! >>> 4;
        if (ver === 4 && len >= 20) {
          o4[n4] = off + 16;
          l4[n4++] = k;
        } else if (ver === 6 && len >= 40) {
          o6[n6] = off + 24;
          l6[n6++] = k;
        }
      }
      // Rule by rule: each pass keeps the lanes still without an answer.
      for (let ri = 0; ri < rules.length && n4 + n6 > 0; ri++) {
        const tab = rules[ri]!.tableRef as RouteTable | null;
        if (tab === null) continue;
        if (n4 > 0 && tab.v4 !== null) {
          tab.lookupBatch4(buf, o4, n4, r4);
          let m = 0;
          for (let a = 0; a < n4; a++) {
            const id = r4[a]!;
            if (id >= 0 && this.rType[id] !== RouteType.THROW) route[l4[a]!] = id;
            else {
              o4[m] = o4[a]!;
              l4[m++] = l4[a]!;
            }
          }
          n4 = m;
        }
        if (n6 > 0 && tab.v6 !== null) {
          tab.lookupBatch6(buf, o6, n6, r6);
          let m = 0;
          for (let a = 0; a < n6; a++) {
            const id = r6[a]!;
            if (id >= 0 && this.rType[id] !== RouteType.THROW) route[l6[a]!] = id;
            else {
              o6[m] = o6[a]!;
              l6[m++] = l6[a]!;
            }
          }
          n6 = m;
        }
      }
      // The route store (type, nexthop group, counters: separate arrays, each a likely miss per
      // route) is read for every lane first, branch-free, so those misses overlap too.
      const rType = this.rType;
      const rGroup = this.rGroup;
      const rCount = this.rCount;
      const gg = this.bOut4;
      for (let k = k0; k < k1; k++) {
        const id = route[k]!;
        const j = id < 0 ? 0 : id;
        type[k] = rType[j]!;
        gg[k - k0] = rGroup[j]! + rCount[2 * j]!;
      }
      for (let k = k0; k < k1; k++) {
        const id = route[k]!;
        if (id < 0) {
          type[k] = RouteType.NONE;
          continue;
        }
        const off = offs[k]!;
        const v4 = buf[off]! >>> 4 === 4;
        rCount[2 * id]!++;
        rCount[2 * id + 1]! += v4 ? (buf[off + 2]! << 8) | buf[off + 3]! : 40 + ((buf[off + 4]! << 8) | buf[off + 5]!);
        const gid = rGroup[id]!;
        if (gid < 0) continue;
        const g = this.groups[gid]!;
        if (g.nexthops.length === 1) nexthop[k] = g.nexthops[0]!;
        else {
          this.flow.read(buf, off, v4 ? 4 : 6, ends[k]!);
          nexthop[k] = this.pick(g);
        }
      }
    }
  }

  private pick(g: Group): Nexthop {
    const nhs = g.nexthops;
    if (nhs.length === 1) return nhs[0]!;
    const x = this.flow.hash(this.seed) % g.total;
    const cum = g.cum;
    let i = 0;
    while (cum[i]! <= x) i++;
    return nhs[i]!;
  }

  /**
   * The ECMP choice of route `id` for the packet at buf[off] (flow hash: addresses, protocol,
   * ports; addresses only for fragments; IPv6 flow label when set). Same flow, same nexthop.
   */
  selectNexthop(id: number, buf: Uint8Array, off: number, family = 0, end = buf.length): Nexthop | null {
    const gid = this.rGroup[id]!;
    if (gid < 0 || !this.rLive[id]) return null;
    const g = this.groups[gid]!;
    if (g.nexthops.length === 1) return g.nexthops[0]!;
    if (!this.flow.read(buf, off, family, end)) return g.nexthops[0]!;
    return this.pick(g);
  }

  /**
   * Look up a destination address given as bytes (control plane: CLI, tests), through the rules,
   * as `ip route get fibmatch` does. Optional source/protocol/ports for the rules.
   */
  lookupAddress(
    dst: AddressBytes,
    opts: { src?: AddressBytes; proto?: number; sport?: number; dport?: number } = {},
  ): number {
    const b = this.scratch;
    b.fill(0);
    const proto = opts.proto ?? 0;
    if (dst.family === 4) {
      b[0] = 0x45;
      b[3] = 40;
      b[9] = proto;
      if (opts.src) b.set(opts.src.bytes, 12);
      b.set(dst.bytes, 16);
      b[20] = (opts.sport ?? 0) >> 8;
      b[21] = (opts.sport ?? 0) & 255;
      b[22] = (opts.dport ?? 0) >> 8;
      b[23] = (opts.dport ?? 0) & 255;
    } else {
      b[0] = 0x60;
      b[5] = 8;
      b[6] = proto;
      if (opts.src) b.set(opts.src.bytes, 8);
      b.set(dst.bytes, 24);
      b[40] = (opts.sport ?? 0) >> 8;
      b[41] = (opts.sport ?? 0) & 255;
      b[42] = (opts.dport ?? 0) >> 8;
      b[43] = (opts.dport ?? 0) & 255;
    }
    return this.resolve(b, 0, dst.family, dst.family === 4 ? 28 : 48);
  }

  /** Longest match in one table, no rules (address at buf[off]). */
  lookupTable(table: string | number, buf: Uint8Array, off: number, family: Family): number {
    const tab = this.tables.get(this.tableId(table, false));
    if (!tab) return -1;
    return family === 4 ? tab.lookup4(buf, off) : tab.lookup6(buf, off);
  }

  // ================= per-route accessors and counters =================

  isLive(id: number): boolean {
    return id >= 0 && id < this.top && this.rLive[id] === 1;
  }
  typeOf(id: number): RouteTypeCode {
    return this.rType[id]! as RouteTypeCode;
  }
  metricOf(id: number): number {
    return this.rMetric[id]!;
  }
  familyOf(id: number): Family {
    return this.rFam[id]! as Family;
  }
  prefixLengthOf(id: number): number {
    return this.rLen[id]!;
  }
  tableOf(id: number): number {
    return this.rTable[id]!;
  }
  nexthopsOf(id: number): readonly Nexthop[] {
    const g = this.rGroup[id]!;
    return g < 0 ? [] : this.groups[g]!.nexthops;
  }
  packetsOf(id: number): number {
    return this.rCount[2 * id]!;
  }
  bytesOf(id: number): number {
    return this.rCount[2 * id + 1]!;
  }
  /** Count use of a route (when the caller routed without lookup()). */
  countUse(id: number, bytes: number): void {
    this.rCount[2 * id]!++;
    this.rCount[2 * id + 1]! += bytes;
  }
  resetCounters(): void {
    this.rCount.fill(0);
  }
  textOf(id: number): string | undefined {
    return this.text.get(id);
  }

  prefixOf(id: number): Prefix {
    const fam = this.rFam[id]! as Family;
    const bytes = new Uint8Array(fam === 4 ? 4 : 16);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (this.rKey[id * 4 + (i >> 2)]! >>> (24 - 8 * (i & 3))) & 255;
    return { family: fam, bytes, length: this.rLen[id]! };
  }

  /** A route as an object (control plane). */
  info(id: number): RouteInfo {
    if (!this.isLive(id)) throw new RouteError(`no route ${id}`);
    const info: RouteInfo = {
      id,
      table: this.rTable[id]!,
      tableName: this.tableName(this.rTable[id]!),
      prefix: this.prefixOf(id),
      type: ROUTE_TYPE_NAMES[this.rType[id]!] as RouteInfo['type'],
      metric: this.rMetric[id]!,
      nexthops: this.nexthopsOf(id),
      packets: this.rCount[2 * id]!,
      bytes: this.rCount[2 * id + 1]!,
    };
    const t = this.text.get(id);
    if (t !== undefined) info.text = t;
    return info;
  }

  /**
   * Route ids, sorted like `ip route show` prints them (address, then longer prefix first, then
   * metric; IPv4 before IPv6). Default: table main, both families.
   */
  list(filter: RouteFilter = {}): number[] {
    const want = filter.table === 'all' ? -1 : this.tableId(filter.table ?? 'main', false);
    const ids: number[] = [];
    for (let id = 0; id < this.top; id++) {
      if (!this.rLive[id]) continue;
      if (want >= 0 && this.rTable[id] !== want) continue;
      if (filter.family !== undefined && this.rFam[id] !== filter.family) continue;
      ids.push(id);
    }
    const k = this.rKey;
    ids.sort((a, b) => {
      if (this.rTable[a] !== this.rTable[b]) return this.rTable[b]! - this.rTable[a]!;
      if (this.rFam[a] !== this.rFam[b]) return this.rFam[a]! - this.rFam[b]!;
      for (let w = 0; w < 4; w++) if (k[a * 4 + w] !== k[b * 4 + w]) return k[a * 4 + w]! - k[b * 4 + w]!;
      if (this.rLen[a] !== this.rLen[b]) return this.rLen[b]! - this.rLen[a]!;
      if (this.rMetric[a] !== this.rMetric[b]) return this.rMetric[a]! - this.rMetric[b]!;
      return a - b;
    });
    return ids;
  }

  /** Bytes held by the tries, the route store and the prefix index (not the JS heap objects). */
  byteSize(): { tries: number; store: number; index: number } {
    let tries = 0;
    for (const t of this.tables.values()) tries += t.byteSize();
    const store =
      this.rTable.byteLength +
      this.rFam.byteLength +
      this.rLen.byteLength +
      this.rKey.byteLength +
      this.rType.byteLength +
      this.rMetric.byteLength +
      this.rGroup.byteLength +
      this.rNext.byteLength +
      this.rLive.byteLength +
      this.rCount.byteLength;
    return { tries, store, index: this.slots.byteLength };
  }

  /** All tables that exist. */
  tableList(): RouteTable[] {
    return [...this.tables.values()];
  }
}
