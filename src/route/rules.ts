/**
 * Policy rules like `ip rule`: ordered by priority, each selects packets by source/destination
 * prefix, IP protocol and port ranges, and either looks up a table or rejects
 * (blackhole/unreachable/prohibit). Text in and out in `ip rule` syntax.
 */
import { formatPrefix, parsePrefix, AddressTextError } from '../wire/address-text.ts';
import {
  IP_PROTO_AH,
  IP_PROTO_DCCP,
  IP_PROTO_EGP,
  IP_PROTO_ESP,
  IP_PROTO_GRE,
  IP_PROTO_HOP_BY_HOP,
  IP_PROTO_ICMP,
  IP_PROTO_ICMPV6,
  IP_PROTO_IGMP,
  IP_PROTO_IPIP,
  IP_PROTO_IPV6,
  IP_PROTO_OSPF,
  IP_PROTO_SCTP,
  IP_PROTO_TCP,
  IP_PROTO_UDP,
  IP_PROTO_UDPLITE,
} from '../wire/ip.ts';
import type { Family, Prefix } from '../wire/address-text.ts';
import type { FlowKey } from './flow.ts';

export type RuleAction = 'lookup' | 'blackhole' | 'unreachable' | 'prohibit';

export interface RuleSpec {
  /** Lower runs first; default: one below the lowest existing priority above 0 (like ip rule). */
  priority?: number;
  /** Restrict to one family; implied by from/to prefixes. */
  family?: Family;
  not?: boolean;
  from?: string | Prefix | null;
  to?: string | Prefix | null;
  /** Protocol number or name (tcp, udp, icmp, ipv6-icmp, sctp, ...). */
  ipproto?: number | string;
  sport?: number | readonly [number, number];
  dport?: number | readonly [number, number];
  action?: RuleAction;
  /** Table for action lookup (name or number); default main. */
  table?: string | number;
}

/** Protocol names as `ip rule` and /etc/protocols spell them. */
const PROTOCOLS: Record<string, number> = {
  ip: IP_PROTO_HOP_BY_HOP,
  hopopt: IP_PROTO_HOP_BY_HOP,
  icmp: IP_PROTO_ICMP,
  igmp: IP_PROTO_IGMP,
  ipip: IP_PROTO_IPIP,
  tcp: IP_PROTO_TCP,
  egp: IP_PROTO_EGP,
  udp: IP_PROTO_UDP,
  ipv6: IP_PROTO_IPV6,
  gre: IP_PROTO_GRE,
  esp: IP_PROTO_ESP,
  ah: IP_PROTO_AH,
  icmpv6: IP_PROTO_ICMPV6,
  'ipv6-icmp': IP_PROTO_ICMPV6,
  icmp6: IP_PROTO_ICMPV6,
  ospf: IP_PROTO_OSPF,
  sctp: IP_PROTO_SCTP,
  udplite: IP_PROTO_UDPLITE,
  dccp: IP_PROTO_DCCP,
};
const PROTOCOL_NAMES = new Map<number, string>([
  [IP_PROTO_ICMP, 'icmp'],
  [IP_PROTO_TCP, 'tcp'],
  [IP_PROTO_UDP, 'udp'],
  [IP_PROTO_ICMPV6, 'ipv6-icmp'],
  [IP_PROTO_SCTP, 'sctp'],
  [IP_PROTO_DCCP, 'dccp'],
  [IP_PROTO_UDPLITE, 'udplite'],
  [IP_PROTO_GRE, 'gre'],
  [IP_PROTO_ESP, 'esp'],
  [IP_PROTO_AH, 'ah'],
]);

export function parseProtocol(text: string): number {
  const t = text.toLowerCase();
  if (/^\d{1,3}$/.test(t) && Number(t) <= 255) return Number(t);
  const n = PROTOCOLS[t];
  if (n === undefined) throw new RuleTextError(`unknown ipproto ${text}`);
  return n;
}

export class RuleTextError extends Error {
  override name = 'RuleTextError';
}

/** A compiled rule (what the lookup loop reads). */
export class Rule {
  readonly priority: number;
  /** 0 = both families. */
  readonly family: 0 | Family;
  readonly not: boolean;
  readonly from: Prefix | null;
  readonly to: Prefix | null;
  readonly fromKey = new Uint32Array(4);
  readonly fromMask = new Uint32Array(4);
  readonly toKey = new Uint32Array(4);
  readonly toMask = new Uint32Array(4);
  /** -1 = any. */
  readonly ipproto: number;
  readonly sportLo: number;
  readonly sportHi: number;
  readonly dportLo: number;
  readonly dportHi: number;
  readonly action: RuleAction;
  /** Table id (for lookup). */
  readonly table: number;
  /** Set by the Router: the table object for `table` (kept opaque here). */
  tableRef: unknown = null;

