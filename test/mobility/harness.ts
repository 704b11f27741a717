/** Fakes for the mobility state machines: a clock tests move by hand, a wire that records sends. */
import type { Clock } from '../../src/mobility/clock.ts';
import { SeededRandom } from '../../src/mobility/clock.ts';
import type { ControlSender, MobilityIo } from '../../src/mobility/io.ts';
import type { SocketAddress } from '../../src/wire/binding.ts';

export const T0 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

export class FakeClock implements Clock {
  constructor(public t = T0) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

export interface Sent {
  bytes: Buffer;
  to: SocketAddress;
  at: number;
}

export class RecordingSender implements ControlSender {
  readonly sent: Sent[] = [];
  constructor(private readonly clock: Clock) {}
  send(buf: Buffer, off: number, len: number, to: SocketAddress): void {
    this.sent.push({ bytes: Buffer.from(buf.subarray(off, off + len)), to, at: this.clock.now() });
  }
  /** Everything sent since the last take(). */
  take(): Sent[] {
    return this.sent.splice(0, this.sent.length);
  }
}

export function fakeIo(seed = 1, clock = new FakeClock()): MobilityIo & { clock: FakeClock; sender: RecordingSender; random: SeededRandom } {
  return { clock, random: new SeededRandom(seed), sender: new RecordingSender(clock) };
}

export function v4(text: string): Uint8Array {
  return Uint8Array.from(text.split('.').map(Number));
}

export function sock4(text: string, port: number): SocketAddress {
  return { family: 4, bytes: v4(text), port };
}

export function key(n: number): Uint8Array {
  return Uint8Array.from({ length: 32 }, (_, i) => (n * 31 + i * 7) & 0xff);
}
