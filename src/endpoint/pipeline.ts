/**
 * The forwarding pipeline: one way per direction, one owner per buffer.
 *
 *   device (TUN) -> validate -> route -> peer -> [MTU: fragment | ICMP too big] -> [MSS clamp] -> UDP
 *   UDP -> GUE -> validate -> source check (peer's prefixes) -> route -> device | local stack | peer (hub)
 *   local stack / our ICMP errors -> route -> device | peer (fragmented to fit: we are the source)
 *
 * Each burst from the device or the transport is routed with one Router.lookupBatch (packets
 * validated first; a burst is cut where the sending peer or the pool changes), so the route
 * table's cache misses of a burst overlap (with the 1M-prefix IPv4 table, bursts of 32 against
 * one packet per call: bench/pipeline.bench.ts, figures in bench/RESULTS.md).
 *
 * No route: ICMP destination unreachable (per route type, as Linux does), rate-limited. A packet
 * from a peer with no route of ours goes to the device: the kernel behind the TUN decides.
 *
 * Past 600 lines on purpose: both directions share the burst routing, the forwarding decision
 * and the one place buffers are released; split, each half would need the other's internals.
 *
 * Ownership: every PacketBuffer that enters `fromDevice`, `fromTransport` or `fromLocal` is
 * released (or handed to the transport, which releases it after the send) exactly once, in
 * `drop`, `toDevice`, `toPeer` or by the local stack. Nothing is allocated per packet on the
 * forwarding paths; ICMP errors (rate-limited) and control messages may allocate.
 *
 * Exceptions (a bug, a throwing callback, a checked accessor in a fuzz run) never leave the
 * pipeline. What it holds while it works is written down as it goes: the packet in hand
 * (`held`), an ICMP error built about it (`heldReply`), a packet waiting while the burst is
 * routed (`heldWait`), the queued burst, fragments not sent yet, and the rest of the batch.
 * Each entry point catches, releases exactly those (counted as InternalError drops), counts the
 * error and reports it (events.onError), and returns; the next batch runs as usual. A packet is
 * struck off `held` at the moment it is passed on (release, device write done, transport send,
 * local stack input): callees that take ownership keep it even when they throw. A call that
 * arrives re-entrantly (the local stack answering inside a batch) keeps its own record.
 */
import { DropReason, type DropCounters } from '../base/drop-reason.ts';
import type { Fragmenter } from '../frag/fragment.ts';
import type { PacketBuffer, PacketPools } from '../base/pool.ts';
import type { AllowedSources } from '../route/allowed.ts';
import { BATCH_MAX, type Router } from '../route/router.ts';
import type { Nexthop } from '../route/types.ts';
import { icmpForRouteType, RouteType } from '../route/types.ts';
import type { PeerEndpoint } from '../transport/peer-endpoints.ts';
import { ControlReceiver } from '../tunnel/control.ts';
import { CTYPE_KEEPALIVE, GueHeader, gueClassify, gueHeaderLength, GueKind } from '../wire/gue.ts';
import { ICMP_DEST_UNREACHABLE, ICMP_EXC_TTL, ICMP_TIME_EXCEEDED, ICMP_UNREACH_FRAG_NEEDED } from '../wire/icmpv4.ts';
import { ICMPV6_PACKET_TOO_BIG, ICMPV6_TIME_EXCEEDED } from '../wire/icmpv6.ts';
import { IP_PROTO_TCP, ipVersion, IPV6_MIN_MTU } from '../wire/ip.ts';
import { IPV4_SRC, Ipv4Packet, ipv4UnfragmentedPayload } from '../wire/ipv4.ts';
import { ipv6DirectPayload, IPV6_SRC, Ipv6Packet } from '../wire/ipv6.ts';
import { TCP_HEADER_LEN, TcpPacket } from '../wire/tcp.ts';
import type { CaptureSpec } from './capture-ring.ts';
import { CaptureTap } from './capture-tap.ts';
import type { DataPlaneEvent, UnderlayAddress } from './dataplane.ts';
import { EventReporter } from './event-report.ts';
import type { IcmpSender } from './icmp-sender.ts';
import type { Peer } from './peer.ts';

/** Where a route's nexthop leads (peers are >= 0). */
export const TARGET_DEVICE = -1;
export const TARGET_LOCAL = -2;
export const TARGET_NONE = -3;
/** Ingress of a packet that the endpoint itself originated. */
export const FROM_LOCAL = -2;
/** Ingress of a packet read from the device. */
export const FROM_DEVICE = -1;
/** A batch from the transport (ingress is then each packet's peer). */
const FROM_TRANSPORT = -4;

/** The endpoint's own stack as the pipeline sees it. */
export interface LocalInput {
  /** Takes ownership of p (a whole datagram or a fragment addressed to the stack). */
  input(p: PacketBuffer): void;
}

export interface PipelineEvents {
  /** A peer was heard from after being down (or for the first time). */
  onPeerUp(peer: Peer): void;
  /** Something threw inside the pipeline; what it held is released already. Must not throw. */
  onError?(err: unknown): void;
  /**
   * GUE control messages for the control plane (see dataplane.ts): every control type but a
   * keepalive from a configured peer, and control messages from unknown sources (peer -1).
   * Takes ownership of p (the whole UDP payload). Absent: dropped and counted as before.
   */
  onControl?(p: PacketBuffer, peer: number, from: UnderlayAddress): void;
  /**
   * A keyed peer's keepalive was accepted (p still valid during the call, not taken): a worker
   * data plane copies it up so the control plane's replay windows follow (roaming checks them).
   */
  onKeepalive?(peer: Peer, p: PacketBuffer): void;
  /** Events an operator must see (dataplane.ts DataPlaneEvent), rate-limited. Absent: none are reported. */
  onEvent?(e: DataPlaneEvent): void;
}


