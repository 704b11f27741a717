/**
 * The data-plane worker (started by WorkerDataPlane, dataplane-worker.ts): one thread, run to
 * completion. It builds its own DataPlaneCore (pool, router, peers, pipeline) from the config,
 * warms the JIT up (fast-warm-up.ts), then loops in the fast engine (fast-engine.ts), blocked in
 * poll on the TUN fd, the UDP fd and an eventfd. The control plane's messages wake it through
 * the eventfd; it takes them with receiveMessageOnPort (it never returns to its event loop, so a
 * message event would never run, nor would a signal handler while it waits in poll).
 *
 * Exceptions: a round's exception is contained by the engine (counted, its packets released,
 * logged at most once a second here); an exception in setup is reported ('failed') and ends the
 * worker, and the control plane falls back or fails its start.
 */
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import type { PacketBuffer } from '../base/pool.ts';
import type { RouteListCursor } from '../route/list-cursor.ts';
import { sysLibc, sysUnavailableReason } from '../sys/libc.ts';
import { EAGAIN, errnoName } from '../sys/linux.ts';
import { SysMemory } from '../sys/memory.ts';
import { EventFd } from '../sys/poll.ts';
import { peerEndpoint } from '../transport/peer-endpoints.ts';
import { SEND_ERROR_INTERVAL_MS, sendErrorLine, SendErrors } from '../transport/send-errors.ts';
import { GsoUdpSocket } from '../transport/udp-gso.ts';
import { DropReason } from '../base/drop-reason.ts';
import type { DataPlaneReport } from './dataplane.ts';
import { DataPlaneCore } from './dataplane-core.ts';
import type { FromWorker, ToWorker, WorkerInit } from './dataplane-messages.ts';
import { FastEngine } from './fast-engine.ts';
import { warmUpFastPath } from './fast-warm-up.ts';

const init = (workerData as { init: WorkerInit; port: MessagePort }).init;
const port = (workerData as { init: WorkerInit; port: MessagePort }).port;

function post(m: FromWorker, transfer?: ArrayBuffer[]): void {
  port.postMessage(m, transfer);
}

