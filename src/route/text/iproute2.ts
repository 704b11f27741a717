/**
 * iproute2 text in: `ip route show` / `ip -6 route show` output (kernel decorations included) and
 * `ip route add ...` lines, as operators paste them. One clear error per bad line, naming it.
 */
import { AddressTextError, parseAddress, parsePrefix } from '../../wire/address-text.ts';
import type { Family, Prefix } from '../../wire/address-text.ts';
import type { Router } from '../router.ts';
import { routeTypeCode } from '../types.ts';
import type { NexthopSpec, RouteSpec, RouteTypeName } from '../types.ts';

export class RouteTextError extends Error {
  override name = 'RouteTextError';
  constructor(
    readonly line: number,
    readonly reason: string,
  ) {
    super(`line ${line}: ${reason}`);
  }
}

/** Keywords whose value we read past (kernel decorations and attributes we do not use). */
const IGNORED_WITH_VALUE = new Set([
  'proto',
  'protocol',
  'scope',
  'src',
  'pref',
  'expires',
  'advmss',
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
  'mtu',
  'from',
  'iif',
  'oif',
  'age',
  'users',
  'used',
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
      case 'pref':
        sawV6Decoration = true;
        need('pref');
        break;
      default:
        if (IGNORED_WITH_VALUE.has(w)) {
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
  spec.text = raw.trim().startsWith('ip ') ? undefined : raw.replace(/[ \t]+$/gm, '');
  if (spec.text === undefined) delete spec.text;
  return spec;
}

/**
 * Parse `text` and add every route to `router` (append semantics, like pasting `ip route append`
 * lines). Errors name the line. Returns the route ids in order.
 */
export function loadRoutes(router: Router, text: string, opts: ParseOptions = {}): number[] {
  const parsed = parseRoutes(text, opts);
  const ids: number[] = [];
  for (const { spec, line } of parsed) {
    try {
      ids.push(router.add(spec));
    } catch (e) {
      throw new RouteTextError(line, (e as Error).message);
    }
  }
  return ids;
}
