/**
 * What a config reload changes (SIGHUP, `ipferry reload`): the running config against the new
 * one, as a plan the endpoint applies through the data-plane boundary.
 *
 * Live (applied without touching other traffic):
 *   peers added, removed (by name), or changed in place: endpoint, routes, mtu, keepalive, key,
 *   MSS clamp (a peer renamed is one removed and one added); extra `routes` lines added and
 *   removed (by their text); the policy `rules` (replaced as a whole when they differ);
 *   the kernel routes through the TUN follow. `log` is the CLI's (level and format).
 * Needs a restart (reported, and the running value kept; everything else is still applied):
 *   interface (name, address, mtu), listen, stack addresses, hub, icmpRateLimit, kernelRoutes,
 *   control (path, group, mode), metrics, the mobility section.
 * Why apply the rest: a reload that also touched the listen address must not hold back a key
 * change made at the same time; the one "needs restart" line says what still waits.
 */
import type { Config, ConfigPrefix, ConfigRoute, ConfigRule, PeerConfig } from '../config/config.ts';
import { formatPrefix } from '../wire/address-text.ts';

export interface PeerChange {
  name: string;
  from: PeerConfig;
  to: PeerConfig;
  /** What changed: 'endpoint', 'routes', 'mtu', 'keepalive', 'key', 'mss'. */
  what: string[];
  /** The peer's prefixes that stay (routes changed: the first step keeps only these). */
  keptRoutes: ConfigPrefix[];
}

export interface ReloadPlan {
  /** The config to run from now on: the new one, with what needs a restart as it runs now. */
  effective: Config;
  /** One phrase per change that needs a restart: "listen 0.0.0.0:6080 -> 0.0.0.0:7000". */
  restart: string[];
  /** One phrase per change applied live: "peer far: endpoint 192.0.2.1:6080 -> 192.0.2.9:6080". */
  live: string[];
  removed: PeerConfig[];
  added: PeerConfig[];
  changed: PeerChange[];
  routesRemoved: ConfigRoute[];
  routesAdded: ConfigRoute[];
  /** The new rule list, or null when the rules did not change. */
  rules: ConfigRule[] | null;
}

const sameBytes = (a: Uint8Array | null, b: Uint8Array | null): boolean =>
  a === null || b === null ? a === b : a.length === b.length && a.every((x, i) => x === b[i]);

const endpointText = (p: PeerConfig): string => {
  const e = p.endpoint;
  const at = e.family === 6 ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
  return e.hostname !== null ? `${e.hostname} (${at})` : at;
};

/** A route or rule line as compared: whitespace folded. */
const lineKey = (text: string): string => text.trim().replace(/\s+/g, ' ');

/** A route as compared: its line and the peers its nexthops lead to ("via" resolves to a peer by its routes). */
const routeKey = (r: ConfigRoute): string => {
  const s = r.parsed;
  const devs = (s.nexthops && s.nexthops.length > 0 ? s.nexthops : [s]).map((h) => h.dev ?? '').join(',');
  return `${lineKey(r.text)}|${devs}`;
};

function peerChange(a: PeerConfig, b: PeerConfig): PeerChange | null {
  const what: string[] = [];
  const ea = a.endpoint;
  const eb = b.endpoint;
  if (ea.family !== eb.family || ea.port !== eb.port || !sameBytes(ea.bytes, eb.bytes)) what.push('endpoint');
  const ra = new Set(a.routes.map(formatPrefix));
  const rb = new Set(b.routes.map(formatPrefix));
  if (ra.size !== rb.size || [...ra].some((r) => !rb.has(r))) what.push('routes');
  if (a.mtu !== b.mtu) what.push('mtu');
  if (a.keepalive !== b.keepalive) what.push('keepalive');
  if (!sameBytes(a.key, b.key)) what.push('key');
  if ((a.mss?.v4 ?? 0) !== (b.mss?.v4 ?? 0) || (a.mss?.v6 ?? 0) !== (b.mss?.v6 ?? 0)) what.push('mss');
  if (what.length === 0) return null;
  return { name: a.name, from: a, to: b, what, keptRoutes: b.routes.filter((r) => ra.has(formatPrefix(r))) };
}

function describeChange(c: PeerChange): string {
  const parts: string[] = [];
  for (const w of c.what) {
    if (w === 'endpoint') parts.push(`endpoint ${endpointText(c.from)} -> ${endpointText(c.to)}`);
    else if (w === 'routes') {
      const from = new Set(c.from.routes.map(formatPrefix));
      const to = new Set(c.to.routes.map(formatPrefix));
      const plus = [...to].filter((r) => !from.has(r)).map((r) => `+${r}`);
      const minus = [...from].filter((r) => !to.has(r)).map((r) => `-${r}`);
      parts.push(`routes ${[...plus, ...minus].join(' ')}`);
    } else if (w === 'mtu') parts.push(`mtu ${c.from.mtu} -> ${c.to.mtu}`);
    else if (w === 'keepalive') parts.push(`keepalive ${c.from.keepalive ?? 'off'} -> ${c.to.keepalive ?? 'off'}`);
    else if (w === 'key') parts.push(c.to.key === null ? 'key removed' : c.from.key === null ? 'key set' : 'key changed');
    else if (w === 'mss') parts.push(`mss clamp ${c.from.mss?.v4 ?? 'off'}/${c.from.mss?.v6 ?? 'off'} -> ${c.to.mss?.v4 ?? 'off'}/${c.to.mss?.v6 ?? 'off'}`);
  }
  return `peer ${c.name}: ${parts.join(', ')}`;
}

