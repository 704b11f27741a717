/**
 * The lookup engine (route/lookup.ts) keeps direct references to the route store's arrays and
 * the rule list; the parts replace those when they grow or change. Lookups after the store grew
 * (routes with ids past its first 1024) and after rule changes must see the new ones.
 */
import { describe, expect, it } from 'vitest';
import { Router } from '../../src/route/router.ts';
import type { Nexthop } from '../../src/route/types.ts';
import { RouteType } from '../../src/route/types.ts';
import { ipv4Packet } from './helpers.ts';

describe('lookups after the route store grows', () => {
  it('types, nexthops and counters of routes added past the first allocation, single and batch', () => {
    const r = new Router();
    const ids: number[] = [];
    const kinds = ['blackhole', 'unreachable', 'unicast', 'ecmp'] as const;
    for (let i = 0; i < 5000; i++) {
      const prefix = `10.${i >> 8}.${i & 255}.0/24`;
      const kind = kinds[i & 3]!;
      if (kind === 'unicast') ids.push(r.add({ prefix, dev: `d${i}` }));
      else if (kind === 'ecmp') ids.push(r.add({ prefix, nexthops: [{ dev: `a${i}` }, { dev: `b${i}` }] }));
      else ids.push(r.add({ prefix, type: kind }));
    }
    expect(Math.max(...ids)).toBeGreaterThan(4000);
    const n = 64;
    const slab = new Uint8Array(n * 32);
    const offs = new Int32Array(n);
    const ends = new Int32Array(n);
    const picks: number[] = [];
    for (let k = 0; k < n; k++) {
      const i = 4936 + k; // the last 64 routes added
      picks.push(i);
      slab.set(ipv4Packet('172.16.0.1', `10.${i >> 8}.${i & 255}.9`, 17, 1000 + k, 53), k * 32);
      offs[k] = k * 32;
      ends[k] = k * 32 + 28;
    }
    const want = [RouteType.BLACKHOLE, RouteType.UNREACHABLE, RouteType.UNICAST, RouteType.UNICAST];
    for (let k = 0; k < n; k++) {
      const i = picks[k]!;
      expect([i, r.lookup(slab, offs[k]!, 0, ends[k]!), r.lastType]).toEqual([i, ids[i], want[i & 3]]);
      const nh = r.lastNexthop?.dev ?? null;
      expect([i, nh === null ? null : nh.slice(1)]).toEqual([i, (i & 3) >= 2 ? String(i) : null]);
    }
    const route = new Int32Array(n);
    const type = new Uint8Array(n);
    const nexthop: (Nexthop | null)[] = new Array(n).fill(null);
    r.lookupBatch(slab, offs, ends, n, route, type, nexthop);
    for (let k = 0; k < n; k++) {
      const i = picks[k]!;
      expect([i, route[k], type[k], nexthop[k]?.dev?.slice(1) ?? null]).toEqual([i, ids[i], want[i & 3], (i & 3) >= 2 ? String(i) : null]);
      expect([i, r.packetsOf(ids[i]!), r.bytesOf(ids[i]!)]).toEqual([i, 2, 56]);
    }
  });

  it('a rule added or removed after lookups applies to the next lookup', () => {
    const r = new Router();
    const main = r.add({ prefix: '0.0.0.0/0', dev: 'main' });
    const pkt = ipv4Packet('10.1.1.1', '8.8.8.8', 6, 1000, 443);
    expect(r.lookup(pkt, 0)).toBe(main);
    r.addRule('priority 10 ipproto tcp prohibit');
    expect(r.lookup(pkt, 0)).toBe(-1);
    expect(r.lastType).toBe(RouteType.PROHIBIT);
    r.removeRule(10);
    expect(r.lookup(pkt, 0)).toBe(main);
  });
});
