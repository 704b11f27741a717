/**
 * The forwarding pipeline alone, no I/O: kernel-captured packets (ping, TCP SYN, UDP) copied into
 * pool slots and pushed through `fromDevice` (validate, route, MSS clamp, hand to a transport that
 * just releases) and `fromTransport` (GUE classify, validate, source check, route, device write
 * to a memory sink), in batches of 32. Shows how far the pipeline is from being the bottleneck
 * (the TUN and UDP I/O measure in the ~100k pps range on this machine, bench/tun, bench/transport)
 * and that it allocates nothing in steady state.
 */
import type { PacketBuffer } from '../src/pool.ts';
import { detachedEndpoint } from '../test/support/endpoint-harness.ts';
import { kernelFixture } from '../test/support/pcap.ts';
import type { BenchSection } from './run.ts';

const N = 3_000_000;

export default async function (): Promise<BenchSection> {
  const { ep, dev } = detachedEndpoint({
    interface: { name: 'ferry0', address: ['192.168.10.1/24'], mtu: 1400 },
    listen: '127.0.0.1:6080',
    stack: { address: ['10.0.0.254'] },
    peers: [{ name: 'shanghai', endpoint: '127.0.0.1:6081', routes: ['192.168.20.0/24'] }],
  });
  dev.setSink(() => {});
  const out = [kernelFixture('ping4')[0]!, kernelFixture('tcp-syn4')[0]!, kernelFixture('udp4')[0]!];
  // The same packets coming back from the peer: 192.168.20.20 -> 192.168.10.1.
  const back = out.map((b) => {
    const c = Buffer.from(b);
    const src = Buffer.from(c.subarray(12, 16));
    c.copy(c, 12, 16, 20);
    src.copy(c, 16);
    return c;
  });
  const pool = ep.pools.small;
  const batch: PacketBuffer[] = new Array(32);
  const run = (n: number, pkts: Buffer[], fromPeer: boolean) => {
    for (let i = 0; i < n; i += 32) {
      for (let k = 0; k < 32; k++) {
        const p = pool.acquire()!;
        p.fill(pkts[k % 3]!);
        p.tag = 0;
        batch[k] = p;
      }
      if (fromPeer) ep.pipeline.fromTransport(batch, 32);
      else ep.pipeline.fromDevice(batch, 32);
    }
  };
  const gc = (globalThis as { gc?: () => void }).gc;
  const rows: string[] = [];
  for (const [name, pkts, fromPeer] of [
    ['TUN -> validate -> route -> MSS clamp -> peer', out, false],
    ['UDP -> GUE -> validate -> source check -> route -> TUN', back, true],
  ] as const) {
    run(N / 3, pkts as Buffer[], fromPeer);
    gc?.();
    const h0 = process.memoryUsage().heapUsed;
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    run(N, pkts as Buffer[], fromPeer);
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const c = process.cpuUsage(c0);
    gc?.();
    const growth = process.memoryUsage().heapUsed - h0;
    rows.push(
      `| ${name} | ${(N / wall / 1e6).toFixed(2)} | ${(N / ((c.user + c.system) / 1e6) / 1e6).toFixed(2)} | ${gc ? `${growth}` : 'n/a (no --expose-gc)'} |`,
    );
  }
  const drops = JSON.stringify(ep.drops.toJSON());
  return {
    title: 'Pipeline alone (no I/O): Mpps per direction, heap growth',
    markdown: `| path | Mpps (wall) | Mpps per CPU-second | heap growth over ${N / 1e6}M packets (bytes) |
|---|---|---|---|
${rows.join('\n')}

Includes copying each packet into its pool slot. Drops during the run: ${drops === '{}' ? 'none' : drops}; live pool slots after: ${ep.pools.live}.`,
  };
}