/** What the pipeline needs of a device: write a packet (the caller keeps and releases it). */
export interface PacketWriter {
  write(p: PacketBuffer): boolean;
  /**
   * Optional: take ownership of p instead (a device that batches writes, e.g. the fast path's
   * coalescing TUN writer): it releases p itself, also on failure. Returns false on failure.
   */
  take?(p: PacketBuffer): boolean;
}

/** What the pipeline needs of a transport (Transport has both; ownership as there: always taken). */
export interface PacketSender {
  send(p: PacketBuffer, peer: number): DropReason;
  sendToEndpoint(p: PacketBuffer, to: PeerEndpoint): DropReason;
}

/** Underlay sources of the datagrams of the batch fromTransport is handling (control plane: may allocate). */
export interface DatagramSources {
  source(i: number): UnderlayAddress;
  /**
   * A 32-bit hash of datagram i's source address and port, without allocating: the events of
   * unknown sources are rate-limited per source with it. Absent: all unknown sources share one
   * limit.
   */
  sourceKey?(i: number): number;
}

export interface PipelineOptions {
  pools: PacketPools;
  router: Router;
  /** Source check: each peer's prefixes, the peer index as the value. */
  allowed: AllowedSources;
  /** Peer by index (a removed peer leaves a hole); peers added later go into the same array. */
  peers: readonly (Peer | undefined)[];
  /** MTU of the device (TUN): locally originated packets are fragmented to fit it. */
  deviceMtu: number;
  drops: DropCounters;
  icmp: IcmpSender;
  fragmenter: Fragmenter;
  /** Name the routes use for the device (the TUN interface name). */
  deviceName: string;
  /** Name routes use for the endpoint's own stack ("stack"); routes of type local go there too. */
  stackName: string;
  /** Forward peer to peer. */
  hub: boolean;
  /** Our own control-message sender id (reflections are rejected). */
  senderId: number;
  now: () => number;
  events: PipelineEvents;
}

export class Pipeline {
  transport: PacketSender | null = null;
  /** Set once the device is open (start), cleared on stop. */
  device: PacketWriter | null = null;
  local: LocalInput | null = null;
  /** Peer-to-peer forwards (hub). */
  forwarded = 0;
  /** Route lookups made (one per routed packet; one per super-packet on the fast path). */
  routeLookups = 0;
  /** The running capture, or null (setCapture). */
  private tap: CaptureTap | null = null;
  /** Events for the control plane (event-report.ts), rate-limited; `.debug`: drops too. */
  readonly reporter: EventReporter;
  /** Exceptions caught inside the pipeline (each also counted as InternalError drops for the packets it cost). */
  errors = 0;

  private readonly o: PipelineOptions;
  private readonly router: Router;
  private readonly allowed: AllowedSources;
  /** Peer by index (holes for removed peers); the array is shared with the data plane core. */
  private readonly peers: readonly (Peer | undefined)[];
  private readonly drops: DropCounters;
  /** Router dev index -> target (peer index, TARGET_*). Grows as peers are added. */
  private devTarget: Int32Array;
  /** Control messages in: replay windows, reflection check, what each type means. */
  private readonly controlIn: ControlReceiver;
  private readonly v4 = new Ipv4Packet();
  private readonly v6 = new Ipv6Packet();
  private readonly tcp = new TcpPacket();
  private readonly gue = new GueHeader(Buffer.alloc(0));
  /** Sources of the transport batch being handled, and the index in it of the packet at hand. */
  private sources: DatagramSources | null = null;
  private srcIndex = 0;
  /** Peers with a bicast copy configured (mobility handover); 0 = skip the check. */
  private bicasting = 0;
  /** The route of the last super-packet superTarget() approved. */
  private superRoute = -1;
  /**
   * Clock (epoch ms) sampled once per batch, in a typed array: liveness takes the array, never
   * the number, so no call boxes the time (see PeerLiveness.heardAt).
   */
  private readonly clock = new Float64Array(1);
  /**
   * Where the clock comes from: null = the `now` option (Date.now(): a heap number per call);
   * the fast path sets an allocation-free source (sys/memory.ts SysClock).
   */
  clockSource: { sample(out: Float64Array): void } | null = null;
  /** bicasting plus one while a capture runs: the one branch per sent packet for both. */
  private sendExtra = 0;
  // ---- one burst of packets routed with Router.lookupBatch (the LPM misses of a burst overlap) ----
  /** Packets of the burst, their family and header offset / end in the slab view. */
  private readonly bPkt: (PacketBuffer | null)[] = new Array<PacketBuffer | null>(BATCH_MAX).fill(null);
  private readonly bFam = new Uint8Array(BATCH_MAX);
  private readonly bOffs = new Int32Array(BATCH_MAX);
  private readonly bEnds = new Int32Array(BATCH_MAX);
  private readonly bRoute = new Int32Array(BATCH_MAX);
  private readonly bType = new Uint8Array(BATCH_MAX);
  private readonly bNh: (Nexthop | null)[] = new Array<Nexthop | null>(BATCH_MAX).fill(null);
  private bCount = 0;
  /** The pool slab (BufferPool.bytes) the queued packets live in: one lookupBatch call covers a slab. */
  private bSlab: Uint8Array | null = null;
  // ---- what the pipeline holds while it works (released by recover() when something throws) ----
  /** The packet in hand: taken from a batch or the burst, not yet passed on. */
  private held: PacketBuffer | null = null;
  /** An ICMP error built about the packet in hand, not yet sent. */
  private heldReply: PacketBuffer | null = null;
  /** A packet waiting while the burst is routed ahead of it (queue()). */
  private heldWait: PacketBuffer | null = null;
  /** The batch being read: entries [inNext, inEnd) of inBatch are not taken yet. */
  private inBatch: PacketBuffer[] | null = null;
  private inNext = 0;
  private inEnd = 0;
  /** Fragmenter output [fragNext, fragEnd) not sent on yet (fragEnd 0: none). */
  private fragNext = 0;
  private fragEnd = 0;
  /** Entry-point nesting: 0 = not inside the pipeline; inside, a packet arriving re-entrantly (a synchronous peer, the local stack answering) goes alone (nested()). */
  private depth = 0;

