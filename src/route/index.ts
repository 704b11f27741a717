/**
 * The route layer as its users see it: the Router facade (routes with metrics/types/ECMP in
 * tables behind policy rules; router.ts lists the parts behind it), the AllowedIPs-style source
 * check, the LPM structures on their own, and iproute2 text in and out. The parts behind the
 * facade (store, nexthops, table maintenance, policy, lookup, flow key) are not exported here.
 */
export { Router, BATCH_MAX, TABLE_MAIN, TABLE_LOCAL, TABLE_DEFAULT } from './router.ts';
export type { RouterOptions, RouteFilter, RouteTable } from './router.ts';
export { AllowedSources } from './allowed.ts';
export { StrideTrie, V4_STRIDES_LARGE, V4_STRIDES_SMALL, V6_STRIDES } from './lpm/trie.ts';
export { Poptrie } from './lpm/poptrie.ts';
export { Rule, parseRule, compileRule, parseProtocol, RuleTextError } from './rules.ts';
export type { RuleSpec, RuleAction } from './rules.ts';
export { RouteError, RouteType, ROUTE_TYPE_NAMES, routeTypeCode, icmpForRouteType, isRejectType } from './types.ts';
export type { Nexthop, NexthopSpec, RouteSpec, RouteInfo, RouteTypeCode, RouteTypeName, IcmpError } from './types.ts';
export { parseRoutes, loadRoutes, RouteTextError } from './text/iproute2.ts';
export type { ParsedRoute, ParseOptions } from './text/iproute2.ts';
export { formatRoute, formatDestination, formatCidr, showRoutes, showRouteN, routeJson, showRoutesJson } from './text/show.ts';
export type { RouteJson } from './text/show.ts';
