/**
 * The ipferry config file: a strict zod schema for its shape, then semantic checks (addresses,
 * duplicates, overlaps, MTU rules), normalized into `Config` with parsed address bytes beside the
 * original text so the endpoint never parses text again.
 *
 * Every error is a ConfigError whose message is ONE line naming the file and the path:
 *   config.json: peers[1].routes[0]: host bits set in 192.168.20.1/24
 *
 * Defaults (all keys but interface.name and peers[].name/endpoint are optional):
 *   interface.address  []              interface.mtu   1400
 *   listen             all addresses (dual-stack "::"), port DEFAULT_PORT (6080, GUE's port)
 *   stack.address      []              peers           []
 *   peers[].routes     []              peers[].mtu     interface.mtu
 *   peers[].keepalive  off             peers[].key     none
 *   routes, rules      []              mssClamp        true (derive from each peer's MTU)
 *   icmpRateLimit      { rate: 1000, burst: 50 }   (Linux's icmp_msgs_per_sec / icmp_msgs_burst)
 *   hub                false           kernelRoutes    true
 *   control            /run/ipferry/<interface>.sock (/run/ipferry/<netns>/<interface>.sock inside a
 *                      named network namespace), or $TMPDIR/ipferry-<uid>[-<netns>]/<interface>.sock
 *                      when /run is not writable; false = no control socket
 *   log                "info"
 */
import { accessSync, constants as fsConstants, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import {
  AddressTextError,
  formatAddress,
  parseEndpoint,
  parsePrefix,
  prefixContains,
  type Family,
} from '../wire/address-text.ts';
import { DEFAULT_PORT } from '../transport/udp-transport.ts';
import { IPV4_MIN_DATAGRAM, IPV6_MIN_MTU } from '../wire/ip.ts';
import { JsonSyntaxError, parseJson } from './json-parse.ts';
import { LOG_LEVELS, type LogLevel } from '../control/log.ts';
import { checkRouteLine, checkRuleLine, type ParsedRouteLine, type ParsedRuleLine } from './route-lines.ts';

export { DEFAULT_PORT };

// ---------------------------------------------------------------------------------------------
// Normalized config (what the endpoint consumes)

/** An interface or stack address: host bits kept (10.0.0.1/30 means address 10.0.0.1 on a /30). */
export interface ConfigAddress {
  /** As written in the file, trimmed. */
  text: string;
  family: Family;
  /** 4 or 16 bytes, network order. */
  bytes: Uint8Array;
  /** Prefix length (32/128 when the text had none). */
  length: number;
}

/** A route prefix (peer routes): host bits are zero. */
export interface ConfigPrefix {
  text: string;
  family: Family;
  bytes: Uint8Array;
  length: number;
}

/** A peer's underlay endpoint. */
export interface ConfigEndpoint {
  text: string;
  family: Family;
  bytes: Uint8Array;
  port: number;
  /** Canonical address text (RFC 5952 for IPv6), ready for dgram send/bind. */
  host: string;
}

/** Where the UDP socket binds. */
export interface ConfigListen {
  /** As written; null when `listen` was omitted. */
  text: string | null;
  /** null = all addresses (bind "::" dual-stack). */
  family: Family | null;
  bytes: Uint8Array | null;
  /** Canonical address text, or null for all addresses. */
  host: string | null;
  port: number;
}

export interface PeerConfig {
  name: string;
  endpoint: ConfigEndpoint;
  /** Prefixes behind the peer: routed to it, and the inner sources accepted from it. */
  routes: ConfigPrefix[];
  /** Path MTU of the tunnel toward this peer (largest inner packet); default interface.mtu. */
  mtu: number;
  /** Keepalive interval in seconds; null = off. */
  keepalive: number | null;
  /** Pre-shared key (>= 16 bytes) for the HMAC-SHA256 on control messages; null = none. */
  key: Uint8Array | null;
  /** TCP MSS to clamp SYNs to toward/from this peer, per inner family; null = no clamping. */
  mss: { v4: number; v6: number } | null;
}

export interface ConfigRoute {
  /** The line as written (ip route syntax, without the leading "ip route add"). */
  text: string;
  /** The route parser's result. */
  parsed: ParsedRouteLine;
}

export interface ConfigRule {
  /** The line as written (ip rule syntax, without the leading "ip rule add"). */
  text: string;
  parsed: ParsedRuleLine;
}

export interface Config {
  /** File name (as given) or "<config>": prefix for messages. */
  source: string;
  interface: { name: string; address: ConfigAddress[]; mtu: number };
  listen: ConfigListen;
  stack: { address: ConfigAddress[] };
  peers: PeerConfig[];
  routes: ConfigRoute[];
  rules: ConfigRule[];
  /** 'auto' = derive from each peer's MTU; a number = upper bound for the MSS; false = off. */
  mssClamp: 'auto' | number | false;
  /** ICMP error token bucket: tokens per second (0 = send no ICMP errors) and bucket size. */
  icmpRateLimit: { rate: number; burst: number };
  /** Forward packets from one peer to another (decrementing TTL / hop limit). */
  hub: boolean;
  /** Add a kernel route through the TUN for every peer route (and remove them on stop). */
  kernelRoutes: boolean;
  /** Control socket path; null = no control socket. */
  control: string | null;
  log: LogLevel;
}

export const DEFAULTS = Object.freeze({
  mtu: 1400,
  mssClamp: true,
  icmpRate: 1000,
  icmpBurst: 50,
  hub: false,
  kernelRoutes: true,
  log: 'info' as LogLevel,
  port: DEFAULT_PORT,
});

export const MTU_MIN_V4 = IPV4_MIN_DATAGRAM;
export const MTU_MIN_V6 = IPV6_MIN_MTU;
export const MTU_MAX = 65535;
export const KEY_MIN_BYTES = 16;
/** sun_path is 108 bytes with the terminating NUL. */
export const SOCKET_PATH_MAX = 107;

// ---------------------------------------------------------------------------------------------
// Errors

export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    message: string,
    /** The path inside the config ("peers[1].routes[0]"), '' for the whole file. */
    readonly path = '',
  ) {
    super(message);
  }
}

