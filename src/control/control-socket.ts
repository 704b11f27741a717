/**
 * The control socket: a Unix stream socket (mode 0600 unless the config sets `control.mode` and
 * `control.group`) a running endpoint serves, speaking newline-delimited JSON, one response line
 * per request line:
 *
 *   -> {"cmd":"show","what":"peers"}        what: all | peers | routes | stats | bindings | binding-updates (default all)
 *   <- {"ok":true,"data":{...}}             data: the Snapshot, or the part asked for
 *   -> {"cmd":"ping"}
 *   <- {"ok":true,"data":{"pid":1234,"interface":"ferry0"}}
 *   -> {"cmd":"stop"}                        `ipferry down`: answered, then the endpoint stops
 *   <- {"ok":true,"data":{"pid":1234,"interface":"ferry0"}}
 *   <- {"ok":false,"error":"unknown command frobnicate"}
 *
 * Other commands are added by the caller through `handlers` (`ipferry up` adds "echo": a ping
 * from the endpoint's own stack, and "reload"). Only `show all|routes` builds the route list:
 * `show peers`, `show stats`, `ping` and `stop` cost the same with a million routes as with none.
 * A handler's ConfigError is answered with "kind":"config" (the CLI exits 2 for it).
 *
 * Streaming requests (`streams`, e.g. "capture"): the handler takes the connection over after
 * the request line: it writes its own answer line and then whatever it streams, reads further
 * lines itself (a "stop"), and ends the connection.
 *
 * Errors are ControlError with a one-line message (the CLI prefixes "ipferry: ").
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, lstatSync, mkdirSync, readFileSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { ConfigError } from '../config/config.ts';
import type { ShowWhat, Snapshot, SnapshotProvider } from '../endpoint/snapshot.ts';

export class ControlError extends Error {
  override name = 'ControlError';
  constructor(
    message: string,
    /** 'no-endpoint' | 'permission' | 'timeout' | 'protocol' | 'remote' | 'config' | 'busy' | 'path' */
    readonly kind: string,
  ) {
    super(message);
  }
}

export interface ControlRequest {
  cmd: string;
  what?: ShowWhat;
  [key: string]: unknown;
}

export type ControlResponse = { ok: true; data: unknown } | { ok: false; error: string; kind?: 'config' };

export type ControlHandler = (req: ControlRequest) => unknown | Promise<unknown>;

/**
 * A streaming request's handler: it owns `sock` from the request on (answer line, stream, end);
 * `rest` is what the client sent after the request line so far.
 */
export type StreamHandler = (req: ControlRequest, sock: Socket, rest: string) => void | Promise<void>;

export interface ControlServerOptions {
  path: string;
  snapshot: SnapshotProvider;
  /** Extra commands (name -> handler returning the response data). */
  handlers?: Record<string, ControlHandler>;
  /** Streaming commands (name -> handler that takes the connection over). */
  streams?: Record<string, StreamHandler>;
  log?: (line: string) => void;
  /** Largest request line accepted (default 64 KiB). */
  maxLine?: number;
  /** Close a connection idle this long (default 30 s). */
  idleMs?: number;
  /** Socket file mode (default 0600). */
  mode?: number;
  /** Group (name or gid) that owns the socket file, so its members can use it; default none. */
  group?: string | number | null;
  /** `stop` requests: called once the answer is written (`ipferry down`); without it, refused. */
  onStop?: () => void;
}

const SHOW_WHAT: readonly ShowWhat[] = ['all', 'peers', 'routes', 'stats', 'bindings', 'binding-updates'];

/** The part of a snapshot `show WHAT` returns (always with interface/listen/pid). */
export function selectSnapshot(s: Snapshot, what: ShowWhat): Partial<Snapshot> {
  if (what === 'all') return s;
  if (what === 'bindings' || what === 'binding-updates') {
    const m = s.mobility;
    const part = m === undefined ? undefined : what === 'bindings' ? { roles: m.roles, bindings: m.bindings } : { roles: m.roles, node: m.node, careOf: m.careOf, atHome: m.atHome, bindingUpdates: m.bindingUpdates, handovers: m.handovers };
    return { interface: s.interface, pid: s.pid, ...(part ? { mobility: part } : {}) };
  }
  const { peers, routes, stats, mobility: _m, ...head } = s;
  if (what === 'peers') return { ...head, peers };
  if (what === 'routes') return { interface: s.interface, routes };
  return { interface: s.interface, pid: s.pid, stats };
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

/** A group name or number as a gid: /etc/group first, then NSS (`getent group`). */
export function groupId(group: string | number): number {
  if (typeof group === 'number') return group;
  if (/^\d+$/.test(group)) return Number(group);
  try {
    for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[0] === group && f[2] !== undefined && /^\d+$/.test(f[2])) return Number(f[2]);
    }
  } catch {
    /* no /etc/group: ask NSS */
  }
  try {
    const out = execFileSync('getent', ['group', group], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 });
    const gid = out.split(':')[2];
    if (gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  } catch {
    /* not found */
  }
  throw new ControlError(`unknown group ${group}`, 'path');
}

