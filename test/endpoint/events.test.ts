/**
 * Logs that explain, under floods: a running endpoint (memory device, UDP on loopback) gets
 * hundreds of datagrams of each kind an operator must hear about — control messages with the
 * wrong key from a peer, data from an unknown address:port, inner packets from outside a peer's
 * routes, packets too big for a peer's MTU (real kernel bytes from test/fixtures/kernel), and at
 * debug level malformed GUE — and each event appears ONCE, then once more with the count of the
 * rest when its interval is over (the data plane's flush, called here with a later clock).
 * Many distinct sources at once hit the all-kinds budget: what it holds back is one
 * 'events-suppressed' line with the count, and nothing is lost from the sum.
 */
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { DropReason } from '../../src/base/drop-reason.ts';
import { parseConfig } from '../../src/config/config.ts';
import { MemoryDevice } from '../../src/device/memory-device.ts';
import { Endpoint } from '../../src/endpoint/endpoint.ts';
import type { LogEvent } from '../../src/endpoint/log-event.ts';
import { ControlSender } from '../../src/tunnel/control.ts';
import { controlLength, KEEPALIVE_BODY_LEN } from '../../src/wire/gue.ts';
import { kernelFixture } from '../support/pcap.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const KEY = 'hex:' + '11'.repeat(32);
const WRONG = new Uint8Array(32).fill(0x22);
const N = 300;

async function bind(port: number): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(port, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise<void>((r) => s.close(() => r())));
  return s;
}

async function setup() {
  const pa = 20000 + Math.floor(Math.random() * 20000);
  const pf = pa + 1;
  const [hostSide, link] = MemoryDevice.pair({ name: 'host', mtu: 1500 }, { name: 'link', mtu: 1500, queueLimit: 4096 });
  const events: LogEvent[] = [];
  const ep = new Endpoint(
    parseConfig({
      interface: { name: 'ferryE', address: ['10.0.0.1/24', 'fd00::1/64'], mtu: 1500 },
      listen: `127.0.0.1:${pa}`,
      peers: [{ name: 'far', endpoint: `127.0.0.1:${pf}`, routes: ['192.168.20.0/24', 'fd00:20::/64'], key: KEY, mtu: 1280 }],
    }),
    { device: link, warmUp: 0, onEvent: (e) => events.push(e) },
  );
  await ep.start();
  cleanups.push(async () => {
    await ep.stop();
    await hostSide.close();
    expect(ep.pools.live).toBe(0);
  });
  const far = await bind(pf);
  return { ep, pa, pf, far, hostSide, events };
}