  constructor(opts: PipelineOptions) {
    this.o = opts;
    this.router = opts.router;
    this.allowed = opts.allowed;
    this.peers = opts.peers;
    this.drops = opts.drops;
    this.controlIn = new ControlReceiver(opts.peers.length, opts.senderId);
    this.reporter = new EventReporter(() => this.o.events.onEvent);
    // Dev indices are small integers handed out as routes name devices: room for every peer,
    // the device, the stack and the names config routes use.
    const devs = opts.peers.length + 64;
    this.devTarget = new Int32Array(devs).fill(TARGET_NONE);
    this.setTarget(this.router.devIndex(opts.deviceName), TARGET_DEVICE);
    this.setTarget(this.router.devIndex(opts.stackName), TARGET_LOCAL);
    for (const p of opts.peers) {
      if (p !== undefined) this.setTarget(this.router.devIndex(p.name), p.index);
    }
  }

  private sampleClock(): void {
    const c = this.clockSource;
    if (c !== null) c.sample(this.clock);
    else this.clock[0] = this.o.now();
  }

  private setTarget(dev: number, target: number): void {
    if (dev >= this.devTarget.length) {
      const t = new Int32Array(Math.max(dev + 1, this.devTarget.length * 2)).fill(TARGET_NONE);
      t.set(this.devTarget);
      this.devTarget = t;
    }
    this.devTarget[dev] = target;
  }

  /** A peer was put at peers[peer.index] (control plane): route its dev name to it. */
  peerAdded(peer: Peer): void {
    this.setTarget(this.router.devIndex(peer.name), peer.index);
    this.controlIn.reset(peer.index);
  }

  /** A peer is about to leave peers[] (control plane): its dev name leads nowhere now. */
  peerRemoved(peer: Peer): void {
    this.setTarget(this.router.devIndex(peer.name), TARGET_NONE);
    this.controlIn.reset(peer.index);
    if (peer.bicastTo !== null) this.setBicast(peer, null, 0);
  }

  /** Send copies of peer's datagrams to `to` as well until `untilMs` (null: stop). */
  setBicast(peer: Peer, to: PeerEndpoint | null, untilMs: number): void {
    const was = peer.bicastTo !== null;
    peer.bicastTo = to;
    peer.bicastUntil = to === null ? 0 : untilMs;
    const d = (to !== null ? 1 : 0) - (was ? 1 : 0);
    this.bicasting += d;
    this.sendExtra += d;
  }

  /** Start copying packets into a capture ring (capture-tap.ts), or stop (null). */
  setCapture(spec: CaptureSpec | null): void {
    const was = this.tap !== null;
    this.tap = spec === null ? null : new CaptureTap(spec);
    this.sendExtra += (this.tap !== null ? 1 : 0) - (was ? 1 : 0);
  }

  /** The running capture's tap (the data plane taps what it sends itself: control datagrams). */
  get capture(): CaptureTap | null {
    return this.tap;
  }

  /** Report the counts of events held back whose interval is over (about once a second). */
  flushEvents(now: number): void {
    this.reporter.flush(now);
  }

  // ---------------------------------------------------------------- device -> ...

  /** Batch handler for the device (TUN or memory). Never throws. */
  readonly fromDevice = (batch: PacketBuffer[], count: number): void => {
    if (this.depth > 0) return this.nested(batch, count, FROM_DEVICE);
    this.depth = 1;
    this.inBatch = batch;
    this.inNext = 0;
    this.inEnd = count;
    try {
      this.sampleClock();
      while (this.inNext < this.inEnd) {
        const p = batch[this.inNext++]!;
        this.held = p;
        const fam = this.validate(p);
        if (fam !== 0) this.queue(p, fam, FROM_DEVICE);
      }
      if (this.bCount > 0) this.routeQueued(FROM_DEVICE);
    } catch (e) {
      this.recover(e, true);
    } finally {
      this.inBatch = null;
      this.inEnd = 0;
      this.depth = 0;
    }
  };

  // ---------------------------------------------------------------- UDP -> ...

