/**
 * Text out: `ip route show` lines, the `route -n` / `route -6 -n` layout (net-tools), and JSON.
 */
import { formatAddress } from '../../wire/address-text.ts';
import type { Family, Prefix } from '../../wire/address-text.ts';
import type { RouteFilter, Router } from '../router.ts';
import { ROUTE_TYPE_NAMES, RouteType } from '../types.ts';
import type { Nexthop, RouteAttrs } from '../types.ts';

/** "default", a bare host address for /32 and /128 (as ip prints), else CIDR. */
export function formatDestination(p: Prefix): string {
  if (p.length === 0) return 'default';
  const a = formatAddress(p.bytes, 0, p.family);
  return p.length === p.bytes.length * 8 ? a : `${a}/${p.length}`;
}

/** Always CIDR (`0.0.0.0/0`, `::/0` for default). */
export function formatCidr(p: Prefix): string {
  return `${formatAddress(p.bytes, 0, p.family)}/${p.length}`;
}

function nhText(n: Nexthop, routeFamily: Family): string {
  const parts: string[] = [];
  if (n.via) parts.push('via', (n.via.family !== routeFamily ? `inet${n.via.family === 6 ? '6' : ''} ` : '') + formatAddress(n.via.bytes, 0, n.via.family));
  if (n.dev !== null) parts.push('dev', n.dev);
  return parts.join(' ');
}

/** `mtu lock 1400 advmss 1360`: a route's metrics as ip prints them. */
export function metricsText(a: RouteAttrs | undefined): string {
  return (a?.metrics ?? []).map((m) => `${m.name} ${m.lock ? 'lock ' : ''}${m.value}`).join(' ');
}

/**
 * The route as `ip route show` prints it, every attribute it was read with in ip's order:
 *   [type] DST [via GW] [dev DEV] [table T] [proto P] [scope S] [src A] [metric M] [onlink]
 *   [mtu [lock] N] [advmss N] ... [pref P]
 * then one `\tnexthop via ... dev ... weight W` line per nexthop of an ECMP route. With
 * `original` and a kept text, that text instead.
 */
export function formatRoute(router: Router, id: number, original = false): string {
  if (original) {
    const t = router.textOf(id);
    if (t !== undefined) return t;
  }
  const p = router.prefixOf(id);
  const type = router.typeOf(id);
  const a = router.attrsOf(id);
  const parts: string[] = [];
  if (type !== RouteType.UNICAST) parts.push(ROUTE_TYPE_NAMES[type]);
  parts.push(formatDestination(p));
  const nhs = router.nexthopsOf(id);
  if (nhs.length === 1) {
    const t = nhText(nhs[0]!, p.family);
    if (t) parts.push(t);
  } else if (nhs.length === 0 && p.family === 6 && type >= RouteType.BLACKHOLE && type <= RouteType.THROW) {
    parts.push('dev', 'lo'); // the kernel's IPv6 reject routes point at lo, and ip prints it
  }
  const table = router.tableOf(id);
  if (table !== 254) parts.push('table', router.tableName(table));
  if (a?.proto !== undefined) parts.push('proto', a.proto);
  if (a?.scope !== undefined) parts.push('scope', a.scope);
  if (a?.src !== undefined) parts.push('src', a.src);
  const metric = router.metricOf(id);
  if (metric !== 0 || p.family === 6) parts.push('metric', String(metric));
  if (nhs.length === 1 && nhs[0]!.onlink) parts.push('onlink');
  const m = metricsText(a);
  if (m) parts.push(m);
  if (a?.pref !== undefined) parts.push('pref', a.pref);
  let line = parts.join(' ');
  if (nhs.length > 1) {
    for (const n of nhs) line += `\n\tnexthop ${nhText(n, p.family)} weight ${n.weight}${n.onlink ? ' onlink' : ''}`;
  }
  return line;
}

/** `ip route show` of the matching routes (one line, or an ECMP block, per route). */
export function showRoutes(router: Router, filter: RouteFilter = {}): string {
  return router
    .list(filter)
    .map((id) => formatRoute(router, id) + '\n')
    .join('');
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}
function padLeft(s: string, n: number): string {
  return s.length >= n ? s : ' '.repeat(n - s.length) + s;
}

function maskText(len: number): string {
  const m = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return `${m >>> 24}.${(m >>> 16) & 255}.${(m >>> 8) & 255}.${m & 255}`;
}

/**
 * `route -n` layout (net-tools): for IPv4 `Destination Gateway Genmask Flags Metric Ref Use Iface`,
 * for IPv6 (`route -6 -n`) `Destination Next Hop Flag Met Ref Use If`. Flags: U up, G gateway,
 * H host (IPv4 only, as net-tools shows); `!` for unreachable/prohibit routes (net-tools prints reject routes that way; IPv6
 * reject routes show `!n` on `lo`). Use is the route's packet counter. An ECMP route shows its
 * first nexthop for IPv4 and one line per nexthop for IPv6, as net-tools does.
 */
