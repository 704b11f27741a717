/**
 * src/sys through the real kernel: libc loads (or says why not), the struct layouts survive round
 * trips (sockaddrs the kernel writes, msghdr/iovec/cmsg on sendmsg and recvmmsg with UDP GSO and
 * GRO on loopback, pollfd revents), and an eventfd wakes a thread blocked in an FFI poll, written
 * from another thread through koffi loaded in a worker.
 */
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { afterAll, describe, expect, it } from 'vitest';
import { openLibc, sysLibc, sysUnavailableReason, type Libc } from '../../src/sys/libc.ts';
import { SysMemory } from '../../src/sys/memory.ts';
import { IOVEC_SIZE, MmsgVector, NAME_SPACE, writeIovec } from '../../src/sys/msg.ts';
import { EventFd, PollSet } from '../../src/sys/poll.ts';
import {
  sockaddrFamily, sockaddrInAddr, sockaddrPort, writeSockaddrIn, writeSockaddrIn6, SIN6_ADDR,
} from '../../src/sys/sockaddr.ts';
import * as L from '../../src/sys/linux.ts';

const libc = sysLibc();
const skip = libc ? '' : `fast path unavailable: ${sysUnavailableReason()}`;
const fds: number[] = [];
afterAll(() => {
  for (const fd of fds) libc?.close(fd);
});

function udpSocket(c: Libc, mem: SysMemory, family: 4 | 6): { fd: number; port: number } {
  const fd = c.socket(family === 4 ? L.AF_INET : L.AF_INET6, L.SOCK_DGRAM | L.SOCK_NONBLOCK | L.SOCK_CLOEXEC, 0);
  expect(fd).toBeGreaterThanOrEqual(0);
  fds.push(fd);
  const sa = mem.alloc(NAME_SPACE + 8);
  const loop6 = new Uint8Array(16);
  loop6[15] = 1;
  const n = family === 4 ? writeSockaddrIn(mem.u8, sa, 0x7f000001, 0) : writeSockaddrIn6(mem.u8, sa, loop6, 0, 0);
  expect(c.bind(fd, mem.addr(sa), n)).toBe(0);
  mem.putU32(sa + NAME_SPACE, NAME_SPACE);
  expect(c.getsockname(fd, mem.addr(sa), mem.addr(sa + NAME_SPACE))).toBe(0);
  expect(mem.getU32(sa + NAME_SPACE)).toBe(n);
  expect(sockaddrFamily(mem.u8, sa)).toBe(family === 4 ? L.AF_INET : L.AF_INET6);
  if (family === 4) expect(sockaddrInAddr(mem.u8, sa)).toBe(0x7f000001);
  else expect([...mem.u8.subarray(sa + SIN6_ADDR, sa + SIN6_ADDR + 16)]).toEqual([...loop6]);
  return { fd, port: sockaddrPort(mem.u8, sa) };
}

describe('openLibc', () => {
  it('fails soft with a reason', () => {
    const env = {}; // independent of this process's IPFERRY_NO_FFI
    const bad = openLibc({ env, platform: 'linux', arch: 'x64', loadKoffi: () => { throw new Error("Cannot find module 'koffi'\nstack"); } });
    expect(bad).toEqual({ ok: false, reason: "koffi not loadable: Cannot find module 'koffi'" });
    expect(openLibc({ env, platform: 'darwin' })).toEqual({ ok: false, reason: 'not Linux (darwin)' });
    expect(openLibc({ env, platform: 'linux', arch: 'mips' })).toMatchObject({ ok: false, reason: expect.stringContaining('mips') });
    expect(openLibc({ env: { IPFERRY_NO_FFI: '1' } })).toEqual({ ok: false, reason: 'disabled by IPFERRY_NO_FFI' });
    expect(openLibc({ env: { IPFERRY_NO_FFI: '0' }, platform: 'darwin' })).toEqual({ ok: false, reason: 'not Linux (darwin)' });
    expect(openLibc({ env, platform: 'linux', arch: 'x64', loadKoffi: () => ({}) })).toMatchObject({ ok: false, reason: expect.stringContaining('no load()') });
  });

  it('loads here and refuses addresses that would go stale', (ctx) => {
    if (skip) return ctx.skip(skip);
    expect(sysUnavailableReason()).toBe('');
    expect(() => libc!.address(new Uint8Array(64))).toThrow(RangeError);
    const sab = new Uint8Array(new SharedArrayBuffer(16));
    expect(libc!.address(sab)).toBeGreaterThan(0);
    expect(libc!.address(sab.subarray(4))).toBe(libc!.address(sab) + 4);
  });
});