  /**
   * Batch handler for the transport; p.tag is the sending peer's index or -1. `sources` (when
   * given) names each datagram's underlay source, for control messages punted up (onControl).
   * Never throws.
   */
  readonly fromTransport = (batch: PacketBuffer[], count: number, sources: DatagramSources | null = null): void => {
    const outer = this.sources;
    this.sources = sources;
    if (this.tap !== null) this.tapReceived(batch, count, sources);
    if (this.depth > 0) {
      try {
        this.nested(batch, count, FROM_TRANSPORT);
      } finally {
        this.sources = outer;
      }
      return;
    }
    this.depth = 1;
    this.inBatch = batch;
    this.inNext = 0;
    this.inEnd = count;
    try {
      this.sampleClock();
      // Packets of one burst come from any peers: route them in runs of the same sender.
      while (this.inNext < this.inEnd) {
        this.srcIndex = this.inNext;
        const p = batch[this.inNext++]!;
        this.held = p;
        this.fromTransportOne(p, true);
      }
      if (this.bCount > 0) this.routeQueued(this.bIngress);
    } catch (e) {
      this.recover(e, true);
    } finally {
      this.inBatch = null;
      this.inEnd = 0;
      this.depth = 0;
      this.sources = outer;
    }
  };

  /** Copy a received batch into the capture ring; a failure costs the copy, not the packets. */
  private tapReceived(batch: PacketBuffer[], count: number, sources: DatagramSources | null): void {
    const err = this.tap!.receivedBatch(batch, count, this.peers, sources);
    if (err !== null) {
      this.errors++;
      this.o.events.onError?.(err);
    }
  }

  /**
   * A batch (or one local packet: batch null) arriving while the pipeline is already inside an
   * entry point: each packet goes alone (no burst), with its own record of what it holds, so a
   * throw here releases only what this call held.
   */
  private nested(batch: PacketBuffer[] | null, count: number, from: number, one: PacketBuffer | null = null): void {
    const held = this.held;
    const reply = this.heldReply;
    const wait = this.heldWait;
    const inBatch = this.inBatch;
    const inNext = this.inNext;
    const inEnd = this.inEnd;
    const fragNext = this.fragNext;
    const fragEnd = this.fragEnd;
    const now = this.clock[0]!;
    this.held = one; // a local packet is held from the start; a batch's are taken one by one
    this.heldReply = this.heldWait = null;
    this.fragEnd = 0;
    this.inBatch = batch;
    this.inNext = 0;
    this.inEnd = batch === null ? 0 : count;
    this.depth++;
    try {
      this.sampleClock();
      if (one !== null) this.localOne(one);
      while (this.inNext < this.inEnd) {
        this.srcIndex = this.inNext;
        const p = batch![this.inNext++]!;
        this.held = p;
        if (from === FROM_TRANSPORT) this.fromTransportOne(p, false);
        else {
          const fam = this.validate(p);
          if (fam !== 0) this.route(p, fam, FROM_DEVICE);
        }
      }
    } catch (e) {
      this.recover(e, false);
    } finally {
      this.depth--;
      this.held = held;
      this.heldReply = reply;
      this.heldWait = wait;
      this.inBatch = inBatch;
      this.inNext = inNext;
      this.inEnd = inEnd;
      this.fragNext = fragNext;
      this.fragEnd = fragEnd;
      this.clock[0] = now;
    }
  }

  /**
   * After an exception: release everything this entry point held (top: also the queued burst,
   * which only the outermost call fills), count it, count and report the error.
   */
  private recover(err: unknown, top: boolean): void {
    this.errors++;
    let lost = 0;
    lost += this.releaseHeld(this.held) + this.releaseHeld(this.heldReply) + this.releaseHeld(this.heldWait);
    this.held = this.heldReply = this.heldWait = null;
    if (this.fragEnd > 0) {
      const f = this.o.fragmenter;
      for (let k = this.fragNext; k < this.fragEnd; k++) lost += this.releaseHeld(f.out[k] ?? null);
      f.count = 0;
      this.fragEnd = 0;
    }
    if (top) lost += this.abandonQueued();
    const b = this.inBatch;
    if (b !== null) for (let i = this.inNext; i < this.inEnd; i++) lost += this.releaseHeld(b[i] ?? null);
    this.inNext = this.inEnd;
    for (let i = 0; i < lost; i++) this.drops.count(DropReason.InternalError);
    try {
      this.o.events.onError?.(err);
    } catch {
      /* the reporter must not throw; if it does, the count above stands */
    }
  }

  private releaseHeld(p: PacketBuffer | null): number {
    if (p === null) return 0;
    p.release();
    return 1;
  }

  /** Strike p off the record of what the pipeline holds: it is being passed on. */
  private handOff(p: PacketBuffer): void {
    if (this.held === p) this.held = null;
    else if (this.heldReply === p) this.heldReply = null;
  }

