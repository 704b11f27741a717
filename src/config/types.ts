/**
 * What a config IS once validated: the normalized `Config` the endpoint consumes (parsed address
 * bytes beside the original text, so the endpoint never parses text again), its defaults and
 * limits. Parsing and checking live in schema.ts (shape) and normalize.ts (meaning).
 */
import { DEFAULT_HEADROOM, DEFAULT_SLOT_SIZE } from '../base/pool.ts';
import type { Family } from '../wire/address-text.ts';
import { IPV4_MIN_DATAGRAM, IPV6_MIN_MTU } from '../wire/ip.ts';
import { DEFAULT_PORT } from '../transport/udp-transport.ts';
import type { ParsedRouteLine, ParsedRuleLine } from './route-lines.ts';

export { DEFAULT_PORT };

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];

/** Log lines as text (one sentence per line) or JSON objects (journald, Loki). */
export type LogFormat = 'text' | 'json';

export const LOG_FORMATS: readonly LogFormat[] = ['text', 'json'];

/** `Config.control` when the file names no path: the CLI picks /run/ipferry/<name>.sock or a fallback. */
export const CONTROL_DEFAULT = 'default';

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

/**
 * A peer's underlay endpoint. Written as an address ("203.0.113.20:6080", "[2001:db8::20]:6080")
 * or a DNS name ("gw.example.net:6080"). A name stays unresolved in what parseConfig returns
 * (`bytes` empty, `host` = the name): resolveConfig (resolve.ts) looks it up when the endpoint
 * starts, so parsing stays synchronous and free of the environment.
 */
export interface ConfigEndpoint {
  text: string;
  /** The DNS name as written, or null for an address. */
  hostname: string | null;
  family: Family;
  /** 4 or 16 bytes, network order; empty while a hostname is unresolved. */
  bytes: Uint8Array;
  port: number;
  /** Canonical address text (RFC 5952 for IPv6), ready for dgram send/bind; the name while unresolved. */
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
  /**
   * ICMP error rate limits: the global bucket's tokens per second and size, and per destination
   * one error per `perDestinationMs` in bursts of 6 (0 = no per-destination limit).
   * Fragmentation needed / packet too big are limited by neither (endpoint/icmp-rate-limit.ts).
   */
  icmpRateLimit: { rate: number; burst: number; perDestinationMs: number };
  /** Forward packets from one peer to another (decrementing TTL / hop limit). */
  hub: boolean;
  /** Add a kernel route through the TUN for every peer route (and remove them on stop). */
  kernelRoutes: boolean;
  /**
   * Control socket path; null = no control socket; CONTROL_DEFAULT = the default location, which
   * the CLI resolves (control/socket-path.ts: it depends on the namespace and what is writable).
   */
  control: string | null | typeof CONTROL_DEFAULT;
  /** Group (name or gid) given the control socket, so its members can use `ipferry show`; null = none. */
  controlGroup: string | number | null;
  /** Mode of the control socket file (default 0600; 0660 when a group is set). */
  controlMode: number;
  /** Where to serve Prometheus metrics over HTTP (`GET /metrics`); null = nowhere. */
  metrics: ConfigListen | null;
  log: LogLevel;
  /** `log: { format }`: text lines or one JSON object per line. */
  logFormat: LogFormat;
  /** Mobility roles (each null when not in the section); absent without a `mobility` section. */
  mobility?: MobilityConfig;
}

export const DEFAULTS = Object.freeze({
  mtu: 1400,
  mssClamp: true,
  icmpRate: 1000,
  icmpBurst: 50,
  icmpPerDestinationMs: 1000,
  hub: false,
  kernelRoutes: true,
  log: 'info' as LogLevel,
  logFormat: 'text' as LogFormat,
  port: DEFAULT_PORT,
  metricsPort: 9587,
});

export const MTU_MIN_V4 = IPV4_MIN_DATAGRAM;
export const MTU_MIN_V6 = IPV6_MIN_MTU;
export const MTU_MAX = 65535;
/** Largest interface MTU: a packet read from the device must fit one pool slot. */
export const MTU_MAX_DEVICE = DEFAULT_SLOT_SIZE - DEFAULT_HEADROOM;
/** The device name routes use for the endpoint's own stack (`dev stack`); no peer may take it. */
export const STACK_DEV = 'stack';
export const KEY_MIN_BYTES = 16;
/** sun_path is 108 bytes with the terminating NUL. */
export const SOCKET_PATH_MAX = 107;

// --- the mobility section, normalised (config/mobility.ts; structurally what src/mobility/'s constructors take)

export interface MobilityAddress {
  family: Family;
  bytes: Uint8Array;
}
export interface MobilityPrefix extends MobilityAddress {
  text: string;
  length: number;
}
export interface MobilityEndpoint extends MobilityAddress {
  text: string;
  port: number;
  host: string;
}
export interface MobilityNodeConfig {
  name: string;
  home: MobilityAddress;
  key: Uint8Array;
  routeOptimisation: boolean;
}
export interface HomeAgentConfig {
  homePrefixes: MobilityPrefix[];
  nodes: MobilityNodeConfig[];
  maxBindings: number;
  maxLifetime: number;
  bicastMs: number;
  freshnessMs: number;
  ratePerSecond: number;
  rateBurst: number;
  retryAfterMax: number;
  /** Keepalives to registered nodes, seconds; null = none. */
  keepalive: number | null;
}
export interface MobileNodeConfig {
  name: string;
  home: MobilityAddress;
  homeAgent: MobilityEndpoint;
  /** Index in Config.peers of the home agent's peer (-1 when normalised without the peers). */
  homeAgentPeer: number;
  key: Uint8Array;
  lifetime: number;
  homeNetworks: MobilityPrefix[];
  backoff: { initialMs: number; firstRegistrationMs: number; maxMs: number };
  freshnessMs: number;
  routeOptimisation: boolean;
  correspondents: { name: string; endpoint: MobilityEndpoint; key: Uint8Array; padTo: number }[];
  /** Watch `ip monitor` for address/route changes. */
  monitor: boolean;
  /** Look at the underlay this often, ms. */
  pollMs: number;
}
export interface CorrespondentConfig {
  nodes: MobilityNodeConfig[];
  maxBindings: number;
  maxLifetime: number;
  probeSize: number;
  challengeAttempts: number;
  challengeTimeoutMs: number;
}
export interface MobilityConfig {
  homeAgent: HomeAgentConfig | null;
  mobileNode: MobileNodeConfig | null;
  correspondent: CorrespondentConfig | null;
}
