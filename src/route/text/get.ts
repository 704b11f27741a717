/**
 * `ip route get` in and out, for a table loaded from text:
 *
 *   [fibmatch] ADDR [from ADDR] [iif DEV] [ipproto PROTO] [sport N] [dport N]
 *
 * in, and the kernel's answer out: the chosen nexthop (`10.7.1.1 via 10.0.1.7 dev d1`, for IPv4
 * the route's metrics on a `    cache ...` line; for IPv6 one line with `from`, proto, metric and
 * pref, as `ip -6 route get` prints), or with fibmatch the whole matching route as `ip route
 * show` prints it (every nexthop of a group). What only a live kernel knows is left out: the
 * source it would pick from the device's addresses (`src` is printed only when the route has
 * one), `uid`, and cache flags such as `<redirect>`. `iif` is printed back but changes nothing:
 * the policy rules here have no iif selector.
 * `route show [to] [root|match|exact] PREFIX` selects routes the way `ip route show` does.
 */
import { AddressTextError, formatAddress, parseAddress, parsePrefix, prefixContains } from '../../wire/address-text.ts';
import type { AddressBytes, Prefix } from '../../wire/address-text.ts';
import { parseProtocol } from '../rules.ts';
import type { Router } from '../router.ts';
import { ROUTE_TYPE_NAMES, RouteType } from '../types.ts';
import { formatRoute, metricsText } from './show.ts';

export class GetTextError extends Error {
  override name = 'GetTextError';
}

export interface GetQuery {
  /** The destination as written. */
  text: string;
  dst: AddressBytes;
  from?: AddressBytes;
  iif?: string;
  proto?: number;
  /** The protocol as written (a name or number). */
  protoText?: string;
  sport?: number;
  dport?: number;
  fibmatch: boolean;
}

const PORT = (w: string, what: string): number => {
  if (!/^\d{1,5}$/.test(w) || Number(w) > 65535) throw new GetTextError(`invalid ${what} ${w} (0-65535)`);
  return Number(w);
};

function address(w: string, what: string): AddressBytes {
  try {
    return parseAddress(w);
  } catch (e) {
    throw new GetTextError(`${what}${e instanceof AddressTextError ? e.message : String(e)}`);
  }
}

/**
 * Queries from `ip route get` words: each address starts a query; the selectors after it belong
 * to it (those before the first address to the first query); `fibmatch` marks the address that
 * follows it (as in `ip route get fibmatch ADDR`), or the last one when none follows.
 */
export function parseGetWords(words: readonly string[]): GetQuery[] {
  const out: GetQuery[] = [];
  const pending: Partial<GetQuery> = {};
  const target = (): Partial<GetQuery> => out.at(-1) ?? pending;
  let fibNext = false;
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    const value = (): string => {
      const v = words[++i];
      if (v === undefined) throw new GetTextError(`${w} needs a value`);
      return v;
    };
    switch (w) {
      case 'fibmatch':
        fibNext = true;
        break;
      case 'to':
        break;
      case 'from': {
        const v = value();
        target().from = address(v, 'from: ');
        break;
      }
      case 'iif':
        target().iif = value();
        break;
      case 'ipproto': {
        const v = value();
        try {
          target().proto = parseProtocol(v);
        } catch (e) {
          throw new GetTextError((e as Error).message);
        }
        target().protoText = v;
        break;
      }
      case 'sport':
        target().sport = PORT(value(), 'sport');
        break;
      case 'dport':
        target().dport = PORT(value(), 'dport');
        break;
      case 'oif':
      case 'mark':
      case 'tos':
      case 'dsfield':
      case 'vrf':
      case 'uid':
      case 'connected':
        throw new GetTextError(`${w} is not supported (from, iif, ipproto, sport, dport, fibmatch)`);
      default:
        if (!/^[0-9a-fA-F.:]+$/.test(w)) throw new GetTextError(`unknown keyword ${w}`);
        out.push({ ...(out.length === 0 ? pending : {}), fibmatch: fibNext, text: w, dst: address(w, '') });
        fibNext = false;
    }
  }
  if (fibNext && out.length > 0) out.at(-1)!.fibmatch = true;
  if (out.length === 0 && (Object.keys(pending).length > 0 || fibNext)) throw new GetTextError('no address to look up');
  for (const q of out) {
    if (q.from !== undefined && q.from.family !== q.dst.family) throw new GetTextError(`from and ${q.text} are not the same address family`);
  }
  return out;
}