const listenText = (l: Config['listen']): string => (l.host === null ? `all addresses, port ${l.port}` : l.family === 6 ? `[${l.host}]:${l.port}` : `${l.host}:${l.port}`);
const list = (xs: readonly { text: string }[]): string => (xs.length === 0 ? 'none' : xs.map((x) => x.text).join(' '));

/** A config section as comparable text (byte arrays as hex). */
const sectionKey = (v: unknown): string =>
  JSON.stringify(v ?? null, (_k, x: unknown) => (x instanceof Uint8Array ? Buffer.from(x).toString('hex') : x));

/** The fields that need a restart: name, how to show a value, and the two values' keys. */
function restartChanges(a: Config, b: Config): string[] {
  const out: string[] = [];
  const cmp = (what: string, x: string, y: string): void => {
    if (x !== y) out.push(`${what} ${x} -> ${y}`);
  };
  cmp('interface.name', a.interface.name, b.interface.name);
  cmp('interface.address', list(a.interface.address), list(b.interface.address));
  cmp('interface.mtu', String(a.interface.mtu), String(b.interface.mtu));
  cmp('listen', listenText(a.listen), listenText(b.listen));
  cmp('stack.address', list(a.stack.address), list(b.stack.address));
  cmp('hub', String(a.hub), String(b.hub));
  cmp('icmpRateLimit', `${a.icmpRateLimit.rate}/${a.icmpRateLimit.burst}`, `${b.icmpRateLimit.rate}/${b.icmpRateLimit.burst}`);
  cmp('kernelRoutes', String(a.kernelRoutes), String(b.kernelRoutes));
  cmp('control', String(a.control), String(b.control));
  cmp('control.group', String(a.controlGroup ?? 'none'), String(b.controlGroup ?? 'none'));
  cmp('control.mode', a.controlMode.toString(8), b.controlMode.toString(8));
  cmp('metrics', a.metrics === null ? 'off' : listenText(a.metrics), b.metrics === null ? 'off' : listenText(b.metrics));
  if (sectionKey(a.mobility) !== sectionKey(b.mobility)) out.push('mobility (changed)');
  return out;
}

/** The plan from the running config `a` to the new config `b` (both resolved). */
export function planReload(a: Config, b: Config): ReloadPlan {
  const restart = restartChanges(a, b);
  const effective: Config = {
    ...b,
    interface: a.interface,
    listen: a.listen,
    stack: a.stack,
    hub: a.hub,
    icmpRateLimit: a.icmpRateLimit,
    kernelRoutes: a.kernelRoutes,
    control: a.control,
    controlGroup: a.controlGroup,
    controlMode: a.controlMode,
    metrics: a.metrics,
    mobility: a.mobility,
  };
  const live: string[] = [];
  const before = new Map(a.peers.map((p) => [p.name, p]));
  const after = new Map(b.peers.map((p) => [p.name, p]));
  const removed = a.peers.filter((p) => !after.has(p.name));
  const added = b.peers.filter((p) => !before.has(p.name));
  const changed: PeerChange[] = [];
  for (const p of b.peers) {
    const old = before.get(p.name);
    const c = old === undefined ? null : peerChange(old, p);
    if (c !== null) changed.push(c);
  }
  for (const p of removed) live.push(`peer ${p.name} removed`);
  for (const c of changed) live.push(describeChange(c));
  for (const p of added) live.push(`peer ${p.name} added (${endpointText(p)}${p.routes.length > 0 ? `, routes ${p.routes.map((r) => r.text).join(' ')}` : ''})`);

  const oldRoutes = new Set(a.routes.map(routeKey));
  const newRoutes = new Set(b.routes.map(routeKey));
  const routesRemoved = a.routes.filter((r) => !newRoutes.has(routeKey(r)));
  const routesAdded = b.routes.filter((r) => !oldRoutes.has(routeKey(r)));
  for (const r of routesRemoved) live.push(`route removed: ${r.text}`);
  for (const r of routesAdded) live.push(`route added: ${r.text}`);

  const rulesSame = a.rules.length === b.rules.length && a.rules.every((r, i) => lineKey(r.text) === lineKey(b.rules[i]!.text));
  const rules = rulesSame ? null : b.rules;
  if (rules !== null) live.push(`rules replaced (${rules.length === 0 ? 'none' : rules.map((r) => r.text).join('; ')})`);
  return { effective, restart, live, removed, added, changed, routesRemoved, routesAdded, rules };
}
