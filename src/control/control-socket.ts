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
 * from the endpoint's own stack, and "reload"). Only `show all|routes` builds the route list: `show peers`,
 * `show stats`, `ping` and `stop` cost the same with a million routes as with none. With a
 * `routes` source (the endpoint's routePages) the route list is streamed: the answer line is
 * written a page of routes at a time, each page built when the socket has taken the previous
 * one, so neither a big table nor a slow client stalls the data plane or grows our memory.
 *
 * Limits (control-connection.ts has the per-connection ones): at most `maxConnections` clients at
 * once (one more is answered {"ok":false,"error":"busy: ...","kind":"busy"} and closed), at most
 * `maxQueued` requests read ahead per connection, writes that wait for 'drain' and give up on a
 * client that reads nothing for `writeTimeoutMs`.
 * A handler's ConfigError is answered with "kind":"config" (the CLI exits 2 for it).
 *
 * Streaming requests (`streams`, e.g. "capture"): the handler takes the connection over after
 * the request line and the answers before it: it writes its own answer line and then whatever it
 * streams, reads further lines itself (a "stop"), and ends the connection.
 *
 * Errors are ControlError with a one-line message (the CLI prefixes "ipferry: ").
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, lstatSync, mkdirSync, readFileSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { ConfigError } from '../config/config.ts';
import type { RoutePages, RouteSnapshot, ShowWhat, Snapshot, SnapshotProvider } from '../endpoint/snapshot.ts';
import { ControlConnection, newControlServerStats, type ControlServerStats, type Reply, type Takeover } from './control-connection.ts';

export type { ControlServerStats } from './control-connection.ts';

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

export type ControlResponse = { ok: true; data: unknown } | { ok: false; error: string; kind?: string };

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
  /**
   * The route list a page at a time (the endpoint's routePages): `show all|routes` then streams
   * it and asks `snapshot` for the rest only. Without it the snapshot's own routes are sent.
   */
  routes?: RoutePages;
  /** Routes per page of a streamed list (default 256: about a millisecond of work). */
  routePageSize?: number;
  /** Clients served at once (default 16); one more is told "busy" and closed. */
  maxConnections?: number;
  /** Requests read ahead per connection (default 8); reading pauses at the cap. */
  maxQueued?: number;
  /** Close a connection whose client reads nothing this long while an answer waits (default 10 s). */
  writeTimeoutMs?: number;
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
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly server: Server,
    /** Directories start() created, innermost first: removed on close when empty. */
    private readonly createdDirs: string[],
    private readonly sockets: Set<Socket>,
    /** Connections, refusals, stalls and the peaks of what one connection held. */
    readonly stats: ControlServerStats,
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

    const limits = {
      maxLine: opts.maxLine ?? 64 * 1024,
      maxQueued: Math.max(1, opts.maxQueued ?? 8),
      writeTimeoutMs: opts.writeTimeoutMs ?? 10_000,
      idleMs: opts.idleMs ?? 30_000,
    };
    const maxConnections = Math.max(1, opts.maxConnections ?? 16);
    const sockets = new Set<Socket>();
    const stats = newControlServerStats();
    const serve = (line: string): Promise<Reply> => handle(line, opts);
    const takeover = (line: string): Takeover | null => {
      const stream = streamRequest(line, opts);
      if (stream === null) return null;
      return async (sock, rest) => {
        try {
          await stream.handler(stream.req, sock, rest);
        } catch (e) {
          opts.log?.(`control: ${stream.req.cmd} failed: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`);
          sock.destroy();
        }
      };
    };
    const server = createServer((sock) => {
      sockets.add(sock); // every socket, served or turned away: close() destroys them all
      if (stats.connections >= maxConnections) {
        stats.refused++;
        sock.once('close', () => sockets.delete(sock));
        sock.on('error', () => sock.destroy());
        sock.setTimeout(1000, () => sock.destroy());
        const error = `busy: ${maxConnections} control connections are open, the most this endpoint serves; try again`;
        sock.end(`${JSON.stringify({ ok: false, error, kind: 'busy' })}\n`);
        return;
      }
      stats.connections++;
      sock.once('close', () => {
        sockets.delete(sock);
        stats.connections--;
      });
      new ControlConnection(sock, limits, serve, stats, opts.log, takeover);
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
    return new ControlServer(path, server, createdDirs, sockets, stats);
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

const line = (resp: ControlResponse): string => `${JSON.stringify(resp)}\n`;

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

/** The answer to one request line (never throws: failures are error answers). */
async function handle(text: string, opts: ControlServerOptions): Promise<Reply> {
  let req: ControlRequest;
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v !== 'object' || v === null || Array.isArray(v) || typeof (v as ControlRequest).cmd !== 'string') {
      return { text: line({ ok: false, error: 'request must be a JSON object with a "cmd" string' }) };
    }
    req = v as ControlRequest;
  } catch {
    return { text: line({ ok: false, error: 'request is not valid JSON' }) };
  }
  try {
    if (req.cmd === 'show') {
      const what = req.what ?? 'all';
      if (!SHOW_WHAT.includes(what)) return { text: line({ ok: false, error: `cannot show ${String(what)} (peers, routes, stats)` }) };
      if ((what === 'all' || what === 'routes') && opts.routes !== undefined) {
        const { routes: _unused, ...head } = selectSnapshot(await opts.snapshot(what, { routes: false }), what);
        return { text: streamedShow(head, opts.routes(opts.routePageSize ?? 256)) };
      }
      return { text: line({ ok: true, data: selectSnapshot(await opts.snapshot(what), what) }) };
    }
    if (req.cmd === 'ping' || req.cmd === 'stop') {
      const s = await opts.snapshot('stats');
      const data = { pid: s.pid, interface: s.interface };
      if (req.cmd === 'ping') return { text: line({ ok: true, data }) };
      const onStop = opts.onStop;
      if (onStop === undefined) return { text: line({ ok: false, error: 'this endpoint cannot be stopped through its control socket' }) };
      // The answer goes out first; a stop request stops the endpoint once it is written.
      return { text: line({ ok: true, data }), done: () => onStop() };
    }
    const h = opts.handlers?.[req.cmd];
    if (h !== undefined && Object.prototype.hasOwnProperty.call(opts.handlers, req.cmd)) {
      return { text: line({ ok: true, data: (await h(req)) ?? null }) };
    }
    return { text: line({ ok: false, error: `unknown command ${req.cmd}` }) };
  } catch (e) {
    const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0]!;
    // a handler's ConfigError is its answer (the handler logs what it needs to)
    if (!(e instanceof ConfigError)) opts.log?.(`control: ${req.cmd} failed: ${msg}`);
    return { text: line(e instanceof ConfigError ? { ok: false, error: msg, kind: 'config' } : { ok: false, error: msg }) };
  }
}

