/**
 * Test harness: two network namespaces A and B, each with a VnetTun (offloads on, MTU 1400) and
 * routes to the other's addresses through it, and a relay in this process moving packets
 * between the two TUN fds through the offload code:
 *
 *   A -> B  read a packet; a GSO super-packet is split (TsoSplitter); a NEEDS_CSUM packet is
 *           completed; then either each packet is written to B on its own (mode 'split': the
 *           segments as [plain vnet][header][payload] iovecs) or all packets of the read batch
 *           are copied into a receive area, coalesced (GroCoalescer) and written to B as GSO
 *           super-packets with writev (mode 'coalesce': what the receiving gateway will do).
 *   B -> A  the same, the other way (ACKs).
 *
 * So the kernel on both ends is the oracle: its TCP must receive every byte, in order, through
 * segments we cut and super-packets we built. `capture` keeps copies of what A's TUN handed out.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { createNetns, type Netns } from '../support/netns.ts';
import { SegmentList, TsoSplitter, completePartialChecksum } from '../../src/device/tso-split.ts';
import { GroCoalescer } from '../../src/device/gro-coalesce.ts';
import { VnetTun } from '../../src/device/tun-vnet.ts';
import type { Libc } from '../../src/sys/libc.ts';
import { POLLIN } from '../../src/sys/linux.ts';
import { SysMemory } from '../../src/sys/memory.ts';
import { IOVEC_SIZE, writeIovec } from '../../src/sys/msg.ts';
import { PollSet } from '../../src/sys/poll.ts';
import { VnetHdr, VNET_HDR_LEN, VIRTIO_NET_HDR_GSO_NONE } from '../../src/sys/virtio-net-hdr.ts';

export type RelayMode = 'split' | 'coalesce';

export const ADDR = {
  a4: '10.9.1.1', b4: '10.9.2.1', a6: 'fd00:91::1', b6: 'fd00:92::1',
} as const;

export interface SideStats {
  reads: number;
  gso: number;
  gsoTypes: Set<number>;
  maxGsoSize: number;
  segments: number;
  completed: number;
  writes: number;
  coalescedWrites: number;
  coalescedSegments: number;
  writeErrors: number;
  splitErrors: number;
}

export interface Captured {
  vnet: Uint8Array;
  ip: Uint8Array;
}

const READ_CAP = 70000;
/** Receive area per read in the coalescing mode: a 64 KiB super-packet's segments with headers. */
const AREA_PER_READ = 72000;
const BATCH = 64;

function newStats(): SideStats {
  return {
    reads: 0, gso: 0, gsoTypes: new Set(), maxGsoSize: 0, segments: 0, completed: 0, writes: 0, coalescedWrites: 0,
    coalescedSegments: 0, writeErrors: 0, splitErrors: 0,
  };
}

let seq = 0;

export class OffloadRelay {
  readonly nsA: Netns;
  readonly nsB: Netns;
  readonly tunA: VnetTun;
  readonly tunB: VnetTun;
  readonly stats = { ab: newStats(), ba: newStats() };
  /** What A's TUN handed out (virtio header + packet), up to captureLimit packets. */
  readonly captured: Captured[] = [];
  captureLimit = 0;
  private readonly mem: SysMemory;
  private readonly poll: PollSet;
  private readonly rx: number; // read area (one packet)
  private readonly area: number; // receive area for the coalescing mode
  private readonly iov: number;
  private readonly plainHdr: number;
  private readonly splitter = new TsoSplitter();
  private readonly segs: SegmentList;
  private readonly gro: GroCoalescer;
  private readonly vnet = new VnetHdr();

  constructor(readonly libc: Libc, readonly mode: RelayMode) {
    this.mem = new SysMemory(libc, 8 << 20);
    const m = this.mem;
    const id = `${process.pid % 100000}${seq++}`;
    this.nsA = createNetns('ipf-offa');
    try {
      this.nsB = createNetns('ipf-offb');
    } catch (e) {
      this.nsA.destroy();
      throw e;
    }
    const ta = VnetTun.open(libc, m, { name: `ofa${id}` });
    const tb = VnetTun.open(libc, m, { name: `ofb${id}` });
    if (!ta.ok || !tb.ok) {
      if (ta.ok) ta.tun.close();
      if (tb.ok) tb.tun.close();
      this.destroyNamespaces();
      throw new Error(`VnetTun.open: ${ta.ok ? '' : ta.reason} ${tb.ok ? '' : tb.reason}`);
    }
    this.tunA = ta.tun;
    this.tunB = tb.tun;
    this.poll = new PollSet(libc, m, 2);
    this.poll.add(this.tunA.fd, POLLIN);
    this.poll.add(this.tunB.fd, POLLIN);
    this.rx = m.alloc(READ_CAP + 8);
    this.area = m.alloc(BATCH * AREA_PER_READ);
    this.iov = m.alloc(256 * IOVEC_SIZE);
    this.plainHdr = m.alloc(16);
    const segArena = m.alloc(1100 * 128);
    this.segs = new SegmentList(1100, m.u8, segArena);
    const vnetArena = m.alloc(4096 * 16);
    this.gro = new GroCoalescer(4096, m.u8, vnetArena);
    try {
      this.configure(this.nsA, this.tunA.name, ADDR.a4, ADDR.a6, '10.9.2.0/24', 'fd00:92::/64');
      this.configure(this.nsB, this.tunB.name, ADDR.b4, ADDR.b6, '10.9.1.0/24', 'fd00:91::/64');
    } catch (e) {
      this.close();
      throw e;
    }
  }

