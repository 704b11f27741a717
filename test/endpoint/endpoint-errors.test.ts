/**
 * What the Endpoint does with errors nobody listens to (issue 12, "Faults": a library user with no
 * `error` listener crashed): 'error' (fatal, the device went away) and 'internal-error' (caught and
 * survived) become log lines when unheard, never exceptions; listeners that throw are isolated.
 */
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { BufferPool, type PacketBuffer } from '../../src/base/pool.ts';
import { parseConfig } from '../../src/config/config.ts';
import type { BatchHandler, DownHandler, PacketDevice } from '../../src/device/device.ts';
import { MemoryDevice } from '../../src/device/memory-device.ts';
import { Endpoint } from '../../src/endpoint/endpoint.ts';
import type { InThreadDataPlane } from '../../src/endpoint/dataplane-inthread.ts';
import { controlLength, emitControl } from '../../src/wire/gue.ts';
import { Ipv4Packet } from '../../src/wire/ipv4.ts';
import { kernelFixture } from '../support/pcap.ts';

/** A memory device whose owner can make it go down, as a deleted TUN does. */
class DownableDevice implements PacketDevice {
  private down: DownHandler | undefined;
  constructor(readonly inner: MemoryDevice) {}
  get name() {
    return this.inner.name;
  }
  get mtu() {
    return this.inner.mtu;
  }
  get stats() {
    return this.inner.stats;
  }
  start(onBatch: BatchHandler, onDown?: DownHandler, onError?: (e: unknown) => void): void {
    this.down = onDown;
    this.inner.start(onBatch, undefined, onError);
  }
  write(p: PacketBuffer): boolean {
    return this.inner.write(p);
  }
  writeBytes(b: Uint8Array, o: number, l: number): boolean {
    return this.inner.writeBytes(b, o, l);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  goDown(why: string): void {
    this.down?.(why);
  }
}

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (stops.length) await stops.pop()!();
});

async function started() {
  const port = 20000 + Math.floor(Math.random() * 20000) * 2;
  const config = parseConfig({
    interface: { name: 'ferryE', address: ['192.168.10.1/24'], mtu: 1400 },
    listen: `127.0.0.1:${port}`,
    peers: [{ name: 'shanghai', endpoint: `127.0.0.1:${port + 1}`, routes: ['192.168.20.0/24'] }],
  });
  const lines: string[] = [];
  const devPool = new BufferPool({ slots: 64 });
  const dev = new DownableDevice(new MemoryDevice({ name: 'ferryE', mtu: 1400, pool: devPool }));
  const ep = new Endpoint(config, { log: (l) => lines.push(l), poolSlots: { small: 64, large: 2 }, warmUp: 0, device: dev });
  await ep.start();
  stops.push(async () => {
    await ep.stop();
    expect(ep.pools.live).toBe(0);
    expect(devPool.live).toBe(0);
  });
  return { ep, dev, lines, port };
}

