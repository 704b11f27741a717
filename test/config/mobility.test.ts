import { describe, expect, it } from 'vitest';
import { PathError } from '../../src/config/errors.ts';
import { MOBILITY_ALLOWED_KEYS, parseMobility } from '../../src/config/mobility.ts';

const K1 = '000102030405060708090a0b0c0d0e0f';
const K2 = '101112131415161718191a1b1c1d1e1f';
const K3 = 'base64:ICEiIyQlJicoKSorLC0uLw==';

const ha = (over: Record<string, unknown> = {}) => ({
  homeAgent: {
    homePrefixes: ['10.77.0.0/16', 'fd77::/64'],
    nodes: [
      { name: 'laptop', homeAddress: '10.77.0.5', key: K1 },
      { name: 'phone', homeAddress: 'fd77::6', key: K2 },
    ],
    ...over,
  },
});

function err(json: unknown): string {
  try {
    parseMobility(json);
  } catch (e) {
    expect(e).toBeInstanceOf(PathError);
    const p = e as PathError;
    const line = `${p.path}: ${p.detail}`;
    expect(line).not.toContain('\n');
    return line;
  }
  throw new Error('accepted');
}

describe('mobility config (proposal)', () => {
  it('normalises a home agent with defaults', () => {
    const c = parseMobility(ha());
    expect(c.mobileNode).toBeNull();
    expect(c.correspondent).toBeNull();
    expect(c.homeAgent).toMatchObject({
      maxBindings: 2, maxLifetime: 600, bicastMs: 250, freshnessMs: 300_000, ratePerSecond: 5, rateBurst: 10, retryAfterMax: 60,
    });
    expect(c.homeAgent!.homePrefixes.map((p) => [p.family, p.length])).toEqual([[4, 16], [6, 64]]);
    expect(c.homeAgent!.nodes[0]).toEqual({ name: 'laptop', home: { family: 4, bytes: Uint8Array.from([10, 77, 0, 5]) }, key: Uint8Array.from(Buffer.from(K1, 'hex')), routeOptimisation: false });
    expect(c.homeAgent!.nodes[1]!.home.family).toBe(6);
  });

  it('normalises a mobile node (name from the interface, default port, backoff)', () => {
    const c = parseMobility(
      { mobileNode: { homeAddress: '10.77.0.5', homeAgent: '203.0.113.1', key: K1, homeNetworks: ['192.168.1.0/24'], routeOptimisation: true, correspondents: [{ name: 'cn', endpoint: '[2001:db8::9]:7000', key: K3, padTo: 400 }] } },
      { name: 'ferry0' },
    );
    const m = c.mobileNode!;
    expect(m.name).toBe('ferry0');
    expect(m.homeAgent).toMatchObject({ family: 4, port: 6080, host: '203.0.113.1' });
    expect(m.lifetime).toBe(600);
    expect(m.backoff).toEqual({ initialMs: 1000, firstRegistrationMs: 1500, maxMs: 32_000 });
    expect(m.correspondents[0]).toMatchObject({ name: 'cn', padTo: 400, endpoint: { family: 6, port: 7000, host: '2001:db8::9' } });
    expect(m.homeNetworks[0]!.length).toBe(24);
  });

  it('normalises a correspondent: route optimisation off unless a node says so', () => {
    const c = parseMobility({ correspondent: { nodes: [{ name: 'laptop', homeAddress: '10.77.0.5', key: K1 }, { name: 'b', homeAddress: '10.77.0.6', key: K2, routeOptimisation: true }] } });
    expect(c.correspondent!.nodes.map((n) => n.routeOptimisation)).toEqual([false, true]);
    expect(c.correspondent!.probeSize).toBe(1200);
  });

  const bad: [string, unknown, string][] = [
    ['a home address outside the home prefixes', ha({ nodes: [{ name: 'x', homeAddress: '10.99.0.5', key: K1 }] }),
      'mobility.homeAgent.nodes[0].homeAddress: 10.99.0.5 is outside the home prefixes (10.77.0.0/16, fd77::/64)'],
    ['two nodes with one key', ha({ nodes: [{ name: 'a', homeAddress: '10.77.0.5', key: K1 }, { name: 'b', homeAddress: '10.77.0.6', key: K1 }] }),
      'mobility.homeAgent.nodes[1].key: same key as mobility.homeAgent.nodes[0] (every node needs its own key)'],
    ['two nodes with one home address', ha({ nodes: [{ name: 'a', homeAddress: '10.77.0.5', key: K1 }, { name: 'b', homeAddress: '10.77.0.5', key: K2 }] }),
      'mobility.homeAgent.nodes[1].homeAddress: 10.77.0.5 is also the home address of mobility.homeAgent.nodes[0]'],
    ['duplicate names', ha({ nodes: [{ name: 'a', homeAddress: '10.77.0.5', key: K1 }, { name: 'a', homeAddress: '10.77.0.6', key: K2 }] }),
      'mobility.homeAgent.nodes[1].name: duplicate node name a (also mobility.homeAgent.nodes[0])'],
    ['host bits in a home prefix', ha({ homePrefixes: ['10.77.0.1/16'] }), 'mobility.homeAgent.homePrefixes[0]: host bits set in 10.77.0.1/16'],
    ['no nodes', ha({ nodes: [] }), 'mobility.homeAgent.nodes: expected at least one node'],
    ['maxBindings 0', ha({ maxBindings: 0 }), 'mobility.homeAgent.maxBindings: 0 is out of range (1-10000000)'],
    ['a short key', ha({ nodes: [{ name: 'a', homeAddress: '10.77.0.5', key: '0011' }] }), 'mobility.homeAgent.nodes[0].key: key too short (2 bytes, need at least 16)'],
    ['a misspelled key', ha({ bicast: 5 }), 'mobility.homeAgent.bicast: unknown key (allowed: homePrefixes, nodes, maxBindings, maxLifetime, bicastMs, freshness, rate, retryAfterMax, keepalive)'],
    ['a missing key', { homeAgent: { nodes: [] } }, 'mobility.homeAgent.homePrefixes: missing (required)'],
    ['both roles', { ...ha(), mobileNode: { homeAddress: '10.77.0.5', homeAgent: '203.0.113.1:6080', key: K1 } },
      'mobility: homeAgent and mobileNode cannot both be set (an endpoint is a home agent or a mobile node)'],
    ['a lifetime not in 4 s units', { mobileNode: { homeAddress: '10.77.0.5', homeAgent: '203.0.113.1:6080', key: K1, lifetime: 30 } },
      'mobility.mobileNode.lifetime: 30 is not a multiple of 4 (lifetimes go in 4-second units)'],
    ['a bad home agent endpoint', { mobileNode: { homeAddress: '10.77.0.5', homeAgent: '203.0.113.1:99999', key: K1 } },
      'mobility.mobileNode.homeAgent: port out of range in 203.0.113.1:99999 (1-65535)'],
    ['a multicast home address', { mobileNode: { homeAddress: '224.0.0.1', homeAgent: '203.0.113.1', key: K1 } },
      'mobility.mobileNode.homeAddress: 224.0.0.1 is not a unicast address'],
    ['the home agent key reused for a correspondent', { mobileNode: { homeAddress: '10.77.0.5', homeAgent: '203.0.113.1', key: K1, correspondents: [{ name: 'cn', endpoint: '198.51.100.9:6080', key: K1 }] } },
      "mobility.mobileNode.correspondents[0].key: same key as mobileNode.key (a correspondent needs its own key, never the home agent's)"],
    ['route optimisation without correspondents', { mobileNode: { homeAddress: '10.77.0.5', homeAgent: '203.0.113.1', key: K1, routeOptimisation: true } },
      'mobility.mobileNode.routeOptimisation: true but no correspondents are listed'],
    ['backoff cap below the first wait', { mobileNode: { homeAddress: '10.77.0.5', homeAgent: '203.0.113.1', key: K1, backoff: { maxMs: 1200 } } },
      'mobility.mobileNode.backoff.maxMs: 1200 is below the initial wait (1500 ms)'],
  ];
  it.each(bad)('one line naming the field: %s', (_what, json, want) => {
    expect(err(json)).toBe(want);
  });

  it('lists the allowed keys of every object for "did you mean"', () => {
    expect(MOBILITY_ALLOWED_KEYS['mobility.homeAgent.nodes[]']).toEqual(['name', 'homeAddress', 'key', 'routeOptimisation']);
    expect(Object.keys(MOBILITY_ALLOWED_KEYS)).toContain('mobility.mobileNode.correspondents[]');
  });
});
