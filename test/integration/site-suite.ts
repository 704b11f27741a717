/**
 * The site-to-site integration suite with the Linux kernel as the peer on both ends: the seed's
 * topology in namespaces (examples/site-topology.ts), `ipferry up` on each gateway, traffic from
 * the hosts. One call per underlay family; each test file builds its own namespaces (unique names),
 * so files run in parallel. Needs root; skipped with a message otherwise.
 *
 * Config: TUN MTU 1400, path MTU toward the peer 1300 (so the kernel sends packets between 1301
 * and 1400 bytes into the TUN and the endpoint must answer them), stack addresses 10.0.0.254 /
 * fd00::254 on gwA and 10.0.0.253 / fd00::253 on gwB.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EndpointProcess,
  haveCommand,
  SITE,
  SiteTopology,
  STACK,
  siteConfigs,
  sleep,
  wanHost,
  writeSiteConfigs,
} from '../../examples/site-topology.ts';
import { DEFAULT_PORT } from '../../src/transport/udp-transport.ts';
import { DropReason } from '../../src/base/drop-reason.ts';
import { checksum } from '../../src/wire/checksum.ts';
import { Ipv4Packet } from '../../src/wire/ipv4.ts';
import { netnsAvailable, NETNS_SKIP_REASON } from '../support/netns.ts';
import { expectedDataPath } from '../support/data-path.ts';

const PEER_MTU = 1300;

/** Why the suite cannot run here, or null. */
export function siteSuiteSkipReason(): string | null {
  if (!netnsAvailable()) return NETNS_SKIP_REASON;
  if (!existsSync('/dev/net/tun')) return 'needs /dev/net/tun';
  if (!haveCommand('ping')) return 'needs ping (iputils-ping)';
  return null;
}

interface PingOutcome {
  ok: boolean;
  rtt: number | null;
  text: string;
}

/** Single pings (-c 1) until one is answered, at most `attempts` (IPv6 PMTU discovery may eat a few). */
function pingUntil(topo: SiteTopology, ns: string, addr: string, size: number, attempts = 4, extra: string[] = []): PingOutcome {
  let text = '';
  for (let i = 0; i < attempts; i++) {
    const r = topo.run(ns, ['ping', '-c', '1', '-W', '2', '-s', String(size), ...extra, addr], 20_000);
    text += r.stdout + r.stderr;
    if (r.code === 0) {
      const m = /time=([\d.]+) ms/.exec(r.stdout);
      return { ok: true, rtt: m ? Number(m[1]) : null, text };
    }
  }
  return { ok: false, rtt: null, text };
}

function kernelRoutesThrough(topo: SiteTopology, ns: string, dev: string): string {
  const v4 = topo.run(ns, ['ip', 'route', 'show', 'table', 'all']).stdout;
  const v6 = topo.run(ns, ['ip', '-6', 'route', 'show', 'table', 'all']).stdout;
  return [...v4.split('\n'), ...v6.split('\n')].filter((l) => l.includes(`dev ${dev}`)).join('\n');
}

/** A valid IPv4/UDP packet (UDP checksum 0 = none, allowed over IPv4). */
function ipv4Udp(src: string, dst: string, sport: number, dport: number, payload: Buffer): Buffer {
  const p = Buffer.alloc(28 + payload.length);
  p[0] = 0x45;
  p.writeUInt16BE(p.length, 2);
  p.writeUInt16BE(0x1234, 4);
  p[8] = 64;
  p[9] = 17;
  Buffer.from(src.split('.').map(Number)).copy(p, 12);
  Buffer.from(dst.split('.').map(Number)).copy(p, 16);
  p.writeUInt16BE(checksum(p, 0, 20), 10);
  p.writeUInt16BE(sport, 20);
  p.writeUInt16BE(dport, 22);
  p.writeUInt16BE(8 + payload.length, 24);
  payload.copy(p, 28);
  return p;
}