/** Thrown by the semantic checks; turned into a ConfigError with the source prefix. */
class PathError extends Error {
  constructor(
    readonly path: string,
    readonly detail: string,
  ) {
    super(detail);
  }
}

function fail(path: string, detail: string): never {
  throw new PathError(path, detail);
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Schema (shape, types and ranges)

const typeName = (v: unknown): string =>
  v === undefined ? 'nothing' : v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;

const intIn = (min: number, max: number) =>
  z
    .number({ error: (i) => `expected an integer ${min}-${max}, got ${typeName(i.input)}` })
    .int({ error: (i) => `expected an integer ${min}-${max}, got ${typeName(i.input)}` })
    .min(min, { error: (i) => `${String(i.input)} is out of range (${min}-${max})` })
    .max(max, { error: (i) => `${String(i.input)} is out of range (${min}-${max})` });

const str = (what: string) =>
  z.string({ error: (i) => `expected ${what}, got ${typeName(i.input)}` });

const strList = (what: string, plural = `${what}s`) =>
  z.array(str(what === 'address' ? 'an address' : `a ${what}`), {
    error: (i) => `expected an array of ${plural}, got ${typeName(i.input)}`,
  });

const bool = () => z.boolean({ error: (i) => `expected true or false, got ${typeName(i.input)}` });

const obj = <T extends z.core.$ZodLooseShape>(shape: T) =>
  z.strictObject(shape, { error: (i) => `expected an object, got ${typeName(i.input)}` });

const InterfaceSchema = obj({
  name: str('an interface name').describe('TUN device name (1-15 characters); also names the control socket'),
  address: strList('address', 'addresses')
    .optional()
    .describe('Addresses of the TUN device, host bits kept: ["10.0.0.1/30", "fd00::1/64"]. Default none'),
  mtu: intIn(MTU_MIN_V4, MTU_MAX)
    .optional()
    .describe('TUN MTU, 576-65535 (at least 1280 when any IPv6 is configured). Default 1400'),
});

const PeerSchema = obj({
  name: str('a peer name').describe('Unique peer name (1-32 characters: letters, digits, _ . -)'),
  endpoint: str('"host:port"').describe('Underlay address of the peer: "203.0.113.20:6080" or "[2001:db8::20]:6080"'),
  routes: strList('prefix')
    .optional()
    .describe('Prefixes behind the peer (no host bits): routed to it, and the inner sources accepted from it'),
  mtu: intIn(MTU_MIN_V4, MTU_MAX).optional().describe('Path MTU of the tunnel toward this peer. Default interface.mtu'),
  keepalive: intIn(1, 3600).optional().describe('Keepalive interval in seconds (1-3600), for NAT. Default off'),
  key: str('a hex or base64 key')
    .optional()
    .describe('Pre-shared key, >= 16 bytes: hex, base64, or "hex:..." / "base64:...". Authenticates control messages'),
});

export const ConfigSchema = obj({
  /** Allowed for editors' JSON-schema support; ignored. */
  $schema: z.string().optional(),
  interface: InterfaceSchema.describe('The TUN device'),
  listen: z
    .union([z.string(), z.number()], {
      error: (i) => `expected "host:port", "host", ":port" or a port number, got ${typeName(i.input)}`,
    })
    .optional()
    .describe('UDP bind address: "host:port", "host" (port 6080), ":port" or a port (all addresses). Default all, 6080'),
  stack: obj({ address: strList('address', 'addresses').optional() })
    .optional()
    .describe("The endpoint's own stack: addresses it answers ping on and offers UDP sockets for"),
  peers: z
    .array(PeerSchema, { error: (i) => `expected an array of peers, got ${typeName(i.input)}` })
    .optional()
    .describe('Tunnel peers. Default none'),
  routes: strList('route line')
    .optional()
    .describe('Extra routes in ip route syntax, e.g. "unreachable 10.99.0.0/16". Default none'),
  rules: strList('rule line')
    .optional()
    .describe('Policy rules in ip rule syntax, e.g. "from 192.168.10.0/24 lookup 100". Default none'),
  mssClamp: z
    .union([z.boolean(), intIn(536, 65495)], {
      error: (i) =>
        typeof i.input === 'number'
          ? `expected true, false or an MSS 536-65495, got ${i.input}`
          : `expected true, false or an MSS 536-65495, got ${typeName(i.input)}`,
    })
    .optional()
    .describe('Clamp TCP MSS on SYNs: true = from each peer MTU (MTU-40 / MTU-60), a number = at most that, false = off. Default true'),
  icmpRateLimit: obj({
    rate: intIn(0, 1_000_000).optional().describe('ICMP errors per second (0 = none). Default 1000'),
    burst: intIn(1, 1_000_000).optional().describe('Bucket size. Default 50'),
  })
    .optional()
    .describe('Token bucket for the ICMP errors the endpoint sends'),
  hub: bool().optional().describe('Forward packets from one peer to another. Default false'),
  kernelRoutes: bool().optional().describe('Route each peer prefix into the TUN (removed on stop). Default true'),
  control: z
    .union([z.string().min(1, { error: 'expected a socket path or false, got an empty string' }), z.literal(false)], {
      error: (i) => `expected a socket path or false, got ${typeName(i.input)}`,
    })
    .optional()
    .describe('Control socket path, or false for none. Default /run/ipferry/<interface>.sock'),
  log: z
    .enum(LOG_LEVELS as [LogLevel, ...LogLevel[]], {
      error: (i) => `expected one of ${LOG_LEVELS.join(', ')}, got ${typeName(i.input)}`,
    })
    .optional()
    .describe('Log level: error, warn, info, debug. Default info'),
});

/**
 * The config's JSON Schema (draft 2020-12), for editors: examples/ipferry.schema.json. Regenerate:
 *   npx tsx -e "import('./src/config/config.ts').then(m => console.log(JSON.stringify(m.configJsonSchema(), null, 2)))" > examples/ipferry.schema.json
 */
export function configJsonSchema(): Record<string, unknown> {
  return { ...z.toJSONSchema(ConfigSchema), title: 'ipferry endpoint config' };
}

export type RawConfig = z.infer<typeof ConfigSchema>;

/** Allowed keys per object path (for "did you mean" on unknown keys). */
const ALLOWED_KEYS: Record<string, readonly string[]> = {
  '': Object.keys(ConfigSchema.shape),
  interface: Object.keys(InterfaceSchema.shape),
  'peers[]': Object.keys(PeerSchema.shape),
  stack: ['address'],
  icmpRateLimit: ['rate', 'burst'],
};

function editDistance(a: string, b: string): number {
  const d: number[] = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1));
      prev = tmp;
    }
  }
  return d[b.length]!;
}

