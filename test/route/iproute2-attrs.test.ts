/**
 * iproute2 fidelity against the kernel's own output (captured in a namespace on this machine by
 * test/fixtures/iproute2/capture-attrs.sh): `route show` prints every attribute it read (proto,
 * scope, src, metric, onlink, mtu [lock], advmss, pref) in ip's order; `ip -j route` JSON loads
 * like the text; `route get` answers like `ip route get` (from, iif, ipproto, dport through the
 * policy rules; fibmatch); `[root|match|exact] PREFIX` selects like `ip route show`; what
 * `route show` and `ipferry show routes` print loads back unchanged.
 */
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/config.ts';
import { formatRoutes } from '../../src/control/show-format.ts';
import { Endpoint } from '../../src/endpoint/endpoint.ts';
import { Router } from '../../src/route/router.ts';
import { formatGet, lookupQuery, parseGetWords, parseShowWords, rejectText, selects } from '../../src/route/text/get.ts';
import { jsonRoutesToText, loadRoutes, RouteTextError } from '../../src/route/text/iproute2.ts';
import { formatRoute, showRoutes } from '../../src/route/text/show.ts';
import { RouteType } from '../../src/route/types.ts';

const dir = join(import.meta.dirname, '../fixtures/iproute2');
const fixture = (f: string) => readFileSync(join(dir, f), 'utf8');
/** The kernel pads lines with a trailing space. */
const clean = (t: string) => t.replace(/[ \t]+$/gm, '');
const v4 = fixture('attrs-v4.txt');
const v6 = fixture('attrs-v6.txt');
const t100 = fixture('attrs-t100.txt');
const RULES = ['priority 100 ipproto tcp dport 80 lookup 100', 'priority 110 from 10.0.1.0/24 lookup 100'];

function load(json = false): Router {
  const r = new Router();
  if (json) {
    loadRoutes(r, fixture('attrs-v4.json') + fixture('attrs-v6.json'));
    loadRoutes(r, fixture('attrs-t100.json'), { table: 100 });
  } else {
    loadRoutes(r, v4 + v6);
    loadRoutes(r, t100, { table: 100 });
  }
  for (const rule of RULES) r.addRule(rule);
  return r;
}

