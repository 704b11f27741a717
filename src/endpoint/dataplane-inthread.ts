/**
 * The in-thread data plane: the pipeline runs on the calling (main) thread. The portable path
 * (a kernel TUN through the tuntap2 library, read by a reader worker into pool slots; a Node
 * dgram socket), memory devices, and the userspace mode. It shares the Endpoint's DataPlaneCore,
 * so every operation of the boundary takes effect at once, and packets for the endpoint's own
 * stack reach it directly (the Endpoint wires pipeline.local to its stack: same pools).
 */
import { DropReason } from '../base/drop-reason.ts';
import type { PacketBuffer } from '../base/pool.ts';
import type { PacketDevice } from '../device/device.ts';
import { MemoryDevice } from '../device/memory-device.ts';
import { openTun } from '../device/tun.ts';
import type { RuleSpec } from '../route/rules.ts';
import type { RouteSpec } from '../route/types.ts';
import { peerEndpoint } from '../transport/peer-endpoints.ts';
import type { RecvInfo } from '../transport/transport.ts';
import { SEND_ERROR_INTERVAL_MS, sendErrorLine, type SendErrorReport, type SendErrors } from '../transport/send-errors.ts';
import { UdpTransport } from '../transport/udp-transport.ts';
import { parseAddress } from '../wire/address-text.ts';
import type { CaptureSpec } from './capture-ring.ts';
import type { DataPlane, DataPlaneHooks, DataPlaneReport, PeerSpec, UnderlayAddress } from './dataplane.ts';
import type { DataPlaneCore } from './dataplane-core.ts';
import type { DatagramSources } from './pipeline.ts';
import type { RouteSnapshot } from './snapshot.ts';

export { SEND_ERROR_INTERVAL_MS };

export interface InThreadOptions {
  /** The device: a given PacketDevice, 'memory' (userspace mode) or 'tun' (tuntap2). */
  device: PacketDevice | 'memory' | 'tun';
  /** What `path` says ("portable (why)", "memory (userspace)"). */
  path: string;
  hooks: DataPlaneHooks;
}

/** RecvInfo (dgram's text addresses) as DatagramSources: parsed only for a punted control message. */
class RecvInfoSources implements DatagramSources {
  info: RecvInfo | null = null;

  source(i: number): UnderlayAddress {
    const text = this.info?.addresses[i] ?? '0.0.0.0';
    const port = this.info?.ports[i] ?? 0;
    const a = parseAddress(text.startsWith('::ffff:') && text.includes('.') ? text.slice(7) : text);
    return { family: a.family, address: a.bytes, port };
  }

  sourceKey(i: number): number {
    const text = this.info?.addresses[i] ?? '';
    let h = 0x811c9dc5 ^ (this.info?.ports[i] ?? 0);
    for (let k = 0; k < text.length; k++) h = Math.imul(h ^ text.charCodeAt(k), 0x01000193);
    return h >>> 0;
  }
}

/** How often the held-back event counts are reported (EventGate.flush). */
const EVENT_FLUSH_MS = 1000;

