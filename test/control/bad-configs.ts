/**
 * The table of bad configs: each with the one line `ipferry up FILE` must print (FILE is the
 * case's name + .json, run from the file's directory) and exit code 2.
 */
export const IF = 'cfgtest0';

/** A minimal good config to mutate. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function base(): Record<string, any> {
  return {
    interface: { name: IF, address: ['10.0.0.1/30', 'fd00::1/64'], mtu: 1400 },
    listen: '127.0.0.1:6080',
    peers: [
      { name: 'shanghai', endpoint: '203.0.113.20:6080', routes: ['192.168.20.0/24', 'fd00:20::/64'], keepalive: 25 },
      { name: 'guangzhou', endpoint: '203.0.113.30:6080', routes: ['192.168.30.0/24'] },
    ],
  };
}

export interface BadCase {
  name: string;
  /** The file's text (JSON or deliberately broken JSON). */
  text: string;
  /** Expected stderr line after "ipferry: <name>.json: ". */
  message: string;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const mut = (f: (c: Record<string, any>) => void): string => {
  const c = base();
  f(c);
  return JSON.stringify(c, null, 2);
};

export const BAD_CONFIGS: BadCase[] = [
  { name: 'unknown-top-key', text: mut((c) => (c.peer = [])), message: 'peer: unknown key (did you mean "peers"?)' },
  {
    name: 'unknown-peer-key',
    text: mut((c) => (c.peers[1].allowedIps = ['10.0.0.0/8'])),
    message: 'peers[1].allowedIps: unknown key (allowed: name, endpoint, routes, mtu, keepalive, key)',
  },
  {
    name: 'unknown-interface-key',
    text: mut((c) => (c.interface.adress = [])),
    message: 'interface.adress: unknown key (did you mean "address"?)',
  },
  { name: 'bad-prefix', text: mut((c) => (c.peers[0].routes[0] = '192.168.300.0/24')), message: 'peers[0].routes[0]: invalid IPv4 address 192.168.300.0' },
  { name: 'bad-prefix-length', text: mut((c) => (c.peers[0].routes[1] = 'fd00:20::/129')), message: 'peers[0].routes[1]: invalid prefix length in fd00:20::/129' },
  { name: 'host-bits', text: mut((c) => (c.peers[1].routes[0] = '192.168.20.1/24')), message: 'peers[1].routes[0]: host bits set in 192.168.20.1/24' },
  { name: 'bad-interface-address', text: mut((c) => (c.interface.address[0] = '10.0.0/30')), message: 'interface.address[0]: invalid address 10.0.0' },
  { name: 'port-zero', text: mut((c) => (c.peers[0].endpoint = '203.0.113.20:0')), message: 'peers[0].endpoint: port out of range in 203.0.113.20:0 (1-65535)' },
  { name: 'port-70000', text: mut((c) => (c.listen = '127.0.0.1:70000')), message: 'listen: port out of range in 127.0.0.1:70000 (1-65535)' },
  { name: 'endpoint-no-port', text: mut((c) => (c.peers[0].endpoint = '203.0.113.20')), message: 'peers[0].endpoint: missing port in 203.0.113.20' },
  { name: 'endpoint-multicast', text: mut((c) => (c.peers[0].endpoint = '[ff02::1]:6080')), message: 'peers[0].endpoint: ff02::1 is not a unicast address' },
  { name: 'duplicate-peer-name', text: mut((c) => (c.peers[1].name = 'shanghai')), message: 'peers[1].name: duplicate peer name shanghai (also peers[0])' },
  {
    name: 'duplicate-endpoint',
    text: mut((c) => (c.peers[1].endpoint = '203.0.113.20:6080')),
    message: 'peers[1].endpoint: duplicate endpoint 203.0.113.20:6080 (also peers[0], shanghai)',
  },
  {
    name: 'overlapping-routes',
    text: mut((c) => (c.peers[1].routes = ['192.168.30.0/24', '192.168.20.0/24'])),
    message: 'peers[1].routes[1]: 192.168.20.0/24 overlaps peer shanghai (peers[0].routes[0]): two peers cannot claim the same prefix',
  },
  {
    name: 'mtu-too-small-for-ipv6',
    text: mut((c) => (c.interface.mtu = 1000)),
    message: 'interface.mtu: 1000 is too small for IPv6 (peers[0].routes[1] is IPv6; minimum 1280)',
  },
  {
    name: 'peer-mtu-too-small-for-ipv6',
    text: mut((c) => (c.peers[0].mtu = 1200)),
    message: 'peers[0].mtu: 1200 is too small for IPv6 (peers[0].routes[1] is IPv6; minimum 1280)',
  },
  { name: 'mtu-below-576', text: mut((c) => (c.peers[1].mtu = 500)), message: 'peers[1].mtu: 500 is out of range (576-65535)' },
  { name: 'mtu-not-a-number', text: mut((c) => (c.interface.mtu = '1400')), message: 'interface.mtu: expected an integer 576-65535, got string "1400"' },
  { name: 'keepalive-zero', text: mut((c) => (c.peers[0].keepalive = 0)), message: 'peers[0].keepalive: 0 is out of range (1-3600)' },
  { name: 'keepalive-big', text: mut((c) => (c.peers[0].keepalive = 86400)), message: 'peers[0].keepalive: 86400 is out of range (1-3600)' },
  { name: 'short-key', text: mut((c) => (c.peers[0].key = '0011223344556677')), message: 'peers[0].key: key too short (8 bytes, need at least 16)' },
  { name: 'bad-key', text: mut((c) => (c.peers[0].key = 'not a key!')), message: 'peers[0].key: key is neither hex nor base64' },
  { name: 'missing-interface-name', text: mut((c) => delete c.interface.name), message: 'interface.name: missing (required)' },
  { name: 'missing-interface', text: mut((c) => delete c.interface), message: 'interface: missing (required)' },
  { name: 'bad-interface-name', text: mut((c) => (c.interface.name = 'much-too-long-name0')), message: 'interface.name: invalid interface name "much-too-long-name0" (1-15 characters: letters, digits, _ . -)' },
  { name: 'bad-listen', text: mut((c) => (c.listen = 'anywhere')), message: 'listen: invalid address anywhere' },
  { name: 'listen-not-string', text: mut((c) => (c.listen = true)), message: 'listen: expected "host:port", "host", ":port" or a port number, got boolean true' },
  { name: 'json-syntax', text: '{\n  "interface": { "name": "x" },\n  "peers": [\n    { "name": "a" "endpoint": "1.2.3.4:5" }\n  ]\n}\n', message: 'line 4, column 19: JSON syntax error: expected \',\' or \'}\' after property value, found \'"\'' },
  { name: 'json-trailing-comma', text: '{\n  "interface": { "name": "x", },\n}\n', message: "line 2, column 31: JSON syntax error: trailing comma before '}'" },
  { name: 'json-duplicate-key', text: '{\n  "interface": { "name": "x" },\n  "interface": { "name": "y" }\n}\n', message: 'line 3, column 3: JSON syntax error: duplicate key "interface"' },
  { name: 'top-level-array', text: '[]', message: 'expected a JSON object at the top level, got an array' },
  { name: 'route-dev-unknown', text: mut((c) => (c.routes = ['10.9.0.0/16 dev hangzhou'])), message: 'routes[0]: dev hangzhou is not a peer, the interface cfgtest0 or stack' },
  { name: 'route-via-nowhere', text: mut((c) => (c.routes = ['10.9.0.0/16 via 172.16.0.1'])), message: "routes[0]: via address is not inside any peer's routes (give dev PEER)" },
  { name: 'bad-route-line', text: mut((c) => (c.routes = ['unreachable 10.99.0.0/16', '10.0.0.0/8 via 10.0.0.2 frobnicate 1'])), message: 'routes[1]: unknown keyword frobnicate' },
  { name: 'bad-rule-line', text: mut((c) => (c.rules = ['from 192.168.10.0/24 lookup 100', 'from 192.168.10.0/24 jump 5'])), message: 'rules[1]: unsupported rule selector jump' },
  { name: 'stack-duplicates-interface', text: mut((c) => (c.stack = { address: ['10.0.0.1/32'] })), message: 'stack.address[0]: 10.0.0.1 is also interface.address[0]' },
  { name: 'endpoint-is-listen', text: mut((c) => (c.peers[0].endpoint = '127.0.0.1:6080')), message: "peers[0].endpoint: 127.0.0.1:6080 is this endpoint's own listen address" },
  { name: 'bad-log-level', text: mut((c) => (c.log = 'verbose')), message: 'log: expected one of error, warn, info, debug, got string "verbose"' },
  { name: 'bad-log-format', text: mut((c) => (c.log = { level: 'debug', format: 'xml' })), message: 'log.format: expected text or json, got string "xml"' },
  { name: 'log-unknown-key', text: mut((c) => (c.log = { levle: 'debug' })), message: 'log.levle: unknown key (did you mean "level"?)' },
  { name: 'bad-mss', text: mut((c) => (c.mssClamp = 100)), message: 'mssClamp: 100 is out of range (536-65495)' },
  // Configs that passed validation but could not run (hardening issue):
  { name: 'peer-named-interface', text: mut((c) => (c.peers[1].name = 'cfgtest0')), message: "peers[1].name: cfgtest0 is the interface's name (routes use dev cfgtest0 for the TUN)" },
  { name: 'peer-named-stack', text: mut((c) => (c.peers[1].name = 'stack')), message: "peers[1].name: stack is reserved for the endpoint's own stack" },
  { name: 'interface-mtu-over-slot', text: mut((c) => (c.interface.mtu = 9000)), message: 'interface.mtu: 9000 does not fit a packet buffer (at most 1920)' },
  {
    name: 'route-line-v6-small-mtu',
    text: mut((c) => {
      c.peers[1].mtu = 1200;
      c.routes = ['fd00:30::/64 dev guangzhou'];
    }),
    message: 'routes[0]: IPv6 route through guangzhou, whose MTU 1200 is below the IPv6 minimum 1280',
  },
  {
    name: 'endpoint-family-not-listen',
    text: mut((c) => (c.peers[0].endpoint = '[2001:db8::20]:6080')),
    message: 'peers[0].endpoint: [2001:db8::20]:6080 is IPv6 but listen 127.0.0.1:6080 is IPv4 (listen on all addresses, or an IPv6 address)',
  },
  {
    name: 'endpoint-is-self-via-loopback',
    text: mut((c) => {
      c.listen = ':6080';
      c.peers[0].endpoint = '127.0.0.1:6080';
    }),
    message: 'peers[0].endpoint: 127.0.0.1:6080 is this endpoint itself (listen is all addresses, port 6080)',
  },
  {
    name: 'duplicate-route-line',
    text: mut((c) => (c.routes = ['10.9.0.0/16 dev shanghai', '10.9.0.0/16 dev guangzhou'])),
    message: 'routes[1]: duplicate route 10.9.0.0/16 dev guangzhou (also routes[0]: same table, prefix and metric)',
  },
  { name: 'icmp-rate-zero', text: mut((c) => (c.icmpRateLimit = { rate: 0 })), message: 'icmpRateLimit.rate: 0 is out of range (1-1000000)' },
  { name: 'zero-key', text: mut((c) => (c.peers[0].key = `hex:${'00'.repeat(32)}`)), message: 'peers[0].key: key is all zeros (generate one: head -c 32 /dev/urandom | base64)' },
];
