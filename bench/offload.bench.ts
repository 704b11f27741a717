/**
 * Fast-path offload microbench (in process, no kernel I/O except the FFI rows):
 * - TSO split of a 64,000-byte TCP super-packet (v4 MSS 1348 -> 48 segments, v6 MSS 1328 -> 49)
 *   out of a 64 KiB pool slot: ns per super-packet and per segment (headers to the arena,
 *   checksums computed fully, payloads summed in place);
 * - GRO coalesce of those 48 segments from one pool slab (reset + 48 add, each with IPv4 header
 *   and TCP checksum verification + finish): per batch and per segment;
 * - the checksum choice in split: what seeding from the kernel's partial sum would save (the
 *   pseudo-header address sum, once per super-packet) next to the split itself;
 * - the payload sum: sumWordsWide (Uint32Array) against sumWords (bytes) over 64 KiB;
 * - the FFI: a trivial libc call through koffi, write(2) of 100 bytes to /dev/null through koffi
 *   (pointer as a number) and fs.writeSync, poll(2) with no fds, an eventfd wake + drain pair.
 * CPU time of this process per operation (process.cpuUsage; the machine is shared), best of
 * REPS; "GCs" counts V8 collections during the timed runs (0 = the loop allocates nothing).
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadavg } from 'node:os';
import { PerformanceObserver } from 'node:perf_hooks';
import type { BenchSection } from './run.ts';
import { BufferPool, LARGE_SLOT_SIZE, type PacketBuffer } from '../src/base/pool.ts';
import { GroCoalescer } from '../src/device/gro-coalesce.ts';
import { SegmentList, TsoSplitter } from '../src/device/tso-split.ts';
import { sysLibc, sysUnavailableReason } from '../src/sys/libc.ts';
import { SysMemory } from '../src/sys/memory.ts';
import { EventFd } from '../src/sys/poll.ts';
import { VnetHdr, VNET_HDR_LEN } from '../src/sys/virtio-net-hdr.ts';
import { fold16, sumShort, sumWords, sumWordsWide } from '../src/wire/checksum.ts';
import { TCP_ACK, TCP_PSH } from '../src/wire/tcp.ts';
import { pattern, tsOption, writeSuper } from '../test/device/tcp-super.ts';

const REPS = 3;
const tick = () => new Promise<void>((r) => setImmediate(r));

interface Rate {
  /** ns of CPU per operation, best run */
  ns: number;
  gcs: number;
}

/** fn(n) does n operations and returns a number (kept so nothing is optimised away). */
async function measure(fn: (n: number) => number, n: number): Promise<Rate> {
  for (let k = 0; k < 50; k++) fn(Math.max(1, n >> 6)); // warm-up: optimise fn, not only an OSR entry
  let best = Infinity;
  let gcs = 0;
  const obs = new PerformanceObserver((list) => {
    gcs += list.getEntries().length;
  });
  await tick();
  obs.observe({ entryTypes: ['gc'] });
  for (let rep = 0; rep < REPS; rep++) {
    const c0 = process.cpuUsage();
    const acc = fn(n);
    const c = process.cpuUsage(c0);
    if (!Number.isFinite(acc)) throw new Error('bench: bad accumulator');
    best = Math.min(best, ((c.user + c.system) * 1000) / n);
  }
  await tick();
  await tick();
  obs.disconnect();
  return { ns: best, gcs };
}

/** A super-packet [vnet][IP] in a large pool slot, the IP header 2 bytes past a 4-byte boundary. */
const held: PacketBuffer[] = [];

function superInPool(pool: BufferPool, v6: boolean, mss: number): { buf: Uint8Array; off: number; len: number; vnet: VnetHdr } {
  const p = pool.acquire()!;
  held.push(p);
  const off = p.offset + 2;
  const len = writeSuper(
    { v6, payload: pattern(64000 - (v6 ? 72 : 52), 5), flags: TCP_ACK | TCP_PSH, options: tsOption(1, 2) },
    mss,
    p.buf,
    off,
  );
  return { buf: p.buf, off, len, vnet: new VnetHdr(p.buf, off - VNET_HDR_LEN) };
}

