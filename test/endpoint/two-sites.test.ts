import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/config.ts';
import { Endpoint } from '../../src/endpoint/endpoint.ts';
import { UserspaceHost } from '../../src/endpoint/userspace-host.ts';
import { DropReason } from '../../src/base/drop-reason.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function port(): number {
  return 20000 + Math.floor(Math.random() * 20000);
}

async function twoSites(extraA: Record<string, unknown> = {}, extraB: Record<string, unknown> = {}) {
  const pa = port();
  const pb = pa + 1;
  const hostA = new UserspaceHost({ addresses: ['192.168.10.10', 'fd00:10::10'], name: 'a' });
  const hostB = new UserspaceHost({ addresses: ['192.168.20.20', 'fd00:20::20'], name: 'b' });
  const a = new Endpoint(
    parseConfig({
      interface: { name: 'ferryA', address: ['10.0.0.1/30', 'fd00::1/64'], mtu: 1400 },
      listen: `127.0.0.1:${pa}`,
      stack: { address: ['10.0.0.254', 'fd00::254'] },
      peers: [{ name: 'shanghai', endpoint: `127.0.0.1:${pb}`, routes: ['192.168.20.0/24', 'fd00:20::/64'], keepalive: 1 }],
      ...extraA,
    }),
    { device: hostA.link },
  );
  const b = new Endpoint(
    parseConfig({
      interface: { name: 'ferryB', address: ['10.0.0.2/30', 'fd00::2/64'], mtu: 1400 },
      listen: `127.0.0.1:${pb}`,
      stack: { address: ['10.0.1.254'] },
      peers: [{ name: 'beijing', endpoint: `127.0.0.1:${pa}`, routes: ['192.168.10.0/24', 'fd00:10::/64', '10.0.0.254/32', 'fd00::254/128'], keepalive: 1 }],
      ...extraB,
    }),
    { device: hostB.link },
  );
  await a.start();
  await b.start();
  cleanups.push(async () => {
    await a.stop();
    await b.stop();
    await hostA.close();
    await hostB.close();
    expect(a.pools.live).toBe(0);
    expect(b.pools.live).toBe(0);
  });
  return { a, b, hostA, hostB };
}

describe('two sites in process (memory devices, UDP on loopback)', () => {
  it('pings across v4 and v6, small and fragmented', async () => {
    const { hostA, a, b } = await twoSites();
    expect(await hostA.ping('192.168.20.20')).toBeGreaterThan(0);
    expect(await hostA.ping('fd00:20::20')).toBeGreaterThan(0);
    expect(await hostA.ping('192.168.20.20', 4000)).toBeGreaterThan(0);
    expect(await hostA.ping('fd00:20::20', 4000)).toBeGreaterThan(0);
    expect(a.snapshot().peers[0]!.txPackets).toBeGreaterThan(0);
    expect(a.stats().udpTx.packets).toBeGreaterThan(0);
    // Every slot comes back while running (sends in flight finish within a few event-loop turns).
    for (let t = 0; t < 100 && (a.stats().poolLive !== 0 || b.stats().poolLive !== 0); t++) await new Promise((r) => setTimeout(r, 10));
    expect(a.stats().poolLive).toBe(0);
    expect(b.stats().poolLive).toBe(0);
    expect(b.snapshot().peers[0]!.up).toBe(true);
  });

  it('answers pings to the endpoint stack address, up to 65000 bytes', async () => {
    const { hostA, hostB } = await twoSites();
    for (const size of [56, 1372, 1373, 4000, 20000, 65000]) {
      expect(await hostA.ping('10.0.0.254', size)).toBeGreaterThan(0);
      expect(await hostB.ping('10.0.0.254', size)).toBeGreaterThan(0);
    }
    expect(await hostA.ping('fd00::254', 4000)).toBeGreaterThan(0);
  });

  it('emits typed peer-up and drop events', async () => {
    const { a, hostA } = await twoSites();
    const ups: string[] = [];
    const drops: string[] = [];
    a.on('peer-up', (p) => ups.push(p.name));
    a.on('drop', (d) => drops.push(`${d.reason}:${d.count}`));
    a.peers[0]!.up = false; // the next keepalive brings it up again
    await expect(hostA.ping('172.16.0.1', 56, 300)).rejects.toThrow(/no reply/);
    for (let t = 0; t < 40 && (ups.length === 0 || drops.length === 0); t++) await new Promise((r) => setTimeout(r, 100));
    expect(ups).toContain('shanghai');
    expect(drops.some((d) => d.startsWith('NoRoute:'))).toBe(true);
  });

  it('carries UDP between userspace stacks', async () => {
    const { hostA, hostB } = await twoSites();
    const rx = hostB.stack.udpBind(9000);
    const got: Buffer[] = [];
    rx.on('message', (d: Buffer) => got.push(d));
    const tx = hostA.stack.udpBind(0);
    for (let i = 0; i < 50; i++) tx.send(Buffer.alloc(1000, i), 9000, '192.168.20.20');
    tx.send(Buffer.alloc(30000, 7), 9000, '192.168.20.20');
    for (let t = 0; t < 100 && got.length < 51; t++) await new Promise((r) => setTimeout(r, 20));
    expect(got.length).toBe(51);
    expect(got[50]!.length).toBe(30000);
  });
});

describe('the endpoint stack under a flood', () => {
  it('rate-limits its port-unreachable errors with the endpoint ICMP bucket', async () => {
    const { hostA, a } = await twoSites({ icmpRateLimit: { rate: 1, burst: 3 } });
    const tx = hostA.stack.udpBind(0);
    for (let i = 0; i < 50; i++) tx.send(Buffer.from('x'), 9, '10.0.0.254'); // closed port
    for (let t = 0; t < 50 && a.stack.errorsSent + a.drops.get(DropReason.IcmpRateLimited) < 50; t++) await new Promise((r) => setTimeout(r, 20));
    expect(a.stack.errorsSent).toBeLessThanOrEqual(4);
    expect(a.drops.get(DropReason.IcmpRateLimited)).toBeGreaterThanOrEqual(46);
  });
});
