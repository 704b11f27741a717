/**
 * Peer endpoints as DNS names: parsed (and checked for form) without the network, looked up by
 * resolveConfig at start. The lookups here go to a hosts file of the test's own: in-process with
 * an injected lookup, and end to end through getaddrinfo with `ipferry up --check` in a private
 * mount namespace whose /etc/hosts and /etc/nsswitch.conf ("hosts: files") are the test's files
 * (bind mounts that vanish with the namespace; the machine's files are never touched, and no DNS
 * query leaves the machine).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, resolveConfig, type Lookup } from '../../src/config/config.ts';
import { Endpoint } from '../../src/endpoint/endpoint.ts';
import { CLI } from '../control/cli-helper.ts';

const dir = mkdtempSync(join(tmpdir(), 'ipferry-hostnames-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A lookup over a small table, as getaddrinfo over a hosts file answers. */
function hostsLookup(table: Record<string, string[]>): Lookup & { asked: [string, number][] } {
  const asked: [string, number][] = [];
  const f = (async (name: string, family: 0 | 4 | 6) => {
    asked.push([name, family]);
    const all = (table[name] ?? []).map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
    const want = family === 0 ? all : all.filter((a) => a.family === family);
    if (want.length === 0) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
    return want;
  }) as Lookup & { asked: [string, number][] };
  f.asked = asked;
  return f;
}

const cfg = (endpoint: string, extra: Record<string, unknown> = {}) =>
  parseConfig({ interface: { name: 'f0' }, peers: [{ name: 'sh', endpoint, routes: ['10.2.0.0/16'] }], ...extra });

async function rejection(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('resolved');
}

describe('parsing names (no lookup)', () => {
  it('a name stays unresolved; parseConfig is synchronous and never looks it up', () => {
    const c = cfg('GW.Example.NET.:6080');
    expect(c.peers[0]!.endpoint).toMatchObject({ text: 'GW.Example.NET.:6080', hostname: 'gw.example.net', host: 'gw.example.net', port: 6080 });
    expect(c.peers[0]!.endpoint.bytes.length).toBe(0);
  });

  it.each([
    ['gw.example.net', 'missing port in gw.example.net'],
    ['gw.example.net:0', 'port out of range in gw.example.net:0 (1-65535)'],
    ['gw.example.net:99999', 'port out of range in gw.example.net:99999 (1-65535)'],
    ['1.2.3:6080', 'invalid address 1.2.3'],
    ['gw_x.example:6080', 'invalid address gw_x.example'],
    ['-gw.example:6080', 'invalid address -gw.example'],
  ])('%s: %s', (endpoint, message) => {
    expect(() => cfg(endpoint)).toThrow(`<config>: peers[0].endpoint: ${message}`);
  });

  it('the same name twice is a duplicate before any lookup', () => {
    expect(() =>
      parseConfig({
        interface: { name: 'f0' },
        peers: [
          { name: 'a', endpoint: 'gw.example.net:6080' },
          { name: 'b', endpoint: 'GW.example.net:6080' },
        ],
      }),
    ).toThrow('<config>: peers[1].endpoint: duplicate endpoint gw.example.net:6080 (gw.example.net:6080 and GW.example.net:6080) (also peers[0], a)');
  });

  it('an Endpoint refuses an unresolved config with one line', () => {
    expect(() => new Endpoint(cfg('gw.example.net:6080'), { tun: false, warmUp: 0 })).toThrow(
      '<config>: peers[0].endpoint: gw.example.net:6080 is a DNS name: resolve the config first (resolveConfig)',
    );
  });
});

