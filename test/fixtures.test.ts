/**
 * The real-kernel fixtures (test/fixtures/kernel) and the test support around them: the pcap
 * reader/writer, the tshark oracle (proven on the kernel's own packets AND proven to catch broken
 * ones), and the namespace helpers.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checksum, pseudoHeaderSumV4 } from '../src/wire/checksum.ts';
import {
  KERNEL_FIXTURE_DIR, decodePcap, encodePcap, kernelFixture, kernelManifest, readPcap, writePcap,
  LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_ETHERNET,
} from './support/pcap.ts';
import { tsharkAvailable, tsharkCheckPackets, tsharkVerdicts, tsharkFields, TSHARK_MISSING } from './support/tshark.ts';
import { createNetns, isRoot, netnsAvailable, netnsExists, registerCleanup, NETNS_SKIP_REASON } from './support/netns.ts';

const HAVE_TSHARK = tsharkAvailable();
const tsharkIt = HAVE_TSHARK ? it : it.skip;
const tsharkTitle = (t: string) => (HAVE_TSHARK ? t : `${t} [skipped: ${TSHARK_MISSING}]`);

const tmp = mkdtempSync(join(tmpdir(), 'ipferry-fixtures-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const manifest = kernelManifest();
const files = readdirSync(KERNEL_FIXTURE_DIR).filter((f) => f.endsWith('.pcap')).sort();

describe('kernel fixtures', () => {
  it('manifest and directory agree', () => {
    expect(manifest.linktype).toBe(101);
    expect(manifest.fixtures.map((f) => f.file).sort()).toEqual(files);
    expect(files.length).toBeGreaterThanOrEqual(30);
  });

  it.each(manifest.fixtures.map((f) => [f.file, f] as const))('%s parses as raw IP with consistent lengths', (file, info) => {
    const pcap = readPcap(KERNEL_FIXTURE_DIR + file);
    expect(pcap.linktype).toBe(101);
    expect(pcap.packets.length).toBe(info.packets);
    expect(pcap.packets.length).toBeGreaterThan(0);
    expect(pcap.packets.map((p) => p.data.length)).toEqual(info.sizes);
    for (const { data, origLen } of pcap.packets) {
      expect(origLen).toBe(data.length);
      const version = data[0]! >> 4;
      if (version === 4) {
        expect(data.readUInt16BE(2)).toBe(data.length);
        const ihl = (data[0]! & 15) * 4;
        expect(checksum(data, 0, ihl)).toBe(0); // header checksum verifies
      } else {
        expect(version).toBe(6);
        expect(data.readUInt16BE(4) + 40).toBe(data.length);
      }
      expect(data.length).toBeLessThanOrEqual(1400); // TUN MTU
    }
  });

  it('kernel facts the fixtures pin down', () => {
    // TCP SYN over MTU 1400: MSS 1360 (v4) / 1340 (v6) is the first option
    const syn4 = kernelFixture('tcp-syn4')[0]!;
    expect([syn4[40], syn4[41], syn4.readUInt16BE(42)]).toEqual([2, 4, 1360]);
    const syn6 = kernelFixture('tcp-syn6')[0]!;
    expect([syn6[60], syn6[61], syn6.readUInt16BE(62)]).toEqual([2, 4, 1340]);
    // ping -s 4000 -M dont: three fragments, 8-byte aligned offsets, MF on all but the last
    const f4 = kernelFixture('ping4-frag');
    expect(f4.map((p) => p.readUInt16BE(6))).toEqual([0x2000, 0x2000 | (1376 / 8), 2752 / 8]);
    expect(new Set(f4.map((p) => p.readUInt16BE(4))).size).toBe(1);
    const f6 = kernelFixture('ping6-frag');
    expect(f6.map((p) => p[6])).toEqual([44, 44, 44]);
    expect(f6.map((p) => p.readUInt16BE(42))).toEqual([1, 1352 | 1, 2704]);
    // fragmentation needed: type 3 code 4, next-hop MTU 1280; Linux quotes up to 576 bytes total
    const fn = kernelFixture('icmp4-frag-needed')[0]!;
    expect([fn[20], fn[21], fn.readUInt16BE(26), fn.length]).toEqual([3, 4, 1280, 576]);
    // packet too big: type 2, MTU 1280, whole message fits the IPv6 minimum MTU
    const ptb = kernelFixture('icmp6-packet-too-big')[0]!;
    expect([ptb[40], ptb.readUInt32BE(44), ptb.length]).toEqual([2, 1280, 1280]);
    // options (IHL 15): NOP + record route (len 39, pointer 8: the kernel recorded 192.168.10.1),
    // and timestamp tsonly (type 68, len 40, pointer 9: one timestamp filled by the kernel)
    const rr = kernelFixture('ping4-rr')[0]!;
    expect([rr[0], rr[20], rr[21], rr[22], rr[23], [...rr.subarray(24, 28)].join('.')]).toEqual([0x4f, 1, 7, 39, 8, '192.168.10.1']);
    const ts = kernelFixture('ping4-ts')[0]!;
    expect([ts[0], ts[20], ts[21], ts[22], ts[23]]).toEqual([0x4f, 68, 40, 9, 0]);
    // IGMPv3 report: IHL 6 with router alert (148, len 4), TTL 1
    const igmp = kernelFixture('igmp4-report')[0]!;
    expect([igmp[0], igmp[8], igmp[9], igmp[20], igmp[21]]).toEqual([0x46, 1, 2, 148, 4]);
    // MLDv2 report: hop-by-hop (router alert) then ICMPv6 type 143
    const mld = kernelFixture('mld6-report')[0]!;
    expect([mld[6], mld[40], mld[42], mld[48]]).toEqual([0, 58, 5, 143]);
    // sticky extension headers: IPv6 -> HBH(0) -> DST(60) -> UDP(17)
    const ext = kernelFixture('udp6-exthdrs')[0]!;
    expect([ext[6], ext[40], ext[48], ext[50]]).toEqual([0, 60, 17, 0x1e]);
    // SRH: IPv6 dst = segment[1]; HBH -> RH(43) type 4, SL 1 -> DST -> UDP
    const srh = kernelFixture('udp6-srh')[0]!;
    expect([srh[6], srh[40], srh[48], srh[50], srh[51], srh[88]]).toEqual([0, 43, 60, 4, 1, 17]);
    expect(srh.subarray(24, 40)).toEqual(srh.subarray(72, 88)); // dst == segment[1]
    // Linux keeps DST (without RH) in the unfragmentable part: HBH -> DST -> FRAG(44) in every fragment
    for (const f of kernelFixture('udp6-exthdrs-frag')) expect([f[6], f[40], f[48], f[56]]).toEqual([0, 60, 44, 17]);
  });

  tsharkIt.each(files)(tsharkTitle('tshark finds no malformed packet, bad checksum or unreassembled fragment in %s'), (file) => {
    const v = tsharkVerdicts(KERNEL_FIXTURE_DIR + file);
    expect(v.available).toBe(true);
    expect(v.problems).toEqual([]);
    expect(v.perPacket.length).toBe(manifest.fixtures.find((f) => f.file === file)!.packets);
  });

  tsharkIt(tsharkTitle('tshark reassembles the kernel fragments into the full datagrams'), () => {
    for (const [file, len] of [['ping4-frag.pcap', 4008], ['ping6-frag.pcap', 4008], ['icmp4-echo-reply-frag.pcap', 3008], ['icmp6-echo-reply-frag.pcap', 3008], ['udp4-frag.pcap', 3008], ['udp6-exthdrs-frag.pcap', 3008]] as const) {
      const rows = tsharkFields(KERNEL_FIXTURE_DIR + file, ['ip.reassembled.length', 'ipv6.reassembled.length']);
      expect(rows[2]!.flat()).toEqual([String(len)]);
    }
  });
});

// ---------------------------------------------------------------- the oracle catches problems
function udp4Packet(src: number[], dst: number[], sport: number, dport: number, payload: Uint8Array): Buffer {
  const p = Buffer.alloc(28 + payload.length);
  p[0] = 0x45;
  p.writeUInt16BE(p.length, 2);
  p.writeUInt16BE(0x1234, 4);
  p[8] = 64;
  p[9] = 17;
  p.set(src, 12);
  p.set(dst, 16);
  p.writeUInt16BE(checksum(p, 0, 20), 10);
  p.writeUInt16BE(sport, 20);
  p.writeUInt16BE(dport, 22);
  p.writeUInt16BE(8 + payload.length, 24);
  p.set(payload, 28);
  const c = checksum(p, 20, 8 + payload.length, pseudoHeaderSumV4(p, 12, 16, 17, 8 + payload.length));
  p.writeUInt16BE(c === 0 ? 0xffff : c, 26);
  return p;
}

describe('tshark oracle detects broken packets', () => {
  const good = () => Buffer.from(kernelFixture('udp4')[0]!);

  tsharkIt(tsharkTitle('wrong IPv4 header checksum and wrong UDP checksum are both flagged'), () => {
    const badIp = good();
    badIp[10] ^= 0x5a;
    const badUdp = good();
    badUdp[26] ^= 0x5a;
    const file = join(tmp, 'bad.pcap');
    writePcap(file, [good(), badIp, badUdp]);
    const v = tsharkVerdicts(file);
    expect(v.ok).toBe(false);
    expect(v.perPacket.map((p) => p.problems.length > 0)).toEqual([false, true, true]);
    expect(v.perPacket[1]!.problems.join()).toMatch(/Bad checksum/);
    expect(v.perPacket[2]!.problems.join()).toMatch(/Bad checksum/);
  });

  tsharkIt(tsharkTitle('bad ICMP, ICMPv6 and TCP checksums, truncation and a wrong length are flagged'), () => {
    const icmp = Buffer.from(kernelFixture('ping4')[0]!);
    icmp[22] ^= 1;
    const icmp6 = Buffer.from(kernelFixture('ping6')[0]!);
    icmp6[42] ^= 1;
    const tcp = Buffer.from(kernelFixture('tcp-syn4')[0]!);
    tcp[36] ^= 1;
    const truncated = good().subarray(0, 24);
    const v = tsharkCheckPackets([icmp, icmp6, tcp, truncated]);
    expect(v.perPacket.map((p) => p.problems.length > 0)).toEqual([true, true, true, true]);
    expect(v.perPacket[3]!.malformed).toBe(true);
  });

  tsharkIt(tsharkTitle('a missing fragment and a corrupted fragment are flagged (reassembled datagrams are checked)'), () => {
    const frags = kernelFixture('ping4-frag');
    const missing = tsharkCheckPackets([frags[0]!, frags[2]!]);
    expect(missing.problems.join('\n')).toMatch(/never reassembled/);
    const corrupt = frags.map((f) => Buffer.from(f));
    corrupt[1]![500] ^= 0xff; // payload byte: fragment header checksum still fine
    const v = tsharkCheckPackets(corrupt);
    expect(v.problems.join('\n')).toMatch(/frame 3: checksum\/.*Bad checksum/);
    const frags6 = kernelFixture('ping6-frag').map((f) => Buffer.from(f));
    frags6[0]![1000] ^= 0xff;
    expect(tsharkCheckPackets(frags6).problems.join('\n')).toMatch(/frame 3: checksum/);
  });

  tsharkIt(tsharkTitle('IP in UDP (GUE variant 1): inner IPv4 and IPv6 are dissected and checked with decodeUdpAsIp'), () => {
    const inner4 = good();
    const inner6 = Buffer.from(kernelFixture('udp6')[0]!);
    const bad6 = Buffer.from(inner6);
    bad6[bad6.length - 1] ^= 1;
    const a = [127, 0, 0, 1];
    const pkts = [udp4Packet(a, a, 40000, 6080, inner4), udp4Packet(a, a, 40000, 6080, inner6), udp4Packet(a, a, 40000, 6080, bad6)];
    const v = tsharkCheckPackets(pkts, { decodeUdpAsIp: [6080] });
    expect(v.perPacket.map((p) => p.protocols)).toEqual(['raw:ip:udp:ip:udp:data', 'raw:ip:udp:ip:ipv6:udp:data', 'raw:ip:udp:ip:ipv6:udp:data']);
    expect(v.perPacket.map((p) => p.problems.length > 0)).toEqual([false, false, true]);
  });
});

// ---------------------------------------------------------------- pcap reader/writer
describe('pcap reader/writer', () => {
  const pkts = kernelFixture('ping4-frag');

  it('round-trips through writePcap/readPcap with deterministic timestamps', () => {
    const file = join(tmp, 'rt.pcap');
    writePcap(file, pkts);
    const back = readPcap(file);
    expect(back.linktype).toBe(101);
    expect(back.packets.map((p) => p.data)).toEqual(pkts);
    expect(back.packets.map((p) => p.ts)).toEqual([0, 1e-6, 2e-6]);
    expect(encodePcap(pkts)).toEqual(encodePcap(pkts));
  });

  it('reads big-endian and nanosecond files', () => {
    const le = encodePcap([{ ts: 5.25, data: pkts[0]! }]);
    // big-endian µs: swap every header field
    const be = Buffer.from(le);
    be.writeUInt32BE(0xa1b2c3d4, 0);
    be.writeUInt16BE(2, 4);
    be.writeUInt16BE(4, 6);
    be.writeUInt32BE(262144, 16);
    be.writeUInt32BE(101, 20);
    be.writeUInt32BE(5, 24);
    be.writeUInt32BE(250000, 28);
    be.writeUInt32BE(pkts[0]!.length, 32);
    be.writeUInt32BE(pkts[0]!.length, 36);
    const rb = decodePcap(be);
    expect(rb.packets[0]!.ts).toBe(5.25);
    expect(rb.packets[0]!.data).toEqual(pkts[0]);
    const ns = Buffer.from(le);
    ns.writeUInt32LE(0xa1b23c4d, 0);
    ns.writeUInt32LE(250_000_000, 28);
    expect(decodePcap(ns).packets[0]!.ts).toBe(5.25);
  });

  it('strips Linux cooked (v1, v2) and Ethernet link headers', () => {
    const ip = pkts[2]!;
    const sll = Buffer.concat([Buffer.from([0, 4, 0, 0xfe, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00]), ip]);
    const sll2 = Buffer.concat([Buffer.from([0x08, 0, 0, 0, 0, 0, 0, 7, 0xff, 0xfe, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]), ip]);
    const eth = Buffer.concat([Buffer.alloc(12), Buffer.from([0x81, 0x00, 0, 1, 0x08, 0x00]), ip]);
    expect(decodePcap(encodePcap([sll], LINKTYPE_LINUX_SLL)).packets[0]!.data).toEqual(ip);
    expect(decodePcap(encodePcap([sll2], LINKTYPE_LINUX_SLL2)).packets[0]!.data).toEqual(ip);
    expect(decodePcap(encodePcap([eth], LINKTYPE_ETHERNET)).packets[0]!.data).toEqual(ip);
  });

  tsharkIt(tsharkTitle('reads pcapng written by tshark'), () => {
    const out = join(tmp, 'conv.pcapng');
    execFileSync('tshark', ['-r', KERNEL_FIXTURE_DIR + 'ping6-frag.pcap', '-F', 'pcapng', '-w', out], { stdio: 'ignore', timeout: 30000 });
    const ng = readPcap(out);
    const orig = readPcap(KERNEL_FIXTURE_DIR + 'ping6-frag.pcap');
    expect(ng.linktype).toBe(101);
    expect(ng.packets.map((p) => p.data)).toEqual(orig.packets.map((p) => p.data));
    ng.packets.forEach((p, i) => expect(p.ts).toBeCloseTo(orig.packets[i]!.ts, 5));
  });

  it('rejects garbage with an error', () => {
    expect(() => decodePcap(Buffer.from('not a pcap at all, really not'))).toThrow(/bad magic/);
    writeFileSync(join(tmp, 'short.pcap'), encodePcap(pkts).subarray(0, 50));
    expect(() => readPcap(join(tmp, 'short.pcap'))).toThrow(/truncated/);
  });
});

// ---------------------------------------------------------------- netns helpers
describe('netns helpers', () => {
  const CAN = netnsAvailable();
  const nsIt = CAN ? it : it.skip;
  const title = (t: string) => (CAN ? t : `${t} [skipped: ${NETNS_SKIP_REASON}]`);

  it('isRoot reflects the uid', () => {
    expect(isRoot()).toBe(process.getuid?.() === 0);
  });

  nsIt(title('createNetns gives a unique namespace with lo up; destroy removes it and what ran inside'), async () => {
    const a = createNetns('ipf-fxt');
    const b = createNetns('ipf-fxt');
    try {
      expect(a.name).not.toBe(b.name);
      expect(netnsExists(a.name)).toBe(true);
      expect(a.exec(['ip', '-o', 'link', 'show', 'lo'])).toMatch(/UP/);
      expect(a.exec('echo hi && echo there')).toBe('hi\nthere\n');
      expect(a.run(['false']).code).toBe(1);
      expect(() => a.exec(['ip', 'link', 'show', 'nonexistent0'])).toThrow(/ipf-fxt.*nonexistent0/);
      expect(a.run(['sleep', '5'], { timeoutMs: 200 }).code).toBe(-1);
      const child = a.spawn(['sleep', '30']);
      await new Promise((r) => setTimeout(r, 100));
      const exited = new Promise((r) => child.once('exit', r));
      a.destroy();
      await exited;
      expect(netnsExists(a.name)).toBe(false);
      a.destroy(); // idempotent
    } finally {
      a.destroy();
      b.destroy();
    }
    expect(netnsExists(b.name)).toBe(false);
  });

  nsIt(title('the cleanup registry removes namespaces of a process that exits without cleaning up'), () => {
    // a child process creates a namespace and exits abruptly; its exit handler must delete it
    const script = `
      import { createNetns } from ${JSON.stringify(new URL('./support/netns.ts', import.meta.url).pathname)};
      const ns = createNetns('ipf-crash');
      console.log(ns.name);
      process.exit(3);`;
    const file = join(tmp, 'crash.ts');
    writeFileSync(file, script);
    let out = '';
    try {
      execFileSync('npx', ['tsx', file], { encoding: 'utf8', timeout: 60000, stdio: ['ignore', 'pipe', 'ignore'] });
    } catch (e) {
      out = (e as { stdout: string }).stdout;
    }
    const name = out.trim().split('\n').pop()!;
    expect(name).toMatch(/^ipf-crash-/);
    expect(netnsExists(name)).toBe(false);
  });

  it('registerCleanup returns an unregister function', () => {
    let ran = 0;
    const un = registerCleanup(() => ran++);
    un();
    expect(ran).toBe(0);
  });
});
