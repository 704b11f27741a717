/**
 * Layout of the shared memory between the main thread and the TUN reader worker
 * (tun-reader-worker.mjs). The worker is plain JavaScript (see tun.ts for why), so it receives
 * this layout in its workerData instead of importing it: this file is the single source.
 *
 * Three SharedArrayBuffers besides the pool slab:
 * - ctl   Int32Array of control words (indices below);
 * - rx    Int32Array(2 * capacity): the worker publishes (slot, length) pairs, main consumes;
 * - free  Int32Array(capacity): main hands free slot indices to the worker.
 * Head/tail counters are free-running int32 (wrapping), index = counter & (capacity - 1).
 * Single producer / single consumer each way; Atomics load/store give the ordering.
 */

export const CTL = {
  /** rx ring: entries published by the worker (worker writes). Main waits on this word. */
  RX_HEAD: 0,
  /** rx ring: entries consumed by main (main writes). */
  RX_TAIL: 1,
  /** free ring: slots given by main (main writes). */
  FREE_HEAD: 2,
  /** free ring: slots taken by the worker (worker writes). */
  FREE_TAIL: 3,
  /** 1 while main is idle waiting on RX_HEAD; the worker clears it and notifies. */
  MAIN_WAITING: 4,
  /** Set to 1 by main to ask the worker to stop after its current read. */
  STOP: 5,
  /** Worker state: STATE_* below. */
  STATE: 6,
  /** errno of the read error that stopped the worker (0 if it stopped on request). */
  ERRNO: 7,
  /** The slot the worker held when it exited (-1 for none), so main can return it. */
  HELD_SLOT: 8,
  /** Times the worker found no free slot and waited for main to refill (reader stalls). */
  STALLS: 9,
  /** Transient read errors (EINTR/EAGAIN), retried. */
  READ_RETRIES: 10,
  /** 1 while the worker waits for a free slot (on FREE_HEAD); main notifies when it refills. */
  WORKER_WAITING: 11,
  /** Number of words. */
  SIZE: 16,
} as const;

export const STATE_STARTING = 0;
export const STATE_RUNNING = 1;
export const STATE_EXITED = 2;

export interface ReaderWorkerData {
  fd: number;
  slab: SharedArrayBuffer;
  slotSize: number;
  headroom: number;
  ctl: SharedArrayBuffer;
  rx: SharedArrayBuffer;
  free: SharedArrayBuffer;
  capacity: number;
  layout: typeof CTL;
  states: { starting: number; running: number; exited: number };
}

/** Smallest power of two >= n (n >= 1). */
export function pow2AtLeast(n: number): number {
  let c = 1;
  while (c < n) c <<= 1;
  return c;
}