/** Try to connect: true when something accepts on `path`. */
function probe(path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const s = connect(path);
    const done = (v: boolean): void => {
      clearTimeout(t);
      s.destroy();
      resolvePromise(v);
    };
    const t = setTimeout(() => done(true), timeoutMs); // something is there but slow: treat as live
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** True when an endpoint answers on `path` (a socket file nobody accepts on is stale). */
export async function isControlSocketLive(path: string): Promise<boolean> {
  try {
    if (!lstatSync(path).isSocket()) return false;
  } catch {
    return false;
  }
  return probe(path);
}

/**
 * Create the socket's directory (0700) if missing; refuse a directory someone else controls.
 * Returns the top directory it created (to remove on close), or undefined.
 */
function prepareDir(dir: string): string | undefined {
  let created: string | undefined;
  try {
    created = mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new ControlError(`cannot create ${dir}: ${errno(e) ?? String(e)}`, 'path');
  }
  const st = lstatSync(dir);
  const uid = process.getuid?.();
  if (!st.isDirectory()) throw new ControlError(`${dir} is not a directory`, 'path');
  // A shared temp dir: only trust a directory we own and nobody else can write.
  if (uid !== undefined && /ipferry-\d+(-[\w.-]+)?$/.test(dir) && (st.uid !== uid || (st.mode & 0o022) !== 0)) {
    throw new ControlError(`${dir} is not owned by uid ${uid} or is writable by others; refusing to use it`, 'path');
  }
  return created;
}

/** Dirs only their owner may enter are not reachable by a group; widen the ones we created. */
function dirModeFor(mode: number): number {
  return 0o700 | (mode & 0o060 ? 0o050 : 0) | (mode & 0o006 ? 0o005 : 0);
}

/** chmod (and chgrp) the socket; make a directory we created reachable to the same audience. */
function applyAccess(path: string, opts: ControlServerOptions, createdDir: boolean, log?: (line: string) => void): void {
  const mode = opts.mode ?? 0o600;
  const gid = opts.group === undefined || opts.group === null ? null : groupId(opts.group);
  try {
    if (gid !== null) chownSync(path, -1, gid);
    chmodSync(path, mode);
  } catch (e) {
    throw new ControlError(`cannot set group/mode of ${path}: ${errno(e) ?? String(e)}`, 'path');
  }
  const dir = dirname(path);
  const dirMode = dirModeFor(mode);
  if (dirMode === 0o700) return;
  if (createdDir) {
    try {
      if (gid !== null) chownSync(dir, -1, gid);
      chmodSync(dir, dirMode);
    } catch (e) {
      throw new ControlError(`cannot set group/mode of ${dir}: ${errno(e) ?? String(e)}`, 'path');
    }
    return;
  }
  const st = statSync(dir);
  if ((st.mode & dirMode & 0o055) !== (dirMode & 0o055)) {
    log?.(`warning: control socket mode ${mode.toString(8).padStart(4, '0')} but ${dir} is mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}: others cannot reach the socket`);
  }
}

export class ControlServer {
  private readonly sockets = new Set<Socket>();
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly server: Server,
    /** Directories start() created, innermost first: removed on close when empty. */
    private readonly createdDirs: string[],
  ) {}

  /**
   * Listen on `opts.path`: removes a stale socket file (nothing accepting on it), refuses when
   * another endpoint answers there, sets mode 0600.
   */
  static async start(opts: ControlServerOptions): Promise<ControlServer> {
    const { path } = opts;
    const top = prepareDir(dirname(path));
    const createdDirs: string[] = [];
    if (top !== undefined) {
      for (let d = dirname(path); d.length >= top.length; d = dirname(d)) createdDirs.push(d);
    }
    let st: ReturnType<typeof lstatSync> | undefined;
    try {
      st = lstatSync(path);
    } catch (e) {
      if (errno(e) !== 'ENOENT') throw new ControlError(`${path}: ${errno(e) ?? String(e)}`, 'path');
    }
    if (st !== undefined) {
      if (!st.isSocket()) throw new ControlError(`${path} exists and is not a socket`, 'path');
      if (await probe(path)) throw new ControlError(`an endpoint is already running at ${path}`, 'busy');
      try {
        unlinkSync(path); // stale: left by an endpoint that died
        opts.log?.(`removed stale control socket ${path}`);
      } catch (e) {
        if (errno(e) !== 'ENOENT') throw new ControlError(`cannot remove stale ${path}: ${errno(e)}`, 'path');
      }
    }

    const maxLine = opts.maxLine ?? 64 * 1024;
    const idleMs = opts.idleMs ?? 30_000;
    let self: ControlServer | undefined;
    const server = createServer((sock) => {
      self?.sockets.add(sock);
      sock.once('close', () => self?.sockets.delete(sock));
      sock.setTimeout(idleMs, () => sock.destroy());
      sock.on('error', () => sock.destroy());
      let buf = '';
      let chain: Promise<void> = Promise.resolve();
      sock.setEncoding('utf8');
      const onData = (chunk: string): void => {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line === '') continue;
          const stream = streamRequest(line, opts);
          if (stream !== null) {
            // the handler owns the connection from here, after the answers before it
            sock.off('data', onData);
            const rest = buf;
            buf = '';
            chain = chain.then(async () => {
              try {
                await stream.handler(stream.req, sock, rest);
              } catch (e) {
                const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0]!;
                opts.log?.(`control: ${stream.req.cmd} failed: ${msg}`);
                sock.destroy();
              }
            });
            return;
          }
          // Answer in order, one line per request.
          chain = chain.then(async () => {
            const resp = await handle(line, opts);
            const stop = stopRequested.has(resp);
            // The answer goes out first; a stop request stops the endpoint once it is written.
            if (!sock.destroyed) sock.write(`${JSON.stringify(resp)}\n`, () => stop && opts.onStop?.());
            else if (stop) opts.onStop?.();
          });
        }
        if (buf.length > maxLine) {
          sock.end(`${JSON.stringify({ ok: false, error: `request longer than ${maxLine} bytes` })}\n`);
          buf = '';
        }
      };
      sock.on('data', onData);
    });

    // Create the socket file 0600 from the start (umask cannot be set in worker threads: there
    // the 0700 directory and the chmod below cover it).
    let oldMask: number | undefined;
    try {
      oldMask = process.umask(0o177);
    } catch {
      oldMask = undefined;
    }
    try {
      await new Promise<void>((res, rej) => {
        server.once('error', rej);
        server.listen(path, () => {
          server.off('error', rej);
          res();
        });
      });
    } catch (e) {
      throw new ControlError(`cannot listen on ${path}: ${errno(e) ?? String(e)}`, 'path');
    } finally {
      if (oldMask !== undefined) process.umask(oldMask);
    }
    try {
      applyAccess(path, opts, top !== undefined, opts.log);
    } catch (e) {
      server.close();
      throw e;
    }
    server.on('error', (e) => opts.log?.(`control socket error: ${e.message}`));
    self = new ControlServer(path, server, createdDirs);
    return self;
  }

  /** Stop accepting, drop open connections, remove the socket file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((res) => this.server.close(() => res()));
    try {
      unlinkSync(this.path); // net.Server removes it too; make sure
    } catch {
      /* already gone */
    }
    for (const d of this.createdDirs) {
      try {
        rmdirSync(d); // only when empty: another endpoint's socket keeps it
      } catch {
        break;
      }
    }
  }
}

