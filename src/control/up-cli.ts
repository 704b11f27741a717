/**
 * `ipferry up CONFIG`: run an endpoint in the foreground.
 *
 *   1. find, load and validate the config; look up peer hostnames
 *                                       (error: one line, exit 2, nothing started)
 *   2. preflight checks                (error: one line, exit 2, nothing started)
 *   3. createEndpoint(config, { log, tun }) (the library's Endpoint), then ep.start()
 *   4. open the control socket (show, ping, reload, capture, `ipferry down`) and the metrics
 *      listener
 *   5. SIGHUP or a reload request (`ipferry reload`): read the config file again, look its names
 *      up, apply it (Endpoint.reload: peers, routes, rules, keys live; one "needs restart" line
 *      for the rest) and the log level and format; a config that does not load or cannot run
 *      keeps the running one and logs the one-line error (the reload request answers it too).
 *   6. SIGINT / SIGTERM / a stop request on the control socket (`ipferry down`): close the
 *      socket, ep.stop() (routes removed, TUN gone), exit 0; a second signal exits at once (1).
 *      A fatal error while running also stops cleanly (1); so does the TUN being deleted under
 *      the running endpoint (`ip link del`): one line saying so, routes and socket removed, exit 1,
 *      and the service's Restart=on-failure brings it back with a new TUN.
 * One log line per event on stderr, as text or JSON (--log-format, config `log.format`).
 */
import { CliError } from './args.ts';
import { findConfigFile, loadConfig, resolveConfig, type Config } from '../config/config.ts';
import type { CaptureRing } from '../endpoint/capture-ring.ts';
import type { ReloadResult } from '../endpoint/endpoint.ts';
import { serveCapture } from './capture-session.ts';
import { ControlServer, type StreamHandler } from './control-socket.ts';
import { createLogger, LOG_FORMATS, LOG_LEVELS, type LogFormat, type Logger, type LogLevel } from './log.ts';
import { MetricsServer } from './metrics.ts';
import { preflight } from './preflight.ts';
import { controlSocketPath } from './socket-path.ts';
import { DeviceGoneError, Endpoint } from '../endpoint/endpoint.ts';
import type { RouteSnapshot, ShowWhat, Snapshot, SnapshotOptions } from '../endpoint/snapshot.ts';

/** What `up` needs from the endpoint library (Endpoint fits it). */
export interface EndpointHandle {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The parts `what` names (see SnapshotProvider: routes only for 'all' and 'routes'). */
  snapshot(what?: ShowWhat, opts?: SnapshotOptions): Snapshot | Promise<Snapshot>;
  /** When present, the control socket serves this instead (counters of this moment). */
  snapshotAsync?(what?: ShowWhat, opts?: SnapshotOptions): Promise<Snapshot>;
  /** When present, the control socket streams the route list from it a page at a time. */
  routePages?(pageSize: number): AsyncIterableIterator<RouteSnapshot[]>;
  /** Ping from the endpoint's own stack: resolves with the RTT in ms (`ipferry ping`). */
  ping?(address: string, size?: number, timeoutMs?: number, from?: string): Promise<number>;
  /** Optional event source: 'error' (fatal) stops the endpoint. */
  on?(event: string, listener: (...args: unknown[]) => void): unknown;
  /** Apply a new config (SIGHUP, `ipferry reload`); throws a ConfigError and changes nothing when it cannot. */
  reload?(config: Config): ReloadResult;
  /** Drops as debug events (--log-level debug). */
  setDebugEvents?(on: boolean): void;
  /** `ipferry capture`: see Endpoint.startCapture / stopCapture. */
  startCapture?(view: 'inner' | 'outer', opts: { bytes?: number; snaplen?: number }): CaptureRing;
  stopCapture?(ring: CaptureRing): void;
  /** The UDP socket's "address:port" (the endpoint's side of captured outer packets). */
  readonly listen?: string;
}

export interface CreateEndpointOptions {
  log: Logger;
  /** false: in-memory device instead of a kernel TUN (`--userspace`). Default true. */
  tun?: boolean;
}

export type CreateEndpoint = (config: Config, options: CreateEndpointOptions) => EndpointHandle | Promise<EndpointHandle>;

/** The real endpoint (the library's Endpoint class); tests pass a fake through UpOptions. */
export const createRealEndpoint: CreateEndpoint = (config, options) => new Endpoint(config, { log: options.log, onEvent: options.log.event, tun: options.tun });

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

