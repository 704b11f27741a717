/**
 * The fast-path device and offload code against the Linux kernel (root; skipped otherwise):
 * a VnetTun with offloads on in each of two namespaces, a TCP stream from A to B, and this
 * process relaying between the two TUN fds. The kernel on A hands out real TCP super-packets
 * (gso_type TCPV4 / TCPV6 with a gso_size); the relay splits them and either writes each segment
 * to B or coalesces them back into GSO super-packets written with one writev each. B's TCP must
 * receive every byte (same length and sha256 as sent): the kernel accepts our segments, our
 * completed checksums (the ACKs coming back are NEEDS_CSUM) and our coalesced super-packets.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { VnetTun, TUN_DEFAULT_OFFLOADS } from '../../src/device/tun-vnet.ts';
import { sysLibc, sysUnavailableReason } from '../../src/sys/libc.ts';
import { SysMemory } from '../../src/sys/memory.ts';
import { IFF_NO_PI, IFF_TUN, IFF_VNET_HDR, POLLIN } from '../../src/sys/linux.ts';
import { VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_TCPV6, VnetHdr, VNET_HDR_LEN } from '../../src/sys/virtio-net-hdr.ts';
import { GroCoalescer } from '../../src/device/gro-coalesce.ts';
import { PollSet } from '../../src/sys/poll.ts';
import { Ipv4Packet } from '../../src/wire/ipv4.ts';
import { TCP_ACK, TCP_CWR, TCP_PSH } from '../../src/wire/tcp.ts';
import { writePcap } from '../support/pcap.ts';
import { cleanupAll, createNetns, isRoot, netnsAvailable, NETNS_SKIP_REASON } from '../support/netns.ts';
import { addr6, pattern, streamSegments, tsOption, writeSegment, type TcpSpec } from './tcp-super.ts';
import { ADDR, OffloadRelay, tcpSink, tcpSource, waitForLine, type RelayMode } from './offload-relay.ts';

const libc = sysLibc();
const why = !isRoot()
  ? 'not root'
  : !existsSync('/dev/net/tun')
    ? 'no /dev/net/tun'
    : !libc
      ? `fast path unavailable: ${sysUnavailableReason()}`
      : !netnsAvailable()
        ? NETNS_SKIP_REASON
        : '';
if (why) console.warn(`offload-kernel.test.ts skipped: ${why}`);

afterAll(() => cleanupAll());

describe.skipIf(!!why)('VnetTun (kernel)', () => {
  it('opens with IFF_TUN|IFF_NO_PI|IFF_VNET_HDR and TSO offloads; reports name and flags', () => {
    const mem = new SysMemory(libc!, 65536);
    const r = VnetTun.open(libc!, mem, { name: `ofx${process.pid % 100000}` });
    expect(r.ok ? '' : r.reason).toBe('');
    if (!r.ok) return;
    try {
      expect(r.tun.name).toBe(`ofx${process.pid % 100000}`);
      expect(r.tun.flags & (IFF_TUN | IFF_NO_PI | IFF_VNET_HDR)).toBe(IFF_TUN | IFF_NO_PI | IFF_VNET_HDR);
      expect(r.tun.offloads).toBe(TUN_DEFAULT_OFFLOADS);
      // nothing queued: a non-blocking read says EAGAIN
      expect(r.tun.read(mem.addr(mem.alloc(2048)), 2048)).toBe(-1);
      expect(r.tun.lastErrno).toBe(11);
    } finally {
      r.tun.close();
    }
  });

  it('fails soft with a reason: missing clone device, bad name, offloads refused', () => {
    const mem = new SysMemory(libc!, 65536);
    expect(VnetTun.open(libc!, mem, { devicePath: '/dev/net/no-such-tun' })).toEqual({ ok: false, reason: 'open /dev/net/no-such-tun: ENOENT' });
    expect(VnetTun.open(libc!, mem, { name: 'x'.repeat(16) })).toMatchObject({ ok: false, reason: expect.stringContaining('bad interface name') });
    const r = VnetTun.open(libc!, mem, { offloads: 0x4000 }); // a flag this kernel does not know
    expect(r).toMatchObject({ ok: false, reason: expect.stringMatching(/^TUNSETOFFLOAD 0x4000 \(offloads refused\): E/) });
  });
});

describe.skipIf(!!why)('TCP through the offload relay (kernel on both ends)', () => {
  const cases: [4 | 6, RelayMode][] = [[4, 'split'], [6, 'split'], [4, 'coalesce'], [6, 'coalesce']];
  for (const [family, mode] of cases) {
    it(`IPv${family}, ${mode === 'split' ? 'split into segments' : 'split, then coalesced into GSO writes'}: every byte arrives`, async () => {
      const relay = new OffloadRelay(libc!, mode);
      try {
        const dst = family === 4 ? ADDR.b4 : ADDR.b6;
        const sink = tcpSink(relay.nsB, dst, 5201);
        expect(await waitForLine(sink.child, 'listening')).toBe(true);
        const src = tcpSource(relay.nsA, dst, 5201, 64, 65536); // 4 MiB in 64 KiB writes
        let sent = '';
        let got = '';
        void src.result.then((s) => (sent = s));
        void sink.result.then((s) => (got = s));
        const done = await relay.pumpUntil(() => sent !== '' && got !== '', 60_000);
        const { ab, ba } = relay.stats;
        const info = JSON.stringify({ ab: { ...ab, gsoTypes: [...ab.gsoTypes] }, ba: { ...ba, gsoTypes: [...ba.gsoTypes] } });
        expect(done, info).toBe(true);
        expect(got, info).toBe(sent);
        expect(sent).toMatch(/^4194304 [0-9a-f]{64}$/);
        // the kernel handed out real super-packets of the right kind
        expect(ab.gso, info).toBeGreaterThan(0);
        expect([...ab.gsoTypes]).toEqual([family === 4 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6]);
        expect(ab.maxGsoSize).toBe(family === 4 ? 1348 : 1328); // MTU 1400 - IP - TCP with timestamps
        expect(ab.segments).toBeGreaterThan(ab.gso);
        expect([ab.splitErrors, ab.writeErrors, ba.splitErrors, ba.writeErrors], info).toEqual([0, 0, 0, 0]);
        expect(ba.completed, info).toBeGreaterThan(0); // ACKs arrive NEEDS_CSUM: completed by us
        if (mode === 'coalesce') {
          expect(ab.coalescedWrites, info).toBeGreaterThan(0);
          expect(ab.coalescedSegments, info).toBeGreaterThan(2 * ab.coalescedWrites);
        }
      } finally {
        relay.close();
      }
    });
  }
});

describe.skipIf(!!why)('coalesced super-packets forwarded by the kernel (its GSO is the oracle)', () => {
  // One namespace: tunIn (offloads on) takes our coalesced writes; the kernel forwards them out
  // of tunOut, opened WITHOUT offloads, so it must segment them itself and compute every
  // checksum from the partial sum we left in the header. What tunOut hands us must be the
  // original segments, hop count one lower.
  for (const v6 of [false, true]) {
    it(`IPv${v6 ? 6 : 4}: the kernel re-segments our super-packet into the original segments`, () => {
      const mem = new SysMemory(libc!, 4 << 20);
      const ns = createNetns('ipf-offf');
      const id = `${process.pid % 100000}${v6 ? 6 : 4}`;
      const tin = VnetTun.open(libc!, mem, { name: `ofi${id}` });
      const tout = VnetTun.open(libc!, mem, { name: `ofo${id}`, offloads: 0 });
      try {
        expect([tin.ok, tout.ok]).toEqual([true, true]);
        if (!tin.ok || !tout.ok) return;
        for (const [dev, addr4, addr6, route4, route6] of [
          [tin.tun.name, '10.9.2.1/24', 'fd00:92::1/64', '10.9.1.0/24', 'fd00:91::/64'],
          [tout.tun.name, '10.9.3.1/24', 'fd00:93::1/64', '10.9.4.0/24', 'fd00:94::/64'],
        ] as const) {
          execFileSync('ip', ['link', 'set', 'dev', dev, 'netns', ns.name], { timeout: 10000 });
          ns.exec(['ip', 'link', 'set', dev, 'mtu', '1400', 'up']);
          ns.exec(['ip', 'addr', 'add', addr4, 'dev', dev]);
          ns.exec(['ip', '-6', 'addr', 'add', addr6, 'dev', dev, 'nodad']);
          ns.exec(['ip', 'route', 'add', route4, 'dev', dev]);
          ns.exec(['ip', '-6', 'route', 'add', route6, 'dev', dev]);
        }
        ns.exec(['sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1', 'net.ipv4.conf.all.rp_filter=0']);
        // a stream's segments from 10.9.1.5 / fd00:91::5 to 10.9.4.5 / fd00:94::5
        const mss = v6 ? 1328 : 1348;
        const spec: TcpSpec = {
          v6, payload: pattern(30 * mss + 77, 9), seq: 0xffffff00, flags: TCP_ACK | TCP_PSH | TCP_CWR, options: tsOption(7, 9),
          ident: 0xfffa, ttl: 64, src: v6 ? addr6('fd00:91::5') : 0x0a090105, dst: v6 ? addr6('fd00:94::5') : 0x0a090405,
        };
        const segs = streamSegments(spec, mss);
        const area = mem.alloc(70000 + 4 * segs.length);
        const originals: Uint8Array[] = [];
        const gro = new GroCoalescer(64, mem.u8, mem.alloc(64 * 16));
        gro.reset(mem.u8);
        let p = area + 2;
        for (const s of segs) {
          const n = writeSegment(s, mem.u8, p);
          originals.push(mem.u8.slice(p, p + n));
          gro.add(p, n);
          p = ((p + n + 3) & ~3) + 2;
        }
        gro.finish();
        expect([gro.count, gro.segs[0]]).toEqual([1, segs.length]);
        const iov = mem.alloc(70 * 16);
        const iovs = gro.writeIovecs(0, mem, iov, mem.base, mem.base);
        expect(tin.tun.writev(mem.addr(iov), iovs)).toBe(gro.total[0]! + VNET_HDR_LEN);
        // read what the kernel forwards out of tunOut (bounded: poll up to 2 s per packet)
        const ps = new PollSet(libc!, mem, 1);
        ps.add(tout.tun.fd, POLLIN);
        const rx = mem.alloc(70000);
        const got: Uint8Array[] = [];
        while (got.length < segs.length && ps.wait(2000) > 0) {
          for (let n; (n = tout.tun.read(mem.addr(rx), 70000)) > 0; ) {
            const h = new VnetHdr(mem.u8, rx);
            expect(h.gsoType).toBe(0);
            const pkt = mem.u8.slice(rx + VNET_HDR_LEN, rx + n);
            if ((pkt[0]! >> 4) === (v6 ? 6 : 4) && pkt[v6 ? 6 : 9] === 6) got.push(pkt); // ignore the kernel's own (ND, MLD)
          }
        }
        expect(got.length).toBe(segs.length);
        got.forEach((g, i) => {
          // expected: the original segment, one hop later
          const want = originals[i]!.slice();
          if (v6) want[7]!--;
          else {
            want[8]!--;
            const ip = new Ipv4Packet(want, 0, want.length);
            ip.fillChecksum();
          }
          expect(Buffer.from(g).equals(Buffer.from(want)), `segment ${i}: ${Buffer.from(g).subarray(0, 60).toString('hex')} vs ${Buffer.from(want).subarray(0, 60).toString('hex')}`).toBe(true);
        });
      } finally {
        if (tin.ok) tin.tun.close();
        if (tout.ok) tout.tun.close();
        ns.destroy();
      }
    });
  }
});

// IPFERRY_CAPTURE_OFFLOAD_FIXTURES=1 npx vitest run test/device/offload-kernel.test.ts -t fixtures
// rewrites test/fixtures/offload/ (see its README.md) from a fresh capture.
const capture = process.env.IPFERRY_CAPTURE_OFFLOAD_FIXTURES === '1';
describe.skipIf(!!why || !capture)('capture offload fixtures', () => {
  it('records what a TUN with offloads hands out for small TCP writes (fixtures)', async () => {
    const dir = new URL('../fixtures/offload/', import.meta.url).pathname;
    mkdirSync(dir, { recursive: true });
    const manifest: { kernel: string; linktype: number; fixtures: unknown[] } = {
      kernel: execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim(), linktype: 101, fixtures: [],
    };
    for (const family of [4, 6] as const) {
      const relay = new OffloadRelay(libc!, 'split');
      relay.captureLimit = 40;
      try {
        const dst = family === 4 ? ADDR.b4 : ADDR.b6;
        const sink = tcpSink(relay.nsB, dst, 5201);
        expect(await waitForLine(sink.child, 'listening')).toBe(true);
        const src = tcpSource(relay.nsA, dst, 5201, 3, 4000, 50);
        let sent = '';
        let got = '';
        void src.result.then((s) => (sent = s));
        void sink.result.then((s) => (got = s));
        expect(await relay.pumpUntil(() => sent !== '' && got !== '', 30_000)).toBe(true);
        expect(got).toBe(sent);
        const file = `tcp${family}-tso.pcap`;
        writePcap(join(dir, file), relay.captured.map((c) => c.ip));
        manifest.fixtures.push({
          file,
          what: `what A's TUN (IFF_VNET_HDR, offloads CSUM|TSO4|TSO6, MTU 1400) handed out for one TCP connection ${ADDR['a' + family as 'a4']} -> ${dst}:5201 sending 3 writes of 4000 bytes 50 ms apart (TCP_NODELAY), then FIN`,
          packets: relay.captured.map((c) => ({ vnet: Buffer.from(c.vnet).toString('hex'), describe: new VnetHdr(c.vnet, 0).describe(), length: c.ip.length })),
        });
      } finally {
        relay.close();
      }
    }
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n');
  });
});
