/**
 * The data plane's side of a capture: which packets go into the ring (capture-ring.ts), as the
 * pipeline meets them. The pipeline holds a tap only while a capture runs (Pipeline.setCapture);
 * without one it pays one predictable branch per received batch and nothing per sent packet
 * (the send path's existing bicast branch covers the tap too).
 *
 * Views:
 * - outer: every UDP datagram as it crossed the underlay — received ones (data and control, from
 *   peers and unknown sources) and sent ones (data, control, bicast copies) — with the peer's
 *   address and port; the capture session synthesizes IP and UDP headers around them.
 * - inner: the tunnelled IP packets — what came out of the tunnel (GUE data, its header removed)
 *   and what went into it (after routing, fragmentation and MSS clamping).
 */
import type { PacketBuffer } from '../base/pool.ts';
import { gueClassify, gueHeaderLength, GueKind } from '../wire/gue.ts';
import { CAPTURE_IN, CAPTURE_OUT, CaptureRing, type CaptureSpec } from './capture-ring.ts';
import type { UnderlayAddress } from './dataplane.ts';

/** Microseconds since the epoch (performance.timeOrigin is per thread, the sum is not). */
export function captureTimeUs(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

/** An underlay address as the tap needs it (PeerEndpoint and UnderlayAddress both fit). */
export interface TapAddress {
  readonly family: 4 | 6;
  readonly port: number;
}

/** A peer as the tap sees it (endpoint/peer.ts Peer has this shape). */
interface TapPeer {
  readonly endpoint: (TapAddress & { readonly bytes: Uint8Array }) | undefined;
}

/** A received batch's sources (pipeline.ts DatagramSources has this shape). */
interface TapSources {
  source(i: number): UnderlayAddress;
}

export class CaptureTap {
  readonly ring: CaptureRing;
  readonly outer: boolean;
  private readonly snaplen: number;

  constructor(spec: CaptureSpec) {
    this.ring = new CaptureRing(spec.buffer);
    this.outer = spec.view === 'outer';
    this.snaplen = spec.snaplen;
  }

  /**
   * A batch received from the underlay: each datagram with its source (the peer's endpoint, or
   * the batch's source for an unknown one). Never throws: returns what went wrong, or null (the
   * packets themselves go on either way).
   */
  receivedBatch(batch: readonly PacketBuffer[], count: number, peers: readonly (TapPeer | undefined)[], sources: TapSources | null): unknown {
    try {
      for (let i = 0; i < count; i++) {
        const p = batch[i]!;
        const ep = p.tag >= 0 ? peers[p.tag]?.endpoint : undefined;
        if (ep !== undefined) this.received(p, ep.family, ep.bytes, ep.port);
        else if (sources !== null) {
          const from = sources.source(i);
          this.received(p, from.family, from.address, from.port);
        }
      }
      return null;
    } catch (e) {
      return e;
    }
  }

  /** A datagram from the underlay (the UDP payload in p), from `family`/`addr`/`port`. */
  received(p: PacketBuffer, family: 4 | 6, addr: Uint8Array, port: number): void {
    if (this.outer) {
      this.ring.write(CAPTURE_IN, p.buf, p.offset, p.length, this.snaplen, family, addr, port, captureTimeUs());
      return;
    }
    const kind = gueClassify(p.buf, p.offset, p.length);
    if (kind !== GueKind.Ipv4 && kind !== GueKind.Ipv6) return;
    const skip = gueHeaderLength(p.buf, p.offset);
    if (skip < 0 || skip >= p.length) return;
    this.ring.write(CAPTURE_IN, p.buf, p.offset + skip, p.length - skip, this.snaplen, 0, null, 0, captureTimeUs());
  }

  /** An inner packet sent to `to` as GUE data (variant 1: the UDP payload is the packet itself). */
  sent(p: PacketBuffer, to: TapAddress & { readonly bytes: Uint8Array }): void {
    if (this.outer) this.ring.write(CAPTURE_OUT, p.buf, p.offset, p.length, this.snaplen, to.family, to.bytes, to.port, captureTimeUs());
    else this.ring.write(CAPTURE_OUT, p.buf, p.offset, p.length, this.snaplen, 0, null, 0, captureTimeUs());
  }

  /** A control datagram (whole UDP payload) sent to `to`: outer view only. */
  sentControl(bytes: Uint8Array, to: UnderlayAddress): void {
    if (this.outer) this.ring.writeTo(CAPTURE_OUT, bytes, 0, bytes.length, this.snaplen, to, captureTimeUs());
  }
}
