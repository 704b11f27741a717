/**
 * Runs examples/mobile-node.ts as a child process (`npx tsx examples/mobile-node.ts`) in both
 * modes and checks the exit code and its key lines: every handover printed with its gap, the
 * binding cache after each step, the summary (bytes intact, resets 0), a clean teardown. The
 * namespace mode needs root. No timing is asserted: the gaps are printed, not judged.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { isRoot, netnsAvailable, NETNS_SKIP_REASON } from '../support/netns.ts';
import { REPO_ROOT } from '../../examples/site-topology.ts';

function runExample(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync('npx', ['tsx', 'examples/mobile-node.ts', ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 150_000,
    env: { ...process.env, NO_COLOR: '1' },
  });
  return { code: r.status, out: r.stdout ?? '', err: r.stderr ?? '' };
}

const show = (r: { code: number | null; out: string; err: string }): string => `exit ${r.code}\n--- stdout\n${r.out}\n--- stderr\n${r.err}`;

const MOVES = [
  ['wifi', 'cellular'],
  ['cellular', 'foreign2'],
  ['foreign2', 'wifi'],
  ['wifi', 'home'],
];

function expectSteps(out: string): void {
  for (const [from, to] of MOVES) {
    expect(out).toMatch(new RegExp(`^handover ${from} -> ${to}: \\d+ ms \\(noticed .*\\); the stream (stalled \\d+ ms|did not stall .*)$`, 'm'));
  }
  // the binding cache after each step: the care-of of each network, then none
  const caches = out.split('\n').filter((l) => /^ {4}10\.77\.0\.5 /.test(l));
  expect(caches).toHaveLength(4); // registered on wifi, then cellular, foreign2, wifi
  expect(out).toMatch(/^ {4}\(no bindings\)$/m);
  expect(out).toMatch(/^summary: 4 handovers, gaps \d+ \/ \d+ \/ \d+ \/ \d+ ms \(median \d+ ms, max \d+ ms\); stream [\d.]+ MB sent, [\d.]+ MB received, every byte intact \(sha256 [0-9a-f]{16}\.\.\.\), resets 0/m);
}

describe('examples/mobile-node.ts', () => {
  it('--userspace: home agent and mobile node in process, the stream survives four moves', { timeout: 180_000 }, () => {
    const r = runExample(['--userspace']);
    expect(r.code, show(r)).toBe(0);
    expect(r.out).toMatch(/^mode: userspace, in-process \(--userspace given\)/m);
    expectSteps(r.out);
    expect(r.out).toMatch(/^ {4}10\.77\.0\.5 +127\.0\.2\.10:\d+ .* bicasting to 127\.0\.1\.10:\d+ \[laptop\]$/m);
    expect(r.out).toMatch(/^stopped: sockets closed, every pool slot back$/m);
    expect(r.out).toMatch(/^OK: mobile node works \(userspace mode\)$/m);
  });

  it.runIf(!isRoot())('no arguments, not root: runs the userspace mode and says why', { timeout: 180_000 }, () => {
    const r = runExample([]);
    expect(r.code, show(r)).toBe(0);
    expect(r.out).toMatch(/^mode: userspace, in-process \(not root\)/m);
    expect(r.out).toMatch(/^OK: mobile node works \(userspace mode\)$/m);
  });

  it('a bad argument: usage, exit 2', () => {
    const r = runExample(['--bogus']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^usage: tsx examples\/mobile-node\.ts \[--userspace\]$/m);
  });

  it('no arguments, as root: namespaces, ipferry up on home agent and node, a TCP stream across four moves, clean teardown', { timeout: 180_000 }, (ctx) => {
    if (!netnsAvailable()) {
      ctx.skip(`namespace mode of the example: ${NETNS_SKIP_REASON}`);
      return;
    }
    const r = runExample([]);
    expect(r.code, show(r)).toBe(0);
    expect(r.out).toMatch(/^mode: network namespaces \(root, \/dev\/net\/tun present\)/m);
    expectSteps(r.out);
    // foreign2 is behind a NAT: the home agent sees the router's address and says so
    expect(r.out).toMatch(/^ {4}10\.77\.0\.5 +192\.0\.2\.1:\d+ .*NAT \(claims 100\.64\.2\.10:6080\)/m);
    expect(r.out).toMatch(/^endpoints stopped \(SIGTERM\): exit 0, ferry0 and its routes gone$/m);
    expect(r.out).toMatch(/^torn down: no namespace left$/m);
    expect(r.out).toMatch(/^OK: mobile node works \(namespaces mode\)$/m);
    const names = /^namespaces: (.*)$/m.exec(r.out)![1]!.split(' ');
    const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
    for (const n of names) expect(list).not.toContain(n);
  });
});
