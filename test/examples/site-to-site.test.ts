/**
 * Runs examples/site-to-site.ts as a child process (`npx tsx examples/site-to-site.ts`) in both
 * modes and checks the exit code and its key output lines. The namespace mode needs root.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { isRoot, netnsAvailable, NETNS_SKIP_REASON } from '../support/netns.ts';
import { REPO_ROOT } from '../../examples/site-topology.ts';

function runExample(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync('npx', ['tsx', 'examples/site-to-site.ts', ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 150_000,
    env: { ...process.env, NO_COLOR: '1' },
  });
  return { code: r.status, out: r.stdout ?? '', err: r.stderr ?? '' };
}

const show = (r: { code: number | null; out: string; err: string }): string => `exit ${r.code}\n--- stdout\n${r.out}\n--- stderr\n${r.err}`;

describe('examples/site-to-site.ts', () => {
  it('--userspace: two sites in process, pings v4/v6/4000 bytes and a UDP bulk transfer', { timeout: 180_000 }, () => {
    const r = runExample(['--userspace']);
    expect(r.code, show(r)).toBe(0);
    expect(r.out).toMatch(/^mode: userspace, in-process \(--userspace given\)/m);
    expect(r.out).toMatch(/^ping hostB 192\.168\.20\.20 \(v4\): 5\/5 replies, rtt/m);
    expect(r.out).toMatch(/^ping hostB fd00:20::20 \(v6\): 5\/5 replies, rtt/m);
    expect(r.out).toMatch(/^ping hostB 192\.168\.20\.20 4000 bytes \(v4, fragmented\): 3\/3 replies/m);
    expect(r.out).toMatch(/^ping hostB fd00:20::20 4000 bytes \(v6, fragmented\): 3\/3 replies/m);
    expect(r.out).toMatch(/^UDP bulk hostA -> hostB .*received [1-9]\d* \([\d.]+ MB\) in [\d.]+ s: \d+ Mbit\/s/m);
    expect(r.out).toMatch(/^stopped: sockets closed, every pool slot back$/m);
    expect(r.out).toMatch(/^OK: site-to-site works \(userspace mode\)$/m);
  });

  it.runIf(!isRoot())('no arguments, not root: runs the userspace mode and says why', { timeout: 180_000 }, () => {
    const r = runExample([]);
    expect(r.code, show(r)).toBe(0);
    expect(r.out).toMatch(/^mode: userspace, in-process \(not root\)/m);
    expect(r.out).toMatch(/^OK: site-to-site works \(userspace mode\)$/m);
  });

  it('no arguments, as root: namespaces, ipferry up on both gateways, pings, TCP, underlay view, clean teardown', { timeout: 180_000 }, (ctx) => {
    if (!netnsAvailable()) {
      ctx.skip(`namespace mode of the example: ${NETNS_SKIP_REASON}`);
      return;
    }
    const r = runExample([]);
    expect(r.code, show(r)).toBe(0);
    expect(r.out).toMatch(/^mode: network namespaces \(root, \/dev\/net\/tun present\)/m);
    expect(r.out).toMatch(/^endpoints up: gwA 203\.0\.113\.10:6080 \(ferry0, mtu 1400\), gwB 203\.0\.113\.20:6080/m);
    expect(r.out).toMatch(/^ping hostB 192\.168\.20\.20 \(v4\): 5\/5 replies, rtt/m);
    expect(r.out).toMatch(/^ping hostB fd00:20::20 \(v6\): 5\/5 replies, rtt/m);
    expect(r.out).toMatch(/^ping hostB 192\.168\.20\.20 4000 bytes \(v4, fragmented\): [1-3]\/3 replies/m);
    expect(r.out).toMatch(/^TCP hostA -> hostB \(.*\): \d+ Mbit\/s/m);
    if (/tcpdump not installed/.test(r.out) === false) {
      expect(r.out).toMatch(
        /^ {2}IP 203\.0\.113\.10\.6080 > 203\.0\.113\.20\.6080: UDP, length 84 \| inner IP 192\.168\.10\.10 > 192\.168\.20\.20: ICMP echo request, id \d+, seq 1, length 64$/m,
      );
      expect(r.out).toMatch(/inner IP 192\.168\.20\.20 > 192\.168\.10\.10: ICMP echo reply/);
    }
    expect(r.out).toMatch(/^endpoints stopped \(SIGTERM\): exit 0, ferry0 and its routes gone$/m);
    expect(r.out).toMatch(/^torn down: no namespace left$/m);
    expect(r.out).toMatch(/^OK: site-to-site works \(namespaces mode\)$/m);
    // Nothing left behind: none of the example's namespaces exists.
    const names = /^namespaces: (.*)$/m.exec(r.out)![1]!.split(' ');
    const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
    for (const n of names) expect(list).not.toContain(n);
  });
});
