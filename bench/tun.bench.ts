/**
 * TUN read/write packet rates (root only): kernel -> TUN -> our reader, and our writes -> kernel.
 *
 * A namespace of our own holds the TUN (10.80.0.1/24); a python3 sender inside it floods small
 * UDP datagrams to 10.80.0.2 (routed into the TUN) for a bounded time and count. We count what
 * arrives through
 *   - ipferry's TunDevice (worker thread, blocking read into pool slots, shared ring, batches),
 *   - the baseline: the tuntap2 library's own read path (`LinuxTun`, fs stream 'data' events),
 * and print both beside the sender's offered rate from the same run. Writes: a main-thread loop of
 * TunDevice.writeBytes() of a valid 64-byte UDP/IPv4 datagram to the namespace's own address.
 */
import { execFile, execFileSync } from 'node:child_process';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { openTun } from '../src/device/tun.ts';
import { BufferPool } from '../src/base/pool.ts';
import { checksum } from '../src/wire/checksum.ts';
import type { BenchSection } from './run.ts';

const pexec = promisify(execFile);
const SECONDS = 3;
const MAX_PACKETS = 3_000_000;
const PAYLOAD = 32;

const SENDER = `
import socket, sys, time
dst, secs, cap, size = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
p = b'x' * size
n = 0
t0 = time.time()
end = t0 + secs
while n < cap and time.time() < end:
    for _ in range(500):
        try:
            s.sendto(p, (dst, 9))
        except OSError:
            pass
    n += 500
print(n, time.time() - t0)
`;

interface Flood {
  sent: number;
  seconds: number;
}

