/**
 * Packet fuzzer: random and mutated packets through IPv4/IPv6 check + parse + describe, the IPv6
 * chain walk, the upper-layer views, reassembly (with timeouts firing and ICMP time exceeded
 * built from the quote) and fragmentation of whatever parses. Every packet runs inside its own
 * try/catch so one exception does not hide the next; the result lists the first few with the
 * packet bytes (hex) to reproduce them.
 *
 * Corpus: every kernel fixture (test/fixtures/kernel/*.pcap) plus packets this project builds:
 * our IPv4/IPv6 fragments of the kernel's datagrams at random MTUs, ICMP errors from the wire
 * builders, and hand-built IPv6 packets with extension-header chains. Mutations: bit flips,
 * truncation, length-field edits (total length, IHL, payload length, extension header lengths,
 * fragment offsets and flags), random byte runs, trailing garbage, and wholly random packets.
 * Fragment series (valid, shuffled, one piece mutated) are fed now and then so datagrams also
 * complete.
 *
 * Deterministic for a given seed (xorshift PRNG, fake clock).
 *
 * Bounds-checked mode (`checked: true`, and `npm run fuzz -- --checked`): every packet is handed
 * to the code as a Proxy that throws on a read outside it (test/support/checked-bytes.ts), and
 * every pool slot likewise, so an out-of-bounds read (which JavaScript turns into `undefined`, or
 * the stale bytes after the packet) becomes an exception this fuzzer reports. Slower (~10x).
 */
import { readdirSync } from 'node:fs';
import { DropReason } from '../../src/base/drop-reason.ts';
import { Fragmenter } from '../../src/frag/fragment.ts';
import { Reassembler } from '../../src/frag/reassembly.ts';
import { PacketPools, type PacketBuffer } from '../../src/base/pool.ts';
import { Icmpv4Packet, buildIcmpv4Error } from '../../src/wire/icmpv4.ts';
import { Icmpv6Packet } from '../../src/wire/icmpv6.ts';
import { buildIcmpv6Error } from '../../src/wire/icmpv6-error.ts';
import { Ipv4Packet } from '../../src/wire/ipv4.ts';
import { Ipv6Packet } from '../../src/wire/ipv6.ts';
import { Ipv6Chain, walkIpv6Chain } from '../../src/wire/ipv6-chain.ts';
import { TcpPacket } from '../../src/wire/tcp.ts';
import { UdpPacket } from '../../src/wire/udp.ts';
import { KERNEL_FIXTURE_DIR, readPcap } from '../support/pcap.ts';
import { udpLike, v4, v6 } from '../frag/packets.ts';
import { describeIp } from '../../src/wire/describe.ts';
import { Rng } from '../support/rng.ts';
import { checkedWindow, checkPools } from '../support/checked-bytes.ts';

export interface FuzzOptions {
  /** Packets to run (fragment series count one per fragment). */
  packets: number;
  seed?: number;
  /** Stop early (and report) after this many milliseconds. */
  timeBudgetMs?: number;
  /** Call describe() on one packet in this many (string building is slow). Default 64. */
  describeEvery?: number;
  onProgress?: (done: number) => void;
  /** Bounds-checked packets and pool slots (see the header). */
  checked?: boolean;
}

export interface FuzzResult {
  packets: number;
  exceptions: number;
  /** The first few exceptions: message, stack head and the packet (hex). */
  samples: Array<{ error: string; packet: string }>;
  completed: number;
  fragmentsMade: number;
  timeExceeded: number;
  drops: Record<string, number>;
  liveAfter: number;
  ms: number;
  timedOut: boolean;
}


