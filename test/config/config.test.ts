import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, configJsonSchema, CONTROL_DEFAULT, DEFAULT_PORT, decodeKey, loadConfig, parseConfig } from '../../src/config/config.ts';
import { controlSocketPath, defaultSocketPath } from '../../src/control/socket-path.ts';
import { parseJson, JsonSyntaxError } from '../../src/config/json-parse.ts';
import { BAD_CONFIGS, base } from '../control/bad-configs.ts';

const dir = mkdtempSync(join(tmpdir(), 'ipferry-cfg-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const bytes = (...b: number[]) => Uint8Array.from(b);

describe('parseConfig: good configs', () => {
  it('normalizes the minimal config with every default', () => {
    const c = parseConfig({ interface: { name: 'ferry0' } });
    expect(c).toEqual({
      source: '<config>',
      interface: { name: 'ferry0', address: [], mtu: 1400 },
      listen: { text: null, family: null, bytes: null, host: null, port: DEFAULT_PORT },
      stack: { address: [] },
      peers: [],
      routes: [],
      rules: [],
      mssClamp: 'auto',
      icmpRateLimit: { rate: 1000, burst: 50, perDestinationMs: 1000 },
      hub: false,
      kernelRoutes: true,
      control: CONTROL_DEFAULT,
      controlGroup: null,
      controlMode: 0o600,
      metrics: null,
      log: 'info',
      logFormat: 'text',
    });
    // The default location is resolved by the control layer (it probes /run and the namespace).
    expect(controlSocketPath(c)).toBe(defaultSocketPath('ferry0'));
    expect(DEFAULT_PORT).toBe(6080);
  });

  it('keeps interface host bits, parses peers, endpoints, keys, MSS', () => {
    const c = parseConfig(
      {
        interface: { name: 'ferry0', address: ['10.0.0.1/30', 'fd00::1/64'], mtu: 1420 },
        listen: '[2001:db8::10]:7000',
        stack: { address: ['10.0.0.254/32', 'fd00::fe'] },
        peers: [
          {
            name: 'shanghai',
            endpoint: '[2001:db8::20]:7000',
            routes: ['192.168.20.0/24', 'fd00:20::/64'],
            mtu: 1400,
            keepalive: 25,
            key: '000102030405060708090a0b0c0d0e0f',
          },
        ],
        routes: ['unreachable 10.99.0.0/16'],
        rules: ['from 192.168.10.0/24 lookup 100'],
        mssClamp: 1300,
        icmpRateLimit: { rate: 10 },
        hub: true,
        kernelRoutes: false,
        control: 'ferry.sock',
        log: 'debug',
      },
      'x.json',
      { baseDir: '/etc/ipferry' },
    );
    expect(c.interface.address).toEqual([
      { text: '10.0.0.1/30', family: 4, bytes: bytes(10, 0, 0, 1), length: 30 },
      { text: 'fd00::1/64', family: 6, bytes: bytes(0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1), length: 64 },
    ]);
    expect(c.stack.address[1]).toMatchObject({ family: 6, length: 128 });
    expect(c.listen).toEqual({
      text: '[2001:db8::10]:7000',
      family: 6,
      bytes: bytes(0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10),
      host: '2001:db8::10',
      port: 7000,
    });
    const [sh] = c.peers;
    // An IPv4 peer cannot be reached from an IPv6-only listen address: this one listens on all.
    const [hk] = parseConfig({
      interface: { name: 'ferry0', mtu: 1420 },
      mssClamp: 1300,
      peers: [{ name: 'hk', endpoint: '[::ffff:198.51.100.7]:6080', key: 'base64:AAECAwQFBgcICQoLDA0ODw==' }],
    }).peers;
    expect(sh!.endpoint).toMatchObject({ family: 6, host: '2001:db8::20', port: 7000 });
    expect(sh!.routes.map((r) => [r.family, r.length, r.text])).toEqual([
      [4, 24, '192.168.20.0/24'],
      [6, 64, 'fd00:20::/64'],
    ]);
    expect(sh!.routes[0]!.bytes).toEqual(bytes(192, 168, 20, 0));
    expect(sh!.key).toEqual(bytes(...Array.from({ length: 16 }, (_, i) => i)));
    expect(sh!.mtu).toBe(1400);
    expect(sh!.keepalive).toBe(25);
    expect(sh!.mss).toEqual({ v4: 1300, v6: 1300 }); // min(1300, 1360 / 1340)
    // IPv4-mapped endpoint becomes IPv4; mtu and keepalive default
    expect(hk!.endpoint).toMatchObject({ family: 4, bytes: bytes(198, 51, 100, 7), host: '198.51.100.7', port: 6080 });
    expect(hk!.mtu).toBe(1420);
    expect(hk!.keepalive).toBeNull();
    expect(hk!.key).toEqual(sh!.key);
    expect(hk!.mss).toEqual({ v4: 1300, v6: 1300 });
    expect(c.routes).toHaveLength(1);
    expect(c.routes[0]!.text).toBe('unreachable 10.99.0.0/16');
    expect(c.routes[0]!.parsed).toMatchObject({ type: 'unreachable' });
    expect(c.rules[0]!.parsed).toMatchObject({ action: 'lookup', table: 100 });
    expect(c.icmpRateLimit).toEqual({ rate: 10, burst: 50, perDestinationMs: 1000 });
    expect([c.mssClamp, c.hub, c.kernelRoutes, c.log]).toEqual([1300, true, false, 'debug']);
    expect(c.control).toBe('/etc/ipferry/ferry.sock');
  });

  it('derives the MSS from each peer MTU; mssClamp false turns it off', () => {
    const c = parseConfig(base());
    expect(c.peers.map((p) => p.mss)).toEqual([
      { v4: 1360, v6: 1340 },
      { v4: 1360, v6: 1340 },
    ]);
    expect(parseConfig({ ...base(), mssClamp: false }).peers[0]!.mss).toBeNull();
  });

  it('listen: host only, port only, all addresses', () => {
    const l = (listen: unknown) => parseConfig({ interface: { name: 'f' }, listen }).listen;
    expect(l('192.0.2.1')).toMatchObject({ family: 4, host: '192.0.2.1', port: 6080 });
    expect(l('2001:db8::1')).toMatchObject({ family: 6, host: '2001:db8::1', port: 6080 });
    expect(l(':7000')).toEqual({ text: ':7000', family: null, bytes: null, host: null, port: 7000 });
    expect(l('7000')).toMatchObject({ family: null, port: 7000 });
    expect(l(7000)).toMatchObject({ family: null, port: 7000 });
    expect(l('[::]:7000')).toMatchObject({ family: 6, host: '::', port: 7000 });
    expect(() => l(':0')).toThrow('<config>: listen: port out of range in :0 (1-65535)');
  });

  it('an IPv4-only tunnel may use an MTU below 1280', () => {
    const c = parseConfig({
      interface: { name: 'f', address: ['10.0.0.1/30'], mtu: 576 },
      peers: [{ name: 'a', endpoint: '192.0.2.1:6080', routes: ['10.1.0.0/16'] }],
    });
    expect(c.interface.mtu).toBe(576);
  });

  it('nested prefixes on different peers are fine (only identical ones overlap)', () => {
    const c = parseConfig({
      interface: { name: 'f' },
      hub: true,
      peers: [
        { name: 'hub', endpoint: '192.0.2.1:6080', routes: ['0.0.0.0/0'] },
        { name: 'spoke', endpoint: '192.0.2.2:6080', routes: ['10.2.0.0/16'] },
      ],
    });
    expect(c.peers).toHaveLength(2);
  });

  it('route lines: dev names a peer; a bare via resolves to the peer whose routes hold it', () => {
    const c = base();
    c.routes = ['10.9.0.0/16 dev shanghai', '10.8.0.0/16 via 192.168.30.1', 'blackhole 10.66.0.0/16', 'default nexthop via 192.168.20.1 nexthop dev guangzhou'];
    const cfg = parseConfig(c);
    expect(cfg.routes[0]!.parsed.dev).toBe('shanghai');
    expect(cfg.routes[1]!.parsed.dev).toBe('guangzhou');
    expect(cfg.routes[3]!.parsed.nexthops!.map((n) => n.dev)).toEqual(['shanghai', 'guangzhou']);
  });

  it('the example configs parse', () => {
    for (const f of ['examples/beijing.json', 'examples/shanghai.json']) {
      const c = loadConfig(f);
      expect(c.peers).toHaveLength(1);
      expect(c.peers[0]!.key!.length).toBeGreaterThanOrEqual(16);
    }
  });
});

describe('errors', () => {
  it.each(BAD_CONFIGS)('$name (in-process)', ({ name, text, message }) => {
    const file = join(dir, `${name}.json`);
    writeFileSync(file, text);
    let err: unknown;
    try {
      loadConfig(file);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toBe(`${file}: ${message}`);
    expect((err as Error).message).not.toContain('\n');
  });

  it('ConfigError carries the path', () => {
    try {
      parseConfig({ ...base(), peers: [{ name: 'a', endpoint: '1.2.3.4:5', routes: ['10.0.0.1/8'] }] });
      expect.unreachable();
    } catch (e) {
      expect((e as ConfigError).path).toBe('peers[0].routes[0]');
    }
  });

  it('a control path too long for sun_path', () => {
    expect(() => parseConfig({ interface: { name: 'f' }, control: `/tmp/${'x'.repeat(120)}.sock` })).toThrow(
      /^<config>: control: socket path too long for a Unix socket \(130 bytes, max 107\)/,
    );
  });
});

describe('JSON Schema for editors', () => {
  it('examples/ipferry.schema.json is current (regenerate: see configJsonSchema)', () => {
    const committed = JSON.parse(readFileSync('examples/ipferry.schema.json', 'utf8'));
    expect(committed).toEqual(configJsonSchema());
  });
});

describe('decodeKey', () => {
  it('hex, base64, base64url, prefixes', () => {
    const k = bytes(...Array.from({ length: 32 }, (_, i) => i * 7));
    const hex = Buffer.from(k).toString('hex');
    expect(decodeKey(hex)).toEqual(k);
    expect(decodeKey(`hex:${hex.toUpperCase()}`)).toEqual(k);
    expect(decodeKey(Buffer.from(k).toString('base64'))).toEqual(k);
    expect(decodeKey(Buffer.from(k).toString('base64url'))).toEqual(k);
    expect(decodeKey(`base64:${Buffer.from(k).toString('base64')}`)).toEqual(k);
    expect(() => decodeKey('hex:abc')).toThrow('key is not valid hex');
  });
});

describe('parseJson', () => {
  it('parses like JSON.parse', () => {
    const t = '{"a":[1,-2.5e3,true,false,null,"x\\u00e9\\n"],"b":{}}';
    expect(JSON.stringify(parseJson(t))).toBe(JSON.stringify(JSON.parse(t)));
  });
  it('reports line and column', () => {
    const cases: [string, number, number, RegExp][] = [
      ['', 1, 1, /unexpected end of input/],
      ['{"a": 1} x', 1, 10, /after the end/],
      ['{\n "a": tru }', 2, 7, /unexpected 't'/],
      ['{\n "a": "x\n"}', 2, 9, /unterminated string/],
      ['[1,]', 1, 4, /trailing comma/],
      ['{"a": 01}', 1, 8, /expected ',' or '}'/],
    ];
    for (const [text, line, column, re] of cases) {
      try {
        parseJson(text);
        expect.unreachable(text);
      } catch (e) {
        expect(e).toBeInstanceOf(JsonSyntaxError);
        expect([(e as JsonSyntaxError).line, (e as JsonSyntaxError).column, text]).toEqual([line, column, text]);
        expect((e as Error).message).toMatch(re);
      }
    }
  });
  it('__proto__ is an ordinary (unknown) key', () => {
    expect(() => parseConfig(parseJson('{"interface":{"name":"f"},"__proto__":{"hub":true}}'))).toThrow(
      '<config>: __proto__: unknown key',
    );
  });
});
