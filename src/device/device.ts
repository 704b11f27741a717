/**
 * The packet device interface the endpoint pipeline reads from and writes to. Two implementations:
 * `TunDevice` (a kernel TUN, read by a worker thread into pool slots) and `MemoryDevice` (in
 * process, for tests and the userspace mode).
 *
 * Shape (after wireguard-go's tun.Device): packets arrive in batches, one handler call per batch,
 * and the batch array is reused between calls, so steady state allocates nothing per packet.
 * Ownership: every PacketBuffer handed to the batch handler belongs to the handler, which must
 * release it (or pass it on to whoever will). `write()` never takes ownership: the caller keeps the
 * buffer and releases it afterwards.
 */
import type { PacketBuffer } from '../base/pool.ts';

/**
 * Called with `batch[0 .. count)`; entries past `count` are stale. The array is reused for the
 * next batch: do not keep it, keep (or release) the PacketBuffers in it.
 */
export type BatchHandler = (batch: PacketBuffer[], count: number) => void;

/** Called once if the device stops delivering on its own (e.g. the interface was deleted). */
export type DownHandler = (reason: string) => void;

/**
 * Told when the batch handler threw (a bug upstream). The device counts it (rxHandlerErrors) and
 * keeps delivering; the handler still owned the batch, so the device releases nothing.
 */
export type HandlerErrorHandler = (err: unknown) => void;

/** Counters, plain numbers, updated in place. */
export interface DeviceStats {
  /** Packets delivered to the batch handler and their bytes. */
  rxPackets: number;
  rxBytes: number;
  /** Packets written to the device and their bytes. */
  txPackets: number;
  txBytes: number;
  /**
   * Received packets dropped because the buffer pool had no free slot. (The TUN reader never
   * drops: it waits for a slot, see rxStalls, and the kernel drops what overflows its queue.)
   */
  rxDropsPoolExhausted: number;
  /** Times the reader had no free pool slot and had to wait for one (TUN only). */
  rxStalls: number;
  /** Received packets dropped for any other reason (queue full, too big, read error). */
  rxDropsOther: number;
  /** Writes that failed (EINVAL for a malformed packet, EIO when the interface is down, ...). */
  txErrors: number;
  /** Handler wake-ups (batches delivered); rxPackets / rxBatches is the mean batch size. */
  rxBatches: number;
  /** Batch handler calls that threw (the device carried on; see HandlerErrorHandler). */
  rxHandlerErrors: number;
}

export function newDeviceStats(): DeviceStats {
  return {
    rxPackets: 0,
    rxBytes: 0,
    txPackets: 0,
    txBytes: 0,
    rxDropsPoolExhausted: 0,
    rxStalls: 0,
    rxDropsOther: 0,
    txErrors: 0,
    rxBatches: 0,
    rxHandlerErrors: 0,
  };
}

export interface PacketDevice {
  /** Interface name (e.g. "ferry0"; "mem0" for a memory device). */
  readonly name: string;
  /** The device MTU: the largest IP packet it reads or should be written. */
  readonly mtu: number;
  readonly stats: DeviceStats;
  /**
   * Start delivering received packets in batches (at most one start per device). Deliveries
   * happen from the event loop, never synchronously inside `start()` or `write()`. A handler
   * that throws does not stop the deliveries (nor escape into the event loop): see
   * HandlerErrorHandler.
   */
  start(onBatch: BatchHandler, onDown?: DownHandler, onError?: HandlerErrorHandler): void;
  /**
   * Write one IP packet, `p.buf[p.offset, p.offset + p.length)`. Returns false (and counts
   * txErrors) on failure; never throws; does not take ownership of `p`.
   */
  write(p: PacketBuffer): boolean;
  /** As `write()`, for bytes that are not in a PacketBuffer. */
  writeBytes(buf: Uint8Array, offset: number, length: number): boolean;
  /**
   * Stop reading, tear the device down and return every pool slot the device itself holds.
   * Packets already delivered stay owned by the handler. Idempotent; never hangs.
   */
  close(): Promise<void>;
}