  constructor(
    priority: number,
    family: 0 | Family,
    not: boolean,
    from: Prefix | null,
    to: Prefix | null,
    ipproto: number,
    sport: readonly [number, number] | null,
    dport: readonly [number, number] | null,
    action: RuleAction,
    table: number,
  ) {
    this.priority = priority;
    this.family = family;
    this.not = not;
    this.from = from;
    this.to = to;
    if (from) prefixWords(from, this.fromKey, this.fromMask);
    if (to) prefixWords(to, this.toKey, this.toMask);
    this.ipproto = ipproto;
    this.sportLo = sport ? sport[0] : -1;
    this.sportHi = sport ? sport[1] : -1;
    this.dportLo = dport ? dport[0] : -1;
    this.dportHi = dport ? dport[1] : -1;
    this.action = action;
    this.table = table;
  }

  /** Does the flow match the selectors (before `not`)? Allocation-free. */
  selects(f: FlowKey): boolean {
    if (this.family !== 0 && this.family !== f.family) return false;
    const words = f.family === 6 ? 4 : 1;
    if (this.from) {
      for (let w = 0; w < words; w++) if ((f.src[w]! & this.fromMask[w]!) >>> 0 !== this.fromKey[w]) return false;
    }
    if (this.to) {
      for (let w = 0; w < words; w++) if ((f.dst[w]! & this.toMask[w]!) >>> 0 !== this.toKey[w]) return false;
    }
    if (this.ipproto >= 0 && f.proto !== this.ipproto) return false;
    if (this.sportLo >= 0 && (f.sport < this.sportLo || f.sport > this.sportHi)) return false;
    if (this.dportLo >= 0 && (f.dport < this.dportLo || f.dport > this.dportHi)) return false;
    return true;
  }

  matches(f: FlowKey): boolean {
    // A family-specific rule never applies to the other family, even with `not`.
    if (this.family !== 0 && this.family !== f.family) return false;
    return this.selects(f) !== this.not;
  }

  /** `ip rule show` line, with the table's name from `tableName`. */
  format(tableName: (id: number) => string): string {
    const parts = [`${this.priority}:`];
    if (this.not) parts.push('not');
    parts.push('from', this.from ? formatPrefixShort(this.from) : 'all');
    if (this.to) parts.push('to', formatPrefixShort(this.to));
    if (this.ipproto >= 0) parts.push('ipproto', PROTOCOL_NAMES.get(this.ipproto) ?? String(this.ipproto));
    if (this.sportLo >= 0) parts.push('sport', range(this.sportLo, this.sportHi));
    if (this.dportLo >= 0) parts.push('dport', range(this.dportLo, this.dportHi));
    if (this.action === 'lookup') parts.push('lookup', tableName(this.table));
    else parts.push(this.action);
    return `${parts[0]}\t${parts.slice(1).join(' ')}`;
  }
}

function range(lo: number, hi: number): string {
  return lo === hi ? String(lo) : `${lo}-${hi}`;
}

function formatPrefixShort(p: Prefix): string {
  const full = formatPrefix(p);
  return p.length === p.bytes.length * 8 ? full.slice(0, full.lastIndexOf('/')) : full;
}

/** Big-endian words of a prefix (masked) and its mask. */
export function prefixWords(p: Prefix, key: Uint32Array, mask: Uint32Array): void {
  const words = p.family === 4 ? 1 : 4;
  for (let w = 0; w < 4; w++) {
    if (w >= words) {
      key[w] = 0;
      mask[w] = 0;
      continue;
    }
    const b = w * 4;
    const v = ((p.bytes[b]! << 24) | (p.bytes[b + 1]! << 16) | (p.bytes[b + 2]! << 8) | p.bytes[b + 3]!) >>> 0;
    const bits = Math.max(0, Math.min(32, p.length - w * 32));
    const m = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    mask[w] = m;
    key[w] = (v & m) >>> 0;
  }
}

function portRange(v: number | readonly [number, number] | undefined, what: string): readonly [number, number] | null {
  if (v === undefined) return null;
  const r: readonly [number, number] = typeof v === 'number' ? [v, v] : v;
  if (!Number.isInteger(r[0]) || !Number.isInteger(r[1]) || r[0] < 0 || r[1] > 65535 || r[0] > r[1]) {
    throw new RuleTextError(`invalid ${what} range ${r[0]}-${r[1]}`);
  }
  return r;
}

function prefixOf(v: string | Prefix | null | undefined, what: string): Prefix | null {
  if (v === undefined || v === null || v === 'all') return null;
  if (typeof v !== 'string') return v;
  try {
    return parsePrefix(v);
  } catch (e) {
    throw new RuleTextError(`${what}: ${(e as Error).message}`);
  }
}

