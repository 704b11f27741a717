/**
 * iproute2 text in: `ip route show` / `ip -6 route show` output (kernel decorations included),
 * `ip route add ...` lines as operators paste them, and `ip -j route` / `ip -6 -j route` JSON.
 * One clear error per bad line (or JSON route), naming it.
 *
 * Attributes that do not change forwarding (proto, scope, src, pref, mtu, advmss and the other
 * route metrics) are kept in RouteSpec.attrs so `route show` prints them back; kernel state
 * (expires, linkdown, the use counters `ipferry show routes` prints as `uses N`) is skipped.
 */
import { AddressTextError, parseAddress, parsePrefix } from '../../wire/address-text.ts';
import type { Family, Prefix } from '../../wire/address-text.ts';
import type { Router } from '../router.ts';
import { ROUTE_METRIC_NAMES, routeTypeCode } from '../types.ts';
import type { NexthopSpec, RouteAttrs, RouteSpec, RouteTypeName } from '../types.ts';
import { formatAddress } from '../../wire/address-text.ts';

export class RouteTextError extends Error {
  override name = 'RouteTextError';
  constructor(
    readonly line: number,
    readonly reason: string,
    /** What `line` counts: text lines, or the routes of `ip -j route` JSON. */
    where: 'line' | 'JSON route' = 'line',
  ) {
    super(line > 0 ? `${where} ${line}: ${reason}` : reason);
  }
}

/** Keywords whose value we read past (kernel decorations and attributes we do not use). */
const IGNORED_WITH_VALUE = new Set([
  'expires',
  'rtt',
  'rttvar',
  'reordering',
  'window',
  'cwnd',
  'initcwnd',
  'initrwnd',
  'ssthresh',
  'realms',
  'realm',
  'hoplimit',
  'features',
  'quickack',
  'congctl',
  'fastopen_no_cookie',
  'tos',
  'dsfield',
  'nhid',
  'error',
  'uid',
  'rto_min',
  'ttl-propagate',
  'from',
  'iif',
  'oif',
  'age',
  'users',
  'used',
  'uses', // the use counter `ipferry show routes` prints after each route
]);
/** Metrics that may be preceded by `lock`. */
const LOCKABLE = new Set(['mtu', 'advmss', 'rtt', 'rttvar', 'reordering', 'window', 'cwnd', 'initcwnd', 'initrwnd', 'ssthresh', 'hoplimit', 'rto_min']);
/** Flags the kernel prints after a route or nexthop (ignored, except onlink). */
const IGNORED_FLAGS = new Set([
  'linkdown',
  'dead',
  'pervasive',
  'offload',
  'trap',
  'rt_offload',
  'rt_trap',
  'rt_offload_failed',
  'offload_failed',
  'notify',
  'unresolved',
  'rt_trunc',
  'cache',
  'cloned',
]);
const TYPES = new Set(['unicast', 'local', 'broadcast', 'anycast', 'multicast', 'blackhole', 'unreachable', 'prohibit', 'throw']);

export interface ParsedRoute {
  spec: RouteSpec;
  /** 1-based number of the route's first line. */
  line: number;
}

export interface ParseOptions {
  /** Family for `default` routes that name no gateway (`ip -6 route show` output). Default: guess, else 4. */
  family?: Family;
  /** Table when the line names none. Default main. */
  table?: string | number;
}

/**
 * Parse iproute2 route text. Blank lines and `#` comments are skipped; lines starting with
 * whitespace continue the previous route (the kernel's `\tnexthop ...` lines); a trailing `\`
 * joins lines. A leading `ip [-4|-6] route add|append|replace|prepend` is accepted.
 */
export function parseRoutes(text: string, opts: ParseOptions = {}): ParsedRoute[] {
  const out: ParsedRoute[] = [];
  const lines = text.split(/\r?\n/);
  let cur: { words: string[]; line: number; raw: string[] } | null = null;
  const flush = () => {
    if (cur) out.push({ spec: parseRouteWords(cur.words, cur.line, opts, cur.raw.join('\n')), line: cur.line });
    cur = null;
  };
  let joining = false;
  for (let i = 0; i < lines.length; i++) {
    let l = lines[i]!;
    const hash = l.indexOf('#');
    if (hash >= 0) l = l.slice(0, hash);
    const continues = joining || /^\s/.test(l);
    const t = l.trim();
    joining = t.endsWith('\\');
    const body = joining ? t.slice(0, -1) : t;
    if (body === '' && !joining) {
      if (!continues) flush();
      continue;
    }
    const words = body.split(/\s+/).filter((w) => w !== '');
    if (continues && cur !== null) {
      const c = cur as { words: string[]; line: number; raw: string[] };
      c.words.push(...words);
      c.raw.push(lines[i]!.trimEnd());
    } else {
      if (continues && words.length > 0) {
        throw new RouteTextError(i + 1, `continuation line without a route: ${t}`);
      }
      flush();
      cur = { words, line: i + 1, raw: [lines[i]!.trimEnd()] };
    }
  }
  flush();
  return out;
}