  private fromTransportOne(p: PacketBuffer, burst: boolean): void {
    const idx = p.tag;
    const peer = idx >= 0 ? this.peers[idx] : undefined;
    if (peer === undefined) {
      // An unknown source may be a mobile node's new care-of address: its control messages go up.
      if (this.o.events.onControl !== undefined && gueClassify(p.buf, p.offset, p.length) === GueKind.Control) {
        this.punt(p, -1);
        return;
      }
      this.reporter.unknownSource(this.sources, this.srcIndex, this.clock[0]!);
      this.drop(p, DropReason.UnknownPeer);
      return;
    }
    peer.rxPackets++;
    peer.rxBytes += p.length;
    const kind = gueClassify(p.buf, p.offset, p.length);
    if (kind === GueKind.Bad) {
      this.dropPeer(p, peer, DropReason.BadGue);
      return;
    }
    if (kind === GueKind.Control) {
      this.control(p, peer);
      return;
    }
    const skip = gueHeaderLength(p.buf, p.offset);
    if (skip > 0) p.consume(skip);
    const fam = this.validate(p);
    if (fam === 0) {
      peer.drops++;
      return;
    }
    // Source check: the inner source must be inside the sending peer's prefixes (the longest
    // match among all peers' prefixes names the sending peer).
    // Or those of the peer whose sources it shares (a correspondent sending straight to a mobile
    // node: the home agent's).
    const owner = this.allowed.lookup(p.buf, p.offset + (fam === 4 ? IPV4_SRC : IPV6_SRC), fam);
    if (owner !== idx && (owner < 0 || owner !== peer.sourcesOf)) {
      this.reporter.sourceNotAllowed(idx, p.buf, p.offset, fam, this.clock[0]!);
      this.dropPeer(p, peer, DropReason.SourceNotAllowed);
      return;
    }
    this.heard(peer);
    if (burst) this.queue(p, fam, idx);
    else this.route(p, fam, idx);
  }

  private heard(peer: Peer): void {
    if (peer.liveness.heardAt(this.clock)) this.o.events.onPeerUp(peer);
  }

  private control(p: PacketBuffer, peer: Peer): void {
    if (this.o.events.onControl !== undefined && this.gue.wrap(p.buf, p.offset, p.length).protoCtype !== CTYPE_KEEPALIVE) {
      this.punt(p, peer.index);
      return;
    }
    const r = this.controlIn.receive(p.buf, p.offset, p.length, peer.index, peer.key);
    if (r !== DropReason.None) {
      if (r === DropReason.BadAuthentication) this.reporter.authFailure(peer.index, peer.endpointText, this.clock[0]!);
      this.dropPeer(p, peer, r);
      return;
    }
    peer.keepalivesRx++;
    this.heard(peer);
    if (this.o.events.onKeepalive !== undefined && peer.key !== null) this.o.events.onKeepalive(peer, p);
    this.handOff(p);
    p.release();
  }

  /** Hand a control message up (onControl owns p from here; its source from the batch's sources). */
  private punt(p: PacketBuffer, peer: number): void {
    const src = this.sources;
    const from: UnderlayAddress = src !== null ? src.source(this.srcIndex) : { family: 4, address: new Uint8Array(4), port: 0 };
    this.handOff(p);
    this.o.events.onControl!(p, peer, from);
  }

  /**
   * A control datagram of peer `peer` from elsewhere, checked as the tunnel checks that peer's
   * keepalives (HMAC with its key, reflection, its replay window, which this advances): None when
   * it is an authentic, fresh keepalive of that peer, which then counts as heard. The control
   * plane's roaming rule asks this before it moves a keyed peer (in-thread only: a synchronous
   * look at the replay window).
   */
  /**
   * The replay state of peer `peer` takes a keepalive the data plane (in a worker) accepted:
   * a control plane's mirror keeps its windows where the worker's are, for acceptControl.
   * Nothing else (no liveness: the worker tells of that itself).
   */
  noteControl(peer: number, buf: Buffer, off: number, len: number): void {
    const pr = this.peers[peer];
    if (pr !== undefined) this.controlIn.receive(buf, off, len, peer, pr.key);
  }

  acceptControl(peer: number, buf: Buffer, off: number, len: number): DropReason {
    const pr = this.peers[peer];
    if (pr === undefined) return DropReason.UnknownPeer;
    const r = this.controlIn.receive(buf, off, len, peer, pr.key);
    if (r === DropReason.None) this.heard(pr);
    return r;
  }

  // ---------------------------------------------------------------- local -> ...

  /** A packet the endpoint itself originated (its stack, its ICMP errors). Takes ownership. Never throws. */
  readonly fromLocal = (p: PacketBuffer): void => {
    if (this.depth > 0) return this.nested(null, 0, FROM_LOCAL, p);
    this.depth = 1;
    this.held = p;
    try {
      this.sampleClock();
      this.localOne(p);
    } catch (e) {
      this.recover(e, true);
    } finally {
      this.depth = 0;
    }
  };

  private localOne(p: PacketBuffer): void {
    const fam = this.validate(p);
    if (fam === 0) return;
    this.route(p, fam, FROM_LOCAL);
  }

  /** Forget replay state of a peer (e.g. after its key changed). */
  resetPeer(index: number): void {
    this.controlIn.reset(index);
  }

  // ---------------------------------------------------------------- fast path: super-packets

