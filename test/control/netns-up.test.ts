/**
 * `ipferry up` with the real endpoint and a kernel TUN, in two network namespaces at once, both
 * with interface ferry0 (so their default control sockets must not collide): show works in each,
 * kernel routes are there, SIGTERM removes routes, TUN and socket. Root only.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, startCli } from './cli-helper.ts';
import { expectedDataPath } from '../support/data-path.ts';

const isRoot = process.getuid?.() === 0;
const hasTun = existsSync('/dev/net/tun');
const why = !isRoot ? 'not root' : !hasTun ? 'no /dev/net/tun' : '';
if (why) console.warn(`netns-up.test.ts skipped: ${why} (needs root and /dev/net/tun)`);

const suffix = `${process.pid}${Math.floor(Math.random() * 1e4)}`;
const NS = [`ctlA${suffix}`, `ctlB${suffix}`];
const dir = mkdtempSync(join(tmpdir(), 'ipferry-netns-'));
const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
const running: ReturnType<typeof startCli>[] = [];

afterAll(() => {
  for (const r of running) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
  for (const ns of NS) {
    try {
      ip('netns', 'del', ns);
    } catch {
      /* not created */
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!!why)('ipferry up in network namespaces (real endpoint, kernel TUN)', () => {
  it('two endpoints named ferry0, show in each, clean stop', async () => {
    const cfg = (i: number) => ({
      interface: { name: 'ferry0', address: [i === 0 ? '10.0.0.1/30' : '10.0.0.2/30'] },
      listen: `127.0.0.1:${46080 + i}`,
      peers: [
        {
          name: i === 0 ? 'shanghai' : 'beijing',
          endpoint: `127.0.0.1:${46081 - i}`,
          routes: [i === 0 ? '192.168.20.0/24' : '192.168.10.0/24'],
        },
      ],
    });
    const files = [0, 1].map((i) => {
      const f = join(dir, `${i}.json`);
      writeFileSync(f, JSON.stringify(cfg(i)));
      return f;
    });
    for (const ns of NS) {
      ip('netns', 'add', ns);
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    const ups = NS.map((ns, i) => startCli(['up', files[i]!], { prefix: ['ip', 'netns', 'exec', ns] }));
    running.push(...ups);
    await Promise.all(ups.map((u) => u.waitFor(/control socket /)));
    for (const [i, ns] of NS.entries()) {
      expect(ups[i]!.stderr).toContain(`control socket /run/ipferry/${ns}/ferry0.sock`);
      const show = await runCli(['show', 'peers'], { prefix: ['ip', 'netns', 'exec', ns] });
      expect(show.stderr).toBe('');
      expect(show.stdout).toContain('interface: ferry0\n');
      expect(show.stdout).toContain(`peer: ${i === 0 ? 'shanghai' : 'beijing'}`);
      expect(show.stdout).toContain('device: kernel TUN');
      expect(show.stdout.match(/^ {2}data path: (.+)$/m)?.[1]).toMatch(expectedDataPath());
      const routes = await runCli(['show', 'routes', '--interface', 'ferry0'], { prefix: ['ip', 'netns', 'exec', ns] });
      expect(routes.stdout).toMatch(new RegExp(`192\\.168\\.${i === 0 ? 20 : 10}\\.0/24 dev ${i === 0 ? 'shanghai' : 'beijing'}`));
      expect(ip('-n', ns, 'route')).toContain(`192.168.${i === 0 ? 20 : 10}.0/24 dev ferry0`);
    }
    for (const u of ups) u.child.kill('SIGTERM');
    const results = await Promise.all(ups.map((u) => u.exited));
    for (const [i, ns] of NS.entries()) {
      expect(results[i]!.code).toBe(0);
      expect(results[i]!.stderr).toMatch(/shutdown complete\n$/);
      expect(() => ip('-n', ns, 'link', 'show', 'ferry0')).toThrow();
      expect(ip('-n', ns, 'route')).toBe('');
      expect(existsSync(`/run/ipferry/${ns}`)).toBe(false);
    }
  }, 120_000);
});