/** Convenience: `await startControlServer({ path, snapshot: () => ep.snapshot() })`. */
export function startControlServer(opts: ControlServerOptions): Promise<ControlServer> {
  return ControlServer.start(opts);
}

/** The request on `line` when it names a streaming command (else null: handle() answers it). */
function streamRequest(line: string, opts: ControlServerOptions): { req: ControlRequest; handler: StreamHandler } | null {
  if (opts.streams === undefined) return null;
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const cmd = (v as ControlRequest).cmd;
  if (typeof cmd !== 'string' || !Object.prototype.hasOwnProperty.call(opts.streams, cmd)) return null;
  return { req: v as ControlRequest, handler: opts.streams[cmd]! };
}

/** Answers to `stop` requests: the server calls onStop once such an answer is written. */
const stopRequested = new WeakSet<ControlResponse>();

async function handle(line: string, opts: ControlServerOptions): Promise<ControlResponse> {
  let req: ControlRequest;
  try {
    const v: unknown = JSON.parse(line);
    if (typeof v !== 'object' || v === null || Array.isArray(v) || typeof (v as ControlRequest).cmd !== 'string') {
      return { ok: false, error: 'request must be a JSON object with a "cmd" string' };
    }
    req = v as ControlRequest;
  } catch {
    return { ok: false, error: 'request is not valid JSON' };
  }
  try {
    if (req.cmd === 'show') {
      const what = req.what ?? 'all';
      if (!SHOW_WHAT.includes(what)) return { ok: false, error: `cannot show ${String(what)} (peers, routes, stats)` };
      return { ok: true, data: selectSnapshot(await opts.snapshot(what), what) };
    }
    if (req.cmd === 'ping' || req.cmd === 'stop') {
      const s = await opts.snapshot('stats');
      const data = { pid: s.pid, interface: s.interface };
      if (req.cmd === 'ping') return { ok: true, data };
      if (opts.onStop === undefined) return { ok: false, error: 'this endpoint cannot be stopped through its control socket' };
      const resp: ControlResponse = { ok: true, data };
      stopRequested.add(resp);
      return resp;
    }
    const h = opts.handlers?.[req.cmd];
    if (h !== undefined && Object.prototype.hasOwnProperty.call(opts.handlers, req.cmd)) {
      return { ok: true, data: (await h(req)) ?? null };
    }
    return { ok: false, error: `unknown command ${req.cmd}` };
  } catch (e) {
    const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0]!;
    // a handler's ConfigError is its answer (the handler logs what it needs to)
    if (!(e instanceof ConfigError)) opts.log?.(`control: ${req.cmd} failed: ${msg}`);
    return e instanceof ConfigError ? { ok: false, error: msg, kind: 'config' } : { ok: false, error: msg };
  }
}