function unknownKeyMessage(path: readonly PropertyKey[], key: string): PathError {
  const at = formatPath([...path, key]);
  const allowed = ALLOWED_KEYS[formatPath(path).replace(/\[\d+\]/g, '[]')] ?? [];
  let best: string | undefined;
  let bestD = 3;
  for (const k of allowed) {
    const dist = editDistance(key, k);
    if (dist < bestD) {
      bestD = dist;
      best = k;
    }
  }
  return new PathError(at, best ? `unknown key (did you mean "${best}"?)` : `unknown key (allowed: ${allowed.filter((k) => k !== '$schema').join(', ')})`);
}

function shapeError(issues: readonly z.core.$ZodIssue[]): PathError {
  // An unknown key first: a misspelled key often causes a "missing" error elsewhere.
  const unknown = issues.find((i) => i.code === 'unrecognized_keys');
  if (unknown && unknown.code === 'unrecognized_keys') return unknownKeyMessage(unknown.path, unknown.keys[0]!);
  const first = issues[0]!;
  let msg = first.message;
  if (first.code === 'invalid_type' && / got nothing$/.test(msg)) msg = 'missing (required)';
  if (first.path.length === 0 && first.code === 'invalid_type') msg = `expected a JSON object at the top level, got ${msg.replace(/^.*, got /, '')}`;
  return new PathError(formatPath(first.path), msg);
}

