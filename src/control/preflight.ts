/**
 * Checks `ipferry up` runs before creating anything, each failing with a one-line PreflightError
 * (the CLI prints "ipferry: <message>" and exits 2):
 *   not root (CAP_NET_ADMIN needed to create a TUN device)
 *   /dev/net/tun missing (load the tun module)
 *   interface eth0 already exists and is not a TUN device
 *   an endpoint is already running at /run/ipferry/ferry0.sock
 *   listen 203.0.113.10:6080: port in use          (or: address not available, permission denied)
 *   metrics 127.0.0.1:9587: port in use             (TCP, when the config serves metrics)
 * The probes are injectable so every message is testable as root.
 */
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { accessSync, constants as fsConstants, existsSync, readFileSync, statSync } from 'node:fs';
import type { Config, ConfigListen } from '../config/config.ts';
import { isControlSocketLive } from './control-socket.ts';
import { controlSocketPath } from './socket-path.ts';

export type PreflightKind =
  | 'not-root'
  | 'no-tun'
  | 'interface-exists'
  | 'already-running'
  | 'port-in-use'
  | 'address-not-available'
  | 'permission';

export class PreflightError extends Error {
  override name = 'PreflightError';
  constructor(
    message: string,
    readonly kind: PreflightKind,
  ) {
    super(message);
  }
}

export const CAP_NET_ADMIN = 12;

export interface PreflightProbes {
  /** Effective capability mask (default: CapEff from /proc/self/status; null if unknown). */
  capEff?: () => bigint | null;
  /** Effective uid (default process.geteuid()). */
  euid?: () => number | undefined;
  /** The TUN clone device (default /dev/net/tun). */
  tunPath?: string;
  /** Where network interfaces are listed (default /sys/class/net). */
  sysClassNet?: string;
}

/** CapEff from /proc/self/status, or null when it cannot be read. */
export function readCapEff(): bigint | null {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/im.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? BigInt(`0x${m[1]}`) : null;
  } catch {
    return null;
  }
}

export function checkPrivileges(probes: PreflightProbes = {}): void {
  const cap = (probes.capEff ?? readCapEff)();
  const ok = cap !== null ? (cap & (1n << BigInt(CAP_NET_ADMIN))) !== 0n : (probes.euid ?? process.geteuid)?.() === 0;
  if (!ok) throw new PreflightError('not root (CAP_NET_ADMIN needed to create a TUN device)', 'not-root');
}

export function checkTunDevice(path = '/dev/net/tun'): void {
  if (!existsSync(path)) throw new PreflightError(`${path} missing (load the tun module)`, 'no-tun');
  if (!statSync(path).isCharacterDevice()) throw new PreflightError(`${path} is not a character device`, 'no-tun');
  try {
    accessSync(path, fsConstants.R_OK | fsConstants.W_OK);
  } catch {
    throw new PreflightError(`${path}: permission denied`, 'permission');
  }
}

export function checkInterface(name: string, sysClassNet = '/sys/class/net'): void {
  const dir = `${sysClassNet}/${name}`;
  if (existsSync(dir) && !existsSync(`${dir}/tun_flags`)) {
    throw new PreflightError(`interface ${name} already exists and is not a TUN device`, 'interface-exists');
  }
}

export async function checkControlSocket(path: string | null): Promise<void> {
  if (path !== null && (await isControlSocketLive(path))) {
    throw new PreflightError(`an endpoint is already running at ${path}`, 'already-running');
  }
}

/** "203.0.113.10:6080", "[2001:db8::1]:6080", "*:6080" (all addresses). */
export function listenText(l: ConfigListen): string {
  if (l.host === null) return `*:${l.port}`;
  return l.family === 6 ? `[${l.host}]:${l.port}` : `${l.host}:${l.port}`;
}

function bindOnce(type: 'udp4' | 'udp6', host: string, port: number): Promise<NodeJS.ErrnoException | null> {
  return new Promise((res) => {
    const s = createSocket({ type, reuseAddr: false });
    s.once('error', (e) => {
      s.close();
      res(e as NodeJS.ErrnoException);
    });
    s.bind({ port, address: host, exclusive: true }, () => s.close(() => res(null)));
  });
}

/** Bind the listen address once (then release it) to catch "port in use" before starting. */
export async function checkListen(l: ConfigListen): Promise<void> {
  let err: NodeJS.ErrnoException | null;
  if (l.host === null) {
    err = await bindOnce('udp6', '::', l.port);
    // No IPv6 on this host: the transport falls back to IPv4 only.
    if (err && (err.code === 'EAFNOSUPPORT' || err.code === 'EADDRNOTAVAIL')) err = await bindOnce('udp4', '0.0.0.0', l.port);
  } else {
    err = await bindOnce(l.family === 6 ? 'udp6' : 'udp4', l.host, l.port);
  }
  if (err === null) return;
  const where = `listen ${listenText(l)}`;
  switch (err.code) {
    case 'EADDRINUSE':
      throw new PreflightError(`${where}: port in use`, 'port-in-use');
    case 'EADDRNOTAVAIL':
      throw new PreflightError(`${where}: address not available`, 'address-not-available');
    case 'EACCES':
    case 'EPERM':
      throw new PreflightError(`${where}: permission denied`, 'permission');
    default:
      throw new PreflightError(`${where}: ${err.code ?? err.message}`, 'address-not-available');
  }
}

/** Listen on the metrics address once (TCP, then release it). */
export async function checkMetricsListen(l: ConfigListen): Promise<void> {
  const err = await new Promise<NodeJS.ErrnoException | null>((res) => {
    const srv = createServer();
    srv.once('error', (e) => res(e as NodeJS.ErrnoException));
    srv.listen({ port: l.port, host: l.host ?? undefined, exclusive: true }, () => srv.close(() => res(null)));
  });
  if (err === null) return;
  const where = `metrics ${listenText(l)}`;
  if (err.code === 'EADDRINUSE') throw new PreflightError(`${where}: port in use`, 'port-in-use');
  if (err.code === 'EACCES' || err.code === 'EPERM') throw new PreflightError(`${where}: permission denied`, 'permission');
  throw new PreflightError(`${where}: ${err.code === 'EADDRNOTAVAIL' ? 'address not available' : (err.code ?? err.message)}`, 'address-not-available');
}

export interface PreflightOptions extends PreflightProbes {
  /** Skip the TUN checks (privileges, /dev/net/tun, interface) for an in-memory device. */
  noTun?: boolean;
}

/** Everything `ipferry up` checks, in order; throws the first PreflightError. */
export async function preflight(config: Config, opts: PreflightOptions = {}): Promise<void> {
  if (!opts.noTun) {
    checkPrivileges(opts);
    checkTunDevice(opts.tunPath);
    checkInterface(config.interface.name, opts.sysClassNet);
  }
  await checkControlSocket(controlSocketPath(config));
  await checkListen(config.listen);
  if (config.metrics !== null) await checkMetricsListen(config.metrics);
}
