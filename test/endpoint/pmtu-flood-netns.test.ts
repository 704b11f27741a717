/**
 * Path MTU discovery under a flood, with the Linux kernel as the host behind the TUN (issue 12,
 * point 1): `ipferry up` in a namespace (TUN MTU 1500, the peer's tunnel MTU 1300, a global ICMP
 * budget of 5 a second), the kernel floods destinations the endpoint has no route for (each
 * earns an ICMP unreachable, rate-limited), and meanwhile `ping -M do -s 1400` to ten hosts
 * behind the peer must each get "fragmentation needed, mtu 1300" back — and the kernel must take
 * it (its route cache then says mtu 1300). Root only; the flood is bounded in count and time.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, startCli } from '../control/cli-helper.ts';
import { createNetns, netnsAvailable, NETNS_SKIP_REASON } from '../support/netns.ts';

const skip = !netnsAvailable();
if (skip) console.warn(`pmtu-flood-netns.test.ts skipped: ${NETNS_SKIP_REASON}`);

// ~2000 datagrams a second to 172.16.0.0/16 (no route in the endpoint), for at most 30 s.
const FLOOD = `
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.time() + 30
i = 0
while time.time() < end and i < 60000:
    for _ in range(50):
        try:
            s.sendto(b'x' * 32, ('172.16.%d.%d' % ((i >> 8) & 255, i & 255), 9))
        except OSError:
            pass
        i += 1
    time.sleep(0.025)
`;

describe.skipIf(skip)('PMTU discovery through ipferry while a flood of unreachables runs (kernel as the host)', () => {
  it('every DF ping above the tunnel MTU gets its fragmentation needed, and the kernel learns mtu 1300', async () => {
    const ns = createNetns('ipf-pmtu');
    const dir = mkdtempSync(join(tmpdir(), 'ipferry-pmtu-'));
    const port = 30000 + Math.floor(Math.random() * 10000) * 2;
    let up: ReturnType<typeof startCli> | null = null;
    try {
      ns.exec(['ip', 'link', 'set', 'lo', 'up']);
      const cfg = {
        interface: { name: 'ferry0', address: ['10.0.0.1/30'], mtu: 1500 },
        listen: `127.0.0.1:${port}`,
        stack: { address: ['10.0.0.2'] },
        peers: [{ name: 'shanghai', endpoint: `127.0.0.1:${port + 1}`, routes: ['192.168.20.0/24'], mtu: 1300 }],
        icmpRateLimit: { rate: 5, burst: 5 },
      };
      const file = join(dir, 'pmtu.json');
      writeFileSync(file, JSON.stringify(cfg));
      up = startCli(['up', file], { prefix: ['ip', 'netns', 'exec', ns.name], env: { IPFERRY_WARMUP: '0' } });
      await up.waitFor(/control socket /);
      ns.exec(['ip', 'route', 'add', '172.16.0.0/16', 'dev', 'ferry0']);

      const flood = ns.spawn(['python3', '-c', FLOOD], { stdio: 'ignore' });
      try {
        await new Promise((r) => setTimeout(r, 500)); // the flood is under way: the global bucket is empty
        for (let k = 1; k <= 10; k++) {
          const r = ns.run(['ping', '-M', 'do', '-s', '1400', '-c', '1', '-W', '2', `192.168.20.${k}`], { timeoutMs: 10_000 });
          expect(r.stdout, `ping 192.168.20.${k}`).toMatch(/Frag needed and DF set \(mtu = 1300\)/);
          expect(ns.exec(['ip', 'route', 'get', `192.168.20.${k}`])).toMatch(/mtu 1300/);
        }
      } finally {
        flood.kill('SIGKILL');
      }
      const show = await runCli(['show', 'stats', '--json'], { prefix: ['ip', 'netns', 'exec', ns.name] });
      const { stats } = JSON.parse(show.stdout) as { stats: { drops: Record<string, number> } };
      // The flood was rate-limited (the global bucket and the flooding host's), PMTU messages not.
      const limited = (stats.drops.IcmpRateLimited ?? 0) + (stats.drops.IcmpRateLimitedDestination ?? 0);
      expect(limited).toBeGreaterThan(100);
      expect(stats.drops.PacketTooBig).toBe(10);
      up.child.kill('SIGTERM');
      const done = await up.exited;
      expect(done.code).toBe(0);
    } finally {
      if (up && up.child.exitCode === null && up.child.signalCode === null) up.child.kill('SIGKILL');
      ns.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
