/**
 * The config's shape: a strict zod schema (types, ranges, unknown keys are errors with a "did you
 * mean"), its JSON Schema for editors, and the first shape error as one PathError.
 */
import { z } from 'zod';
import { formatPath, PathError } from './errors.ts';
import { MOBILITY_ALLOWED_KEYS, MobilitySchema } from './mobility.ts';
import { LOG_FORMATS, LOG_LEVELS, MTU_MAX, MTU_MIN_V4, type LogFormat, type LogLevel } from './types.ts';
import { bool, intIn, obj, str, strList, typeName } from './zod-helpers.ts';

export const InterfaceSchema = obj({
  name: str('an interface name').describe('TUN device name (1-15 characters); also names the control socket'),
  address: strList('address', 'addresses')
    .optional()
    .describe('Addresses of the TUN device, host bits kept: ["10.0.0.1/30", "fd00::1/64"]. Default none'),
  mtu: intIn(MTU_MIN_V4, MTU_MAX)
    .optional()
    .describe('TUN MTU, 576-65535 (at least 1280 when any IPv6 is configured). Default 1400'),
});

export const PeerSchema = obj({
  name: str('a peer name').describe('Unique peer name (1-32 characters: letters, digits, _ . -)'),
  endpoint: str('"host:port"').describe(
    'Underlay address of the peer: "203.0.113.20:6080", "[2001:db8::20]:6080" or a DNS name "gw.example.net:6080" (resolved at start)',
  ),
  routes: strList('prefix')
    .optional()
    .describe('Prefixes behind the peer (no host bits): routed to it, and the inner sources accepted from it'),
  mtu: intIn(MTU_MIN_V4, MTU_MAX).optional().describe('Path MTU of the tunnel toward this peer. Default interface.mtu'),
  keepalive: intIn(1, 3600).optional().describe('Keepalive interval in seconds (1-3600), for NAT. Default off'),
  key: str('a hex or base64 key')
    .optional()
    .describe('Pre-shared key, >= 16 bytes: hex, base64, or "hex:..." / "base64:...". Authenticates control messages'),
});

export const ControlSchema = obj({
  path: z
    .string({ error: (i) => `expected a socket path, got ${typeName(i.input)}` })
    .min(1, { error: 'expected a socket path, got an empty string' })
    .optional()
    .describe('Socket path. Default /run/ipferry/<interface>.sock'),
  group: z
    .union([z.string().min(1), intIn(0, 4294967294)], { error: (i) => `expected a group name or number, got ${typeName(i.input)}` })
    .optional()
    .describe('Group that owns the socket: its members can use ipferry show/down/ping. Default none'),
  mode: z
    .string({ error: (i) => `expected an octal mode as a string, e.g. "0660", got ${typeName(i.input)}` })
    .optional()
    .describe('Socket file mode, octal, e.g. "0660". Default "0600", or "0660" with a group'),
});

const LogLevelSchema = z.enum(LOG_LEVELS as [LogLevel, ...LogLevel[]], {
  error: (i) => `expected one of ${LOG_LEVELS.join(', ')}, got ${typeName(i.input)}`,
});

export const LogSchema = obj({
  level: LogLevelSchema.optional().describe('error, warn, info or debug (debug: each drop reason too, rate-limited). Default info'),
  format: z
    .enum(LOG_FORMATS as [LogFormat, ...LogFormat[]], { error: (i) => `expected text or json, got ${typeName(i.input)}` })
    .optional()
    .describe('text: one sentence per line; json: one object per line (time, level, interface, event, msg, fields) for journald or Loki. Default text'),
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
    rate: intIn(1, 1_000_000)
      .optional()
      .describe('ICMP errors per second, 1-1000000 (fragmentation-needed / packet-too-big are never limited by it). Default 1000'),
    burst: intIn(1, 1_000_000).optional().describe('Bucket size. Default 50'),
    perDestinationMs: intIn(0, 60_000)
      .optional()
      .describe("Per destination: one ICMP error per this many ms, bursts of 6 (Linux's icmp_ratelimit); 0 = no per-destination limit. Default 1000"),
  })
    .optional()
    .describe('Token buckets for the ICMP errors the endpoint sends: one global, one per destination'),
  hub: bool().optional().describe('Forward packets from one peer to another. Default false'),
  kernelRoutes: bool().optional().describe('Route each peer prefix into the TUN (removed on stop). Default true'),
  control: z
    .union([z.string().min(1, { error: 'expected a socket path or false, got an empty string' }), z.literal(false), ControlSchema], {
      error: (i) => `expected a socket path, false or { path, group, mode }, got ${typeName(i.input)}`,
    })
    .optional()
    .describe(
      'Control socket: a path, false for none, or { path, group, mode }. Default /run/ipferry/<interface>.sock ($TMPDIR/ipferry-<uid>/<interface>.sock when /run/ipferry cannot be written)',
    ),
  metrics: z
    .union([z.string(), z.number()], {
      error: (i) => `expected "host:port", ":port" or a port number, got ${typeName(i.input)}`,
    })
    .optional()
    .describe('Serve Prometheus metrics over HTTP at this address, e.g. "127.0.0.1:9587" (GET /metrics). Default off'),
  log: z
    .union([LogLevelSchema, LogSchema], {
      error: (i) =>
        typeof i.input === 'string'
          ? `expected one of ${LOG_LEVELS.join(', ')}, got ${typeName(i.input)}`
          : `expected one of ${LOG_LEVELS.join(', ')} or { level, format }, got ${typeName(i.input)}`,
    })
    .optional()
    .describe('Log level (error, warn, info, debug), or { level, format } with format text or json. Default info, text'),
  mobility: MobilitySchema.optional().describe('Mobility: this endpoint as a home agent, a mobile node and/or a route-optimising correspondent'),
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
  icmpRateLimit: ['rate', 'burst', 'perDestinationMs'],
  ...MOBILITY_ALLOWED_KEYS,
  control: ['path', 'group', 'mode'],
  log: ['level', 'format'],
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

export function shapeError(issues: readonly z.core.$ZodIssue[]): PathError {
  // An unknown key first: a misspelled key often causes a "missing" error elsewhere.
  const unknown = issues.find((i) => i.code === 'unrecognized_keys');
  if (unknown && unknown.code === 'unrecognized_keys') return unknownKeyMessage(unknown.path, unknown.keys[0]!);
  let first = issues[0]!;
  // A union (control: path | false | { path, group, mode }) whose input had the right type for
  // one branch: report that branch's own error (e.g. control.mode), not the union's summary.
  while (first.code === 'invalid_union') {
    const depth = first.path.length;
    const branch = first.errors.find((b) => b.length > 0 && !(b[0]!.code === 'invalid_type' && b[0]!.path.length === 0) && !(b[0]!.code === 'invalid_value' && b[0]!.path.length === 0));
    if (branch === undefined) break;
    first = { ...branch[0]!, path: [...first.path, ...branch[0]!.path] } as z.core.$ZodIssue;
    if (first.path.length === depth && first.code !== 'invalid_union') break;
  }
  let msg = first.message;
  if (first.code === 'invalid_type' && / got nothing$/.test(msg)) msg = 'missing (required)';
  if (first.path.length === 0 && first.code === 'invalid_type') msg = `expected a JSON object at the top level, got ${msg.replace(/^.*, got /, '')}`;
  return new PathError(formatPath(first.path), msg);
}
