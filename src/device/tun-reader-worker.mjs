// TUN reader worker: loops a blocking read(2) on the TUN fd straight into pool slots of the shared
// slab and publishes (slot, length) into the rx ring; takes empty slots from the free ring.
//
// Plain JavaScript on purpose: a worker is a fresh V8 isolate that does not inherit a TypeScript
// loader's hooks (tsx, vitest), so from source a .ts worker starts through a bootstrap that
// registers tsx first (src/base/worker-module.ts), which costs ~150 ms per start (measured here). This file
// imports nothing but node builtins and gets its shared-memory layout from workerData
// (src/device/ring.ts is the single source), so it loads as it is everywhere: from src/ under
// tsx and vitest, and from dist/ (the build copies it) under plain node.
//
// Steady state allocates nothing: one Uint8Array over the whole slab, reads at slot offsets.
// Out of free slots it waits (Atomics.wait on FREE_HEAD) rather than read and drop.
// It stops when ctl[STOP] is set and its read returns, or when a read fails for good (EFAULT or
// EBADFD once the interface is deleted, which is how close() wakes a read blocked on an idle
// device).
import { readSync } from 'node:fs';
import { workerData } from 'node:worker_threads';

const { fd, slab, slotSize, headroom, capacity, layout: L, states } = workerData;
const ctl = new Int32Array(workerData.ctl);
const rx = new Int32Array(workerData.rx);
const free = new Int32Array(workerData.free);
const mem = new Uint8Array(slab);
const mask = capacity - 1;
const room = slotSize - headroom;
const idle = new Int32Array(new SharedArrayBuffer(4));

let held = -1;
let freeTail = Atomics.load(ctl, L.FREE_TAIL);
let rxHead = Atomics.load(ctl, L.RX_HEAD);
let errno = 0;

function wakeMain() {
  if (Atomics.load(ctl, L.MAIN_WAITING) === 1) {
    Atomics.store(ctl, L.MAIN_WAITING, 0);
    Atomics.notify(ctl, L.RX_HEAD, 1);
  }
}

function takeSlot() {
  if (Atomics.load(ctl, L.FREE_HEAD) === freeTail) return;
  held = free[freeTail & mask];
  freeTail = (freeTail + 1) | 0;
  Atomics.store(ctl, L.FREE_TAIL, freeTail);
}

Atomics.store(ctl, L.STATE, states.running);

while (Atomics.load(ctl, L.STOP) === 0) {
  if (held < 0) takeSlot();
  if (held < 0) {
    // Out of slots: main is behind, or the pipeline holds the whole pool. Wait for a refill
    // instead of reading and dropping: packets meanwhile queue in the kernel (txqueuelen), which
    // drops and counts them itself (TX dropped in `ip -s link`) if we stay behind, and the CPU
    // goes to main. The wait times out now and then only to look at STOP.
    Atomics.add(ctl, L.STALLS, 1);
    Atomics.store(ctl, L.WORKER_WAITING, 1);
    takeSlot();
    if (held < 0) wakeMain();
    while (held < 0 && Atomics.load(ctl, L.STOP) === 0) {
      Atomics.wait(ctl, L.FREE_HEAD, freeTail, 50);
      takeSlot();
    }
    Atomics.store(ctl, L.WORKER_WAITING, 0);
    if (held < 0) break;
  }
  let n;
  try {
    n = readSync(fd, mem, held * slotSize + headroom, room, null);
  } catch (e) {
    const code = e && e.code;
    if (code === 'EINTR' || code === 'EAGAIN') {
      Atomics.add(ctl, L.READ_RETRIES, 1);
      if (code === 'EAGAIN') Atomics.wait(idle, 0, 0, 1);
      continue;
    }
    errno = (e && typeof e.errno === 'number' ? -e.errno : 0) || 5;
    break;
  }
  const i = (rxHead & mask) << 1;
  rx[i] = held;
  rx[i + 1] = n;
  held = -1;
  rxHead = (rxHead + 1) | 0;
  Atomics.store(ctl, L.RX_HEAD, rxHead);
  wakeMain();
}
Atomics.store(ctl, L.HELD_SLOT, held);
Atomics.store(ctl, L.ERRNO, errno);
Atomics.store(ctl, L.STATE, states.exited);
wakeMain();