  /**
   * TUN -> UDP, once per TCP super-packet (a device with offloads hands over many segments of
   * one flow in one read). Decides for all its segments at once what the per-segment path would
   * decide identically for each: the IP header is valid, the route leads to a peer, the segments
   * (`segLen` bytes of IP each, the last one shorter) fit that peer's MTU, no bicast copy is to
   * be made. Returns the peer, or null: then the caller cuts the super-packet and hands each
   * segment to fromDevice, which decides per segment as for a device without offloads (no
   * route, routes of type local/blackhole/..., ICMP errors, fragmentation, drops). Does not
   * take p; changes nothing but the clock and the route remembered for sentSegments.
   *
   * Per super-packet: IP header validation, the route lookup (ECMP picks by flow: one nexthop
   * for all), the MTU check. Per segment, by the caller after cutting: counters of the peer and
   * the route (sentSegments). Never for a super-packet: the MSS clamp (it touches SYNs, and TSO
   * runs on established connections: a super-packet is never a SYN) and the source check (it
   * applies to packets from peers).
   */
  superTarget(p: PacketBuffer, fam: 4 | 6, segLen: number): Peer | null {
    this.sampleClock();
    const b = p.buf;
    if (fam === 4) {
      if (this.v4.wrap(b, p.offset, p.length).validate() !== DropReason.None) return null;
    } else if (this.v6.wrap(b, p.offset, p.length).check() !== DropReason.None) {
      return null;
    }
    const router = this.router;
    const id = router.resolve(b, p.offset, fam, p.offset + p.length);
    this.routeLookups++;
    if (id < 0 || router.lastType !== RouteType.UNICAST) return null;
    const nh = router.lastNexthop;
    const target = nh === null || nh.devIndex < 0 || nh.devIndex >= this.devTarget.length ? TARGET_NONE : this.devTarget[nh.devIndex]!;
    if (target < 0) return null;
    const peer = this.peers[target];
    // bicasting or a capture: the segments go one by one through send() (its copies and taps)
    if (peer === undefined || segLen > peer.mtu || this.sendExtra > 0 || this.transport === null) return null;
    this.superRoute = id;
    return peer;
  }

  /** The segments of the super-packet superTarget() approved went to `peer`: count them (IP bytes in all). */
  sentSegments(peer: Peer, segments: number, bytes: number): void {
    peer.txPackets += segments;
    peer.txBytes += bytes;
    peer.liveness.sentAt(this.clock);
    this.router.countUse(this.superRoute, bytes, segments);
  }

  /** Drop a packet the caller (a fast-path device or transport) could not hand over; counts the reason. */
  dropFromIo(p: PacketBuffer, reason: DropReason): void {
    this.drop(p, reason);
  }

  // ---------------------------------------------------------------- common

  /** Validate the IP header; returns 4 or 6, or 0 after dropping. Trims link padding. */
  private validate(p: PacketBuffer): 0 | 4 | 6 {
    const b = p.buf;
    const off = p.offset;
    const ver = p.length > 0 ? ipVersion(b, off) : 0;
    if (ver === 4) {
      const v4 = this.v4.wrap(b, off, p.length);
      const r = v4.validate();
      if (r !== DropReason.None) {
        this.drop(p, r);
        return 0;
      }
      p.length = v4.totalLength;
      return 4;
    }
    if (ver === 6) {
      const v6 = this.v6.wrap(b, off, p.length);
      const r = v6.check();
      if (r !== DropReason.None) {
        this.drop(p, r);
        return 0;
      }
      p.length = v6.totalLength;
      return 6;
    }
    this.drop(p, p.length === 0 ? DropReason.Truncated : DropReason.BadVersion);
    return 0;
  }

  /** Ingress of the queued packets (one per run: a different ingress flushes the queue). */
  private bIngress = FROM_DEVICE;

  /** Add a validated packet to the burst (routing the burst first when it is full or the pool or ingress changes). */
  private queue(p: PacketBuffer, fam: 4 | 6, ingress: number): void {
    const pool = p.pool;
    const slab = pool.bytes;
    if (this.bCount > 0 && (this.bCount === BATCH_MAX || slab !== this.bSlab || ingress !== this.bIngress)) {
      this.held = null;
      this.heldWait = p;
      this.routeQueued(this.bIngress);
      this.heldWait = null;
    }
    this.held = null; // the burst holds it now
    const n = this.bCount++;
    this.bSlab = slab;
    this.bIngress = ingress;
    this.bPkt[n] = p;
    this.bFam[n] = fam;
    const off = p.slot * pool.slotSize + p.offset;
    this.bOffs[n] = off;
    this.bEnds[n] = off + p.length;
  }

  /** Route the queued burst: one Router.lookupBatch, then each packet on its way. */
  private routeQueued(ingress: number): void {
    const n = this.bCount;
    this.bCount = 0;
    this.router.lookupBatch(this.bSlab!, this.bOffs, this.bEnds, n, this.bRoute, this.bType, this.bNh);
    this.routeLookups += n;
    for (let k = 0; k < n; k++) {
      const p = this.bPkt[k]!;
      const nh = this.bNh[k] ?? null;
      this.bPkt[k] = null;
      this.bNh[k] = null;
      this.held = p;
      this.forward(p, this.bFam[k] as 4 | 6, ingress, this.bRoute[k]!, this.bType[k]!, nh);
    }
  }

  /** After an exception: release what was queued and not yet sent on; returns how many. */
  private abandonQueued(): number {
    this.bCount = 0;
    let n = 0;
    for (let k = 0; k < BATCH_MAX; k++) {
      const p = this.bPkt[k];
      this.bPkt[k] = null;
      this.bNh[k] = null;
      if (p) {
        p.release();
        n++;
      }
    }
    return n;
  }