// ---------------------------------------------------------------------------------------------
// Client

export interface RequestOptions {
  /** Give up after this long (default 3000 ms). */
  timeoutMs?: number;
}

/** Send one request, resolve with the response's data; ControlError on any failure. */
export function controlRequest(path: string, req: ControlRequest, opts: RequestOptions = {}): Promise<unknown> {
  const timeoutMs = opts.timeoutMs ?? 3000;
  return new Promise((resolvePromise, rejectPromise) => {
    const sock = connect(path);
    let buf = '';
    let settled = false;
    const finish = (err: ControlError | null, data?: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) rejectPromise(err);
      else resolvePromise(data);
    };
    const timer = setTimeout(
      () => finish(new ControlError(`no answer from ${path} within ${timeoutMs / 1000} s`, 'timeout')),
      timeoutMs,
    );
    sock.setEncoding('utf8');
    sock.once('connect', () => sock.write(`${JSON.stringify(req)}\n`));
    sock.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      let resp: ControlResponse;
      try {
        resp = JSON.parse(buf.slice(0, nl)) as ControlResponse;
      } catch {
        finish(new ControlError(`${path}: bad response (not JSON)`, 'protocol'));
        return;
      }
      if (resp.ok) finish(null, resp.data);
      else finish(new ControlError(`${path}: ${resp.error}`, resp.kind === 'config' ? 'config' : 'remote'));
    });
    sock.once('end', () => finish(new ControlError(`${path}: connection closed without an answer`, 'protocol')));
    sock.once('error', (e) => {
      const code = errno(e);
      if (code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'ENOTSOCK') {
        finish(new ControlError(`no running endpoint at ${path}`, 'no-endpoint'));
      } else if (code === 'EACCES' || code === 'EPERM') {
        finish(new ControlError(`permission denied on ${path} (try as root, or as a member of the group the config's control.group names)`, 'permission'));
      } else {
        finish(new ControlError(`${path}: ${code ?? e.message}`, 'protocol'));
      }
    });
  });
}

/** `show WHAT` through the socket. */
export async function requestSnapshot(path: string, what: ShowWhat = 'all', opts?: RequestOptions): Promise<Partial<Snapshot>> {
  return (await controlRequest(path, { cmd: 'show', what }, opts)) as Partial<Snapshot>;
}
