/**
 * The route table of the endpoint, as one object: routes as Linux has them (prefix, type,
 * metric, nexthops with ECMP weights) in numbered/named tables, policy rules in front, and
 * allocation-free lookups per packet or per burst. A facade over the parts, one job each:
 *   store.ts     routes (struct of arrays), metric lists, exact-prefix index
 *   nexthops.ts  shared nexthop groups, ECMP choice, device indices
 *   table.ts     one table's tries (lpm/) and its single and batch longest-prefix lookups
 *   policy.ts    tables by name and number, the rule list (rules.ts: one rule)
 *   lookup.ts    rules + tables + ECMP for a packet or a burst, counters
 *   flow.ts      what routing reads from an IP header
 * Text in and out (iproute2) is in text/; this file validates route specs and keeps the parts
 * in step on add and remove.
 */
import { formatAddress, parseAddress, parsePrefix } from '../wire/address-text.ts';
import type { AddressBytes, Family, Prefix } from '../wire/address-text.ts';
import { IPV4_DST, IPV4_HEADER_LEN, IPV4_SRC, Ipv4Packet } from '../wire/ipv4.ts';
import { IPV6_DST, IPV6_HEADER_LEN, IPV6_SRC, Ipv6Packet } from '../wire/ipv6.ts';
import { UDP_HEADER_LEN, UdpPacket } from '../wire/udp.ts';
import { RouteLookup } from './lookup.ts';
import { NexthopGroups } from './nexthops.ts';
import { Policy } from './policy.ts';
import type { Rule, RuleSpec } from './rules.ts';
import { compareRouteIds, RouteListCursor } from './list-cursor.ts';
import { LINK_HEAD, LINK_NEW, loadPrefixKey, RouteStore, UNLINK_GONE } from './store.ts';
import type { RouteTable } from './table.ts';
import { ROUTE_TYPE_NAMES, RouteError, RouteType, routeTypeCode } from './types.ts';
import type { Nexthop, NexthopSpec, RouteAttrs, RouteInfo, RouteSpec, RouteTypeCode } from './types.ts';

export { BATCH_MAX, RouteTable } from './table.ts';
export { TABLE_DEFAULT, TABLE_LOCAL, TABLE_MAIN } from './policy.ts';
export { RouteError } from './types.ts';

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

/** The scratch packets of lookupAddress: a fixed header and a UDP-sized header for the ports. */
const ADDRESS_PACKET_LEN4 = IPV4_HEADER_LEN + UDP_HEADER_LEN;
const ADDRESS_PACKET_LEN6 = IPV6_HEADER_LEN + UDP_HEADER_LEN;

export class Router {
  private readonly store = new RouteStore();
  private readonly nh = new NexthopGroups();
  private readonly policy = new Policy();
  private readonly engine: RouteLookup;
  private readonly text = new Map<number, string>();
  /** Display-only attributes (proto, scope, src, pref, metrics) of the routes that have any. */
  private readonly attrs = new Map<number, RouteAttrs>();
  private readonly keepText: boolean;
  /** Scratch prefix words of add/remove. */
  private readonly key = new Uint32Array(4);
  /** Scratch packet of lookupAddress, and views over it. */
  private readonly scratch = new Uint8Array(64);
  private readonly v4 = new Ipv4Packet();
  private readonly v6 = new Ipv6Packet();
  private readonly ports = new UdpPacket();

  constructor(opts: RouterOptions = {}) {
    this.keepText = opts.keepText ?? false;
    this.engine = new RouteLookup(this.store, this.nh, this.policy, opts.hashSeed ?? 0x1f2e3d4c);
  }

  // ================= tables, devices, rules =================

  /** Table id for a name or number; unknown names get a new id when `create`. */
  tableId(t: string | number, create = true): number {
    return this.policy.tableId(t, create);
  }

  /** Name a table (like a line of /etc/iproute2/rt_tables). */
  defineTable(name: string, id: number): number {
    return this.policy.defineTable(name, id);
  }

  tableName(id: number): string {
    return this.policy.tableName(id);
  }

  /** The table object (created on first use). */
  table(t: string | number = 'main'): RouteTable {
    return this.policy.table(t);
  }

  /** All tables that exist. */
  tableList(): RouteTable[] {
    return [...this.policy.tables.values()];
  }

