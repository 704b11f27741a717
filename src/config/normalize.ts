/**
 * The config's meaning: semantic checks (addresses, duplicates, overlaps, MTU rules, route and
 * rule lines, what a nexthop may lead to) on a value whose shape the schema accepted, normalized
 * into `Config`. Every failure is a PathError (errors.ts) naming the path.
 */
import { isAbsolute, resolve } from 'node:path';
import {
  AddressTextError,
  formatAddress,
  parseEndpoint,
  parsePrefix,
  prefixContains,
  type Family,
} from '../wire/address-text.ts';
import {
  ipv6IsLoopback,
  ipv6IsMulticast,
  ipv6IsUnspecified,
  ipv6IsV4Mapped,
  isClassEV4,
  isLoopbackV4,
  isMulticastV4,
  isThisNetworkV4,
  readV4,
} from '../wire/ip.ts';
import { fail } from './errors.ts';
import { decodeKey } from './key.ts';
import { normalizeMobility } from './mobility.ts';
import { checkRouteLine, checkRuleLine, type ParsedRouteLine } from './route-lines.ts';
import { ConfigSchema, shapeError } from './schema.ts';
import {
  CONTROL_DEFAULT,
  DEFAULT_PORT,
  DEFAULTS,
  MTU_MAX_DEVICE,
  MTU_MIN_V6,
  SOCKET_PATH_MAX,
  STACK_DEV,
  type Config,
  type ConfigAddress,
  type ConfigEndpoint,
  type ConfigListen,
  type ConfigPrefix,
  type ConfigRoute,
  type ConfigRule,
  type PeerConfig,
} from './types.ts';

export interface ParseOptions {
  /** Relative control paths resolve against this (loadConfig: the config file's directory). */
  baseDir?: string;
}

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
  if (family === 6 && ipv6IsV4Mapped(bytes, 0)) return { family: 4, bytes: bytes.slice(12) };
  return { family, bytes };
}

/** A unicast address a peer can have: not 0/8, multicast, class E or broadcast; not :: or ff00::/8. */
function isUnicast(family: Family, b: Uint8Array): boolean {
  if (family === 4) {
    const a = readV4(b, 0);
    return !isThisNetworkV4(a) && !isMulticastV4(a) && !isClassEV4(a);
  }
  return !ipv6IsUnspecified(b, 0) && !ipv6IsMulticast(b, 0);
}

/** The address family of a parsed route line (a `default` line carries it; else its prefix tells). */
function routeFamily(spec: ParsedRouteLine): Family {
  if (typeof spec.prefix !== 'string') return spec.prefix.family;
  if (spec.family !== undefined) return spec.family;
  return spec.prefix.includes(':') ? 6 : 4;
}

function routePrefixText(spec: ParsedRouteLine): string {
  if (typeof spec.prefix === 'string') return `${routeFamily(spec)}/${spec.prefix}`;
  return prefixKey(spec.prefix.family, spec.prefix.bytes, spec.prefix.length);
}

/** A loopback address (127/8, ::1): with listen on all addresses, our own socket answers there. */
function isLoopback(family: Family, b: Uint8Array): boolean {
  return family === 4 ? isLoopbackV4(readV4(b, 0)) : ipv6IsLoopback(b, 0);
}

