/**
 * Peer endpoints written as DNS names ("gw.example.net:6080"), looked up when an endpoint starts.
 * parseConfig stays synchronous and never touches the network; `ipferry up` (and createEndpoint)
 * call resolveConfig before building the endpoint. Later (peer down, reload) the endpoint can
 * look a single peer up again with resolveEndpoint.
 *
 * Lookups go through getaddrinfo (dns.lookup): /etc/hosts, then DNS, as wg and ping do. The
 * address family follows the listen socket: an IPv4 listen address asks for A records only, an
 * IPv6 one for AAAA only, all addresses for either (the resolver's preferred order, RFC 6724).
 * A name that does not resolve is a ConfigError naming the peer: one line, exit 2 from the CLI.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { parseAddress, type Family } from '../wire/address-text.ts';
import { ConfigError, PathError } from './errors.ts';
import { checkPeerEndpoints, resolvedEndpoint } from './normalize.ts';
import type { Config, ConfigEndpoint, ConfigListen } from './types.ts';

/** Addresses of a name, in preference order (family 0: any). Rejects with an errno-style code. */
export type Lookup = (hostname: string, family: 0 | Family) => Promise<{ address: string; family: number }[]>;

export interface ResolveOptions {
  /** Default: dns.lookup (getaddrinfo) with all results. */
  lookup?: Lookup;
  /** Give up on one name after this long (default 10 s). */
  timeoutMs?: number;
}

const systemLookup: Lookup = (hostname, family) => dnsLookup(hostname, { family, all: true });

/** True when no peer endpoint is still a name waiting for its address. */
export function isResolved(config: Pick<Config, 'peers'>): boolean {
  return config.peers.every((p) => p.endpoint.bytes.length > 0);
}

/** For code that needs addresses: a one-line ConfigError naming the first unresolved peer. */
export function assertResolved(config: Pick<Config, 'peers' | 'source'>): void {
  const i = config.peers.findIndex((p) => p.endpoint.bytes.length === 0);
  if (i >= 0) {
    throw new ConfigError(
      `${config.source}: peers[${i}].endpoint: ${config.peers[i]!.endpoint.text} is a DNS name: resolve the config first (resolveConfig)`,
      `peers[${i}].endpoint`,
    );
  }
}

/** Which family to ask for, given where the UDP socket listens. */
function familyFor(listen: ConfigListen): 0 | Family {
  if (listen.family === 4) return 4;
  if (listen.family === 6 && !listen.bytes!.every((b) => b === 0)) return 6;
  return 0;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, rej) => {
      t = setTimeout(() => rej(Object.assign(new Error('timed out'), { code: `no answer within ${ms / 1000} s` })), ms);
    }),
  ]);
}

/**
 * The address of one endpoint (a copy with bytes/host/family filled in; an address endpoint as
 * it is). Throws PathError(`path`) when the name does not resolve.
 */
export async function resolveEndpoint(endpoint: ConfigEndpoint, listen: ConfigListen, path: string, opts: ResolveOptions = {}): Promise<ConfigEndpoint> {
  if (endpoint.hostname === null) return endpoint;
  const family = familyFor(listen);
  const want = family === 0 ? '' : ` (IPv${family}, as listen ${listen.text} is)`;
  let answers: { address: string; family: number }[];
  try {
    answers = await withTimeout((opts.lookup ?? systemLookup)(endpoint.hostname, family), opts.timeoutMs ?? 10_000);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new PathError(path, `cannot resolve ${endpoint.hostname}${want}: ${code === 'ENOTFOUND' || code === 'ENODATA' ? 'no such name' : code}`);
  }
  const first = answers[0];
  if (first === undefined) throw new PathError(path, `cannot resolve ${endpoint.hostname}${want}: no address`);
  const a = parseAddress(first.address);
  return resolvedEndpoint(endpoint.text, endpoint.hostname, a.family, a.bytes, endpoint.port, path);
}

/**
 * The config with every peer endpoint at an address (the same object when none is a name).
 * Runs the endpoint checks again on the addresses (two names for one host, a name for ourselves).
 */
export async function resolveConfig(config: Config, opts: ResolveOptions = {}): Promise<Config> {
  if (config.peers.every((p) => p.endpoint.hostname === null)) return config;
  try {
    const peers = await Promise.all(
      config.peers.map(async (p, i) => ({ ...p, endpoint: await resolveEndpoint(p.endpoint, config.listen, `peers[${i}].endpoint`, opts) })),
    );
    checkPeerEndpoints(peers, config.listen);
    return { ...config, peers };
  } catch (e) {
    if (e instanceof PathError) throw new ConfigError(`${config.source}: ${e.path}: ${e.detail}`, e.path);
    throw e;
  }
}
