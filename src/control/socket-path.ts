/**
 * Where the control socket lives: /run/ipferry/<interface>.sock (/run/ipferry/<netns>/<interface>.sock
 * inside a named network namespace), or $TMPDIR/ipferry-<uid>[-<netns>]/<interface>.sock when /run
 * is not writable. `up` resolves the config's CONTROL_DEFAULT with it; `show` probes the candidates.
 */
import { accessSync, constants as fsConstants, existsSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { CONTROL_DEFAULT, type Config } from '../config/config.ts';

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

/** The control socket path a config asks for (its default resolved here); null = none. */
export function controlSocketPath(config: Pick<Config, 'control' | 'interface'>): string | null {
  return config.control === CONTROL_DEFAULT ? defaultSocketPath(config.interface.name) : config.control;
}
