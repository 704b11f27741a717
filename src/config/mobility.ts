/**
 * The `mobility` section of the config, its zod shape and its normalisation, for the three roles
 * of src/mobility/ (wired into schema.ts's ConfigSchema and normalize.ts):
 *
 *   "mobility": {
 *     "homeAgent": {                      // this endpoint is a home agent
 *       "homePrefixes": ["10.77.0.0/16", "fd77::/64"],
 *       "maxBindings": 10000,             // default: the number of nodes
 *       "maxLifetime": 600, "bicastMs": 250, "freshness": 300,
 *       "rate": { "perSecond": 5, "burst": 10 }, "retryAfterMax": 60,
 *       "nodes": [{ "name": "laptop", "homeAddress": "10.77.0.5", "key": "hex:..." }]
 *     },
 *     "mobileNode": {                     // this endpoint is a mobile node
 *       "name": "laptop", "homeAddress": "10.77.0.5", "homeAgent": "ha",   // a peer: name or host:port
 *       "key": "hex:...", "lifetime": 600, "homeNetworks": ["10.77.0.0/24"],
 *       "backoff": { "initialMs": 1000, "firstRegistrationMs": 1500, "maxMs": 32000 },
 *       "monitor": true, "pollMs": 1000,
 *       "routeOptimisation": false,
 *       "correspondents": [{ "name": "cn", "endpoint": "198.51.100.9:6080", "key": "...", "padTo": 400 }]
 *     },
 *     "correspondent": {                  // this endpoint accepts route optimisation
 *       "probeSize": 1200,
 *       "nodes": [{ "name": "laptop", "homeAddress": "10.77.0.5", "key": "...", "routeOptimisation": true }]
 *     }
 *   }
 *
 * The normalised types below are shaped like the options of HomeAgent / MobileNode /
 * Correspondent (config cannot import mobility: same layer), so the endpoint passes them on:
 * `new HomeAgent({ name, ...config.mobility.homeAgent }, io, hooks)`.
 *
 * Checked against the rest of the config (MobilityContext): node and correspondent names are not
 * peer names (the endpoint gives each node a peer of that name), the mobile node's home agent is
 * one of the peers (its routes are what goes through the home agent) and shares the node's key,
 * and the mobile node owns its home address (an interface or stack address). Errors are
 * PathErrors with the full path ("mobility.homeAgent.nodes[3].homeAddress: ..."), like the rest
 * of the config.
 */
import { z } from 'zod';
import {
  AddressTextError,
  formatAddress,
  parseAddress,
  parseEndpoint,
  parsePrefix,
  prefixContains,
  type Family,
} from '../wire/address-text.ts';
import { DEFAULT_PORT } from '../transport/transport.ts';
import { fail, formatPath, PathError } from './errors.ts';
import { decodeKey } from './key.ts';
import type {
  CorrespondentConfig,
  HomeAgentConfig,
  MobileNodeConfig,
  MobilityAddress,
  MobilityConfig,
  MobilityEndpoint,
  MobilityNodeConfig,
  MobilityPrefix,
} from './types.ts';
import { bool, intIn, list, obj, str, strList } from './zod-helpers.ts';

export type {
  CorrespondentConfig,
  HomeAgentConfig,
  MobileNodeConfig,
  MobilityAddress,
  MobilityConfig,
  MobilityEndpoint,
  MobilityNodeConfig,
  MobilityPrefix,
};

/** RFC 6275 lifetimes: 4-second units in 16 bits. */
export const LIFETIME_MAX_S = 262_140;

const MobilityNodeSchema = obj({
  name: str('a node name').describe('The node\'s name (its sender id); the mobile node uses the same name'),
  homeAddress: str('an address').describe('The node\'s permanent address, e.g. "10.77.0.5"'),
  key: str('a hex or base64 key').describe('The key shared with this node only (>= 16 bytes)'),
  routeOptimisation: bool().optional().describe('Correspondent role: accept route optimisation from this node. Default false'),
});