describe('resolveConfig', () => {
  const lookup = hostsLookup({ 'gw.example.net': ['2001:db8::20', '198.51.100.20'], 'v4.example.net': ['198.51.100.4'], 'me.example.net': ['127.0.0.1'] });

  it('asks for the family the listen socket speaks, and fills in the address', async () => {
    const any = await resolveConfig(cfg('gw.example.net:6080'), { lookup });
    expect(any.peers[0]!.endpoint).toMatchObject({ hostname: 'gw.example.net', family: 6, host: '2001:db8::20', port: 6080 });
    const v4 = await resolveConfig(cfg('gw.example.net:6080', { listen: '192.0.2.1:6080' }), { lookup });
    expect(v4.peers[0]!.endpoint).toMatchObject({ family: 4, host: '198.51.100.20', bytes: Uint8Array.from([198, 51, 100, 20]) });
    expect(lookup.asked.slice(-2)).toEqual([
      ['gw.example.net', 0],
      ['gw.example.net', 4],
    ]);
  });

  it('addresses pass through untouched (the same object)', async () => {
    const c = cfg('192.0.2.9:6080');
    expect(await resolveConfig(c, { lookup })).toBe(c);
  });

  it('a name that does not resolve: one line naming the peer', async () => {
    expect(await rejection(resolveConfig(cfg('nosuch.example.net:6080'), { lookup }))).toBe(
      '<config>: peers[0].endpoint: cannot resolve nosuch.example.net: no such name',
    );
    expect(await rejection(resolveConfig(cfg('v4.example.net:6080', { listen: '[2001:db8::1]:6080' }), { lookup }))).toBe(
      '<config>: peers[0].endpoint: cannot resolve v4.example.net (IPv6, as listen [2001:db8::1]:6080 is): no such name',
    );
  });

  it('a lookup that never answers is bounded', async () => {
    const never: Lookup = () => new Promise(() => {});
    expect(await rejection(resolveConfig(cfg('gw.example.net:6080'), { lookup: never, timeoutMs: 50 }))).toBe(
      '<config>: peers[0].endpoint: cannot resolve gw.example.net: no answer within 0.05 s',
    );
  });

  it('the endpoint checks run again on the addresses', async () => {
    const two = parseConfig({
      interface: { name: 'f0' },
      peers: [
        { name: 'a', endpoint: 'v4.example.net:6080' },
        { name: 'b', endpoint: '198.51.100.4:6080' },
      ],
    });
    expect(await rejection(resolveConfig(two, { lookup }))).toBe(
      '<config>: peers[1].endpoint: duplicate endpoint 198.51.100.4:6080 (v4.example.net:6080 and 198.51.100.4:6080) (also peers[0], a)',
    );
    expect(await rejection(resolveConfig(cfg('me.example.net:6080', { listen: ':6080' }), { lookup }))).toBe(
      '<config>: peers[0].endpoint: 127.0.0.1:6080 is this endpoint itself (listen is all addresses, port 6080)',
    );
  });
});

// ---- end to end through getaddrinfo, in a private mount namespace
const canUnshare = process.getuid?.() === 0 && existsSync('/usr/bin/unshare');

function upCheckWithHosts(hosts: string, config: object): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const h = join(dir, `hosts-${Math.random().toString(36).slice(2)}`);
  const ns = join(dir, 'nsswitch.conf');
  const file = join(dir, `c-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(h, hosts);
  writeFileSync(ns, 'hosts: files\n');
  writeFileSync(file, JSON.stringify(config));
  const node = [process.execPath, ...CLI, 'up', '--userspace', '--check', file].map((a) => `'${a}'`).join(' ');
  const script = `mount --bind '${h}' /etc/hosts && mount --bind '${ns}' /etc/nsswitch.conf && exec ${node}`;
  return new Promise((res) => {
    const c = execFile('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { timeout: 30_000 }, (_e, stdout, stderr) =>
      res({ code: c.exitCode, stdout, stderr }),
    );
  });
}

describe.skipIf(!canUnshare)('ipferry up --check resolves names through getaddrinfo (test hosts file, mount namespace)', () => {
  const config = (endpoint: string) => ({
    interface: { name: 'dnst0' },
    listen: '127.0.0.1:0',
    control: false,
    peers: [{ name: 'far', endpoint, routes: ['10.77.0.0/16'] }],
  });

  it('a name in the hosts file: resolved, logged, ok', async () => {
    const r = await upCheckWithHosts('127.0.0.1 localhost\n192.0.2.77 gw.test.example\n', { ...config('gw.test.example:6080'), listen: '127.0.0.1:47611' });
    expect(r.stderr).toMatch(/ info dnst0: peer far: gw\.test\.example is 192\.0\.2\.77\n$/);
    expect(r.stdout).toMatch(/: ok \(1 peer\)\n$/);
    expect(r.code).toBe(0);
  });

  it('a name nowhere: one line, exit 2', async () => {
    const r = await upCheckWithHosts('127.0.0.1 localhost\n', { ...config('nosuch.test.example:6080'), listen: '127.0.0.1:47612' });
    expect(r.stderr).toMatch(/^ipferry: \S+\.json: peers\[0\]\.endpoint: cannot resolve nosuch\.test\.example \(IPv4, as listen 127\.0\.0\.1:47612 is\): no such name\n$/);
    expect(r.code).toBe(2);
  });
});
