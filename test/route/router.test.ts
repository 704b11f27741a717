import { describe, expect, it } from 'vitest';
import { Router } from '../../src/route/router.ts';
import { icmpForRouteType, RouteType } from '../../src/route/types.ts';
import { parseAddress } from '../../src/wire/address-text.ts';
import type { Family, Prefix } from '../../src/wire/address-text.ts';
import { addressGen, ipv4Packet, ipv6Packet, matches, randomPrefix, rng } from './helpers.ts';

interface RefRoute {
  id: number;
  p: Prefix;
  metric: number;
  seq: number;
}

/** Linux's choice: longest prefix, then lowest metric, then first added. */
function refLookup(routes: RefRoute[], addr: Uint8Array): number {
  let best: RefRoute | null = null;
  for (const r of routes) {
    if (!matches(r.p, addr)) continue;
    if (
      !best ||
      r.p.length > best.p.length ||
      (r.p.length === best.p.length && (r.metric < best.metric || (r.metric === best.metric && r.seq < best.seq)))
    ) {
      best = r;
    }
  }
  return best ? best.id : -1;
}

function addrBuf(a: Uint8Array, family: Family): Uint8Array {
  return family === 4 ? ipv4Packet('192.0.2.1', a.join('.')) : ipv6Packet(new Uint8Array(16), a);
}

describe('Router differential against brute force', () => {
  for (const family of [4, 6] as const) {
    it(`IPv${family}: add/append/replace/remove with metrics, lookups through rules from packets`, () => {
      for (let seed = 1; seed <= 3; seed++) {
        const rand = rng(seed * 104729 + family);
        const gen = addressGen(rand, family, 5);
        const router = new Router();
        let routes: RefRoute[] = [];
        let seq = 0;
        const genPrefix = (): Prefix => {
          // avoid the shortest IPv4 lengths most of the time (DIR-24-8 only after 16k routes; cheap here)
          return randomPrefix(rand, gen, family);
        };
        for (let step = 0; step < 1200; step++) {
          const r = rand();
          if (r < 0.4 || routes.length === 0) {
            const p = genPrefix();
            const metric = Math.floor(rand() * 4) * 10;
            const id = router.add({ prefix: p, metric, dev: `tun${Math.floor(rand() * 3)}` });
            routes.push({ id, p, metric, seq: seq++ });
          } else if (r < 0.5) {
            // replace: same prefix+metric route goes away, a new one comes
            const old = routes[Math.floor(rand() * routes.length)]!;
            const id = router.replace({ prefix: old.p, metric: old.metric, dev: 'tunR' });
            const victim = routes
              .filter((x) => x.p.length === old.p.length && Buffer.compare(x.p.bytes, old.p.bytes) === 0 && x.metric === old.metric)
              .sort((a, b) => a.seq - b.seq)[0]!;
            routes = routes.filter((x) => x !== victim);
            routes.push({ id, p: old.p, metric: old.metric, seq: seq++ });
          } else if (r < 0.75) {
            const victim = routes[Math.floor(rand() * routes.length)]!;
            expect(router.remove(victim.id)).toBe(true);
            routes = routes.filter((x) => x !== victim);
          } else {
            for (let q = 0; q < 8; q++) {
              const a = gen();
              const want = refLookup(routes, a);
              const got = router.lookup(addrBuf(a, family), 0);
              if (got !== want) throw new Error(`seed ${seed} step ${step}: ${Buffer.from(a).toString('hex')} got ${got} want ${want}`);
              expect(router.lastType).toBe(want < 0 ? RouteType.NONE : RouteType.UNICAST);
            }
          }
        }
        expect(router.size).toBe(routes.length);
        router.clear();
        expect(router.size).toBe(0);
      }
    });
  }

  it('IPv4 table growing past the DIR-24-8 threshold keeps answering the same', () => {
    const rand = rng(42);
    const router = new Router();
    const routes: RefRoute[] = [];
    const bases = Array.from({ length: 40 }, () => Math.floor(rand() * 2 ** 32) >>> 0);
    for (let i = 0; i < 30000; i++) {
      const len = 18 + Math.floor(rand() * 15);
      const base = (bases[i % bases.length]! ^ Math.floor(rand() * 2 ** 20)) >>> 0;
      const v = len === 0 ? 0 : (base & (0xffffffff << (32 - len))) >>> 0;
      const bytes = Uint8Array.of(v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255);
      const p: Prefix = { family: 4, bytes, length: len };
      routes.push({ id: router.add({ prefix: p, metric: i % 3, dev: 'x' }), p, metric: i % 3, seq: i });
    }
    expect(router.table('main').v4!.strides).toEqual([24, 8]);
    for (let q = 0; q < 400; q++) {
      const base = (bases[q % bases.length]! ^ Math.floor(rand() * 2 ** 20)) >>> 0;
      const a = Uint8Array.of(base >>> 24, (base >>> 16) & 255, (base >>> 8) & 255, base & 255);
      expect(router.lookup(addrBuf(a, 4), 0)).toBe(refLookup(routes, a));
    }
    // removal restores covering prefixes
    for (const r of routes.splice(0, 25000)) router.remove(r.id);
    for (let q = 0; q < 400; q++) {
      const base = (bases[q % bases.length]! ^ Math.floor(rand() * 2 ** 20)) >>> 0;
      const a = Uint8Array.of(base >>> 24, (base >>> 16) & 255, (base >>> 8) & 255, base & 255);
      expect(router.lookup(addrBuf(a, 4), 0)).toBe(refLookup(routes, a));
    }
  });
});