export const HomeAgentSchema = obj({
  homePrefixes: strList('prefix').describe('Prefixes the home addresses come from'),
  nodes: list(MobilityNodeSchema, 'nodes').describe('The mobile nodes this home agent serves'),
  maxBindings: intIn(1, 10_000_000).optional().describe('Binding cache cap; beyond it updates get 130 + retry-after. Default: the number of nodes'),
  maxLifetime: intIn(4, LIFETIME_MAX_S).optional().describe('Longest lifetime granted, seconds. Default 600'),
  bicastMs: intIn(0, 60_000).optional().describe('After a move, copies still go to the old care-of this long, ms. Default 250'),
  freshness: intIn(0, 86_400).optional().describe('Replay counters further than this from our clock are refused, seconds (0 = off). Default 300'),
  rate: obj({ perSecond: intIn(0, 1000).optional(), burst: intIn(1, 10_000).optional() })
    .optional()
    .describe('Updates per second per node (0 = unlimited) and bucket size. Default 5 / 10'),
  retryAfterMax: intIn(1, 3600).optional().describe('Largest retry-after in a 130, seconds. Default 60'),
  keepalive: intIn(1, 3600)
    .optional()
    .describe('Send registered nodes a keepalive after this many idle seconds, so they notice a lost home agent (set it no longer than theirs). Default off'),
});

const CorrespondentPeerSchema = obj({
  name: str('a correspondent name'),
  endpoint: str('"host:port"').describe('Underlay address of the correspondent'),
  key: str('a hex or base64 key').describe('The key this node shares with that correspondent (not the home agent key)'),
  padTo: intIn(0, 9000).optional().describe('Pad binding updates to this many bytes (a third of its probe size). Default 0'),
});

export const MobileNodeSchema = obj({
  name: str('a node name').optional().describe('Our name as the home agent knows it. Default: interface.name'),
  homeAddress: str('an address'),
  homeAgent: str('a peer name or "host:port"').describe('The home agent: one of the peers, by name or by its endpoint'),
  key: str('a hex or base64 key').describe('Our key, shared with the home agent only'),
  lifetime: intIn(4, LIFETIME_MAX_S).optional().describe('Lifetime asked for, seconds (a multiple of 4). Default 600'),
  homeNetworks: strList('prefix').optional().describe('Underlay prefixes that mean "at home" (deregister there). Default none'),
  backoff: obj({
    initialMs: intIn(100, 60_000).optional(),
    firstRegistrationMs: intIn(100, 60_000).optional(),
    maxMs: intIn(1000, 600_000).optional(),
  })
    .optional()
    .describe('Retransmission bounds (RFC 6275: 1000 / 1500 / 32000 ms)'),
  freshness: intIn(0, 86_400).optional().describe('Ack counters further than this from our clock are refused, seconds (0 = off). Default 300'),
  routeOptimisation: bool().optional().describe('Register with the correspondents too. Default false'),
  correspondents: list(CorrespondentPeerSchema, 'correspondents').optional(),
  monitor: bool().optional().describe('Watch address and route changes (ip monitor) to re-register at once. Default true'),
  pollMs: intIn(50, 60_000).optional().describe('Also look at the underlay this often, ms. Default 1000'),
});

export const CorrespondentSchema = obj({
  nodes: list(MobilityNodeSchema, 'nodes'),
  maxBindings: intIn(1, 10_000_000).optional(),
  maxLifetime: intIn(4, LIFETIME_MAX_S).optional(),
  probeSize: intIn(64, 9000).optional().describe('Path challenges are padded to this many bytes. Default 1200'),
  challengeAttempts: intIn(1, 10).optional(),
  challengeTimeoutMs: intIn(100, 60_000).optional(),
});

export const MobilitySchema = obj({
  homeAgent: HomeAgentSchema.optional(),
  mobileNode: MobileNodeSchema.optional(),
  correspondent: CorrespondentSchema.optional(),
});

export type RawMobility = z.infer<typeof MobilitySchema>;
type RawMobilityNode = z.infer<typeof MobilityNodeSchema>;

/** For schema.ts's ALLOWED_KEYS ("did you mean"). */
export const MOBILITY_ALLOWED_KEYS: Record<string, readonly string[]> = {
  mobility: Object.keys(MobilitySchema.shape),
  'mobility.homeAgent': Object.keys(HomeAgentSchema.shape),
  'mobility.homeAgent.nodes[]': Object.keys(MobilityNodeSchema.shape),
  'mobility.homeAgent.rate': ['perSecond', 'burst'],
  'mobility.mobileNode': Object.keys(MobileNodeSchema.shape),
  'mobility.mobileNode.backoff': ['initialMs', 'firstRegistrationMs', 'maxMs'],
  'mobility.mobileNode.correspondents[]': Object.keys(CorrespondentPeerSchema.shape),
  'mobility.correspondent': Object.keys(CorrespondentSchema.shape),
  'mobility.correspondent.nodes[]': Object.keys(MobilityNodeSchema.shape),
};

/** A peer as the mobility checks see it. */
export interface MobilityPeerRef {
  name: string;
  endpoint: { family: Family; bytes: Uint8Array; port: number };
  key: Uint8Array | null;
}