export function siteSuite(underlay: 4 | 6): void {
  const title = `site to site, Linux kernel on both ends, IPv${underlay} underlay`;
  const skip = siteSuiteSkipReason();
  if (skip !== null) {
    describe(title, () => {
      it('is skipped', (ctx) => {
        console.log(`skipping "${title}": ${skip}`);
        ctx.skip(skip);
      });
    });
    return;
  }

  describe(title, () => {
    let topo: SiteTopology;
    let dir: string;
    let paths: { a: string; b: string };
    let epA: EndpointProcess;
    let epB: EndpointProcess;
    const port = DEFAULT_PORT;
    const endpoints = (): EndpointProcess[] => [epA, epB].filter(Boolean);

    beforeAll(async () => {
      topo = new SiteTopology(`${underlay}${process.pid}${Math.random().toString(36).slice(2, 6)}`);
      topo.build();
      dir = mkdtempSync(join(tmpdir(), `ipferry-it${underlay}-`));
      topo.warmUp();
      paths = writeSiteConfigs(dir, siteConfigs({ underlay, port, peerMtu: PEER_MTU, controlDir: dir, keepalive: 1 }));
      epA = new EndpointProcess(topo, topo.gwA, paths.a, join(dir, 'a.sock'));
      epB = new EndpointProcess(topo, topo.gwB, paths.b, join(dir, 'b.sock'));
      await Promise.all([epA.ready(), epB.ready()]);
    }, 90_000);

    afterAll(async () => {
      try {
        for (const e of endpoints()) if (e.running) await e.stop(10_000);
      } finally {
        topo?.destroy();
        if (dir) rmSync(dir, { recursive: true, force: true });
      }
      expect(topo.leftovers(), 'namespaces left behind').toEqual([]);
    }, 60_000);

    // First, while no PMTU is cached anywhere: the endpoint itself must answer a DF packet above the peer's MTU.
    it(`ping -M do above the peer's MTU gets "Frag needed" / "Packet too big" with mtu ${PEER_MTU}`, async () => {
      // gwB's LAN addresses: across the tunnel, never pinged before (no cached path MTU on hostA).
      const r4 = topo.run(topo.hostA, ['ping', '-c', '1', '-W', '2', '-M', 'do', '-s', '1350', SITE.gwB.lan4]);
      expect(r4.stdout + r4.stderr).toContain(`From ${STACK.a.v4} icmp_seq=1 Frag needed and DF set (mtu = ${PEER_MTU})`);
      const r6 = topo.run(topo.hostA, ['ping', '-c', '1', '-W', '2', '-M', 'do', '-s', '1350', SITE.gwB.lan6]);
      expect(r6.stdout + r6.stderr).toContain(`From ${STACK.a.v6} icmp_seq=1 Packet too big: mtu=${PEER_MTU}`);
      // Below the peer MTU the same DF ping goes through.
      expect(pingUntil(topo, topo.hostA, SITE.gwB.lan4, PEER_MTU - 28, 2, ['-M', 'do']).ok).toBe(true);
      const drops = (await epA.show('stats')).stats.drops as Record<string, number>;
      expect(drops.PacketTooBig).toBeGreaterThanOrEqual(2);
    });

    it('runs the expected data path and says which in show and in its start line', async () => {
      const want = expectedDataPath();
      for (const e of [epA, epB]) {
        const path = (await e.show('all')).dataplane as string;
        expect(path).toMatch(want);
        expect(e.output).toContain(`data path: ${path}`);
      }
    });

    it('pings host to host across the tunnel, v4 and v6', async () => {
      for (const addr of [SITE.hostB.v4, SITE.hostB.v6]) {
        const r = topo.run(topo.hostA, ['ping', '-c', '3', '-i', '0.2', '-W', '2', addr], 20_000);
        expect(r.code, r.stdout + r.stderr).toBe(0);
        expect(r.stdout).toContain('3 packets transmitted, 3 received');
      }
      for (const addr of [SITE.hostA.v4, SITE.hostA.v6]) {
        const r = topo.run(topo.hostB, ['ping', '-c', '2', '-i', '0.2', '-W', '2', addr], 20_000);
        expect(r.stdout).toContain('2 packets transmitted, 2 received');
      }
      const peers = (await epA.show('peers')).peers as { name: string; up: boolean; rxPackets: number }[];
      expect(peers[0]).toMatchObject({ name: 'shanghai', up: true });
      expect(peers[0]!.rxPackets).toBeGreaterThan(0);
    });

    const SIZES = [56, 1372, 1373, 4000, 20000, 65000];
    it(`pings of ${SIZES.join(', ')} bytes to gwA's stack address, from hostA and from hostB across the tunnel`, async () => {
      const rtts: string[] = [];
      const targets: [string, string, string][] = [
        ['hostA', topo.hostA, STACK.a.v4],
        ['hostA', topo.hostA, STACK.a.v6],
        ['hostB', topo.hostB, STACK.a.v4],
        ['hostB', topo.hostB, STACK.a.v6],
      ];
      for (const [who, ns, addr] of targets) {
        for (const size of SIZES) {
          const r = pingUntil(topo, ns, addr, size);
          expect(r.ok, `${who} -> ${addr} ${size} bytes:\n${r.text}`).toBe(true);
          rtts.push(`${who}->${addr} ${size}: ${r.rtt} ms`);
        }
      }
      const before = (await epA.show('stats')).stats.extra as Record<string, number>;
      expect(before.echoReplies).toBeGreaterThanOrEqual(SIZES.length * targets.length);
      console.log(`[IPv${underlay} underlay] stack ping RTTs: ${rtts.join(', ')}`);
    });

    it.runIf(haveCommand('iperf3'))('iperf3 TCP host to host completes and reports a throughput', async () => {
      const server = topo.spawn(topo.hostB, ['iperf3', '-s', '-1', '-B', SITE.hostB.v4]);
      try {
        let j: { error?: string; end?: { sum_received?: { bits_per_second: number; bytes: number } } } = {};
        for (let attempt = 0; attempt < 30; attempt++) {
          const r = topo.run(topo.hostA, ['iperf3', '-c', SITE.hostB.v4, '-t', '2', '-J'], 30_000);
          try {
            j = JSON.parse(r.stdout) as typeof j;
          } catch {
            j = { error: (r.stdout + r.stderr).slice(0, 400) };
          }
          if (!/refused/i.test(j.error ?? '')) break;
          await sleep(100);
        }
        expect(j.error).toBeUndefined();
        expect(j.end?.sum_received?.bytes).toBeGreaterThan(0);
        expect(j.end?.sum_received?.bits_per_second).toBeGreaterThan(0);
        console.log(`[IPv${underlay} underlay] iperf3 TCP hostA -> hostB: ${(j.end!.sum_received!.bits_per_second / 1e6).toFixed(0)} Mbit/s`);
      } finally {
        if (server.exitCode === null) server.kill('SIGKILL');
      }
    });

    it('a datagram from a non-peer port is not delivered and counts as UnknownPeer', async () => {
      // hostA listens; a normal datagram from hostB through the tunnel proves the listener works.
      const listener = topo.spawn(topo.hostA, [
        process.execPath,
        '-e',
        `const s=require('dgram').createSocket('udp4');s.on('message',m=>console.log('got '+m));s.bind(9999,()=>console.log('bound'))`,
      ]);
      let got = '';
      listener.stdout?.on('data', (d: Buffer) => (got += d.toString()));
      try {
        for (let i = 0; i < 100 && !got.includes('bound'); i++) await sleep(50);
        expect(got).toContain('bound');
        const fam = underlay === 4 ? 'udp4' : 'udp6';
        const send = (ns: string, script: string): void => {
          const r = topo.run(ns, [process.execPath, '-e', script], 15_000);
          expect(r.code, r.stderr).toBe(0);
        };
        send(topo.hostB, `const s=require('dgram').createSocket('udp4');s.send('via-tunnel',9999,'${SITE.hostA.v4}',()=>s.close())`);
        for (let i = 0; i < 60 && !got.includes('got via-tunnel'); i++) await sleep(50);
        expect(got).toContain('got via-tunnel');

        const unknownBefore = ((await epA.show('stats')).stats.drops as Record<string, number>).UnknownPeer ?? 0;
        // The same kind of inner packet, sent straight to gwA's endpoint from gwB's address but
        // from port 7777: no peer's endpoint.
        const inner = ipv4Udp(SITE.hostB.v4, SITE.hostA.v4, 5555, 9999, Buffer.from('injected'));
        expect(new Ipv4Packet(inner, 0, inner.length).validate()).toBe(DropReason.None); // would pass the pipeline's checks
        const gwA = wanHost('gwA', underlay).replace(/[[\]]/g, '');
        const gwB = wanHost('gwB', underlay).replace(/[[\]]/g, '');
        send(
          topo.gwB,
          `const s=require('dgram').createSocket('${fam}');s.bind(7777,'${gwB}',()=>{let n=0;const go=()=>s.send(Buffer.from('${inner.toString('hex')}','hex'),${port},'${gwA}',()=>{if(++n<3)go();else s.close()});go()})`,
        );
        let unknownAfter = unknownBefore;
        for (let i = 0; i < 20 && unknownAfter < unknownBefore + 3; i++) {
          await sleep(100);
          unknownAfter = ((await epA.show('stats')).stats.drops as Record<string, number>).UnknownPeer ?? 0;
        }
        expect(unknownAfter - unknownBefore).toBe(3);
        await sleep(300);
        expect(got).not.toContain('injected');
      } finally {
        if (listener.exitCode === null) listener.kill('SIGKILL');
      }
    });

    it('restarting one endpoint: SIGTERM exits 0 and cleans up, traffic resumes within 2 s of it being up', async () => {
      const st = await epB.stop();
      expect(st, epB.output).toEqual({ code: 0, signal: null });
      expect(topo.run(topo.gwB, ['ip', 'link', 'show', 'ferry0']).code).not.toBe(0);
      expect(kernelRoutesThrough(topo, topo.gwB, 'ferry0')).toBe('');
      // Down: nothing gets across.
      expect(topo.run(topo.hostA, ['ping', '-c', '1', '-W', '1', SITE.hostB.v4]).code).not.toBe(0);

      epB = new EndpointProcess(topo, topo.gwB, paths.b, join(dir, 'b.sock'));
      await epB.ready();
      const upAt = Date.now();
      let resumedAfter: number | null = null;
      let tries = 0;
      while (Date.now() - upAt < 2000 && resumedAfter === null) {
        tries++;
        const r = topo.run(topo.hostA, ['ping', '-c', '1', '-W', '1', SITE.hostB.v4], 10_000);
        if (r.code === 0) resumedAfter = Date.now() - upAt;
      }
      expect(resumedAfter, `no ping answered within 2 s of the restarted endpoint being up (${tries} tries)`).not.toBeNull();
      console.log(`[IPv${underlay} underlay] traffic resumed ${resumedAfter} ms after the restarted endpoint was up (${tries} ping(s))`);
      expect(pingUntil(topo, topo.hostA, SITE.hostB.v6, 56, 3).ok).toBe(true);
    });

    it('SIGTERM: exit 0, kernel routes removed, TUN gone, control socket removed', async () => {
      for (const [e, ns, sock] of [
        [epA, topo.gwA, join(dir, 'a.sock')],
        [epB, topo.gwB, join(dir, 'b.sock')],
      ] as const) {
        // Routes were there while it ran.
        expect(kernelRoutesThrough(topo, ns, 'ferry0')).toContain(e === epA ? SITE.siteB.v4 : SITE.siteA.v4);
        const st = await e.stop();
        expect(st, e.output).toEqual({ code: 0, signal: null });
        expect(topo.run(ns, ['ip', 'link', 'show', 'ferry0']).code).not.toBe(0);
        expect(kernelRoutesThrough(topo, ns, 'ferry0')).toBe('');
        expect(existsSync(sock)).toBe(false);
        const left = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout.trim();
        expect(left, `processes left in ${ns}`).toBe('');
      }
    });
  });
}
