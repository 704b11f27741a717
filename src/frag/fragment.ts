/**
 * IPv4 and IPv6 fragmentation into pooled buffers.
 *
 * IPv4 (RFC 791): any MTU >= 68; fragment data a multiple of 8; DF set -> no fragments, the result
 * says an ICMP fragmentation-needed with `mtu` is due (DropReason.DontFragment); the first fragment
 * carries every option, later ones only the options whose copied flag is set; fragmenting a
 * fragment keeps its offset base and keeps MF on the last piece when the original had it.
 *
 * IPv6 (RFC 8200 4.5): the fragment header goes after the unfragmentable part (IPv6 header,
 * hop-by-hop, and everything up to the last routing header, as walkIpv6Chain reports it); the identification comes from a
 * 4 KiB block of crypto random bytes refilled when used up (RFC 7739: not predictable by
 * outsiders); MTU >= 1280 unless the caller explicitly asks to fit a smaller outer MTU.
 *
 * Output: fragments are written into buffers acquired from the pool given (headroom preserved
 * for the outer header) and handed back in the reusable `out` array, entries [0, count). The
 * caller owns them and must release each (or call releaseAll()). `count` is 0 with
 * DropReason.None when the packet already fits the MTU (send the original). On pool exhaustion
 * every partial fragment is released and DropReason.PoolExhausted is returned. The input buffer
 * is never modified or kept. No allocation per packet.
 */
import { randomFillSync } from 'node:crypto';
import { DropCounters, DropReason } from '../base/drop-reason.ts';
import { BufferPool, type PacketBuffer, type PacketPools } from '../base/pool.ts';
import { copyBytes } from '../base/bytes.ts';
import { ipv4HeaderChecksum } from '../wire/checksum.ts';
import { IP_PROTO_FRAGMENT, ipVersion, IPV4_MIN_MTU, IPV6_MIN_MTU } from '../wire/ip.ts';
import { copiedOptionsLength, copyOptionsForFragment } from '../wire/ipv4-options.ts';
import { IPV4_FLAG_MF, IPV4_HEADER_LEN, Ipv4Packet } from '../wire/ipv4.ts';
import { Ipv6Chain, walkIpv6Chain } from '../wire/ipv6-chain.ts';
import { FRAG_HEADER_LEN, writeFragmentHeader } from '../wire/ipv6-ext.ts';
import { IPV6_HEADER_LEN, Ipv6Packet } from '../wire/ipv6.ts';


export interface FragmenterOptions {
  /** Where fragment buffers come from: PacketPools (smallest class that fits) or one BufferPool. */
  pool: PacketPools | BufferPool;
  /** Where drops are counted; a private one by default. */
  drops?: DropCounters;
}

export class Fragmenter {
  /** Fragments of the last call, entries [0, count). Reused: read them before the next call. */
  readonly out: PacketBuffer[] = [];
  count = 0;
  /** The MTU to report with DontFragment / PacketTooBig / MtuTooSmall. */
  mtu = 0;
  lastReason: DropReason = DropReason.None;
  readonly drops: DropCounters;

  private readonly single: BufferPool | null;
  private readonly pools: PacketPools | null;
  private readonly rnd = Buffer.alloc(4096);
  private readonly chain = new Ipv6Chain();
  /** Views over the packet being fragmented and the fragment being written. */
  private readonly in4 = new Ipv4Packet();
  private readonly out4 = new Ipv4Packet();
  private readonly in6 = new Ipv6Packet();
  private readonly out6 = new Ipv6Packet();
  private rndPos = 4096;

  constructor(opts: FragmenterOptions) {
    if (opts.pool instanceof BufferPool) {
      this.single = opts.pool;
      this.pools = null;
    } else {
      this.single = null;
      this.pools = opts.pool;
    }
    this.drops = opts.drops ?? new DropCounters();
  }