const lookupText = (router: Router, a: string, opts = {}) => router.lookupAddress(parseAddress(a), opts);

describe('routes as Linux has them', () => {
  it('lowest metric wins; removing the winner exposes the next; removing a prefix restores the cover', () => {
    const r = new Router();
    const wide = r.add({ prefix: '10.0.0.0/8', dev: 'wide' });
    const m100 = r.add({ prefix: '10.1.0.0/16', metric: 100, dev: 'a' });
    const m50 = r.add({ prefix: '10.1.0.0/16', metric: 50, dev: 'b' });
    const m70 = r.add({ prefix: '10.1.0.0/16', metric: 70, dev: 'c' });
    expect(lookupText(r, '10.1.2.3')).toBe(m50);
    expect(r.remove({ prefix: '10.1.0.0/16' })).toBe(true); // ip route del: first (lowest metric)
    expect(lookupText(r, '10.1.2.3')).toBe(m70);
    expect(r.remove({ prefix: '10.1.0.0/16', metric: 100 })).toBe(true);
    expect(lookupText(r, '10.1.2.3')).toBe(m70);
    expect(r.remove(m70)).toBe(true);
    expect(lookupText(r, '10.1.2.3')).toBe(wide);
    expect(r.remove(m100)).toBe(false); // already gone
    expect(r.remove({ prefix: '10.1.0.0/16' })).toBe(false);
  });

  it('default metrics (0 for IPv4, 1024 for IPv6), replace keeps one route per metric', () => {
    const r = new Router();
    const a = r.add({ prefix: 'fd00::/16', dev: 'a' });
    expect(r.metricOf(a)).toBe(1024);
    const b = r.replace({ prefix: 'fd00::/16', dev: 'b' });
    expect(r.size).toBe(1); // a is gone (its id may be reused by b)
    expect(lookupText(r, 'fd00::1')).toBe(b);
    expect(r.lastNexthop?.dev).toBe('b');
    expect(r.metricOf(r.add({ prefix: '0.0.0.0/0', dev: 'x' }))).toBe(0);
  });

  it('host bits set is an error, as in Linux', () => {
    const r = new Router();
    expect(() => r.add({ prefix: '10.0.0.1/8', dev: 'x' })).toThrow(/host bits set in 10.0.0.1\/8/);
    expect(() => r.add({ prefix: { family: 4, bytes: Uint8Array.of(10, 0, 0, 1), length: 8 }, dev: 'x' })).toThrow(/host bits/);
    expect(() => r.add({ prefix: '10.0.0.0/8' })).toThrow(/needs dev, via or nexthop/);
    expect(() => r.add({ prefix: '10.0.0.0/8', type: 'blackhole', via: '10.0.0.1' })).toThrow(/cannot have a gateway/);
  });

  it('route types and the ICMP errors Linux sends for them', () => {
    const r = new Router();
    r.add({ prefix: '10.9.0.0/16', type: 'blackhole' });
    r.add({ prefix: '10.10.0.0/16', type: 'unreachable' });
    r.add({ prefix: '10.11.0.0/16', type: 'prohibit' });
    r.add({ prefix: '10.12.0.0/16', type: 'local', dev: 'self' });
    r.add({ prefix: 'fd00:98::/32', type: 'unreachable' });
    r.add({ prefix: 'fd00:97::/32', type: 'prohibit' });
    const cases: [string, number, 4 | 6, object | null][] = [
      ['10.9.1.1', RouteType.BLACKHOLE, 4, null],
      ['10.10.1.1', RouteType.UNREACHABLE, 4, { type: 3, code: 1 }],
      ['10.11.1.1', RouteType.PROHIBIT, 4, { type: 3, code: 13 }],
      ['10.12.1.1', RouteType.LOCAL, 4, null],
      ['8.8.8.8', RouteType.NONE, 4, { type: 3, code: 0 }],
      ['fd00:98::1', RouteType.UNREACHABLE, 6, { type: 1, code: 0 }],
      ['fd00:97::1', RouteType.PROHIBIT, 6, { type: 1, code: 1 }],
      ['2001:db8::1', RouteType.NONE, 6, { type: 1, code: 0 }],
    ];
    for (const [addr, type, fam, icmp] of cases) {
      lookupText(r, addr);
      expect(r.lastType, addr).toBe(type);
      expect(icmpForRouteType(r.lastType, fam), addr).toEqual(icmp);
    }
    expect(icmpForRouteType(RouteType.BLACKHOLE, 6)).toBeNull();
    expect(icmpForRouteType(RouteType.UNICAST, 4)).toBeNull();
  });

  it('throw goes on to the next rule', () => {
    const r = new Router();
    r.add({ prefix: '10.13.0.0/16', type: 'throw', table: 100 });
    r.add({ prefix: '10.0.0.0/8', dev: 't100', table: 100 });
    const main = r.add({ prefix: '10.0.0.0/8', dev: 'main' });
    r.addRule('priority 100 from all lookup 100');
    expect(r.nexthopsOf(lookupText(r, '10.1.1.1'))[0]!.dev).toBe('t100');
    expect(lookupText(r, '10.13.1.1')).toBe(main);
  });

  it('counts packets and bytes per route', () => {
    const r = new Router();
    const id = r.add({ prefix: '10.0.0.0/8', dev: 'a' });
    const pkt = ipv4Packet('1.2.3.4', '10.1.1.1');
    for (let i = 0; i < 5; i++) r.lookup(pkt, 0);
    r.resolve(pkt, 0); // does not count
    expect(r.packetsOf(id)).toBe(5);
    expect(r.bytesOf(id)).toBe(5 * 28);
    r.resetCounters();
    expect(r.packetsOf(id)).toBe(0);
  });

  it('never throws on short or garbage packets', () => {
    const r = new Router();
    r.add({ prefix: '0.0.0.0/0', dev: 'a' });
    expect(r.lookup(new Uint8Array(10), 0)).toBe(-1);
    expect(r.lookup(Uint8Array.of(0x45), 0)).toBe(-1);
    expect(r.lookup(new Uint8Array(30).fill(0xff), 0)).toBe(-1);
    expect(r.lookup(new Uint8Array(30), 40)).toBe(-1);
    const def6 = r.add({ prefix: '::/0', dev: 'a' });
    const v6ext = ipv6Packet(new Uint8Array(16), new Uint8Array(16), 0); // hop-by-hop claims more than there is
    v6ext[41] = 200;
    expect(r.lookup(v6ext, 0)).toBe(def6);
    // The walk stops at the packet's end, not the buffer's: a hop-by-hop header (16 bytes) that
    // runs past `end` must not let the router read ports from the bytes behind the packet (a
    // UDP header with destination port 53 is there, outside the packet).
    r.add({ prefix: '::/0', dev: 'dns', table: 200 });
    r.addRule('from all ipproto udp dport 53 lookup 200');
    const dns = new Uint8Array(80);
    dns.set(ipv6Packet(new Uint8Array(16), new Uint8Array(16), 0));
    dns[40] = 17; // hop-by-hop: next header UDP
    dns[41] = 1; // (1 + 1) * 8 = 16 bytes
    dns[56 + 2] = 0;
    dns[56 + 3] = 53;
    expect(r.lookup(dns, 0, 0, 80)).not.toBe(def6); // the whole buffer is the packet: dport 53 is read
    expect(r.lookup(dns, 0, 0, 48)).toBe(def6); // the packet ends at 48: no ports
  });
});

