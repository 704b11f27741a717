/**
 * One connection to the control socket: it reads newline-delimited requests and writes one answer
 * per request, in order, and bounds what it holds for the client whatever the client does:
 *
 * - Read ahead: at most `maxQueued` requests wait for their turn. At the cap it stops reading
 *   (the socket is paused: a client that pipelines faster than we answer is slowed by the
 *   kernel's socket buffer, not by our memory). Unparsed text: one read chunk plus one line of at
 *   most `maxLine` characters; a longer line is answered with an error and the connection closed.
 * - Writes respect backpressure: when write() returns false the next piece of an answer (and
 *   the next request) waits for 'drain'. A client that reads nothing for `writeTimeoutMs` while
 *   an answer waits is disconnected. So a stalled reader costs at most one piece of an answer
 *   beyond the socket's write buffer, for a bounded time.
 * - An answer may come in pieces (an async iterable of strings, e.g. the route list a page at a
 *   time): a piece is produced only once the previous one was taken by the socket.
 *
 * - A streaming request (capture) takes the connection over: once the answers before it are
 *   written, its handler gets the socket and what was read after its line, and owns the
 *   connection from then on (nothing more is read or queued here).
 *
 * `held()` is what the connection holds in user space (unparsed text, queued requests, unwritten
 * answer bytes); the server keeps the peak (ControlServerStats) so tests can check the bound.
 */
import type { Socket } from 'node:net';

/** An answer: one line (newline included), or a line in pieces; `done` once it is written. */
export interface Reply {
  text: string | AsyncIterable<string>;
  /** Called once the answer is written out (or the connection is gone). */
  done?: () => void;
}

export interface ConnectionLimits {
  /** Longest request line (characters). */
  maxLine: number;
  /** Requests read ahead and waiting per connection. */
  maxQueued: number;
  /** Disconnect a client that takes nothing for this long while an answer waits (ms). */
  writeTimeoutMs: number;
  /** Disconnect a connection idle (nothing read or written) this long (ms). */
  idleMs: number;
}

/** What the server saw across its connections (tests read the peaks). */
export interface ControlServerStats {
  /** Connections open now. */
  connections: number;
  /** Connections turned away at the connection cap. */
  refused: number;
  /** Connections closed because the client stopped reading. */
  stalled: number;
  /** Largest number of requests one connection held waiting. */
  peakQueued: number;
  /** Largest number of bytes (characters) one connection held: unparsed, queued, unwritten. */
  peakHeld: number;
}

export function newControlServerStats(): ControlServerStats {
  return { connections: 0, refused: 0, stalled: 0, peakQueued: 0, peakHeld: 0 };
}

/** A streaming request's handler: owns `sock` from its call; `rest` is what was read after its line. */
export type Takeover = (sock: Socket, rest: string) => void | Promise<void>;

/** Marks a line that was too long in the queue: answered with an error, then the connection ends. */
const TOO_LONG = Symbol('too long');

export class ControlConnection {
  private buf = '';
  private readonly queue: (string | typeof TOO_LONG | { takeover: Takeover; line: string; rest: string })[] = [];
  private queuedChars = 0;
  private working = false;
  private closed = false;
  /** No more reading: a line was too long. */
  private reading = true;

  constructor(
    private readonly sock: Socket,
    private readonly limits: ConnectionLimits,
    /** Answers one request line; must not throw. */
    private readonly serve: (line: string) => Promise<Reply>,
    private readonly stats: ControlServerStats,
    private readonly log?: (line: string) => void,
    /** A streaming request's handler for a request line, or null (answered by `serve`). */
    private readonly streamOf: (line: string) => Takeover | null = () => null,
  ) {
    sock.setEncoding('utf8');
    sock.setTimeout(limits.idleMs, () => sock.destroy());
    sock.on('error', () => sock.destroy());
    sock.once('close', () => {
      this.closed = true;
      this.queue.length = 0;
      this.queuedChars = 0;
      this.buf = '';
    });
    sock.on('data', this.onData);
  }