/** The kernel's blocks ("### query" then answer lines). */
function blocks(text: string): [string, string][] {
  const out: [string, string][] = [];
  for (const part of text.split(/^### /m).slice(1)) {
    const nl = part.indexOf('\n');
    out.push([part.slice(0, nl), clean(part.slice(nl + 1)).replace(/\n+$/, '')]);
  }
  return out;
}

/** An ECMP block's nexthop lines in any order (the kernel reorders them in fibmatch). */
const ecmpSorted = (t: string) => {
  const [head, ...rest] = t.split('\n');
  return [head, ...rest.sort()].join('\n');
};

describe('route show prints what ip route show prints', () => {
  it('IPv4: every line of the kernel output, attributes and order', () => {
    const r = load();
    expect(showRoutes(r, { family: 4 })).toBe(clean(v4));
    // table after dev, before proto: as the kernel's fibmatch answer in attrs-get.txt prints it
    expect(showRoutes(r, { table: 100 })).toBe('default via 10.0.1.254 dev d1 table 100\n10.20.0.0/16 via 10.0.1.20 dev d1 table 100 proto static\n');
  });

  it('IPv6: the same lines (the kernel walks its tree in its own order)', () => {
    const r = load();
    const ours = showRoutes(r, { family: 6 }).trimEnd().split(/\n(?!\t)/).sort();
    expect(ours).toEqual(clean(v6).trimEnd().split(/\n(?!\t)/).sort());
  });

  it('a mutation is caught: dropping the metrics from the output fails the comparison', () => {
    const r = load();
    expect(showRoutes(r, { family: 4 }).replace(/ mtu \d+/g, '')).not.toBe(clean(v4));
  });
});

describe('ip -j route JSON as input', () => {
  it('loads to the same table as the text (JSON has no "lock" for metrics)', () => {
    expect(showRoutes(load(true), { table: 'all' })).toBe(showRoutes(load(), { table: 'all' }).replace(/ lock /g, ' '));
  });

  it('several arrays one after the other; errors name the JSON route', () => {
    expect(jsonRoutesToText('[{"dst":"10.0.0.0/8","dev":"a","flags":[]}]\n[{"dst":"fd00::/8","dev":"b","metric":5,"flags":[],"pref":"medium"}]')).toBe(
      '10.0.0.0/8 dev a\nfd00::/8 dev b metric 5 pref medium\n',
    );
    const bad = (t: string) => {
      try {
        loadRoutes(new Router(), t);
      } catch (e) {
        expect(e).toBeInstanceOf(RouteTextError);
        return (e as Error).message;
      }
      return 'no error';
    };
    expect(bad('[{"dst":"10.0.0.0/8","dev":"a"},{"dst":"10.0.0.1/8","dev":"a"}]')).toBe('JSON route 2: host bits set in 10.0.0.1/8');
    expect(bad('[{"dev":"a"}]')).toBe('JSON route 1: missing "dst"');
    expect(bad('[{"dst":"10.0.0.0/8","dev":"a"}')).toMatch(/^not valid ip -j route JSON: /);
  });
});

describe('route get answers like ip route get', () => {
  it('every captured query: nexthop, table, src, metrics on the cache line, v6 attributes, fibmatch, errors', () => {
    const r = load();
    let checked = 0;
    for (const [query, kernel] of blocks(fixture('attrs-get.txt'))) {
      const [q] = parseGetWords(query.split(' '));
      const id = lookupQuery(r, q!);
      expect(id, query).toBeGreaterThanOrEqual(0);
      const type = r.typeOf(id);
      if (kernel.startsWith('RTNETLINK answers: ')) {
        expect(kernel, query).toBe(`RTNETLINK answers: ${rejectText(type)}`);
        checked++;
        continue;
      }
      const ours = formatGet(r, id, q!);
      if (q!.fibmatch) {
        expect(ecmpSorted(ours), query).toBe(ecmpSorted(kernel));
      } else if (r.nexthopsOf(id).length > 1) {
        // ECMP: our flow hash is not the kernel's; the chosen nexthop is one of the group's
        expect(kernel.split('\n')[0]).toMatch(/ via \S+ dev \S+/);
      } else {
        // What only the live kernel knows: the source it picks from the device, uid, cache flags.
        let k = kernel.replace(/ uid \d+/, '').replace(/<redirect> ?/, '');
        if (r.attrsOf(id)?.src === undefined) k = k.replace(/ src \S+/, '');
        k = k.replace(/\n {4}cache ?$/, '').replace(/ +$/gm, '');
        expect(ours, query).toBe(k);
      }
      checked++;
    }
    expect(checked).toBe(18);
  });

  it('the policy rules see ipproto and dport: tcp 80 goes to table 100, tcp 81 and udp 80 do not', () => {
    const r = load();
    const via = (words: string) => {
      const [q] = parseGetWords(words.split(' '));
      lookupQuery(r, q!);
      return formatGet(r, lookupQuery(r, q!), q!);
    };
    expect(via('10.20.1.1 ipproto tcp dport 80')).toBe('10.20.1.1 via 10.0.1.20 dev d1 table 100');
    expect(via('10.20.1.1 ipproto tcp dport 81')).toBe('10.20.1.1 via 10.0.0.254 dev d0');
    expect(via('10.20.1.1 ipproto 17 dport 80')).toBe('10.20.1.1 via 10.0.0.254 dev d0');
    expect(via('fibmatch 10.20.1.1 ipproto tcp dport 80')).toBe('10.20.0.0/16 via 10.0.1.20 dev d1 table 100 proto static');
  });

  it('query words: selectors belong to the address before them; bad words are one line', () => {
    const qs = parseGetWords(['fibmatch', '10.0.0.1', 'from', '10.0.0.9', 'fd00::1', 'dport', '53', '10.0.0.2', 'fibmatch']);
    expect(qs.map((q) => [q.text, q.fibmatch, q.from !== undefined, q.dport])).toEqual([
      ['10.0.0.1', true, true, undefined],
      ['fd00::1', false, false, 53],
      ['10.0.0.2', true, false, undefined],
    ]);
    expect(() => parseGetWords(['fibmatch'])).toThrow('no address to look up');
    expect(() => parseGetWords(['10.0.0.1', 'from', 'fd00::1'])).toThrow('from and 10.0.0.1 are not the same address family');
    expect(() => parseGetWords(['10.0.0.1', 'dport', '70000'])).toThrow('invalid dport 70000 (0-65535)');
    expect(() => parseGetWords(['10.0.0.1', 'oif', 'eth0'])).toThrow('oif is not supported');
    expect(() => parseGetWords(['10.0.0.1', 'ipproto', 'frob'])).toThrow(/frob/);
    expect(() => parseGetWords(['10.0.0.1', 'frobnicate'])).toThrow('unknown keyword frobnicate');
  });
});

describe('route show selectors like ip route show [root|match|exact] PREFIX', () => {
  it('every captured selection', () => {
    const r = load();
    let n = 0;
    for (const [cmd, kernel] of blocks(fixture('attrs-select.txt'))) {
      const words = cmd.split(' ');
      const fam = words[0] === '-6' ? 6 : 4;
      const sel = parseShowWords(words.slice(fam === 6 ? 3 : 2), fam)!;
      const ours = r
        .list({ family: fam })
        .filter((id) => selects(sel, r.prefixOf(id)))
        .map((id) => formatRoute(r, id))
        .join('\n');
      const sortBlocks = (t: string) => t.split(/\n(?!\t)/).filter((x) => x !== '').sort();
      expect(sortBlocks(ours), cmd).toEqual(sortBlocks(kernel));
      n++;
    }
    expect(n).toBe(9);
  });
});

describe('round trips', () => {
  it('what route show prints (text and JSON) loads back unchanged', () => {
    const r = load();
    const text = showRoutes(r, { table: 'all' });
    const again = new Router();
    loadRoutes(again, text);
    expect(showRoutes(again, { table: 'all' })).toBe(text);
  });

  it("what `ipferry show routes` prints loads back to the endpoint's own table", async () => {
    const s = createSocket('udp4');
    await new Promise<void>((res) => s.bind(0, '127.0.0.1', res));
    const port = s.address().port;
    await new Promise<void>((res) => s.close(() => res()));
    const ep = new Endpoint(
      parseConfig({
        interface: { name: 'rt0', address: ['10.0.0.1/30', 'fd00::1/64'] },
        listen: `127.0.0.1:${port}`,
        stack: { address: ['10.0.0.254/32', 'fd00::fe/128'] },
        peers: [
          { name: 'sh', endpoint: '127.0.0.1:9', routes: ['192.168.20.0/24', 'fd00:20::/64'] },
          { name: 'gz', endpoint: '127.0.0.2:9', routes: ['192.168.30.0/24'] },
        ],
        routes: ['10.9.0.0/16 proto static metric 5 nexthop dev sh weight 1 nexthop dev gz weight 2', 'unreachable 10.66.0.0/16', 'fd00:99::/48 dev sh mtu 1280 pref high'],
        control: false,
      }),
      { tun: false, warmUp: 0 },
    );
    const printed = formatRoutes(ep.snapshot('routes').routes);
    expect(printed).toMatch(/ {2}uses 0$/m);
    const again = new Router();
    loadRoutes(again, printed);
    expect(showRoutes(again, { table: 'all' })).toBe(showRoutes(ep.router, { table: 'all' }));
    expect(showRoutes(again, { table: 'all' })).toContain('fd00:99::/48 dev sh metric 1024 mtu 1280 pref high\n');
    ep.stack.close();
  });

  it('reject routes answer with the kernel words', () => {
    expect([RouteType.BLACKHOLE, RouteType.UNREACHABLE, RouteType.PROHIBIT, RouteType.NONE].map(rejectText)).toEqual([
      'Invalid argument',
      'No route to host',
      'Permission denied',
      'Network is unreachable',
    ]);
  });
});
