/**
 * `ipferry capture` end to end, read back by tshark (the independent oracle): two endpoints in
 * userspace mode (no root) on loopback, `ipferry ping` from A's stack to B's through the tunnel
 * while a capture runs on A:
 * - --outer -w FILE: the GUE datagrams with IP/UDP headers from the underlay addresses; tshark,
 *   decoding the UDP port as IP (-d udp.port==PORT,ip), finds each echo request and reply inside,
 *   with valid outer checksums, in the right direction;
 * - --inner -w -: the tunnelled ICMP packets themselves, pcapng on stdout;
 * - no -w: one tcpdump-style line per packet.
 * A runs with --log-format json: every line it logs parses as one JSON object.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, runCli, startCli } from './cli-helper.ts';
import { tsharkAvailable, tsharkFields, tsharkVerdicts, TSHARK_MISSING } from '../support/tshark.ts';

const dir = mkdtempSync(join(tmpdir(), 'ipferry-capture-'));
const running: ReturnType<typeof startCli>[] = [];
afterAll(() => {
  for (const r of running) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const env = { IPFERRY_WARMUP: '0' };

/** `ipferry capture ... -w -`: its stdout as bytes. */
function captureToStdout(args: string[]): { ready: Promise<void>; done: Promise<{ code: number | null; out: Buffer; stderr: string }> } {
  const child = spawn(process.execPath, [...CLI, 'capture', ...args, '-w', '-'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const chunks: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => chunks.push(d));
  const ready = new Promise<void>((res, rej) => {
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (/capturing on /.test(stderr)) res();
    });
    child.once('close', () => rej(new Error(`capture exited: ${stderr}`)));
  });
  const done = new Promise<{ code: number | null; out: Buffer; stderr: string }>((res) => child.once('close', (code) => res({ code, out: Buffer.concat(chunks), stderr })));
  return { ready, done };
}

