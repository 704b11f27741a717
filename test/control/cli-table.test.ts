/**
 * The command line, table-driven and in-process (main(argv) with stdout/stderr captured): every
 * command's help (usage line, its options, examples), --version, `help CMD`, and every usage error
 * as exactly one line with its exit code. No endpoint runs here; the running-endpoint side is in
 * down-ping-cli.test.ts and up-show-cli.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { decodeKey } from '../../src/config/key.ts';
import { main } from '../../src/control/cli.ts';
import { CLI } from './cli-helper.ts';

const dir = mkdtempSync(join(tmpdir(), 'ipferry-cli-table-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const fixtures = join(import.meta.dirname, '../fixtures/iproute2');
const routes = join(dir, 'routes.txt');
writeFileSync(routes, readFileSync(join(fixtures, 'route-v4.txt'), 'utf8') + readFileSync(join(fixtures, 'route-v6.txt'), 'utf8'));
const VERSION = (JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string }).version;

let out = '';
let err = '';
beforeEach(() => {
  out = '';
  err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => ((out += String(c)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => ((err += String(c)), true));
});
afterEach(() => vi.restoreAllMocks());

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const code = await main(argv);
  return { code, out, err };
}

/** Each command: its usage line and the options its help must list. */
const COMMANDS: [string, string, string[]][] = [
  ['up', 'usage: ipferry up [options] <CONFIG>', ['--log-level <LEVEL>', '--log-format <FORMAT>', '--userspace', '--check']],
  ['down', 'usage: ipferry down [options] [IFACE]', ['-i, --interface <NAME>', '--socket <PATH>', '--timeout <MS>']],
  ['reload', 'usage: ipferry reload [options] [IFACE]', ['-i, --interface <NAME>', '--socket <PATH>', '--timeout <MS>']],
  ['capture', 'usage: ipferry capture [options] [IFACE]', ['-i, --interface <NAME>', '--socket <PATH>', '-w, --write <FILE>', '--inner', '--outer', '-c, --count <N>', '-s, --snaplen <BYTES>']],
  ['show', 'usage: ipferry show [options] [IFACE] [SECTION]', ['-i, --interface <NAME>', '--socket <PATH>', '--json', '--timeout <MS>']],
  ['ping', 'usage: ipferry ping [options] <ADDR> [IFACE]', ['--from <STACKADDR>', '-c, --count <N>', '-s, --size <SIZE>', '--interval <MS>', '-W, --wait <MS>', '--socket <PATH>']],
  ['check', 'usage: ipferry check [options] <CONFIG...>', []],
  ['genkey', 'usage: ipferry genkey [options]', []],
  ['route get', 'usage: ipferry route get [options] [QUERY...]', ['--routes <FILE>', '--rules <FILE>', '--json']],
  ['route show', 'usage: ipferry route show [options] [SELECTOR...]', ['--routes <FILE>', '-n, --numeric', '--table <TABLE>', '-4', '-6']],
];

