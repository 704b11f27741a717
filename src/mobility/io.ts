/**
 * What the mobility state machines need from the world, injected: a clock, a random source and a
 * way to send a datagram. Phase A has no sockets: the endpoint (or a test) implements `send` over
 * its UDP transport; replies and timers come back in through the machines' handle()/tick().
 */
import type { SocketAddress } from '../wire/binding.ts';
import type { Clock, RandomSource } from './clock.ts';

export interface ControlSender {
  /**
   * Send buf[off, off+len) as one UDP payload to `to`. The buffer is reused as soon as this
   * returns: copy it if the send is deferred.
   */
  send(buf: Buffer, off: number, len: number, to: SocketAddress): void;
}

export interface MobilityIo {
  clock: Clock;
  random: RandomSource;
  sender: ControlSender;
}

/** What happened to one received mobility message (the caller maps drops to its own counters). */
export enum MobilityVerdict {
  /** Processed; any answer was sent. */
  Accepted = 0,
  /** Authenticated but refused; a binding ack with status >= 128 was sent. */
  Rejected = 1,
  /** The same message as the last one accepted; its cached answer was sent again. */
  Duplicate = 2,
  /** Malformed, or not a message this role takes. */
  DropInvalid = 3,
  /** Unknown sender, no or bad HMAC. */
  DropAuth = 4,
  /** Counter not newer than the last accepted (replayed or reordered). */
  DropReplay = 5,
  /** Counter outside the freshness window. */
  DropStale = 6,
  /** Above the per-node rate. */
  DropRate = 7,
  /** Authentic but not expected now (e.g. an ack for a sequence we did not send). */
  DropUnexpected = 8,
}

/** Two socket addresses are the same address and port. */
export function sameSocketAddress(a: SocketAddress, b: SocketAddress): boolean {
  if (a.family !== b.family || a.port !== b.port || a.bytes.length !== b.bytes.length) return false;
  for (let i = 0; i < a.bytes.length; i++) if (a.bytes[i] !== b.bytes[i]) return false;
  return true;
}