function parseRouteWords(all: string[], line: number, opts: ParseOptions, raw: string): RouteSpec {
  const fail = (reason: string): never => {
    throw new RouteTextError(line, reason);
  };
  let words = all;
  let family: Family | undefined = opts.family;
  // `ip [-4|-6] route add|append|replace ...`
  if (words[0] === 'ip') {
    words = words.slice(1);
    while (words[0]?.startsWith('-')) {
      if (words[0] === '-6') family = 6;
      else if (words[0] === '-4') family = 4;
      else fail(`unsupported option ${words[0]}`);
      words = words.slice(1);
    }
    if (words[0] !== 'route' && words[0] !== 'r' && words[0] !== 'ro') fail(`expected "ip route", got "ip ${words[0] ?? ''}"`);
    words = words.slice(1);
    if (!['add', 'append', 'replace', 'prepend', 'change'].includes(words[0] ?? '')) {
      fail(`expected ip route add/append/replace, got ${words[0] ?? 'nothing'}`);
    }
    words = words.slice(1);
  }
  let i = 0;
  let type: RouteTypeName | undefined;
  if (words[i] === 'type') i++;
  if (TYPES.has(words[i] ?? '')) type = words[i++] as RouteTypeName;
  if (words[i] === 'to') i++;
  const dst = words[i++];
  if (dst === undefined) fail('missing destination prefix');

  const spec: RouteSpec = { prefix: '' };
  const attrs: RouteAttrs = {};
  const nexthops: NexthopSpec[] = [];
  let curNh: NexthopSpec | null = null;
  let sawV6Decoration = false;
  let viaFamily: Family | undefined;
  const need = (what: string): string => words[i++] ?? fail(`${what} needs a value`);
  const num = (what: string, max = 0xffffffff): number => {
    const v = need(what);
    if (!/^\d{1,10}$/.test(v) || Number(v) > max) fail(`invalid ${what} ${v}`);
    return Number(v);
  };
  /** `via [inet|inet6] ADDR`; returns the address and whether the family was spelled out. */
  const addr = (what: string) => {
    let v = need(what);
    let explicit = false;
    if (v === 'inet' || v === 'inet6') {
      explicit = true;
      v = need(what);
    }
    try {
      return { a: parseAddress(v), explicit };
    } catch (e) {
      return fail(`${what}: ${(e as Error).message}`);
    }
  };
  for (; i < words.length; ) {
    const w = words[i++]!;
    const target: NexthopSpec | RouteSpec = curNh ?? spec;
    switch (w) {
      case 'via': {
        const { a, explicit } = addr('via');
        target.via = a;
        // `via inet6 X` on an IPv4 route is a cross-family gateway: it says nothing of the route.
        if (!explicit) viaFamily ??= a.family;
        break;
      }
      case 'dev':
      case 'oif':
        target.dev = need('dev');
        break;
      case 'weight':
        if (!curNh) fail('weight outside a nexthop');
        (curNh as NexthopSpec).weight = num('weight', 256);
        if ((curNh as NexthopSpec).weight! < 1) fail('invalid weight 0 (1-256)');
        break;
      case 'onlink':
        target.onlink = true;
        break;
      case 'nexthop':
        curNh = {};
        nexthops.push(curNh);
        break;
      case 'metric':
      case 'priority':
      case 'preference':
        spec.metric = num('metric');
        break;
      case 'table': {
        const t = need('table');
        spec.table = /^\d{1,10}$/.test(t) ? Number(t) : t;
        break;
      }
      case 'pref': {
        sawV6Decoration = true;
        const v = need('pref');
        if (!['low', 'medium', 'high'].includes(v)) fail(`invalid pref ${v} (low, medium, high)`);
        attrs.pref = v;
        break;
      }
      case 'proto':
      case 'protocol': {
        const v = need('proto');
        if (v !== 'boot' && v !== '3') attrs.proto = v; // boot is what ip route add sets and ip never prints
        break;
      }
      case 'scope': {
        const v = need('scope');
        if (v !== 'global' && v !== 'universe' && v !== '0') attrs.scope = v;
        break;
      }
      case 'src': {
        const { a } = addr('src');
        attrs.src = formatAddress(a.bytes, 0, a.family);
        break;
      }
      default:
        if ((ROUTE_METRIC_NAMES as readonly string[]).includes(w)) {
          const lock = words[i] === 'lock';
          if (lock) i++;
          const v = need(w);
          if (w !== 'congctl' && w !== 'features' && !/^\d+(ms|s|us)?$/.test(v)) fail(`invalid ${w} ${v}`);
          (attrs.metrics ??= []).push({ name: w, value: v, lock });
        } else if (IGNORED_WITH_VALUE.has(w)) {
          if (LOCKABLE.has(w) && words[i] === 'lock') i++;
          need(w);
        } else if (IGNORED_FLAGS.has(w)) {
          // kernel state flags: nothing to do
        } else if (w === 'encap') {
          fail('encap routes are not supported');
        } else {
          fail(`unknown keyword ${w}`);
        }
    }
  }
  // Nexthops need dev or via.
  nexthops.forEach((n, k) => {
    if ((n.dev ?? null) === null && (n.via ?? null) === null) fail(`nexthop ${k + 1} needs via or dev`);
  });
  let prefix: Prefix | undefined;
  if (dst === 'default' || dst === 'all' || dst === 'any') {
    const fam: Family = family ?? viaFamily ?? (sawV6Decoration ? 6 : 4);
    prefix = { family: fam, bytes: new Uint8Array(fam === 4 ? 4 : 16), length: 0 };
  } else {
    try {
      prefix = parsePrefix(dst);
    } catch (e) {
      fail(e instanceof AddressTextError ? e.message : `invalid prefix ${dst}`);
    }
  }
  const p = prefix!;
  if (family !== undefined && p.family !== family) fail(`${dst} is not an IPv${family} prefix`);
  spec.prefix = p;
  if (type !== undefined && routeTypeCode(type) !== undefined) spec.type = type;
  if (nexthops.length > 0) {
    if (spec.via !== undefined || spec.dev !== undefined) fail('both via/dev and nexthop groups given');
    spec.nexthops = nexthops;
  }
  const t = type ?? 'unicast';
  const hasNh = nexthops.length > 0 || spec.via !== undefined || spec.dev !== undefined;
  if (t === 'unicast' && !hasNh) fail(`${dst}: route needs via, dev or nexthop`);
  if ((t === 'blackhole' || t === 'unreachable' || t === 'prohibit' || t === 'throw') && spec.via !== undefined) {
    fail(`${t} route cannot have a gateway`);
  }
  // Reject routes: the kernel prints `dev lo` for IPv6 ones; that is not a nexthop.
  if (t === 'blackhole' || t === 'unreachable' || t === 'prohibit' || t === 'throw') {
    delete spec.dev;
  }
  if (spec.table === undefined && opts.table !== undefined) spec.table = opts.table;
  if (attrs.metrics !== undefined) {
    const order = (n: string) => (ROUTE_METRIC_NAMES as readonly string[]).indexOf(n);
    attrs.metrics.sort((x, y) => order(x.name) - order(y.name));
  }
  if (Object.keys(attrs).length > 0) spec.attrs = attrs;
  spec.text = raw.trim().startsWith('ip ') ? undefined : raw.replace(/[ \t]+$/gm, '');
  if (spec.text === undefined) delete spec.text;
  return spec;
}