/** Load kernel fixtures and build our own packets for the corpus. */
export function buildCorpus(pools: PacketPools, rng: Rng = new Rng(1)): Buffer[] {
  const corpus: Buffer[] = [];
  for (const f of readdirSync(KERNEL_FIXTURE_DIR)) {
    if (!f.endsWith('.pcap')) continue;
    for (const p of readPcap(KERNEL_FIXTURE_DIR + f).packets) corpus.push(Buffer.from(p.data));
  }
  const frag = new Fragmenter({ pool: pools });
  const whole: Buffer[] = [
    v4({ payload: udpLike(3000, 3), id: 77 }),
    v4({ payload: udpLike(1200, 4), proto: 6, id: 78, options: [131, 7, 4, 10, 9, 9, 9, 7, 7, 4, 0, 0, 0, 0] }),
    v6({ payload: udpLike(3000, 5) }),
    v6({ payload: udpLike(2000, 6), ext: [[0, 8], [60, 16], [43, 24], [60, 8]] }),
    v6({ payload: udpLike(100, 7), ext: [[0, 8], [43, 24]] }),
    v6({ payload: udpLike(40, 8), nh: 6, frag: { offset: 0, more: false, id: 9 } }),
  ];
  corpus.push(...whole);
  for (const w of whole) {
    for (const mtu of [68, 200, 576, 1280, 1400]) {
      const r = w[0]! >> 4 === 4 ? frag.fragmentV4(w, 0, w.length, mtu) : frag.fragmentV6(w, 0, w.length, mtu, true);
      if (r !== DropReason.None) continue;
      for (let i = 0; i < frag.count; i++) corpus.push(Buffer.from(frag.out[i]!.bytes()));
      frag.releaseAll();
    }
  }
  // ICMP errors built by the wire builders about corpus packets.
  const out = Buffer.alloc(1400);
  const src6 = Buffer.from([0xfd, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x99]);
  const n = corpus.length;
  for (let i = 0; i < n; i++) {
    const p = corpus[i]!;
    if (p.length < 20) continue;
    if (p[0]! >> 4 === 4) {
      for (const [t, c, param] of [
        [3, 4, 1280],
        [11, 0, 0],
        [11, 1, 0],
        [3, 3, 0],
        [12, 0, 20],
      ] as const) {
        const len = buildIcmpv4Error(out, 0, t, c, param, p, 0, p.length, 0x0a000001 + rng.int(100));
        if (len > 0) corpus.push(Buffer.from(out.subarray(0, len)));
      }
    } else if (p[0]! >> 4 === 6) {
      for (const [t, c, param] of [
        [2, 0, 1280],
        [3, 0, 0],
        [3, 1, 0],
        [1, 4, 0],
        [4, 0, 6],
      ] as const) {
        const len = buildIcmpv6Error(out, 0, t, c, param, p, 0, p.length, src6, 0);
        if (len > 0) corpus.push(Buffer.from(out.subarray(0, len)));
      }
    }
  }
  return corpus;
}

/** Everything one fuzz run needs, created once (no per-packet objects on our side either). */
class Harness {
  readonly pools = new PacketPools({ small: { slots: 2048 }, large: { slots: 96 } });
  readonly ip4 = new Ipv4Packet();
  readonly ip6 = new Ipv6Packet();
  readonly chain = new Ipv6Chain();
  readonly icmp4 = new Icmpv4Packet();
  readonly icmp6 = new Icmpv6Packet();
  readonly udp = new UdpPacket();
  readonly tcp = new TcpPacket();
  readonly frag: Fragmenter;
  readonly reasm: Reassembler;
  readonly errOut = Buffer.alloc(1400);
  /** Wrap a packet for the code under test: itself, or (checked mode) a bounds-checked view of it. */
  win: (buf: Uint8Array, off: number, len: number) => Uint8Array = (b) => b;
  readonly src6 = Buffer.alloc(16, 0xfd);
  clock = 0;
  timeExceeded = 0;
  completed = 0;
  fragmentsMade = 0;
  describeEvery: number;
  n = 0;

