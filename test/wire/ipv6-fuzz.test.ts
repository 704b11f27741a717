/**
 * 100k random and mutated buffers through every IPv6-side entry point: check(), the chain walk,
 * the option scan, the ICMPv6 view, describe(), the error builder and the echo responder.
 * Zero exceptions, and the walk's result always stays inside the packet.
 */
import { describe, expect, it } from 'vitest';
import { DropReason } from '../../src/base/drop-reason.ts';
import { buildIcmpv6Error, echoReplyInPlace, mayReplyWithIcmpv6Error } from '../../src/wire/icmpv6-error.ts';
import { Icmpv6Packet } from '../../src/wire/icmpv6.ts';
import { Ipv6Chain, walkIpv6Chain } from '../../src/wire/ipv6-chain.ts';
import { Ipv6OptionScan, extHeaderLength, scanIpv6Options } from '../../src/wire/ipv6-ext.ts';
import { Ipv6Packet } from '../../src/wire/ipv6.ts';
import { kernelFixture, kernelManifest } from '../support/pcap.ts';
import { A, ah, dstOpts, echoRequest, frag, hbh, icmp6, routing, seqBytes, udp, v6 } from './ipv6-build.ts';
import { describeIpv6 } from '../../src/wire/describe.ts';

/** xorshift32: deterministic, so a failure names a reproducible iteration. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

const S = 'fd00:10::1';
const D = 'fd00:20::20';
const NH = [0, 43, 44, 50, 51, 58, 59, 60, 135, 139, 140, 253, 254, 6, 17, 200, 255];

function seeds(): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const f of kernelManifest().fixtures) for (const p of kernelFixture(f.file)) if (p[0]! >>> 4 === 6) out.push(Uint8Array.from(p));
  out.push(
    v6(58, echoRequest(S, D, 1, 1, seqBytes(56))),
    v6(17, udp(S, D, 1, 2, seqBytes(30)), { exts: [hbh(Uint8Array.from([5, 2, 0, 0, 1, 0])), dstOpts(Uint8Array.from([0xde, 2, 0, 0, 1, 0]))] }),
    v6(6, new Uint8Array(40), { exts: [hbh(), dstOpts(), routing(2, 1, 20), frag(0, true, 7), ah(1, 2, 12), dstOpts()] }),
    v6(58, seqBytes(64), { exts: [frag(1448, true, 9)] }),
    v6(58, icmp6(S, D, 1, 4, 0, v6(17, udp(D, S, 1, 2, seqBytes(20)), { src: D, dst: S }))),
    v6(17, udp(S, 'ff02::1', 1, 2, seqBytes(8)), { dst: 'ff02::1', exts: [dstOpts(Uint8Array.from([0x9e, 0, 1, 2, 0, 0]))] }),
    v6(59, new Uint8Array(0)),
  );
  return out;
}

describe('IPv6 fuzz: 100k random and mutated packets', () => {
  it('never throws; chain results stay inside the packet', () => {
    const next = rng(0x1badcafe);
    const base = seeds();
    const chain = new Ipv6Chain();
    const scan = new Ipv6OptionScan();
    const view = new Ipv6Packet();
    const icmp = new Icmpv6Packet();
    const out = new Uint8Array(1600);
    const work = new Uint8Array(70000);
    const me = A('fd00:99::1');
    const counts = new Map<DropReason, number>();
    const N = 100_000;
    for (let i = 0; i < N; i++) {
      let len: number;
      const kind = next() % 4;
      if (kind === 0) {
        // pure random bytes with a plausible first nibble half of the time
        len = next() % 200;
        for (let k = 0; k < len; k++) work[k] = next() & 0xff;
        if (len > 0 && next() & 1) work[0] = 0x60 | (work[0]! & 15);
        if (len >= 6 && next() & 1) {
          const pl = Math.max(0, len - 40 + ((next() % 9) - 4));
          work[4] = pl >>> 8;
          work[5] = pl & 0xff;
        }
      } else {
        const s = base[next() % base.length]!;
        len = s.length;
        work.set(s, 0);
        const muts = 1 + (next() % 6);
        for (let m = 0; m < muts; m++) {
          const r = next() % 10;
          if (r < 4 && len > 0) work[next() % len] = next() & 0xff; // byte flip
          else if (r < 5) len = next() % (len + 1); // truncate
          else if (r < 6 && len > 0) work[next() % Math.min(len, 120)] = NH[next() % NH.length]!; // next-header-ish
          else if (r < 7 && len >= 6) {
            const pl = (next() & 1) ? next() & 0xffff : Math.max(0, len - 40 + ((next() % 17) - 8));
            work[4] = pl >>> 8;
            work[5] = pl & 0xff;
          } else if (r < 8 && len > 41) work[41 + (next() % Math.min(len - 41, 64))] = next() & 0xff; // ext len bytes
          else if (r < 9 && len + 8 < work.length) {
            for (let k = 0; k < 8; k++) work[len + k] = next() & 0xff; // trailing junk
            len += 8;
          }
        }
      }
      const off = 0;
      try {
        view.wrap(work, off, len);
        const ck = view.check();
        const r = walkIpv6Chain(work, off, len, chain);
        counts.set(r, (counts.get(r) ?? 0) + 1);
        if (ck !== DropReason.None && r === DropReason.None) throw new Error('walk accepted what check() refused');
        if (r === DropReason.None) {
          if (!(chain.upperOffset >= off + 40 && chain.upperOffset <= chain.end && chain.end <= off + len)) {
            throw new Error(`upper ${chain.upperOffset} end ${chain.end} len ${len}`);
          }
          if (!(chain.unfragmentableEnd >= off + 40 && chain.unfragmentableEnd <= chain.upperOffset)) {
            throw new Error(`unfragmentable ${chain.unfragmentableEnd}`);
          }
          if (chain.headerCount > chain.maxHeaders) throw new Error('too many headers accepted');
          if (chain.finalDestinationOffset < off + 24 || chain.finalDestinationOffset + 16 > chain.end) {
            throw new Error('final destination outside the packet');
          }
          for (const h of [chain.hopByHopOffset, chain.destOptsOffset]) {
            if (h >= 0) scanIpv6Options(work, h, extHeaderLength(work, h), scan);
          }
          if (chain.upperProtocol === 58 && !(chain.isFragment && chain.fragmentOffset !== 0)) {
            icmp.wrap(work, chain.upperOffset, chain.upperLength);
            if (icmp.check() === DropReason.None) {
              icmp.verifyChecksum(off + 8, off + 24);
              icmp.parse();
              icmp.describe();
            }
          }
        } else if (chain.icmpPointer !== -1 && (chain.icmpPointer < 0 || chain.icmpPointer >= len)) {
          throw new Error(`pointer ${chain.icmpPointer} outside ${len}`);
        }
        describeIpv6(work, off, len);
        const type = 1 + (next() % 4);
        mayReplyWithIcmpv6Error(work, off, len, type, next() % 4, next() % 64);
        const n = buildIcmpv6Error(out, 0, type, next() % 4, next() >>> 0, work, off, len, me, 0);
        if (n > 1280 || (n !== 0 && n < 48)) throw new Error(`error packet of ${n} bytes`);
        echoReplyInPlace(work, off, len, 64, me, 0);
      } catch (e) {
        throw new Error(`iteration ${i} (len ${len}): ${(e as Error).message}\n${Buffer.from(work.subarray(0, len)).toString('hex')}`);
      }
    }
    // the mix really exercised both accepted and rejected packets
    expect(counts.get(DropReason.None) ?? 0).toBeGreaterThan(N / 10);
    expect(counts.size).toBeGreaterThan(8);
  });
});
