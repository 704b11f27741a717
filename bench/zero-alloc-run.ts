/**
 * Child process of bench/zero-alloc.bench.ts and test/endpoint/fast-alloc.test.ts: pushes
 * packets in-process through the real fast path — the fast engine (fast-engine.ts) over a
 * DataPlaneCore's pipeline, a datagram socketpair in the TUN's place and UDP on 127.0.0.1 as
 * the peer (src/endpoint/fast-rig.ts) — and prints one JSON line: packets, time, CPU, V8
 * collections (minor / major) and new-space bytes allocated during the measured loop, heap used
 * before and after (after a full GC), pool live slots during and after.
 *
 *   node --import tsx --expose-gc --max-semi-space-size=1 bench/zero-alloc-run.ts PACKETS WARM_ROUNDS
 *
 * A 1 MiB semi-space makes every 1 MiB of garbage a minor GC: with nothing allocated per packet
 * the loop sees none. Warm-up rounds first (the JIT, and the byte counters past 2^31, where V8
 * changes their representation once).
 */
import v8 from 'node:v8';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { parseConfig } from '../src/config/config.ts';
import { DataPlaneCore } from '../src/endpoint/dataplane-core.ts';
import { FastRig } from '../src/endpoint/fast-rig.ts';
import { sysLibc, sysUnavailableReason } from '../src/sys/libc.ts';

const packetsWanted = Number(process.argv[2] ?? 10_000_000);
const warmRounds = Number(process.argv[3] ?? 2000);
const libc = sysLibc();
if (libc === null) {
  process.stdout.write(`${JSON.stringify({ skipped: sysUnavailableReason() })}\n`);
  process.exit(0);
}
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

const config = parseConfig({
  interface: { name: 'ferry0', address: ['10.0.0.1/24', 'fd00::1/64'], mtu: 1400 },
  peers: [{ name: 'peer', endpoint: '192.0.2.1:6080', routes: ['192.168.20.0/24', 'fd00:20::/64'] }],
});
const core = new DataPlaneCore(config, { senderId: 1 });
const rig = new FastRig(libc, core);
const moved = (): number => rig.counts.peerReceived + rig.engine.writer.stats.txPackets;
const round = (): void => {
  rig.tunToPeer();
  rig.peerToTun();
};

for (let i = 0; i < warmRounds; i++) round();
const liveDuring = core.pools.live - rig.engine.reservedSlots;

/** Every collection seen: kind and start time; those that started inside the measured loop count. */
const seen: { minor: boolean; at: number }[] = [];
const obs = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind;
    seen.push({ minor: kind === constants.NODE_PERFORMANCE_GC_MINOR, at: e.startTime });
  }
});
obs.observe({ entryTypes: ['gc'] });
gc();
await new Promise((r) => setTimeout(r, 20));
const newSpace = (): number => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_used_size;
const heapBefore = process.memoryUsage().heapUsed;
const ns0 = newSpace();
const p0 = moved();
const c0 = process.cpuUsage();
const t0 = performance.now();
let rounds = 0;
while (moved() - p0 < packetsWanted) {
  round();
  rounds++;
}
const t1 = performance.now();
const cpu = process.cpuUsage(c0);
const ns1 = newSpace();
const packets = moved() - p0;
await new Promise((r) => setTimeout(r, 20)); // let the observer hear of every collection
obs.disconnect();
const inLoop = seen.filter((g) => g.at >= t0 && g.at <= t1);
const minor = inLoop.filter((g) => g.minor).length;
const major = inLoop.length - minor;
gc();
const heapAfter = process.memoryUsage().heapUsed;
const drops = core.drops.toJSON();
const engineErrors = rig.engine.stats.errors;
rig.close();
process.stdout.write(
  `${JSON.stringify({
    packets,
    rounds,
    families: rig.families,
    ms: t1 - t0,
    cpuUserMs: cpu.user / 1000,
    cpuSystemMs: cpu.system / 1000,
    minorGcs: minor,
    majorGcs: major,
    newSpaceAllocated: minor + major === 0 ? ns1 - ns0 : null,
    heapBefore,
    heapAfter,
    poolLiveDuring: liveDuring,
    poolLiveAfter: core.pools.live,
    drops,
    engineErrors,
  })}\n`,
);
