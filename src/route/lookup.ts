/**
 * Route lookups, one packet or a burst, allocation-free: the policy rules in priority order,
 * then the longest-prefix match of the rule's table on the destination address, skipping
 * `throw` results; the result's type, and for routes with several nexthops the ECMP choice for
 * the packet's flow; per-route use counters.
 *
 * The tables look up an address at a byte offset (table.ts); what the rules and the ECMP hash
 * need from the IP header, and where the destination address is, comes from the FlowKey
 * (flow.ts). The batch path reads only the version, the destination address and the length
 * fields itself, through the named copies below.
 */
import { FlowKey } from './flow.ts';
import type { NexthopGroup, NexthopGroups } from './nexthops.ts';
import type { Policy } from './policy.ts';
import type { Rule } from './rules.ts';
import type { RouteStore } from './store.ts';
import { BATCH_MAX, type RouteTable } from './table.ts';
import { RouteType } from './types.ts';
import type { Nexthop } from './types.ts';

// Header fields of the batch path: module-local copies of wire/ipv4.ts and wire/ipv6.ts
// constants (hot path, see flow.ts); test/route/header-fields.test.ts checks them.
const V4_HEADER_LEN = 20; // IPV4_HEADER_LEN
const V4_TOTAL_LENGTH = 2; // F_TOTAL_LENGTH
const V4_DST = 16; // F_DST
const V6_HEADER_LEN = 40; // IPV6_HEADER_LEN
const V6_PAYLOAD_LENGTH = 4; // IPV6_PAYLOAD_LENGTH
const V6_DST = 24; // IPV6_DST
// Route types compared per packet, read once from types.ts.
const NONE = RouteType.NONE;
const THROW = RouteType.THROW;

/** The copies above, by their wire/ names (for the test that checks them). */
export const LOOKUP_HEADER_FIELDS = {
  IPV4_HEADER_LEN: V4_HEADER_LEN,
  F_TOTAL_LENGTH: V4_TOTAL_LENGTH,
  F_DST: V4_DST,
  IPV6_HEADER_LEN: V6_HEADER_LEN,
  IPV6_PAYLOAD_LENGTH: V6_PAYLOAD_LENGTH,
  IPV6_DST: V6_DST,
} as const;

export class RouteLookup {
  /** The flow of the last packet read (rules and ECMP read it). */
  readonly flow = new FlowKey();
  /** Type of the last lookup's result (RouteType; NONE when nothing matched). */
  lastType: number = NONE;
  /** Route id of the last lookup (-1 when none). */
  lastRoute = -1;
  /** Nexthop chosen by the last lookup (null for routes without nexthops or no route). */
  lastNexthop: Nexthop | null = null;
  /** Table id the last lookup matched in. */
  lastTable = 0;

  // ---- lookupBatch scratch (BATCH_MAX lanes per family) ----
  private readonly bOff4 = new Int32Array(BATCH_MAX);
  private readonly bLane4 = new Int32Array(BATCH_MAX);
  private readonly bOut4 = new Int32Array(BATCH_MAX);
  private readonly bOff6 = new Int32Array(BATCH_MAX);
  private readonly bLane6 = new Int32Array(BATCH_MAX);
  private readonly bOut6 = new Int32Array(BATCH_MAX);

  // ---- the parts' arrays referenced directly (one dependent load less per use: IPv6 single
  // lookups measured 1-3% slower through this.store.type etc.); refreshed when a part replaces them ----
  private rType: Uint8Array;
  private rGroup: Int32Array;
  private rCount: Float64Array;
  private rules: readonly Rule[];
  private readonly groups: (NexthopGroup | null)[];

  constructor(
    private readonly store: RouteStore,
    private readonly nexthops: NexthopGroups,
    private readonly policy: Policy,
    /** ECMP hash seed. */
    private readonly seed: number,
  ) {
    this.rType = store.type;
    this.rGroup = store.group;
    this.rCount = store.count;
    this.rules = policy.rules;
    this.groups = nexthops.groups;
    store.onGrow = () => {
      this.rType = store.type;
      this.rGroup = store.group;
      this.rCount = store.count;
    };
    policy.onChange = () => {
      this.rules = policy.rules;
    };
  }

  /** resolve() and count one packet of the IP total length on the route. */
  lookup(buf: Uint8Array, off: number, family = 0, end = buf.length): number {
    const id = this.resolve(buf, off, family, end);
    if (id >= 0) {
      const count = this.rCount;
      count[2 * id]!++;
      count[2 * id + 1]! += this.flow.length;
    }
    return id;
  }

  /**
   * Route the IP packet at buf[off] (family from the version nibble unless given; `end` bounds
   * the packet). Returns the route id, or -1 (no route, or a reject rule: see lastType). Sets
   * lastType / lastRoute / lastTable / lastNexthop. Does not count.
   */
  resolve(buf: Uint8Array, off: number, family = 0, end = buf.length): number {
    this.lastRoute = -1;
    this.lastNexthop = null;
    this.lastTable = 0;
    this.lastType = NONE;
    if (!this.flow.read(buf, off, family, end)) return -1;
    return this.route(buf, this.flow.dstOffset);
  }