  /** An unpredictable 32-bit IPv6 fragment identification (never 0). */
  nextIdentification(): number {
    for (;;) {
      if (this.rndPos + 4 > this.rnd.length) {
        randomFillSync(this.rnd);
        this.rndPos = 0;
      }
      const id = this.rnd.readUInt32BE(this.rndPos);
      this.rndPos += 4;
      if (id !== 0) return id;
    }
  }

  /** Release every fragment of the last call (e.g. when sending failed). */
  releaseAll(): void {
    for (let i = 0; i < this.count; i++) this.out[i]!.release();
    this.count = 0;
  }

  /**
   * Fragment the IPv4 packet buf[off, off+len) (header already checked) to `mtu`.
   * Returns None with count 0 (fits: send the original), None with count >= 2 (fragments in
   * out[]), DontFragment (DF set: send ICMP fragmentation needed with `this.mtu`), MtuTooSmall,
   * PoolExhausted, or a header reason for a malformed packet.
   */
  fragmentV4(buf: Uint8Array, off: number, len: number, mtu: number): DropReason {
    this.count = 0;
    this.mtu = mtu;
    if (len < IPV4_HEADER_LEN || off < 0 || off + len > buf.length) return this.fail(DropReason.Truncated);
    const ip = this.in4.wrap(buf, off, len);
    if (ip.version !== 4) return this.fail(DropReason.BadVersion);
    const ihl = ip.headerLength;
    if (ihl < IPV4_HEADER_LEN) return this.fail(DropReason.BadIhl);
    const total = ip.totalLength;
    if (total < ihl || total > len) return this.fail(DropReason.BadTotalLength);
    if (!(mtu >= IPV4_MIN_MTU)) return this.fail(DropReason.MtuTooSmall);
    if (total <= mtu) {
      this.lastReason = DropReason.None;
      return DropReason.None;
    }
    if (ip.dontFragment) return this.fail(DropReason.DontFragment);
    const baseOffset = ip.fragOffset;
    const origMore = ip.moreFragments;
    const optLen = ihl - IPV4_HEADER_LEN;
    const optOff = off + IPV4_HEADER_LEN;
    const laterHdr = IPV4_HEADER_LEN + (optLen > 0 ? copiedOptionsLength(buf, optOff, optLen) : 0);
    const firstData = (mtu - ihl) & ~7;
    const laterData = (mtu - laterHdr) & ~7;
    const dataLen = total - ihl;
    const dataOff = off + ihl;

    let pos = 0;
    while (pos < dataLen) {
      const first = pos === 0;
      const per = first ? firstData : laterData;
      const chunk = dataLen - pos < per ? dataLen - pos : per;
      let hl = first ? ihl : laterHdr;
      const p = this.acquire(hl + chunk);
      if (p === null) {
        this.releaseAll();
        return this.fail(DropReason.PoolExhausted);
      }
      const b = p.buf;
      const o = p.offset;
      copyBytes(buf, off, b, o, IPV4_HEADER_LEN);
      if (first) {
        copyBytes(buf, optOff, b, o + IPV4_HEADER_LEN, optLen);
      } else if (laterHdr > IPV4_HEADER_LEN) {
        hl = IPV4_HEADER_LEN + copyOptionsForFragment(buf, optOff, optLen, b, o + IPV4_HEADER_LEN);
      }
      const more = pos + chunk < dataLen || origMore;
      const tl = hl + chunk;
      const f = this.out4.wrap(b, o, tl);
      f.ihl = hl >>> 2; // version 4 came with the copied header
      f.totalLength = tl;
      f.flagsFragWord = (more ? IPV4_FLAG_MF : 0) | ((baseOffset + pos) >>> 3);
      f.checksum = 0;
      f.checksum = ipv4HeaderChecksum(b, o);
      copyBytes(buf, dataOff + pos, b, o + hl, chunk);
      p.length = tl;
      this.push(p);
      pos += chunk;
    }
    this.lastReason = DropReason.None;
    return DropReason.None;
  }

