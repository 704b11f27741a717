/**
 * Network-namespace helpers for integration tests.
 *
 *   if (!netnsAvailable()) return ctx.skip(NETNS_SKIP_REASON);
 *   const ns = createNetns('ipf-tun');          // unique name: ipf-tun-<pid>-<random>
 *   try {
 *     ns.exec(['ip', 'link', 'set', 'lo', 'up']);
 *     const ping = ns.spawn(['ping', '-c', '3', '-W', '1', '10.0.0.2']);
 *   } finally {
 *     ns.destroy();                              // kills what runs inside, deletes the namespace
 *   }
 *
 * Every namespace created here is also in a cleanup registry run on process exit and on
 * SIGINT/SIGTERM/SIGHUP, so a crashing test file still removes its namespaces. Everything is
 * synchronous (execFileSync with timeouts) so it also works inside an 'exit' handler.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export const NETNS_SKIP_REASON = 'needs root and `ip netns` (run as root with iproute2 installed)';

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

let available: boolean | undefined;

/** Root, iproute2 present, and a probe namespace can be created and deleted (cached). */
export function netnsAvailable(): boolean {
  if (available !== undefined) return available;
  available = false;
  if (!isRoot()) return available;
  const probe = `ipf-probe-${process.pid}-${randomBytes(3).toString('hex')}`;
  try {
    execFileSync('ip', ['netns', 'add', probe], { stdio: 'ignore', timeout: 10000 });
    available = true;
  } catch {
    return available;
  } finally {
    spawnSync('ip', ['netns', 'del', probe], { stdio: 'ignore', timeout: 10000 });
  }
  return available;
}

// ---------------------------------------------------------------- cleanup registry
const cleanups = new Map<number, () => void>();
let nextCleanupId = 1;
let hooked = false;

function runCleanups(): void {
  const fns = [...cleanups.values()].reverse();
  cleanups.clear();
  for (const fn of fns) {
    try {
      fn();
    } catch {
      // best effort: keep cleaning the rest
    }
  }
}

function onSignal(sig: NodeJS.Signals): void {
  runCleanups();
  process.removeListener(sig, onSignal);
  process.kill(process.pid, sig);
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', runCleanups);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSignal);
}

/** Run `fn` at process exit / on a fatal signal unless unregistered first (returned function). */
export function registerCleanup(fn: () => void): () => void {
  hook();
  const id = nextCleanupId++;
  cleanups.set(id, fn);
  return () => {
    cleanups.delete(id);
  };
}

/** Run every registered cleanup now (e.g. from afterAll). */
export function cleanupAll(): void {
  runCleanups();
}

// ---------------------------------------------------------------- namespaces
export interface ExecOptions {
  /** default 10 s */
  timeoutMs?: number;
  input?: string | Uint8Array;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Netns {
  readonly name: string;
  /** Run argv (or a `sh -c` string) inside the namespace; returns stdout, throws with stderr on failure. */
  exec(cmd: readonly string[] | string, opts?: ExecOptions): string;
  /** Like exec but never throws: exit code (-1 on timeout/spawn error), stdout, stderr. */
  run(cmd: readonly string[] | string, opts?: ExecOptions): ExecResult;
  /** Start a long-running process inside the namespace; it is killed (by pid) on destroy(). */
  spawn(cmd: readonly string[], opts?: SpawnOptions): ChildProcess;
  /** Kill spawned processes and anything else left inside, then delete the namespace. Idempotent. */
  destroy(): void;
}

function argvFor(name: string, cmd: readonly string[] | string): string[] {
  const argv = typeof cmd === 'string' ? ['sh', '-c', cmd] : [...cmd];
  return ['netns', 'exec', name, ...argv];
}

export function netnsExists(name: string): boolean {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8', timeout: 10000 });
  return (r.stdout ?? '').split('\n').some((l) => l.split(' ')[0] === name);
}

/** Kill every process still inside `name` (they are ours: the namespace is ours) and delete it. */
export function destroyNetns(name: string): void {
  const pids = spawnSync('ip', ['netns', 'pids', name], { encoding: 'utf8', timeout: 10000 });
  for (const p of (pids.stdout ?? '').split(/\s+/)) {
    const pid = Number(p);
    if (Number.isInteger(pid) && pid > 1 && pid !== process.pid) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore', timeout: 10000 });
}

/** Create a uniquely named namespace `<prefix>-<pid>-<6 hex>` with lo up. */
export function createNetns(prefix = 'ipf'): Netns {
  const name = `${prefix}-${process.pid}-${randomBytes(3).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', name], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10000 });
  const children = new Set<ChildProcess>();
  let destroyed = false;
  const destroy = (): void => {
    if (destroyed) return;
    destroyed = true;
    unregister();
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null && c.pid) {
        try {
          process.kill(c.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    children.clear();
    destroyNetns(name);
  };
  const unregister = registerCleanup(destroy);

  const run = (cmd: readonly string[] | string, opts: ExecOptions = {}): ExecResult => {
    const r = spawnSync('ip', argvFor(name, cmd), {
      encoding: 'utf8', timeout: opts.timeoutMs ?? 10000, input: opts.input, maxBuffer: 64 * 1024 * 1024,
    });
    return { code: r.error || r.status === null ? -1 : r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? (r.error?.message ?? '') };
  };
  const ns: Netns = {
    name,
    run,
    exec(cmd, opts) {
      const r = run(cmd, opts);
      if (r.code !== 0) {
        const what = typeof cmd === 'string' ? cmd : cmd.join(' ');
        throw new Error(`[netns ${name}] ${what}: ${r.code === -1 ? 'timed out or failed to start' : `exit ${r.code}`}: ${r.stderr.trim()}`);
      }
      return r.stdout;
    },
    spawn(cmd, opts = {}) {
      const child = spawn('ip', argvFor(name, cmd), { stdio: 'ignore', ...opts });
      children.add(child);
      child.on('exit', () => children.delete(child));
      child.on('error', () => children.delete(child));
      return child;
    },
    destroy,
  };
  try {
    ns.exec(['ip', 'link', 'set', 'lo', 'up']);
  } catch (e) {
    destroy();
    throw e;
  }
  return ns;
}