export class InThreadDataPlane implements DataPlane {
  readonly path: string;
  device: PacketDevice | null = null;
  transport: UdpTransport | null = null;
  private readonly sources = new RecvInfoSources();
  /** The UDP socket's send errors (kept after stop: the last counters stay readable). */
  private sendErrors: SendErrors | null = null;
  private flushTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly core: DataPlaneCore,
    private readonly opts: InThreadOptions,
  ) {
    this.path = opts.path;
    const hooks = opts.hooks;
    core.events.onPeerUp = (peer) => hooks.peerUp(peer.index);
    if (hooks.event !== undefined) core.events.onEvent = hooks.event;
    core.events.onError = (e) => hooks.internalError?.(e, 'pipeline');
  }

  private readonly punt = (p: PacketBuffer, peer: number, from: UnderlayAddress): void => {
    const bytes = Uint8Array.from(p.bytes());
    p.release();
    this.opts.hooks.control({ bytes, from, peer });
  };

  wantControl(on: boolean): void {
    this.core.events.onControl = on ? this.punt : undefined;
  }

  get listen(): string {
    return this.transport?.listenText ?? '';
  }

  async start(): Promise<void> {
    const c = this.core.config;
    const core = this.core;
    const want = this.opts.device;
    const dev =
      want === 'memory'
        ? new MemoryDevice({ name: c.interface.name, mtu: c.interface.mtu, pool: core.pools.small })
        : want === 'tun'
          ? await openTun({
              name: c.interface.name,
              mtu: c.interface.mtu,
              addresses: c.interface.address.map((a) => a.text),
              pool: core.pools.small,
            })
          : want;
    this.device = dev;
    core.pipeline.device = dev;
    try {
      const listen = c.listen;
      const peers = core.peers.filter((p) => p !== undefined);
      const anyV6 = peers.some((p) => p.family === 6);
      const anyV4 = peers.some((p) => p.family === 4);
      const host = listen.host ?? (anyV6 ? '::' : '0.0.0.0');
      const t = new UdpTransport({
        address: host,
        port: listen.port,
        ipv6Only: !(anyV4 && anyV6 && listen.host === null),
        pools: core.pools,
        endpoints: core.endpoints,
        onBatch: this.onBatch,
        onError: (e) => this.opts.hooks.log(`warning: udp: ${e.message}`),
        onSendError: this.opts.hooks.sendError,
        onSendErrorReport: this.onSendErrorReport,
        sendErrorIntervalMs: SEND_ERROR_INTERVAL_MS,
      });
      await t.start(); // throws when a peer's endpoint is of a family the socket cannot carry
      this.transport = t;
      this.sendErrors = t.sendErrors;
      core.pipeline.transport = t;
      dev.start(
        core.pipeline.fromDevice,
        (why) => this.opts.hooks.down(`device ${dev.name} went down: ${why}`),
        (e) => this.opts.hooks.internalError?.(e, 'device'),
      );
      this.flushTimer = setInterval(() => core.pipeline.flushEvents(Date.now()), EVENT_FLUSH_MS);
      this.flushTimer.unref();
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  private readonly onBatch = (batch: PacketBuffer[], count: number, info: RecvInfo): void => {
    this.sources.info = info;
    this.core.pipeline.fromTransport(batch, count, this.sources);
  };

  /**
   * Move the socket to another local address, same port (a mobile node whose socket is bound to
   * one address: what a link change is to it where no kernel picks a new source, e.g. the
   * in-process example on loopback). Control plane; rejects with the bind error.
   */
  async rebind(host: string): Promise<void> {
    const old = this.transport;
    if (old === null) throw new Error('data plane not running');
    const t = new UdpTransport({
      address: host,
      port: old.localAddress.port,
      pools: this.core.pools,
      endpoints: this.core.endpoints,
      onBatch: this.onBatch,
      onError: (e) => this.opts.hooks.log(`warning: udp: ${e.message}`),
      onSendError: this.opts.hooks.sendError,
      onSendErrorReport: this.onSendErrorReport,
      sendErrorIntervalMs: SEND_ERROR_INTERVAL_MS,
    });
    await old.close();
    this.transport = null;
    this.core.pipeline.transport = null;
    await t.start();
    this.transport = t;
    this.sendErrors = t.sendErrors;
    this.core.pipeline.transport = t;
  }

  private readonly onSendErrorReport = (r: SendErrorReport): void =>
    this.opts.hooks.log(sendErrorLine(r, this.peerText(r.peer), SEND_ERROR_INTERVAL_MS));

  async stop(): Promise<void> {
    this.core.events.onControl = undefined;
    if (this.flushTimer !== null) clearInterval(this.flushTimer);
    this.flushTimer = null;
    this.core.pipeline.setCapture(null);
    const t = this.transport;
    this.transport = null;
    this.core.pipeline.transport = null;
    if (t) await t.close();
    const d = this.device;
    this.device = null;
    this.core.pipeline.device = null;
    if (d) await d.close();
  }

  addRoute(spec: RouteSpec): void {
    this.core.addRoute(spec);
  }
  removeRoute(id: number): void {
    this.core.removeRoute(id);
  }
  setPeerEndpoint(index: number, to: UnderlayAddress): void {
    this.core.setPeerEndpoint(index, to);
  }
  addPeer(index: number, spec: PeerSpec): void {
    this.core.addPeer(index, spec);
  }
  removePeer(index: number): void {
    this.core.removePeer(index);
  }
  updatePeer(index: number, spec: PeerSpec): void {
    this.core.updatePeer(index, spec);
  }
  setRules(rules: readonly RuleSpec[]): void {
    this.core.setRules(rules);
  }
  setDebugEvents(on: boolean): void {
    this.core.setDebugEvents(on);
  }
  setCapture(spec: CaptureSpec | null): void {
    this.core.setCapture(spec);
  }
  peerDown(index: number): void {
    const p = this.core.peers[index];
    if (p !== undefined) p.up = false;
  }
  bicast(peer: number, to: UnderlayAddress | null, untilMs: number): void {
    this.core.setBicast(peer, to, untilMs);
  }

  sendControl(bytes: Uint8Array, to: number | UnderlayAddress): DropReason {
    const t = this.transport;
    if (t === null) return DropReason.NoSocket;
    const q = this.core.pools.acquire(bytes.length);
    if (q === null) return DropReason.PoolExhausted;
    q.fill(bytes);
    const tap = this.core.pipeline.capture;
    if (typeof to === 'number') {
      const p = this.core.peers[to];
      if (p === undefined) {
        q.release();
        return DropReason.UnknownPeer;
      }
      p.liveness.sent(Date.now());
      p.txPackets++;
      p.txBytes += q.length;
      const ep = p.endpoint;
      if (tap !== null && ep !== undefined) tap.sentControl(bytes, { family: ep.family, address: ep.bytes, port: ep.port });
      return t.send(q, to);
    }
    if (tap !== null) tap.sentControl(bytes, to);
    return t.sendToEndpoint(q, peerEndpoint(to.family, to.address, to.port));
  }

  localOutput(p: PacketBuffer): void {
    this.core.pipeline.fromLocal(p);
  }

  /** The report now (synchronous: everything is on this thread). */
  reportNow(withRoutes: boolean): DataPlaneReport {
    const d = this.device?.stats;
    const t = this.transport?.stats;
    return this.core.report(
      {
        tunRx: { packets: d?.rxPackets ?? 0, bytes: d?.rxBytes ?? 0 },
        tunTx: { packets: d?.txPackets ?? 0, bytes: d?.txBytes ?? 0 },
        udpRx: { packets: t?.rxPackets ?? 0, bytes: t?.rxBytes ?? 0 },
        udpTx: { packets: t?.txPackets ?? 0, bytes: t?.txBytes ?? 0 },
      },
      withRoutes,
      {
        ...(this.sendErrors?.toJSON() ?? {}),
        // slots the TUN reader holds for its next reads: live, but not packets in flight
        poolParked: (this.device as { parkedSlots?: number } | null)?.parkedSlots ?? 0,
      },
    );
  }

  /** "shanghai (203.0.113.20:6080)" for a send error report. */
  private peerText(index: number): string {
    const p = this.core.peers[index];
    return p === undefined ? `#${index}` : `${p.name} (${p.endpointText})`;
  }

  report(withRoutes: boolean): Promise<DataPlaneReport> {
    return Promise.resolve(this.reportNow(withRoutes));
  }

  routePages(pageSize: number): AsyncIterableIterator<RouteSnapshot[]> {
    return this.core.routePages(pageSize);
  }
}
