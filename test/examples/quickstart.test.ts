/**
 * The README's operator quick start, done as a newcomer would: its host A config is
 * examples/host-a.yaml (host B's is the same with the numbers swapped), both pass `ipferry check`,
 * and with them two endpoints in two network namespaces (underlay 192.0.2.1 / 192.0.2.2 on a veth
 * pair the test creates) talk: `ipferry up ferry0`, `ipferry show ferry0`, the kernel's ping
 * through the tunnel, `ipferry ping` between the endpoints' own stacks, `ipferry down ferry0`.
 * The YAML example of the README's Config section passes `ipferry check` too.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { runCli, startCli } from '../control/cli-helper.ts';

const repo = join(import.meta.dirname, '../..');
const readme = readFileSync(join(repo, 'README.md'), 'utf8');
const quick = readme.slice(readme.indexOf('## Quick start: two hosts'), readme.indexOf('## The seed case'));
/** The ```yaml blocks of a text, without the fence's own indentation (a block inside a list item). */
const yamlBlocks = (text: string): string[] =>
  [...text.matchAll(/^( *)```yaml\n([\s\S]*?)^ *```/gm)].map((m) => m[2]!.replace(new RegExp(`^ {${m[1]!.length}}`, 'gm'), ''));
const dir = mkdtempSync(join(tmpdir(), 'ipferry-quickstart-'));
const running: ReturnType<typeof startCli>[] = [];

describe('README quick start', () => {
  it("host A's config in the README is examples/host-a.yaml; host B's is it with the numbers swapped", () => {
    const [block] = yamlBlocks(quick);
    const a = parse(readFileSync(join(repo, 'examples/host-a.yaml'), 'utf8')) as { peers: { key: string }[] };
    const b = parse(readFileSync(join(repo, 'examples/host-b.yaml'), 'utf8')) as { peers: { key: string }[] };
    const shown = parse(block!) as { peers: { key: string }[] };
    expect(shown.peers[0]!.key).toBe('PASTE-THE-KEY');
    shown.peers[0]!.key = a.peers[0]!.key;
    expect(shown).toEqual(a);
    expect(b.peers[0]!.key).toBe(a.peers[0]!.key);
    const swapped = JSON.parse(JSON.stringify(a).replace(/192\.0\.2\.(\d)|10\.77\.0\.(\d)/g, (m, u, t) => (u ? `192.0.2.${3 - Number(u)}` : `10.77.0.${t === '1' ? 2 : t === '2' ? 1 : t === '5' ? 6 : 5}`)).replace('host-b', 'host-a'));
    expect(b).toEqual(swapped);
    // the prose says so too
    expect(quick).toContain('`address: [10.77.0.2/30]`, `listen: 192.0.2.2:6080`');
  });

  it('the example configs pass ipferry check (also the Config section YAML)', async () => {
    const r = await runCli(['check', 'examples/host-a.yaml', 'examples/host-b.yaml'], { cwd: repo });
    expect(r.stdout).toBe('examples/host-a.yaml: ok (1 peer)\nexamples/host-b.yaml: ok (1 peer)\n');
    const config = readme.slice(readme.indexOf('## Config'), readme.indexOf('## Metrics'));
    const f = join(dir, 'readme-config.yaml');
    writeFileSync(f, yamlBlocks(config)[0]!);
    const c = await runCli(['check', f]);
    expect(c.stderr).toBe('');
    expect(c.stdout).toBe(`${f}: ok (1 peer, 1 by DNS name, resolved at start)\n`);
  });

  it('every command of the CLI table has an example that names it', () => {
    const cli = readme.slice(readme.indexOf('## CLI'), readme.indexOf('## Config'));
    for (const cmd of ['up', 'down', 'show', 'ping', 'check', 'genkey', 'route get', 'route show']) {
      expect(cli).toMatch(new RegExp(`\\| \`${cmd}[ \`].*\\| \`(ip -6 route \\\\\\| )?ipferry ${cmd}[ \`]`));
    }
  });
});

const canNetns = process.getuid?.() === 0 && existsSync('/dev/net/tun');
if (!canNetns) console.warn('quickstart.test.ts: the two-host run is skipped (needs root and /dev/net/tun)');

afterAll(() => {
  for (const r of running) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!canNetns)('README quick start on two hosts (network namespaces)', () => {
  it('up, show, ping through the tunnel, ipferry ping, down', async () => {
    const tag = `${process.pid % 100000}`;
    const hosts = [`qsA${tag}`, `qsB${tag}`];
    const ip = (...a: string[]) => execFileSync('ip', a, { encoding: 'utf8', timeout: 10_000 });
    const inNs = (ns: string) => ({ prefix: ['ip', 'netns', 'exec', ns] });
    // /etc/ipferry/ferry0.yaml of each host: here a directory per host (`up` takes the path).
    const etc = hosts.map((h, i) => {
      const d = join(dir, h);
      mkdirSync(d);
      copyFileSync(join(repo, `examples/host-${i === 0 ? 'a' : 'b'}.yaml`), join(d, 'ferry0.yaml'));
      return d;
    });
    try {
      for (const ns of hosts) ip('netns', 'add', ns);
      ip('link', 'add', `qa${tag}`, 'netns', hosts[0]!, 'type', 'veth', 'peer', 'name', `qb${tag}`, 'netns', hosts[1]!);
      for (const [i, ns] of hosts.entries()) {
        const dev = i === 0 ? `qa${tag}` : `qb${tag}`;
        ip('-n', ns, 'link', 'set', 'lo', 'up');
        ip('-n', ns, 'addr', 'add', `192.0.2.${i + 1}/24`, 'dev', dev);
        ip('-n', ns, 'link', 'set', dev, 'up');
      }
      // 4. start (the name finds ferry0.yaml in the directory)
      const ups = hosts.map((ns, i) => startCli(['up', join(etc[i]!, 'ferry0')], { ...inNs(ns), env: { IPFERRY_WARMUP: '0' } }));
      running.push(...ups);
      await Promise.all(ups.map((u) => u.waitFor(/control socket /)));

      // 5. ping through the tunnel (kernel to kernel), then the endpoints' own stacks
      const ping = execFileSync('ip', ['netns', 'exec', hosts[0]!, 'ping', '-c', '3', '-i', '0.2', '-W', '2', '10.77.0.2'], { encoding: 'utf8', timeout: 20_000 });
      expect(ping).toContain('3 received');
      const own = await runCli(['ping', '10.77.0.6', '-c', '2', '--interval', '100'], inNs(hosts[0]!));
      expect(own.stderr).toBe('');
      expect(own.stdout).toContain('2 packets transmitted, 2 received, 0% packet loss');
      const show = await runCli(['show', 'ferry0'], inNs(hosts[0]!));
      expect(show.stdout).toContain('interface: ferry0\n');
      expect(show.stdout).toMatch(/peer: host-b\n {2}endpoint: 192\.0\.2\.2:6080\n/);
      expect(show.stdout).not.toMatch(/peer: host-b\n[\s\S]*last packet: never/);

      // 6. stop
      for (const ns of hosts) {
        const down = await runCli(['down', 'ferry0'], inNs(ns));
        expect(down.stdout).toMatch(/^ferry0: stopped \(pid \d+\)\n$/);
      }
      for (const u of ups) expect((await u.exited).code).toBe(0);
      for (const ns of hosts) expect(() => ip('-n', ns, 'link', 'show', 'ferry0')).toThrow();
    } finally {
      for (const ns of hosts) {
        try {
          ip('netns', 'del', ns);
        } catch {
          /* not created */
        }
      }
    }
  });
});