  private configure(ns: Netns, dev: string, v4: string, v6: string, peer4: string, peer6: string): void {
    // the fd stays ours; the interface moves into the namespace
    const r = spawnSync('ip', ['link', 'set', 'dev', dev, 'netns', ns.name], { encoding: 'utf8', timeout: 10000 });
    if (r.status !== 0) throw new Error(`moving ${dev} into ${ns.name}: ${(r.stderr || 'failed').trim()}`);
    ns.exec(['ip', 'link', 'set', dev, 'mtu', '1400', 'up']);
    ns.exec(['ip', 'addr', 'add', `${v4}/24`, 'dev', dev]);
    ns.exec(['ip', '-6', 'addr', 'add', `${v6}/64`, 'dev', dev, 'nodad']);
    ns.exec(['ip', 'route', 'add', peer4, 'dev', dev]);
    ns.exec(['ip', '-6', 'route', 'add', peer6, 'dev', dev]);
  }

  /** Move packets both ways for up to `ms` milliseconds (blocking in poll at most 10 ms at a time). */
  pump(ms: number): void {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (this.poll.wait(10) <= 0) continue;
      this.forward(this.tunA, this.tunB, this.stats.ab, true);
      this.forward(this.tunB, this.tunA, this.stats.ba, false);
    }
  }

  /** Pump until `done()` (checked between slices, with the event loop running) or the deadline. */
  async pumpUntil(done: () => boolean, deadlineMs: number): Promise<boolean> {
    const end = Date.now() + deadlineMs;
    while (Date.now() < end) {
      if (done()) return true;
      this.pump(20);
      await new Promise<void>((r) => setImmediate(r));
    }
    return done();
  }

  private forward(from: VnetTun, to: VnetTun, st: SideStats, capture: boolean): void {
    const m = this.mem;
    const u8 = m.u8;
    let batchOff = this.area;
    this.gro.reset(u8);
    for (let k = 0; k < BATCH; k++) {
      const n = from.read(m.addr(this.rx), READ_CAP);
      if (n < 0) break;
      st.reads++;
      const h = this.vnet.wrap(u8, this.rx);
      const ip = this.rx + VNET_HDR_LEN;
      const ipLen = n - VNET_HDR_LEN;
      if (capture && this.captured.length < this.captureLimit) {
        this.captured.push({ vnet: u8.slice(this.rx, ip), ip: u8.slice(ip, ip + ipLen) });
      }
      if (h.gsoType !== VIRTIO_NET_HDR_GSO_NONE) {
        st.gso++;
        st.gsoTypes.add(h.gsoType);
        st.maxGsoSize = Math.max(st.maxGsoSize, h.gsoSize);
        const cnt = this.splitter.split(u8, ip, ipLen, h, this.segs);
        if (cnt < 0) {
          st.splitErrors++;
          continue;
        }
        st.segments += cnt;
        for (let i = 0; i < cnt; i++) {
          if (this.mode === 'split') {
            this.vnet.wrap(u8, this.plainHdr).writePlain(this.segs.length(i));
            writeIovec(m, this.iov, m.addr(this.plainHdr), VNET_HDR_LEN);
            writeIovec(m, this.iov + IOVEC_SIZE, m.addr(this.segs.hdrOff(i)), this.segs.hdrLen);
            writeIovec(m, this.iov + 2 * IOVEC_SIZE, m.addr(this.segs.payOff[i]!), this.segs.payLen[i]!);
            this.write(to, st, 3, this.segs.length(i) + VNET_HDR_LEN);
          } else {
            const len = this.segs.copySegment(i, u8, batchOff);
            this.groAdd(to, st, batchOff, len);
            batchOff += (len + 7) & ~7;
          }
        }
        continue;
      }
      if (h.needsCsum) {
        if (!completePartialChecksum(u8, ip, ipLen, h.csumStart, h.csumOffset)) {
          st.splitErrors++;
          continue;
        }
        st.completed++;
      }
      if (this.mode === 'split') {
        this.vnet.wrap(u8, this.rx).writePlain(ipLen);
        this.write(to, st, -1, n);
      } else {
        u8.copyWithin(batchOff, ip, ip + ipLen);
        this.groAdd(to, st, batchOff, ipLen);
        batchOff += (ipLen + 7) & ~7;
      }
    }
    if (this.mode === 'coalesce') this.groFlush(to, st);
  }

  private groAdd(to: VnetTun, st: SideStats, off: number, len: number): void {
    if (this.gro.add(off, len) >= 0) return;
    this.groFlush(to, st);
    this.gro.add(off, len);
  }

  /** Write every entry of the coalescer's batch to `to`, then start a new batch. */
  private groFlush(to: VnetTun, st: SideStats): void {
    const m = this.mem;
    this.gro.finish();
    for (let e = 0; e < this.gro.count; e++) {
      const iovs = this.gro.writeIovecs(e, m, this.iov, m.base, m.base);
      if (this.gro.segs[e]! > 1) {
        st.coalescedWrites++;
        st.coalescedSegments += this.gro.segs[e]!;
      }
      this.write(to, st, iovs, this.gro.total[e]! + VNET_HDR_LEN);
    }
    this.gro.reset(m.u8);
  }

  /** iovs < 0: plain write of the read area. */
  private write(to: VnetTun, st: SideStats, iovs: number, expect: number): void {
    const w = iovs < 0 ? to.write(this.mem.addr(this.rx), expect) : to.writev(this.mem.addr(this.iov), iovs);
    if (w === expect) st.writes++;
    else st.writeErrors++;
  }

  private destroyNamespaces(): void {
    this.nsA.destroy();
    this.nsB?.destroy();
  }

  close(): void {
    this.tunA?.close();
    this.tunB?.close();
    this.destroyNamespaces();
  }
}

