/**
 * Zero allocations per packet on the fast path (issue 9 point 6): 10M packets in-process through
 * the real fast engine and pipeline, a datagram socketpair standing in for the TUN and UDP on
 * 127.0.0.1 for the peer (src/endpoint/fast-rig.ts). Each round: per family a 64,000-byte TCP
 * super-packet read from the "TUN", cut into 48 segments and sent in GSO messages, a NEEDS_CSUM
 * ACK and a UDP datagram; the peer answers with 46 in-order TCP segments in one GSO message
 * (received as one GRO chunk, coalesced and written as one super-packet) and a UDP datagram.
 * Runs in a child process (bench/zero-alloc-run.ts) with a 1 MiB semi-space, so any garbage
 * per packet would show as minor collections; the byte counters are past 2^31 before measuring.
 * The rig drives both ends in one thread: the time is the cost of both gateways' code and of
 * the kernel's loopback work, not a throughput figure.
 */
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchSection } from './run.ts';

const here = dirname(fileURLToPath(import.meta.url));
const compiled = import.meta.url.endsWith('.js');

export interface AllocRun {
  skipped?: string;
  packets: number;
  rounds: number;
  families: number;
  ms: number;
  cpuUserMs: number;
  cpuSystemMs: number;
  minorGcs: number;
  majorGcs: number;
  newSpaceAllocated: number | null;
  heapBefore: number;
  heapAfter: number;
  poolLiveDuring: number;
  poolLiveAfter: number;
  drops: Record<string, number>;
  engineErrors: number;
}

/** Run the child: `packets` measured after `warmRounds` rounds. */
export function runAllocProbe(packets: number, warmRounds: number): AllocRun {
  const script = join(here, compiled ? 'zero-alloc-run.js' : 'zero-alloc-run.ts');
  const loader = compiled ? [] : ['--import', 'tsx'];
  const out = execFileSync(process.execPath, [...loader, '--expose-gc', '--max-semi-space-size=1', script, String(packets), String(warmRounds)], {
    encoding: 'utf8',
    timeout: 600_000,
    cwd: join(here, '..'),
  });
  return JSON.parse(out.trim().split('\n').pop()!) as AllocRun;
}

export default async function (): Promise<BenchSection> {
  const r = runAllocProbe(10_000_000, 25_000);
  const title = 'Fast path: zero allocations per packet (10M packets in process)';
  if (r.skipped) return { title, markdown: `Skipped: ${r.skipped}.` };
  const mib = (n: number) => (n / 2 ** 20).toFixed(2);
  const cpu = r.cpuUserMs + r.cpuSystemMs;
  return {
    title,
    markdown: `| packets | rounds | minor GCs | major GCs | new-space bytes allocated | heap used before / after (after a full GC) | pool live during / after | drops | CPU per packet (both ends + kernel) |
|---|---|---|---|---|---|---|---|---|
| ${r.packets.toLocaleString('en')} | ${r.rounds} | ${r.minorGcs} | ${r.majorGcs} | ${r.newSpaceAllocated ?? 'n/a (a collection ran)'} | ${mib(r.heapBefore)} / ${mib(r.heapAfter)} MiB | ${r.poolLiveDuring} / ${r.poolLiveAfter} | ${JSON.stringify(r.drops)} | ${((cpu * 1000) / r.packets).toFixed(3)} us |

Child process with \`--max-semi-space-size=1\` (every MiB of garbage would be a minor GC); ${r.families} families; wall ${(r.ms / 1000).toFixed(1)} s, CPU ${(cpu / 1000).toFixed(1)} s (user ${(r.cpuUserMs / 1000).toFixed(1)}, system ${(r.cpuSystemMs / 1000).toFixed(1)}); the rig drives both ends in one thread. Collections are counted when they start inside the measured loop.`,
  };
}