/** Compile a RuleSpec; `tableId` resolves names; `priority` must already be decided. */
export function compileRule(spec: RuleSpec, priority: number, tableId: (t: string | number) => number): Rule {
  const from = prefixOf(spec.from, 'from');
  const to = prefixOf(spec.to, 'to');
  let family: 0 | Family = spec.family ?? 0;
  for (const p of [from, to]) {
    if (!p) continue;
    if (family !== 0 && family !== p.family) throw new RuleTextError('from/to prefixes of different families');
    family = p.family;
  }
  let proto = -1;
  if (spec.ipproto !== undefined) {
    proto = typeof spec.ipproto === 'number' ? spec.ipproto : parseProtocol(spec.ipproto);
    if (!Number.isInteger(proto) || proto < 0 || proto > 255) throw new RuleTextError(`invalid ipproto ${spec.ipproto}`);
  }
  const action = spec.action ?? 'lookup';
  const table = action === 'lookup' ? tableId(spec.table ?? 'main') : 0;
  return new Rule(
    priority,
    family,
    spec.not ?? false,
    from,
    to,
    proto,
    portRange(spec.sport, 'sport'),
    portRange(spec.dport, 'dport'),
    action,
    table,
  );
}

function parsePortRange(text: string | undefined, what: string): readonly [number, number] {
  const m = text === undefined ? null : /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (!m) throw new RuleTextError(`invalid ${what} ${text ?? '(missing)'}`);
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  if (lo > 65535 || hi > 65535 || lo > hi) throw new RuleTextError(`invalid ${what} ${text}`);
  return [lo, hi];
}

/**
 * Parse one `ip rule` line: `[-4|-6] [priority|pref|order N | N:] [not] [from P|all] [to P|all]
 * [ipproto PROTO] [sport N[-M]] [dport N[-M]] (lookup|table) TABLE | blackhole | unreachable |
 * prohibit`. Accepts `ip rule show` output and an optional leading `ip rule add`.
 */
export function parseRule(text: string): RuleSpec {
  let words = text.trim().split(/\s+/).filter((w) => w !== '');
  if (words[0] === 'ip') words = words.slice(1);
  if (words[0] === '-4' || words[0] === '-6') {
    const fam = words[0] === '-4' ? 4 : 6;
    words = words.slice(1);
    if (words[0] === 'rule') words = words.slice(words[1] === 'add' ? 2 : 1);
    return { ...parseRuleWords(words), family: fam };
  }
  if (words[0] === 'rule') words = words.slice(words[1] === 'add' ? 2 : 1);
  return parseRuleWords(words);
}

function parseRuleWords(words: string[]): RuleSpec {
  const spec: RuleSpec = {};
  let i = 0;
  const first = words[0];
  if (first !== undefined && /^\d+:$/.test(first)) {
    spec.priority = Number(first.slice(0, -1));
    i = 1;
  }
  const need = (what: string): string => {
    const v = words[++i];
    if (v === undefined) throw new RuleTextError(`${what} needs a value`);
    return v;
  };
  for (; i < words.length; i++) {
    const w = words[i]!;
    switch (w) {
      case 'priority':
      case 'pref':
      case 'preference':
      case 'order': {
        const v = need(w);
        if (!/^\d{1,10}$/.test(v) || Number(v) > 0xffffffff) throw new RuleTextError(`invalid priority ${v}`);
        spec.priority = Number(v);
        break;
      }
      case 'not':
        spec.not = true;
        break;
      case 'from':
        spec.from = need(w);
        if (spec.from !== 'all') prefixOf(spec.from, 'from');
        break;
      case 'to':
        spec.to = need(w);
        if (spec.to !== 'all') prefixOf(spec.to, 'to');
        break;
      case 'ipproto':
        spec.ipproto = parseProtocol(need(w));
        break;
      case 'sport':
        spec.sport = parsePortRange(need(w), 'sport');
        break;
      case 'dport':
        spec.dport = parsePortRange(need(w), 'dport');
        break;
      case 'lookup':
      case 'table':
        spec.action = 'lookup';
        spec.table = tableArg(need(w));
        break;
      case 'blackhole':
      case 'unreachable':
      case 'prohibit':
        spec.action = w;
        break;
      case 'type': {
        const v = need(w);
        if (v !== 'blackhole' && v !== 'unreachable' && v !== 'prohibit' && v !== 'unicast') {
          throw new RuleTextError(`unsupported rule type ${v}`);
        }
        if (v !== 'unicast') spec.action = v;
        break;
      }
      default:
        throw new RuleTextError(`unsupported rule selector ${w}`);
    }
  }
  if (spec.action === undefined) throw new RuleTextError('rule needs lookup TABLE or blackhole/unreachable/prohibit');
  return spec;
}

function tableArg(v: string): string | number {
  return /^\d{1,10}$/.test(v) ? Number(v) : v;
}

export { AddressTextError };