  /**
   * The rules and tables for the flow in `this.flow` (already read), the destination address at
   * buf[dstOff] (of the flow's family). Sets the last* results.
   */
  private route(buf: Uint8Array, dstOff: number): number {
    const f = this.flow;
    const rules = this.rules;
    const v4 = f.family === 4;
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
      if (type === THROW) continue;
      this.lastRoute = id;
      this.lastType = type;
      this.lastTable = tab.id;
      const gid = this.rGroup[id]!;
      if (gid >= 0) this.lastNexthop = this.pick(this.groups[gid]!);
      return id;
    }
    return -1;
  }

  /** The ECMP choice of group g for the flow in `this.flow`. */
  private pick(g: NexthopGroup): Nexthop {
    const nhs = g.nexthops;
    if (nhs.length === 1) return nhs[0]!;
    return this.nexthops.choose(g, this.flow.hash(this.seed));
  }

  /**
   * Route a burst of packets: the IP header of packet k starts at buf[offs[k]] and `ends[k]`
   * bounds it (k < n; any n). Fills route[k] (route id or -1), type[k] (RouteType, NONE when
   * nothing matched or the header is not there) and nexthop[k] (the ECMP choice for the flow, or
   * null), and counts use: per packet the same answers and counters as lookup(). Does not set
   * lastRoute/lastType/lastNexthop/lastTable. `buf` is typically one pool slab (PacketBuffer.buf
   * views share it): offs = slot byte offset + packet offset. Allocation-free.
   * When every rule is an unconditional table lookup (the default local/main/default rules), the
   * tables are searched one after the other for the whole burst with the batch LPM over the
   * destination address offsets of each family (packets whose answer is no route or `throw` go
   * on to the next rule's table); otherwise packet by packet.
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
    if (!this.policy.simple) {
      for (let k = 0; k < n; k++) {
        route[k] = this.lookup(buf, offs[k]!, 0, ends[k]!);
        type[k] = this.lastType;
        nexthop[k] = this.lastNexthop;
      }
      return;
    }
    const rules = this.rules;
    const o4 = this.bOff4;
    const l4 = this.bLane4;
    const r4 = this.bOut4;
    const o6 = this.bOff6;
    const l6 = this.bLane6;
    const r6 = this.bOut6;
    for (let k0 = 0; k0 < n; k0 += BATCH_MAX) {
      const k1 = n - k0 < BATCH_MAX ? n : k0 + BATCH_MAX;
      // Lanes per family: the destination address offset of each packet with a whole fixed header.
      let n4 = 0;
      let n6 = 0;
      for (let k = k0; k < k1; k++) {
        const off = offs[k]!;
        route[k] = -1;
        type[k] = NONE;
        nexthop[k] = null;
        const len = ends[k]! - off;
        if (off < 0 || len <= 0) continue;
        const ver = buf[off]! >>> 4;
        if (ver === 4 && len >= V4_HEADER_LEN) {
          o4[n4] = off + V4_DST;
          l4[n4++] = k;
        } else if (ver === 6 && len >= V6_HEADER_LEN) {
          o6[n6] = off + V6_DST;
          l6[n6++] = k;
        }
      }
      // Rule by rule: each pass keeps the lanes still without an answer.
      const rType = this.rType;
      for (let ri = 0; ri < rules.length && n4 + n6 > 0; ri++) {
        const tab = rules[ri]!.tableRef as RouteTable | null;
        if (tab === null) continue;
        if (n4 > 0 && tab.v4 !== null) {
          tab.lookupBatch4(buf, o4, n4, r4);
          let m = 0;
          for (let a = 0; a < n4; a++) {
            const id = r4[a]!;
            if (id >= 0 && rType[id] !== THROW) route[l4[a]!] = id;
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
            if (id >= 0 && rType[id] !== THROW) route[l6[a]!] = id;
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
      const rGroup = this.rGroup;
      const rCount = this.rCount;
      const groups = this.groups;
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
          type[k] = NONE;
          continue;
        }
        const off = offs[k]!;
        const v4 = buf[off]! >>> 4 === 4;
        rCount[2 * id]!++;
        rCount[2 * id + 1]! += v4
          ? (buf[off + V4_TOTAL_LENGTH]! << 8) | buf[off + V4_TOTAL_LENGTH + 1]!
          : V6_HEADER_LEN + ((buf[off + V6_PAYLOAD_LENGTH]! << 8) | buf[off + V6_PAYLOAD_LENGTH + 1]!);
        const gid = rGroup[id]!;
        if (gid < 0) continue;
        const g = groups[gid]!;
        if (g.nexthops.length === 1) nexthop[k] = g.nexthops[0]!;
        else {
          this.flow.read(buf, off, v4 ? 4 : 6, ends[k]!);
          nexthop[k] = this.pick(g);
        }
      }
    }
  }

  /**
   * The ECMP choice of route `id` for the packet at buf[off] (flow hash: addresses, protocol,
   * ports; addresses only for fragments; IPv6 flow label when set). Same flow, same nexthop.
   */
  selectNexthop(id: number, buf: Uint8Array, off: number, family = 0, end = buf.length): Nexthop | null {
    const gid = this.rGroup[id]!;
    if (gid < 0 || !this.store.live[id]) return null;
    const g = this.groups[gid]!;
    if (g.nexthops.length === 1) return g.nexthops[0]!;
    if (!this.flow.read(buf, off, family, end)) return g.nexthops[0]!;
    return this.pick(g);
  }
}
