import { describe, expect, it } from 'vitest';
import { DropReason } from '../../src/base/drop-reason.ts';
import { PacketPools, type PacketBuffer } from '../../src/base/pool.ts';
import { Peer } from '../../src/endpoint/peer.ts';
import { MemoryNetwork, MemoryTransport } from '../../src/transport/memory-transport.ts';
import { PeerEndpoints, type PeerEndpoint } from '../../src/transport/peer-endpoints.ts';
import { UdpTransport } from '../../src/transport/udp-transport.ts';

const ipv4 = Buffer.from('4500001c1c46400040010000c0a80a0ac0a814140800f7ff00000000', 'hex');
const tick = () => new Promise<void>((r) => setImmediate(r));

describe('PeerEndpoints: the one record of each peer underlay endpoint', () => {
  it('keeps family, bytes, port, canonical host and display text; set() replaces, remove() forgets', () => {
    const e = new PeerEndpoints();
    const heard: [number, PeerEndpoint | undefined][] = [];
    const stop = e.subscribe((i, ep) => heard.push([i, ep]));
    const a = e.setAddress(2, 'FD00:0:0::2', 6080);
    expect(a).toEqual({ family: 6, bytes: Uint8Array.from([0xfd, 0, ...new Array<number>(13).fill(0), 2]), port: 6080, host: 'fd00::2', text: '[fd00::2]:6080' });
    expect(e.get(2)).toBe(a);
    const b = e.set(2, 4, Uint8Array.from([192, 0, 2, 7]), 5555);
    expect(b.text).toBe('192.0.2.7:5555');
    expect(a.text).toBe('[fd00::2]:6080'); // the old record is untouched
    e.remove(2);
    e.remove(2); // nothing to tell the second time
    expect(heard).toEqual([
      [2, a],
      [2, b],
      [2, undefined],
    ]);
    stop();
    e.setAddress(0, '192.0.2.1', 1);
    expect(heard.length).toBe(3);
    expect(e.entries().map(([i, ep]) => [i, ep.text])).toEqual([[0, '192.0.2.1:1']]);
  });

  it('refuses impossible records', () => {
    const e = new PeerEndpoints();
    expect(() => e.set(0, 4, new Uint8Array(16), 6080)).toThrow(RangeError);
    expect(() => e.set(0, 4, new Uint8Array(4), 0)).toThrow('port out of range');
    expect(() => e.set(-1, 4, new Uint8Array(4), 1)).toThrow('bad peer index');
    expect(() => e.setAddress(0, 'example.com', 1)).toThrow();
    expect(e.entries()).toEqual([]);
  });
});

describe('transports follow the record', () => {
  it('moving a peer is one set(): the transport sends to and tags from the new address, the Peer shows it', async () => {
    const net = new MemoryNetwork();
    const pools = new PacketPools({ small: { slots: 64 }, large: { slots: 1 } });
    const endpoints = new PeerEndpoints();
    endpoints.setAddress(0, '203.0.113.20', 6080);
    const tags: number[] = [];
    const a = new MemoryTransport({
      network: net,
      address: '203.0.113.10',
      pools,
      endpoints,
      onBatch(batch: PacketBuffer[], count: number) {
        for (let i = 0; i < count; i++) {
          tags.push(batch[i]!.tag);
          batch[i]!.release();
        }
      },
    });
    const got: string[] = [];
    const remote = (address: string) =>
      new MemoryTransport({
        network: net,
        address,
        pools,
        onBatch(batch: PacketBuffer[], count: number) {
          for (let i = 0; i < count; i++) {
            got.push(address);
            batch[i]!.release();
          }
        },
      });
    const home = remote('203.0.113.20');
    const away = remote('198.51.100.9');
    for (const t of [a, home, away]) await t.start();
    home.setPeer(0, '203.0.113.10', 6080);
    away.setPeer(0, '203.0.113.10', 6080);
    const peer = new Peer({ index: 0, name: 'm', endpoints, routes: [], mtu: 1400, keepalive: null, key: null, mss: null });

    const send = (t: MemoryTransport) => {
      const p = pools.acquire(ipv4.length)!;
      p.fill(ipv4);
      return t.send(p, 0);
    };
    expect(a.peerEndpoint(0)).toEqual({ address: '203.0.113.20', port: 6080 });
    expect(peer.endpointText).toBe('203.0.113.20:6080');
    expect(send(a)).toBe(DropReason.None);
    expect(send(home)).toBe(DropReason.None);
    expect(send(away)).toBe(DropReason.None);
    await tick();
    expect(got).toEqual(['203.0.113.20']);
    expect(tags).toEqual([0, -1]);

    endpoints.setAddress(0, '198.51.100.9', 6080); // the peer moved
    expect(a.peerEndpoint(0)).toEqual({ address: '198.51.100.9', port: 6080 });
    expect(a.lookupPeer('203.0.113.20', 6080)).toBe(-1);
    expect(peer.endpointText).toBe('198.51.100.9:6080');
    expect([peer.address, peer.port, peer.family]).toEqual(['198.51.100.9', 6080, 4]);
    expect(send(a)).toBe(DropReason.None);
    expect(send(home)).toBe(DropReason.None);
    expect(send(away)).toBe(DropReason.None);
    await tick();
    expect(got).toEqual(['203.0.113.20', '198.51.100.9']);
    expect(tags).toEqual([0, -1, -1, 0]);

    await a.close();
    endpoints.setAddress(0, '203.0.113.20', 6080); // a closed transport no longer follows
    expect(a.peerEndpoint(0)).toEqual({ address: '198.51.100.9', port: 6080 });
    for (const t of [home, away]) await t.close();
    expect(pools.live).toBe(0);
  });

  it('UDP: an endpoint the socket cannot carry fails start() (bound port in the message, socket freed) and is left out later', async () => {
    const pools = new PacketPools({ small: { slots: 8 }, large: { slots: 1 } });
    const endpoints = new PeerEndpoints();
    endpoints.setAddress(0, 'fd00::2', 6080);
    const errors: string[] = [];
    const t = new UdpTransport({ address: '127.0.0.1', port: 0, pools, endpoints, onBatch() {}, onError: (e) => errors.push(e.message) });
    await expect(t.start()).rejects.toThrow(/^peer endpoint \[fd00::2\]:6080: IPv6 peer but listen 127\.0\.0\.1:\d+ is IPv4$/);
    expect(t.isRunning).toBe(false);
    endpoints.setAddress(0, 'fd00::4', 6080); // a transport that did not start no longer listens
    expect(errors).toEqual([]);
    endpoints.setAddress(0, '127.0.0.1', 9);
    await t.start();
    expect(t.peerEndpoint(0)).toEqual({ address: '127.0.0.1', port: 9 });
    endpoints.setAddress(0, 'fd00::3', 9); // moved where this socket cannot follow
    expect(errors).toEqual(['peer endpoint [fd00::3]:9: IPv6 peer but listen ' + t.listenText + ' is IPv4']);
    expect(t.peerEndpoint(0)).toBeUndefined();
    const p = pools.acquire(10)!;
    p.length = 10;
    expect(t.send(p, 0)).toBe(DropReason.UnknownPeer);
    await t.close();
    expect(pools.live).toBe(0);
  });
});
