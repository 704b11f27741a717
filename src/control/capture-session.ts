/**
 * The endpoint's side of `ipferry capture`: a streaming control-socket request.
 *
 *   -> {"cmd":"capture","view":"outer","count":100,"snaplen":262144}
 *   <- {"ok":true,"data":{"interface":"ferry0","view":"outer","linktype":101}}
 *   <- pcapng: section header, interface, one packet block per packet, ..., interface statistics
 *   -> "stop"        (optional: the client had enough; the statistics block follows, then the end)
 *
 * The data plane copies packets into a bounded ring (endpoint/capture-ring.ts); this session
 * drains it every DRAIN_MS into the socket. When the client reads slower than packets come, the
 * socket's buffer fills, the session stops draining, the ring fills and the data plane drops
 * and counts; the count goes into the statistics block (and the CLI's last line). The capture
 * ends with `count` packets, a "stop" line, the client going away, or the endpoint stopping.
 *
 * The outer view's records are UDP payloads with the peer's address and port: each gets an IPv4
 * or IPv6 header and a UDP header (checksum computed when the payload is whole) between the
 * peer and the endpoint's listen address (the unspecified address when it listens on all), so
 * `tshark -d udp.port==PORT,ip` dissects the tunnelled packet inside.
 */
import type { Socket } from 'node:net';
import type { CaptureRecord, CaptureRing } from '../endpoint/capture-ring.ts';
import { CAPTURE_IN } from '../endpoint/capture-ring.ts';
import { parseAddress, type Family } from '../wire/address-text.ts';
import { IP_PROTO_UDP } from '../wire/ip.ts';
import { IPV4_DST, IPV4_HEADER_LEN, IPV4_SRC, Ipv4Packet } from '../wire/ipv4.ts';
import { IPV6_DST, IPV6_HEADER_LEN, IPV6_SRC, writeIpv6Header } from '../wire/ipv6.ts';
import { UDP_HEADER_LEN, UdpPacket } from '../wire/udp.ts';
import type { ControlRequest } from './control-socket.ts';
import { EPB_INBOUND, EPB_OUTBOUND, LINKTYPE_RAW, pcapngHeader, pcapngPacket, pcapngStatistics } from './pcapng.ts';

/** What a capture needs of the endpoint (Endpoint has it). */
export interface CaptureSource {
  startCapture(view: 'inner' | 'outer', opts: { bytes?: number; snaplen?: number }): CaptureRing;
  stopCapture(ring: CaptureRing): void;
}

export interface CaptureSessionOptions {
  source: CaptureSource;
  interfaceName: string;
  /** The UDP socket's "address:port" ("[::]:6080"): the endpoint's side of outer packets. */
  listen: () => string;
  log?: (line: string) => void;
}

/** How often the ring is drained into the socket. */
export const DRAIN_MS = 20;
/** Ring size (data bytes) of a capture. */
export const CAPTURE_RING_BYTES = 4 << 20;
const DEFAULT_SNAPLEN = 262_144;

/** The local side of outer packets: the listen address, per family (unspecified when it listens on all). */
function localSides(listen: string): { port: number; v4: Uint8Array; v6: Uint8Array } {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  const port = Number(listen.slice(i + 1)) || 0;
  let v4: Uint8Array = new Uint8Array(4);
  let v6: Uint8Array = new Uint8Array(16);
  try {
    const a = parseAddress(host);
    if (a.family === 4) v4 = a.bytes;
    else if (!a.bytes.every((x) => x === 0)) v6 = a.bytes;
  } catch {
    /* no address: the unspecified ones */
  }
  return { port, v4, v6 };
}

/** IP and UDP headers for an outer record (the payload follows them in the packet block). */
function outerHeaders(r: CaptureRecord, local: { port: number; v4: Uint8Array; v6: Uint8Array }): Uint8Array {
  const fam = r.family as Family;
  const payload = r.bytes.subarray(r.dataOffset, r.dataOffset + r.capturedLength);
  const remote = r.bytes.subarray(r.addressOffset, r.addressOffset + (fam === 4 ? 4 : 16));
  const inbound = r.direction === CAPTURE_IN;
  const me = fam === 4 ? local.v4 : local.v6;
  const src = inbound ? remote : me;
  const dst = inbound ? me : remote;
  const udpLen = UDP_HEADER_LEN + r.originalLength;
  const whole = r.capturedLength === r.originalLength;
  const ipLen = fam === 4 ? IPV4_HEADER_LEN : IPV6_HEADER_LEN;
  // the whole datagram in one buffer when the checksum can be computed, else the headers alone
  const b = new Uint8Array(ipLen + UDP_HEADER_LEN + (whole ? payload.length : 0));
  if (fam === 4) {
    const v = new DataView(src.buffer, src.byteOffset, 4);
    const w = new DataView(dst.buffer, dst.byteOffset, 4);
    Ipv4Packet.emit(
      {
        src: v.getUint32(0),
        dst: w.getUint32(0),
        protocol: IP_PROTO_UDP,
        ttl: 64,
        dscp: 0,
        ecn: 0,
        ident: 0,
        dontFragment: true,
        moreFragments: false,
        fragOffset: 0,
        payloadLength: udpLen,
        options: new Uint8Array(0),
      },
      b,
      0,
    );
  } else {
    writeIpv6Header(b, 0, udpLen, IP_PROTO_UDP, 64, src, 0, dst, 0);
  }
  UdpPacket.emit({ srcPort: inbound ? r.port : local.port, dstPort: inbound ? local.port : r.port, payloadLength: r.originalLength }, b, ipLen);
  if (whole) {
    b.set(payload, ipLen + UDP_HEADER_LEN);
    const udp = new UdpPacket(b, ipLen, UDP_HEADER_LEN + payload.length);
    if (fam === 4) udp.fillChecksumV4(b, IPV4_SRC, IPV4_DST);
    else udp.fillChecksumV6(b, IPV6_SRC, IPV6_DST);
    return b.subarray(0, ipLen + UDP_HEADER_LEN);
  }
  return b;
}

