/**
 * Applying a reload plan (reload-plan.ts) to a running endpoint through the data-plane boundary
 * operations (the Endpoint's addPeer, updatePeer, addRoute ...: each reaches the data plane
 * wherever it runs).
 *
 * First checked, with nothing changed yet: the new peers against the socket that runs (the
 * listen address stays until a restart), and the routes and rules by building them as a fresh
 * endpoint would. Then in two steps, so prefixes can move between peers and routes between
 * lines in one reload: what goes (peers removed, extra routes removed, changed peers cut down to
 * the prefixes they keep), then what comes (changed peers' new settings and prefixes, new
 * peers, new extra routes, the rule list). Peers the plan does not name are never touched.
 */
import { ConfigError, type Config, type PeerConfig } from '../config/config.ts';
import { PathError } from '../config/errors.ts';
import { checkPeerEndpoints } from '../config/normalize.ts';
import type { RuleSpec } from '../route/rules.ts';
import type { Router } from '../route/router.ts';
import type { RouteSpec } from '../route/types.ts';
import { buildRouters } from './config-routes.ts';
import type { PeerSpec, UnderlayAddress } from './dataplane.ts';
import type { ReloadPlan } from './reload-plan.ts';

/** What a reload acts on (Endpoint has it). */
export interface ReloadTarget {
  readonly peers: readonly ({ readonly name: string } | undefined)[];
  readonly router: Router;
  addPeer(spec: PeerSpec): number;
  removePeer(index: number): void;
  updatePeer(index: number, spec: PeerSpec): void;
  setPeerEndpoint(index: number, to: UnderlayAddress): void;
  addRoute(spec: RouteSpec): number;
  removeRoute(id: number): void;
  setRules(rules: readonly RuleSpec[]): void;
}

/** Throws a one-line ConfigError when `plan` cannot run next to the socket bound to `running.listen`. */
export function checkReload(plan: ReloadPlan, running: Config, source: string): void {
  try {
    checkPeerEndpoints(plan.effective.peers, running.listen);
    buildRouters(plan.effective);
  } catch (e) {
    const msg = e instanceof PathError ? `${e.path}: ${e.detail}` : (e as Error).message.split('\n')[0]!;
    throw new ConfigError(`${source}: ${msg}`, e instanceof PathError ? e.path : '');
  }
}

/** A config peer as the boundary takes it (`routes` to override its prefixes). */
export function peerSpec(p: PeerConfig, routes = p.routes): PeerSpec {
  return {
    name: p.name,
    routes,
    mtu: p.mtu,
    keepalive: p.keepalive,
    key: p.key,
    mss: p.mss,
    endpoint: { family: p.endpoint.family, address: p.endpoint.bytes, port: p.endpoint.port },
  };
}

export interface ApplyResult {
  /** Indices of the peers added. */
  added: number[];
  /** Extra routes the router refused (checkReload makes this rare): "line: why". */
  failed: string[];
}

/**
 * Apply a checked plan. `configRouteIds` maps the running config's extra route lines to their
 * route ids; it is kept up to date.
 */
export function applyReload(t: ReloadTarget, plan: ReloadPlan, configRouteIds: Map<string, number>): ApplyResult {
  const indexOf = (name: string): number => t.peers.findIndex((p) => p?.name === name);
  const endpointOnly = (what: string[]): boolean => what.length === 1 && what[0] === 'endpoint';
  // 1. what goes
  for (const p of plan.removed) {
    const i = indexOf(p.name);
    if (i >= 0) t.removePeer(i);
  }
  for (const r of plan.routesRemoved) {
    const id = configRouteIds.get(r.text);
    configRouteIds.delete(r.text);
    // (a route through a removed peer went with it)
    if (id !== undefined && t.router.isLive(id) && t.router.textOf(id) === r.text) t.removeRoute(id);
  }
  for (const ch of plan.changed) {
    const i = indexOf(ch.name);
    if (i < 0) continue;
    if (endpointOnly(ch.what)) t.setPeerEndpoint(i, peerSpec(ch.to).endpoint!);
    else if (ch.what.includes('routes')) t.updatePeer(i, { ...peerSpec(ch.from, ch.keptRoutes), endpoint: null });
  }
  // 2. what comes
  for (const ch of plan.changed) {
    const i = indexOf(ch.name);
    // the endpoint only when the file changed it: a peer that roamed (mobility) stays where it is
    if (i >= 0 && !endpointOnly(ch.what)) t.updatePeer(i, { ...peerSpec(ch.to), endpoint: ch.what.includes('endpoint') ? peerSpec(ch.to).endpoint : null });
  }
  const added = plan.added.map((p) => t.addPeer(peerSpec(p)));
  const failed: string[] = [];
  for (const r of plan.routesAdded) {
    try {
      configRouteIds.set(r.text, t.addRoute({ ...r.parsed, text: r.text }));
    } catch (e) {
      failed.push(`${r.text}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  if (plan.rules !== null) t.setRules(plan.rules.map((r) => r.parsed));
  return { added, failed };
}