describe('help', () => {
  it('ipferry --help lists every command; no arguments prints it to stderr, exit 2', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^usage: ipferry <command> \[options\]\n/);
    for (const c of ['up', 'down', 'reload', 'capture', 'show', 'ping', 'check', 'genkey', 'route']) expect(r.out).toMatch(new RegExp(`\\n  ${c} `));
    expect(r.out).toContain('exit codes: 0 ok, 1 runtime failure, 2 usage, config or preflight error\n');
    out = '';
    const bare = await run([]);
    expect(bare.code).toBe(2);
    expect(bare.out).toBe('');
    expect(bare.err).toBe(r.out);
  });

  it.each(COMMANDS)('%s: --help, -h and help %s agree, with options and examples', async (cmd, usage, options) => {
    const words = cmd.split(' ');
    const texts: string[] = [];
    for (const argv of [[...words, '--help'], [...words, '-h'], ['help', ...words]]) {
      out = '';
      const r = await run(argv);
      expect(r.code, argv.join(' ')).toBe(0);
      expect(r.err).toBe('');
      texts.push(r.out);
    }
    expect(texts[1]).toBe(texts[0]);
    expect(texts[2]).toBe(texts[0]);
    const text = texts[0]!;
    expect(text.split('\n')[0]).toBe(usage);
    for (const o of options) expect(text).toContain(`\n  ${o} `);
    expect(text).toMatch(/\nexamples:\n(  ipferry .+\n)+/);
    expect(text).toMatch(/\nexit codes: .+\n$/);
    // Every example names this command.
    for (const ex of text.split('\nexamples:\n')[1]!.split('\n\n')[0]!.split('\n')) expect(ex).toContain(`ipferry ${cmd}`);
  });

  it('ipferry route (no subcommand): its help on stderr, exit 2', async () => {
    const r = await run(['route']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^usage: ipferry route \[options\] \[command\]\n/);
    expect(r.err).toContain('  get [options] [QUERY...]');
  });

  it.each([['--version'], ['-V']])('%s', async (flag) => {
    const r = await run([flag]);
    expect(r).toEqual({ code: 0, out: `ipferry ${VERSION}\n`, err: '' });
  });
});

