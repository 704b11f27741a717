/** Route table: LPM tries, routes with metrics/types/ECMP, policy rules, iproute2 text. */
export { Router, RouteTable, RouteError, TABLE_MAIN, TABLE_LOCAL, TABLE_DEFAULT } from './router.ts';
export type { RouterOptions, RouteFilter } from './router.ts';
export { StrideTrie, V4_STRIDES_LARGE, V4_STRIDES_SMALL, V6_STRIDES } from './lpm/trie.ts';
export { Poptrie } from './lpm/poptrie.ts';
export { FlowKey } from './flow.ts';
export { Rule, parseRule, compileRule, parseProtocol, RuleTextError } from './rules.ts';
export type { RuleSpec, RuleAction } from './rules.ts';
export { RouteType, ROUTE_TYPE_NAMES, routeTypeCode, icmpForRouteType, isRejectType } from './types.ts';
export type { Nexthop, NexthopSpec, RouteSpec, RouteInfo, RouteTypeCode, RouteTypeName, IcmpError } from './types.ts';
export { parseRoutes, loadRoutes, RouteTextError } from './text/iproute2.ts';
export type { ParsedRoute, ParseOptions } from './text/iproute2.ts';
export { formatRoute, formatDestination, formatCidr, showRoutes, showRouteN, routeJson, showRoutesJson } from './text/show.ts';
export type { RouteJson } from './text/show.ts';