  constructor(describeEvery: number) {
    this.describeEvery = describeEvery;
    this.frag = new Fragmenter({ pool: this.pools });
    this.reasm = new Reassembler({
      pools: this.pools,
      now: () => this.clock,
      maxDatagrams: 64,
      onTimeExceeded: (family, buf, off, len) => {
        this.timeExceeded++;
        const n =
          family === 4
            ? buildIcmpv4Error(this.errOut, 0, 11, 1, 0, buf, off, len, 0x0a000001)
            : buildIcmpv6Error(this.errOut, 0, 3, 1, 0, buf, off, len, this.src6, 0);
        if (n > 0) this.inspect(this.win(this.errOut, 0, n), 0, n);
      },
    });
  }

  /** Parse/validate everything the views offer, without reassembly. */
  inspect(buf: Uint8Array, off: number, len: number): void {
    const wantDescribe = ++this.n % this.describeEvery === 0;
    if (len <= 0) return;
    const v = buf[off]! >> 4;
    if (v === 4) {
      const ip = this.ip4.wrap(buf, off, len);
      if (ip.check() !== DropReason.None) return;
      ip.validate();
      ip.verifyChecksum();
      ip.parse();
      if (wantDescribe) describeIp(buf, off, len);
      if (ip.isFragment && ip.fragOffset !== 0) return;
      const po = ip.payloadOffset;
      const pl = ip.payloadLength;
      this.upper(ip.protocol, buf, po, pl, wantDescribe);
    } else if (v === 6) {
      const ip = this.ip6.wrap(buf, off, len);
      if (ip.check() !== DropReason.None) return;
      ip.parse();
      if (wantDescribe) describeIp(buf, off, len);
      const c = this.chain;
      if (walkIpv6Chain(buf, off, len, c) !== DropReason.None) return;
      if (c.isFragment && !c.isAtomicFragment && c.fragmentOffset !== 0) return;
      if (c.upperOffset >= 0) this.upper(c.upperProtocol, buf, c.upperOffset, c.end - c.upperOffset, wantDescribe);
    }
  }

  private upper(proto: number, buf: Uint8Array, off: number, len: number, wantDescribe: boolean): void {
    if (len < 0 || off + len > buf.length) return;
    if (proto === 17) {
      const u = this.udp.wrap(buf, off, len);
      if (u.check() === DropReason.None) {
        u.parse();
        if (wantDescribe) u.describe();
      }
    } else if (proto === 6) {
      const t = this.tcp.wrap(buf, off, len);
      if (t.check() === DropReason.None) {
        t.parse();
        if (wantDescribe) t.describe();
      }
    } else if (proto === 1) {
      const i = this.icmp4.wrap(buf, off, len);
      if (i.check() === DropReason.None) {
        i.verifyChecksum();
        i.parse();
        if (wantDescribe) i.describe();
      }
    } else if (proto === 58) {
      const i = this.icmp6.wrap(buf, off, len);
      if (i.check() === DropReason.None) {
        i.parse();
        if (wantDescribe) i.describe();
      }
    }
  }

  /** The full path: inspect, reassemble, fragment what is whole, release what we got. */
  process(buf: Uint8Array, off: number, len: number, mtu: number): void {
    this.inspect(buf, off, len);
    const v = len > 0 ? buf[off]! >> 4 : 0;
    let done: PacketBuffer | null;
    if (v === 6) done = this.reasm.submitV6(buf, off, len);
    else if (v === 4) done = this.reasm.submitV4(buf, off, len);
    else {
      // Wrong version: both engines must reject it cleanly.
      done = this.reasm.submitV4(buf, off, len);
      if (done) done.release();
      done = this.reasm.submitV6(buf, off, len);
    }
    if (done !== null) {
      this.completed++;
      this.inspect(done.buf, done.offset, done.length);
      this.fragment(done.buf, done.offset, done.length, mtu);
      done.release();
    } else if (v === 4 || v === 6) {
      this.fragment(buf, off, len, mtu);
    }
  }