/** argv, exit code, the one stderr line (after "ipferry: "). */
const ERRORS: [string[], number, string][] = [
  [['frobnicate'], 2, 'unknown command frobnicate (see ipferry --help)'],
  [['shwo'], 2, 'unknown command shwo (did you mean show? see ipferry --help)'],
  [['help', 'frob'], 2, 'unknown command frob (see ipferry --help)'],
  [['--bogus'], 2, 'unknown option --bogus (see ipferry --help)'],
  [['up'], 2, 'up: missing CONFIG (usage: ipferry up CONFIG)'],
  [['up', 'a.json', 'b.json'], 2, 'up: unexpected argument b.json (usage: ipferry up CONFIG)'],
  [['up', '--frobnicate', 'x.json'], 2, 'up: unknown option --frobnicate (see ipferry up --help)'],
  [['up', 'x.json', '--log-level'], 2, 'up: option --log-level needs a value (LEVEL)'],
  [['up', 'x.json', '--log-level', 'loud'], 2, 'up: --log-level must be one of error, warn, info, debug, got loud'],
  [['up', 'no-such.json'], 2, 'no-such.json: no such file'],
  [['up', 'x.json', '--log-format', 'xml'], 2, 'up: --log-format must be one of text, json, got xml'],
  [['reload', 'a', 'b'], 2, 'reload: unexpected argument b (usage: ipferry reload [IFACE])'],
  [['reload', 'x', '--interface', 'y'], 2, 'reload: interface given twice (x and --interface y)'],
  [['reload', '--timeout', '0'], 2, 'reload: --timeout needs a whole number 1-600000, got 0'],
  [['reload', '--socket'], 2, 'reload: option --socket needs a value (PATH)'],
  [['capture', 'x', '--interface', 'y'], 2, 'capture: interface given twice (x and --interface y)'],
  [['capture', '--outer', '--inner'], 2, 'capture: give --outer or --inner, not both'],
  [['capture', '-w'], 2, 'capture: option --write needs a value (FILE)'],
  [['capture', '-c', '0'], 2, 'capture: -c needs a whole number 1-2147483648, got 0'],
  [['capture', '-s', '10'], 2, 'capture: -s needs a whole number 64-262144, got 10'],
  [['capture', '--frob'], 2, 'capture: unknown option --frob (see ipferry capture --help)'],
  [['show', '--interface'], 2, 'show: option --interface needs a value (NAME)'],
  [['show', '-i'], 2, 'show: option --interface needs a value (NAME)'],
  [['show', '--socket'], 2, 'show: option --socket needs a value (PATH)'],
  [['show', 'ferry0', 'bogus'], 2, 'show: unknown section bogus (peers, routes, stats)'],
  [['show', 'peers', '--interface', 'ferry0', 'x'], 2, 'show: interface given twice (peers and --interface ferry0)'],
  [['show', 'ferry0', 'peers', 'extra'], 2, 'show: unexpected argument extra (usage: ipferry show [IFACE] [SECTION])'],
  [['show', 'bad/name'], 2, 'show: bad/name is neither a section (peers, routes, stats) nor an interface name'],
  [['show', '--socket', '/x.sock', '--interface', 'y'], 2, 'show: give --socket or an interface, not both'],
  [['show', '--timeout', 'soon'], 2, 'show: --timeout needs a whole number 1-600000, got soon'],
  [['show', '--verbose'], 2, 'show: unknown option --verbose (see ipferry show --help)'],
  [['show', '--jsn'], 2, 'show: unknown option --jsn (did you mean --json? see ipferry show --help)'],
  [['down', 'a', 'b'], 2, 'down: unexpected argument b (usage: ipferry down [IFACE])'],
  [['down', 'x', '--interface', 'y'], 2, 'down: interface given twice (x and --interface y)'],
  [['down', 'x', '--timeout', '0'], 2, 'down: --timeout needs a whole number 1-600000, got 0'],
  [['ping'], 2, 'ping: missing ADDR (usage: ipferry ping ADDR [IFACE])'],
  [['ping', '1.2.3'], 2, 'ping: invalid address 1.2.3'],
  [['ping', '10.0.0.1', '-c', '0'], 2, 'ping: -c needs a whole number 1-1000000, got 0'],
  [['ping', '10.0.0.1', '-s', '70000'], 2, 'ping: -s needs a whole number 0-65507, got 70000'],
  [['ping', 'fd00::1', '-s', '65500'], 2, 'ping: -s needs a whole number 0-65487, got 65500'],
  [['ping', '10.0.0.1', '--from', 'fd00::1'], 2, 'ping: --from fd00::1 and 10.0.0.1 are not the same address family'],
  [['ping', '10.0.0.1', '--from', 'me'], 2, 'ping: invalid address me'],
  [['ping', '10.0.0.1', '-W', 'x'], 2, 'ping: -W needs a whole number 1-60000, got x'],
  [['check'], 2, 'check: missing CONFIG (usage: ipferry check CONFIG...)'],
  [['check', 'no-such.yaml'], 2, 'no-such.yaml: no such file'],
  [['genkey', 'x'], 2, 'genkey: unexpected argument x (usage: ipferry genkey)'],
  [['genkey', '--length', '16'], 2, 'genkey: unknown option --length (see ipferry genkey --help)'],
  [['route', 'frob'], 2, 'route: unknown command frob (get, show)'],
  [['route', 'get', '--bogus'], 2, 'route get: unknown option --bogus (see ipferry route get --help)'],
  [['route', 'get', '--routes'], 2, 'route get: option --routes needs a value (FILE)'],
  [['route', 'get', '1.1.1.1'], 2, 'route get: --routes FILE is required'],
  [['route', 'show'], 2, 'route show: --routes FILE is required'],
  [['route', 'show', '--routes', routes, '10.0.0.0/8', 'extra'], 2, 'route show: unexpected argument extra'],
  [['route', 'show', '--routes', routes, 'root'], 2, 'route show: root needs a prefix'],
  [['route', 'show', '--routes', routes, '-n', '10.0.0.0/8'], 2, 'route show: -n prints whole tables: no PREFIX with it'],
  [['route', 'get', '--routes', routes, '10.0.0.1', 'dport', 'x'], 2, 'route get: address: invalid dport x (0-65535)'],
  [['route', 'get', '--routes', routes, '10.0.0.1', 'oif', 'eth0'], 2, 'route get: address: oif is not supported (from, iif, ipproto, sport, dport, fibmatch)'],
  [['route', 'show', '--routes', routes, '-4', '-6'], 2, 'route show: give -4 or -6, not both'],
  [['route', 'show', '-7'], 2, 'route show: unknown option -7 (see ipferry route show --help)'],
];