// ---------------------------------------------------------------------------------------------
// Semantic helpers

const IFNAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;
const PEER_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;

function addrErr(e: unknown): string {
  return e instanceof AddressTextError ? e.message : String(e);
}

function parseAddr(text: string, path: string): ConfigAddress {
  try {
    const p = parsePrefix(text, 'keep');
    return { text: text.trim(), family: p.family, bytes: p.bytes, length: p.length };
  } catch (e) {
    return fail(path, addrErr(e));
  }
}

function parseRoutePrefix(text: string, path: string): ConfigPrefix {
  try {
    const p = parsePrefix(text, 'error');
    return { text: text.trim(), family: p.family, bytes: p.bytes, length: p.length };
  } catch (e) {
    return fail(path, addrErr(e));
  }
}

/** IPv4-mapped IPv6 addresses compare (and send) as IPv4. */
function unmap(family: Family, bytes: Uint8Array): { family: Family; bytes: Uint8Array } {
  if (family === 6 && bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
    return { family: 4, bytes: bytes.slice(12) };
  }
  return { family, bytes };
}

function isUnicast(family: Family, b: Uint8Array): boolean {
  if (family === 4) {
    if (b[0] === 0 || b[0]! >= 224) return false; // 0/8, multicast, class E, broadcast
    return true;
  }
  if (b.every((x) => x === 0)) return false; // ::
  if (b[0] === 0xff) return false; // multicast
  return true;
}