  /** Characters held for this client in user space now. */
  held(): number {
    return this.buf.length + this.queuedChars + this.sock.writableLength;
  }

  private note(): void {
    const h = this.held();
    if (h > this.stats.peakHeld) this.stats.peakHeld = h;
    if (this.queue.length > this.stats.peakQueued) this.stats.peakQueued = this.queue.length;
  }

  private readonly onData = (chunk: string): void => {
    if (!this.reading) return;
    this.buf += chunk;
    this.take();
    void this.pump();
  };

  /** Move complete lines into the queue up to the cap; pause reading at the cap, resume below it. */
  private take(): void {
    const { maxQueued, maxLine } = this.limits;
    while (this.reading && this.queue.length < maxQueued) {
      const nl = this.buf.indexOf('\n');
      const lineLength = nl < 0 ? this.buf.length : nl;
      if (lineLength > maxLine) {
        // answered in turn with an error line; nothing more is read from this client
        this.reading = false;
        this.buf = '';
        this.queue.push(TOO_LONG);
        break;
      }
      if (nl < 0) break;
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (line === '') continue;
      const takeover = this.streamOf(line);
      if (takeover !== null) {
        // the handler owns the connection after the answers before it: read nothing more here
        this.reading = false;
        this.sock.off('data', this.onData);
        this.queue.push({ takeover, line, rest: this.buf });
        this.queuedChars += line.length;
        this.buf = '';
        break;
      }
      this.queue.push(line);
      this.queuedChars += line.length;
    }
    this.note();
    if (!this.reading || this.queue.length >= maxQueued) {
      if (!this.sock.isPaused()) this.sock.pause();
    } else if (this.sock.isPaused()) {
      this.sock.resume();
    }
  }

  /** Answer the queued requests one after the other. */
  private async pump(): Promise<void> {
    if (this.working) return;
    this.working = true;
    try {
      while (!this.closed && this.queue.length > 0) {
        const line = this.queue.shift()!;
        if (line === TOO_LONG) {
          this.sock.end(`${JSON.stringify({ ok: false, error: `request longer than ${this.limits.maxLine} bytes` })}\n`);
          return;
        }
        if (typeof line !== 'string') {
          this.queuedChars -= line.line.length;
          if (this.sock.isPaused()) this.sock.resume();
          try {
            await line.takeover(this.sock, line.rest);
          } catch (e) {
            this.log?.(`control: streaming request failed: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`);
            this.sock.destroy();
          }
          return;
        }
        this.queuedChars -= line.length;
        this.take();
        await this.write(await this.serve(line));
      }
    } finally {
      this.working = false;
    }
  }

  private async write(reply: Reply): Promise<void> {
    const { text, done } = reply;
    if (typeof text === 'string') {
      await this.send(text, done);
      return;
    }
    try {
      for await (const piece of text) {
        if (!(await this.send(piece))) break; // closing the iterator stops producing pages
      }
    } catch (e) {
      // an answer that fails half-way cannot be turned into an error line any more
      this.log?.(`control: answer failed: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`);
      this.sock.destroy();
    }
    done?.();
  }

  /** Write one piece; resolves true once the socket can take more (false: the connection is gone). */
  private send(text: string, cb?: () => void): Promise<boolean> {
    const sock = this.sock;
    if (this.closed || sock.destroyed) {
      cb?.();
      return Promise.resolve(false);
    }
    const ok = sock.write(text, cb === undefined ? undefined : () => cb());
    this.note();
    if (ok) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const finish = (v: boolean): void => {
        clearTimeout(timer);
        sock.off('drain', onDrain);
        sock.off('close', onClose);
        resolve(v);
      };
      const onDrain = (): void => finish(true);
      const onClose = (): void => finish(false);
      const timer = setTimeout(() => {
        this.stats.stalled++;
        this.log?.(`control: a client read nothing for ${this.limits.writeTimeoutMs / 1000} s with an answer waiting; connection closed`);
        sock.destroy();
      }, this.limits.writeTimeoutMs);
      sock.once('drain', onDrain);
      sock.once('close', onClose);
    });
  }
}