/** A TCP receiver in `ns` that prints "listening", then "<bytes> <sha256>" after EOF. */
export function tcpSink(ns: Netns, addr: string, port: number): { child: ChildProcess; result: Promise<string> } {
  const child = ns.spawn(['python3', '-c', `
import socket, hashlib
fam = socket.AF_INET6 if ':' in '${addr}' else socket.AF_INET
s = socket.socket(fam)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('${addr}', ${port}))
s.listen(1)
s.settimeout(30)
print('listening', flush=True)
c, _ = s.accept()
c.settimeout(30)
h = hashlib.sha256()
n = 0
while True:
    d = c.recv(1 << 20)
    if not d:
        break
    h.update(d)
    n += len(d)
print(n, h.hexdigest(), flush=True)
`], { stdio: ['ignore', 'pipe', 'pipe'] });
  return { child, result: collect(child) };
}

/**
 * A TCP sender in `ns`: `chunks` writes of `chunkBytes` deterministic bytes (sha256 blocks),
 * `gapMs` apart; prints "<bytes> <sha256>" of what it sent.
 */
export function tcpSource(ns: Netns, addr: string, port: number, chunks: number, chunkBytes: number, gapMs = 0): { child: ChildProcess; result: Promise<string> } {
  const child = ns.spawn(['python3', '-c', `
import socket, hashlib, time
data = b''.join(hashlib.sha256(b'%d' % i).digest() for i in range((${chunks * chunkBytes} + 31) // 32))[:${chunks * chunkBytes}]
s = socket.create_connection(('${addr}', ${port}), timeout=30)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
for i in range(${chunks}):
    s.sendall(data[i * ${chunkBytes}:(i + 1) * ${chunkBytes}])
    if ${gapMs}:
        time.sleep(${gapMs / 1000})
s.shutdown(socket.SHUT_WR)
s.settimeout(30)
while s.recv(65536):
    pass
s.close()
print(len(data), hashlib.sha256(data).hexdigest(), flush=True)
`], { stdio: ['ignore', 'pipe', 'pipe'] });
  return { child, result: collect(child) };
}

function collect(child: ChildProcess): Promise<string> {
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const last = () => out.trim().split('\n').pop() ?? '';
  return new Promise((res) => child.on('exit', (code) => res(code === 0 ? last() : `exit ${code}: ${out.trim()} ${err.trim()}`)));
}

/** Resolves when `child` printed `line` on stdout (or exits). */
export function waitForLine(child: ChildProcess, line: string): Promise<boolean> {
  return new Promise((res) => {
    let buf = '';
    const on = (d: Buffer) => {
      buf += d.toString();
      if (buf.includes(line)) {
        child.stdout?.off('data', on);
        res(true);
      }
    };
    child.stdout?.on('data', on);
    child.once('exit', () => res(buf.includes(line)));
  });
}