function parsePeerEndpoint(text: string, path: string): ConfigEndpoint {
  let ep: ReturnType<typeof parseEndpoint>;
  try {
    ep = parseEndpoint(text);
  } catch (e) {
    return fail(path, addrErr(e));
  }
  const u = unmap(ep.family, ep.bytes);
  const host = formatAddress(u.bytes, 0, u.family);
  if (!isUnicast(u.family, u.bytes)) fail(path, `${host} is not a unicast address`);
  return { text: text.trim(), family: u.family, bytes: u.bytes, port: ep.port, host };
}

function parseListen(raw: string | number | undefined): ConfigListen {
  if (raw === undefined) return { text: null, family: null, bytes: null, host: null, port: DEFAULT_PORT };
  const text = String(raw).trim();
  let portText: string | null = null;
  if (typeof raw === 'number' || /^\d+$/.test(text)) portText = text;
  else if (/^:\d*$/.test(text)) portText = text.slice(1);
  if (portText !== null) {
    const port = Number(portText);
    if (!/^\d{1,5}$/.test(portText) || !Number.isInteger(port) || port < 1 || port > 65535) {
      fail('listen', `port out of range in ${text} (1-65535)`);
    }
    return { text, family: null, bytes: null, host: null, port };
  }
  let ep: ReturnType<typeof parseEndpoint>;
  try {
    ep = parseEndpoint(text, DEFAULT_PORT);
  } catch (e) {
    return fail('listen', addrErr(e));
  }
  const u = unmap(ep.family, ep.bytes);
  if (u.family === 4 ? u.bytes[0]! >= 224 : u.bytes[0] === 0xff) {
    fail('listen', `${formatAddress(u.bytes, 0, u.family)} is a multicast address`);
  }
  return { text, family: u.family, bytes: u.bytes, host: formatAddress(u.bytes, 0, u.family), port: ep.port };
}

const HEX_RE = /^[0-9a-fA-F]+$/;
const B64_RE = /^[A-Za-z0-9+/]*={0,2}$/;
const B64URL_RE = /^[A-Za-z0-9_-]*={0,2}$/;

/**
 * A pre-shared key: "hex:..." or "base64:...", or bare text that is taken as hex when it is an
 * even number of hex digits and as (standard or URL-safe) base64 otherwise.
 */
export function decodeKey(text: string, path = 'key'): Uint8Array {
  let t = text.trim();
  let kind: 'hex' | 'base64' | null = null;
  if (/^hex:/i.test(t)) {
    kind = 'hex';
    t = t.slice(4);
  } else if (/^base64:/i.test(t)) {
    kind = 'base64';
    t = t.slice(7);
  } else if (HEX_RE.test(t) && t.length % 2 === 0) kind = 'hex';
  else kind = 'base64';
  let bytes: Uint8Array;
  if (kind === 'hex') {
    if (!HEX_RE.test(t) || t.length % 2 !== 0) fail(path, 'key is not valid hex (an even number of hex digits)');
    bytes = Uint8Array.from(Buffer.from(t, 'hex'));
  } else {
    const std = B64_RE.test(t);
    if ((!std && !B64URL_RE.test(t)) || t.replace(/=+$/, '').length % 4 === 1) {
      fail(path, 'key is neither hex nor base64');
    }
    bytes = Uint8Array.from(Buffer.from(t, std ? 'base64' : 'base64url'));
  }
  if (bytes.length < KEY_MIN_BYTES) {
    fail(path, `key too short (${bytes.length} bytes, need at least ${KEY_MIN_BYTES})`);
  }
  return bytes;
}

function prefixKey(family: Family, bytes: Uint8Array, length: number): string {
  return `${family}/${Buffer.from(bytes).toString('hex')}/${length}`;
}

// ---------------------------------------------------------------------------------------------
// Control socket location

/**
 * The name of the network namespace we run in when it is a named one (`ip netns exec NAME`),
 * else null. /run is shared across such namespaces, so two endpoints with the same interface
 * name in two namespaces (the site-to-site example) need different sockets.
 * (Found by matching our /proc/self/ns/net inode against /run/netns/*, as `ip netns identify`.)
 */