  private route(p: PacketBuffer, fam: 4 | 6, ingress: number): void {
    const router = this.router;
    const id = router.lookup(p.buf, p.offset, fam, p.offset + p.length);
    this.forward(p, fam, ingress, id, router.lastType, router.lastNexthop);
  }

  /** Send a routed packet on: route id (or -1), its type and the ECMP nexthop chosen. */
  private forward(p: PacketBuffer, fam: 4 | 6, ingress: number, id: number, type: number, nh: Nexthop | null): void {
    if (id < 0 || type !== RouteType.UNICAST) {
      if (type === RouteType.LOCAL) return this.toLocal(p);
      // No route of ours: the device (the kernel behind the TUN) is the default for all but its own packets.
      if (type === RouteType.NONE && ingress !== FROM_DEVICE) return this.toDevice(p, fam, ingress);
      return this.unreachable(p, fam, type, ingress);
    }
    const target = nh === null || nh.devIndex < 0 || nh.devIndex >= this.devTarget.length ? TARGET_NONE : this.devTarget[nh.devIndex]!;
    if (target >= 0) {
      if (ingress >= 0) {
        // Back to the peer it came from: the route is a broad one (0.0.0.0/1 dev peer, say) and
        // the destination is this side's own network, which only the kernel knows: hand it to
        // the device, as WireGuard hands everything it decrypts to its TUN.
        if (target === ingress) return this.toDevice(p, fam, ingress);
        // A home agent relays to and from its mobile nodes whether it is a hub or not.
        if (!this.o.hub && !this.peers[target]!.mobile && !this.peers[ingress]!.mobile) return this.drop(p, DropReason.HubDisabled);
        if (!this.decrementTtl(p, fam, ingress)) return;
        this.forwarded++;
      }
      return this.toPeer(p, fam, this.peers[target]!, ingress);
    }
    if (target === TARGET_DEVICE) {
      if (ingress === FROM_DEVICE) return this.unreachable(p, fam, RouteType.NONE, ingress);
      return this.toDevice(p, fam, ingress);
    }
    if (target === TARGET_LOCAL) return this.toLocal(p);
    this.unreachable(p, fam, RouteType.NONE, ingress);
  }

  private toLocal(p: PacketBuffer): void {
    if (this.local === null) return this.drop(p, DropReason.NotForUs);
    this.handOff(p);
    this.local.input(p);
  }

  private toDevice(p: PacketBuffer, fam: 4 | 6, ingress: number): void {
    if (ingress >= 0) this.clampMss(p, fam, this.peers[ingress]!);
    const mtu = this.o.deviceMtu;
    if (p.length > mtu && ingress === FROM_LOCAL) {
      // We are the source: fragment to the device MTU (IPv6 too: source fragmentation).
      this.sendFragments(p, fam, mtu, TARGET_DEVICE);
      return;
    }
    const d = this.device;
    if (d !== null && d.take !== undefined) {
      this.handOff(p);
      if (!d.take(p)) this.drops.count(DropReason.DeviceWriteFailed);
      return;
    }
    this.write(p);
    this.handOff(p);
    p.release();
  }

  private toPeer(p: PacketBuffer, fam: 4 | 6, peer: Peer, ingress: number): void {
    const mtu = peer.mtu;
    if (p.length > mtu) {
      const df = fam === 6 || this.v4.wrap(p.buf, p.offset, p.length).dontFragment;
      if (ingress === FROM_LOCAL || !df) {
        this.sendFragments(p, fam, mtu, peer.index);
        return;
      }
      // DF set (or IPv6 in transit): tell the source the tunnel MTU.
      const q =
        fam === 4
          ? this.o.icmp.build(4, ICMP_DEST_UNREACHABLE, ICMP_UNREACH_FRAG_NEEDED, mtu, p.buf, p.offset, p.length)
          : this.o.icmp.build(6, ICMPV6_PACKET_TOO_BIG, 0, Math.max(mtu, IPV6_MIN_MTU), p.buf, p.offset, p.length);
      this.reporter.fragNeeded(peer.index, p.buf, p.offset, fam, p.length, mtu, this.clock[0]!);
      this.heldReply = q;
      this.drop(p, DropReason.PacketTooBig);
      if (q !== null) this.reply(q, ingress);
      peer.drops++;
      return;
    }
    this.clampMss(p, fam, peer);
    this.send(p, peer);
  }

  private send(p: PacketBuffer, peer: Peer): void {
    const t = this.transport;
    peer.txPackets++;
    peer.txBytes += p.length;
    peer.liveness.sentAt(this.clock);
    if (t === null) return this.drop(p, DropReason.NoSocket);
    if (this.sendExtra > 0) this.sendExtras(p, peer, t);
    this.handOff(p);
    const r = t.send(p, peer.index);
    if (r !== DropReason.None) {
      this.drops.count(r);
      peer.drops++;
    }
  }

  /** What a sent packet may need besides the send: a capture copy, a bicast copy. */
  private sendExtras(p: PacketBuffer, peer: Peer, t: PacketSender): void {
    const tap = this.tap;
    if (tap !== null) {
      const ep = peer.endpoint;
      if (ep !== undefined) tap.sent(p, ep);
    }
    if (peer.bicastTo !== null) this.bicastCopy(p, peer, t);
  }

