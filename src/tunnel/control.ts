/**
 * Control messages (GUE variant 0, C = 1; the format is src/wire/gue.ts) with the state they need
 * per tunnel: our sender id and counter on the way out, the replay window and the reflection
 * check on the way in.
 *
 * - ControlCounter: the sender's counter (the clock in microseconds, +1 per message).
 * - ControlSender: sender id + boot epoch + counter; writes keepalives.
 * - verifyControl: one received message checked in full (structure, HMAC, reflection, replay;
 *   replay state only for keyed peers: see below).
 * - ControlReceiver: verifyControl with the replay window and our sender id it owns, and what
 *   each accepted message type means to the tunnel (a keepalive: the peer is alive).
 */
import { randomBytes } from 'node:crypto';
import { DropReason } from '../base/drop-reason.ts';
import { authenticateControl, ControlMessage, CTYPE_KEEPALIVE, emitKeepalive } from '../wire/gue.ts';
import { ReplayWindow } from './replay.ts';

/** A wall clock in ms since 1970 (mobility/clock.ts's Clock has this shape). */
export interface MsClock {
  now(): number;
}

const SYSTEM_CLOCK: MsClock = { now: () => Date.now() };

/**
 * The sender's side of the control header's 64-bit counter, for keepalives and mobility messages
 * alike: the clock in microseconds, and +1 per message when messages come faster than that (or
 * the clock steps back), so a restarted sender starts ahead of what its receivers saw last (exact
 * as a JS number below 2^53, i.e. until the year 2255).
 */
export class ControlCounter {
  private value: number;
  private readonly clock: MsClock;
  /** `clock` (default the system clock) and a start value (default 0: the first next() is the clock); a number alone is a start value. */
  constructor(clock?: MsClock | number, start = 0) {
    if (typeof clock === 'number') {
      this.clock = SYSTEM_CLOCK;
      this.value = clock;
    } else {
      this.clock = clock ?? SYSTEM_CLOCK;
      this.value = start;
    }
  }
  next(): number {
    const now = Math.floor(this.clock.now() * 1000);
    this.value = this.value + 1 > now ? this.value + 1 : now;
    return this.value;
  }
}

/** A boot epoch: random, never 0 (gue.ts: a new one each time a sender starts). */
export function randomEpoch(): number {
  return randomBytes(4).readUInt32BE(0) || 1;
}

/** Our side of the control messages we originate: the sender id, boot epoch and counter they carry. */
export class ControlSender {
  constructor(
    readonly senderId: number,
    private readonly counter = new ControlCounter(),
    /** This start's boot epoch (keepalives carry it). */
    readonly epoch = randomEpoch(),
  ) {}

  /**
   * Write a KEEPALIVE at buf[off] (size it with controlLength(KEEPALIVE_BODY_LEN, true)):
   * `intervalSec` is our keepalive interval toward that peer, `key` its pre-shared key (HMAC
   * trailer) or null. Returns the bytes written.
   */
  keepalive(buf: Buffer, off: number, intervalSec: number, key: Uint8Array | null, nowMs = Date.now()): number {
    return emitKeepalive(buf, off, { senderId: this.senderId, counter: this.counter.next(), timestampMs: nowMs, interval: intervalSec, epoch: this.epoch }, key);
  }
}

const scratch = new ControlMessage(Buffer.alloc(0), 0, 0);

/**
 * Check a received control datagram (the UDP payload buf[off, off+len)): structure, then the HMAC
 * when `key` is set (missing or wrong -> BadAuthentication), then our own sender id coming back
 * (`ownSenderId`, a reflection -> BadAuthentication), then, with a key, the epoch and counter
 * against `replay` for `peer` (a replay -> ReplayedMessage; rules in src/tunnel/replay.ts). Only
 * a message that passes everything advances the replay state. Without a key a MAC, if present,
 * is not checked, and `replay` is neither consulted nor moved: an unauthenticated counter proves
 * nothing (whoever can send from the peer's address can write a fresh one), so a window fed by it
 * protects nothing and can be poisoned (a spoofed 2^64-1 would silence the real peer until restart).
 */
export function verifyControl(
  buf: Buffer,
  off: number,
  len: number,
  key: Uint8Array | null,
  replay: ReplayWindow | null = null,
  peer = 0,
  ownSenderId = -1,
): DropReason {
  const r = authenticateControl(buf, off, len, key);
  if (r !== DropReason.None) return r;
  const m = scratch.wrap(buf, off, len);
  if (ownSenderId >= 0 && m.senderId === ownSenderId >>> 0) return DropReason.BadAuthentication;
  if (replay !== null && key !== null) {
    const epoch = m.epoch;
    const hi = m.counterHi;
    const lo = m.counterLo;
    if (!replay.isFresh(peer, epoch, hi, lo)) return DropReason.ReplayedMessage;
    replay.accept(peer, epoch, hi, lo);
  }
  return DropReason.None;
}

/** The receiving side of control messages for all peers of one endpoint. */
export class ControlReceiver {
  private readonly replay: ReplayWindow;
  private readonly msg = new ControlMessage(Buffer.alloc(0), 0, 0);

  /** `ownSenderId`: ours, so that a reflected message of our own is rejected. */
  constructor(
    peers: number,
    private readonly ownSenderId: number,
  ) {
    this.replay = new ReplayWindow(Math.max(1, peers));
  }

  /**
   * A control datagram from peer `peer` (keyed with `key`, or null): None when it is a fresh,
   * authentic keepalive (the peer is alive), else why it is to be dropped: verifyControl's
   * reasons, or BadControlMessage for a type this endpoint does not take (binding updates
   * belong to the mobility layer, not part of this endpoint yet).
   */
  receive(buf: Buffer, off: number, len: number, peer: number, key: Uint8Array | null): DropReason {
    // Only keepalives touch the keepalive replay state (another ctype is checked, then refused).
    const keepalive = len > 1 && this.msg.wrap(buf, off, len).ctype === CTYPE_KEEPALIVE;
    const r = verifyControl(buf, off, len, key, keepalive ? this.replay : null, peer, this.ownSenderId);
    if (r !== DropReason.None) return r;
    return keepalive ? DropReason.None : DropReason.BadControlMessage;
  }

  /** Forget a peer's replay state (removed, or its key changed). */
  reset(peer: number): void {
    this.replay.reset(peer);
  }
}