/** `up`'s options as the command line gave them. */
export interface UpFlags {
  logLevel?: string;
  logFormat?: string;
  userspace?: boolean;
  check?: boolean;
}

export async function upCommand(configArg: string, flags: UpFlags, opts: UpOptions = {}): Promise<number> {
  const level = flags.logLevel;
  if (level !== undefined && !LOG_LEVELS.includes(level as LogLevel)) {
    throw new CliError(`up: --log-level must be one of ${LOG_LEVELS.join(', ')}, got ${level}`);
  }
  const format = flags.logFormat;
  if (format !== undefined && !LOG_FORMATS.includes(format as LogFormat)) {
    throw new CliError(`up: --log-format must be one of ${LOG_FORMATS.join(', ')}, got ${format}`);
  }

  // 1. config, 2. preflight: ConfigError / PreflightError propagate to the dispatcher (exit 2).
  const configFile = findConfigFile(configArg);
  const config = await resolveConfig(loadConfig(configFile));
  const tun = !flags.userspace;
  await preflight(config, { noTun: !tun });
  const log = createLogger({
    level: (level as LogLevel | undefined) ?? config.log,
    format: (format as LogFormat | undefined) ?? config.logFormat,
    prefix: config.interface.name,
  });
  for (const p of config.peers) {
    if (p.endpoint.hostname !== null) log.info(`peer ${p.name}: ${p.endpoint.hostname} is ${p.endpoint.host}`);
  }
  if (flags.check) {
    process.stdout.write(`${config.source}: ok (${config.peers.length} peer${config.peers.length === 1 ? '' : 's'})\n`);
    return 0;
  }

  // 3. endpoint
  const createEndpoint = opts.createEndpoint ?? createRealEndpoint;
  let ep: EndpointHandle | undefined;
  let server: ControlServer | undefined;
  let metrics: MetricsServer | undefined;

  let stopping: Promise<number> | null = null;
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));

  /** Stop once (`why` null: the reason was logged already). */
  const shutdown = (why: string | null, code: number): Promise<number> => {
    if (stopping) return stopping;
    if (why !== null) log.info(`${why}: stopping`);
    stopping = (async () => {
      let rc = code;
      try {
        await server?.close();
      } catch (e) {
        log.warn(`warning: closing the control socket: ${errLine(e)}`);
      }
      try {
        await metrics?.close();
      } catch (e) {
        log.warn(`warning: closing the metrics listener: ${errLine(e)}`);
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
  let pendingSignal: string | null = null;
  const onSignal = (sig: NodeJS.Signals | 'stop request'): void => {
    if (starting && !pendingSignal) {
      pendingSignal = sig; // stop once start() returns, so nothing half-built is left behind
      log.info(`${sig}: stopping once started`);
      return;
    }
    if (stopping || pendingSignal) {
      if (sig === 'stop request') return; // already stopping: `ipferry down` twice is harmless
      log.error(`${sig} again: exiting without cleanup`);
      process.exit(1);
    }
    void shutdown(sig, 0);
  };
  // 5. reload: one at a time, in order
  let reloading: Promise<unknown> = Promise.resolve();
  const reload = (why: string): Promise<ReloadAnswer> => {
    const run = async (): Promise<ReloadAnswer> => {
      const handle = ep;
      if (handle === undefined || starting || stopping) throw new Error(`${why}: not running (starting or stopping)`);
      if (handle.reload === undefined) throw new Error(`${why}: this endpoint cannot reload`);
      let result: ReloadResult;
      let next: Config;
      try {
        next = await resolveConfig(loadConfig(configFile));
        result = handle.reload(next);
      } catch (e) {
        log.event({ level: 'error', event: 'reload-failed', msg: `${why}: ${errLine(e)}; still running the previous config`, fields: { source: configFile } });
        throw e;
      }
      const applied = [...result.applied];
      // the log settings are the CLI's part of the config (the command line wins)
      if (level === undefined && next.log !== log.level) {
        applied.push(`log level ${log.level} -> ${next.log}`);
        log.setLevel(next.log);
      }
      if (format === undefined && next.logFormat !== log.format) {
        applied.push(`log format ${log.format} -> ${next.logFormat}`);
        log.setFormat(next.logFormat);
      }
      handle.setDebugEvents?.(log.level === 'debug');
      return { interface: config.interface.name, source: configFile, applied, restart: result.restart };
    };
    const p = reloading.then(run, run);
    reloading = p.catch(() => {});
    return p;
  };
  const onHangup = (): void => {
    reload('SIGHUP').catch(() => {}); // logged by reload
  };
  const onFatal = (e: unknown): void => {
    if (e instanceof DeviceGoneError) {
      // the TUN was deleted under us: one line, a clean stop, exit 1 (a restart re-creates it)
      if (!stopping) log.error(`${errLine(e)}; stopping with exit code 1 (a restart creates the TUN again, with its addresses and routes)`);
      void shutdown(null, 1);
      return;
    }
    log.error(`fatal: ${errLine(e)}`);
    void shutdown('fatal error', 1);
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
  for (const s of signals) process.on(s, onSignal);
  process.on('SIGHUP', onHangup);
  process.on('uncaughtException', onFatal);
  process.on('unhandledRejection', onFatal);

  try {
    try {
      ep = await createEndpoint(config, { log, tun });
      ep.on?.('error', onFatal);
      await ep.start();
      if (log.level === 'debug') ep.setDebugEvents?.(true);
    } catch (e) {
      log.error(`start failed: ${errLine(e)}`);
      if (ep) await withTimeout(ep.stop(), 10_000, 'stop').catch((e2: unknown) => log.error(`stop failed: ${errLine(e2)}`));
      return 1;
    } finally {
      starting = false;
    }
    if (pendingSignal) return await shutdown(pendingSignal, 0);

    // 4. control socket and metrics (after start: a snapshot needs a running endpoint)
    const handle = ep;
    const controlPath = controlSocketPath(config);
    if (controlPath !== null && !stopping) {
      try {
        server = await ControlServer.start({
          path: controlPath,
          snapshot: (what, o) => (handle.snapshotAsync !== undefined ? handle.snapshotAsync(what, o) : handle.snapshot(what, o)),
          routes: handle.routePages !== undefined ? (n) => handle.routePages!(n) : undefined,
          handlers: { echo: (req) => echo(handle, req), reload: () => reload('reload request') },
          streams: captureStream(handle, config.interface.name, log),
          onStop: () => onSignal('stop request'),
          mode: config.controlMode,
          group: config.controlGroup,
          log,
        });
        log.info(`control socket ${controlPath}`);
      } catch (e) {
        log.error(`control socket: ${errLine(e)}`);
        return await shutdown('control socket failed', 1);
      }
    }
    if (config.metrics !== null && !stopping) {
      try {
        metrics = await MetricsServer.start({ host: config.metrics.host, port: config.metrics.port, collect: () => handle.snapshot('stats'), log });
        log.info(`metrics on http://${metrics.address}/metrics`);
      } catch (e) {
        log.error(`metrics: ${errLine(e)}`);
        return await shutdown('metrics listener failed', 1);
      }
    }
    if (stopping) await stopping; // a signal arrived while starting
    return await done;
  } finally {
    for (const s of signals) process.off(s, onSignal);
    process.off('SIGHUP', onHangup);
    process.off('uncaughtException', onFatal);
    process.off('unhandledRejection', onFatal);
    // Something the endpoint left behind (a timer, a worker) must not keep us alive.
    if (opts.exitTimer !== false) setTimeout(() => process.exit(process.exitCode ?? 0), 3000).unref();
  }
}

/** The control socket's "echo" request: one ping from the endpoint's own stack. */
async function echo(ep: EndpointHandle, req: Record<string, unknown>): Promise<{ rttMs: number }> {
  if (ep.ping === undefined) throw new Error('this endpoint cannot ping');
  const { address, size, timeoutMs, from } = req;
  if (typeof address !== 'string') throw new Error('echo needs an "address" string');
  const n = (v: unknown, dflt: number, max: number): number => (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max ? v : dflt);
  const rttMs = await ep.ping(address, n(size, 56, 65_507), n(timeoutMs, 2000, 60_000), typeof from === 'string' ? from : undefined);
  return { rttMs };
}

/** What a reload request answers (and `ipferry reload` prints). */
export interface ReloadAnswer {
  interface: string;
  source: string;
  applied: string[];
  restart: string[];
}

/** The control socket's "capture" stream, when the endpoint can capture. */
function captureStream(ep: EndpointHandle, interfaceName: string, log: Logger): Record<string, StreamHandler> {
  const { startCapture, stopCapture } = ep;
  if (startCapture === undefined || stopCapture === undefined) return {};
  const source = { startCapture: startCapture.bind(ep), stopCapture: stopCapture.bind(ep) };
  return {
    capture: (req, sock, rest) => serveCapture(req, sock, rest, { source, interfaceName, listen: () => ep.listen ?? '', log: (l) => log.event({ level: 'info', event: 'capture', msg: l }) }),
  };
}
