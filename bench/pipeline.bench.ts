/**
 * The forwarding pipeline alone, no I/O: kernel-captured packets (ping, TCP SYN, UDP) copied into
 * pool slots and pushed through `fromDevice` (validate, route, MSS clamp, hand to a transport that
 * just releases) and `fromTransport` (GUE classify, validate, source check, route, device write
 * to a memory sink), in batches of 32. Shows how far the pipeline is from being the bottleneck
 * (the TUN and UDP I/O measure in the ~100k pps range on this machine, bench/tun, bench/transport)
 * and that it allocates nothing in steady state.
 */
import type { PacketBuffer } from '../src/base/pool.ts';
import { detachedEndpoint } from '../test/support/endpoint-harness.ts';
import { kernelFixture } from '../test/support/pcap.ts';
import type { Prefix } from '../src/wire/address-text.ts';
import { Ipv4Packet } from '../src/wire/ipv4.ts';
import { rng } from '../test/route/helpers.ts';
import { makeV4, v4Prefix } from './route.bench.ts';
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

  // The same TUN -> peer path with a full-size table: the bench's 1M internet-like IPv4 prefixes
  // (bench/route.bench.ts) routed to the peer, 64k packets to different in-table destinations.
  // Bursts of 32 (one Router.lookupBatch per burst: the table misses of a burst overlap) against
  // the same pipeline fed one packet per call.
  const big = detachedEndpoint({
    interface: { name: 'ferry0', address: ['192.168.10.1/24'], mtu: 1400 },
    listen: '127.0.0.1:6080',
    peers: [{ name: 'shanghai', endpoint: '127.0.0.1:6081', routes: ['192.168.20.0/24'] }],
  });
  const t4 = makeV4(1_000_000, 4);
  const pfx: Prefix = { family: 4, bytes: new Uint8Array(4), length: 0 };
  const spec = { prefix: pfx, dev: 'shanghai' };
  for (let i = 0; i < t4.addr.length; i++) {
    // 192.168.10.0/24 stays the kernel's (the sources below).
    if (t4.addr[i]! >>> 16 === 0xc0a8) continue;
    v4Prefix(pfx, t4.addr[i]!, t4.len[i]!);
    big.ep.router.add(spec);
  }
  const P = 1 << 16;
  const rand = rng(5);
  const base = Buffer.from(kernelFixture('udp4')[0]!);
  const dests: Buffer[] = [];
  for (let i = 0; i < P; i++) {
    const j = Math.floor(rand() * t4.addr.length);
    const a = (t4.addr[j]! + Math.floor(rand() * 2 ** (32 - t4.len[j]!))) >>> 0;
    const b = Buffer.from(base);
    const ip = new Ipv4Packet(b, 0, b.length);
    ip.rewriteDstAddr(a);
    dests.push(b);
  }
  const bigPool = big.ep.pools.small;
  const M = 2_000_000;
  const feed = (burst: number) => {
    const bb: PacketBuffer[] = new Array(burst);
    let d = 0;
    for (let i = 0; i < M; i += burst) {
      for (let k = 0; k < burst; k++) {
        const p = bigPool.acquire()!;
        p.fill(dests[d++ & (P - 1)]!);
        bb[k] = p;
      }
      big.ep.pipeline.fromDevice(bb, burst);
    }
  };
  const bigRows: string[] = [];
  for (const burst of [1, 32, 1, 32]) {
    feed(burst);
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    feed(burst);
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const c = process.cpuUsage(c0);
    bigRows.push(`| ${burst === 1 ? 'one packet per call' : 'bursts of 32'} | ${(M / wall / 1e6).toFixed(2)} | ${(M / ((c.user + c.system) / 1e6) / 1e6).toFixed(2)} |`);
  }
  const bigDrops = JSON.stringify(big.ep.drops.toJSON());
  return {
    title: 'Pipeline alone (no I/O): Mpps per direction, heap growth',
    markdown: `| path | Mpps (wall) | Mpps per CPU-second | heap growth over ${N / 1e6}M packets (bytes) |
|---|---|---|---|
${rows.join('\n')}

Includes copying each packet into its pool slot. Drops during the run: ${drops === '{}' ? 'none' : drops}; live pool slots after: ${ep.pools.live}.

TUN -> peer with the 1M-prefix IPv4 table loaded (${big.ep.router.list({ table: 'main' }).length.toLocaleString('en')} routes), UDP packets to 64k different in-table destinations, ${M / 1e6}M packets per run, two runs each, alternating:

| feeding | Mpps (wall) | Mpps per CPU-second |
|---|---|---|
${bigRows.join('\n')}

Drops: ${bigDrops === '{}' ? 'none' : bigDrops}; live pool slots after: ${big.ep.pools.live}.`,
  };
}