export interface MobilityContext {
  /** Default mobile node name: the interface name. */
  name: string;
  /** The config's peers (whole-config checks); absent: the section is checked on its own. */
  peers?: readonly MobilityPeerRef[];
  /** Addresses this endpoint owns (interface and stack): the mobile node's home address must be one. */
  owned?: readonly MobilityAddress[];
  /** Names a node may not take (the interface, "stack"). */
  reserved?: readonly string[];
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;

function errText(e: unknown): string {
  return e instanceof AddressTextError ? e.message : String(e);
}

function unicast(family: Family, b: Uint8Array): boolean {
  if (family === 4) return b[0] !== 0 && b[0]! < 224;
  return !b.every((x) => x === 0) && b[0] !== 0xff;
}

function address(text: string, path: string): MobilityAddress {
  let a: MobilityAddress;
  try {
    a = parseAddress(text);
  } catch (e) {
    return fail(path, errText(e));
  }
  if (!unicast(a.family, a.bytes)) fail(path, `${formatAddress(a.bytes, 0, a.family)} is not a unicast address`);
  return { family: a.family, bytes: a.bytes };
}

function prefix(text: string, path: string): MobilityPrefix {
  try {
    const p = parsePrefix(text, 'error');
    return { text: text.trim(), family: p.family, bytes: p.bytes, length: p.length };
  } catch (e) {
    return fail(path, errText(e));
  }
}

function endpoint(text: string, path: string): MobilityEndpoint {
  let ep: ReturnType<typeof parseEndpoint>;
  try {
    ep = parseEndpoint(text, DEFAULT_PORT);
  } catch (e) {
    return fail(path, errText(e));
  }
  if (!unicast(ep.family, ep.bytes)) fail(path, `${formatAddress(ep.bytes, 0, ep.family)} is not a unicast address`);
  return { text: text.trim(), family: ep.family, bytes: ep.bytes, port: ep.port, host: formatAddress(ep.bytes, 0, ep.family) };
}

function addrKey(a: MobilityAddress): string {
  return `${a.family}/${Buffer.from(a.bytes).toString('hex')}`;
}

/** A node or correspondent name becomes a peer's name in the endpoint: it must be free. */
function notTaken(name: string, path: string, what: string, ctx: MobilityContext): void {
  if (ctx.reserved?.includes(name)) fail(path, `${what} name ${name} is reserved (the interface or the endpoint's stack)`);
  const i = ctx.peers?.findIndex((p) => p.name === name) ?? -1;
  if (i >= 0) fail(path, `${what} name ${name} is also peers[${i}].name (the endpoint gives each ${what} a peer of that name)`);
}

function sameAddress(a: { family: Family; bytes: Uint8Array }, b: { family: Family; bytes: Uint8Array }): boolean {
  return a.family === b.family && Buffer.from(a.bytes).equals(Buffer.from(b.bytes));
}

/** Nodes of a home agent or correspondent: unique names, home addresses and keys. */
function nodes(raw: readonly RawMobilityNode[], at: string, prefixes: MobilityPrefix[] | null, ctx: MobilityContext): MobilityNodeConfig[] {
  const names = new Map<string, number>();
  const homes = new Map<string, number>();
  const keys = new Map<string, number>();
  return raw.map((n, i) => {
    const p = `${at}[${i}]`;
    if (!NAME_RE.test(n.name)) fail(`${p}.name`, `invalid node name ${JSON.stringify(n.name)} (1-32 characters: letters, digits, _ . -, not starting with _ . -)`);
    const dupName = names.get(n.name);
    if (dupName !== undefined) fail(`${p}.name`, `duplicate node name ${n.name} (also ${at}[${dupName}])`);
    names.set(n.name, i);
    notTaken(n.name, `${p}.name`, 'node', ctx);
    const home = address(n.homeAddress, `${p}.homeAddress`);
    const homeText = formatAddress(home.bytes, 0, home.family);
    if (prefixes !== null && !prefixes.some((x) => prefixContains(x, home))) {
      fail(`${p}.homeAddress`, `${homeText} is outside the home prefixes (${prefixes.map((x) => x.text).join(', ')})`);
    }
    const dupHome = homes.get(addrKey(home));
    if (dupHome !== undefined) fail(`${p}.homeAddress`, `${homeText} is also the home address of ${at}[${dupHome}]`);
    homes.set(addrKey(home), i);
    const key = decodeKey(n.key, `${p}.key`);
    const kk = Buffer.from(key).toString('hex');
    const dupKey = keys.get(kk);
    if (dupKey !== undefined) fail(`${p}.key`, `same key as ${at}[${dupKey}] (every node needs its own key)`);
    keys.set(kk, i);
    return { name: n.name, home, key, routeOptimisation: n.routeOptimisation ?? false };
  });
}

/**
 * The mobile node's home agent: a peer named `text`, or the peer whose endpoint `text` is.
 * Without the peers (the section checked alone) any "host:port" will do (peer -1).
 */
function homeAgentOf(text: string, path: string, ctx: MobilityContext): { ha: MobilityEndpoint; peer: number } {
  const peers = ctx.peers;
  if (peers !== undefined) {
    const byName = peers.findIndex((p) => p.name === text.trim());
    if (byName >= 0) {
      const e = peers[byName]!.endpoint;
      const host = formatAddress(e.bytes, 0, e.family);
      return { ha: { text: text.trim(), family: e.family, bytes: e.bytes, port: e.port, host }, peer: byName };
    }
  }
  const ha = endpoint(text, path);
  if (peers === undefined) return { ha, peer: -1 };
  const peer = peers.findIndex((p) => p.endpoint.port === ha.port && sameAddress(p.endpoint, ha));
  if (peer < 0) {
    const names = peers.map((p) => p.name);
    fail(path, `${text.trim()} is no peer's name or endpoint (list the home agent in peers, with the routes to send through it${names.length ? `; peers: ${names.join(', ')}` : ''})`);
  }
  return { ha, peer };
}

/** Check and normalise a `mobility` section already accepted by MobilitySchema. */
export function normalizeMobility(raw: RawMobility | undefined, ctx: MobilityContext): MobilityConfig {
  if (raw === undefined) return { homeAgent: null, mobileNode: null, correspondent: null };
  if (raw.homeAgent && raw.mobileNode) {
    fail('mobility', 'homeAgent and mobileNode cannot both be set (an endpoint is a home agent or a mobile node)');
  }

  let homeAgent: HomeAgentConfig | null = null;
  if (raw.homeAgent) {
    const h = raw.homeAgent;
    const at = 'mobility.homeAgent';
    if (h.homePrefixes.length === 0) fail(`${at}.homePrefixes`, 'expected at least one prefix');
    const seen = new Map<string, number>();
    const homePrefixes = h.homePrefixes.map((t, i) => {
      const p = prefix(t, `${at}.homePrefixes[${i}]`);
      const k = `${addrKey(p)}/${p.length}`;
      if (seen.has(k)) fail(`${at}.homePrefixes[${i}]`, `duplicate prefix ${p.text} (also homePrefixes[${seen.get(k)}])`);
      seen.set(k, i);
      return p;
    });
    if (h.nodes.length === 0) fail(`${at}.nodes`, 'expected at least one node');
    const ns = nodes(h.nodes, `${at}.nodes`, homePrefixes, ctx);
    homeAgent = {
      homePrefixes,
      nodes: ns,
      maxBindings: h.maxBindings ?? ns.length,
      maxLifetime: h.maxLifetime ?? 600,
      bicastMs: h.bicastMs ?? 250,
      freshnessMs: (h.freshness ?? 300) * 1000,
      ratePerSecond: h.rate?.perSecond ?? 5,
      rateBurst: h.rate?.burst ?? 10,
      retryAfterMax: h.retryAfterMax ?? 60,
      keepalive: h.keepalive ?? null,
    };
  }

  let mobileNode: MobileNodeConfig | null = null;
  if (raw.mobileNode) {
    const m = raw.mobileNode;
    const at = 'mobility.mobileNode';
    const name = m.name ?? ctx.name;
    if (!NAME_RE.test(name)) fail(`${at}.name`, `invalid node name ${JSON.stringify(name)} (1-32 characters: letters, digits, _ . -, not starting with _ . -)`);
    const home = address(m.homeAddress, `${at}.homeAddress`);
    if (ctx.owned !== undefined && !ctx.owned.some((a) => sameAddress(a, home))) {
      fail(`${at}.homeAddress`, `${formatAddress(home.bytes, 0, home.family)} is neither an interface.address nor a stack.address (the node must own its home address)`);
    }
    const key = decodeKey(m.key, `${at}.key`);
    const { ha, peer: homeAgentPeer } = homeAgentOf(m.homeAgent, `${at}.homeAgent`, ctx);
    if (homeAgentPeer >= 0) {
      const pk = ctx.peers![homeAgentPeer]!.key;
      if (pk !== null && !Buffer.from(pk).equals(Buffer.from(key))) {
        fail(`peers[${homeAgentPeer}].key`, `differs from mobility.mobileNode.key (the home agent checks this node's messages with the node's key; leave it out)`);
      }
    }
    const lifetime = m.lifetime ?? 600;
    if (lifetime % 4 !== 0) fail(`${at}.lifetime`, `${lifetime} is not a multiple of 4 (lifetimes go in 4-second units)`);
    const homeNetworks = (m.homeNetworks ?? []).map((t, i) => prefix(t, `${at}.homeNetworks[${i}]`));
    const b = m.backoff ?? {};
    const backoff = { initialMs: b.initialMs ?? 1000, firstRegistrationMs: b.firstRegistrationMs ?? 1500, maxMs: b.maxMs ?? 32_000 };
    if (backoff.maxMs < Math.max(backoff.initialMs, backoff.firstRegistrationMs)) {
      fail(`${at}.backoff.maxMs`, `${backoff.maxMs} is below the initial wait (${Math.max(backoff.initialMs, backoff.firstRegistrationMs)} ms)`);
    }
    const cnNames = new Map<string, number>();
    const correspondents = (m.correspondents ?? []).map((c, i) => {
      const p = `${at}.correspondents[${i}]`;
      if (!NAME_RE.test(c.name)) fail(`${p}.name`, `invalid correspondent name ${JSON.stringify(c.name)}`);
      if (cnNames.has(c.name)) fail(`${p}.name`, `duplicate correspondent name ${c.name} (also correspondents[${cnNames.get(c.name)}])`);
      cnNames.set(c.name, i);
      notTaken(c.name, `${p}.name`, 'correspondent', ctx);
      const ck = decodeKey(c.key, `${p}.key`);
      if (Buffer.from(ck).equals(Buffer.from(key))) fail(`${p}.key`, 'same key as mobileNode.key (a correspondent needs its own key, never the home agent\'s)');
      return { name: c.name, endpoint: endpoint(c.endpoint, `${p}.endpoint`), key: ck, padTo: c.padTo ?? 0 };
    });
    if (m.routeOptimisation && correspondents.length === 0) {
      fail(`${at}.routeOptimisation`, 'true but no correspondents are listed');
    }
    mobileNode = {
      name,
      home,
      homeAgent: ha,
      homeAgentPeer,
      key,
      lifetime,
      homeNetworks,
      backoff,
      freshnessMs: (m.freshness ?? 300) * 1000,
      routeOptimisation: m.routeOptimisation ?? false,
      correspondents,
      monitor: m.monitor ?? true,
      pollMs: m.pollMs ?? 1000,
    };
  }

  let correspondent: CorrespondentConfig | null = null;
  if (raw.correspondent) {
    const c = raw.correspondent;
    const ns = nodes(c.nodes, 'mobility.correspondent.nodes', null, ctx);
    if (homeAgent !== null) {
      ns.forEach((n, i) => {
        if (homeAgent!.nodes.some((h) => h.name === n.name)) fail(`mobility.correspondent.nodes[${i}].name`, `${n.name} is also a homeAgent node (one peer per name)`);
      });
    }
    correspondent = {
      nodes: ns,
      maxBindings: c.maxBindings ?? Math.max(1, ns.length),
      maxLifetime: c.maxLifetime ?? 600,
      probeSize: c.probeSize ?? 1200,
      challengeAttempts: c.challengeAttempts ?? 3,
      challengeTimeoutMs: c.challengeTimeoutMs ?? 1000,
    };
  }
  return { homeAgent, mobileNode, correspondent };
}

/**
 * Shape + meaning of a bare `mobility` value (what the section would hold), errors as one
 * PathError with the full path. Once wired in, ConfigSchema checks the shape and this is unused.
 */
export function parseMobility(json: unknown, ctx: MobilityContext = { name: 'ipferry0' }): MobilityConfig {
  const shaped = MobilitySchema.safeParse(json, { reportInput: true });
  if (!shaped.success) {
    const issues = shaped.error.issues;
    const unknown = issues.find((i) => i.code === 'unrecognized_keys');
    if (unknown && unknown.code === 'unrecognized_keys') {
      const where = formatPath(['mobility', ...unknown.path]);
      const allowed = MOBILITY_ALLOWED_KEYS[where.replace(/\[\d+\]/g, '[]')] ?? [];
      throw new PathError(formatPath(['mobility', ...unknown.path, unknown.keys[0]!]), `unknown key (allowed: ${allowed.join(', ')})`);
    }
    const first = issues[0]!;
    const msg = first.code === 'invalid_type' && / got nothing$/.test(first.message) ? 'missing (required)' : first.message;
    throw new PathError(formatPath(['mobility', ...first.path]), msg);
  }
  return normalizeMobility(shaped.data, ctx);
}