/** `ip -j route` field names whose value is printed after the same word in text. */
const JSON_WORDS: [string, string][] = [
  ['gateway', 'via'],
  ['dev', 'dev'],
  ['table', 'table'],
  ['protocol', 'proto'],
  ['scope', 'scope'],
  ['prefsrc', 'src'],
  ['metric', 'metric'],
];

/** One `ip -j route` object as the line `ip route show` would print for it. */
function jsonRouteLine(r: Record<string, unknown>, where: string): string {
  const fail = (reason: string): never => {
    throw new RouteTextError(0, `${where}: ${reason}`);
  };
  if (typeof r !== 'object' || r === null || Array.isArray(r)) fail('expected a route object');
  if (typeof r.dst !== 'string') fail('missing "dst"');
  const scalar = (v: unknown, name: string): string =>
    typeof v === 'string' || typeof v === 'number' ? String(v) : fail(`"${name}" must be a string or number`);
  const words: string[] = [];
  if (r.type !== undefined && r.type !== 'unicast') words.push(scalar(r.type, 'type'));
  words.push(scalar(r.dst, 'dst'));
  const nh = (o: Record<string, unknown>, what: string): void => {
    if (o.via !== undefined) {
      const v = o.via as { family?: string; host?: string };
      if (typeof v?.host !== 'string') fail(`"${what}via" must be { family, host }`);
      words.push('via', v.family === 'inet6' ? 'inet6' : 'inet', v.host!);
    }
    for (const [k, w] of JSON_WORDS.slice(0, 2)) if (o[k] !== undefined) words.push(w, scalar(o[k], k));
  };
  nh(r, '');
  for (const [k, w] of JSON_WORDS.slice(2)) if (r[k] !== undefined) words.push(w, scalar(r[k], k));
  const flags = (o: Record<string, unknown>): void => {
    if (o.flags !== undefined && !Array.isArray(o.flags)) fail('"flags" must be an array');
    for (const f of (o.flags as unknown[] | undefined) ?? []) words.push(scalar(f, 'flags'));
  };
  flags(r);
  for (const m of (r.metrics as unknown[] | undefined) ?? []) {
    if (typeof m !== 'object' || m === null) fail('"metrics" must be an array of objects');
    for (const [k, v] of Object.entries(m as Record<string, unknown>)) words.push(k, scalar(v, k));
  }
  if (r.pref !== undefined) words.push('pref', scalar(r.pref, 'pref'));
  if (r.nexthops !== undefined) {
    if (!Array.isArray(r.nexthops)) fail('"nexthops" must be an array');
    for (const n of r.nexthops as Record<string, unknown>[]) {
      words.push('nexthop');
      nh(n, 'nexthops[].');
      if (n.weight !== undefined) words.push('weight', scalar(n.weight, 'weight'));
      flags(n);
    }
  }
  return words.join(' ');
}

