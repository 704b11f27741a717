/**
 * In-process load runs for the home agent (used by test/mobility/load.test.ts with 10k nodes and
 * bench/mobility.bench.ts with 100k). Real message bytes, real HMAC-SHA256 both ways.
 *
 * registrationBurst(n): n distinct nodes (own name, home address, 32-byte key), one binding
 *   update each, built beforehand; one HomeAgent handles them back to back (verify the HMAC,
 *   replay and sequence checks, cache insert, signed ack). Wall time -> verified updates per
 *   second; heap + external memory before/after (after a forced GC) -> what the home agent and
 *   its n bindings hold.
 *
 * reconnectStorm(n): n real MobileNode state machines all start at virtual time 0 (a mass
 *   reconnect) against one HomeAgent, over a simulated network: fixed one-way delay, a bounded
 *   receive queue in front of the home agent (a socket buffer: arrivals beyond it are lost), and
 *   the home agent as a single server whose service time per datagram is the measured wall time
 *   of handleUpdate() on this machine. The nodes retransmit with their real backoff (full jitter,
 *   or none for comparison). Result: virtual time until every node is registered, updates sent,
 *   losses, percentiles of the per-node registration time.
 */
import { randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { SeededRandom, type RandomSource } from '../../src/mobility/clock.ts';
import { HomeAgent } from '../../src/mobility/home-agent.ts';
import type { MobilityIo } from '../../src/mobility/io.ts';
import { MobileNode } from '../../src/mobility/mobile-node.ts';
import type { NodeSpec } from '../../src/mobility/node-table.ts';
import { bindingUpdateLength, emitBindingUpdate, type SocketAddress } from '../../src/wire/binding.ts';
import { senderIdFromName } from '../../src/wire/gue.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const T0 = 1_767_225_600_000;
const HA_ADDR: SocketAddress = { family: 4, bytes: Uint8Array.from([203, 0, 113, 1]), port: 6080 };
const HOME_PREFIX = { family: 4 as const, bytes: Uint8Array.from([10, 0, 0, 0]), length: 8 };

function homeOf(i: number): Uint8Array {
  return Uint8Array.from([10, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff]);
}
/** Each node behind its own address in 100.64.0.0/10, port 40000 + (i % 20000). */
function careOfOf(i: number): SocketAddress {
  return { family: 4, bytes: Uint8Array.from([100, 64 + ((i >> 16) & 0x3f), (i >> 8) & 0xff, i & 0xff]), port: 40000 + (i % 20000) };
}

function nodeSpecs(n: number): NodeSpec[] {
  const keys = randomBytes(32 * n);
  return Array.from({ length: n }, (_, i) => ({ name: `mn${i}`, home: { family: 4 as const, bytes: homeOf(i) }, key: keys.subarray(32 * i, 32 * i + 32) }));
}

function memory(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

export interface BurstResult {
  nodes: number;
  registered: number;
  acksSent: number;
  /** Wall time of the n handleUpdate() calls. */
  processMs: number;
  /** Updates verified (HMAC), registered and acked (HMAC) per second. */
  updatesPerSecond: number;
  /** Heap + external bytes the home agent holds with n bindings (forced GC before and after). */
  haBytes: number;
  /** Of which the binding cache's typed arrays (fixed at construction). */
  cacheBytes: number;
  nodeTableBytes: number;
}

export function registrationBurst(n: number): BurstResult {
  const specs = nodeSpecs(n);
  const from = Array.from({ length: n }, (_, i) => careOfOf(i));
  const msgs: Buffer[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const r = { sequence: 1, lifetime: 600, ackRequested: true, homeRegistration: true, routeOptimisation: false, homeFamily: 4 as const, home: specs[i]!.home.bytes, careOf: from[i]!, padding: 0 };
    const b = Buffer.allocUnsafe(bindingUpdateLength(r));
    emitBindingUpdate(b, 0, { senderId: senderIdFromName(specs[i]!.name), counter: T0 * 1000 + i }, r, specs[i]!.key);
    msgs[i] = b;
  }
  let acks = 0;
  const clock = { now: () => T0 + 1000 };
  const io: MobilityIo = { clock, random: new SeededRandom(1), sender: { send: () => void acks++ } };
  const before = memory();
  const ha = new HomeAgent({ name: 'ha', homePrefixes: [HOME_PREFIX], nodes: specs, maxBindings: n }, io);
  const t = performance.now();
  for (let i = 0; i < n; i++) ha.handleUpdate(msgs[i]!, 0, msgs[i]!.length, from[i]!);
  const processMs = performance.now() - t;
  const after = memory();
  // keep the inputs alive up to here, or their collection would hide the home agent's growth
  if (msgs.length !== n || from.length !== n || specs.length !== n) throw new Error('unreachable');
  return {
    nodes: n,
    registered: ha.cache.size,
    acksSent: acks,
    processMs,
    updatesPerSecond: n / (processMs / 1000),
    haBytes: after - before,
    cacheBytes: ha.cache.byteSize,
    nodeTableBytes: ha.nodes.byteSize,
  };
}

export interface StormOptions {
  /** One-way delay, ms (default 10). */
  delayMs?: number;
  /** Datagrams the home agent's receive queue holds (default 2048). */
  queue?: number;
  /** Full jitter (default) or none (every retry at its bound: synchronised waves). */
  jitter?: boolean;
  seed?: number;
  /** Give up after this much virtual time, ms (default 30 min). */
  limitMs?: number;
}

export interface StormResult {
  nodes: number;
  registered: number;
  /** Virtual time until the last node was registered, ms (Infinity: not within the limit). */
  allRegisteredMs: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  updatesSent: number;
  updatesLost: number;
  peakQueue: number;
  /** Virtual time the home agent spent serving (sum of measured service times), ms. */
  haBusyMs: number;
  /** Home agent service rate while busy, updates/s (from the measured service times). */
  serviceRate: number;
}

/** A binary min-heap of (time, index) pairs for the nodes' timers (stale entries skipped by the caller). */
class TimerHeap {
  t: number[] = [];
  i: number[] = [];
  push(t: number, i: number): void {
    let k = this.t.length;
    this.t.push(t);
    this.i.push(i);
    while (k > 0) {
      const p = (k - 1) >> 1;
      if (this.t[p]! <= t) break;
      this.t[k] = this.t[p]!;
      this.i[k] = this.i[p]!;
      k = p;
    }
    this.t[k] = t;
    this.i[k] = i;
  }
  pop(): void {
    const lt = this.t.pop()!;
    const li = this.i.pop()!;
    const n = this.t.length;
    if (n === 0) return;
    let k = 0;
    for (;;) {
      let c = 2 * k + 1;
      if (c >= n) break;
      if (c + 1 < n && this.t[c + 1]! < this.t[c]!) c++;
      if (this.t[c]! >= lt) break;
      this.t[k] = this.t[c]!;
      this.i[k] = this.i[c]!;
      k = c;
    }
    this.t[k] = lt;
    this.i[k] = li;
  }
  get size(): number {
    return this.t.length;
  }
}

/** No jitter: every wait is its bound (and refresh at 80%). */
const noJitter: RandomSource = { next: () => 0.999_999, fill: (o, off, len) => o.fill(7, off, off + len) };

export function reconnectStorm(n: number, opts: StormOptions = {}): StormResult {
  const delay = opts.delayMs ?? 10;
  const qcap = opts.queue ?? 2048;
  const limit = opts.limitMs ?? 30 * 60_000;
  const specs = nodeSpecs(n);
  const clock = { t: T0, now() { return this.t; } };
  let current = -1;
  // in flight: FIFO (constant delay keeps arrival order = send order)
  const toHa: { at: number; bytes: Buffer; from: number }[] = [];
  let toHaHead = 0;
  const toMn: { at: number; bytes: Buffer; to: number }[] = [];
  let toMnHead = 0;
  let sent = 0;
  const mnIo: MobilityIo = {
    clock,
    random: opts.jitter === false ? noJitter : new SeededRandom(opts.seed ?? 1),
    sender: {
      send: (buf, off, len) => {
        sent++;
        toHa.push({ at: clock.t + delay, bytes: Buffer.from(buf.subarray(off, off + len)), from: current });
      },
    },
  };
  let servingFrom = -1;
  const haOut: Buffer[] = [];
  const haIo: MobilityIo = { clock, random: new SeededRandom(2), sender: { send: (buf, off, len) => void haOut.push(Buffer.from(buf.subarray(off, off + len))) } };
  const ha = new HomeAgent({ name: 'ha', homePrefixes: [HOME_PREFIX], nodes: specs, maxBindings: n }, haIo);
  const careOf = Array.from({ length: n }, (_, i) => careOfOf(i));
  const registeredAt = new Float64Array(n).fill(-1);
  let registered = 0;
  const mns: MobileNode[] = specs.map(
    (s, i) =>
      new MobileNode({ name: s.name, home: s.home, homeAgent: HA_ADDR, key: s.key, lifetime: 600 }, mnIo, {
        registered: () => {
          if (registeredAt[i]! < 0) {
            registeredAt[i] = clock.t - T0;
            registered++;
          }
        },
      }),
  );
  const timers = new TimerHeap();
  const arm = (i: number) => {
    const d = mns[i]!.nextDue();
    if (d !== Infinity) timers.push(d, i);
  };
  for (let i = 0; i < n; i++) {
    current = i;
    mns[i]!.start(careOf[i]!);
    arm(i);
  }
  // the home agent's receive queue and server
  const queue: { bytes: Buffer; from: number }[] = [];
  let qHead = 0;
  let lost = 0;
  let peak = 0;
  let busyUntil = -Infinity;
  let busy = 0;
  let served = 0;
  while (registered < n) {
    const tTimer = timers.size ? timers.t[0]! : Infinity;
    const tHa = toHaHead < toHa.length ? toHa[toHaHead]!.at : Infinity;
    const tMn = toMnHead < toMn.length ? toMn[toMnHead]!.at : Infinity;
    const tServe = qHead < queue.length ? Math.max(busyUntil, clock.t) : Infinity;
    const t = Math.min(tTimer, tHa, tMn, tServe);
    if (t === Infinity || t - T0 > limit) break;
    clock.t = Math.max(clock.t, t);
    if (t === tHa) {
      const d = toHa[toHaHead++]!;
      if (queue.length - qHead >= qcap) lost++;
      else queue.push({ bytes: d.bytes, from: d.from });
      if (queue.length - qHead > peak) peak = queue.length - qHead;
    } else if (t === tServe) {
      const d = queue[qHead++]!;
      servingFrom = d.from;
      const s = performance.now();
      ha.handleUpdate(d.bytes, 0, d.bytes.length, careOf[servingFrom]!);
      const cost = performance.now() - s;
      busy += cost;
      served++;
      busyUntil = clock.t + cost;
      for (const b of haOut.splice(0)) toMn.push({ at: busyUntil + delay, bytes: b, to: servingFrom });
    } else if (t === tMn) {
      const d = toMn[toMnHead++]!;
      current = d.to;
      mns[d.to]!.handle(d.bytes, 0, d.bytes.length, HA_ADDR);
      arm(d.to);
    } else {
      const i = timers.i[0]!;
      timers.pop();
      if (mns[i]!.nextDue() !== t) continue; // stale
      current = i;
      mns[i]!.tick();
      arm(i);
    }
    if (qHead > 65536 && qHead * 2 > queue.length) {
      queue.splice(0, qHead);
      qHead = 0;
    }
    if (toHaHead > 65536) {
      toHa.splice(0, toHaHead);
      toHaHead = 0;
    }
    if (toMnHead > 65536) {
      toMn.splice(0, toMnHead);
      toMnHead = 0;
    }
  }
  const times = Array.from(registeredAt).filter((x) => x >= 0).sort((a, b) => a - b);
  const pct = (p: number) => (times.length ? times[Math.min(times.length - 1, Math.floor(p * times.length))]! : Infinity);
  return {
    nodes: n,
    registered,
    allRegisteredMs: registered === n ? times[times.length - 1]! : Infinity,
    p50Ms: pct(0.5),
    p95Ms: pct(0.95),
    p99Ms: pct(0.99),
    updatesSent: sent,
    updatesLost: lost,
    peakQueue: peak,
    haBusyMs: busy,
    serviceRate: served / (busy / 1000),
  };
}
