import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRoutes, parseRoutes, RouteTextError } from '../../src/route/text/iproute2.ts';
import { Router } from '../../src/route/router.ts';
import { formatRoute, showRouteN, showRoutes, showRoutesJson } from '../../src/route/text/show.ts';
import { RouteType } from '../../src/route/types.ts';
import { formatAddress, parseAddress } from '../../src/wire/address-text.ts';

// Captured from a namespace on this machine by test/fixtures/iproute2/capture.sh.
const dir = join(import.meta.dirname, '../fixtures/iproute2');
const fixture = (f: string) => readFileSync(join(dir, f), 'utf8');
const v4Text = fixture('route-v4.txt');
const v6Text = fixture('route-v6.txt');

interface Answer {
  kind: 'fibmatch' | 'get';
  addr: string;
  rc: number;
  lines: string[];
}

function answers(): Answer[] {
  const out: Answer[] = [];
  for (const line of fixture('get.txt').split('\n')) {
    const m = /^### (fibmatch|get) (\S+) rc=(\d+)$/.exec(line);
    if (m) out.push({ kind: m[1] as Answer['kind'], addr: m[2]!, rc: Number(m[3]), lines: [] });
    else if (line !== '') out.at(-1)!.lines.push(line.trimEnd());
  }
  return out;
}

function load(): Router {
  const r = new Router({ keepText: true });
  loadRoutes(r, v4Text);
  loadRoutes(r, v6Text);
  return r;
}

/** ECMP blocks: the kernel may list nexthops in another order in fibmatch than in show. */
const normalise = (lines: string[]) => [lines[0], ...lines.slice(1).sort()].join('\n');

// Kernel answers that do not come from the main table we loaded: the broadcast quirk of
// 255.255.255.255, 0.0.0.0 (martian), and an IPv6 local route `ip -6 route show` does not list.
const SKIP = new Set(['255.255.255.255', '0.0.0.0', 'fd00:12::1']);
const ERRNO_TYPE: Record<string, number> = {
  'RTNETLINK answers: Invalid argument': RouteType.BLACKHOLE,
  'RTNETLINK answers: No route to host': RouteType.UNREACHABLE,
  'RTNETLINK answers: Permission denied': RouteType.PROHIBIT,
};

describe('iproute2 text from the kernel', () => {
  it('parses every line of ip route show / ip -6 route show, decorations included', () => {
    const v4 = parseRoutes(v4Text);
    const v6 = parseRoutes(v6Text);
    expect(v4.length).toBe(24);
    expect(v6.length).toBe(23);
    const byLine = (rs: typeof v4, n: number) => rs.find((x) => x.line === n)!.spec;
    // `10.0.2.0/24 dev v0 proto kernel scope link src 10.0.2.1 linkdown`
    expect(byLine(v4, 6)).toMatchObject({ dev: 'v0' });
    // multi-line ECMP with weights
    const ecmp = v4.find((x) => x.spec.metric === 20)!.spec;
    expect(ecmp.nexthops!.map((n) => [n.dev, n.weight])).toEqual([
      ['d0', 1],
      ['d1', 3],
    ]);
    // IPv6 defaults, expires, pref, reject types with `dev lo`
    expect(v6.filter((x) => x.spec.prefix !== '' && (x.spec.prefix as { length: number }).length === 0).length).toBe(2);
    const bh = v6.find((x) => x.spec.type === 'blackhole')!.spec;
    expect(bh.dev).toBeUndefined();
    expect(bh.metric).toBe(1024);
  });

  it('lookup gives the kernel answers to ip route get fibmatch', () => {
    const r = load();
    let checked = 0;
    for (const a of answers()) {
      if (a.kind !== 'fibmatch' || SKIP.has(a.addr)) continue;
      const id = r.lookupAddress(parseAddress(a.addr));
      if (a.rc === 0) {
        expect(id, a.addr).toBeGreaterThanOrEqual(0);
        expect(normalise(formatRoute(r, id, true).split('\n')), a.addr).toBe(normalise(a.lines));
      } else {
        expect(r.lastType, a.addr).toBe(ERRNO_TYPE[a.lines[0]!]);
      }
      checked++;
    }
    expect(checked).toBeGreaterThan(35);
  });

  it('the nexthop chosen matches ip route get for single-path routes', () => {
    const r = load();
    for (const a of answers()) {
      if (a.kind !== 'get' || a.rc !== 0 || SKIP.has(a.addr)) continue;
      const id = r.lookupAddress(parseAddress(a.addr));
      if (r.nexthopsOf(id).length !== 1 || r.typeOf(id) !== RouteType.UNICAST) continue;
      const words = a.lines[0]!.split(/\s+/);
      const via = words.includes('via') ? words[words.indexOf('via') + 1] : undefined;
      const dev = words[words.indexOf('dev') + 1];
      const nh = r.lastNexthop!;
      expect(nh.dev, a.addr).toBe(dev);
      expect(nh.via ? formatAddress(nh.via.bytes, 0, nh.via.family) : undefined, a.addr).toBe(via);
    }
  });

  it('route -n layout matches net-tools on the same IPv4 table', () => {
    const r = new Router();
    loadRoutes(r, v4Text);
    expect(showRouteN(r, 4)).toBe(fixture('route-n-v4.txt'));
  });

  it('route -6 -n layout: same columns as net-tools for the main-table routes', () => {
    const r = new Router();
    loadRoutes(r, v6Text);
    const ours = showRouteN(r, 6).split('\n');
    const kernel = fixture('route-n-v6.txt').split('\n');
    expect(ours[1]).toBe(kernel[1]);
    // Compare Destination / Next Hop / Flag (without the kernel's `e` for expires) / Met / If.
    const cols = (l: string) => {
      const w = l.split(/\s+/);
      return [w[0], w[1], w[2]!.replace('e', ''), w[3], w[6]].join(' ');
    };
    const kernelSet = new Set(kernel.slice(2).filter((l) => l).map(cols));
    for (const l of ours.slice(2).filter((x) => x)) expect(kernelSet.has(cols(l)), l).toBe(true);
  });

  it('show: ip syntax round-trips through the parser; JSON has prefix and counters', () => {
    const r = load();
    const text = showRoutes(r);
    const again = new Router();
    loadRoutes(again, text);
    expect(showRoutes(again)).toBe(text);
    const json = JSON.parse(showRoutesJson(r)) as { dst: string; prefix: string; nexthops?: unknown[] }[];
    expect(json.find((j) => j.dst === '10.20.30.40')!.prefix).toBe('10.20.30.40/32');
    expect(json.find((j) => j.prefix === '::/0')!.dst).toBe('default');
    expect(json.find((j) => j.prefix === '192.168.40.0/24')!.nexthops).toEqual([
      { gateway: '10.0.0.2', dev: 'd0', weight: 1 },
      { gateway: '10.0.1.2', dev: 'd1', weight: 3 },
    ]);
  });
});

