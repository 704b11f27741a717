/**
 * Seed 002 / 003: routes into the tunnel that would capture the tunnel's own underlay (wg-quick's
 * 0.0.0.0/1 + 128.0.0.0/1) must not make a routing loop. gwB's endpoint address 198.51.100.20 is
 * one router hop away from gwA (via 203.0.113.20), so without a pinned host route the kernel on
 * gwA would send the encapsulated packets into the tunnel itself. Needs root.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EndpointProcess, SITE, SiteTopology, siteConfigs, writeSiteConfigs } from '../../examples/site-topology.ts';
import { netnsAvailable, NETNS_SKIP_REASON } from '../support/netns.ts';

const skip = !netnsAvailable() ? NETNS_SKIP_REASON : !existsSync('/dev/net/tun') ? 'needs /dev/net/tun' : null;
const REMOTE = '198.51.100.20';

describe.skipIf(skip !== null)('underlay protection: routes that would capture the peer endpoint', () => {
  let topo: SiteTopology;
  let dir: string;
  let epA: EndpointProcess;
  let epB: EndpointProcess;

  beforeAll(async () => {
    topo = new SiteTopology(`up${process.pid}${Math.random().toString(36).slice(2, 5)}`).build();
    topo.warmUp();
    // gwB also owns 198.51.100.20, which gwA reaches through its default route via 203.0.113.20.
    topo.exec(topo.gwB, ['ip', 'addr', 'add', `${REMOTE}/32`, 'dev', 'lo']);
    topo.exec(topo.gwA, ['ip', 'route', 'add', 'default', 'via', SITE.gwB.wan4]);
    dir = mkdtempSync(join(tmpdir(), 'ipferry-underlay-'));
    const cfg = siteConfigs({ underlay: 4, controlDir: dir, keepalive: 1 }) as { a: any; b: any };
    cfg.a.peers[0].endpoint = `${REMOTE}:6080`;
    cfg.a.routes = ['0.0.0.0/1 dev shanghai', '128.0.0.0/1 dev shanghai'];
    cfg.b.listen = `${REMOTE}:6080`; // replies must come from the address gwA knows
    const paths = writeSiteConfigs(dir, cfg);
    epA = new EndpointProcess(topo, topo.gwA, paths.a, join(dir, 'a.sock'));
    epB = new EndpointProcess(topo, topo.gwB, paths.b, join(dir, 'b.sock'));
    await Promise.all([epA.ready(), epB.ready()]);
  }, 90_000);

  afterAll(async () => {
    await epA?.stop();
    await epB?.stop();
    topo?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('pins the endpoint with a host route, warns, and the tunnel still carries traffic', async () => {
    const routes = topo.exec(topo.gwA, ['ip', 'route', 'show']);
    expect(routes).toMatch(/0\.0\.0\.0\/1 dev ferry0/);
    expect(routes).toMatch(/128\.0\.0\.0\/1 dev ferry0/);
    expect(routes).toMatch(new RegExp(`${REMOTE.replace(/\./g, '\\.')} via ${SITE.gwB.wan4.replace(/\./g, '\\.')} dev wan0`));
    expect(epA.output).toMatch(/warning: .* would capture peer endpoint 198\.51\.100\.20; keeping it reachable/);
    // The underlay packet to the peer leaves on wan0, not into the tunnel.
    expect(topo.exec(topo.gwA, ['ip', 'route', 'get', REMOTE])).toMatch(/dev wan0/);
    const r = topo.run(topo.hostA, ['ping', '-c', '3', '-i', '0.2', '-W', '2', SITE.hostB.v4]);
    expect(r.stdout).toMatch(/3 received/);
  });

  it('removes the host route and the captured routes on stop', async () => {
    const st = await epA.stop();
    expect(st.code).toBe(0);
    const routes = topo.exec(topo.gwA, ['ip', 'route', 'show']);
    expect(routes).not.toMatch(/ferry0/);
    expect(routes).not.toContain(REMOTE);
    // The operator's own default route is still there.
    expect(routes).toMatch(/default via 203\.0\.113\.20 dev wan0/);
  });
});