/**
 * `ip -j route show` / `ip -6 -j route show` output (one JSON array, or several one after the
 * other as `ip -j route; ip -6 -j route` prints them) as route text lines.
 */
export function jsonRoutesToText(text: string): string {
  const lines: string[] = [];
  let rest = text.trim();
  let k = 0;
  while (rest !== '') {
    let value: unknown;
    let used = rest.length;
    try {
      value = JSON.parse(rest);
    } catch {
      // Several arrays in a row: take the first one (up to its closing bracket at depth 0).
      let depth = 0;
      let inStr = false;
      for (let i = 0; i < rest.length; i++) {
        const c = rest[i];
        if (inStr) {
          if (c === '\\') i++;
          else if (c === '"') inStr = false;
        } else if (c === '"') inStr = true;
        else if (c === '[' || c === '{') depth++;
        else if ((c === ']' || c === '}') && --depth === 0) {
          used = i + 1;
          break;
        }
      }
      try {
        value = JSON.parse(rest.slice(0, used));
      } catch (e) {
        throw new RouteTextError(0, `not valid ip -j route JSON: ${(e as Error).message}`);
      }
    }
    if (!Array.isArray(value)) throw new RouteTextError(0, 'ip -j route JSON must be an array of routes');
    for (const r of value) lines.push(jsonRouteLine(r as Record<string, unknown>, `JSON route ${++k}`));
    rest = rest.slice(used).trim();
  }
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}

/** True when the text is `ip -j route` JSON rather than route lines. */
export function isJsonRoutes(text: string): boolean {
  return /^\s*\[/.test(text);
}

/**
 * Parse `text` and add every route to `router` (append semantics, like pasting `ip route append`
 * lines). Errors name the line. Returns the route ids in order.
 */
export function loadRoutes(router: Router, text: string, opts: ParseOptions = {}): number[] {
  const json = isJsonRoutes(text);
  let parsed: ParsedRoute[];
  try {
    parsed = parseRoutes(json ? jsonRoutesToText(text) : text, opts);
  } catch (e) {
    // JSON: one converted line per route, so the line number is the route's number.
    if (json && e instanceof RouteTextError && e.line > 0) throw new RouteTextError(e.line, e.reason, 'JSON route');
    throw e;
  }
  const ids: number[] = [];
  for (const { spec, line } of parsed) {
    try {
      ids.push(router.add(spec));
    } catch (e) {
      throw new RouteTextError(line, (e as Error).message, json ? 'JSON route' : 'line');
    }
  }
  return ids;
}
