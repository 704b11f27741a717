/**
 * `ipferry up CONFIG`: run an endpoint in the foreground.
 *
 *   1. load and validate the config   (error: one line, exit 2, nothing started)
 *   2. preflight checks                (error: one line, exit 2, nothing started)
 *   3. createEndpoint(config, { log, tun }) (the library's Endpoint), then ep.start()
 *   4. open the control socket (serves ep.snapshot() to `ipferry show`)
 *   5. SIGINT / SIGTERM / SIGHUP: close the socket, ep.stop() (routes removed, TUN gone), exit 0;
 *      a second signal exits at once (1). A fatal error while running also stops cleanly (1).
 * One log line per event on stderr.
 */
import { CliError, parseCommandArgs } from './args.ts';
import { loadConfig, type Config } from '../config/config.ts';
import { ControlServer } from './control-socket.ts';
import { createLogger, LOG_LEVELS, type Logger, type LogLevel } from './log.ts';
import { preflight } from './preflight.ts';
import { controlSocketPath } from './socket-path.ts';
import { Endpoint } from '../endpoint/endpoint.ts';
import type { Snapshot } from '../endpoint/snapshot.ts';

export const UP_HELP = `usage: ipferry up CONFIG [--log-level LEVEL] [--userspace]

Run a tunnel endpoint in the foreground from the JSON config file CONFIG.
Stop it with Ctrl-C (SIGINT) or SIGTERM: kernel routes are removed and the TUN device goes away.

options:
  --log-level LEVEL   error, warn, info or debug (default: the config's "log", else info)
  --userspace         no kernel TUN device (no root needed): only the endpoint's own stack
                      addresses are reachable through the tunnel
  --check             validate the config and run the preflight checks, then exit
  -h, --help          this help

exit codes: 0 stopped cleanly, 1 runtime failure, 2 config or preflight error
`;

/** What `up` needs from the endpoint library (Endpoint fits it). */
export interface EndpointHandle {
  start(): Promise<void>;
  stop(): Promise<void>;
  snapshot(): Snapshot | Promise<Snapshot>;
  /** When present, the control socket serves this instead (counters of this moment). */
  snapshotAsync?(): Promise<Snapshot>;
  /** Optional event source: 'error' (fatal) stops the endpoint. */
  on?(event: string, listener: (...args: unknown[]) => void): unknown;
}

export interface CreateEndpointOptions {
  log: Logger;
  /** false: in-memory device instead of a kernel TUN (`--userspace`). Default true. */
  tun?: boolean;
}

export type CreateEndpoint = (config: Config, options: CreateEndpointOptions) => EndpointHandle | Promise<EndpointHandle>;

/** The real endpoint (the library's Endpoint class); tests pass a fake through UpOptions. */
export const createRealEndpoint: CreateEndpoint = (config, options) => new Endpoint(config, { log: options.log, tun: options.tun });

export interface UpOptions {
  /** Arm a 3 s exit timer when done (default true; in-process tests turn it off). */
  exitTimer?: boolean;
  /** Builds the endpoint (default: createRealEndpoint). */
  createEndpoint?: CreateEndpoint;
}

const errLine = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split('\n')[0]!;

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, rej) => {
      t = setTimeout(() => rej(new Error(`${what} did not finish within ${ms / 1000} s`)), ms);
    }),
  ]);
}

export async function upCommand(args: string[], opts: UpOptions = {}): Promise<number> {
  const { values, positionals } = parseCommandArgs('up', args, {
    'log-level': { type: 'string' },
    userspace: { type: 'boolean' },
    check: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(UP_HELP);
    return 0;
  }
  if (positionals.length === 0) throw new CliError('up: missing CONFIG (usage: ipferry up CONFIG)');
  if (positionals.length > 1) throw new CliError(`up: unexpected argument ${positionals[1]} (usage: ipferry up CONFIG)`);
  const level = values['log-level'];
  if (level !== undefined && !LOG_LEVELS.includes(level as LogLevel)) {
    throw new CliError(`up: --log-level must be one of ${LOG_LEVELS.join(', ')}, got ${level}`);
  }

  // 1. config, 2. preflight: ConfigError / PreflightError propagate to the dispatcher (exit 2).
  const config = loadConfig(positionals[0]!);
  const tun = !values.userspace;
  await preflight(config, { noTun: !tun });
  const log = createLogger({ level: (level as LogLevel | undefined) ?? config.log, prefix: config.interface.name });
  if (values.check) {
    process.stdout.write(`${config.source}: ok (${config.peers.length} peer${config.peers.length === 1 ? '' : 's'})\n`);
    return 0;
  }

  // 3. endpoint
  const createEndpoint = opts.createEndpoint ?? createRealEndpoint;
  let ep: EndpointHandle | undefined;
  let server: ControlServer | undefined;

  let stopping: Promise<number> | null = null;
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));

  const shutdown = (why: string, code: number): Promise<number> => {
    if (stopping) return stopping;
    log.info(`${why}: stopping`);
    stopping = (async () => {
      let rc = code;
      try {
        await server?.close();
      } catch (e) {
        log.warn(`warning: closing the control socket: ${errLine(e)}`);
      }
      try {
        if (ep) await withTimeout(ep.stop(), 10_000, 'stop');
        log.info('shutdown complete');
      } catch (e) {
        log.error(`stop failed: ${errLine(e)}`);
        rc = 1;
      }
      resolveDone(rc);
      return rc;
    })();
    return stopping;
  };

  let starting = true;
  let pendingSignal: NodeJS.Signals | null = null;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (starting && !pendingSignal) {
      pendingSignal = sig; // stop once start() returns, so nothing half-built is left behind
      log.info(`${sig}: stopping once started`);
      return;
    }
    if (stopping || pendingSignal) {
      log.error(`${sig} again: exiting without cleanup`);
      process.exit(1);
    }
    void shutdown(sig, 0);
  };
  const onFatal = (e: unknown): void => {
    log.error(`fatal: ${errLine(e)}`);
    void shutdown('fatal error', 1);
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);
  process.on('uncaughtException', onFatal);
  process.on('unhandledRejection', onFatal);

  try {
    try {
      ep = await createEndpoint(config, { log, tun });
      ep.on?.('error', onFatal);
      await ep.start();
    } catch (e) {
      log.error(`start failed: ${errLine(e)}`);
      if (ep) await withTimeout(ep.stop(), 10_000, 'stop').catch((e2: unknown) => log.error(`stop failed: ${errLine(e2)}`));
      return 1;
    } finally {
      starting = false;
    }
    if (pendingSignal) return await shutdown(pendingSignal, 0);

    // 4. control socket (after start: a snapshot needs a running endpoint)
    const controlPath = controlSocketPath(config);
    if (controlPath !== null && !stopping) {
      try {
        const handle = ep;
        const snap = handle.snapshotAsync !== undefined ? () => handle.snapshotAsync!() : () => handle.snapshot();
        server = await ControlServer.start({ path: controlPath, snapshot: snap, log });
        log.info(`control socket ${controlPath}`);
      } catch (e) {
        log.error(`control socket: ${errLine(e)}`);
        return await shutdown('control socket failed', 1);
      }
    }
    if (stopping) await stopping; // a signal arrived while starting
    return await done;
  } finally {
    for (const s of signals) process.off(s, onSignal);
    process.off('uncaughtException', onFatal);
    process.off('unhandledRejection', onFatal);
    // Something the endpoint left behind (a timer, a worker) must not keep us alive.
    if (opts.exitTimer !== false) setTimeout(() => process.exit(process.exitCode ?? 0), 3000).unref();
  }
}