  /** Mobility handover: a copy of p to the peer's second endpoint while the bicast lasts. */
  private bicastCopy(p: PacketBuffer, peer: Peer, t: PacketSender): void {
    if (this.clock[0]! >= peer.bicastUntil) {
      this.setBicast(peer, null, 0);
      return;
    }
    if (this.tap !== null) this.tap.sent(p, peer.bicastTo!);
    const q = this.o.pools.acquire(p.length);
    if (q === null) {
      this.drops.count(DropReason.PoolExhausted);
      return;
    }
    q.fill(p.buf, p.offset, p.length);
    const r = t.sendToEndpoint(q, peer.bicastTo!);
    if (r !== DropReason.None) this.drops.count(r);
    else peer.bicastCopies++;
  }

  /** Fragment p to `mtu` and send the pieces to a peer (target >= 0) or the device. */
  private sendFragments(p: PacketBuffer, fam: 4 | 6, mtu: number, target: number): void {
    const f = this.o.fragmenter;
    const r = fam === 4 ? f.fragmentV4(p.buf, p.offset, p.length, mtu) : f.fragmentV6(p.buf, p.offset, p.length, Math.max(mtu, IPV6_MIN_MTU));
    if (r !== DropReason.None) return this.drop(p, r);
    this.handOff(p);
    p.release();
    const n = f.count;
    this.fragNext = 0;
    this.fragEnd = n;
    for (let i = 0; i < n; i++) {
      const q = f.out[i]!;
      this.fragNext = i + 1;
      this.held = q;
      if (target >= 0) this.send(q, this.peers[target]!);
      else {
        this.write(q);
        this.held = null;
        q.release();
      }
    }
    this.fragEnd = 0;
    f.count = 0;
  }

  /** Send an error we built back the way the offending packet came. Takes ownership of q. */
  private reply(q: PacketBuffer, ingress: number): void {
    if (ingress === FROM_DEVICE) {
      this.write(q);
      this.handOff(q);
      q.release();
    } else if (ingress >= 0) {
      this.send(q, this.peers[ingress]!);
    } else {
      this.handOff(q);
      q.release(); // about our own packet: nobody to tell
    }
  }

  private unreachable(p: PacketBuffer, fam: 4 | 6, type: number, ingress: number): void {
    const reason =
      type === RouteType.BLACKHOLE
        ? DropReason.RouteBlackhole
        : type === RouteType.UNREACHABLE
          ? DropReason.RouteUnreachable
          : type === RouteType.PROHIBIT
            ? DropReason.RouteProhibit
            : DropReason.NoRoute;
    const err = icmpForRouteType(type, fam);
    const q = err === null || ingress === FROM_LOCAL ? null : this.o.icmp.build(fam, err.type, err.code, 0, p.buf, p.offset, p.length);
    this.heldReply = q;
    this.drop(p, reason);
    if (q !== null) this.reply(q, ingress);
  }

  /** Hub forwarding: TTL / hop limit minus one, or ICMP time exceeded. */
  private decrementTtl(p: PacketBuffer, fam: 4 | 6, ingress: number): boolean {
    let ok: boolean;
    if (fam === 4) ok = this.v4.wrap(p.buf, p.offset, p.length).decrementTtl();
    else ok = this.v6.wrap(p.buf, p.offset, p.length).decrementHopLimit() === DropReason.None;
    if (ok) return true;
    const q =
      fam === 4
        ? this.o.icmp.build(4, ICMP_TIME_EXCEEDED, ICMP_EXC_TTL, 0, p.buf, p.offset, p.length)
        : this.o.icmp.build(6, ICMPV6_TIME_EXCEEDED, 0, 0, p.buf, p.offset, p.length);
    this.heldReply = q;
    this.drop(p, fam === 4 ? DropReason.TtlExpired : DropReason.HopLimitExpired);
    if (q !== null) this.reply(q, ingress);
    return false;
  }

  /** Clamp the MSS of a TCP SYN (unfragmented, no IPv6 extension headers) to the peer's tunnel. */
  private clampMss(p: PacketBuffer, fam: 4 | 6, peer: Peer): void {
    const maxMss = fam === 4 ? peer.mssV4 : peer.mssV6;
    if (maxMss === 0) return;
    const b = p.buf;
    const off = p.offset;
    // Unfragmented TCP right behind the IP header (no IPv6 extension headers).
    const tcpOff = fam === 4 ? ipv4UnfragmentedPayload(b, off, IP_PROTO_TCP) : ipv6DirectPayload(b, off, IP_PROTO_TCP);
    const end = off + p.length;
    if (tcpOff < 0 || tcpOff + TCP_HEADER_LEN > end) return;
    this.tcp.wrap(b, tcpOff, end - tcpOff).clampMss(maxMss);
  }

  /** Write to the device; the caller still owns (and releases) p. */
  private write(p: PacketBuffer): void {
    const d = this.device;
    if (d === null || !d.write(p)) this.drops.count(DropReason.DeviceWriteFailed);
  }

  private drop(p: PacketBuffer, reason: DropReason): void {
    this.drops.count(reason);
    if (this.reporter.debug) this.reporter.drop(reason, -1, this.clock[0]!);
    this.handOff(p);
    p.release();
  }

  private dropPeer(p: PacketBuffer, peer: Peer, reason: DropReason): void {
    peer.drops++;
    this.drops.count(reason);
    if (this.reporter.debug) this.reporter.drop(reason, peer.index, this.clock[0]!);
    this.handOff(p);
    p.release();
  }
}