async function flood(ns: string): Promise<Flood> {
  const { stdout } = await pexec(
    'ip',
    ['netns', 'exec', ns, 'python3', '-c', SENDER, '10.80.0.2', String(SECONDS), String(MAX_PACKETS), String(PAYLOAD)],
    { timeout: (SECONDS + 20) * 1000 },
  );
  const [sent, seconds] = stdout.trim().split(/\s+/).map(Number) as [number, number];
  return { sent, seconds };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const k = (n: number): string => `${(n / 1000).toFixed(0)}k`;

interface ReadResult {
  got: number;
  flood: Flood;
  /** CPU time of this whole process (main, worker, libuv threads) per received packet, in us. */
  cpuPerPacket: number;
}

function cpuSince(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return d.user + d.system;
}

async function measureOurs(ns: string): Promise<ReadResult & { batches: number; stalls: number }> {
  const pool = new BufferPool({ slots: 4096 });
  const dev = await openTun({ name: `fxb${process.pid % 100000}`, netns: ns, mtu: 1400, addresses: ['10.80.0.1/24'], pool });
  let got = 0;
  try {
    dev.start((batch, count) => {
      got += count;
      for (let i = 0; i < count; i++) batch[i]!.release();
    });
    await sleep(300);
    const base = got;
    const b0 = dev.stats.rxBatches;
    const c0 = process.cpuUsage();
    const f = await flood(ns);
    await sleep(300);
    const n = got - base;
    return { got: n, flood: f, cpuPerPacket: cpuSince(c0) / n, batches: dev.stats.rxBatches - b0, stalls: dev.stats.rxStalls };
  } finally {
    await dev.close();
  }
}

async function measureStream(ns: string): Promise<ReadResult> {
  const require = createRequire(import.meta.url);
  const { LinuxTun } = require('@xiaobaidadada/node-tuntap2-wintun') as {
    LinuxTun: new () => {
      name: string;
      on(ev: string, f: (b: Buffer) => void): void;
      release(cb?: () => void): void;
    };
  };
  const tun = new LinuxTun();
  const name = `fxs${process.pid % 100000}`;
  execFileSync('ip', ['link', 'set', 'dev', tun.name, 'name', name]);
  execFileSync('ip', ['link', 'set', 'dev', name, 'netns', ns]);
  execFileSync('ip', ['-n', ns, 'link', 'set', 'dev', name, 'mtu', '1400', 'up']);
  execFileSync('ip', ['-n', ns, 'addr', 'add', '10.80.0.1/24', 'dev', name]);
  let got = 0;
  tun.on('data', () => {
    got++;
  });
  tun.on('error', () => undefined);
  try {
    await sleep(300);
    const base = got;
    const c0 = process.cpuUsage();
    const f = await flood(ns);
    await sleep(300);
    const n = got - base;
    return { got: n, flood: f, cpuPerPacket: cpuSince(c0) / n };
  } finally {
    // Deleting the interface wakes the stream's read blocked in the libuv threadpool.
    await pexec('ip', ['-n', ns, 'link', 'del', 'dev', name]).catch(() => undefined);
    await new Promise<void>((r) => tun.release(() => r()));
  }
}

/** Baseline: a bare worker looping readSync into one buffer (no ring, no delivery): NOTES' ~150k. */
async function measureBareWorker(ns: string): Promise<ReadResult> {
  const dev = await openTun({ name: `fxr${process.pid % 100000}`, netns: ns, mtu: 1400, addresses: ['10.80.0.1/24'] });
  const counter = new Int32Array(new SharedArrayBuffer(4));
  const w = new Worker(
    `const { readSync } = require('node:fs'); const { workerData } = require('node:worker_threads');
     const c = new Int32Array(workerData.sab); const b = Buffer.alloc(2048);
     for (;;) { try { readSync(workerData.fd, b, 0, 2048, null); Atomics.add(c, 0, 1); } catch { break; } }`,
    { eval: true, workerData: { fd: dev.fd, sab: counter.buffer } },
  );
  const exited = new Promise((r) => w.once('exit', r));
  try {
    await sleep(300);
    const base = Atomics.load(counter, 0);
    const c0 = process.cpuUsage();
    const f = await flood(ns);
    await sleep(300);
    const n = Atomics.load(counter, 0) - base;
    return { got: n, flood: f, cpuPerPacket: cpuSince(c0) / n };
  } finally {
    await dev.close(); // deletes the interface: the worker's read fails and it exits
    await exited;
  }
}

const C_READER = `
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
static volatile sig_atomic_t stop;
static void on_term(int s) { (void)s; stop = 1; }
int main(int argc, char **argv) {
  struct ifreq ifr; memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI; strncpy(ifr.ifr_name, argv[1], IFNAMSIZ - 1);
  int fd = open("/dev/net/tun", O_RDWR);
  if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr) < 0) { perror("tun"); return 1; }
  struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = on_term; sigaction(SIGTERM, &sa, 0);
  printf("ready\\n"); fflush(stdout);
  char buf[2048]; long n = 0;
  while (!stop) { if (read(fd, buf, sizeof buf) > 0) n++; }
  printf("%ld\\n", n); return 0;
}
`;

/** Baseline: a C blocking read() loop on its own TUN (NOTES' >= 150k); null when there is no cc. */
async function measureC(ns: string): Promise<{ got: number; flood: Flood } | null> {
  const dir = mkdtempSync(join(tmpdir(), 'fxbench-'));
  try {
    writeFileSync(join(dir, 'r.c'), C_READER);
    try {
      execFileSync('cc', ['-O2', '-o', join(dir, 'r'), join(dir, 'r.c')], { stdio: 'ignore' });
    } catch {
      return null;
    }
    const name = `fxc${process.pid % 100000}`;
    const child = spawn(join(dir, 'r'), [name], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const done = new Promise((r) => child.once('exit', r));
    try {
      while (!out.includes('ready') && child.exitCode === null) await sleep(10);
      execFileSync('ip', ['link', 'set', 'dev', name, 'netns', ns]);
      execFileSync('ip', ['-n', ns, 'link', 'set', 'dev', name, 'mtu', '1400', 'up']);
      execFileSync('ip', ['-n', ns, 'addr', 'add', '10.80.0.1/24', 'dev', name]);
      await sleep(300);
      const f = await flood(ns);
      await sleep(300);
      child.kill('SIGTERM');
      await done;
      // The count covers the whole run (a few kernel packets at link-up besides the flood).
      return { got: Number(out.slice(out.indexOf('ready') + 5).trim()), flood: f };
    } finally {
      child.kill('SIGKILL');
      await pexec('ip', ['-n', ns, 'link', 'del', 'dev', name]).catch(() => undefined);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function measureWrites(ns: string): Promise<{ perSecond: number; errors: number }> {
  const dev = await openTun({ name: `fxw${process.pid % 100000}`, netns: ns, mtu: 1400, addresses: ['10.80.0.1/24'] });
  try {
    // IPv4/UDP 10.80.0.2:4000 -> 10.80.0.1:9, 32 bytes of payload (no listener: the kernel drops it).
    const len = 20 + 8 + PAYLOAD;
    const b = new Uint8Array(len);
    b.set([0x45, 0, 0, len, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 80, 0, 2, 10, 80, 0, 1]);
    const c = checksum(b, 0, 20);
    b[10] = c >> 8;
    b[11] = c & 0xff;
    b.set([0x0f, 0xa0, 0, 9, 0, 8 + PAYLOAD, 0, 0], 20);
    let n = 0;
    const t0 = performance.now();
    const end = t0 + SECONDS * 1000;
    while (n < MAX_PACKETS && performance.now() < end) {
      for (let i = 0; i < 1000; i++) dev.writeBytes(b, 0, len);
      n += 1000;
    }
    const secs = (performance.now() - t0) / 1000;
    return { perSecond: n / secs, errors: dev.stats.txErrors };
  } finally {
    await dev.close();
  }
}

export default async function (): Promise<BenchSection> {
  const title = 'TUN device: packets per second (kernel -> TUN -> reader; writes)';
  if (process.getuid?.() !== 0 || !existsSync('/dev/net/tun')) {
    const why = process.getuid?.() !== 0 ? 'not root' : 'no /dev/net/tun';
    console.log(`tun.bench: skipped (${why})`);
    return { title, markdown: `Skipped: ${why}.` };
  }
  const ns = `fxbench${process.pid % 100000}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    const c = await measureC(ns);
    const bare = await measureBareWorker(ns);
    const stream = await measureStream(ns);
    const ours = await measureOurs(ns);
    const writes = await measureWrites(ns);
    const rate = (n: number, f: Flood): number => n / f.seconds;
    const rows = [
      `| reader | received pps | sender offered pps | delivered | CPU us / packet |`,
      `|---|---|---|---|---|`,
      `| ipferry TunDevice (worker read loop -> shared ring -> batches) | **${k(rate(ours.got, ours.flood))}** | ${k(rate(ours.flood.sent, ours.flood))} | ${((100 * ours.got) / ours.flood.sent).toFixed(1)}% | ${ours.cpuPerPacket.toFixed(2)} |`,
      `| baseline: bare worker readSync loop into one buffer (no ring, no delivery) | ${k(rate(bare.got, bare.flood))} | ${k(rate(bare.flood.sent, bare.flood))} | ${((100 * bare.got) / bare.flood.sent).toFixed(1)}% | ${bare.cpuPerPacket.toFixed(2)} |`,
      c
        ? `| baseline: C blocking read() loop | ${k(rate(c.got, c.flood))} | ${k(rate(c.flood.sent, c.flood))} | ${((100 * c.got) / c.flood.sent).toFixed(1)}% | (other process) |`
        : `| baseline: C blocking read() loop | (no C compiler) | | | |`,
      `| baseline: tuntap2 \`LinuxTun\` stream 'data' events | ${k(rate(stream.got, stream.flood))} | ${k(rate(stream.flood.sent, stream.flood))} | ${((100 * stream.got) / stream.flood.sent).toFixed(1)}% | ${stream.cpuPerPacket.toFixed(2)} |`,
      '',
      `| writer | pps |`,
      `|---|---|`,
      `| ipferry TunDevice.writeBytes (write(2) from the main thread), ${20 + 8 + PAYLOAD}-byte packets | **${k(writes.perSecond)}** (${writes.errors} errors) |`,
      '',
      `Mean batch ${(ours.got / Math.max(1, ours.batches)).toFixed(1)} packets per wake-up; the reader waited for a free pool slot ${ours.stalls} times.`,
      `NOTES.md anchors: C blocking read() >= 150k pps (sender-limited), worker readSync ~150k, stream ~28k.`,
      `CPU us / packet: this process's user+system time (main thread, reader worker, libuv threads) over the flood, per packet received; less sensitive to other load than pps.`,
      `How: ${SECONDS} s python3 UDP flood (${PAYLOAD}-byte payload) from inside a namespace to an address routed into the TUN, same machine, same run; the sender shares the machine's cores with the reader.`,
    ];
    return { title, markdown: rows.join('\n') };
  } finally {
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  }
}