function run(): void {
  const libc = sysLibc();
  if (libc === null) throw new Error(`FFI not available in the worker: ${sysUnavailableReason()}`);
  const t0 = performance.now();
  const warmed = warmUpFastPath(init.config, libc, init.warmUp);
  const warmUpMs = performance.now() - t0;

  const core = new DataPlaneCore(init.config, { senderId: init.senderId, poolSlots: init.poolSlots });
  const mem = new SysMemory(libc, FastEngine.memoryNeeded());
  const udp = GsoUdpSocket.adopt(libc, mem, init.udpFd, init.udpFamily, init.udpPort, init.gso, init.gro);
  const wake = new EventFd(libc, mem, init.wakeFd);
  const engine = new FastEngine(core, { libc, mem, tunFd: init.tunFd, udp, wakeFd: init.wakeFd });
  // Exceptions the engine or the pipeline caught and survived go up as 'internal-error' (the
  // control plane counts them and logs them at most once a second); at most ten a second here.
  let errorWindow = 0;
  let errorsInWindow = 0;
  const internalError = (e: unknown, where: string): void => {
    const now = Date.now();
    if (now - errorWindow >= 1000) {
      errorWindow = now;
      errorsInWindow = 0;
    }
    if (++errorsInWindow > 10) return;
    const err = e instanceof Error ? e : new Error(String(e));
    post({ t: 'internal-error', where, message: err.message.split('\n')[0]!, stack: err.stack ?? '' });
  };
  engine.onError = (e) => internalError(e, 'fast engine (worker)');
  core.events.onError = (e) => internalError(e, 'pipeline (worker)');
  engine.sender.onWarning = (line) => post({ t: 'log', line });
  const dev = init.config.interface.name;
  engine.onDown = (reason, deleted) =>
    post({ t: 'down', reason: `device ${dev} went down: TUN ${dev}: ${deleted ? `interface ${dev} was deleted` : reason}` });

  core.events.onPeerUp = (peer) => post({ t: 'peer-up', index: peer.index });
  core.events.onEvent = (e) => post({ t: 'event', e });
  const puntControl = (p: PacketBuffer, peer: number, from: { family: 4 | 6; address: Uint8Array; port: number }): void => {
    const bytes = Uint8Array.from(p.bytes());
    p.release();
    post({ t: 'control', bytes, from, peer }, [bytes.buffer as ArrayBuffer]);
  };
  if (init.control) core.events.onControl = puntControl;
  if (init.keepalives) {
    core.events.onKeepalive = (peer, p) => {
      const bytes = Uint8Array.from(p.bytes());
      post({ t: 'keepalive', index: peer.index, bytes }, [bytes.buffer as ArrayBuffer]);
    };
  }
  // Send errors: counted by cause and logged once per peer per interval (as the portable path
  // does); mobility hears of them at most every 100 ms (it only needs to know to look at once).
  const sendErrors = new SendErrors((r) => {
    const p = r.peer >= 0 ? core.peers[r.peer] : undefined;
    post({ t: 'log', line: sendErrorLine(r, p === undefined ? `#${r.peer}` : `${p.name} (${p.endpointText})`, SEND_ERROR_INTERVAL_MS) });
  }, SEND_ERROR_INTERVAL_MS);
  let lastSendError = 0;
  engine.sender.onSendError = (errno, peer, datagrams) => {
    const now = Date.now();
    const code = errnoName(errno);
    for (let k = 0; k < datagrams; k++) sendErrors.note(peer < 0 ? -1 : peer, code, now);
    if (errno === EAGAIN || now - lastSendError < 100) return;
    lastSendError = now;
    post({ t: 'send-error', message: `udp send failed: ${code}` });
  };
  const EVENT_FLUSH_MS = 1000;
  // Route listings in progress (show routes streams a page at a time); few at once.
  const listings = new Map<number, RouteListCursor>();
  const MAX_LISTINGS = 16;
  core.pipeline.local = {
    input(p: PacketBuffer): void {
      const bytes = Uint8Array.from(p.bytes());
      p.release();
      post({ t: 'local', bytes }, [bytes.buffer as ArrayBuffer]);
    },
  };

  const report = (withRoutes: boolean): DataPlaneReport => {
    const es = engine.stats;
    const ws = engine.writer.stats;
    const ss = engine.sender.stats;
    const r = core.report(
      {
        tunRx: { packets: es.tunRxPackets, bytes: es.tunRxBytes },
        tunTx: { packets: ws.txPackets, bytes: ws.txBytes },
        udpRx: { packets: es.udpRxPackets, bytes: es.udpRxBytes },
        udpTx: { packets: ss.txPackets, bytes: ss.txBytes },
      },
      withRoutes,
      {
        tunReads: es.tunReads,
        superPackets: es.superPackets,
        superSlowPath: es.superSlowPath,
        udpRxChunks: es.udpRxChunks,
        udpSendCalls: ss.calls,
        udpMessages: ss.messages,
        gsoDatagrams: ss.gsoDatagrams,
        tunWrites: ws.writes,
        coalescedWrites: ws.coalescedWrites,
        engineErrors: es.errors,
        polls: es.polls,
        ...sendErrors.toJSON(),
      },
    );
    if (!closed) r.poolLive -= engine.reservedSlots; // the receive area is no packet in flight
    return r;
  };
  let closed = false;

  /** Apply every queued message; true when told to stop. */
  const handle = (): boolean => {
    for (;;) {
      const r = receiveMessageOnPort(port);
      if (r === undefined) return false;
      const m = r.message as ToWorker;
      try {
        switch (m.t) {
          case 'stop':
            return true;
          case 'route+':
            core.addRoute(m.spec);
            break;
          case 'route-':
            core.removeRoute(m.id);
            break;
          case 'endpoint':
            core.setPeerEndpoint(m.index, m.to);
            break;
          case 'peer+':
            core.addPeer(m.index, m.spec);
            break;
          case 'peer-':
            core.removePeer(m.index);
            break;
          case 'peer-down': {
            const p = core.peers[m.index];
            if (p !== undefined) p.up = false;
            break;
          }
          case 'peer~':
            core.updatePeer(m.index, m.spec);
            break;
          case 'rules':
            core.setRules(m.rules);
            break;
          case 'debug-events':
            core.setDebugEvents(m.on);
            break;
          case 'capture':
            core.setCapture(m.spec);
            break;
          case 'bicast':
            core.setBicast(m.peer, m.to, m.until);
            break;
          case 'control':
            core.events.onControl = m.on ? puntControl : undefined;
            break;
          case 'send': {
            const q = core.pools.acquire(m.bytes.length);
            if (q === null) {
              core.drops.count(DropReason.PoolExhausted);
              break;
            }
            q.fill(m.bytes);
            if (typeof m.to === 'number') {
              const p = core.peers[m.to];
              if (p === undefined) {
                q.release();
                break;
              }
              p.liveness.sent(Date.now());
              p.txPackets++;
              p.txBytes += q.length;
              const tap = core.pipeline.capture;
              const ep = p.endpoint;
              if (tap !== null && ep !== undefined) tap.sentControl(m.bytes, { family: ep.family, address: ep.bytes, port: ep.port });
              const why = engine.sender.send(q, m.to);
              if (why !== DropReason.None) core.drops.count(why);
            } else {
              core.pipeline.capture?.sentControl(m.bytes, m.to);
              const why = engine.sender.sendToEndpoint(q, peerEndpoint(m.to.family, m.to.address, m.to.port));
              if (why !== DropReason.None) core.drops.count(why);
            }
            break;
          }
          case 'local': {
            const q = core.pools.acquire(m.bytes.length);
            if (q === null) {
              core.drops.count(DropReason.PoolExhausted);
              break;
            }
            q.fill(m.bytes);
            core.pipeline.fromLocal(q);
            break;
          }
          case 'report':
            post({ t: 'report', id: m.id, report: report(m.routes) });
            break;
          case 'route-page': {
            let c = listings.get(m.id);
            if (c === undefined) {
              if (listings.size >= MAX_LISTINGS) listings.delete(listings.keys().next().value!);
              c = core.router.cursor({ table: 'all' });
              listings.set(m.id, c);
            }
            const ids = c.next(m.size);
            if (ids === null) listings.delete(m.id);
            post({ t: 'route-page', id: m.id, routes: ids === null ? null : core.routeSnapshots(ids) });
            break;
          }
          case 'route-page-end':
            listings.delete(m.id);
            break;
        }
      } catch (e) {
        post({ t: 'log', line: `warning: data plane: ${m.t}: ${(e as Error).message.split('\n')[0]}` });
      }
    }
  };

  post({ t: 'ready', warmUpMs, warmUpPackets: warmed });
  // the counts the event gate held back are reported about once a second (Pipeline.flushEvents)
  const clock = new Float64Array(1);
  let lastFlush = 0;
  for (;;) {
    const woken = engine.runOnce(EVENT_FLUSH_MS);
    const c = core.pipeline.clockSource;
    if (c !== null) c.sample(clock);
    else clock[0] = Date.now();
    if (clock[0]! - lastFlush >= EVENT_FLUSH_MS) {
      lastFlush = clock[0]!;
      core.pipeline.flushEvents(lastFlush);
    }
    if (!woken) continue;
    wake.drain();
    const stop = handle();
    engine.flushPending();
    if (stop) break;
  }
  engine.close();
  closed = true;
  post({ t: 'stopped', report: report(false) });
}

try {
  run();
} catch (e) {
  post({ t: 'failed', message: (e as Error)?.message?.split('\n')[0] ?? String(e) });
}
port.close();