  fragment(buf: Uint8Array, off: number, len: number, mtu: number): void {
    const v = buf[off]! >> 4;
    const r = v === 4 ? this.frag.fragmentV4(buf, off, len, mtu) : this.frag.fragmentV6(buf, off, len, mtu, mtu < 1280);
    if (r === DropReason.None && this.frag.count > 0) {
      this.fragmentsMade += this.frag.count;
      // Look at the first and last piece, then give them all back.
      const a = this.frag.out[0]!;
      this.inspect(a.buf, a.offset, a.length);
      const z = this.frag.out[this.frag.count - 1]!;
      this.inspect(z.buf, z.offset, z.length);
      this.frag.releaseAll();
    }
  }
}

const MTUS = [68, 96, 576, 1280, 1400, 1500, 9000];

/** Mutate scratch[0, len) in place; returns the new length. */
function mutate(rng: Rng, s: Buffer, len: number): number {
  const kind = rng.int(10);
  switch (kind) {
    case 0:
      return len; // as is
    case 1: {
      const flips = 1 + rng.int(8);
      for (let i = 0; i < flips && len > 0; i++) s[rng.int(len)]! ^= 1 << rng.int(8);
      return len;
    }
    case 2:
      return rng.int(len + 1);
    case 3: {
      // Length and offset fields.
      const v = len > 0 ? s[0]! >> 4 : 0;
      const val = rng.chance(0.5) ? rng.int(65536) : rng.int(len + 64);
      if (v === 4 && len >= 20) {
        const which = rng.int(4);
        if (which === 0) s.writeUInt16BE(val, 2);
        else if (which === 1) s[0] = 0x40 | rng.int(16);
        else if (which === 2) s.writeUInt16BE(rng.int(65536), 6);
        else s.writeUInt16BE((s.readUInt16BE(6) & 0xe000) | rng.int(8192), 6);
      } else if (v === 6 && len >= 40) {
        const which = rng.int(4);
        if (which === 0) s.writeUInt16BE(val, 4);
        else if (which === 1) s[6] = [0, 43, 44, 60, 51, 50, 59, 6, 17, 58, 135, 253, rng.int(256)][rng.int(13)]!;
        else if (which === 2 && len > 42) s[41] = rng.int(256);
        else if (len > 44) s.writeUInt16BE(rng.int(65536), 42);
      } else if (len >= 4) {
        s.writeUInt16BE(val, 2);
      }
      return len;
    }
    case 4: {
      const runs = 1 + rng.int(4);
      for (let r = 0; r < runs && len > 0; r++) {
        const at = rng.int(len);
        const n = Math.min(len - at, 1 + rng.int(16));
        for (let i = 0; i < n; i++) s[at + i] = rng.int(256);
      }
      return len;
    }
    case 5: {
      const extra = Math.min(s.length - len, rng.int(64));
      for (let i = 0; i < extra; i++) s[len + i] = rng.int(256);
      return len + extra;
    }
    case 6: {
      // Wholly random packet with a plausible first byte.
      const n = rng.int(rng.chance(0.8) ? 200 : 1600);
      for (let i = 0; i < n; i++) s[i] = rng.int(256);
      if (n > 0) s[0] = rng.chance(0.5) ? 0x45 : 0x60;
      if (n > 4 && rng.chance(0.5)) {
        if (s[0] === 0x45) s.writeUInt16BE(n, 2);
        else s.writeUInt16BE(Math.max(0, n - 40), 4);
      }
      return n;
    }
    case 7: {
      // Combine: truncate then flip.
      const l = rng.int(len + 1);
      if (l > 0) s[rng.int(l)]! ^= 1 << rng.int(8);
      return l;
    }
    default: {
      // One random byte in the first 64 (headers) to a random value.
      if (len > 0) s[rng.int(Math.min(len, 64))] = rng.int(256);
      return len;
    }
  }
}

