import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ControlError,
  ControlServer,
  controlRequest,
  isControlSocketLive,
  requestSnapshot,
} from '../../src/control/control-socket.ts';
import { fakeSnapshot } from './fake-snapshot.ts';

const dir = mkdtempSync(join(tmpdir(), 'ipferry-sock-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const sockPath = () => join(dir, `t${n++}.sock`);

async function rejection(p: Promise<unknown>): Promise<ControlError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ControlError);
    return e as ControlError;
  }
  throw new Error('expected a rejection');
}

describe('control socket', () => {
  it('round trip: show all / peers / routes / stats, ping, mode 0600, removed on close', async () => {
    const path = sockPath();
    let calls = 0;
    const server = await ControlServer.start({
      path,
      snapshot: () => {
        calls++;
        return fakeSnapshot();
      },
    });
    try {
      expect(statSync(path).isSocket()).toBe(true);
      expect(statSync(path).mode & 0o777).toBe(0o600);
      const full = fakeSnapshot();
      expect(await requestSnapshot(path)).toEqual(full);
      const peers = await requestSnapshot(path, 'peers');
      expect(peers.peers).toEqual(full.peers);
      expect(peers.routes).toBeUndefined();
      expect(peers.listen).toBe('203.0.113.10:6080');
      expect(await requestSnapshot(path, 'routes')).toEqual({ interface: 'ferry0', routes: full.routes });
      expect(await requestSnapshot(path, 'stats')).toEqual({ interface: 'ferry0', pid: 4242, stats: full.stats });
      expect(await controlRequest(path, { cmd: 'ping' })).toEqual({ pid: 4242, interface: 'ferry0' });
      expect(calls).toBe(5);
      expect(await isControlSocketLive(path)).toBe(true);
    } finally {
      await server.close();
    }
    expect(existsSync(path)).toBe(false);
    expect(await isControlSocketLive(path)).toBe(false);
  });

  it('async snapshot providers, extra handlers, remote errors', async () => {
    const path = sockPath();
    const server = await ControlServer.start({
      path,
      snapshot: async () => fakeSnapshot(),
      handlers: { echo: (req) => ({ got: req.x }), boom: () => Promise.reject(new Error('it broke\nsecond line')) },
    });
    try {
      expect(await controlRequest(path, { cmd: 'echo', x: 5 })).toEqual({ got: 5 });
      expect((await rejection(controlRequest(path, { cmd: 'boom' }))).message).toBe(`${path}: it broke`);
      expect((await rejection(controlRequest(path, { cmd: 'nope' }))).message).toBe(`${path}: unknown command nope`);
      expect((await rejection(controlRequest(path, { cmd: 'toString' }))).message).toBe(`${path}: unknown command toString`);
      expect((await rejection(controlRequest(path, { cmd: 'show', what: 'bogus' as 'all' }))).message).toBe(
        `${path}: cannot show bogus (peers, routes, stats)`,
      );
    } finally {
      await server.close();
    }
  });

  it('several requests on one connection, answered in order; garbage gets an error line', async () => {
    const path = sockPath();
    const server = await ControlServer.start({ path, snapshot: fakeSnapshot });
    try {
      const lines = await new Promise<string[]>((res, rej) => {
        const s = connect(path);
        let buf = '';
        s.setEncoding('utf8');
        s.on('data', (d: string) => {
          buf += d;
          const ls = buf.split('\n').filter((l) => l !== '');
          if (ls.length === 3) {
            s.destroy();
            res(ls);
          }
        });
        s.on('error', rej);
        s.write('{"cmd":"ping"}\nnot json\n{"cmd":"show","what":"routes"}\n');
      });
      expect(JSON.parse(lines[0]!)).toEqual({ ok: true, data: { pid: 4242, interface: 'ferry0' } });
      expect(JSON.parse(lines[1]!)).toEqual({ ok: false, error: 'request is not valid JSON' });
      expect(JSON.parse(lines[2]!).data.routes).toHaveLength(2);
    } finally {
      await server.close();
    }
  });

  it('removes a stale socket file; refuses a live one and a non-socket file', async () => {
    const path = sockPath();
    // A stale socket: a process listening on it was killed, so the file stayed behind.
    try {
      execFileSync(process.execPath, [
        '-e',
        `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`,
      ], { stdio: 'ignore' });
    } catch {
      /* killed by SIGKILL, as intended */
    }
    expect(existsSync(path)).toBe(true);
    expect(await isControlSocketLive(path)).toBe(false);
    const logs: string[] = [];
    const server = await ControlServer.start({ path, snapshot: fakeSnapshot, log: (l) => logs.push(l) });
    try {
      expect(logs).toEqual([`removed stale control socket ${path}`]);
      expect(await controlRequest(path, { cmd: 'ping' })).toEqual({ pid: 4242, interface: 'ferry0' });
      const busy = await rejection(ControlServer.start({ path, snapshot: fakeSnapshot }));
      expect(busy.message).toBe(`an endpoint is already running at ${path}`);
      expect(busy.kind).toBe('busy');
    } finally {
      await server.close();
    }
    const file = join(dir, 'plain.sock');
    writeFileSync(file, 'x');
    expect((await rejection(ControlServer.start({ path: file, snapshot: fakeSnapshot }))).message).toBe(
      `${file} exists and is not a socket`,
    );
  });

  it('client errors: no endpoint (missing / stale), timeout', async () => {
    const missing = join(dir, 'missing.sock');
    const e1 = await rejection(controlRequest(missing, { cmd: 'ping' }));
    expect(e1.message).toBe(`no running endpoint at ${missing}`);
    expect(e1.kind).toBe('no-endpoint');

    // A server that accepts but never answers.
    const path = sockPath();
    const mute = createServer((c) => c.resume());
    await new Promise<void>((r) => mute.listen(path, r));
    try {
      const e2 = await rejection(controlRequest(path, { cmd: 'ping' }, { timeoutMs: 200 }));
      expect(e2.message).toBe(`no answer from ${path} within 0.2 s`);
      expect(e2.kind).toBe('timeout');
    } finally {
      await new Promise<void>((r) => mute.close(() => r()));
    }
  });

  it('creates missing directories 0700 and removes them again when empty', async () => {
    const path = join(dir, 'a', 'b', 'x.sock');
    const server = await ControlServer.start({ path, snapshot: fakeSnapshot });
    expect(statSync(join(dir, 'a')).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'a', 'b')).mode & 0o777).toBe(0o700);
    await server.close();
    expect(existsSync(join(dir, 'a'))).toBe(false);
    expect(existsSync(dir)).toBe(true);
  });

  it('refuses an overlong request line', async () => {
    const path = sockPath();
    const server = await ControlServer.start({ path, snapshot: fakeSnapshot, maxLine: 1024 });
    try {
      const line = await new Promise<string>((res, rej) => {
        const s = connect(path);
        let buf = '';
        s.setEncoding('utf8');
        s.on('data', (d: string) => (buf += d));
        s.on('close', () => res(buf));
        s.on('error', rej);
        s.write('x'.repeat(4096));
      });
      expect(JSON.parse(line)).toEqual({ ok: false, error: 'request longer than 1024 bytes' });
    } finally {
      await server.close();
    }
  });
});