  /**
   * Fragment the IPv6 packet buf[off, off+len) (header already checked) to `mtu`, inserting a
   * fragment header after the unfragmentable part. `mtu` below 1280 is refused (MtuTooSmall)
   * unless `allowSmallMtu` (to fit a smaller outer MTU); it must still leave 8 data bytes.
   * A packet that already carries a fragment header is not fragmented again (PacketTooBig); a
   * chain the walker rejects returns the walker's reason.
   * Results as fragmentV4.
   */
  fragmentV6(buf: Uint8Array, off: number, len: number, mtu: number, allowSmallMtu = false): DropReason {
    this.count = 0;
    this.mtu = mtu;
    if (len < IPV6_HEADER_LEN || off < 0 || off + len > buf.length) return this.fail(DropReason.Truncated);
    if (ipVersion(buf, off) !== 6) return this.fail(DropReason.BadVersion);
    const total = this.in6.wrap(buf, off, len).totalLength;
    if (total > len) return this.fail(DropReason.BadPayloadLength);
    if (!(mtu >= IPV6_MIN_MTU) && !(allowSmallMtu && mtu > 0)) return this.fail(DropReason.MtuTooSmall);
    if (total <= mtu) {
      this.lastReason = DropReason.None;
      return DropReason.None;
    }
    // Unfragmentable part (RFC 8200 4.5) from the chain walker: IPv6 header, hop-by-hop, up to
    // the last routing header, plus a destination options header carrying a Home Address option
    // (RFC 6275 6.3).
    const c = this.chain;
    const wr = walkIpv6Chain(buf, off, len, c);
    if (wr !== DropReason.None) return this.fail(wr);
    if (c.isFragment) return this.fail(DropReason.PacketTooBig);
    const end = off + total;
    const unfragEnd = c.unfragmentableEnd;
    const unfragNhAt = c.unfragmentableNextHeaderOffset;
    const unfrag = unfragEnd - off;
    const fnh = buf[unfragNhAt]!;
    const per = (mtu - unfrag - FRAG_HEADER_LEN) & ~7;
    if (per < 8) return this.fail(DropReason.MtuTooSmall);
    const fragLen = end - unfragEnd;
    // As an int32 (same bits): a uint32 above 2^31 passed to writeFragmentHeader would be boxed per call.
    const id = this.nextIdentification() | 0;
    const nhRel = unfragNhAt - off;

    let at = 0;
    while (at < fragLen) {
      const chunk = fragLen - at < per ? fragLen - at : per;
      const tl = unfrag + FRAG_HEADER_LEN + chunk;
      const p = this.acquire(tl);
      if (p === null) {
        this.releaseAll();
        return this.fail(DropReason.PoolExhausted);
      }
      const b = p.buf;
      const o = p.offset;
      copyBytes(buf, off, b, o, unfrag);
      b[o + nhRel] = IP_PROTO_FRAGMENT;
      this.out6.wrap(b, o, tl).payloadLength = tl - IPV6_HEADER_LEN;
      const f = o + unfrag;
      writeFragmentHeader(b, f, fnh, at, at + chunk < fragLen, id);
      copyBytes(buf, unfragEnd + at, b, f + FRAG_HEADER_LEN, chunk);
      p.length = tl;
      this.push(p);
      at += chunk;
    }
    this.lastReason = DropReason.None;
    return DropReason.None;
  }

  private push(p: PacketBuffer): void {
    if (this.count < this.out.length) this.out[this.count] = p;
    else this.out.push(p); // grows to the largest fragment count seen, then reused
    this.count++;
  }

  private acquire(n: number): PacketBuffer | null {
    if (this.pools !== null) return this.pools.acquire(n);
    const s = this.single!;
    return n <= s.capacity ? s.acquire() : null;
  }

  private fail(reason: DropReason): DropReason {
    this.drops.count(reason);
    this.lastReason = reason;
    return reason;
  }
}