export function showRouteN(router: Router, family: Family, filter: RouteFilter = {}): string {
  const ids = router.list({ ...filter, family });
  const out: string[] = [];
  if (family === 4) {
    out.push('Kernel IP routing table');
    out.push('Destination     Gateway         Genmask         Flags Metric Ref    Use Iface');
    for (const id of ids) {
      const p = router.prefixOf(id);
      const type = router.typeOf(id);
      const dest = formatAddress(p.bytes, 0, 4);
      const mask = maskText(p.length);
      const use = String(router.packetsOf(id));
      const metric = String(router.metricOf(id));
      if (type === RouteType.UNREACHABLE || type === RouteType.PROHIBIT) {
        out.push(`${pad(dest, 15)} ${pad('-', 15)} ${pad(mask, 15)} ${pad('!', 5)} ${pad(metric, 6)} ${pad('-', 2)} ${padLeft(use, 7)} -`);
        continue;
      }
      const nh = router.nexthopsOf(id)[0];
      const gw = nh?.via && nh.via.family === 4 ? formatAddress(nh.via.bytes, 0, 4) : '0.0.0.0';
      let flags = 'U';
      if (nh?.via) flags += 'G';
      if (p.length === 32) flags += 'H';
      const iface = nh?.dev ?? '*';
      out.push(`${pad(dest, 15)} ${pad(gw, 15)} ${pad(mask, 15)} ${pad(flags, 5)} ${pad(metric, 6)} ${pad('0', 2)} ${padLeft(use, 7)} ${iface}`);
    }
  } else {
    out.push('Kernel IPv6 routing table');
    out.push('Destination                    Next Hop                   Flag Met Ref  Use If');
    for (const id of ids) {
      const p = router.prefixOf(id);
      const type = router.typeOf(id);
      const dest = formatCidr(p);
      const use = String(router.packetsOf(id));
      const metric = String(router.metricOf(id));
      const line = (gw: string, flags: string, iface: string) =>
        `${pad(dest, 30)} ${pad(gw, 26)} ${pad(flags, 4)} ${pad(metric, 3)} ${pad('0', 1)} ${padLeft(use, 6)} ${iface}`;
      if (type === RouteType.UNREACHABLE || type === RouteType.PROHIBIT || type === RouteType.BLACKHOLE) {
        out.push(line('::', '!n', 'lo'));
        continue;
      }
      const nhs = router.nexthopsOf(id);
      if (nhs.length === 0) out.push(line('::', 'U', '*'));
      for (const nh of nhs) {
        const gw = nh.via ? formatAddress(nh.via.bytes, 0, nh.via.family) : '::';
        // net-tools shows no H for IPv6 host routes (the kernel does not set RTF_HOST on them).
        const flags = nh.via ? 'UG' : 'U';
        out.push(line(gw, flags, nh.dev ?? '*'));
      }
    }
  }
  return out.join('\n') + '\n';
}

export interface RouteJson {
  /** As `ip -j route`: "default", bare host address, or CIDR. */
  dst: string;
  /** Always CIDR. */
  prefix: string;
  type: string;
  table: string;
  metric: number;
  gateway?: string;
  dev?: string;
  onlink?: boolean;
  nexthops?: { gateway?: string; dev?: string; weight: number; onlink?: boolean }[];
  /** As `ip -j route`: protocol, scope, prefsrc, metrics, pref (when the route has them). */
  protocol?: string;
  scope?: string;
  prefsrc?: string;
  metrics?: Record<string, number | string>[];
  pref?: string;
  packets: number;
  bytes: number;
}

/** One route as JSON (`ip -j route` field names plus prefix and counters). */
export function routeJson(router: Router, id: number): RouteJson {
  const p = router.prefixOf(id);
  const j: RouteJson = {
    dst: formatDestination(p),
    prefix: formatCidr(p),
    type: ROUTE_TYPE_NAMES[router.typeOf(id)],
    table: router.tableName(router.tableOf(id)),
    metric: router.metricOf(id),
    packets: router.packetsOf(id),
    bytes: router.bytesOf(id),
  };
  const nhs = router.nexthopsOf(id);
  const one = (n: Nexthop) => ({
    ...(n.via ? { gateway: formatAddress(n.via.bytes, 0, n.via.family) } : {}),
    ...(n.dev !== null ? { dev: n.dev } : {}),
    ...(n.onlink ? { onlink: true } : {}),
  });
  if (nhs.length === 1) Object.assign(j, one(nhs[0]!));
  else if (nhs.length > 1) j.nexthops = nhs.map((n) => ({ ...one(n), weight: n.weight }));
  const a = router.attrsOf(id);
  if (a?.proto !== undefined) j.protocol = a.proto;
  if (a?.scope !== undefined) j.scope = a.scope;
  if (a?.src !== undefined) j.prefsrc = a.src;
  if (a?.metrics !== undefined) j.metrics = [Object.fromEntries(a.metrics.map((m) => [m.name, /^\d+$/.test(m.value) ? Number(m.value) : m.value]))];
  if (a?.pref !== undefined) j.pref = a.pref;
  return j;
}

/** All matching routes as a JSON array string. */
export function showRoutesJson(router: Router, filter: RouteFilter = {}): string {
  return JSON.stringify(router.list(filter).map((id) => routeJson(router, id)));
}
