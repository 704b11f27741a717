/**
 * libc through koffi, loaded lazily and failing soft.
 *
 *   const r = openLibc();
 *   if (!r.ok) log(`fast path off: ${r.reason}`);   // e.g. "koffi not loadable: Cannot find ..."
 *
 * `sysLibc()` is the cached process-wide instance (null when unavailable) and
 * `sysUnavailableReason()` the one-line reason, so the endpoint can pick the portable path and
 * say why. Setting IPFERRY_NO_FFI=1 turns the fast path off on purpose (CI runs both paths).
 *
 * Every pointer argument is declared `uintptr_t` and passed as a plain number: an address inside
 * memory that never moves (a SharedArrayBuffer slab, see memory.ts). That keeps Buffer objects
 * (and their per-call conversion) out of the hot path: write(2) to /dev/null measured 0.65 us
 * this way against 0.93 us with a Buffer argument. x86-64 and arm64 user addresses fit in 48
 * bits, so a JS number holds them exactly. Variadic C functions (open, ioctl) are declared with a
 * fixed third argument: on both ABIs integer arguments travel in the same registers either way.
 *
 * Calls return what libc returns (-1 on failure); read the reason with errno() right after,
 * before any other FFI call.
 */
import { createRequire } from 'node:module';
import type { LibraryHandle } from 'koffi';

export interface Libc {
  open(path: string, flags: number, mode: number): number;
  close(fd: number): number;
  read(fd: number, addr: number, len: number): number;
  write(fd: number, addr: number, len: number): number;
  readv(fd: number, iovAddr: number, iovCount: number): number;
  writev(fd: number, iovAddr: number, iovCount: number): number;
  /** ioctl with a pointer (an address) or an integer passed by value: the same register. */
  ioctl(fd: number, request: number, arg: number): number;
  socket(domain: number, type: number, protocol: number): number;
  setsockopt(fd: number, level: number, name: number, valueAddr: number, valueLen: number): number;
  /** lenAddr: address of a u32 holding the buffer size in, the value size out. */
  getsockopt(fd: number, level: number, name: number, valueAddr: number, lenAddr: number): number;
  getsockname(fd: number, addrAddr: number, lenAddr: number): number;
  bind(fd: number, addrAddr: number, addrLen: number): number;
  connect(fd: number, addrAddr: number, addrLen: number): number;
  sendmsg(fd: number, msgAddr: number, flags: number): number;
  recvmsg(fd: number, msgAddr: number, flags: number): number;
  sendmmsg(fd: number, vecAddr: number, vlen: number, flags: number): number;
  /** timeoutAddr 0: no timeout (NULL). */
  recvmmsg(fd: number, vecAddr: number, vlen: number, flags: number, timeoutAddr: number): number;
  poll(fdsAddr: number, nfds: number, timeoutMs: number): number;
  eventfd(initval: number, flags: number): number;
  /** socketpair(2): the two fds are written at svAddr (two ints); 0 or -1. */
  socketpair(domain: number, type: number, protocol: number, svAddr: number): number;
  /** clock_gettime(2): a struct timespec (two 64-bit fields: seconds, nanoseconds) at tsAddr; 0 or -1. */
  clock_gettime(clock: number, tsAddr: number): number;
  /** errno of the last FFI call on this thread. */
  errno(): number;
  /**
   * Address of the first byte of `view`. Only for memory that does not move: views of a
   * SharedArrayBuffer, or of an ArrayBuffer larger than 64 bytes (V8 keeps typed arrays of 64
   * bytes or less on its moving heap, and their address goes stale). Throws RangeError otherwise
   * (setup time, not the hot path).
   */
  address(view: Uint8Array): number;
}

export type LibcResult = { ok: true; libc: Libc } | { ok: false; reason: string };

export interface OpenLibcOptions {
  platform?: string;
  arch?: string;
  env?: Record<string, string | undefined>;
  /** How to obtain the koffi module (tests inject a failing one). */
  loadKoffi?: () => unknown;
}

/** Largest typed array V8 keeps on its moving heap (V8's typed_array_max_size_in_heap). */
export const V8_ON_HEAP_MAX = 64;

interface KoffiLike {
  load(path: string | null): LibraryHandle;
  errno(): number;
  address(value: unknown): bigint;
}

function firstLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.split('\n')[0]!.trim();
}

const requireHere = createRequire(import.meta.url);