describe('iproute2 text from operators', () => {
  it('accepts ip route add lines, backslash continuations, comments, tables', () => {
    const r = new Router();
    loadRoutes(
      r,
      [
        '# seed 003: multipath over three IPIP tunnels',
        'ip route add 192.168.20.0/24 \\',
        '  nexthop via 10.0.0.2 dev tun0 \\',
        '  nexthop via 10.0.1.2 dev tun1 \\',
        '  nexthop via 10.0.2.2 dev tun2',
        'ip -6 route add default dev sit1 metric 10',
        'ip route add 10.1.0.0/16 via 10.0.255.2 dev tunl0 mtu lock 1400',
        '10.2.0.0/16 dev shanghai table 100',
        'default via inet6 fe80::1 dev wg0',
      ].join('\n'),
    );
    expect(showRoutes(r)).toBe(
      [
        'default via inet6 fe80::1 dev wg0',
        // the attributes are kept now (issue 11: route show dropped mtu, proto, scope, src, pref, advmss)
        '10.1.0.0/16 via 10.0.255.2 dev tunl0 mtu lock 1400',
        '192.168.20.0/24',
        '\tnexthop via 10.0.0.2 dev tun0 weight 1',
        '\tnexthop via 10.0.1.2 dev tun1 weight 1',
        '\tnexthop via 10.0.2.2 dev tun2 weight 1',
        'default dev sit1 metric 10',
        '',
      ].join('\n'),
    );
    expect(showRoutes(r, { table: 100 })).toBe('10.2.0.0/16 dev shanghai table 100\n');
  });

  const bad: [string, RegExp][] = [
    ['10.0.0.1/8 dev x', /^line 2: host bits set in 10\.0\.0\.1\/8$/],
    ['10.0.0.0/33 dev x', /^line 2: invalid prefix length in 10\.0\.0\.0\/33$/],
    ['10.0.0.0/8', /^line 2: 10\.0\.0\.0\/8: route needs via, dev or nexthop$/],
    ['10.0.0.0/8 via 10.0.0.300 dev x', /^line 2: via: invalid IPv4 address 10\.0\.0\.300$/],
    ['10.0.0.0/8 dev x metric -1', /^line 2: invalid metric -1$/],
    ['10.0.0.0/8 dev x frobnicate 3', /^line 2: unknown keyword frobnicate$/],
    ['10.0.0.0/8 nexthop via 1.1.1.1 dev a weight 0', /^line 2: invalid weight 0/],
    ['10.0.0.0/8 nexthop weight 2', /^line 2: nexthop 1 needs via or dev$/],
    ['blackhole 10.0.0.0/8 via 1.1.1.1', /^line 2: blackhole route cannot have a gateway$/],
    ['10.0.0.0/8 dev', /^line 2: dev needs a value$/],
    ['ip link add foo', /^line 2: expected "ip route"/],
  ];
  for (const [line, re] of bad) {
    it(`one clear error for: ${line}`, () => {
      const r = new Router();
      let err: unknown;
      try {
        loadRoutes(r, `1.0.0.0/8 dev ok\n${line}\n`);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(RouteTextError);
      expect((err as Error).message).toMatch(re);
      expect((err as Error).message).not.toContain('\n');
    });
  }
});