export default async function (): Promise<BenchSection> {
  const load0 = loadavg()[0]!;
  const pool = new BufferPool({ slotSize: LARGE_SLOT_SIZE, slots: 8 });
  const splitter = new TsoSplitter();
  const segs = new SegmentList(128);
  const rows: string[] = [];
  const row = (what: string, r: Rate, per: string) => rows.push(`| ${what} | ${r.ns.toFixed(0)} | ${per} | ${r.gcs} |`);

  // --- split
  const split: Record<string, { rate: Rate; n: number }> = {};
  for (const v6 of [false, true]) {
    const mss = v6 ? 1328 : 1348;
    const s = superInPool(pool, v6, mss);
    const n = splitter.split(s.buf, s.off, s.len, s.vnet, segs);
    if (n < 40) throw new Error(`bench: split gave ${n}`);
    const rate = await measure((k) => {
      let acc = 0;
      for (let i = 0; i < k; i++) acc += splitter.split(s.buf, s.off, s.len, s.vnet, segs);
      return acc;
    }, 20_000);
    split[v6 ? 'v6' : 'v4'] = { rate, n };
    row(`TSO split, IPv${v6 ? 6 : 4} 64,000-byte super-packet -> ${n} segments`, rate, `${(rate.ns / n).toFixed(0)} ns per segment`);
  }

  // --- coalesce: the v4 segments laid out in one slot as a GRO receive would leave them
  const v4 = superInPool(pool, false, 1348);
  const nSeg = splitter.split(v4.buf, v4.off, v4.len, v4.vnet, segs);
  const rxSlot = pool.acquire()!;
  held.push(rxSlot);
  const slab = pool.bytes;
  const base = rxSlot.slot * pool.slotSize + 2;
  const offs = new Int32Array(nSeg);
  const lens = new Int32Array(nSeg);
  let p = base;
  for (let i = 0; i < nSeg; i++) {
    lens[i] = segs.copySegment(i, slab, p);
    offs[i] = p;
    p += lens[i]!;
  }
  const headCopy = slab.slice(offs[0]!, offs[0]! + segs.hdrLen);
  const gro = new GroCoalescer(256);
  const coalesce = await measure((k) => {
    let acc = 0;
    for (let i = 0; i < k; i++) {
      for (let j = 0; j < headCopy.length; j++) slab[offs[0]! + j] = headCopy[j]!; // finish() rewrote the head
      gro.reset(slab);
      for (let j = 0; j < nSeg; j++) gro.add(offs[j]!, lens[j]!);
      gro.finish();
      acc += gro.count + gro.segs[0]!;
    }
    return acc;
  }, 20_000);
  if (gro.count !== 1 || gro.segs[0] !== nSeg) throw new Error(`bench: coalesce gave ${gro.count} entries`);
  row(`GRO coalesce, IPv4: ${nSeg} segments (checksums verified) -> 1 super-packet`, coalesce, `${(coalesce.ns / nSeg).toFixed(0)} ns per segment`);

  // --- the checksum choice in split: address sum vs seeding from the kernel's partial sum
  const addrV4 = await measure((k) => {
    let acc = 0;
    for (let i = 0; i < k; i++) acc ^= sumShort(v4.buf, v4.off + 12, 8, 6 + (i & 1));
    return acc;
  }, 5_000_000);
  const v6s = superInPool(pool, true, 1328);
  const addrV6 = await measure((k) => {
    let acc = 0;
    for (let i = 0; i < k; i++) acc ^= sumShort(v6s.buf, v6s.off + 8, 32, 6 + (i & 1));
    return acc;
  }, 5_000_000);
  const seedFromPartial = await measure((k) => {
    // read the field (pseudo-header sum over the super-packet's TCP length), take that length out
    let acc = 0;
    const at = v4.off + 20 + 16;
    const superTcpLen = v4.len - 20;
    for (let i = 0; i < k; i++) {
      const field = (v4.buf[at]! << 8) | v4.buf[at + 1]!;
      acc ^= fold16(field + (~superTcpLen & 0xffff) + (i & 1));
    }
    return acc;
  }, 5_000_000);
  row('split checksum, computed fully: pseudo-header address sum, IPv4 (once per super-packet)', addrV4, `${((addrV4.ns / split.v4!.rate.ns) * 100).toFixed(2)}% of a split`);
  row('split checksum, computed fully: pseudo-header address sum, IPv6 (once per super-packet)', addrV6, `${((addrV6.ns / split.v6!.rate.ns) * 100).toFixed(2)}% of a split`);
  row('split checksum, seeded from the kernel\'s partial sum instead (once per super-packet)', seedFromPartial, 'the alternative');

  // --- payload sums
  const sumWide = await measure((k) => {
    let acc = 0;
    for (let i = 0; i < k; i++) acc ^= sumWordsWide(v4.buf, v4.off + 52, 65536 - 200);
    return acc;
  }, 20_000);
  const sumBytes = await measure((k) => {
    let acc = 0;
    for (let i = 0; i < k; i++) acc ^= sumWords(v4.buf, v4.off + 52, 65536 - 200) % 65535;
    return acc;
  }, 5_000);
  row('payload sum over 64 KiB: sumWordsWide (Uint32Array words)', sumWide, `${((65336 / sumWide.ns) * 8).toFixed(1)} Gbit/s`);
  row('payload sum over 64 KiB: sumWords (byte loads)', sumBytes, `${((65336 / sumBytes.ns) * 8).toFixed(1)} Gbit/s`);

  // --- FFI
  const libc = sysLibc();
  let ffiNote = '';
  if (libc) {
    const koffi = createRequire(import.meta.url)('koffi') as { load(p: string): { func(d: string): (x: number) => number } };
    const abs = koffi.load('libc.so.6').func('int abs(int)');
    const trivial = await measure((k) => {
      let acc = 0;
      for (let i = 0; i < k; i++) acc ^= abs(-i);
      return acc;
    }, 2_000_000);
    const mem = new SysMemory(libc, 65536);
    const data = mem.alloc(128);
    const devnull = openSync('/dev/null', 'w');
    const buf100 = Buffer.alloc(100);
    const writeKoffi = await measure((k) => {
      let acc = 0;
      for (let i = 0; i < k; i++) acc ^= libc.write(devnull, mem.addr(data), 100);
      return acc;
    }, 500_000);
    const writeFs = await measure((k) => {
      let acc = 0;
      for (let i = 0; i < k; i++) acc ^= writeSync(devnull, buf100, 0, 100);
      return acc;
    }, 500_000);
    closeSync(devnull);
    const pollEmpty = await measure((k) => {
      let acc = 0;
      for (let i = 0; i < k; i++) acc ^= libc.poll(0, 0, 0);
      return acc + 1;
    }, 500_000);
    const ev = new EventFd(libc, mem);
    const wakeDrain = await measure((k) => {
      let acc = 0;
      for (let i = 0; i < k; i++) {
        ev.wake();
        acc ^= ev.drain();
      }
      return acc;
    }, 300_000);
    ev.close();
    row('FFI: trivial libc call (abs) through koffi', trivial, 'the call overhead');
    row('FFI: write(2) 100 B to /dev/null, koffi, pointer as a number', writeKoffi, 'syscall included');
    row('fs.writeSync 100 B to /dev/null (for comparison)', writeFs, 'syscall included');
    row('FFI: poll(2) with no fds, timeout 0', pollEmpty, 'a bare syscall');
    row('FFI: eventfd wake + drain (write + read of 8 bytes)', wakeDrain, 'two syscalls');
  } else {
    ffiNote = ` FFI rows skipped: ${sysUnavailableReason()}.`;
  }
  const load1 = loadavg()[0]!;
  for (const h of held.splice(0)) h.release();
  const live = pool.live;
  const markdown = [
    '| what | ns (CPU) per op | per unit | GCs |',
    '|---|---:|---|---:|',
    ...rows,
    '',
    `Best of ${REPS} runs per row after a warm-up; CPU time of this process per operation (split and coalesce: per super-packet / batch of 48). Super-packets and segments live in 64 KiB pool slots (BufferPool, shared slab); split writes headers to its arena and sums payloads in place; coalesce verifies each segment's IPv4 header and TCP checksum, then rewrites the head (the bench restores the head's 52 header bytes before each batch, inside the timing). GCs = V8 collections during the timed runs (0: no allocation per packet). Pool slots live after the run: ${live}. Load average ${load0.toFixed(2)} -> ${load1.toFixed(2)} on this shared 2-vCPU machine.${ffiNote}`,
  ].join('\n');
  return { title: 'Fast-path offloads: TSO split, GRO coalesce, checksums, FFI call cost', markdown };
}