const asNumber = (v: unknown, dflt: number, max: number): number => (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max ? v : dflt);

/** Serve one capture request on `sock` (a StreamHandler body): resolves when the capture ended. */
export function serveCapture(req: ControlRequest, sock: Socket, rest: string, o: CaptureSessionOptions): Promise<void> {
  const view = req.view === 'outer' ? 'outer' : req.view === undefined || req.view === 'inner' ? 'inner' : null;
  if (view === null) {
    sock.end(`${JSON.stringify({ ok: false, error: `capture: view must be inner or outer, got ${String(req.view)}` })}\n`);
    return Promise.resolve();
  }
  const count = asNumber(req.count, 0, 2 ** 31);
  const snaplen = asNumber(req.snaplen, DEFAULT_SNAPLEN, DEFAULT_SNAPLEN) || DEFAULT_SNAPLEN;
  let ring: CaptureRing;
  try {
    ring = o.source.startCapture(view, { bytes: CAPTURE_RING_BYTES, snaplen });
  } catch (e) {
    sock.end(`${JSON.stringify({ ok: false, error: (e as Error).message.split('\n')[0] })}\n`);
    return Promise.resolve();
  }
  const local = localSides(o.listen());
  const startUs = Math.round((performance.timeOrigin + performance.now()) * 1000);
  o.log?.(`capture started (${view} view${count > 0 ? `, ${count} packets` : ''})`);
  sock.setTimeout(0); // a quiet interface is no reason to hang up
  sock.write(`${JSON.stringify({ ok: true, data: { interface: o.interfaceName, view, linktype: LINKTYPE_RAW } })}\n`);
  sock.write(pcapngHeader(`${o.interfaceName} (${view})`, snaplen, `ipferry capture, ${view} view`));
  let written = 0;
  let done = false;
  return new Promise<void>((resolve) => {
    const finish = (why: string): void => {
      if (done) return;
      done = true;
      clearInterval(timer);
      if (!sock.destroyed) drain(); // what is in the ring already
      o.source.stopCapture(ring);
      const endUs = Math.round((performance.timeOrigin + performance.now()) * 1000);
      const dropped = ring.drops;
      if (!sock.destroyed) sock.end(pcapngStatistics(startUs, endUs, written + dropped, dropped));
      o.log?.(`capture ended (${why}): ${written} packets${dropped > 0 ? `, ${dropped} dropped (the reader was too slow)` : ''}`);
      resolve();
    };
    const drain = (): void => {
      const blocks: Buffer[] = [];
      ring.drain(
        (r) => {
          const dir = r.direction === CAPTURE_IN ? EPB_INBOUND : EPB_OUTBOUND;
          const data = r.bytes.subarray(r.dataOffset, r.dataOffset + r.capturedLength);
          if (r.family === 0) blocks.push(pcapngPacket(r.timeUs, [data], r.originalLength, dir));
          else {
            const h = outerHeaders(r, local);
            blocks.push(pcapngPacket(r.timeUs, [h, data], h.length + r.originalLength, dir));
          }
          written++;
        },
        count > 0 ? count - written : Infinity,
      );
      if (blocks.length > 0) sock.write(blocks.length === 1 ? blocks[0]! : Buffer.concat(blocks));
    };
    const timer = setInterval(() => {
      if (sock.destroyed) return finish('client gone');
      if (sock.writableNeedDrain) return; // the reader is slow: let the ring fill (and count)
      drain();
      if (count > 0 && written >= count) finish(`${count} packets`);
    }, DRAIN_MS);
    let input = rest;
    const onLine = (chunk: string): void => {
      input += chunk;
      if (/(^|\n)\s*stop\s*(\n|$)/.test(input)) finish('stop requested');
      if (input.length > 4096) input = input.slice(-64);
    };
    if (rest !== '') onLine('');
    sock.on('data', onLine);
    sock.once('close', () => finish('client gone'));
    sock.once('error', () => finish('client gone'));
  });
}