/**
 * `{"ok":true,"data":{...head,"routes":[...]}}` + newline, in pieces: the head, then one piece
 * per page of routes (the next page is built only when the socket took this one), then the end.
 */
async function* streamedShow(head: Record<string, unknown>, pages: AsyncIterableIterator<RouteSnapshot[]>): AsyncGenerator<string> {
  const open = JSON.stringify({ ok: true, data: head });
  yield `${open.slice(0, -2)}${Object.keys(head).length > 0 ? ',' : ''}"routes":[`;
  let first = true;
  for await (const page of pages) {
    if (page.length === 0) continue;
    const text = JSON.stringify(page);
    yield first ? text.slice(1, -1) : `,${text.slice(1, -1)}`;
    first = false;
  }
  yield ']}}\n';
}

// ---------------------------------------------------------------------------------------------
// Client

export interface RequestOptions {
  /**
   * Give up when nothing arrives for this long (default 3000 ms): no answer started, or a long
   * answer (a streamed route list) stopped coming.
   */
  timeoutMs?: number;
}

/** Send one request, resolve with the response's data; ControlError on any failure. */
export function controlRequest(path: string, req: ControlRequest, opts: RequestOptions = {}): Promise<unknown> {
  const timeoutMs = opts.timeoutMs ?? 3000;
  return new Promise((resolvePromise, rejectPromise) => {
    const sock = connect(path);
    // the answer line's pieces so far (a streamed route list arrives in many chunks)
    const pieces: string[] = [];
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (err: ControlError | null, data?: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) rejectPromise(err);
      else resolvePromise(data);
    };
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => finish(new ControlError(`no answer from ${path} within ${timeoutMs / 1000} s`, 'timeout')), timeoutMs);
    };
    arm();
    sock.setEncoding('utf8');
    sock.once('connect', () => sock.write(`${JSON.stringify(req)}\n`));
    sock.on('data', (chunk: string) => {
      arm();
      const nl = chunk.indexOf('\n'); // only the new chunk: the pieces before it had none
      if (nl < 0) {
        pieces.push(chunk);
        return;
      }
      pieces.push(chunk.slice(0, nl));
      let resp: ControlResponse;
      try {
        resp = JSON.parse(pieces.join('')) as ControlResponse;
      } catch {
        finish(new ControlError(`${path}: bad response (not JSON)`, 'protocol'));
        return;
      }
      if (resp.ok) finish(null, resp.data);
      else finish(new ControlError(`${path}: ${resp.error}`, resp.kind === 'busy' ? 'busy' : resp.kind === 'config' ? 'config' : 'remote'));
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
