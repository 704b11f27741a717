/**
 * `ipferry up` / `ipferry show` end to end as child processes, with a fake endpoint injected
 * (fake-cli.ts) in userspace mode so no root or TUN is needed; plus the preflight
 * errors the CLI prints.
 */
import { createSocket, type Socket } from 'node:dgram';
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, runCli, startCli } from './cli-helper.ts';

const dir = mkdtempSync(join(tmpdir(), 'ipferry-up-'));
const children: { child: { kill(sig?: NodeJS.Signals): boolean; exitCode: number | null } }[] = [];
afterAll(() => {
  for (const c of children) if (c.child.exitCode === null) c.child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

let seq = 0;
async function writeConfig(extra: Record<string, unknown> = {}): Promise<{ file: string; sock: string }> {
  const { port } = await udpPort(false);
  const id = `${process.pid}-${seq++}`;
  const sock = join(dir, `c${id}.sock`);
  const file = join(dir, `c${id}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      interface: { name: `upt${seq}`, address: ['10.0.0.1/30'] },
      listen: `127.0.0.1:${port}`,
      control: sock,
      peers: [{ name: 'shanghai', endpoint: '127.0.0.1:9', routes: ['192.168.20.0/24'], keepalive: 25 }],
      ...extra,
    }),
  );
  return { file, sock };
}

/** A free UDP port on 127.0.0.1 (bound and kept open by the returned socket when `hold`). */
async function udpPort(hold: boolean): Promise<{ port: number; sock: Socket }> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  const port = sock.address().port;
  if (!hold) await new Promise<void>((r) => sock.close(r));
  return { port, sock };
}


describe('ipferry up (fake endpoint, --userspace)', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)('runs, serves show, stops cleanly on %s', async (sig) => {
    const { port } = await udpPort(false);
    const { file, sock } = await writeConfig({ listen: `127.0.0.1:${port}` });
    const mark = join(dir, `mark-${sig}`);
    const up = startCli(['up', '--userspace', file], { fake: true, env: { FAKE_MARK: mark } });
    children.push(up);
    await up.waitFor(/control socket /);
    expect(up.stderr).toMatch(/fake endpoint started \(tun: false\)/);
    // one line per event: every stderr line is "<time> <level> <interface>: ..."
    for (const l of up.stderr.trim().split('\n')) expect(l).toMatch(/^\S+Z (info|warn|debug|error) upt\d+: /);

    const text = await runCli(['show', 'peers', '--socket', sock]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('peer: shanghai\n  endpoint: 127.0.0.1:9\n  routes: 192.168.20.0/24\n  last packet: never\n');
    expect(text.stdout).toContain('  keepalive: every 25 seconds\n');
    const json = await runCli(['show', 'stats', '--json', '--socket', sock]);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout).stats).toMatchObject({ poolCapacity: 1024, drops: {} });

    up.child.kill(sig);
    const r = await up.exited;
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`${sig}: stopping`));
    expect(r.stderr).toMatch(/fake endpoint stopped/);
    expect(r.stderr).toMatch(/ shutdown complete\n$/);
    expect(readFileSync(mark, 'utf8')).toBe('stopped');
    expect(existsSync(sock)).toBe(false);
  });

  it('a second endpoint on the same control socket is refused before anything starts', async () => {
    const { file, sock } = await writeConfig();
    const up = startCli(['up', '--userspace', file], { fake: true });
    children.push(up);
    await up.waitFor(/control socket /);
    try {
      const second = await runCli(['up', '--userspace', file], { fake: true });
      expect(second.stderr).toBe(`ipferry: an endpoint is already running at ${sock}\n`);
      expect(second.code).toBe(2);
    } finally {
      up.child.kill('SIGTERM');
      expect((await up.exited).code).toBe(0);
    }
  });

  it('start failure: one line, exit 1, stop still called', async () => {
    const { file } = await writeConfig();
    const mark = join(dir, 'mark-fail');
    const r = await runCli(['up', '--userspace', file], { fake: true, env: { FAKE_FAIL_START: '1', FAKE_MARK: mark } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error upt\d+: start failed: TUNSETIFF: Device or resource busy\n/);
    expect(readFileSync(mark, 'utf8')).toBe('stopped');
  });

  it('--check validates and exits', async () => {
    const { file } = await writeConfig();
    const r = await runCli(['up', '--userspace', '--check', file], { fake: true });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toBe(`${file}: ok (1 peer)\n`);
  });

  it('port in use: one line, exit 2', async () => {
    const { port, sock } = await udpPort(true);
    try {
      const { file } = await writeConfig({ listen: `127.0.0.1:${port}` });
      const r = await runCli(['up', '--userspace', file], { fake: true });
      expect(r.stderr).toBe(`ipferry: listen 127.0.0.1:${port}: port in use\n`);
      expect(r.code).toBe(2);
    } finally {
      sock.close();
    }
  });

  // As root, drop to nobody (no capabilities) with setpriv to see the not-root message.
  const canDrop = process.getuid?.() === 0 && existsSync('/usr/bin/setpriv');
  it.skipIf(!canDrop)('not root: one line, exit 2 (run as nobody via setpriv)', async () => {
    const pub = mkdtempSync(join(tmpdir(), 'ipferry-nobody-'));
    try {
      chmodSync(pub, 0o755);
      const file = join(pub, 'c.json');
      writeFileSync(file, JSON.stringify({ interface: { name: 'nobody0' }, listen: '127.0.0.1:9' }));
      chmodSync(file, 0o644);
      const r = await new Promise<{ code: number | null; stderr: string }>((res) => {
        const c = execFile(
          '/usr/bin/setpriv',
          ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, ...CLI, 'up', file],
          { timeout: 30_000 },
          (_e, _o, stderr) => res({ code: c.exitCode, stderr }),
        );
      });
      expect(r.stderr).toBe('ipferry: not root (CAP_NET_ADMIN needed to create a TUN device)\n');
      expect(r.code).toBe(2);
      expect(existsSync('/sys/class/net/nobody0')).toBe(false);
    } finally {
      rmSync(pub, { recursive: true, force: true });
    }
  });
});

describe('ipferry show without an endpoint', () => {
  it('--socket to nothing', async () => {
    const p = join(dir, 'nothing.sock');
    const r = await runCli(['show', '--socket', p]);
    expect(r.stderr).toBe(`ipferry: no running endpoint at ${p}\n`);
    expect(r.stdout).toBe('');
    expect(r.code).toBe(1);
  });
  it('--interface with no endpoint', async () => {
    const r = await runCli(['show', 'peers', '--interface', 'nosuch0']);
    expect(r.stderr).toBe('ipferry: no running endpoint at /run/ipferry/nosuch0.sock\n');
    expect(r.code).toBe(1);
  });
  it('usage errors exit 2', async () => {
    // `show IFACE SECTION` (wg's habit): a bad section is a usage error before any socket is asked.
    const a = await runCli(['show', 'ferry0', 'bogus']);
    expect(a.stderr).toBe('ipferry: show: unknown section bogus (peers, routes, stats)\n');
    expect(a.code).toBe(2);
    const b = await runCli(['show', '--verbose']);
    expect(b.stderr).toBe('ipferry: show: unknown option --verbose (see ipferry show --help)\n');
    expect(b.code).toBe(2);
    const c = await runCli(['frobnicate']);
    expect(c.stderr).toBe('ipferry: unknown command frobnicate (see ipferry --help)\n');
    expect(c.code).toBe(2);
  });
  it('--help for ipferry, up and show', async () => {
    for (const args of [['--help'], ['up', '--help'], ['show', '-h']]) {
      const r = await runCli(args);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^usage: ipferry/);
    }
  });
});