describe('Endpoint errors nobody listens to', () => {
  it("the device going away with no 'error' listener: an error line in the log, nothing thrown", async () => {
    const { dev, lines } = await started();
    expect(() => dev.goDown('TUN ferryE: interface ferryE was deleted')).not.toThrow();
    expect(lines).toContain('error: device ferryE went down: TUN ferryE: interface ferryE was deleted');
  });

  it("with an 'error' listener it gets the error (ipferry up stops on it); a listener that throws is contained", async () => {
    const { ep, dev, lines } = await started();
    const got: string[] = [];
    ep.on('error', (e) => got.push(e.message));
    dev.goDown('gone');
    expect(got).toEqual(['device ferryE went down: gone']);
    ep.removeAllListeners('error');
    ep.on('error', () => {
      throw new Error('bad error listener');
    });
    expect(() => dev.goDown('gone again')).not.toThrow();
    expect(lines.some((l) => l.includes("an 'error' listener threw: bad error listener"))).toBe(true);
  });

  it("a dataplane exception with no 'internal-error' listener: counted, one warning line, the dataplane goes on", async () => {
    const { ep, dev, lines } = await started();
    const router = ep.router as unknown as { lookupBatch: (...a: unknown[]) => void };
    const orig = router.lookupBatch;
    router.lookupBatch = () => {
      throw new Error('injected route bug');
    };
    const ping = kernelFixture('ping4')[0]!;
    for (let i = 0; i < 5; i++) dev.inner.inject(ping);
    dev.inner.flush();
    for (let i = 0; i < 5; i++) dev.inner.inject(ping);
    dev.inner.flush();
    router.lookupBatch = orig;
    expect(ep.stats().extra!.internalErrors).toBe(2);
    const warnings = lines.filter((l) => l.startsWith('warning: pipeline: injected route bug'));
    expect(warnings).toHaveLength(1); // at most one a second
    expect(ep.pools.live + (dev.inner as unknown as { pool: BufferPool }).pool.live).toBe(0);
    // the next batch is routed as usual (to the peer: the UDP transport sends it)
    const before = ep.stats().udpTx.packets;
    dev.inner.inject(ping);
    dev.inner.flush();
    for (let t = 0; t < 50 && ep.stats().udpTx.packets === before; t++) await new Promise((r) => setTimeout(r, 10));
    expect(ep.stats().udpTx.packets).toBe(before + 1);
  });

  it("over real UDP: a throwing 'peer-up' listener and a dataplane bug leak no slot of the received batch", async () => {
    const { ep, lines, port } = await started();
    const peer = dgram.createSocket('udp4');
    await new Promise<void>((r) => peer.bind(port + 1, '127.0.0.1', () => r()));
    stops.push(() => new Promise<void>((r) => peer.close(() => r())));
    ep.on('peer-up', () => {
      throw new Error('listener bug');
    });
    const transport = () => (ep.dataplane as InThreadDataPlane).transport!;
    const b = Buffer.from(kernelFixture('ping4')[0]!);
    b.copy(b, 12, 16, 20); // from 192.168.20.x ...
    b.writeUInt32BE(0xc0a80a01, 16); // ... to 192.168.10.1
    new Ipv4Packet(b, 0, b.length).fillChecksum();
    const sendAll = async (n: number) => {
      const rx0 = transport().stats.rxPackets;
      for (let i = 0; i < n; i++) peer.send(b, transport().localAddress.port, '127.0.0.1');
      for (let t = 0; t < 100 && transport().stats.rxPackets < rx0 + n; t++) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setImmediate(r));
    };
    await sendAll(8);
    expect(ep.stats().extra!.listenerErrors).toBe(1);
    expect(ep.peers[0]!.up).toBe(true);
    const router = ep.router as unknown as { lookupBatch: (...a: unknown[]) => void };
    const orig = router.lookupBatch;
    router.lookupBatch = () => {
      throw new Error('injected route bug');
    };
    await sendAll(8);
    router.lookupBatch = orig;
    // A control message for the control plane (not a keepalive): a throwing 'control' listener
    // is isolated too, the next listener gets it.
    const got: number[] = [];
    ep.on('control', () => {
      throw new Error('control listener bug');
    });
    ep.on('control', (m) => got.push(m.peer));
    const ctl = Buffer.alloc(controlLength(4, false));
    const n = emitControl(ctl, 0, { ctype: 131, senderId: 7, counter: 1, body: Buffer.alloc(4) });
    const rx0 = transport().stats.rxPackets;
    peer.send(ctl.subarray(0, n), transport().localAddress.port, '127.0.0.1');
    for (let t = 0; t < 100 && got.length === 0; t++) await new Promise((r) => setTimeout(r, 10));
    expect(transport().stats.rxPackets).toBe(rx0 + 1);
    expect(got).toEqual([0]);
    expect(ep.stats().extra!.listenerErrors).toBe(2);
    expect(ep.stats().extra!.internalErrors).toBeGreaterThanOrEqual(1);
    expect(transport().stats.rxErrors).toBe(0); // nothing reached the batcher's catch
    expect(ep.pools.live).toBe(0);
    expect(ep.pools.small.badReleases).toBe(0);
    expect(lines.some((l) => l.includes("listener 'peer-up': listener bug"))).toBe(true);
  });

  it("a 'drop' or 'peer-down' listener that throws does not stop the timer's other work", async () => {
    const { ep, lines } = await started();
    const seen: string[] = [];
    ep.on('drop', () => {
      throw new Error('drop listener bug');
    });
    ep.on('drop', (d) => seen.push(d.reason));
    ep.on('peer-down', () => {
      throw new Error('peer-down listener bug');
    });
    const internal: string[] = [];
    ep.on('internal-error', (_e, where) => internal.push(where));
    ep.drops.count(140); // NoRoute
    const peer = ep.peers[0]!;
    peer.up = true;
    peer.liveness.lastRx = 1;
    expect(() => (ep as unknown as { tick(): void }).tick()).not.toThrow();
    expect(seen).toEqual(['NoRoute']);
    expect(peer.up).toBe(false);
    expect(internal).toEqual(["listener 'drop'", "listener 'peer-down'"]);
    expect(ep.stats().extra!.listenerErrors).toBe(2);
    expect(lines.some((l) => l.startsWith('peer shanghai down'))).toBe(true);
  });
});