/** Look one query up (through the rules, with its source, protocol and ports). */
export function lookupQuery(router: Router, q: GetQuery): number {
  return router.lookupAddress(q.dst, { src: q.from, proto: q.proto, sport: q.sport, dport: q.dport });
}

/** The kernel's words for a lookup that ends in no route or a reject route. */
export function rejectText(type: number): string {
  switch (type) {
    case RouteType.BLACKHOLE:
      return 'Invalid argument';
    case RouteType.UNREACHABLE:
      return 'No route to host';
    case RouteType.PROHIBIT:
      return 'Permission denied';
    default:
      return 'Network is unreachable';
  }
}

/**
 * The answer `ip route get` prints for route `id` (found by lookupQuery just before: the chosen
 * nexthop is the router's lastNexthop).
 */
export function formatGet(router: Router, id: number, q: GetQuery): string {
  if (q.fibmatch) return formatRoute(router, id);
  const p = router.prefixOf(id);
  const type = router.typeOf(id);
  const a = router.attrsOf(id);
  const nh = router.lastNexthop;
  const parts: string[] = [];
  if (type !== RouteType.UNICAST) parts.push(ROUTE_TYPE_NAMES[type]);
  parts.push(formatAddress(q.dst.bytes, 0, q.dst.family));
  if (q.from !== undefined || p.family === 6) parts.push('from', q.from ? formatAddress(q.from.bytes, 0, q.from.family) : '::');
  if (nh?.via) parts.push('via', (nh.via.family !== p.family ? `inet${nh.via.family === 6 ? '6' : ''} ` : '') + formatAddress(nh.via.bytes, 0, nh.via.family));
  if (nh?.dev) parts.push('dev', nh.dev);
  const table = router.tableOf(id);
  if (table !== 254) parts.push('table', router.tableName(table));
  if (p.family === 6) {
    // ip -6 route get: one line, the route's attributes on it
    if (a?.proto !== undefined) parts.push('proto', a.proto);
    if (a?.src !== undefined) parts.push('src', a.src);
    parts.push('metric', String(router.metricOf(id)));
    const m = metricsText(a);
    if (m) parts.push(m);
    if (q.iif !== undefined) parts.push('iif', q.iif);
    if (a?.pref !== undefined) parts.push('pref', a.pref);
    return parts.join(' ');
  }
  if (a?.src !== undefined) parts.push('src', a.src);
  // ip route get (IPv4): metrics and iif on the second, "cache" line
  const cache = [metricsText(a), q.iif !== undefined ? `iif ${q.iif}` : ''].filter((x) => x !== '');
  return cache.length > 0 ? `${parts.join(' ')}\n    cache ${cache.join(' ')}` : parts.join(' ');
}

/** `route show` selectors: `[to] [root|match|exact] PREFIX` as `ip route show` reads them. */
export interface ShowSelector {
  kind: 'root' | 'match' | 'exact';
  prefix: Prefix;
}

export function parseShowWords(words: readonly string[], family: 4 | 6 = 4): ShowSelector | null {
  let i = 0;
  if (words[i] === 'to') i++;
  let kind: ShowSelector['kind'] = 'exact';
  if (words[i] === 'root' || words[i] === 'match' || words[i] === 'exact') kind = words[i++] as ShowSelector['kind'];
  const w = words[i++];
  if (w === undefined) {
    if (words.length > 0) throw new GetTextError(`${words.at(-1)} needs a prefix`);
    return null;
  }
  if (i < words.length) throw new GetTextError(`unexpected argument ${words[i]}`);
  let prefix: Prefix;
  try {
    prefix = w === 'default' || w === 'all' ? { family, bytes: new Uint8Array(family === 4 ? 4 : 16), length: 0 } : parsePrefix(w);
  } catch (e) {
    throw new GetTextError(e instanceof AddressTextError ? e.message : String(e));
  }
  return { kind, prefix };
}

/** Does route prefix `r` pass the selector (`root`: inside it, `match`: covers it, `exact`: is it)? */
export function selects(sel: ShowSelector, r: Prefix): boolean {
  const s = sel.prefix;
  if (r.family !== s.family) return false;
  if (sel.kind === 'exact') return r.length === s.length && prefixContains(s, r);
  if (sel.kind === 'root') return r.length >= s.length && prefixContains(s, r);
  return r.length <= s.length && prefixContains(r, s);
}