describe('ECMP', () => {
  const mk = () => {
    const r = new Router();
    const id = r.add({
      prefix: '192.168.20.0/24',
      nexthops: [
        { via: '10.0.0.2', dev: 'tun0' },
        { via: '10.0.1.2', dev: 'tun1', weight: 2 },
        { via: '10.0.2.2', dev: 'tun2', weight: 1 },
      ],
    });
    return { r, id };
  };

  it('one flow keeps one path; fragments hash on addresses only', () => {
    const { r, id } = mk();
    const rand = rng(5);
    for (let f = 0; f < 200; f++) {
      const src = `172.16.${Math.floor(rand() * 256)}.${Math.floor(rand() * 256)}`;
      const dst = `192.168.20.${Math.floor(rand() * 256)}`;
      const sport = 1024 + Math.floor(rand() * 60000);
      const pkt = ipv4Packet(src, dst, 6, sport, 443);
      r.lookup(pkt, 0);
      const first = r.lastNexthop;
      for (let k = 0; k < 5; k++) {
        r.lookup(pkt, 0);
        expect(r.lastNexthop).toBe(first);
        expect(r.selectNexthop(id, pkt, 0)).toBe(first);
      }
      // all fragments of one datagram (first: MF; later: offset) take one path, whatever the ports say
      const frag1 = ipv4Packet(src, dst, 6, sport, 443, 0x2000);
      const frag2 = ipv4Packet(src, dst, 6, 0, 0, 0x00b9);
      expect(r.selectNexthop(id, frag1, 0)).toBe(r.selectNexthop(id, frag2, 0));
    }
  });

  it('weights shape the distribution across flows', () => {
    const { r } = mk();
    const counts = new Map<string, number>();
    const n = 40000;
    for (let i = 0; i < n; i++) {
      const pkt = ipv4Packet(`10.${(i >> 8) & 255}.${i & 255}.1`, '192.168.20.7', 17, 1024 + (i % 50000), 53);
      r.lookup(pkt, 0);
      counts.set(r.lastNexthop!.dev!, (counts.get(r.lastNexthop!.dev!) ?? 0) + 1);
    }
    expect(counts.get('tun0')! / n).toBeCloseTo(0.25, 1);
    expect(counts.get('tun1')! / n).toBeCloseTo(0.5, 1);
    expect(counts.get('tun2')! / n).toBeCloseTo(0.25, 1);
  });

  it('IPv6: flow label used when set; ports otherwise', () => {
    const r = new Router();
    const id = r.add({ prefix: 'fd00::/16', nexthops: [{ dev: 'a' }, { dev: 'b' }, { dev: 'c' }, { dev: 'd' }] });
    const src = parseAddress('fd01::1').bytes;
    const dst = parseAddress('fd00::9').bytes;
    // same label, different ports: same path (the label names the flow)
    const seen = new Set<string>();
    for (let p = 0; p < 64; p++) seen.add(r.selectNexthop(id, ipv6Packet(src, dst, 17, 1000 + p, 53, 0xabcde), 0)!.dev!);
    expect(seen.size).toBe(1);
    // no label: ports spread flows over the paths
    seen.clear();
    for (let p = 0; p < 64; p++) seen.add(r.selectNexthop(id, ipv6Packet(src, dst, 17, 1000 + p, 53), 0)!.dev!);
    expect(seen.size).toBe(4);
    // the nexthop the lookup picks equals selectNexthop's
    const pkt = ipv6Packet(src, dst, 6, 5555, 80);
    r.lookup(pkt, 0);
    expect(r.lastNexthop).toBe(r.selectNexthop(id, pkt, 0));
  });
});

