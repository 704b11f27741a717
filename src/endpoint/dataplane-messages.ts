/**
 * The messages between the control plane (main thread, WorkerDataPlane) and the data-plane
 * worker (dataplane-worker-main.ts). Main -> worker: posted on a MessagePort, then the worker's
 * eventfd is written; the worker, blocked in poll, wakes and takes them all in order with
 * receiveMessageOnPort (it never returns to its event loop). Worker -> main: posted on the same
 * channel, handled by main's event loop. Plain structured-clone data; control plane only (a
 * few per second, or per packet for the endpoint's own stack and control messages).
 */
import type { Config } from '../config/config.ts';
import type { RuleSpec } from '../route/rules.ts';
import type { RouteSpec } from '../route/types.ts';
import type { CaptureSpec } from './capture-ring.ts';
import type { DataPlaneEvent, DataPlaneReport, PeerSpec, UnderlayAddress } from './dataplane.ts';
import type { RouteSnapshot } from './snapshot.ts';

export interface WorkerInit {
  config: Config;
  senderId: number;
  poolSlots: { small: number; large: number };
  /** fds opened by the main thread (process-wide). */
  tunFd: number;
  udpFd: number;
  udpFamily: 4 | 6;
  udpPort: number;
  gso: boolean;
  gro: boolean;
  wakeFd: number;
  /** Punt control messages up (the Endpoint has a 'control' listener or wants them). */
  control: boolean;
  /** Copy keyed peers' accepted keepalives up (the control plane's replay windows follow, for roaming). */
  keepalives: boolean;
  /** Packets through the warm-up (0 = none). */
  warmUp: number;
}

export type ToWorker =
  | { t: 'stop' }
  | { t: 'route+'; spec: RouteSpec }
  | { t: 'route-'; id: number }
  | { t: 'endpoint'; index: number; to: UnderlayAddress }
  | { t: 'peer+'; index: number; spec: PeerSpec }
  | { t: 'peer-'; index: number }
  | { t: 'peer-down'; index: number }
  | { t: 'peer~'; index: number; spec: PeerSpec }
  | { t: 'rules'; rules: readonly RuleSpec[] }
  | { t: 'debug-events'; on: boolean }
  /** The ring's buffer is a SharedArrayBuffer: shared with the control plane as it is. */
  | { t: 'capture'; spec: CaptureSpec | null }
  | { t: 'bicast'; peer: number; to: UnderlayAddress | null; until: number }
  | { t: 'send'; bytes: Uint8Array; to: number | UnderlayAddress }
  | { t: 'local'; bytes: Uint8Array }
  | { t: 'report'; id: number; routes: boolean }
  /** The next page of route listing `id` (the first asks opens it). */
  | { t: 'route-page'; id: number; size: number }
  /** Route listing `id` is abandoned (the reader went away). */
  | { t: 'route-page-end'; id: number }
  | { t: 'control'; on: boolean };

export type FromWorker =
  | { t: 'ready'; warmUpMs: number; warmUpPackets: number }
  | { t: 'failed'; message: string }
  | { t: 'peer-up'; index: number }
  | { t: 'local'; bytes: Uint8Array }
  | { t: 'control'; bytes: Uint8Array; from: UnderlayAddress; peer: number }
  | { t: 'report'; id: number; report: DataPlaneReport }
  /** A page of route listing `id` (possibly empty: one bounded step), null at its end. */
  | { t: 'route-page'; id: number; routes: RouteSnapshot[] | null }
  | { t: 'keepalive'; index: number; bytes: Uint8Array }
  | { t: 'send-error'; message: string }
  | { t: 'log'; line: string }
  | { t: 'event'; e: DataPlaneEvent }
  | { t: 'internal-error'; where: string; message: string; stack: string }
  | { t: 'down'; reason: string }
  | { t: 'stopped'; report: DataPlaneReport };