describe('SysMemory', () => {
  it('aligns regions and stores 64-bit values as two halves', (ctx) => {
    if (skip) return ctx.skip(skip);
    const mem = new SysMemory(libc!, 4096);
    const a = mem.alloc(3, 1);
    const b = mem.alloc(16);
    expect(a).toBe(0);
    expect(b % 8).toBe(0);
    mem.putU64(b, 0x7ffd_1234_5678);
    expect(mem.getU64(b)).toBe(0x7ffd_1234_5678);
    expect(mem.dv.getBigUint64(b, true)).toBe(0x7ffd_1234_5678n);
    expect(() => mem.alloc(5000)).toThrow(/do not fit/);
  });
});

describe('msghdr / mmsghdr / cmsg through the kernel (UDP on loopback)', () => {
  for (const family of [4, 6] as const) {
    it(`IPv${family}: one sendmsg with UDP_SEGMENT and three iovecs arrives as segments; GRO reports the size`, (ctx) => {
      if (skip) return ctx.skip(skip);
      const c = libc!;
      const mem = new SysMemory(c, 2 << 20);
      const rx = udpSocket(c, mem, family);
      const rxGro = udpSocket(c, mem, family);
      const tx = udpSocket(c, mem, family);
      const one = mem.alloc(4);
      mem.putI32(one, 1);
      expect(c.setsockopt(rxGro.fd, L.SOL_UDP, L.UDP_GRO, mem.addr(one), 4)).toBe(0);

      // 10 segments of 1000 bytes + a 400-byte tail, spread over three iovecs of odd lengths
      const SEG = 1000;
      const TOTAL = 10 * SEG + 400;
      const data = mem.alloc(TOTAL);
      for (let i = 0; i < TOTAL; i++) mem.u8[data + i] = (i * 7 + (i >> 8)) & 0xff;
      const send = new MmsgVector(mem, 1, 3);
      const cut1 = 777;
      const cut2 = 6543;
      send.setIov(0, 0, mem.addr(data), cut1);
      send.setIov(0, 1, mem.addr(data + cut1), cut2 - cut1);
      send.setIov(0, 2, mem.addr(data + cut2), TOTAL - cut2);
      send.setIovCount(0, 3);
      send.setSegmentSize(0, SEG);
      const name = send.nameOffOf(0);
      const loop6 = new Uint8Array(16);
      loop6[15] = 1;

      const recv = new MmsgVector(mem, 16, 1);
      const area = mem.alloc(16 * 65536);
      for (let i = 0; i < 16; i++) {
        recv.setIov(i, 0, mem.addr(area + i * 65536), 65536);
        recv.setIovCount(i, 1);
      }

      for (const dst of [rx, rxGro]) {
        send.setNameLen(0, family === 4 ? writeSockaddrIn(mem.u8, name, 0x7f000001, dst.port) : writeSockaddrIn6(mem.u8, name, loop6, 0, dst.port));
        expect(c.sendmsg(tx.fd, send.msgAddr(0), 0)).toBe(TOTAL);
        // collect until every byte arrived (bounded in tries, not timed)
        const sizes: number[] = [];
        const gro: number[] = [];
        const got: number[] = [];
        for (let tries = 0; tries < 1000 && got.length < TOTAL; tries++) {
          for (let i = 0; i < 16; i++) recv.prepareReceive(i);
          const n = c.recvmmsg(dst.fd, recv.addr, 16, 0, 0);
          if (n < 0) {
            expect(c.errno()).toBe(L.EAGAIN);
            continue;
          }
          for (let i = 0; i < n; i++) {
            const len = recv.received(i);
            sizes.push(len);
            gro.push(recv.groSegmentSize(i));
            for (let k = 0; k < len; k++) got.push(mem.u8[area + i * 65536 + k]!);
            const nm = recv.nameOffOf(i);
            expect(recv.nameLen(i)).toBe(family === 4 ? 16 : 28);
            expect(sockaddrPort(mem.u8, nm)).toBe(tx.port);
            expect(recv.flags(i) & L.MSG_TRUNC).toBe(0);
          }
        }
        expect(got).toEqual([...mem.u8.subarray(data, data + TOTAL)]);
        if (dst === rx) {
          expect(sizes).toEqual([...Array(10).fill(SEG), 400]);
          expect(gro.every((g) => g === 0)).toBe(true);
        } else {
          // GRO: fewer, larger chunks, each tagged with the segment size
          expect(sizes.length).toBeLessThan(11);
          expect(gro[0]).toBe(SEG);
        }
      }
    });
  }
});

