/**
 * The pipeline fuzzer (test/endpoint/pipeline-fuzz.test.ts runs it; so does
 * test/fuzz/mutations.ts). Bad input never throws out of the dataplane: random and mutated packets (kernel fixtures with
 * bit flips, truncation, length edits, random bytes, GUE control headers) through both directions
 * of the pipeline and the endpoint's own stack. Every packet is dropped-and-counted or forwarded;
 * no exception; every pool slot comes back.
 *
 * The pipeline catches what throws inside it (and counts it: pipeline.errors, stack.errors,
 * InternalError drops), so "no exception" is asserted on those counters. Run twice: plain, and
 * bounds-checked (test/support/checked-bytes.ts: every pool slot reads only inside its packet,
 * so an out-of-bounds read is an exception instead of stale bytes or `undefined`).
 */
import { readdirSync } from 'node:fs';
import { DropReason } from '../../src/base/drop-reason.ts';
import { Ipv4Packet } from '../../src/wire/ipv4.ts';
import { checkPools } from '../support/checked-bytes.ts';
import type { PacketBuffer } from '../../src/base/pool.ts';
import { detachedEndpoint } from '../support/endpoint-harness.ts';
import { KERNEL_FIXTURE_DIR, kernelFixture } from '../support/pcap.ts';

const STACK6 = Buffer.from('fd000000000000000000000000000254', 'hex');

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Run `packets` random and mutated packets through both directions; what came out. */
export function fuzzPipeline(packets: number, checked: boolean, seed = 20261122) {
  {
    const { ep, dev } = detachedEndpoint({
      interface: { name: 'ferry0', address: ['192.168.10.1/24', 'fd00:10::1/64'], mtu: 1400 },
      listen: '127.0.0.1:6080',
      stack: { address: ['10.0.0.254', 'fd00::254'] },
      peers: [
        { name: 'shanghai', endpoint: '127.0.0.1:6081', routes: ['192.168.20.0/24', 'fd00:20::/64', '10.0.0.0/8'], mtu: 1300, key: '00112233445566778899aabbccddeeff' },
        { name: 'hangzhou', endpoint: '127.0.0.1:6082', routes: ['192.168.30.0/24', 'fd00:30::/64'] },
      ],
      routes: ['unreachable 10.99.0.0/16', 'blackhole 10.97.0.0/16'],
      hub: true,
    });
    dev.setSink(() => {});
    const errors: string[] = [];
    ep.on('internal-error', (e, where) => {
      if (errors.length < 5) errors.push(`${where}: ${e.message} ${(e.stack ?? '').split('\n').slice(1, 4).join(' | ')}`);
    });
    const unchecked = checked ? checkPools(ep.pools) : () => {};
    const seeds = readdirSync(KERNEL_FIXTURE_DIR)
      .filter((f) => f.endsWith('.pcap'))
      .flatMap((f) => kernelFixture(f));
    const r = rng(seed);
    const pool = ep.pools.small;
    const batch: PacketBuffer[] = [];
    const scratch = Buffer.alloc(1600);
    let thrown = 0;
    for (let i = 0; i < packets; i++) {
      const base = seeds[Math.floor(r() * seeds.length)]!;
      let len = Math.min(base.length, 1500);
      base.copy(scratch, 0, 0, len);
      const mode = Math.floor(r() * 7);
      if (mode === 0) for (let k = 0; k < len; k++) scratch[k] = Math.floor(r() * 256);
      else if (mode === 1) scratch[Math.floor(r() * len)]! ^= 1 << Math.floor(r() * 8);
      else if (mode === 2) len = Math.floor(r() * len);
      else if (mode === 3) scratch.writeUInt16BE(Math.floor(r() * 65536), scratch[0]! >> 4 === 6 ? 4 : 2);
      else if (mode === 5 && len >= 40) {
        // Aim at the endpoint's own stack (reassembly, echo, UDP unreachable), header still valid.
        if (scratch[0]! >> 4 === 4) new Ipv4Packet(scratch, 0, len).rewriteDstAddr(0x0a0000fe);
        else STACK6.copy(scratch, 24);
        if (r() < 0.3) scratch[Math.floor(20 + r() * (len - 20))]! ^= 1 << Math.floor(r() * 8);
      } else if (mode === 4) {
        scratch[0] = 0x20 | Math.floor(r() * 32); // GUE variant 0, C = 1, random hlen
        scratch[1] = 128 + Math.floor(r() * 4);
      } else if (mode === 6 && scratch[0]! >> 4 === 6 && len >= 48) {
        // IPv6 extension headers whose lengths run anywhere (the chain walks must stop at the
        // packet's end), to a host behind a peer or to the endpoint's own stack.
        scratch.writeUInt16BE(len - 40, 4);
        scratch[6] = [0, 60, 43, 44, 51][Math.floor(r() * 5)]!;
        scratch[40] = [60, 17, 6, 58, 0, 43][Math.floor(r() * 6)]!;
        scratch[41] = Math.floor(r() * 256);
        for (let k = 42; k < 48; k++) scratch[k] = r() < 0.5 ? 0 : Math.floor(r() * 256);
        if (r() < 0.5) STACK6.copy(scratch, 24);
      }
      const p = pool.acquire()!;
      p.fill(scratch, 0, len);
      p.tag = Math.floor(r() * 3) - 1; // unknown peer, peer 0, peer 1
      batch[0] = p;
      try {
        if (r() < 0.5) ep.pipeline.fromDevice(batch, 1);
        else ep.pipeline.fromTransport(batch, 1);
      } catch {
        thrown++;
      }
    }
    const answered = ep.stack.echoReplies + ep.stack.errorsSent;
    ep.stack.close(); // drop reassembly state
    unchecked();
    return {
      thrown,
      caught: ep.pipeline.errors + ep.stack.errors,
      internalDrops: ep.drops.get(DropReason.InternalError),
      errors,
      answered,
      live: ep.pools.live,
      drops: ep.drops.total,
    };
  }
}