describe('ipferry capture (userspace endpoints on loopback)', () => {
  it('outer and inner views read back by tshark; text lines; JSON logs', async (ctx) => {
    if (!tsharkAvailable()) return ctx.skip(TSHARK_MISSING);
    const pa = 30000 + Math.floor(Math.random() * 20000);
    const pb = pa + 1;
    const sock = (n: string) => join(dir, `${n}.sock`);
    const cfg = (me: 'a' | 'b') =>
      JSON.stringify({
        interface: { name: me === 'a' ? 'capA' : 'capB', address: [me === 'a' ? '10.0.0.1/30' : '10.0.0.2/30'] },
        listen: `127.0.0.1:${me === 'a' ? pa : pb}`,
        control: sock(me),
        stack: { address: [me === 'a' ? '10.0.0.254' : '10.0.1.254'] },
        peers: [{ name: me === 'a' ? 'b' : 'a', endpoint: `127.0.0.1:${me === 'a' ? pb : pa}`, routes: [me === 'a' ? '10.0.1.0/24' : '10.0.0.254/32'] }],
      });
    writeFileSync(join(dir, 'a.json'), cfg('a'));
    writeFileSync(join(dir, 'b.json'), cfg('b'));
    const a = startCli(['up', '--userspace', '--log-format', 'json', join(dir, 'a.json')], { env });
    const b = startCli(['up', '--userspace', join(dir, 'b.json')], { env });
    running.push(a, b);
    await a.waitFor(/control socket /);
    await b.waitFor(/control socket /);
    const ping = async (): Promise<void> => {
      const r = await runCli(['ping', '10.0.1.254', '--socket', sock('a'), '-c', '2', '--interval', '0'], { env });
      expect(r.stdout).toContain('2 packets transmitted, 2 received');
    };

    // outer view to a file, 4 packets: two requests out, two replies in
    const outer = join(dir, 'outer.pcapng');
    const cap = startCli(['capture', '--socket', sock('a'), '--outer', '-w', outer, '-c', '4'], { env });
    await cap.waitFor(/capturing on /);
    await ping();
    const capDone = await cap.exited;
    expect(capDone.code).toBe(0);
    expect(capDone.stderr).toMatch(/\n4 packets captured\n$/);
    const v = tsharkVerdicts(outer, { decodeUdpAsIp: [pb] });
    expect(v.problems).toEqual([]);
    const rows = tsharkFields(outer, ['frame.packet_flags_direction', 'ip.src', 'ip.dst', 'udp.srcport', 'udp.dstport', 'icmp.type', 'udp.checksum.status'], {
      decodeUdpAsIp: [pb],
      extraArgs: ['-o', 'udp.check_checksum:TRUE'],
    });
    expect(rows.map((r) => [r[0]![0], r[1], r[2], r[3]![0], r[4]![0], r[5]![0], r[6]![0]])).toEqual([
      ['0x00000002', ['127.0.0.1', '10.0.0.254'], ['127.0.0.1', '10.0.1.254'], String(pa), String(pb), '8', '1'],
      ['0x00000001', ['127.0.0.1', '10.0.1.254'], ['127.0.0.1', '10.0.0.254'], String(pb), String(pa), '0', '1'],
      ['0x00000002', ['127.0.0.1', '10.0.0.254'], ['127.0.0.1', '10.0.1.254'], String(pa), String(pb), '8', '1'],
      ['0x00000001', ['127.0.0.1', '10.0.1.254'], ['127.0.0.1', '10.0.0.254'], String(pb), String(pa), '0', '1'],
    ]);

    // inner view on stdout (pcapng through a pipe)
    const inner = captureToStdout(['--socket', sock('a'), '--inner', '-c', '4']);
    await inner.ready;
    await ping();
    const got = await inner.done;
    expect(got.code).toBe(0);
    const innerFile = join(dir, 'inner.pcapng');
    writeFileSync(innerFile, got.out);
    expect(tsharkVerdicts(innerFile).problems).toEqual([]);
    const irows = tsharkFields(innerFile, ['ip.src', 'ip.dst', 'icmp.type', 'icmp.seq']);
    expect(irows.map((r) => [r[0]![0], r[1]![0], r[2]![0]])).toEqual([
      ['10.0.0.254', '10.0.1.254', '8'],
      ['10.0.1.254', '10.0.0.254', '0'],
      ['10.0.0.254', '10.0.1.254', '8'],
      ['10.0.1.254', '10.0.0.254', '0'],
    ]);

    // text lines
    const text = startCli(['capture', '--socket', sock('a'), '-c', '2'], { env });
    await text.waitFor(/capturing on /);
    await ping();
    const t = await text.exited;
    expect(t.code).toBe(0);
    expect(t.stdout.split('\n').filter(Boolean).map((l) => l.replace(/^\S+ /, '').replace(/, id \d+.*$/, ''))).toEqual([
      'Out IP 10.0.0.254 > 10.0.1.254: ICMP echo request',
      'In  IP 10.0.1.254 > 10.0.0.254: ICMP echo reply',
    ]);

    // a second capture while one runs is refused in one line
    const first = startCli(['capture', '--socket', sock('a')], { env });
    running.push(first);
    await first.waitFor(/capturing on /);
    const second = await runCli(['capture', '--socket', sock('a')], { env });
    expect(second.stderr).toBe('ipferry: capture: a capture is already running on capA\n');
    expect(second.code).toBe(1);
    first.child.kill('SIGINT'); // Ctrl-C: the endpoint closes the stream with its statistics
    const firstDone = await first.exited;
    expect(firstDone.code).toBe(0);
    expect(firstDone.stderr).toMatch(/\n0 packets captured\n$/);

    for (const s of ['a', 'b']) expect((await runCli(['down', '--socket', sock(s)], { env })).code).toBe(0);
    const ra = await a.exited;
    const lines = ra.stderr.split('\n').filter(Boolean);
    const objs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const o of objs) expect(Object.keys(o).slice(0, 5)).toEqual(['time', 'level', 'interface', 'event', 'msg']);
    expect(objs.map((o) => o.event)).toEqual(expect.arrayContaining(['start', 'capture', 'stop']));
    expect(objs.find((o) => o.event === 'start')).toMatchObject({ interface: 'capA', listen: `127.0.0.1:${pa}`, peers: 1 });
  }, 120_000);
});