/** Send `n` copies of `bytes` from `sock` to 127.0.0.1:port, then wait (bounded) until `arrived()` says they are in. */
async function flood(sock: dgram.Socket, port: number, bytes: Uint8Array, n: number, arrived: () => boolean): Promise<void> {
  for (let i = 0; i < n; i++) sock.send(bytes, port, '127.0.0.1');
  const t0 = Date.now();
  while (!arrived()) {
    if (Date.now() - t0 > 10_000) throw new Error('flood did not arrive');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const named = (events: LogEvent[], name: string) => events.filter((e) => e.event === name);

describe('data-plane events under a flood: one line each, then a count', () => {
  it('authentication failures: which peer, which address', async () => {
    const { ep, pa, pf, far, events } = await setup();
    const sender = new ControlSender(0x1234);
    const b = Buffer.alloc(controlLength(KEEPALIVE_BODY_LEN, true));
    const len = sender.keepalive(b, 0, 5, WRONG);
    await flood(far, pa, b.subarray(0, len), N, () => ep.drops.get(DropReason.BadAuthentication) >= N);
    const auth = named(events, 'auth-failure');
    expect(auth).toHaveLength(1);
    expect(auth[0]!.level).toBe('warn');
    expect(auth[0]!.msg).toBe(`peer far (127.0.0.1:${pf}): control message failed authentication, dropped (is the same key set on both ends?)`);
    expect(auth[0]!.fields).toMatchObject({ peer: 'far', from: `127.0.0.1:${pf}`, count: 1 });
    // the interval is over: the rest as one line with its count
    ep.pipeline.flushEvents(Date.now() + 60_000);
    const again = named(events, 'auth-failure');
    expect(again).toHaveLength(2);
    expect(again[1]!.fields!.count).toBe(N - 1);
    expect(again[1]!.msg).toMatch(new RegExp(`^peer far \\(127\\.0\\.0\\.1:${pf}\\): control message failed authentication.* \\(${N - 1} times in the last \\d+ s\\)$`));
    ep.pipeline.flushEvents(Date.now() + 120_000);
    expect(named(events, 'auth-failure')).toHaveLength(2); // nothing new: nothing more
  });

  it('datagrams from an unknown address:port: the first per source, then a count; a peer on another port is named', async () => {
    const { ep, pa, pf, events } = await setup();
    const stranger = await bind(pf + 1);
    const ping = kernelFixture('ping4')[0]!;
    await flood(stranger, pa, ping, N, () => ep.drops.get(DropReason.UnknownPeer) >= N);
    const unknown = named(events, 'unknown-source');
    expect(unknown).toHaveLength(1);
    expect(unknown[0]!.msg).toBe(
      `datagram from unknown source 127.0.0.1:${pf + 1}, dropped: no peer has this endpoint; peer far is 127.0.0.1:${pf}: is it sending from another port (NAT)?`,
    );
    ep.pipeline.flushEvents(Date.now() + 60_000);
    expect(named(events, 'unknown-source').map((e) => e.fields!.count)).toEqual([1, N - 1]);

    // many sources at once: each first one is a line until the budget runs out; the rest is counted
    const before = named(events, 'unknown-source').length;
    const socks = [];
    for (let i = 0; i < 40; i++) socks.push(await bind(pf + 10 + i));
    const drops = ep.drops.get(DropReason.UnknownPeer);
    for (const s of socks) s.send(ping, pa, '127.0.0.1');
    const t0 = Date.now();
    while (ep.drops.get(DropReason.UnknownPeer) < drops + 40 && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 10));
    const lines = named(events, 'unknown-source').length - before;
    expect(lines).toBeLessThan(40);
    ep.pipeline.flushEvents(Date.now() + 120_000);
    const suppressed = named(events, 'events-suppressed');
    expect(suppressed).toHaveLength(1);
    expect(lines + (suppressed[0]!.fields!.count as number)).toBe(40);
  });

  it('inner packets from outside the peer routes, and packets too big for the peer (real kernel packets)', async () => {
    const { ep, pa, far, hostSide, events } = await setup();
    // 192.168.10.1 -> 192.168.20.20 from peer far, whose routes are 192.168.20.0/24 and fd00:20::/64
    const ping = kernelFixture('ping4')[0]!;
    await flood(far, pa, ping, N, () => ep.drops.get(DropReason.SourceNotAllowed) >= N);
    const src = named(events, 'source-not-allowed');
    expect(src).toHaveLength(1);
    expect(src[0]!.msg).toBe("peer far sent a packet from 192.168.10.1, outside its routes: dropped (add the prefix to the peer's routes here if it belongs there)");

    // a 1400-byte IPv6 fragment toward far (MTU 1280), from the kernel behind the TUN: ICMPv6 too big
    const big = kernelFixture('ping6-frag')[0]!;
    expect(big.length).toBe(1400);
    for (let i = 0; i < N; i++) hostSide.writeBytes(big, 0, big.length);
    const t0 = Date.now();
    while (ep.drops.get(DropReason.PacketTooBig) < N && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 10));
    expect(ep.drops.get(DropReason.PacketTooBig)).toBe(N);
    const big1 = named(events, 'frag-needed');
    expect(big1).toHaveLength(1);
    expect(big1[0]!.msg).toBe('packet fd00:10::1 > fd00:20::20 of 1400 bytes too big for peer far (mtu 1280): sent ICMPv6 packet too big to fd00:10::1');
    expect(big1[0]!.fields).toMatchObject({ peer: 'far', src: 'fd00:10::1', dst: 'fd00:20::20', size: 1400, mtu: 1280 });
    ep.pipeline.flushEvents(Date.now() + 60_000);
    expect(named(events, 'frag-needed').map((e) => e.fields!.count)).toEqual([1, N - 1]);
    expect(named(events, 'source-not-allowed').map((e) => e.fields!.count)).toEqual([1, N - 1]);
  });

  it('drop reasons only at debug level, rate-limited per reason and peer', async () => {
    const { ep, pa, far, events } = await setup();
    const bad = Uint8Array.of(0x80, 0, 0, 0, 1, 2, 3, 4); // GUE version 2: no such thing
    await flood(far, pa, bad, N, () => ep.drops.get(DropReason.BadGue) >= N);
    expect(named(events, 'drop')).toHaveLength(0);
    ep.setDebugEvents(true);
    await flood(far, pa, bad, N, () => ep.drops.get(DropReason.BadGue) >= 2 * N);
    const drops = named(events, 'drop');
    expect(drops).toHaveLength(1);
    expect(drops[0]).toMatchObject({ level: 'debug', msg: 'drop: BadGue (peer far)' });
    ep.pipeline.flushEvents(Date.now() + 60_000);
    expect(named(events, 'drop').map((e) => e.fields!.count)).toEqual([1, N - 1]);
  });
});
