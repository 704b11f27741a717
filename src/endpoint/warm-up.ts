/**
 * JIT warm-up: at a tunnel's usual packet rates (a ping every 50 ms, say) the forwarding code
 * would stay in V8's interpreter for a long time, and each packet would pay for it in latency
 * (measured: ~0.6 ms of a ~1.5 ms RTT through two endpoints, bench/latency.bench.ts). So before
 * an endpoint starts, typical packets — UDP, ICMP echo, TCP SYN with MSS, both families, both
 * directions — are pushed through a throwaway pipeline built from the same config (never
 * started: no socket, no device). Prototype methods share their feedback and optimized code
 * across instances, so the real pipeline starts hot.
 */
import type { Config } from '../config/config.ts';
import { DropReason } from '../base/drop-reason.ts';
import type { PacketBuffer, PacketPools } from '../base/pool.ts';
import type { Transport } from '../transport/transport.ts';
import type { PacketDevice } from '../device/device.ts';
import { checksum, pseudoHeaderSumV4, pseudoHeaderSumV6 } from '../wire/checksum.ts';
import type { Pipeline } from './pipeline.ts';

const PAYLOAD = 64;

/** Kinds of packets per family: UDP, ICMP echo request, TCP SYN with an MSS option. */
function buildV4(kind: number, src: Uint8Array, dst: Uint8Array): Buffer {
  const upper = kind === 0 ? 8 + PAYLOAD : kind === 1 ? 8 + PAYLOAD : 24;
  const b = Buffer.alloc(20 + upper);
  b[0] = 0x45;
  b.writeUInt16BE(b.length, 2);
  b.writeUInt16BE(0x4000, 6); // DF
  b[8] = 64;
  b[9] = kind === 0 ? 17 : kind === 1 ? 1 : 6;
  b.set(src, 12);
  b.set(dst, 16);
  b.writeUInt16BE(checksum(b, 0, 20), 10);
  fillUpper(b, 20, kind, 4);
  return b;
}

function buildV6(kind: number, src: Uint8Array, dst: Uint8Array): Buffer {
  const upper = kind === 2 ? 24 : 8 + PAYLOAD;
  const b = Buffer.alloc(40 + upper);
  b[0] = 0x60;
  b.writeUInt16BE(upper, 4);
  b[6] = kind === 0 ? 17 : kind === 1 ? 58 : 6;
  b[7] = 64;
  b.set(src, 8);
  b.set(dst, 24);
  fillUpper(b, 40, kind, 6);
  return b;
}

function fillUpper(b: Buffer, u: number, kind: number, family: 4 | 6): void {
  const len = b.length - u;
  const proto = kind === 0 ? 17 : kind === 1 ? (family === 4 ? 1 : 58) : 6;
  if (kind === 0) {
    b.writeUInt16BE(40000, u);
    b.writeUInt16BE(5201, u + 2);
    b.writeUInt16BE(len, u + 4);
  } else if (kind === 1) {
    b[u] = family === 4 ? 8 : 128;
    b.writeUInt16BE(0x7777, u + 4);
    b.writeUInt16BE(1, u + 6);
  } else {
    b.writeUInt16BE(40000, u);
    b.writeUInt16BE(5201, u + 2);
    b.writeUInt32BE(1, u + 4);
    b[u + 12] = 6 << 4; // 24-byte header
    b[u + 13] = 0x02; // SYN
    b.writeUInt16BE(64240, u + 14);
    b[u + 20] = 2; // MSS option
    b[u + 21] = 4;
    b.writeUInt16BE(1460, u + 22);
  }
  const ph = kind === 1 && family === 4 ? 0 : family === 4 ? pseudoHeaderSumV4(b, 12, 16, proto, len) : pseudoHeaderSumV6(b, 8, 24, proto, len);
  const sumOff = kind === 0 ? 6 : kind === 1 ? 2 : 16;
  b.writeUInt16BE(checksum(b, u, len, ph), u + sumOff);
}

/** An address inside a prefix: its first host (the network address + 1). */
function inside(p: { bytes: Uint8Array }): Uint8Array {
  const a = Uint8Array.from(p.bytes);
  a[a.length - 1]! |= 1;
  return a;
}

/**
 * Push about `budget` packets of the mix through `pipeline` (a throwaway one: the device and
 * transport are replaced by sinks here). Returns how many packets went through.
 */
export function exercisePipeline(pipeline: Pipeline, pools: PacketPools, config: Config, budget: number): number {
  const packets: { bytes: Buffer; peer: number }[] = [];
  config.peers.forEach((peer, index) => {
    for (const family of [4, 6] as const) {
      const remote = peer.routes.find((r) => r.family === family);
      const local = config.interface.address.find((a) => a.family === family);
      if (remote === undefined || local === undefined) continue;
      const there = inside(remote);
      for (let kind = 0; kind < 3; kind++) {
        const build = family === 4 ? buildV4 : buildV6;
        packets.push({ bytes: build(kind, local.bytes, there), peer: -1 }); // from the TUN to the peer
        packets.push({ bytes: build(kind, there, local.bytes), peer: index }); // from the peer to the TUN
      }
    }
  });
  if (packets.length === 0) return 0;
  const rounds = Math.ceil(budget / packets.length);
  pipeline.device = { mtu: config.interface.mtu, write: () => true } as unknown as PacketDevice;
  pipeline.transport = {
    send(p: PacketBuffer) {
      p.release();
      return DropReason.None;
    },
  } as unknown as Transport;
  const batch: PacketBuffer[] = [];
  let n = 0;
  for (let r = 0; r < rounds; r++) {
    for (const { bytes, peer } of packets) {
      const p = pools.small.acquire();
      if (p === null) return n;
      p.fill(bytes);
      p.tag = peer;
      batch[0] = p;
      if (peer < 0) pipeline.fromDevice(batch, 1);
      else pipeline.fromTransport(batch, 1);
      n++;
    }
  }
  pipeline.device = null;
  pipeline.transport = null;
  return n;
}