/** Load koffi and bind libc; never throws. Not cached: see sysLibc() for the shared instance. */
export function openLibc(opts: OpenLibcOptions = {}): LibcResult {
  const platform = opts.platform ?? process.platform;
  const arch = opts.arch ?? process.arch;
  const env = opts.env ?? process.env;
  if (env.IPFERRY_NO_FFI !== undefined && env.IPFERRY_NO_FFI !== '' && env.IPFERRY_NO_FFI !== '0') {
    return { ok: false, reason: 'disabled by IPFERRY_NO_FFI' };
  }
  if (platform !== 'linux') return { ok: false, reason: `not Linux (${platform})` };
  if (arch !== 'x64' && arch !== 'arm64') {
    return { ok: false, reason: `struct layouts are known for x64 and arm64 only (this is ${arch})` };
  }
  let koffi: KoffiLike;
  try {
    const m = (opts.loadKoffi ?? (() => requireHere('koffi')))() as KoffiLike & { default?: KoffiLike };
    koffi = typeof m.load === 'function' ? m : m.default!;
    if (typeof koffi?.load !== 'function') throw new Error('the module has no load()');
  } catch (e) {
    return { ok: false, reason: `koffi not loadable: ${firstLine(e)}` };
  }
  let lib: LibraryHandle | undefined;
  const tried: string[] = [];
  for (const name of ['libc.so.6', 'libc.so']) {
    try {
      lib = koffi.load(name);
      break;
    } catch (e) {
      tried.push(`${name}: ${firstLine(e)}`);
    }
  }
  if (lib === undefined) return { ok: false, reason: `libc not loadable (${tried.join('; ')})` };
  try {
    return { ok: true, libc: bind(koffi, lib) };
  } catch (e) {
    return { ok: false, reason: `libc binding failed: ${firstLine(e)}` };
  }
}

function bind(koffi: KoffiLike, lib: LibraryHandle): Libc {
  const f = (decl: string) => lib.func(decl) as (...args: number[]) => number;
  const open = lib.func('int open(const char *, int, int)') as (p: string, fl: number, m: number) => number;
  const address = (view: Uint8Array): number => {
    const ab = view.buffer;
    if (!(ab instanceof SharedArrayBuffer) && ab.byteLength <= V8_ON_HEAP_MAX) {
      throw new RangeError(`address of a ${ab.byteLength}-byte buffer would go stale (use SysMemory)`);
    }
    return Number(koffi.address(view));
  };
  return {
    open,
    close: f('int close(int)'),
    read: f('intptr_t read(int, uintptr_t, size_t)'),
    write: f('intptr_t write(int, uintptr_t, size_t)'),
    readv: f('intptr_t readv(int, uintptr_t, int)'),
    writev: f('intptr_t writev(int, uintptr_t, int)'),
    ioctl: f('int ioctl(int, unsigned long, uintptr_t)'),
    socket: f('int socket(int, int, int)'),
    setsockopt: f('int setsockopt(int, int, int, uintptr_t, uint32_t)'),
    getsockopt: f('int getsockopt(int, int, int, uintptr_t, uintptr_t)'),
    getsockname: f('int getsockname(int, uintptr_t, uintptr_t)'),
    bind: f('int bind(int, uintptr_t, uint32_t)'),
    connect: f('int connect(int, uintptr_t, uint32_t)'),
    sendmsg: f('intptr_t sendmsg(int, uintptr_t, int)'),
    recvmsg: f('intptr_t recvmsg(int, uintptr_t, int)'),
    sendmmsg: f('int sendmmsg(int, uintptr_t, unsigned int, int)'),
    recvmmsg: f('int recvmmsg(int, uintptr_t, unsigned int, int, uintptr_t)'),
    poll: f('int poll(uintptr_t, unsigned long, int)'),
    eventfd: f('int eventfd(unsigned int, int)'),
    socketpair: f('int socketpair(int, int, int, uintptr_t)'),
    clock_gettime: f('int clock_gettime(int, uintptr_t)'),
    errno: () => koffi.errno(),
    address,
  };
}

let cached: LibcResult | undefined;

/** The process-wide libc (loaded on first use), or null when the fast path cannot run here. */
export function sysLibc(): Libc | null {
  cached ??= openLibc();
  return cached.ok ? cached.libc : null;
}

/** Why sysLibc() is null ('' when it is not). */
export function sysUnavailableReason(): string {
  cached ??= openLibc();
  return cached.ok ? '' : cached.reason;
}
