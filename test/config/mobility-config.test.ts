/**
 * The `mobility` section inside a whole config (parseConfig): checked against the peers and the
 * endpoint's own addresses, every error one line naming the file and the field.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/config.ts';

const K1 = '000102030405060708090a0b0c0d0e0f';
const K2 = '101112131415161718191a1b1c1d1e1f';

const mobileNode = (over: Record<string, unknown> = {}, peerOver: Record<string, unknown> = {}) => ({
  interface: { name: 'ferry0', address: ['10.77.0.5/32'] },
  peers: [{ name: 'ha', endpoint: '192.0.2.2:6080', routes: ['192.0.2.6/32'], keepalive: 1, ...peerOver }],
  mobility: { mobileNode: { name: 'laptop', homeAddress: '10.77.0.5', homeAgent: 'ha', key: K1, homeNetworks: ['10.77.0.0/24'], ...over } },
});

const homeAgent = (nodes: unknown[] = [{ name: 'laptop', homeAddress: '10.77.0.5', key: K1 }], peers: unknown[] = []) => ({
  interface: { name: 'ferry0', address: ['10.77.255.1/32'] },
  peers,
  mobility: { homeAgent: { homePrefixes: ['10.77.0.0/24'], nodes } },
});

function err(json: unknown): string {
  try {
    parseConfig(json, 'mn.json');
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as Error).message).not.toContain('\n');
    return (e as Error).message;
  }
  throw new Error('accepted');
}

describe('mobility in the config', () => {
  it('a mobile node: the home agent is a peer (by name or endpoint) and gets the node key', () => {
    const c = parseConfig(mobileNode());
    const m = c.mobility!.mobileNode!;
    expect(m.homeAgentPeer).toBe(0);
    expect(m.homeAgent).toMatchObject({ host: '192.0.2.2', port: 6080 });
    expect([m.monitor, m.pollMs]).toEqual([true, 1000]);
    expect(Buffer.from(c.peers[0]!.key!).toString('hex')).toBe(K1);
    expect(parseConfig(mobileNode({ homeAgent: '192.0.2.2:6080' })).mobility!.mobileNode!.homeAgentPeer).toBe(0);
    // the same key given on the peer is fine
    expect(() => parseConfig(mobileNode({}, { key: K1 }))).not.toThrow();
    // no mobility section: nothing
    expect(parseConfig({ interface: { name: 'x' } }).mobility).toBeUndefined();
  });

  it('a home agent: its nodes named, home prefixes checked', () => {
    const c = parseConfig(homeAgent());
    expect(c.mobility!.homeAgent!.nodes.map((n) => n.name)).toEqual(['laptop']);
    expect(c.mobility!.mobileNode).toBeNull();
  });

  const bad: [string, unknown, string][] = [
    ['a home agent that is no peer', mobileNode({ homeAgent: '192.0.2.9:6080' }),
      'mn.json: mobility.mobileNode.homeAgent: 192.0.2.9:6080 is no peer\'s name or endpoint (list the home agent in peers, with the routes to send through it; peers: ha)'],
    ['a home agent peer with another key', mobileNode({}, { key: K2 }),
      'mn.json: peers[0].key: differs from mobility.mobileNode.key (the home agent checks this node\'s messages with the node\'s key; leave it out)'],
    ['a home address the node does not own', mobileNode({ homeAddress: '10.77.0.6' }),
      'mn.json: mobility.mobileNode.homeAddress: 10.77.0.6 is neither an interface.address nor a stack.address (the node must own its home address)'],
    ['a node named like a peer', homeAgent(undefined, [{ name: 'laptop', endpoint: '192.0.2.7:6080' }]),
      'mn.json: mobility.homeAgent.nodes[0].name: node name laptop is also peers[0].name (the endpoint gives each node a peer of that name)'],
    ['a node named like the interface', homeAgent([{ name: 'ferry0', homeAddress: '10.77.0.5', key: K1 }]),
      'mn.json: mobility.homeAgent.nodes[0].name: node name ferry0 is reserved (the interface or the endpoint\'s stack)'],
    ['a correspondent named like a peer', mobileNode({ routeOptimisation: true, correspondents: [{ name: 'ha', endpoint: '192.0.2.6:6080', key: K2 }] }),
      'mn.json: mobility.mobileNode.correspondents[0].name: correspondent name ha is also peers[0].name (the endpoint gives each correspondent a peer of that name)'],
    ['a misspelled key', mobileNode({ polMs: 100 }), 'mn.json: mobility.mobileNode.polMs: unknown key (did you mean "pollMs"?)'],
    ['a poll interval too short', mobileNode({ pollMs: 10 }), 'mn.json: mobility.mobileNode.pollMs: 10 is out of range (50-60000)'],
    ['home agent and correspondent sharing a node name', {
      ...homeAgent(),
      mobility: { homeAgent: homeAgent().mobility.homeAgent, correspondent: { nodes: [{ name: 'laptop', homeAddress: '10.77.0.5', key: K2 }] } },
    }, 'mn.json: mobility.correspondent.nodes[0].name: laptop is also a homeAgent node (one peer per name)'],
  ];
  it.each(bad)('one line naming the field: %s', (_what, json, want) => {
    expect(err(json)).toBe(want);
  });
});
