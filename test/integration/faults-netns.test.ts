/**
 * Faults at the CLI level (issue 12 point 7), `ipferry up` in namespaces. Root only.
 *
 * - SIGKILL, then start again: the killed endpoint could not remove its routes; its TUN went
 *   with the process and took the tunnel routes along, but the pinned underlay host route stays.
 *   The next start removes it (our route protocol mark, kernel-routes.ts) and a clean stop
 *   leaves no route with the mark behind.
 * - The TUN deleted under a running endpoint (`ip link del ferry0`): the choice is a clean exit
 *   (one error line naming the cause, routes and control socket removed, exit code 1 so that a
 *   supervisor such as systemd's Restart=on-failure starts it again with a new TUN).
 *
 * The topology is underlay-protection's: gwA reaches gwB's endpoint 198.51.100.20 through its
 * default route, and A's tunnel routes 0.0.0.0/1 + 128.0.0.0/1 would capture it, so A pins it.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EndpointProcess, SITE, SiteTopology, siteConfigs, sleep, writeSiteConfigs } from '../../examples/site-topology.ts';
import { ROUTE_PROTO } from '../../src/endpoint/kernel-routes.ts';
import { netnsAvailable, NETNS_SKIP_REASON } from '../support/netns.ts';

const skip = !netnsAvailable() ? NETNS_SKIP_REASON : !existsSync('/dev/net/tun') ? 'needs /dev/net/tun' : null;
const REMOTE = '198.51.100.20';
const PIN = `${REMOTE} via ${SITE.gwB.wan4} dev wan0`;

/** Wait (bounded) until the endpoint's output matches. */
async function waitFor(ep: EndpointProcess, re: RegExp, ms = 30_000): Promise<void> {
  const t0 = Date.now();
  while (!re.test(ep.output)) {
    if (!ep.running) throw new Error(`endpoint exited before ${re}:\n${ep.output}`);
    if (Date.now() - t0 > ms) throw new Error(`timeout waiting for ${re}:\n${ep.output}`);
    await sleep(50);
  }
}

describe.skipIf(skip !== null)('faults: SIGKILL leaves a pinned route, a deleted TUN stops the endpoint', () => {
  let topo: SiteTopology;
  let dir: string;
  let configA: string;
  const sock = () => join(dir, 'a.sock');
  const ours = (): string => topo.exec(topo.gwA, ['ip', 'route', 'show', 'table', 'all', 'proto', String(ROUTE_PROTO)]);
  const running: EndpointProcess[] = [];
  const startA = (): EndpointProcess => {
    const ep = new EndpointProcess(topo, topo.gwA, configA, sock());
    running.push(ep);
    return ep;
  };

  beforeAll(() => {
    topo = new SiteTopology(`ft${process.pid}${Math.random().toString(36).slice(2, 5)}`).build();
    topo.exec(topo.gwB, ['ip', 'addr', 'add', `${REMOTE}/32`, 'dev', 'lo']);
    topo.exec(topo.gwA, ['ip', 'route', 'add', 'default', 'via', SITE.gwB.wan4]);
    dir = mkdtempSync(join(tmpdir(), 'ipferry-faults-'));
    const cfg = siteConfigs({ underlay: 4, controlDir: dir, keepalive: 1 }) as { a: any; b: any };
    cfg.a.peers[0].endpoint = `${REMOTE}:6080`;
    cfg.a.routes = ['0.0.0.0/1 dev shanghai', '128.0.0.0/1 dev shanghai'];
    configA = writeSiteConfigs(dir, cfg).a;
  }, 60_000);

  afterAll(async () => {
    for (const ep of running) await ep.stop();
    topo?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('SIGKILL then start: the stale pinned route is removed at start, and a clean stop leaves none of ours', async () => {
    const first = startA();
    await waitFor(first, /control socket \//);
    expect(ours()).toContain(PIN);
    expect(ours()).toMatch(/0\.0\.0\.0\/1 dev ferry0/);
    first.child.kill('SIGKILL');
    await first.exited;
    // what a SIGKILL leaves: the pin (the tunnel routes went with the TUN)
    expect(ours().trim()).toBe(`${PIN} `.trim());

    const second = startA();
    await waitFor(second, /control socket \//);
    expect(second.output).toContain(`removed stale route ${PIN} proto ${ROUTE_PROTO} (left by an endpoint that did not stop cleanly)`);
    expect(second.output).not.toMatch(/already exists/);
    expect(second.output).toContain(`removed stale control socket ${sock()}`);
    // exactly one pin again, installed by this endpoint
    expect(ours().split('\n').filter((l) => l.startsWith(REMOTE))).toHaveLength(1);
    const st = await second.stop();
    expect(st.code).toBe(0);
    expect(ours()).toBe('');
  }, 120_000);

  it('TUN deleted under a running endpoint: one error line, routes and socket removed, exit code 1', async () => {
    const ep = startA();
    await waitFor(ep, /control socket \//);
    expect(ours()).toContain(PIN);
    topo.exec(topo.gwA, ['ip', 'link', 'del', 'ferry0']);
    const st = await Promise.race([ep.exited, sleep(20_000).then(() => null)]);
    expect(st).toEqual({ code: 1, signal: null });
    const errors = ep.output.split('\n').filter((l) => / (error|fatal) /.test(l));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(
      /error ferry0: device ferry0 went down: TUN ferry0: interface ferry0 was deleted; stopping with exit code 1 \(a restart creates the TUN again, with its addresses and routes\)$/,
    );
    expect(ep.output).not.toMatch(/fatal|Error:|\n\s+at /);
    expect(ep.output).toMatch(/shutdown complete\n$/);
    expect(ours()).toBe('');
    expect(existsSync(sock())).toBe(false);
  }, 120_000);
});