export function runFuzz(opts: FuzzOptions): FuzzResult {
  const t0 = performance.now();
  const rng = new Rng(opts.seed ?? 0xc0ffee);
  const h = new Harness(opts.describeEvery ?? 64);
  const corpus = buildCorpus(h.pools, rng);
  const unchecked = opts.checked ? checkPools(h.pools) : () => {};
  if (opts.checked) h.win = (b, off, len) => checkedWindow(b, off, off + len);
  const s = Buffer.alloc(70000);
  const samples: FuzzResult['samples'] = [];
  let exceptions = 0;
  let done = 0;
  let timedOut = false;
  const series: Buffer[] = [];
  const seriesFrag = new Fragmenter({ pool: h.pools });

  const run = (buf: Buffer, len: number, mtu: number) => {
    try {
      h.process(h.win(buf, 0, len), 0, len, mtu);
    } catch (e) {
      exceptions++;
      if (samples.length < 8) {
        const err = e as Error;
        samples.push({
          error: `${err?.message ?? String(e)} ${(err?.stack ?? '').split('\n').slice(1, 4).join(' | ')}`,
          packet: buf.subarray(0, Math.min(len, 256)).toString('hex'),
        });
      }
    }
  };

  while (done < opts.packets) {
    if ((done & 1023) === 0) {
      if (opts.timeBudgetMs !== undefined && performance.now() - t0 > opts.timeBudgetMs) {
        timedOut = true;
        break;
      }
      opts.onProgress?.(done);
      h.clock += rng.int(40_000); // timeouts (30 s v4, 60 s v6) fire now and then
      try {
        h.reasm.poll(h.clock);
      } catch (e) {
        exceptions++;
        if (samples.length < 8) samples.push({ error: `poll: ${(e as Error).message}`, packet: '' });
      }
    }
    const mtu = MTUS[rng.int(MTUS.length)]!;
    if (rng.int(256) === 0) {
      // A fragment series: fragment a corpus datagram (or a random one), shuffle, mutate one.
      const src = rng.chance(0.5) ? corpus[rng.int(corpus.length)]! : v4({ payload: udpLike(8 + rng.int(20000), rng.u32()), id: rng.int(65536) });
      const six = src.length > 0 && src[0]! >> 4 === 6;
      const fmtu = six ? 1280 + rng.int(200) : 68 + rng.int(1400);
      const r = six ? seriesFrag.fragmentV6(src, 0, src.length, fmtu) : seriesFrag.fragmentV4(src, 0, src.length, fmtu);
      series.length = 0;
      if (r === DropReason.None) {
        for (let i = 0; i < seriesFrag.count; i++) series.push(Buffer.from(seriesFrag.out[i]!.bytes()));
        seriesFrag.releaseAll();
      }
      for (let i = series.length - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        const t = series[i]!;
        series[i] = series[j]!;
        series[j] = t;
      }
      const bad = rng.chance(0.5) ? rng.int(series.length + 1) : -1;
      for (let i = 0; i < series.length && done < opts.packets; i++) {
        const f = series[i]!;
        f.copy(s, 0);
        const len = i === bad ? mutate(rng, s, f.length) : f.length;
        run(s, len, mtu);
        done++;
      }
      continue;
    }
    const src = corpus[rng.int(corpus.length)]!;
    src.copy(s, 0);
    let len = mutate(rng, s, src.length);
    if (rng.chance(0.25)) len = mutate(rng, s, len);
    run(s, len, mtu);
    done++;
  }

  // Drain: expire everything (ICMP built from the quotes), then the pools must be empty.
  try {
    h.clock += 120_000;
    h.reasm.poll(h.clock);
  } catch (e) {
    exceptions++;
    samples.push({ error: `final poll: ${(e as Error).message}`, packet: '' });
  }
  h.reasm.clear();
  unchecked();
  const drops = { ...h.reasm.drops.toJSON() };
  for (const [k, v] of Object.entries(h.frag.drops.toJSON())) drops[`frag.${k}`] = v;
  return {
    packets: done,
    exceptions,
    samples,
    completed: h.completed,
    fragmentsMade: h.fragmentsMade,
    timeExceeded: h.timeExceeded,
    drops,
    liveAfter: h.pools.live,
    ms: Math.round(performance.now() - t0),
    timedOut,
  };
}
