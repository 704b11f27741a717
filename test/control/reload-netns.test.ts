/**
 * Reload through the CLI and the signal, end to end, with the Linux kernel as the traffic on
 * both sides: two network namespaces joined by a veth, `ipferry up` with a kernel TUN in each,
 * and the kernel's own ping from A's namespace to B's TUN address running (20 per second) while
 * A's config file changes under it:
 *   1. SIGHUP: peer c's key and MTU change, a peer d and an unreachable route are added;
 *   2. `ipferry reload`: c gains a prefix (its kernel route appears), d goes (its route goes);
 *   3. `ipferry reload` of a broken file: exit 2 with the one-line error, the old config runs on;
 *   4. `ipferry reload` with a changed listen address: applied otherwise, "needs restart" named.
 * The ping to b, the peer no reload touched, loses nothing. Run on each data path the machine
 * has (IPFERRY_NO_FFI=1 forces the portable in-thread one).
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, startCli } from './cli-helper.ts';
import { createNetns, netnsAvailable, NETNS_SKIP_REASON, type Netns } from '../support/netns.ts';

const can = netnsAvailable() && existsSync('/dev/net/tun');
const dir = mkdtempSync(join(tmpdir(), 'ipferry-reload-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const KEY1 = 'hex:' + '11'.repeat(32);
const KEY2 = 'hex:' + '22'.repeat(32);

const PATHS: { name: string; env: Record<string, string> }[] = [
  { name: 'default data path', env: {} },
  { name: 'portable in-thread path (IPFERRY_NO_FFI=1)', env: { IPFERRY_NO_FFI: '1' } },
];

function configA(sock: string, over: { c?: Record<string, unknown>; peers?: unknown[]; routes?: string[]; listen?: string } = {}): string {
  return JSON.stringify({
    interface: { name: 'relA', address: ['10.10.0.1/24'] },
    listen: over.listen ?? '10.99.0.1:6080',
    control: sock,
    peers: [
      { name: 'b', endpoint: '10.99.0.2:6080', routes: ['10.20.0.0/24'], keepalive: 1 },
      { name: 'c', endpoint: '10.99.0.3:6080', routes: ['10.30.0.0/24'], key: KEY1, ...over.c },
      ...(over.peers ?? []),
    ],
    routes: over.routes ?? [],
  });
}

describe.skipIf(!can)('reload while the kernel pings through the tunnel (netns, kernel TUN)', () => {
  if (!can) console.warn(`reload-netns.test.ts skipped: ${NETNS_SKIP_REASON}`);
  for (const path of PATHS) {
    it(`SIGHUP and ipferry reload: no ping to b lost; a broken config keeps the old one (${path.name})`, async () => {
      const env = { IPFERRY_WARMUP: '0', ...path.env };
      const nsA: Netns = createNetns('ipf-rla');
      const nsB: Netns = createNetns('ipf-rlb');
      const ups: ReturnType<typeof startCli>[] = [];
      try {
        const vethA = `rl${process.pid % 10000}a`;
        const vethB = `rl${process.pid % 10000}b`;
        execFileSync('ip', ['link', 'add', vethA, 'netns', nsA.name, 'type', 'veth', 'peer', 'name', vethB, 'netns', nsB.name]);
        nsA.exec(`ip addr add 10.99.0.1/24 dev ${vethA} && ip link set ${vethA} up`);
        nsB.exec(`ip addr add 10.99.0.2/24 dev ${vethB} && ip link set ${vethB} up`);
        const sockA = join(dir, `a-${path.env.IPFERRY_NO_FFI ?? 'x'}.sock`);
        const sockB = join(dir, `b-${path.env.IPFERRY_NO_FFI ?? 'x'}.sock`);
        const fileA = join(dir, 'a.json');
        const fileB = join(dir, 'b.json');
        writeFileSync(fileA, configA(sockA));
        writeFileSync(
          fileB,
          JSON.stringify({
            interface: { name: 'relB', address: ['10.20.0.1/24'] },
            listen: '10.99.0.2:6080',
            control: sockB,
            peers: [{ name: 'a', endpoint: '10.99.0.1:6080', routes: ['10.10.0.0/24'], keepalive: 1 }],
          }),
        );
        const a = startCli(['up', fileA], { prefix: ['ip', 'netns', 'exec', nsA.name], env });
        const b = startCli(['up', fileB], { prefix: ['ip', 'netns', 'exec', nsB.name], env });
        ups.push(a, b);
        await a.waitFor(/control socket /);
        await b.waitFor(/control socket /);
        // the first ping brings the path up (ARP-free TUN, but the peers' first datagrams)
        nsA.exec(['ping', '-c', '1', '-W', '5', '10.20.0.1'], { timeoutMs: 10_000 });

        const ping = spawn('ip', ['netns', 'exec', nsA.name, 'ping', '-i', '0.05', '-c', '100', '-W', '1', '10.20.0.1'], { stdio: ['ignore', 'pipe', 'pipe'] });
        let pingOut = '';
        ping.stdout.setEncoding('utf8').on('data', (d: string) => (pingOut += d));
        const pinged = new Promise<number | null>((r) => ping.once('close', (code) => r(code)));
        const pause = () => new Promise((r) => setTimeout(r, 300));

        // 1. SIGHUP
        await pause();
        writeFileSync(
          fileA,
          configA(sockA, { c: { key: KEY2, mtu: 1300 }, peers: [{ name: 'd', endpoint: '10.99.0.4:6080', routes: ['10.40.0.0/24'] }], routes: ['unreachable 10.98.0.0/16'] }),
        );
        a.child.kill('SIGHUP');
        await a.waitFor(/reload .*a\.json: peer c: mtu 1400 -> 1300, key changed, .*peer d added/);
        expect(nsA.exec(['ip', 'route', 'show', 'dev', 'relA'])).toContain('10.40.0.0/24');

        // 2. ipferry reload: c gains a prefix, d goes
        await pause();
        writeFileSync(fileA, configA(sockA, { c: { key: KEY2, mtu: 1300, routes: ['10.30.0.0/24', '10.31.0.0/24'] }, routes: ['unreachable 10.98.0.0/16'] }));
        const r2 = await runCli(['reload', '--socket', sockA], { env });
        expect(r2.stderr).toBe('');
        expect(r2.stdout).toBe(`relA: reloaded ${fileA}\n  peer d removed\n  peer c: routes +10.31.0.0/24\n`);
        expect(r2.code).toBe(0);
        const kernel = nsA.exec(['ip', 'route', 'show', 'dev', 'relA']);
        expect(kernel).toContain('10.31.0.0/24');
        expect(kernel).not.toContain('10.40.0.0/24');
        expect(a.stderr).toMatch(/kernel route added: 10\.31\.0\.0\/24 dev relA/);
        expect(a.stderr).toMatch(/kernel route removed: 10\.40\.0\.0\/24 dev relA/);

        // 3. a broken file: exit 2, one line, the old config runs on
        await pause();
        writeFileSync(fileA, '{ "interface": ');
        const r3 = await runCli(['reload', '--socket', sockA], { env });
        expect(r3.stdout).toBe('');
        expect(r3.stderr).toMatch(new RegExp(`^ipferry: ${fileA.replace(/[.]/g, '\\.')}: line 1, column \\d+: JSON syntax error: .* \\(still running the previous config\\)\\n$`));
        expect(r3.code).toBe(2);
        await a.waitFor(/error relA: reload request: .*still running the previous config/);
        const shown = JSON.parse((await runCli(['show', '--socket', sockA, 'peers', '--json'], { env })).stdout) as { peers: { name: string; routes: string[] }[] };
        expect(shown.peers.map((p) => [p.name, p.routes])).toEqual([
          ['b', ['10.20.0.0/24']],
          ['c', ['10.30.0.0/24', '10.31.0.0/24']],
        ]);

        // 4. a listen change needs a restart; the rest applies
        await pause();
        writeFileSync(fileA, configA(sockA, { c: { key: KEY2, mtu: 1300, routes: ['10.30.0.0/24', '10.31.0.0/24'] }, listen: '10.99.0.1:7000' }));
        const r4 = await runCli(['reload', '--socket', sockA], { env });
        expect(r4.stdout).toBe(`relA: reloaded ${fileA}\n  route removed: unreachable 10.98.0.0/16\n`);
        expect(r4.stderr).toBe('ipferry: relA: needs restart: listen 10.99.0.1:6080 -> 10.99.0.1:7000 (not applied; everything else is)\n');
        expect(r4.code).toBe(0);

        expect(await pinged).toBe(0);
        expect(pingOut).toMatch(/100 packets transmitted, 100 received, 0% packet loss/);

        a.child.kill('SIGTERM');
        b.child.kill('SIGTERM');
        const [ra, rb] = await Promise.all([a.exited, b.exited]);
        expect(ra.code).toBe(0);
        expect(rb.code).toBe(0);
        expect(nsA.exec(['ip', 'route'])).not.toContain('relA');
      } finally {
        for (const u of ups) if (u.child.exitCode === null && u.child.signalCode === null) u.child.kill('SIGKILL');
        nsA.destroy();
        nsB.destroy();
      }
    }, 120_000);
  }
});
