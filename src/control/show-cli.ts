/**
 * `ipferry show [IFACE] [all|peers|routes|stats|bindings|binding-updates|interfaces] [--json] [--socket PATH | --interface NAME]`:
 * asks running endpoints through their control sockets and prints like `wg show`. The interface
 * may be named as wg does (`ipferry show ferry0 peers`) or with --interface. With neither an
 * interface nor --socket it shows every endpoint whose socket is in /run/ipferry (or the
 * per-user fallback directory). Also home of the socket look-up `down` and `ping` share.
 */
import { readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { CliError, intOption } from './args.ts';
import { fallbackSocketDir, runSocketDir, socketPathCandidates } from './socket-path.ts';
import { ControlError, isControlSocketLive, requestSnapshot } from './control-socket.ts';
import { formatShow, formatShowJson } from './show-format.ts';
import type { ShowWhat, Snapshot } from '../endpoint/snapshot.ts';

const WHATS: readonly ShowWhat[] = ['all', 'peers', 'routes', 'stats', 'bindings', 'binding-updates'];

export const SOCKET_DIRS = (): string[] => [runSocketDir(), fallbackSocketDir()];

function listSockets(): string[] {
  const out: string[] = [];
  for (const dir of SOCKET_DIRS()) {
    try {
      for (const f of readdirSync(dir).sort()) if (f.endsWith('.sock')) out.push(join(dir, f));
    } catch {
      /* no such dir */
    }
  }
  return out;
}

/** How a command names its endpoint: --socket PATH, --interface NAME (or IFACE), or neither. */
export interface EndpointChoice {
  socket?: string;
  interface?: string;
}

const IFNAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;

/** Which sockets to ask. */
export async function resolveSockets(cmd: string, opts: EndpointChoice): Promise<string[]> {
  if (opts.socket !== undefined && opts.interface !== undefined) {
    throw new CliError(`${cmd}: give --socket or an interface, not both`);
  }
  if (opts.socket !== undefined) return [opts.socket];
  if (opts.interface !== undefined) {
    if (!IFNAME_RE.test(opts.interface)) throw new CliError(`${cmd}: invalid interface name ${JSON.stringify(opts.interface)}`);
    const cands = socketPathCandidates(opts.interface);
    for (const c of cands) if (await isControlSocketLive(c)) return [c];
    return [cands[0]!];
  }
  const all = listSockets();
  if (all.length === 0) {
    throw new CliError(`no running endpoint (no control socket in ${SOCKET_DIRS().join(' or ')})`, 1);
  }
  const live: string[] = [];
  for (const s of all) if (await isControlSocketLive(s)) live.push(s);
  return live.length > 0 ? live : [all[0]!];
}

/** Exactly one endpoint (for down and ping): the one named, or the only one running. */
export async function resolveOneSocket(cmd: string, opts: EndpointChoice): Promise<string> {
  const socks = await resolveSockets(cmd, opts);
  if (socks.length > 1) {
    const names = socks.map((s) => basename(s, '.sock')).join(', ');
    throw new CliError(`${cmd}: several endpoints are running (${names}): name one (ipferry ${cmd} IFACE, or --socket PATH)`);
  }
  return socks[0]!;
}

/** A ControlError from a request becomes a runtime failure (exit 1) with the same line. */
export function asCliError(e: unknown): never {
  if (e instanceof ControlError) throw new CliError(e.message, 1);
  throw e;
}

export interface ShowFlags {
  json?: boolean;
  socket?: string;
  interface?: string;
  timeout?: string;
}

const SECTIONS = 'peers, routes, stats';

export async function showCommand(words: string[], flags: ShowFlags): Promise<number> {
  // `show`, `show SECTION`, `show IFACE`, `show IFACE SECTION` (wg's habit), and `show interfaces`.
  let iface = flags.interface;
  let what: ShowWhat | 'interfaces' = 'all';
  const [a, b] = words;
  const isSection = (w: string): boolean => (WHATS as readonly string[]).includes(w) || w === 'interfaces';
  if (b !== undefined) {
    if (iface !== undefined) throw new CliError(`show: interface given twice (${a} and --interface ${iface})`);
    if (!isSection(b)) throw new CliError(`show: unknown section ${b} (${SECTIONS})`);
    iface = a;
    what = b as ShowWhat | 'interfaces';
  } else if (a !== undefined) {
    if (isSection(a)) what = a as ShowWhat | 'interfaces';
    else if (iface !== undefined) throw new CliError(`show: unknown section ${a} (${SECTIONS})`);
    else if (!IFNAME_RE.test(a)) throw new CliError(`show: ${a} is neither a section (${SECTIONS}) nor an interface name`);
    else iface = a;
  }
  const timeoutMs = intOption('show', '--timeout', flags.timeout, 1, 600_000, 3000);

  const sockets = await resolveSockets('show', { socket: flags.socket, interface: iface });
  if (what === 'interfaces') {
    // wg show interfaces: the names of the running endpoints, one line.
    const names: string[] = [];
    for (const path of sockets) {
      try {
        names.push((await requestSnapshot(path, 'stats', { timeoutMs })).interface ?? basename(path, '.sock'));
      } catch (e) {
        asCliError(e);
      }
    }
    process.stdout.write(flags.json ? `${JSON.stringify(names)}\n` : `${names.join(' ')}\n`);
    return 0;
  }
  const results: Partial<Snapshot>[] = [];
  for (const path of sockets) {
    try {
      results.push(await requestSnapshot(path, what, { timeoutMs }));
    } catch (e) {
      if (e instanceof ControlError && e.kind === 'no-endpoint' && iface !== undefined && flags.interface === undefined) {
        throw new CliError(`no running endpoint for interface ${iface} (no control socket at ${path})`, 1);
      }
      asCliError(e);
    }
  }
  if (flags.json) {
    process.stdout.write(results.length === 1 ? formatShowJson(results[0]!) : `${JSON.stringify(results, null, 2)}\n`);
  } else {
    process.stdout.write(results.map((r) => formatShow(r, what as ShowWhat)).join('\n'));
  }
  return 0;
}
