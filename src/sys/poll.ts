/**
 * struct pollfd (8 bytes: int fd, short events, short revents) and two helpers built on it:
 * PollSet (a fixed array of pollfds in SysMemory, one poll(2) per wait) and EventFd (a counter
 * fd another thread writes to wake a thread blocked in poll).
 *
 * Why an eventfd: a thread blocked inside an FFI poll() does not run JS signal handlers or
 * message handlers until the call returns, so stopping or reconfiguring a data-plane worker
 * goes through an fd in its poll set (or a timeout), never through a signal.
 */
import { writeSync } from 'node:fs';
import { EFD_CLOEXEC, EFD_NONBLOCK } from './linux.ts';
import type { Libc } from './libc.ts';
import { AddressTable, type SysMemory } from './memory.ts';

export const POLLFD_SIZE = 8;
export const POLLFD_FD = 0;
export const POLLFD_EVENTS = 4;
export const POLLFD_REVENTS = 6;

export class PollSet {
  readonly off: number;
  private n = 0;
  /** The pollfd array's address, kept boxed (AddressTable: no garbage per wait). */
  private readonly at = new AddressTable(1);

  constructor(
    readonly libc: Libc,
    readonly mem: SysMemory,
    readonly capacity: number,
  ) {
    this.off = mem.alloc(capacity * POLLFD_SIZE);
    this.at.set(0, mem.addr(this.off));
  }

  get size(): number {
    return this.n;
  }

  /** Add an fd; returns its index (for revents), or -1 when the set is full. */
  add(fd: number, events: number): number {
    if (this.n === this.capacity) return -1;
    this.set(this.n, fd, events);
    return this.n++;
  }

  /** Replace entry i (an fd of -1 is ignored by poll). */
  set(i: number, fd: number, events: number): void {
    const o = this.off + i * POLLFD_SIZE;
    this.mem.putI32(o + POLLFD_FD, fd);
    this.mem.putU16(o + POLLFD_EVENTS, events);
    this.mem.putU16(o + POLLFD_REVENTS, 0);
  }

  /** poll(2) over the set: number of fds ready, 0 on timeout, -1 on error (see libc.errno()). */
  wait(timeoutMs: number): number {
    return this.libc.poll(this.at.get(0), this.n, timeoutMs);
  }

  revents(i: number): number {
    return this.mem.getU16(this.off + i * POLLFD_SIZE + POLLFD_REVENTS);
  }
}

const ONE_U64 = Buffer.alloc(8);
ONE_U64.writeUInt32LE(1, 0);

/** Wake the thread polling eventfd `fd`, from any thread, without FFI (control plane). */
export function wakeEventFd(fd: number): void {
  try {
    writeSync(fd, ONE_U64, 0, 8);
  } catch {
    // EAGAIN: the counter is saturated, the poller is awake anyway; EBADF: already closed
  }
}

export class EventFd {
  readonly fd: number;
  private readonly scratch: number;
  private readonly at = new AddressTable(1);

  /** Throws Error with errno when eventfd(2) fails (setup time). `fd`: use an eventfd made elsewhere in this process. */
  constructor(
    readonly libc: Libc,
    readonly mem: SysMemory,
    fd = -1,
  ) {
    this.fd = fd >= 0 ? fd : libc.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (this.fd < 0) throw new Error(`eventfd failed: errno ${libc.errno()}`);
    this.scratch = mem.alloc(8);
    this.at.set(0, mem.addr(this.scratch));
  }

  /** Add 1 to the counter (from this thread). */
  wake(): void {
    this.mem.putU64(this.scratch, 1);
    this.libc.write(this.fd, this.at.get(0), 8);
  }

  /** Read and reset the counter: how many wakes arrived (0 when none). */
  drain(): number {
    const n = this.libc.read(this.fd, this.at.get(0), 8);
    return n === 8 ? this.mem.getU64(this.scratch) : 0;
  }

  close(): void {
    this.libc.close(this.fd);
  }
}
