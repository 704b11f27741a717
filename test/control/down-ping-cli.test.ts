/**
 * The commands that talk to a running endpoint, as child processes: `show IFACE [SECTION]` (wg's
 * habit), `down IFACE` (a stop request on the control socket, the path SIGTERM takes), `ping`
 * through the endpoint's own stack, and SIGHUP (no longer a stop). First against the fake
 * endpoint (fake-cli.ts), then two real endpoints in userspace mode on loopback (no root).
 */
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { socketPathCandidates } from '../../src/control/socket-path.ts';
import { runCli, startCli } from './cli-helper.ts';

const dir = mkdtempSync(join(tmpdir(), 'ipferry-down-ping-'));
const children: ReturnType<typeof startCli>[] = [];
afterAll(() => {
  for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

async function freePorts(n: number): Promise<number[]> {
  const socks = Array.from({ length: n }, () => createSocket('udp4'));
  await Promise.all(socks.map((s) => new Promise<void>((r) => s.bind(0, '127.0.0.1', r))));
  const ports = socks.map((s) => s.address().port);
  await Promise.all(socks.map((s) => new Promise<void>((r) => s.close(r))));
  return ports;
}

/** A unique interface name (the default control socket is named after it). */
const ifname = (tag: string): string => `${tag}${process.pid % 10000}${Math.floor(Math.random() * 100)}`;

async function writeConfig(name: string, body: Record<string, unknown>): Promise<string> {
  const file = join(dir, `${name}.yaml`);
  // YAML on purpose: the CLI's own path for a .yaml config
  writeFileSync(file, `# ${name}\n${JSON.stringify(body)}\n`);
  return file;
}

describe('show IFACE, ping, down against the fake endpoint', () => {
  it('runs the wg-style show, pings, reloads on SIGHUP, and stops on `ipferry down IFACE`', async () => {
    const name = ifname('dpf');
    const [port] = await freePorts(1);
    const file = await writeConfig(name, {
      interface: { name, address: ['10.0.0.1/30'] },
      listen: `127.0.0.1:${port}`,
      stack: { address: ['10.0.0.254/32'] },
      peers: [{ name: 'shanghai', endpoint: '127.0.0.1:9', routes: ['192.168.20.0/24'] }],
    });
    const mark = join(dir, `${name}.mark`);
    const asked = join(dir, `${name}.asked`);
    const up = startCli(['up', '--userspace', file], { fake: true, env: { FAKE_MARK: mark, FAKE_SNAPSHOTS: asked } });
    children.push(up);
    await up.waitFor(/control socket /);
    const sock = socketPathCandidates(name).find((p) => existsSync(p))!;
    expect(up.stderr).toContain(`control socket ${sock}`);

    // wg's habit: the interface as a word, then the section
    const peers = await runCli(['show', name, 'peers']);
    expect(peers.stderr).toBe('');
    expect(peers.code).toBe(0);
    expect(peers.stdout).toMatch(new RegExp(`^interface: ${name}\\n`));
    expect(peers.stdout).toContain('peer: shanghai\n  endpoint: 127.0.0.1:9\n');
    const whole = await runCli(['show', name]);
    expect(whole.stdout).toContain('routes:\n');
    const names = await runCli(['show', name, 'interfaces']);
    expect(names.stdout).toBe(`${name}\n`);
    // Only `show` (all) asked for the route list; peers, interfaces and the liveness probes did not.
    expect(readFileSync(asked, 'utf8').trim().split('\n').sort()).toEqual(['all', 'peers', 'stats']);

    const ping = await runCli(['ping', '192.168.20.7', name, '-c', '3', '--interval', '0', '-s', '100']);
    expect(ping.stderr).toBe('');
    expect(ping.stdout).toBe(
      `PING 192.168.20.7: 100 data bytes (128 with headers), through ${sock}\n` +
        [1, 2, 3].map((i) => `108 bytes from 192.168.20.7: seq=${i} time=1.500 ms\n`).join('') +
        '--- 192.168.20.7 ping statistics ---\n3 packets transmitted, 3 received, 0% packet loss\nrtt min/avg/max = 1.500/1.500/1.500 ms\n',
    );
    expect(ping.code).toBe(0);
    const lost = await runCli(['ping', '10.9.9.9', '--interface', name, '-c', '2', '--interval', '0', '-W', '50']);
    expect(lost.stdout).toContain('no reply from 10.9.9.9: seq=1\nno reply from 10.9.9.9: seq=2\n');
    expect(lost.stdout).toContain('2 packets transmitted, 0 received, 100% packet loss\n');
    expect(lost.code).toBe(1);
    const badFrom = await runCli(['ping', '192.168.20.7', name, '--from', '10.0.0.77']);
    expect(badFrom.stderr).toBe("ipferry: ping: 10.0.0.77 is not an address of this endpoint's stack\n");
    expect(badFrom.code).toBe(1);

    // SIGHUP reloads (systemctl reload): it must not stop the endpoint.
    up.child.kill('SIGHUP');
    await up.waitFor(/fake endpoint reloaded /);
    expect((await runCli(['show', name, 'stats'])).code).toBe(0);
    // `ipferry reload`: the log settings are applied by up itself (level and format, live)
    await writeConfig(name, {
      interface: { name, address: ['10.0.0.1/30'] },
      listen: `127.0.0.1:${port}`,
      stack: { address: ['10.0.0.254/32'] },
      peers: [
        { name: 'shanghai', endpoint: '127.0.0.1:9', routes: ['192.168.20.0/24'] },
        { name: 'hangzhou', endpoint: '127.0.0.1:10', routes: ['192.168.30.0/24'] },
      ],
      log: { level: 'debug', format: 'json' },
    });
    const reloaded = await runCli(['reload', name]);
    expect(reloaded.stderr).toBe('');
    expect(reloaded.stdout).toBe(`${name}: reloaded ${file}\n  peer hangzhou added\n  log level info -> debug\n  log format text -> json\n`);
    expect(reloaded.code).toBe(0);
    const fromNow = up.stderr.length;
    // a file that does not parse: exit 2, one line; the endpoint logs it and runs on
    writeFileSync(file, 'interface: [\n');
    const broken = await runCli(['reload', name]);
    expect(broken.stdout).toBe('');
    expect(broken.stderr).toMatch(new RegExp(`^ipferry: ${file.replace(/[.]/g, '\\.')}: line \\d+, column \\d+: YAML syntax error: .*\\(still running the previous config\\)\\n$`));
    expect(broken.code).toBe(2);
    await up.waitFor(/"event":"reload-failed"/);
    const json = up.stderr.slice(fromNow).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(json.find((o) => o.event === 'reload-failed')).toMatchObject({ level: 'error', interface: name, source: file });
    expect((await runCli(['show', name, 'stats'])).code).toBe(0);
    // and back: text at info again
    await writeConfig(name, {
      interface: { name, address: ['10.0.0.1/30'] },
      listen: `127.0.0.1:${port}`,
      stack: { address: ['10.0.0.254/32'] },
      peers: [{ name: 'shanghai', endpoint: '127.0.0.1:9', routes: ['192.168.20.0/24'] }],
    });
    expect((await runCli(['reload', name])).stdout).toBe(`${name}: reloaded ${file}\n  log level debug -> info\n  log format json -> text\n`);

    const down = await runCli(['down', name]);
    expect(down.stderr).toBe('');
    expect(down.stdout).toBe(`${name}: stopped (pid ${up.child.pid})\n`);
    expect(down.code).toBe(0);
    // `down` returned after the process was gone: its exit and cleanup are already there.
    const r = await up.exited;
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/ stop request: stopping\n/);
    expect(r.stderr).toMatch(/ shutdown complete\n$/);
    expect(readFileSync(mark, 'utf8')).toBe('stopped');
    expect(existsSync(sock)).toBe(false);

    const again = await runCli(['down', name]);
    expect(again.stderr).toBe(`ipferry: no running endpoint at ${socketPathCandidates(name)[0]}\n`);
    expect(again.code).toBe(1);
    const showGone = await runCli(['show', name]);
    expect(showGone.stderr).toBe(`ipferry: no running endpoint for interface ${name} (no control socket at ${socketPathCandidates(name)[0]})\n`);
    expect(showGone.code).toBe(1);
  });

  it('down --socket PATH', async () => {
    const name = ifname('dps');
    const [port] = await freePorts(1);
    const sock = join(dir, `${name}.sock`);
    const file = await writeConfig(name, { interface: { name }, listen: `127.0.0.1:${port}`, control: sock });
    const up = startCli(['up', '--userspace', file], { fake: true });
    children.push(up);
    await up.waitFor(/control socket /);
    const down = await runCli(['down', '--socket', sock]);
    expect(down.stdout).toBe(`${name}: stopped (pid ${up.child.pid})\n`);
    expect((await up.exited).code).toBe(0);
  });
});

describe('ping through two real endpoints in userspace mode (loopback, no root)', () => {
  it("pings B's stack from A's, with --from, big (fragmented) and IPv6; then down both", async () => {
    const [pa, pb] = await freePorts(2);
    const a = ifname('rpa');
    const b = ifname('rpb');
    const site = (me: string, port: number, peerPort: number, own: string[], theirs: string[]) => ({
      interface: { name: me },
      listen: `127.0.0.1:${port}`,
      stack: { address: own },
      peers: [{ name: 'other', endpoint: `127.0.0.1:${peerPort}`, routes: theirs }],
    });
    const fa = await writeConfig(a, site(a, pa!, pb!, ['10.0.0.1/32', '10.0.0.11/32', 'fd00::1/128'], ['10.0.0.2/32', 'fd00::2/128']));
    const fb = await writeConfig(b, site(b, pb!, pa!, ['10.0.0.2/32', 'fd00::2/128'], ['10.0.0.1/32', '10.0.0.11/32', 'fd00::1/128']));
    const upA = startCli(['up', '--userspace', fa], { env: { IPFERRY_WARMUP: '0' } });
    const upB = startCli(['up', '--userspace', fb], { env: { IPFERRY_WARMUP: '0' } });
    children.push(upA, upB);
    try {
      await upA.waitFor(/control socket /);
      await upB.waitFor(/control socket /);
      const p = await runCli(['ping', '10.0.0.2', a, '-c', '2', '--interval', '0']);
      expect(p.stderr).toBe('');
      expect(p.stdout).toMatch(/^64 bytes from 10\.0\.0\.2: seq=1 time=\d+\.\d{3} ms$/m);
      expect(p.stdout).toContain('2 packets transmitted, 2 received, 0% packet loss\n');
      expect(p.code).toBe(0);
      const big = await runCli(['ping', '10.0.0.2', a, '-c', '1', '-s', '4000']);
      expect(big.stdout).toContain('4008 bytes from 10.0.0.2: seq=1');
      const from = await runCli(['ping', '10.0.0.2', a, '-c', '1', '--from', '10.0.0.11']);
      expect(from.stdout).toContain('1 received');
      const v6 = await runCli(['ping', 'fd00::2', a, '-c', '1']);
      expect(v6.stdout).toContain('64 bytes from fd00::2: seq=1');
      // B saw A's echo requests from both of A's addresses: its peer counters say so.
      const stats = JSON.parse((await runCli(['show', b, 'peers', '--json'])).stdout) as { peers: { rxPackets: number }[] };
      expect(stats.peers[0]!.rxPackets).toBeGreaterThanOrEqual(5);
      // A source that routes nowhere back: no reply, exit 1 (the stack's own timeout).
      const none = await runCli(['ping', '10.0.0.99', a, '-c', '1', '-W', '200']);
      expect(none.code).toBe(1);
    } finally {
      for (const n of [a, b]) await runCli(['down', n]);
    }
    expect((await upA.exited).code).toBe(0);
    expect((await upB.exited).code).toBe(0);
  });
});