describe('policy rules', () => {
  it('default rules: local, main, default', () => {
    const r = new Router();
    expect(r.showRules()).toBe('0:\tfrom all lookup local\n32766:\tfrom all lookup main\n32767:\tfrom all lookup default\n');
    r.add({ prefix: '10.0.0.0/8', dev: 'main' });
    r.add({ prefix: '10.0.0.0/24', dev: 'loc', type: 'local', table: 'local' });
    r.add({ prefix: '0.0.0.0/0', dev: 'dflt', table: 'default' });
    expect(r.nexthopsOf(lookupText(r, '10.0.0.5'))[0]!.dev).toBe('loc');
    expect(r.nexthopsOf(lookupText(r, '10.9.0.5'))[0]!.dev).toBe('main');
    expect(r.nexthopsOf(lookupText(r, '9.9.9.9'))[0]!.dev).toBe('dflt');
  });

  it('seed 002: IPv6 TCP one way, other IPv6 through the 6in4 tunnel; priority order decides', () => {
    const r = new Router();
    r.defineTable('tcp', 100);
    r.add({ prefix: '::/0', dev: 'mptcp', table: 'tcp' });
    r.add({ prefix: '::/0', dev: '6in4' });
    r.addRule('priority 100 from fd00::/8 ipproto tcp lookup tcp');
    const src = { src: parseAddress('fd00:1::5') };
    expect(r.nexthopsOf(lookupText(r, '2001:db8::1', { ...src, proto: 6, sport: 4000, dport: 443 }))[0]!.dev).toBe('mptcp');
    expect(r.lastTable).toBe(100);
    expect(r.nexthopsOf(lookupText(r, '2001:db8::1', { ...src, proto: 17 }))[0]!.dev).toBe('6in4');
    expect(r.nexthopsOf(lookupText(r, '2001:db8::1', { src: parseAddress('2001:db8::9'), proto: 6 }))[0]!.dev).toBe('6in4');
    // the same selector from a v4 packet: family-specific rule does not apply
    r.add({ prefix: '0.0.0.0/0', dev: 'v4main' });
    expect(r.nexthopsOf(lookupText(r, '1.1.1.1', { proto: 6 }))[0]!.dev).toBe('v4main');
    // an earlier rule wins
    r.addRule({ priority: 50, ipproto: 'tcp', action: 'prohibit' });
    expect(lookupText(r, '2001:db8::1', { ...src, proto: 6 })).toBe(-1);
    expect(r.lastType).toBe(RouteType.PROHIBIT);
    expect(r.removeRule(50)).toBe(true);
    expect(r.nexthopsOf(lookupText(r, '2001:db8::1', { ...src, proto: 6 }))[0]!.dev).toBe('mptcp');
    expect(r.showRules()).toContain('100:\tfrom fd00::/8 ipproto tcp lookup tcp');
  });

  it('ports, protocol numbers, to, not, ranges; rules without family apply to both', () => {
    const r = new Router();
    r.add({ prefix: '0.0.0.0/0', dev: 'main4' });
    r.add({ prefix: '::/0', dev: 'main6' });
    r.add({ prefix: '0.0.0.0/0', dev: 'dns4', table: 200 });
    r.add({ prefix: '::/0', dev: 'dns6', table: 200 });
    r.addRule('from all ipproto udp dport 53 lookup 200');
    r.addRule('priority 10 to 10.0.0.0/8 ipproto 47 unreachable');
    r.addRule('priority 20 ipproto icmp sport 1000-2000 blackhole'); // icmp has no ports: never matches
    const dev = (a: string, o: object) => {
      const id = lookupText(r, a, o);
      return id < 0 ? `-${r.lastType}` : r.nexthopsOf(id)[0]!.dev;
    };
    expect(dev('8.8.8.8', { proto: 17, dport: 53 })).toBe('dns4');
    expect(dev('2001:db8::53', { proto: 17, dport: 53 })).toBe('dns6');
    expect(dev('8.8.8.8', { proto: 17, dport: 54 })).toBe('main4');
    expect(dev('8.8.8.8', { proto: 6, dport: 53 })).toBe('main4');
    expect(dev('10.1.1.1', { proto: 47 })).toBe(`-${RouteType.UNREACHABLE}`);
    expect(dev('8.8.8.8', { proto: 47 })).toBe('main4');
    expect(dev('8.8.8.8', { proto: 1 })).toBe('main4');
    expect(r.rules().map((x) => x.priority)).toEqual([0, 10, 20, 32765, 32766, 32767]);
    // fragments carry no ports: a port rule does not match them
    const frag = ipv4Packet('1.1.1.1', '8.8.8.8', 17, 0, 53, 0x0010);
    r.lookup(frag, 0);
    expect(r.lastNexthop?.dev).toBe('main4');
  });

  it('not inverts the whole selector (as ip rule does)', () => {
    const r = new Router();
    r.add({ prefix: '0.0.0.0/0', dev: 'main' });
    r.add({ prefix: '0.0.0.0/0', dev: 'other', table: 7 });
    r.addRule('priority 5 not from 10.0.0.0/8 ipproto tcp lookup 7');
    const dev = (src: string, proto: number) => r.nexthopsOf(lookupText(r, '1.1.1.1', { src: parseAddress(src), proto }))[0]!.dev;
    expect(dev('10.1.1.1', 6)).toBe('main');
    expect(dev('10.1.1.1', 17)).toBe('other');
    expect(dev('11.1.1.1', 6)).toBe('other');
  });

  it('rule text errors are one line naming the problem', () => {
    const r = new Router();
    expect(() => r.addRule('from all ipproto bogus lookup 1')).toThrow(/unknown ipproto bogus/);
    expect(() => r.addRule('from all fwmark 1 lookup 1')).toThrow(/unsupported rule selector fwmark/);
    expect(() => r.addRule('from 10.0.0.1/8 lookup 1')).toThrow(/host bits set/);
    expect(() => r.addRule('from all dport 70000 lookup 1')).toThrow(/invalid dport/);
    expect(() => r.addRule('from all')).toThrow(/needs lookup TABLE/);
    expect(() => r.addRule('from 10.0.0.0/8 to fd00::/8 lookup 1')).toThrow(/different families/);
  });
});
