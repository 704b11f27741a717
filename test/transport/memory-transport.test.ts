import { describe, expect, it } from 'vitest';
import { DropReason } from '../../src/base/drop-reason.ts';
import { PacketPools, type PacketBuffer } from '../../src/base/pool.ts';
import { MemoryNetwork, MemoryTransport } from '../../src/transport/memory-transport.ts';
import type { RecvInfo } from '../../src/transport/transport.ts';

const ipv4 = Buffer.from('4500001c1c46400040010000c0a80a0ac0a814140800f7ff00000000', 'hex');

function mk(net: MemoryNetwork, pools: PacketPools, address: string, port = 6080) {
  const got: { bytes: Buffer; tag: number; address: string; port: number }[] = [];
  let syncDepth = 0;
  const t = new MemoryTransport({
    network: net,
    address,
    port,
    pools,
    onBatch(batch: PacketBuffer[], count: number, from: RecvInfo) {
      expect(syncDepth).toBe(0);
      for (let i = 0; i < count; i++) {
        got.push({ bytes: Buffer.from(batch[i]!.bytes()), tag: batch[i]!.tag, address: from.addresses[i]!, port: from.ports[i]! });
        batch[i]!.release();
      }
    },
  });
  return {
    t,
    got,
    send(peer: number, bytes = ipv4) {
      const p = pools.acquire(bytes.length)!;
      p.fill(bytes);
      syncDepth++;
      const r = t.send(p, peer);
      syncDepth--;
      return r;
    },
  };
}

const tick = () => new Promise<void>((r) => setImmediate(r));

describe('MemoryTransport', () => {
  it('exchanges datagrams in batches with peer tags, never synchronously', async () => {
    const net = new MemoryNetwork();
    const pools = new PacketPools({ small: { slots: 64 }, large: { slots: 1 } });
    const a = mk(net, pools, '203.0.113.10');
    const b = mk(net, pools, '203.0.113.20');
    await a.t.start();
    await b.t.start();
    a.t.setPeer(2, '203.0.113.20', 6080);
    b.t.setPeer(5, '203.0.113.10', 6080);
    for (let i = 0; i < 10; i++) expect(a.send(2)).toBe(DropReason.None);
    expect(b.got.length).toBe(0);
    await tick();
    expect(b.got.length).toBe(10);
    expect(b.got.every((g) => g.tag === 5 && g.bytes.equals(ipv4) && g.address === '203.0.113.10' && g.port === 6080)).toBe(true);
    expect(b.t.stats.rxBatches).toBe(1);
    expect(a.t.stats.txPackets).toBe(10);
    expect(pools.live).toBe(0);
  });

  it('tags strangers -1, loses datagrams to nowhere, and lets a tap watch or drop', async () => {
    const net = new MemoryNetwork();
    const pools = new PacketPools({ small: { slots: 16 }, large: { slots: 1 } });
    const a = mk(net, pools, 'fd00::1');
    const b = mk(net, pools, 'FD00:0::2');
    const c = mk(net, pools, 'fd00::3', 0);
    await a.t.start();
    await b.t.start();
    await c.t.start();
    expect(c.t.localAddress.port).toBeGreaterThan(0);
    a.t.setPeer(0, 'fd00::2', 6080);
    c.t.setPeer(0, 'fd00::2', 6080);
    c.t.setPeer(1, 'fd00::9', 6080);
    b.t.setPeer(0, 'fd00::1', 6080);
    expect(c.send(0)).toBe(DropReason.None);
    expect(c.send(1)).toBe(DropReason.None); // nobody there
    const seen: string[] = [];
    net.tap = (bytes, from, to) => {
      seen.push(`${from.address}.${from.port} > ${to.address}.${to.port} ${bytes.length}`);
      return seen.length !== 2; // drop the second
    };
    expect(a.send(0)).toBe(DropReason.None);
    expect(a.send(0)).toBe(DropReason.None);
    await tick();
    expect(b.got.map((g) => g.tag)).toEqual([-1, 0]);
    expect(b.t.stats.rxUnknown).toBe(1);
    expect(seen).toEqual(['fd00::1.6080 > fd00::2.6080 28', 'fd00::1.6080 > fd00::2.6080 28']);
    expect(net.unreachable).toBe(1);
    expect(net.dropped).toBe(1);
    expect(net.delivered).toBe(2);
    expect(pools.live).toBe(0);
  });

  it('refuses a second bind of the same address:port, and releases on failed sends and close', async () => {
    const net = new MemoryNetwork();
    const pools = new PacketPools({ small: { slots: 16 }, large: { slots: 1 } });
    const a = mk(net, pools, '10.0.0.1');
    const dup = mk(net, pools, '10.0.0.1');
    await a.t.start();
    await expect(dup.t.start()).rejects.toThrow('listen 10.0.0.1:6080: port in use');
    expect(a.send(9)).toBe(DropReason.UnknownPeer);
    a.t.setPeer(0, '10.0.0.1', 6080); // itself
    expect(a.send(0)).toBe(DropReason.None);
    await a.t.close(); // the pending batch is released
    expect(a.got.length).toBe(0);
    expect(a.send(0)).toBe(DropReason.NoSocket);
    expect(pools.live).toBe(0);
    await dup.t.start(); // the port is free again
    await dup.t.close();
  });
});