describe('errors: one line, exit code', () => {
  it.each(ERRORS)('%j -> %i', async (argv, code, line) => {
    const r = await run(argv);
    expect(r.err).toBe(`ipferry: ${line}\n`);
    expect(r.out).toBe('');
    expect(r.code).toBe(code);
  });
});

describe('commands that need no endpoint', () => {
  it('genkey: 32 random bytes, base64, a key the config accepts; never the same twice', async () => {
    const a = (await run(['genkey'])).out;
    out = '';
    const b = (await run(['genkey'])).out;
    for (const k of [a, b]) {
      expect(k).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);
      expect(Buffer.from(k, 'base64')).toHaveLength(32);
      expect(decodeKey(k.trim())).toHaveLength(32); // bare base64 in peers[].key
    }
    expect(a).not.toBe(b);
  });

  it('check: the example configs pass on any machine (no root, no local listen address)', async () => {
    const r = await run(['check', 'examples/beijing.json', 'examples/shanghai.json']);
    expect(r).toEqual({ code: 0, out: 'examples/beijing.json: ok (1 peer)\nexamples/shanghai.json: ok (1 peer)\n', err: '' });
  });

  it('check: a YAML config with a DNS name is checked for form only', async () => {
    const f = join(dir, 'dns.yaml');
    writeFileSync(f, 'interface: { name: ferry0 }\nlisten: 203.0.113.10:6080\npeers:\n  - name: far\n    endpoint: gw.example.net:6080 # not looked up by check\n');
    const r = await run(['check', f]);
    expect(r).toEqual({ code: 0, out: `${f}: ok (1 peer, 1 by DNS name, resolved at start)\n`, err: '' });
  });

  it('check: the first bad file stops with its one line, exit 2', async () => {
    const f = join(dir, 'bad.yml');
    writeFileSync(f, 'interface: { name: ferry0 }\npeers: [{ name: a, endpoint: "1.2.3.4" }]\n');
    const r = await run(['check', 'examples/beijing.json', f]);
    expect(r.out).toBe('examples/beijing.json: ok (1 peer)\n');
    expect(r.err).toBe(`ipferry: ${f}: peers[0].endpoint: missing port in 1.2.3.4\n`);
    expect(r.code).toBe(2);
  });

  it('route show -6 / -4: one family; -4 -n only the IPv4 route -n table', async () => {
    const v6 = await run(['route', 'show', '--routes', routes, '-6']);
    expect(v6.code).toBe(0);
    const lines6 = v6.out.trim().split('\n').filter((l) => !l.startsWith('\t'));
    expect(lines6.length).toBeGreaterThan(3);
    for (const l of lines6) expect(l).toMatch(/:/); // every route an IPv6 one
    out = '';
    const v4 = await run(['route', 'show', '--routes', routes, '-4']);
    expect(v4.out).not.toMatch(/:/);
    expect(v4.out.length).toBeGreaterThan(0);
    out = '';
    const n4 = await run(['route', 'show', '--routes', routes, '-4', '-n']);
    expect(n4.out).toMatch(/^Kernel IP routing table\n/);
    expect(n4.out).not.toContain('Kernel IPv6 routing table');
  });
});

describe('the real binary (child process)', () => {
  it('a closed pipe is not an error: `ipferry help show | head -1`', () => {
    const cmd = [process.execPath, ...CLI, 'help', 'show'].map((a) => `'${a}'`).join(' ');
    const r = execFileSync('sh', ['-c', `${cmd} 2>&1 | head -1`], { encoding: 'utf8', timeout: 30_000 });
    expect(r).toBe('usage: ipferry show [options] [IFACE] [SECTION]\n');
  });
});
