/**
 * The data-plane boundary with the worker data plane (the fast path), observed from outside:
 * dataplane-worker-child.ts runs an Endpoint on a kernel TUN inside a namespace made here, with
 * plain UDP sockets as the peer and the namespace's kernel behind the TUN, and does every
 * boundary operation. The same file runs on the portable path from test/portable/ (then the
 * in-thread data plane answers the same operations). Root only.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createNetns, netnsAvailable, NETNS_SKIP_REASON } from '../support/netns.ts';
import { expectedDataPath } from '../support/data-path.ts';

const skip = !netnsAvailable() ? NETNS_SKIP_REASON : !existsSync('/dev/net/tun') ? 'needs /dev/net/tun' : null;

describe.skipIf(skip !== null)('data-plane boundary on a kernel TUN (the data path this machine runs)', () => {
  it('every operation takes effect: TUN <-> peer, own stack, move, send control, punt, routes, peers, bicast, route pages, send errors, roaming; slots back after stop', () => {
    const ns = createNetns('ipf-dpw');
    try {
      ns.exec(['ip', 'link', 'set', 'lo', 'up']);
      const child = execFileSync('ip', ['netns', 'exec', ns.name, process.execPath, '--import', 'tsx', new URL('./dataplane-worker-child.ts', import.meta.url).pathname, 'ferryW'], {
        encoding: 'utf8',
        timeout: 90_000,
        env: process.env,
      });
      const r = JSON.parse(child.trim().split('\n').pop()!) as Record<string, any>;
      const log = (r.log as string[]).join('\n');
      expect(r.path, log).toMatch(expectedDataPath());
      expect(r.tunToPeer, log).toBe(true);
      expect(r.peerToTun, log).toBe(true);
      expect(r.stackEcho, log).toBe(true);
      expect(r.moved).toBe(true);
      expect(r.sentControl).toBe(true);
      expect(r.control).toEqual([
        { peer: -1, port: r.controlPorts.other, len: r.controlPorts.len },
        { peer: 0, port: r.controlPorts.peer, len: r.controlPorts.len },
      ]);
      expect(r.unknownSourceLines, log).toBe(1);
      expect(r.route).toEqual({ blackholed: 0, drops: 1, afterRemove: true });
      expect(r.peers.whileRemoved).toBe(0);
      expect(r.peers.noRoute).toBeGreaterThanOrEqual(1);
      expect(r.peers.index).toBe(0);
      expect(r.peers.afterAdd).toBe(true);
      expect(r.peers.names).toEqual(['peer2']);
      expect(r.bicast).toEqual({ original: true, copy: true });
      expect(r.snapshot.dataplane).toBe(r.path);
      expect(r.snapshot.tunRx).toBeGreaterThan(0);
      expect(r.snapshot.udpRx).toBeGreaterThan(0);
      expect(r.snapshot.routes).toBeGreaterThan(0);
      expect(r.routePages.paged).toEqual(r.routePages.all);
      expect(r.routePages.pages).toBeGreaterThan(1);
      // a refused send: counted (ENETUNREACH is 'other'), logged once for the peer however many
      expect(r.sendErrors.other, log).toBeGreaterThanOrEqual(2);
      expect(r.sendErrors.lines, log).toBe(1);
      expect(r.poolLiveAfter).toBe(0);
      expect(r.workerPoolLiveAfter).toBe(0);
      // roaming: a replayed keepalive from elsewhere moves nothing; the peer's own new one does
      expect(r.roaming.afterReplay, (r.logK as string[]).join('\n')).toBe(r.roaming.home);
      expect(r.roaming.afterRoam, (r.logK as string[]).join('\n')).toBe(r.roaming.roamer);
    } finally {
      ns.destroy();
    }
  }, 120_000);
});