/** A DNS name: LDH labels, the last one not all digits (so "1.2.3" stays an invalid address). */
const HOSTNAME_RE = /^(?=.{1,253}\.?:)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*(?=[A-Za-z0-9-]*[A-Za-z-])[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?:(\d*)$/;

function parsePeerEndpoint(text: string, path: string): ConfigEndpoint {
  let ep: ReturnType<typeof parseEndpoint>;
  try {
    ep = parseEndpoint(text);
  } catch (e) {
    const t = text.trim();
    const m = HOSTNAME_RE.exec(t);
    if (m === null) return fail(path, addrErr(e));
    const port = Number(m[1]);
    if (!/^\d{1,5}$/.test(m[1]!) || port < 1 || port > 65535) fail(path, `port out of range in ${t} (1-65535)`);
    const hostname = t.slice(0, t.lastIndexOf(':')).replace(/\.$/, '').toLowerCase();
    return { text: t, hostname, family: 4, bytes: new Uint8Array(0), port, host: hostname };
  }
  return resolvedEndpoint(text.trim(), null, ep.family, ep.bytes, ep.port, path);
}

/** An endpoint at an address (as written, or looked up for `hostname`); IPv4-mapped becomes IPv4. */
export function resolvedEndpoint(text: string, hostname: string | null, family: Family, bytes: Uint8Array, port: number, path: string): ConfigEndpoint {
  const u = unmap(family, bytes);
  const host = formatAddress(u.bytes, 0, u.family);
  if (!isUnicast(u.family, u.bytes)) fail(path, `${hostname === null ? '' : `${hostname} is `}${host}${hostname === null ? ' is' : ','} not a unicast address`);
  return { text, hostname, family: u.family, bytes: u.bytes, port, host };
}

/** "203.0.113.20:6080", "[2001:db8::20]:6080"; a name while unresolved. */
function endpointText(e: ConfigEndpoint): string {
  return e.family === 6 && e.bytes.length > 0 ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
}

/**
 * The checks that need every peer's endpoint: no two peers at one endpoint, none at our own
 * listen address, families the listen socket can reach. Unresolved names are compared by name
 * only here; resolveConfig runs these checks again on the addresses.
 */
export function checkPeerEndpoints(peers: readonly Pick<PeerConfig, 'name' | 'endpoint'>[], listen: ConfigListen): void {
  const endpoints = new Map<string, number>();
  peers.forEach((p, i) => {
    const at = `peers[${i}].endpoint`;
    const endpoint = p.endpoint;
    const resolved = endpoint.bytes.length > 0;
    const epKey = resolved ? `${prefixKey(endpoint.family, endpoint.bytes, 0)}:${endpoint.port}` : `name:${endpoint.host}:${endpoint.port}`;
    const epText = endpointText(endpoint);
    const dupEp = endpoints.get(epKey);
    if (dupEp !== undefined) {
      const via = endpoint.hostname !== null || peers[dupEp]!.endpoint.hostname !== null ? ` (${[peers[dupEp]!.endpoint.text, endpoint.text].join(' and ')})` : '';
      fail(at, `duplicate endpoint ${epText}${via} (also peers[${dupEp}], ${peers[dupEp]!.name})`);
    }
    endpoints.set(epKey, i);
    if (!resolved) return;
    if (
      listen.bytes !== null &&
      listen.family === endpoint.family &&
      listen.port === endpoint.port &&
      Buffer.from(listen.bytes).equals(Buffer.from(endpoint.bytes))
    ) {
      fail(at, `${epText} is this endpoint's own listen address`);
    }
    if (listen.bytes === null && listen.port === endpoint.port && isLoopback(endpoint.family, endpoint.bytes)) {
      fail(at, `${epText} is this endpoint itself (listen is all addresses, port ${listen.port})`);
    }
    // "::" is dual-stack like "all addresses"; any other address speaks its own family only.
    if (listen.family !== null && listen.family !== endpoint.family && !(listen.family === 6 && listen.bytes!.every((b) => b === 0))) {
      fail(
        at,
        `${epText} is IPv${endpoint.family} but listen ${listen.text} is IPv${listen.family} (listen on all addresses, or an IPv${endpoint.family} address)`,
      );
    }
  });
}

function parseListen(raw: string | number | undefined, path = 'listen', defaultPort = DEFAULT_PORT): ConfigListen {
  if (raw === undefined) return { text: null, family: null, bytes: null, host: null, port: defaultPort };
  const text = String(raw).trim();
  let portText: string | null = null;
  if (typeof raw === 'number' || /^\d+$/.test(text)) portText = text;
  else if (/^:\d*$/.test(text)) portText = text.slice(1);
  if (portText !== null) {
    const port = Number(portText);
    if (!/^\d{1,5}$/.test(portText) || !Number.isInteger(port) || port < 1 || port > 65535) {
      fail(path, `port out of range in ${text} (1-65535)`);
    }
    return { text, family: null, bytes: null, host: null, port };
  }
  let ep: ReturnType<typeof parseEndpoint>;
  try {
    ep = parseEndpoint(text, defaultPort);
  } catch (e) {
    return fail(path, addrErr(e));
  }
  const u = unmap(ep.family, ep.bytes);
  if (u.family === 4 ? readV4(u.bytes, 0) >>> 0 >= 0xe0000000 : ipv6IsMulticast(u.bytes, 0)) {
    fail(path, `${formatAddress(u.bytes, 0, u.family)} is a multicast address`);
  }
  return { text, family: u.family, bytes: u.bytes, host: formatAddress(u.bytes, 0, u.family), port: ep.port };
}

function prefixKey(family: Family, bytes: Uint8Array, length: number): string {
  return `${family}/${Buffer.from(bytes).toString('hex')}/${length}`;
}

export function normalize(json: unknown, source: string, opts: ParseOptions): Config {
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
  if (mtu > MTU_MAX_DEVICE) {
    fail('interface.mtu', `${mtu} does not fit a packet buffer (at most ${MTU_MAX_DEVICE})`);
  }

  // --- listen
  const listen = parseListen(raw.listen);

  // --- peers
  const mssClamp: Config['mssClamp'] =
    raw.mssClamp === undefined || raw.mssClamp === true ? 'auto' : raw.mssClamp === false ? false : raw.mssClamp;
  const peersRaw = raw.peers ?? [];
  const names = new Map<string, number>();
  const owners = new Map<string, string>(); // prefix key -> "peers[i].routes[j]"
  const peers: PeerConfig[] = peersRaw.map((p, i) => {
    const at = `peers[${i}]`;
    if (!PEER_NAME_RE.test(p.name)) {
      fail(`${at}.name`, `invalid peer name ${JSON.stringify(p.name)} (1-32 characters: letters, digits, _ . -, not starting with _ . -)`);
    }
    if (p.name === ifname) fail(`${at}.name`, `${p.name} is the interface's name (routes use dev ${ifname} for the TUN)`);
    if (p.name === STACK_DEV) fail(`${at}.name`, `${STACK_DEV} is reserved for the endpoint's own stack`);
    const dupName = names.get(p.name);
    if (dupName !== undefined) fail(`${at}.name`, `duplicate peer name ${p.name} (also peers[${dupName}])`);
    names.set(p.name, i);

    const endpoint = parsePeerEndpoint(p.endpoint, `${at}.endpoint`);

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
  checkPeerEndpoints(peers, listen);

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
  const mtuOfDev = new Map<string, number>([[ifname, mtu], ...peers.map((p): [string, number] => [p.name, p.mtu])]);
  const seenRoutes = new Map<string, number>();
  const routes: ConfigRoute[] = (raw.routes ?? []).map((text, i) => {
    const r = checkRouteLine(text);
    if (!r.ok) fail(`routes[${i}]`, r.error);
    const spec = r.value;
    const type = spec.type ?? 'unicast';
    const family = routeFamily(spec);
    // Linux refuses a second route with the same table, prefix and metric ("File exists").
    const dupKey = `${String(spec.table ?? 'main')}|${routePrefixText(spec)}|${spec.metric ?? (family === 6 ? 1024 : 0)}`;
    const dup = seenRoutes.get(dupKey);
    if (dup !== undefined) fail(`routes[${i}]`, `duplicate route ${text.trim()} (also routes[${dup}]: same table, prefix and metric)`);
    seenRoutes.set(dupKey, i);
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
        const devMtu = mtuOfDev.get(nh.dev!);
        if (family === 6 && devMtu !== undefined && devMtu < MTU_MIN_V6) {
          fail(`routes[${i}]`, `IPv6 route through ${nh.dev}, whose MTU ${devMtu} is below the IPv6 minimum ${MTU_MIN_V6}`);
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

  // --- mobility (home agent / mobile node / correspondent), checked against the peers
  const mobility = raw.mobility === undefined ? undefined : normalizeMobility(raw.mobility, {
    name: ifname,
    peers: peers.map((p) => ({ name: p.name, endpoint: p.endpoint, key: p.key })),
    owned: [...ifAddrs, ...stackAddrs].map((a) => ({ family: a.family, bytes: a.bytes })),
    reserved: [ifname, STACK_DEV],
  });
  const mn = mobility?.mobileNode ?? null;
  // The home agent peer carries the node's key (its keepalives are the node's messages too).
  if (mn !== null && mn.homeAgentPeer >= 0 && peers[mn.homeAgentPeer]!.key === null) peers[mn.homeAgentPeer]!.key = mn.key;

  // --- control socket
  const rawControl = typeof raw.control === 'object' ? raw.control : { path: raw.control };
  const controlAt = typeof raw.control === 'object' ? 'control.path' : 'control';
  let control: Config['control'];
  if (rawControl.path === false) control = null;
  else if (rawControl.path === undefined) control = CONTROL_DEFAULT;
  else {
    control = isAbsolute(rawControl.path) ? rawControl.path : resolve(opts.baseDir ?? process.cwd(), rawControl.path);
    if (rawControl.path.includes('\0')) fail(controlAt, 'socket path contains a NUL byte');
  }
  if (control !== null && control !== CONTROL_DEFAULT && Buffer.byteLength(control) > SOCKET_PATH_MAX) {
    fail(controlAt, `socket path too long for a Unix socket (${Buffer.byteLength(control)} bytes, max ${SOCKET_PATH_MAX}): ${control}`);
  }
  const controlGroup = typeof raw.control === 'object' ? (raw.control.group ?? null) : null;
  if (typeof controlGroup === 'string' && !/^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$/.test(controlGroup)) {
    fail('control.group', `invalid group name ${JSON.stringify(controlGroup)}`);
  }
  let controlMode = controlGroup === null ? 0o600 : 0o660;
  if (typeof raw.control === 'object' && raw.control.mode !== undefined) {
    const m = /^(?:0o?)?([0-7]{1,4})$/i.exec(raw.control.mode.trim());
    if (m === null || Number.parseInt(m[1]!, 8) > 0o777) fail('control.mode', `expected an octal mode 0000-0777 such as "0660", got "${raw.control.mode}"`);
    controlMode = Number.parseInt(m[1]!, 8);
    if ((controlMode & 0o600) !== 0o600) fail('control.mode', `${raw.control.mode} does not let the owner read and write the socket`);
  }

  // --- metrics
  const metrics = raw.metrics === undefined ? null : parseListen(raw.metrics, 'metrics', DEFAULTS.metricsPort);

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
      perDestinationMs: raw.icmpRateLimit?.perDestinationMs ?? DEFAULTS.icmpPerDestinationMs,
    },
    hub: raw.hub ?? DEFAULTS.hub,
    kernelRoutes: raw.kernelRoutes ?? DEFAULTS.kernelRoutes,
    control,
    controlGroup,
    controlMode,
    metrics,
    log: (typeof raw.log === 'object' ? raw.log.level : raw.log) ?? DEFAULTS.log,
    logFormat: (typeof raw.log === 'object' ? raw.log.format : undefined) ?? DEFAULTS.logFormat,
    mobility,
  };
}
