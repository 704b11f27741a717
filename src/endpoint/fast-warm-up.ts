/**
 * JIT warm-up for the fast path, inside the data-plane worker before it takes its first packet:
 * the pipeline's packet mix (warm-up.ts) through a throwaway core, then rounds of the fast
 * engine's own I/O code — TUN reads of super-packets and plain packets, the TSO split, GSO
 * sends, GRO receives, the coalescer and its writes — on stand-in fds (fast-rig.ts: a socketpair
 * for the TUN, UDP on 127.0.0.1 for the peer), so that the real engine, whose prototypes share
 * the optimized code, starts hot. Nothing leaves the host; the throwaway cores go away after.
 */
import type { Config } from '../config/config.ts';
import type { Libc } from '../sys/libc.ts';
import { DataPlaneCore } from './dataplane-core.ts';
import { FastRig } from './fast-rig.ts';
import { exercisePipeline } from './warm-up.ts';

/** Push about `packets` packets through (half the pipeline mix, half engine rounds); returns how many went. */
export function warmUpFastPath(config: Config, libc: Libc, packets: number): number {
  if (packets <= 0) return 0;
  const a = new DataPlaneCore(config, { senderId: 1, poolSlots: { small: 256, large: 4 } });
  let n = exercisePipeline(a.pipeline, a.pools, config, packets >> 1);
  const b = new DataPlaneCore(config, { senderId: 1, poolSlots: { small: 1024, large: 64 } });
  const rig = new FastRig(libc, b);
  try {
    if (rig.families === 0) return n;
    const goal = n + (packets >> 1);
    while (n < goal) {
      const before = rig.counts.peerReceived + rig.engine.writer.stats.txPackets;
      rig.tunToPeer();
      rig.peerToTun();
      const moved = rig.counts.peerReceived + rig.engine.writer.stats.txPackets - before;
      if (moved === 0) break; // nothing moves: no point going on
      n += moved;
    }
  } finally {
    rig.close();
  }
  return n;
}