describe('readv / writev / getsockopt through the kernel', () => {
  it('a datagram written from two iovecs is read back into two iovecs; SO_RCVBUFFORCE reads back', (ctx) => {
    if (skip) return ctx.skip(skip);
    const c = libc!;
    const mem = new SysMemory(c, 1 << 20);
    const rx = udpSocket(c, mem, 4);
    const tx = udpSocket(c, mem, 4);
    const sa = mem.alloc(16);
    writeSockaddrIn(mem.u8, sa, 0x7f000001, rx.port);
    expect(c.connect(tx.fd, mem.addr(sa), 16)).toBe(0);
    const src = mem.alloc(300);
    for (let i = 0; i < 300; i++) mem.u8[src + i] = i & 0xff;
    const iov = mem.alloc(64);
    writeIovec(mem, iov, mem.addr(src), 100);
    writeIovec(mem, iov + IOVEC_SIZE, mem.addr(src + 100), 200);
    expect(c.writev(tx.fd, mem.addr(iov), 2)).toBe(300);
    const dst = mem.alloc(400);
    writeIovec(mem, iov + 2 * IOVEC_SIZE, mem.addr(dst), 7);
    writeIovec(mem, iov + 3 * IOVEC_SIZE, mem.addr(dst + 200), 393);
    let n = -1;
    for (let tries = 0; tries < 1000 && n < 0; tries++) n = c.readv(rx.fd, mem.addr(iov + 2 * IOVEC_SIZE), 2);
    expect(n).toBe(300);
    expect([...mem.u8.subarray(dst, dst + 7)]).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect([...mem.u8.subarray(dst + 200, dst + 493)]).toEqual([...mem.u8.subarray(src + 7, src + 300)]);

    const v = mem.alloc(8);
    mem.putI32(v, 1 << 20);
    expect(c.setsockopt(rx.fd, L.SOL_SOCKET, L.SO_RCVBUFFORCE, mem.addr(v), 4)).toBe(0);
    mem.putI32(v, 0);
    mem.putU32(v + 4, 4);
    expect(c.getsockopt(rx.fd, L.SOL_SOCKET, L.SO_RCVBUF, mem.addr(v), mem.addr(v + 4))).toBe(0);
    expect([mem.getI32(v), mem.getU32(v + 4)]).toEqual([2 << 20, 4]); // the kernel doubles it
    expect(c.getsockopt(-1, L.SOL_SOCKET, L.SO_RCVBUF, mem.addr(v), mem.addr(v + 4))).toBe(-1);
    expect(c.errno()).toBe(L.EBADF);
  });
});

describe('pollfd and eventfd', () => {
  it('poll sees an eventfd written by this thread; drain counts and resets', (ctx) => {
    if (skip) return ctx.skip(skip);
    const mem = new SysMemory(libc!, 4096);
    const ev = new EventFd(libc!, mem);
    fds.push(ev.fd);
    const ps = new PollSet(libc!, mem, 4);
    expect(ps.add(-1, L.POLLIN)).toBe(0);
    expect(ps.add(ev.fd, L.POLLIN)).toBe(1);
    expect(ps.wait(0)).toBe(0);
    ev.wake();
    ev.wake();
    expect(ps.wait(0)).toBe(1);
    expect(ps.revents(1) & L.POLLIN).toBe(L.POLLIN);
    expect(ps.revents(0)).toBe(0);
    expect(ev.drain()).toBe(2);
    expect(ev.drain()).toBe(0);
    expect(ps.wait(0)).toBe(0);
  });

  it('a worker thread loads koffi and wakes this thread out of a blocking poll', async (ctx) => {
    if (skip) return ctx.skip(skip);
    const mem = new SysMemory(libc!, 4096);
    const ev = new EventFd(libc!, mem);
    fds.push(ev.fd);
    const ps = new PollSet(libc!, mem, 1);
    ps.add(ev.fd, L.POLLIN);
    const koffiPath = createRequire(import.meta.url).resolve('koffi');
    const code = `
      const { workerData, parentPort } = require('node:worker_threads');
      const koffi = require(workerData.koffiPath);
      const lib = koffi.load('libc.so.6');
      const write = lib.func('intptr_t write(int, uintptr_t, size_t)');
      const u64 = new Uint8Array(new SharedArrayBuffer(8));
      u64[0] = 1;
      const addr = Number(koffi.address(u64));
      parentPort.postMessage('ready');
      setTimeout(() => parentPort.postMessage(write(workerData.fd, addr, 8)), 100);
    `;
    const w = new Worker(code, { eval: true, workerData: { fd: ev.fd, koffiPath } });
    try {
      await new Promise<void>((res, rej) => {
        w.once('message', () => res());
        w.once('error', rej);
      });
      const wrote = new Promise<unknown>((res) => w.once('message', res));
      // blocks this thread in the FFI poll; only the worker's write can end it before 20 s
      const n = ps.wait(20_000);
      expect(n).toBe(1);
      expect(ps.revents(0) & L.POLLIN).toBe(L.POLLIN);
      expect(await wrote).toBe(8);
      expect(ev.drain()).toBe(1);
    } finally {
      await w.terminate();
    }
  });
});