describe('control socket: stop requests, group and mode', () => {
  it('stop: answered first, then onStop runs once the answer is written; refused without onStop', async () => {
    const path = sockPath();
    const order: string[] = [];
    let stopped!: () => void;
    const onStopped = new Promise<void>((r) => (stopped = r));
    const server = await ControlServer.start({
      path,
      snapshot: () => fakeSnapshot(),
      onStop: () => {
        order.push('onStop');
        stopped();
      },
    });
    try {
      const answer = controlRequest(path, { cmd: 'stop' }).then((d) => (order.push('answer'), d));
      expect(await answer).toEqual({ pid: 4242, interface: 'ferry0' });
      await onStopped;
      expect(order.sort()).toEqual(['answer', 'onStop']);
    } finally {
      await server.close();
    }
    const path2 = sockPath();
    const plain = await ControlServer.start({ path: path2, snapshot: () => fakeSnapshot() });
    try {
      expect((await rejection(controlRequest(path2, { cmd: 'stop' }))).message).toBe(
        `${path2}: this endpoint cannot be stopped through its control socket`,
      );
    } finally {
      await plain.close();
    }
  });

  it('show peers / stats, ping and stop ask the provider for their part only (no route list)', async () => {
    const path = sockPath();
    const asked: (string | undefined)[] = [];
    const server = await ControlServer.start({ path, snapshot: (what) => (asked.push(what), fakeSnapshot()), onStop: () => {} });
    try {
      await requestSnapshot(path, 'peers');
      await requestSnapshot(path, 'stats');
      await controlRequest(path, { cmd: 'ping' });
      await controlRequest(path, { cmd: 'stop' });
      await requestSnapshot(path, 'routes');
      expect(asked).toEqual(['peers', 'stats', 'stats', 'stats', 'routes']);
    } finally {
      await server.close();
    }
  });

  const root = process.getuid?.() === 0 && existsSync('/usr/bin/setpriv');
  it.skipIf(!root)('group and mode: a member of the group (not root) can ask; others are refused', async () => {
    // nobody (65534) in group nogroup (65534) as the only member group; the socket in a new
    // directory the server creates (0750, group-owned) below a world-traversable one.
    const pub = mkdtempSync(join(tmpdir(), 'ipferry-group-'));
    execFileSync('chmod', ['0755', pub]);
    const path = join(pub, 'run', 'f.sock');
    const server = await ControlServer.start({ path, snapshot: () => fakeSnapshot(), group: 65534, mode: 0o660 });
    // Asynchronously: the server answers from this very process.
    const asUser = (gid: string): Promise<string> => {
      const js = `require('net').connect(${JSON.stringify(path)}).on('connect',function(){this.write('{"cmd":"ping"}\\n')}).on('data',d=>{process.stdout.write(String(d));process.exit(0)}).on('error',e=>{process.stdout.write(e.code);process.exit(0)})`;
      return new Promise((res) =>
        execFile('/usr/bin/setpriv', ['--reuid=65534', `--regid=${gid}`, '--clear-groups', process.execPath, '-e', js], { encoding: 'utf8', timeout: 10_000 }, (_e, stdout) => res(stdout)),
      );
    };
    try {
      expect(statSync(path).mode & 0o777).toBe(0o660);
      expect(statSync(path).gid).toBe(65534);
      expect(statSync(join(pub, 'run')).mode & 0o777).toBe(0o750);
      expect(statSync(join(pub, 'run')).gid).toBe(65534);
      expect(JSON.parse(await asUser('65534'))).toEqual({ ok: true, data: { pid: 4242, interface: 'ferry0' } });
      expect(await asUser('65533')).toBe('EACCES'); // nobody, but not in the group: the directory stops it
    } finally {
      await server.close();
      rmSync(pub, { recursive: true, force: true });
    }
  });

  it('an unknown group is a one-line error and leaves no socket behind', async () => {
    const path = sockPath();
    const e = await rejection(ControlServer.start({ path, snapshot: () => fakeSnapshot(), group: 'no-such-group-ipferry' }));
    expect(e.message).toBe('unknown group no-such-group-ipferry');
    expect(existsSync(path)).toBe(false);
  });
});
