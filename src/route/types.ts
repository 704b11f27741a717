/**
 * Route types, nexthops and the ICMP error each route type produces, as Linux has them.
 */
import type { AddressBytes, Family, Prefix } from '../wire/address-text.ts';

/** A route, rule, table or nexthop the router refuses (one line naming the cause). */
export class RouteError extends Error {
  override name = 'RouteError';
}

/** Route type codes (the kernel's RTN_* numbers). NONE is "no route matched". */
export const RouteType = {
  NONE: 0,
  UNICAST: 1,
  LOCAL: 2,
  BROADCAST: 3,
  ANYCAST: 4,
  MULTICAST: 5,
  BLACKHOLE: 6,
  UNREACHABLE: 7,
  PROHIBIT: 8,
  THROW: 9,
} as const;
export type RouteTypeCode = (typeof RouteType)[keyof typeof RouteType];

export const ROUTE_TYPE_NAMES = [
  'none',
  'unicast',
  'local',
  'broadcast',
  'anycast',
  'multicast',
  'blackhole',
  'unreachable',
  'prohibit',
  'throw',
] as const;
export type RouteTypeName = Exclude<(typeof ROUTE_TYPE_NAMES)[number], 'none'>;

export function routeTypeCode(name: string): RouteTypeCode | undefined {
  const i = ROUTE_TYPE_NAMES.indexOf(name as RouteTypeName);
  return i > 0 ? (i as RouteTypeCode) : undefined;
}

/** One next hop of a route (shared, immutable: lookups hand out references, never copies). */
export interface Nexthop {
  /** Device / peer name (`dev shanghai`, `dev tun0`); null when only `via` was given. */
  readonly dev: string | null;
  /** Small integer for dev (Router.devIndex/devName); -1 when dev is null. */
  readonly devIndex: number;
  /** Gateway address, or null for a directly connected route. */
  readonly via: AddressBytes | null;
  /** ECMP weight, 1..256 like Linux. */
  readonly weight: number;
  readonly onlink: boolean;
}

/** A nexthop as given by a caller (text addresses allowed). */
export interface NexthopSpec {
  dev?: string | null;
  via?: string | AddressBytes | null;
  weight?: number;
  onlink?: boolean;
}

/**
 * What a route says beyond forwarding (control plane only: kept so `route show` prints a route
 * back as it was read, in `ip route` order). Values are iproute2's words: proto "static",
 * scope "link", src "10.0.0.1", pref "high", metrics in the kernel's RTAX order.
 */
export interface RouteAttrs {
  proto?: string;
  scope?: string;
  /** Preferred source address (`src`, RTA_PREFSRC), canonical text. */
  src?: string;
  /** IPv6 router preference: low, medium, high. */
  pref?: string;
  /** Route metrics (`mtu lock 1400`, `advmss 1360`, ...), name and value text, `lock` kept. */
  metrics?: { name: string; value: string; lock: boolean }[];
}

/** Route metric names in the kernel's RTAX order (the order `ip route` prints them in). */
export const ROUTE_METRIC_NAMES = [
  'mtu',
  'window',
  'rtt',
  'rttvar',
  'ssthresh',
  'cwnd',
  'advmss',
  'reordering',
  'hoplimit',
  'initcwnd',
  'features',
  'rto_min',
  'initrwnd',
  'quickack',
  'congctl',
  'fastopen_no_cookie',
] as const;

/** A route as given by a caller. */
export interface RouteSpec {
  /** "10.0.0.0/8", "default" (needs family), or a Prefix. Host bits set are an error. */
  prefix: string | Prefix;
  /** Needed only for prefix "default"/"all". */
  family?: Family;
  type?: RouteTypeName | RouteTypeCode;
  /** Lower wins. Default 0 for IPv4, 1024 for IPv6 (as Linux). */
  metric?: number;
  /** Table name or number; default main. */
  table?: string | number;
  dev?: string | null;
  via?: string | AddressBytes | null;
  onlink?: boolean;
  /** ECMP nexthops (instead of dev/via). */
  nexthops?: NexthopSpec[];
  /** Original iproute2 text to show for this route (kept when the Router keeps text). */
  text?: string;
  /** Attributes that do not change forwarding, kept for display. */
  attrs?: RouteAttrs;
}

/** A route as read back (control plane; allocates). */
export interface RouteInfo {
  id: number;
  table: number;
  tableName: string;
  prefix: Prefix;
  type: RouteTypeName;
  metric: number;
  nexthops: readonly Nexthop[];
  packets: number;
  bytes: number;
  text?: string;
  attrs?: RouteAttrs;
}

export interface IcmpError {
  /** ICMP type: 3 (v4 destination unreachable) or 1 (v6 destination unreachable). */
  readonly type: number;
  readonly code: number;
}

const V4_NET_UNREACH: IcmpError = Object.freeze({ type: 3, code: 0 });
const V4_HOST_UNREACH: IcmpError = Object.freeze({ type: 3, code: 1 });
const V4_ADMIN_PROHIBITED: IcmpError = Object.freeze({ type: 3, code: 13 });
const V6_NO_ROUTE: IcmpError = Object.freeze({ type: 1, code: 0 });
const V6_ADMIN_PROHIBITED: IcmpError = Object.freeze({ type: 1, code: 1 });

/**
 * The ICMP error Linux sends for a packet whose lookup ended in `type` (RouteType code; NONE or
 * THROW = no route). null = no ICMP: the packet is forwarded/delivered (unicast, local, ...) or
 * dropped silently (blackhole).
 *   no route:    v4 net unreachable (3/0),  v6 no route (1/0)
 *   unreachable: v4 host unreachable (3/1), v6 no route (1/0)
 *   prohibit:    v4 admin prohibited (3/13), v6 admin prohibited (1/1)
 *   blackhole:   silent drop
 * (Kernel: ip_error() maps -ENETUNREACH/-EHOSTUNREACH/-EACCES to these codes; ip6_pkt_drop()
 * uses ICMPV6_NOROUTE for unreachable and ICMPV6_ADM_PROHIBITED for prohibit.)
 * Returns shared frozen objects: no allocation.
 */
export function icmpForRouteType(type: number, family: Family): IcmpError | null {
  switch (type) {
    case RouteType.NONE:
    case RouteType.THROW:
      return family === 4 ? V4_NET_UNREACH : V6_NO_ROUTE;
    case RouteType.UNREACHABLE:
      return family === 4 ? V4_HOST_UNREACH : V6_NO_ROUTE;
    case RouteType.PROHIBIT:
      return family === 4 ? V4_ADMIN_PROHIBITED : V6_ADMIN_PROHIBITED;
    default:
      return null;
  }
}

/** True for route types whose packets are dropped (with or without ICMP). */
export function isRejectType(type: number): boolean {
  return (
    type === RouteType.NONE ||
    type === RouteType.BLACKHOLE ||
    type === RouteType.UNREACHABLE ||
    type === RouteType.PROHIBIT ||
    type === RouteType.THROW
  );
}