export function netnsTag(): string | null {
  let ino: number;
  let names: string[];
  try {
    ino = statSync('/proc/self/ns/net').ino;
    names = readdirSync('/run/netns');
  } catch {
    return null;
  }
  for (const name of names) {
    try {
      if (/^[\w.-]+$/.test(name) && statSync(join('/run/netns', name)).ino === ino) return name;
    } catch {
      /* a stale entry */
    }
  }
  return null;
}

/** /run/ipferry, or /run/ipferry/<netns> inside a network namespace. */
export function runSocketDir(tag = netnsTag()): string {
  return tag === null ? '/run/ipferry' : `/run/ipferry/${tag}`;
}

/** The per-user fallback directory when /run is not writable: $TMPDIR/ipferry-<uid>[-<netns>]. */
export function fallbackSocketDir(tag = netnsTag()): string {
  const uid = process.getuid?.() ?? 0;
  return join(tmpdir(), `ipferry-${uid}${tag === null ? '' : `-${tag}`}`);
}

function writableDir(dir: string): boolean {
  try {
    if (existsSync(dir)) {
      if (!statSync(dir).isDirectory()) return false;
      accessSync(dir, fsConstants.W_OK | fsConstants.X_OK);
      return true;
    }
    return dir === '/' ? false : writableDir(dirname(dir));
  } catch {
    return false;
  }
}

/**
 * Default control socket: /run/ipferry/NAME.sock (in a network namespace:
 * /run/ipferry/NETNS/NAME.sock), or under fallbackSocketDir() when /run is not writable.
 */
export function defaultSocketPath(ifname: string): string {
  const tag = netnsTag();
  const run = runSocketDir(tag);
  if (writableDir(run)) return `${run}/${ifname}.sock`;
  return join(fallbackSocketDir(tag), `${ifname}.sock`);
}

/** Where a client looks for an interface's socket, in order. */
export function socketPathCandidates(ifname: string): string[] {
  const tag = netnsTag();
  return [`${runSocketDir(tag)}/${ifname}.sock`, join(fallbackSocketDir(tag), `${ifname}.sock`)];
}

// ---------------------------------------------------------------------------------------------
// parse / load

export interface ParseOptions {
  /** Relative control paths resolve against this (loadConfig: the config file's directory). */
  baseDir?: string;
}

/** Validate a parsed JSON value; throws ConfigError with a one-line message. */
export function parseConfig(json: unknown, source = '<config>', opts: ParseOptions = {}): Config {
  try {
    return normalize(json, source, opts);
  } catch (e) {
    if (e instanceof PathError) {
      throw new ConfigError(`${source}: ${e.path ? `${e.path}: ` : ''}${e.detail}`, e.path);
    }
    throw e;
  }
}

/** Read, parse and validate a config file; throws ConfigError with a one-line message. */
export function loadConfig(path: string): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'is a directory'
            : ((e as Error).message ?? String(e));
    throw new ConfigError(`${path}: ${why}`);
  }
  let json: unknown;
  try {
    json = parseJson(text);
  } catch (e) {
    if (e instanceof JsonSyntaxError) {
      throw new ConfigError(`${path}: line ${e.line}, column ${e.column}: JSON syntax error: ${e.reason}`);
    }
    throw e;
  }
  return parseConfig(json, path, { baseDir: dirname(resolve(path)) });
}

