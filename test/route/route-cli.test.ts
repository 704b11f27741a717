import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI } from '../control/cli-helper.ts';

const repo = join(import.meta.dirname, '../..');
const fixtures = join(repo, 'test/fixtures/iproute2');
const work = mkdtempSync(join(tmpdir(), 'ipferry-route-cli-'));
const routes = join(work, 'routes.txt');
writeFileSync(routes, readFileSync(join(fixtures, 'route-v4.txt'), 'utf8') + readFileSync(join(fixtures, 'route-v6.txt'), 'utf8'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function ipferry(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [...CLI, ...args], { cwd: repo, input, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('ipferry route get (child process)', () => {
  it('answers addresses like ip route get fibmatch', () => {
    // `fibmatch` before each address: without it `route get` now answers like plain `ip route get` (below)
    const r = ipferry(['route', 'get', '--routes', routes, 'fibmatch', '10.20.30.41', 'fibmatch', '10.20.30.40', 'fibmatch', '8.8.8.8', 'fibmatch', 'fd00:20:1::78']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toBe(
      [
        '10.20.30.0/24 via 10.0.1.3 dev d1',
        '10.20.30.40 via 10.0.0.4 dev d0',
        'default via 10.0.0.254 dev d0',
        'fd00:20:1::/64 via fd00:2::2 dev d1 metric 100 pref medium',
        '',
      ].join('\n'),
    );
    const plain = ipferry(['route', 'get', '--routes', routes, '10.20.30.41', '8.8.8.8', 'fd00:20:1::78']);
    expect(plain.out).toBe(['10.20.30.41 via 10.0.1.3 dev d1', '8.8.8.8 via 10.0.0.254 dev d0', 'fd00:20:1::78 from :: via fd00:2::2 dev d1 metric 100 pref medium', ''].join('\n'));
  });

  it('reads addresses from standard input; --json gives one array with address and prefix', () => {
    const r = ipferry(['route', 'get', '--routes', routes, '--json'], '192.168.40.9\n\n::\nfd00:99::1\n');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as { address: string; prefix: string | null; type: string; nexthops?: unknown[] }[];
    expect(j.map((x) => [x.address, x.prefix, x.type])).toEqual([
      ['192.168.40.9', '192.168.40.0/24', 'unicast'],
      ['::', '::/0', 'unicast'],
      ['fd00:99::1', 'fd00:99::/48', 'blackhole'],
    ]);
    expect(j[0]!.nexthops).toHaveLength(2);
  });

  it('no route: prefix null in JSON, exit 1', () => {
    const only = join(work, 'only.txt');
    writeFileSync(only, '10.0.0.0/8 dev a\n');
    const r = ipferry(['route', 'get', '--routes', only, '--json', '10.1.1.1', '11.1.1.1']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.out)).toEqual([
      expect.objectContaining({ address: '10.1.1.1', prefix: '10.0.0.0/8' }),
      { address: '11.1.1.1', prefix: null, error: 'no route' },
    ]);
    const t = ipferry(['route', 'get', '--routes', only, '11.1.1.1']);
    expect(t.out).toBe('11.1.1.1: Network is unreachable\n');
    expect(t.code).toBe(1);
  });

  it('errors are one line, exit 2', () => {
    const bad = join(work, 'bad.txt');
    writeFileSync(bad, '10.0.0.0/8 dev a\n10.0.0.1/8 dev b\n');
    const cases: [string[], RegExp][] = [
      [['route', 'get', '--routes', bad, '1.1.1.1'], /^ipferry: route get: .*bad\.txt line 2: host bits set in 10\.0\.0\.1\/8\n$/],
      [['route', 'get', '1.1.1.1'], /^ipferry: route get: --routes FILE is required\n$/],
      [['route', 'get', '--routes', join(work, 'missing.txt'), '1.1.1.1'], /^ipferry: route get: cannot read .*missing\.txt: ENOENT\n$/],
      [['route', 'get', '--routes', routes, '1.1.1'], /^ipferry: route get: address: invalid address 1\.1\.1\n$/],
      // commander's own text never reaches the operator (it used to be Node's raw parser message)
      [['route', 'get', '--bogus'], /^ipferry: route get: unknown option --bogus \(see ipferry route get --help\)\n$/],
      [['route', 'frob'], /^ipferry: route: unknown command frob \(get, show\)\n$/],
    ];
    for (const [args, re] of cases) {
      const r = ipferry(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err, args.join(' ')).toMatch(re);
      expect(r.err.split('\n').length).toBe(2);
    }
  });

  it('route show -n prints the route -n layout; --rules applies ip rule lines', () => {
    const r = ipferry(['route', 'show', '--routes', routes, '-n']);
    expect(r.code).toBe(0);
    expect(r.out.split('\n').slice(0, 3).join('\n')).toBe(readFileSync(join(fixtures, 'route-n-v4.txt'), 'utf8').split('\n').slice(0, 3).join('\n'));
    const rules = join(work, 'rules.txt');
    const rt = join(work, 'rt.txt');
    writeFileSync(rt, 'default dev main0\ndefault dev other table 100\n');
    writeFileSync(rules, '# everything to 100\npriority 10 from all lookup 100\n');
    const g = ipferry(['route', 'get', '--routes', rt, '--rules', rules, '9.9.9.9']);
    expect(g.out).toBe('9.9.9.9 dev other table 100\n'); // as ip route get answers (it used to print the route)
  });
});

describe('ipferry route with the attribute fixtures (child process)', () => {
  const attrs = join(work, 'attrs.txt');
  const json = join(work, 'attrs.json');
  const rules = join(work, 'attrs-rules.txt');
  writeFileSync(
    attrs,
    readFileSync(join(fixtures, 'attrs-v4.txt'), 'utf8') +
      readFileSync(join(fixtures, 'attrs-v6.txt'), 'utf8') +
      readFileSync(join(fixtures, 'attrs-t100.txt'), 'utf8').replace(/ *\n/g, ' table 100\n'),
  );
  writeFileSync(json, readFileSync(join(fixtures, 'attrs-v4.json'), 'utf8') + readFileSync(join(fixtures, 'attrs-v6.json'), 'utf8'));
  writeFileSync(rules, 'priority 100 ipproto tcp dport 80 lookup 100\n');

  it('route get with ipproto/dport through a rule, from, iif; fibmatch; ip -j route JSON as the table', () => {
    const g = ipferry(['route', 'get', '--routes', attrs, '--rules', rules, '10.20.1.1', 'ipproto', 'tcp', 'dport', '80', '10.7.1.1', 'from', '10.0.0.9', 'iif', 'd0', 'fibmatch', '10.9.1.1']);
    expect(g.err).toBe('');
    expect(g.out).toBe(
      [
        '10.20.1.1 via 10.0.1.20 dev d1 table 100',
        '10.7.1.1 from 10.0.0.9 via 10.0.1.7 dev d1',
        '    cache mtu 1400 advmss 1360 iif d0',
        '10.9.0.0/16 via 192.0.2.9 dev d0 proto static src 10.0.0.1 metric 5 onlink mtu lock 1400 advmss 1360',
        '',
      ].join('\n'),
    );
    const j = ipferry(['route', 'show', '--routes', json, '-6', 'root', 'fd00:7::/48']);
    expect(j.out).toBe('fd00:7::/48 via fd00:2::7 dev d1 proto bird metric 30 mtu 1400 advmss 1340 pref low\n');
    const m = ipferry(['route', 'show', '--routes', attrs, 'match', '10.9.9.9']);
    expect(m.out).toBe(
      'default via 10.0.0.254 dev d0 proto static metric 100\n10.9.0.0/16 via 192.0.2.9 dev d0 proto static src 10.0.0.1 metric 5 onlink mtu lock 1400 advmss 1360\n',
    );
  });
});
