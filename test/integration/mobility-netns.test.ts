/**
 * Mobility with kernel TUNs in network namespaces (root; skipped with a reason otherwise), on the
 * testbed of examples/mobile-topology.ts: `ipferry up` as home agent and as mobile node, a kernel
 * TCP stream from the correspondent to the node's home address.
 *
 *  - a checksummed TCP byte stream survives 20 underlay switches: 0 resets, every byte intact
 *    (the handover gaps are measured and printed, not asserted: bench/mobility.bench.ts);
 *  - forged, bit-flipped and replayed binding updates (a genuine one captured on the wire and sent
 *    again from elsewhere) never move the binding, and are counted;
 *  - a home agent restart is followed by re-registration (refresh request), time printed;
 *  - an expired binding removes its route (table and kernel);
 *  - behind a NAT (nft masquerade) the node still registers and is reached.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { percentile } from '../../src/endpoint/mobility/gap-histogram.ts';
import { BindingUpdate } from '../../src/wire/binding.ts';
import { ControlMessage } from '../../src/wire/gue.ts';
import { IPV4_HEADER_LEN } from '../../src/wire/ipv4.ts';
import { UDP_HEADER_LEN } from '../../src/wire/udp.ts';
import {
  ask,
  EndpointProcess,
  handover,
  MOB,
  sleep,
  startMobileWorld,
  switchSeries,
  type MobileConfigOptions,
  type MobileWorld,
  type Network,
} from '../../examples/mobile-topology.ts';
import { netnsAvailable, NETNS_SKIP_REASON } from '../support/netns.ts';
import { readPcap } from '../support/pcap.ts';

const worlds: MobileWorld[] = [];
afterEach(async () => {
  for (const w of worlds.splice(0)) await w.close();
});

const bindings = async (ha: EndpointProcess) => (await ask(ha, 'bindings')).mobility?.bindings ?? [];
const counters = async (ep: EndpointProcess) => (await ask(ep, 'stats')).stats!.mobility!.counters;

async function until(what: string, cond: () => Promise<boolean>, ms = 15_000): Promise<number> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
  return Date.now() - t0;
}

async function world(start: Network, opts: Partial<MobileConfigOptions> = {}, nat = false): Promise<MobileWorld> {
  const w = await startMobileWorld(start, opts, nat);
  worlds.push(w);
  return w;
}

const careOfOf = (n: Network) => `${MOB.nets[n]!.addr}:${MOB.port}`;
const say = (line: string) => process.stdout.write(`${line}\n`);

describe.runIf(process.platform === 'linux')('mobility in namespaces', () => {
  it('a checksummed TCP stream to the mobile node survives 20 underlay switches: 0 resets, every byte intact', { timeout: 180_000 }, async (ctx) => {
    if (!netnsAvailable()) return ctx.skip(NETNS_SKIP_REASON);
    const w = await world('wifi');
    const cycle: Network[] = ['cellular', 'foreign2', 'wifi'];
    const { results, sent, received } = await switchSeries(w, 20, (r) => expect(r.event.to).toBe(careOfOf(r.to)));
    expect(sent).not.toBeNull();
    expect(received).not.toBeNull();
    expect(received!.bad).toBe(0);
    expect(received!.bytes).toBe(sent!.bytes);
    expect(received!.sha256).toBe(sent!.sha256);
    expect(sent!.resets + received!.resets).toBe(0);
    expect([sent!.error, received!.error]).toEqual([null, null]);
    const b = await bindings(w.ha);
    expect(b[0]!.careOf).toBe(careOfOf(cycle[19 % 3]!));
    expect((await counters(w.ha)).NCareOfChanges).toBe(20);
    const gaps = results.map((r) => r.gapMs).sort((x, y) => x - y);
    const stalls = results.map((r) => r.stallMs!).sort((x, y) => x - y);
    say(
      `20 switches: handover gap (switch -> ack at the node) median ${percentile(gaps, 0.5)} ms, p95 ${percentile(gaps, 0.95)} ms, max ${gaps.at(-1)} ms; ` +
        `detection median ${percentile(results.map((r) => r.detectMs).sort((x, y) => x - y), 0.5)} ms; ` +
        `stream's longest pause median ${percentile(stalls, 0.5)} ms, p95 ${percentile(stalls, 0.95)} ms; ${(sent!.bytes / 1e6).toFixed(1)} MB intact, resets 0`,
    );
    say(`gaps: ${results.map((r) => `${r.from}->${r.to} ${r.gapMs}`).join(', ')}`);
  });

  it('forged, bit-flipped and replayed binding updates never move the binding, and are counted', { timeout: 120_000 }, async (ctx) => {
    if (!netnsAvailable()) return ctx.skip(NETNS_SKIP_REASON);
    const w = await world('wifi');
    // capture the node's genuine binding update on the internet router during a move
    const pcap = join(w.dir, 'bu.pcap');
    const cap = w.topo.spawn(w.topo.net, ['tcpdump', '-i', 'to-ha', '-nn', '-U', '--immediate-mode', '-w', pcap, 'udp dst port 6080 and udp[8] = 0x20 and udp[9] = 0x81']);
    let capErr = '';
    cap.stderr?.on('data', (d: Buffer) => (capErr += d.toString()));
    await until('tcpdump', async () => /listening on/.test(capErr), 10_000);
    await handover(w.topo, w.mn, 'cellular', null);
    await sleep(300);
    cap.kill('SIGINT');
    await new Promise((r) => (cap.exitCode !== null ? r(null) : cap.once('exit', r)));
    const bus = readPcap(pcap).packets.map((p) => p.data.subarray(IPV4_HEADER_LEN + UDP_HEADER_LEN));
    expect(bus.length).toBeGreaterThanOrEqual(1);
    const genuine = bus[0]!;
    const m = new ControlMessage(genuine);
    expect(new BindingUpdate(genuine, m.bodyOffset, m.bodyLength).parse().careOf?.port).toBe(MOB.port);
    const before = (await bindings(w.ha))[0]!.careOf;
    expect(before).toBe(careOfOf('cellular'));
    const c0 = await counters(w.ha);

    // from a host on the internet (the router's namespace), to the home agent
    const forged = Buffer.from(genuine);
    forged[forged.length - 1]! ^= 0xff; // a broken MAC
    const flipped = Buffer.from(genuine);
    flipped[m.bodyOffset + 1]! ^= 0x01; // the lifetime changed, MAC not
    const script = `const s=require('dgram').createSocket('udp4');const m=${JSON.stringify([genuine, genuine, forged, flipped].map((b) => b.toString('hex')))};s.bind(7777,'192.0.2.1',async()=>{for(const h of m){await new Promise(r=>s.send(Buffer.from(h,'hex'),6080,'${MOB.ha.up}',r));}s.close();})`;
    const r = w.topo.run(w.topo.net, [process.execPath, '-e', script]);
    expect(r.code, r.stderr).toBe(0);
    await until('the drops counted', async () => {
      const c = await counters(w.ha);
      return c.NBindUpdatesReplayed - c0.NBindUpdatesReplayed >= 2 && c.NBindUpdatesBadMac - c0.NBindUpdatesBadMac >= 2;
    });
    const c1 = await counters(w.ha);
    expect(c1.NBindUpdatesReplayed - c0.NBindUpdatesReplayed).toBe(2);
    expect(c1.NBindUpdatesBadMac - c0.NBindUpdatesBadMac).toBe(2);
    expect(c1.NBindUpdatesDropAuth - c0.NBindUpdatesDropAuth).toBe(4);
    expect(c1.NCareOfChanges).toBe(c0.NCareOfChanges);
    expect((await bindings(w.ha))[0]!.careOf).toBe(before);
    // and the node is still reached where it is
    expect(w.topo.run(w.topo.cn, ['ping', '-c', '2', '-W', '2', MOB.home]).code).toBe(0);
  });

  it('a home agent restart is followed by re-registration (keepalive, refresh request, update)', { timeout: 120_000 }, async (ctx) => {
    if (!netnsAvailable()) return ctx.skip(NETNS_SKIP_REASON);
    const w = await world('wifi');
    const st = await w.ha.stop();
    expect(st.code).toBe(0);
    const ha2 = new EndpointProcess(w.topo, w.topo.ha, join(w.dir, 'ha.json'), join(w.dir, 'ha.sock'));
    w.ha = ha2;
    await ha2.ready();
    const took = await until('re-registration', async () => (await bindings(ha2)).length === 1, 20_000);
    say(`home agent restart: the node registered again ${took} ms after the new home agent was up (goal 2000 ms)`);
    expect((await counters(ha2)).NBindRqsSent).toBeGreaterThanOrEqual(1);
    expect((await counters(w.mn)).NBindRqsRcvd).toBeGreaterThanOrEqual(1);
    expect(w.topo.run(w.topo.cn, ['ping', '-c', '2', '-W', '2', MOB.home]).code).toBe(0);
  });

  it('an expired binding removes its route, in the table and in the kernel', { timeout: 120_000 }, async (ctx) => {
    if (!netnsAvailable()) return ctx.skip(NETNS_SKIP_REASON);
    const w = await world('wifi', { lifetime: 8, maxLifetime: 8 });
    const kernelRoute = () => /10\.77\.0\.5 dev ferry0/.test(w.topo.run(w.topo.ha, ['ip', 'route', 'show']).stdout);
    const tableRoute = async () => ((await ask(w.ha, 'routes')).routes ?? []).some((r) => r.text === '10.77.0.5 dev laptop');
    expect(kernelRoute()).toBe(true);
    expect(await tableRoute()).toBe(true);
    expect((await bindings(w.ha))[0]!.lifetime).toBe(8);
    // the node dies without deregistering
    w.mn.child.kill('SIGKILL');
    await w.mn.exited;
    await until('expiry', async () => (await bindings(w.ha)).length === 0, 15_000);
    expect(kernelRoute()).toBe(false);
    expect(await tableRoute()).toBe(false);
    expect((await counters(w.ha)).NBindingsExpired).toBe(1);
  });

  it('behind a NAT (nft masquerade) the node registers, the NAT is reported, and it is reached', { timeout: 120_000 }, async (ctx) => {
    if (!netnsAvailable()) return ctx.skip(NETNS_SKIP_REASON);
    const w = await world('foreign2', {}, true);
    const b = (await bindings(w.ha))[0]!;
    expect(b.nat).toBe(true);
    expect(b.claimedCareOf).toBe(careOfOf('foreign2'));
    expect(b.careOf).toMatch(/^192\.0\.2\.1:\d+$/); // the router's outside address
    const u = (await ask(w.mn, 'binding-updates')).mobility!.bindingUpdates![0]!;
    expect(u).toMatchObject({ state: 'registered', nat: true });
    expect((await counters(w.ha)).NNatDetected).toBe(1);
    const ping = w.topo.run(w.topo.cn, ['ping', '-c', '3', '-W', '2', MOB.home]);
    expect(ping.code, ping.stdout).toBe(0);
  });
});