  /** Small integer for a device/peer name (stable for the Router's life). */
  devIndex(name: string): number {
    return this.nh.devIndex(name);
  }

  devName(index: number): string | undefined {
    return this.nh.devName(index);
  }

  /** Add a policy rule (object or `ip rule` text). Returns its priority. */
  addRule(spec: RuleSpec | string): number {
    return this.policy.addRule(spec);
  }

  /** Remove the first rule with this priority. */
  removeRule(priority: number): boolean {
    return this.policy.removeRule(priority);
  }

  /** Replace every rule but Linux's three defaults with `specs`, at once (see Policy.replaceRules). */
  replaceRules(specs: readonly (RuleSpec | string)[]): void {
    this.policy.replaceRules(specs);
  }

  rules(): readonly Rule[] {
    return this.policy.rules;
  }

  /** `ip rule show` text (Rule.format per line). */
  showRules(): string {
    return this.policy.rules.map((r) => r.format((id) => this.tableName(id))).join('\n') + '\n';
  }

  // ================= add / remove =================

  /** Number of routes stored. */
  get size(): number {
    return this.store.size;
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

  private insert(spec: RouteSpec, replace: boolean): number {
    const p = this.resolvePrefix(spec.prefix, spec.family);
    const fam = p.family;
    const k = this.key;
    loadPrefixKey(p, k);
    const tab = this.policy.table(spec.table ?? 'main');
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
    const gid = nhSpecs.length > 0 ? this.nh.acquire(nhSpecs) : -1;
    const s = this.store;

    // Replace: drop the route with the same metric first.
    if (replace) {
      const head = s.findHead(tab.id, fam, p.length, k);
      for (let r = head; r >= 0; r = s.next[r]!) {
        if (s.metric[r] === metric) {
          this.removeId(r);
          loadPrefixKey(p, k);
          break;
        }
      }
    }

    const id = s.alloc();
    s.table[id] = tab.id;
    s.fam[id] = fam;
    s.len[id] = p.length;
    s.key.set(k, id * 4);
    s.type[id] = type;
    s.metric[id] = metric;
    s.group[id] = gid;
    s.live[id] = 1;
    s.count[2 * id] = 0;
    s.count[2 * id + 1] = 0;
    if (this.keepText && spec.text !== undefined) this.text.set(id, spec.text);
    if (spec.attrs !== undefined && Object.keys(spec.attrs).length > 0) this.attrs.set(id, spec.attrs);

    const linked = s.link(id);
    if (linked === LINK_NEW) tab.addPrefix(s, fam, k, p.length, id);
    else if (linked === LINK_HEAD) tab.setHead(fam, k, p.length, id);
    return id;
  }

  /**
   * Remove one route: by id, or the first (lowest-metric) route of a prefix matching the given
   * metric/type if set (`ip route del`). Returns false when there is no such route.
   */
  remove(what: number | RouteSpec): boolean {
    const s = this.store;
    if (typeof what === 'number') {
      if (!s.isLive(what)) return false;
      this.removeId(what);
      return true;
    }
    const p = this.resolvePrefix(what.prefix, what.family);
    loadPrefixKey(p, this.key);
    const tab = this.policy.find(what.table ?? 'main');
    if (!tab) return false;
    const type = what.type === undefined ? -1 : typeof what.type === 'number' ? what.type : routeTypeCode(what.type);
    for (let r = s.findHead(tab.id, p.family, p.length, this.key); r >= 0; r = s.next[r]!) {
      if (what.metric !== undefined && s.metric[r] !== what.metric) continue;
      if (type !== -1 && s.type[r] !== type) continue;
      if (what.dev !== undefined || what.via !== undefined) {
        const nh = this.nh.nexthops(s.group[r]!)[0];
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
    const s = this.store;
    const tab = this.policy.tables.get(s.table[id]!)!;
    const fam = s.fam[id]!;
    const len = s.len[id]!;
    const k = this.key;
    const b = id * 4;
    for (let w = 0; w < 4; w++) k[w] = s.key[b + w]!;
    const head = s.unlink(id);
    if (head >= 0) tab.setHead(fam, k, len, head);
    else if (head === UNLINK_GONE) tab.removePrefix(s, fam, k, len);
    this.nh.release(s.group[id]!);
    this.text.delete(id);
    this.attrs.delete(id);
    s.free(id);
  }

  /** Remove every route (tables and rules stay). */
  clear(): void {
    const s = this.store;
    for (let id = 0; id < s.top; id++) if (s.live[id]) this.removeId(id);
  }

  // ================= lookup (lookup.ts; hot path: no allocation) =================

  /** Type of the last lookup's result (RouteType; NONE when nothing matched). */
  get lastType(): number {
    return this.engine.lastType;
  }
  /** Route id of the last lookup (-1 when none). */
  get lastRoute(): number {
    return this.engine.lastRoute;
  }
  /** Nexthop chosen by the last lookup (null for routes without nexthops or no route). */
  get lastNexthop(): Nexthop | null {
    return this.engine.lastNexthop;
  }
  /** Table id the last lookup matched in. */
  get lastTable(): number {
    return this.engine.lastTable;
  }

  /**
   * Route the IP packet at buf[off] (family from the version nibble unless given; `end` bounds
   * the packet): policy rules in priority order, then the LPM of the rule's table, skipping
   * `throw` results. Returns the route id, or -1 (no route, or a reject rule: see lastType).
   * Sets lastType / lastRoute / lastTable / lastNexthop (the ECMP choice for this flow), and
   * counts one packet of the IP total length on the route.
   */
  lookup(buf: Uint8Array, off: number, family = 0, end = buf.length): number {
    return this.engine.lookup(buf, off, family, end);
  }

  /** lookup() without counting use. */
  resolve(buf: Uint8Array, off: number, family = 0, end = buf.length): number {
    return this.engine.resolve(buf, off, family, end);
  }

  /** A burst of packets in one call: RouteLookup.lookupBatch. */
  lookupBatch(
    buf: Uint8Array,
    offs: Int32Array,
    ends: Int32Array,
    n: number,
    route: Int32Array,
    type: Uint8Array,
    nexthop: (Nexthop | null)[],
  ): void {
    this.engine.lookupBatch(buf, offs, ends, n, route, type, nexthop);
  }

  /**
   * The ECMP choice of route `id` for the packet at buf[off] (flow hash: addresses, protocol,
   * ports; addresses only for fragments; IPv6 flow label when set). Same flow, same nexthop.
   */
  selectNexthop(id: number, buf: Uint8Array, off: number, family = 0, end = buf.length): Nexthop | null {
    return this.engine.selectNexthop(id, buf, off, family, end);
  }

  /**
   * Look up a destination address given as bytes (control plane: CLI, tests), through the rules,
   * as `ip route get fibmatch` does. Optional source/protocol/ports for the rules: they go into a
   * scratch packet (written through the wire views) that lookup() reads like any other.
   */
  lookupAddress(
    dst: AddressBytes,
    opts: { src?: AddressBytes; proto?: number; sport?: number; dport?: number } = {},
  ): number {
    const b = this.scratch;
    b.fill(0);
    const proto = opts.proto ?? 0;
    let len: number;
    if (dst.family === 4) {
      const ip = this.v4.wrap(b, 0, ADDRESS_PACKET_LEN4);
      ip.version = 4;
      ip.ihl = IPV4_HEADER_LEN >>> 2;
      ip.totalLength = 40; // (not read: resolve() does not count)
      ip.protocol = proto;
      if (opts.src) b.set(opts.src.bytes, IPV4_SRC);
      b.set(dst.bytes, IPV4_DST);
      len = ADDRESS_PACKET_LEN4;
      this.ports.wrap(b, IPV4_HEADER_LEN, UDP_HEADER_LEN);
    } else {
      const ip = this.v6.wrap(b, 0, ADDRESS_PACKET_LEN6);
      ip.version = 6;
      ip.payloadLength = UDP_HEADER_LEN;
      ip.nextHeader = proto;
      if (opts.src) b.set(opts.src.bytes, IPV6_SRC);
      b.set(dst.bytes, IPV6_DST);
      len = ADDRESS_PACKET_LEN6;
      this.ports.wrap(b, IPV6_HEADER_LEN, UDP_HEADER_LEN);
    }
    this.ports.srcPort = (opts.sport ?? 0) & 0xffff;
    this.ports.dstPort = (opts.dport ?? 0) & 0xffff;
    return this.resolve(b, 0, dst.family, len);
  }

  /** Longest match in one table, no rules (address at buf[off]). */
  lookupTable(table: string | number, buf: Uint8Array, off: number, family: Family): number {
    const tab = this.policy.find(table);
    if (!tab) return -1;
    return family === 4 ? tab.lookup4(buf, off) : tab.lookup6(buf, off);
  }

  // ================= per-route accessors and counters =================

  isLive(id: number): boolean {
    return this.store.isLive(id);
  }
  typeOf(id: number): RouteTypeCode {
    return this.store.type[id]! as RouteTypeCode;
  }
  metricOf(id: number): number {
    return this.store.metric[id]!;
  }
  familyOf(id: number): Family {
    return this.store.fam[id]! as Family;
  }
  prefixLengthOf(id: number): number {
    return this.store.len[id]!;
  }
  tableOf(id: number): number {
    return this.store.table[id]!;
  }
  nexthopsOf(id: number): readonly Nexthop[] {
    return this.nh.nexthops(this.store.group[id]!);
  }
  packetsOf(id: number): number {
    return this.store.count[2 * id]!;
  }
  bytesOf(id: number): number {
    return this.store.count[2 * id + 1]!;
  }
  /** Count use of a route (when the caller routed without lookup()): `packets` packets of `bytes` bytes in all. */
  countUse(id: number, bytes: number, packets = 1): void {
    this.store.count[2 * id]! += packets;
    this.store.count[2 * id + 1]! += bytes;
  }
  resetCounters(): void {
    this.store.count.fill(0);
  }
  textOf(id: number): string | undefined {
    return this.text.get(id);
  }
  /** Display-only attributes of a route (proto, scope, src, pref, metrics), if it has any. */
  attrsOf(id: number): RouteAttrs | undefined {
    return this.attrs.get(id);
  }

  prefixOf(id: number): Prefix {
    return this.store.prefixOf(id);
  }

  /** A route as an object (control plane). */
  info(id: number): RouteInfo {
    if (!this.isLive(id)) throw new RouteError(`no route ${id}`);
    const s = this.store;
    const info: RouteInfo = {
      id,
      table: s.table[id]!,
      tableName: this.tableName(s.table[id]!),
      prefix: this.prefixOf(id),
      type: ROUTE_TYPE_NAMES[s.type[id]!] as RouteInfo['type'],
      metric: s.metric[id]!,
      nexthops: this.nexthopsOf(id),
      packets: s.count[2 * id]!,
      bytes: s.count[2 * id + 1]!,
    };
    const t = this.text.get(id);
    if (t !== undefined) info.text = t;
    const a = this.attrs.get(id);
    if (a !== undefined) info.attrs = a;
    return info;
  }

  /**
   * Route ids, sorted like `ip route show` prints them (address, then longer prefix first, then
   * metric; IPv4 before IPv6). Default: table main, both families.
   */
  list(filter: RouteFilter = {}): number[] {
    const s = this.store;
    const want = filter.table === 'all' ? -1 : this.tableId(filter.table ?? 'main', false);
    const ids: number[] = [];
    for (let id = 0; id < s.top; id++) {
      if (!s.live[id]) continue;
      if (want >= 0 && s.table[id] !== want) continue;
      if (filter.family !== undefined && s.fam[id] !== filter.family) continue;
      ids.push(id);
    }
    ids.sort((a, b) => compareRouteIds(s, a, b));
    return ids;
  }

  /**
   * The same listing as list(), a page at a time in bounded steps (list-cursor.ts): for tables
   * too big to list in one go on the data plane's thread.
   */
  cursor(filter: RouteFilter = {}): RouteListCursor {
    const want = filter.table === 'all' ? -1 : this.tableId(filter.table ?? 'main', false);
    return new RouteListCursor(this.store, want, filter.family ?? 0);
  }

  /** Bytes held by the tries, the route store and the prefix index (not the JS heap objects). */
  byteSize(): { tries: number; store: number; index: number } {
    let tries = 0;
    for (const t of this.policy.tables.values()) tries += t.byteSize();
    return { tries, ...this.store.byteSize() };
  }
}