function normalize(json: unknown, source: string, opts: ParseOptions): Config {
  const shaped = ConfigSchema.safeParse(json, { reportInput: true });
  if (!shaped.success) throw shapeError(shaped.error.issues);
  const raw = shaped.data;

  // --- interface
  const ifname = raw.interface.name;
  if (!IFNAME_RE.test(ifname) || ifname === '.' || ifname === '..') {
    fail('interface.name', `invalid interface name ${JSON.stringify(ifname)} (1-15 characters: letters, digits, _ . -)`);
  }
  const seenAddr = new Map<string, string>();
  const addAddr = (a: ConfigAddress, path: string): void => {
    const k = prefixKey(a.family, a.bytes, a.family === 4 ? 32 : 128);
    const prev = seenAddr.get(k);
    if (prev !== undefined) fail(path, `${formatAddress(a.bytes, 0, a.family)} is also ${prev}`);
    seenAddr.set(k, path);
  };
  const ifAddrs = (raw.interface.address ?? []).map((t, i) => {
    const a = parseAddr(t, `interface.address[${i}]`);
    addAddr(a, `interface.address[${i}]`);
    return a;
  });
  const stackAddrs = (raw.stack?.address ?? []).map((t, i) => {
    const a = parseAddr(t, `stack.address[${i}]`);
    addAddr(a, `stack.address[${i}]`);
    return a;
  });
  const mtu = raw.interface.mtu ?? DEFAULTS.mtu;

  // --- listen
  const listen = parseListen(raw.listen);

  // --- peers
  const mssClamp: Config['mssClamp'] =
    raw.mssClamp === undefined || raw.mssClamp === true ? 'auto' : raw.mssClamp === false ? false : raw.mssClamp;
  const peersRaw = raw.peers ?? [];
  const names = new Map<string, number>();
  const endpoints = new Map<string, number>();
  const owners = new Map<string, string>(); // prefix key -> "peers[i].routes[j]"
  const peers: PeerConfig[] = peersRaw.map((p, i) => {
    const at = `peers[${i}]`;
    if (!PEER_NAME_RE.test(p.name)) {
      fail(`${at}.name`, `invalid peer name ${JSON.stringify(p.name)} (1-32 characters: letters, digits, _ . -, not starting with _ . -)`);
    }
    const dupName = names.get(p.name);
    if (dupName !== undefined) fail(`${at}.name`, `duplicate peer name ${p.name} (also peers[${dupName}])`);
    names.set(p.name, i);

    const endpoint = parsePeerEndpoint(p.endpoint, `${at}.endpoint`);
    const epKey = `${prefixKey(endpoint.family, endpoint.bytes, 0)}:${endpoint.port}`;
    const epText = endpoint.family === 6 ? `[${endpoint.host}]:${endpoint.port}` : `${endpoint.host}:${endpoint.port}`;
    const dupEp = endpoints.get(epKey);
    if (dupEp !== undefined) {
      fail(`${at}.endpoint`, `duplicate endpoint ${epText} (also peers[${dupEp}], ${peersRaw[dupEp]!.name})`);
    }
    endpoints.set(epKey, i);
    if (
      listen.bytes !== null &&
      listen.family === endpoint.family &&
      listen.port === endpoint.port &&
      Buffer.from(listen.bytes).equals(Buffer.from(endpoint.bytes))
    ) {
      fail(`${at}.endpoint`, `${epText} is this endpoint's own listen address`);
    }

    const routes = (p.routes ?? []).map((t, j) => {
      const path = `${at}.routes[${j}]`;
      const r = parseRoutePrefix(t, path);
      const k = prefixKey(r.family, r.bytes, r.length);
      const prev = owners.get(k);
      if (prev !== undefined) {
        const prevPeer = Number(/^peers\[(\d+)\]/.exec(prev)![1]);
        fail(
          path,
          prevPeer === i
            ? `duplicate route ${r.text} (also ${prev})`
            : `${r.text} overlaps peer ${peersRaw[prevPeer]!.name} (${prev}): two peers cannot claim the same prefix`,
        );
      }
      owners.set(k, path);
      return r;
    });

    const peerMtu = p.mtu ?? mtu;
    const v6Route = routes.findIndex((r) => r.family === 6);
    if (v6Route >= 0 && peerMtu < MTU_MIN_V6) {
      fail(
        p.mtu !== undefined ? `${at}.mtu` : 'interface.mtu',
        `${peerMtu} is too small for IPv6 (${at}.routes[${v6Route}] is IPv6; minimum ${MTU_MIN_V6})`,
      );
    }

    const key = p.key === undefined ? null : decodeKey(p.key, `${at}.key`);
    let mss: PeerConfig['mss'] = null;
    if (mssClamp !== false) {
      const v4 = peerMtu - 40;
      const v6 = peerMtu - 60;
      mss = mssClamp === 'auto' ? { v4, v6 } : { v4: Math.min(mssClamp, v4), v6: Math.min(mssClamp, v6) };
    }
    return { name: p.name, endpoint, routes, mtu: peerMtu, keepalive: p.keepalive ?? null, key, mss };
  });

  // --- IPv6 needs an MTU of at least 1280 on the TUN
  if (mtu < MTU_MIN_V6) {
    const v6If = ifAddrs.findIndex((a) => a.family === 6);
    const v6Stack = stackAddrs.findIndex((a) => a.family === 6);
    const why =
      v6If >= 0 ? `interface.address[${v6If}]` : v6Stack >= 0 ? `stack.address[${v6Stack}]` : null;
    if (why !== null) fail('interface.mtu', `${mtu} is too small for IPv6 (${why} is IPv6; minimum ${MTU_MIN_V6})`);
  }

  // --- extra routes and policy rules (ip route / ip rule syntax)
  // A nexthop must lead somewhere the endpoint knows: a peer (by `dev NAME`, or `via` an address
  // inside a peer's routes), the interface (the kernel behind the TUN), or the own stack.
  const devNames = new Set<string>([ifname, 'stack', ...peers.map((p) => p.name)]);
  const peerOfVia = (via: ParsedRouteLine['via']): string | undefined => {
    if (via === null || via === undefined || typeof via === 'string') return undefined;
    return peers.find((p) => p.routes.some((r) => prefixContains(r, via)))?.name;
  };
  const routes: ConfigRoute[] = (raw.routes ?? []).map((text, i) => {
    const r = checkRouteLine(text);
    if (!r.ok) fail(`routes[${i}]`, r.error);
    const spec = r.value;
    const type = spec.type ?? 'unicast';
    if (type === 'unicast') {
      const hops = spec.nexthops && spec.nexthops.length > 0 ? spec.nexthops : [spec];
      for (const nh of hops) {
        if (nh.dev) {
          if (!devNames.has(nh.dev)) fail(`routes[${i}]`, `dev ${nh.dev} is not a peer, the interface ${ifname} or stack`);
        } else {
          const name = peerOfVia(nh.via);
          if (name === undefined) fail(`routes[${i}]`, 'via address is not inside any peer\'s routes (give dev PEER)');
          nh.dev = name;
        }
      }
    }
    return { text: text.trim(), parsed: spec };
  });
  const rules: ConfigRule[] = (raw.rules ?? []).map((text, i) => {
    const r = checkRuleLine(text);
    if (!r.ok) fail(`rules[${i}]`, r.error);
    return { text: text.trim(), parsed: r.value };
  });

  // --- control socket
  let control: string | null;
  if (raw.control === false) control = null;
  else if (raw.control === undefined) control = defaultSocketPath(ifname);
  else {
    control = isAbsolute(raw.control) ? raw.control : resolve(opts.baseDir ?? process.cwd(), raw.control);
    if (raw.control.includes('\0')) fail('control', 'socket path contains a NUL byte');
  }
  if (control !== null && Buffer.byteLength(control) > SOCKET_PATH_MAX) {
    fail('control', `socket path too long for a Unix socket (${Buffer.byteLength(control)} bytes, max ${SOCKET_PATH_MAX}): ${control}`);
  }

  return {
    source,
    interface: { name: ifname, address: ifAddrs, mtu },
    listen,
    stack: { address: stackAddrs },
    peers,
    routes,
    rules,
    mssClamp,
    icmpRateLimit: {
      rate: raw.icmpRateLimit?.rate ?? DEFAULTS.icmpRate,
      burst: raw.icmpRateLimit?.burst ?? DEFAULTS.icmpBurst,
    },
    hub: raw.hub ?? DEFAULTS.hub,
    kernelRoutes: raw.kernelRoutes ?? DEFAULTS.kernelRoutes,
    control,
    log: raw.log ?? DEFAULTS.log,
  };
}
