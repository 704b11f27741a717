import { afterEach, describe, expect, it, vi } from 'vitest';
import { DropReason } from '../../src/base/drop-reason.ts';
import { ControlCounter, ControlReceiver, ControlSender } from '../../src/tunnel/control.ts';
import { RETIRED_EPOCHS } from '../../src/tunnel/replay.ts';
import { PeerLiveness } from '../../src/tunnel/liveness.ts';
import { ReplayVerdict, ReplayWindow } from '../../src/tunnel/replay.ts';
import { controlLength, CTYPE_BINDING_UPDATE, emitControl, KEEPALIVE_BODY_LEN, ControlMessage } from '../../src/wire/gue.ts';

describe('PeerLiveness', () => {
  it('up on the first datagram heard, down after 3 keepalive intervals (at least 5 s) of silence', () => {
    const l = new PeerLiveness(2);
    expect([l.keepaliveMs, l.deadAfterMs, l.up]).toEqual([2000, 6000, false]);
    expect(l.heard(1000)).toBe(true);
    expect(l.heard(1500)).toBe(false); // already up: no second event
    expect(l.lastRx).toBe(1500);
    expect(l.expire(1500 + 6000)).toBe(false); // not more than deadAfterMs yet
    expect(l.expire(1500 + 6001)).toBe(true);
    expect(l.up).toBe(false);
    expect(l.expire(99_999)).toBe(false); // already down: no second event
    expect(new PeerLiveness(1).deadAfterMs).toBe(5000);
    expect(new PeerLiveness(null).deadAfterMs).toBe(180_000);
  });

  it('a keepalive is due when nothing at all was sent for an interval, never without keepalives', () => {
    const l = new PeerLiveness(25);
    expect(l.keepaliveDue(25_000)).toBe(true); // never sent
    l.sent(10_000);
    expect(l.keepaliveDue(34_999)).toBe(false);
    expect(l.keepaliveDue(35_000)).toBe(true);
    const none = new PeerLiveness(null);
    none.sent(0);
    expect(none.keepaliveDue(1e12)).toBe(false);
  });
});

describe('ControlReceiver', () => {
  const key = Buffer.from('a pre-shared key');

  it('takes a fresh authentic keepalive once; replays, reflections and other types are refused', () => {
    const sender = new ControlSender(0x1234);
    const rx = new ControlReceiver(2, 0x9999);
    const b = Buffer.alloc(controlLength(KEEPALIVE_BODY_LEN, true));
    const n = sender.keepalive(b, 0, 25, key, 1_700_000_000_000);
    expect(new ControlMessage(b, 0, n).parseKeepalive()).toMatchObject({ senderId: 0x1234, timestampMs: 1_700_000_000_000, interval: 25 });
    expect(rx.receive(b, 0, n, 1, key)).toBe(DropReason.None);
    expect(rx.receive(b, 0, n, 1, key)).toBe(DropReason.ReplayedMessage);
    expect(rx.receive(b, 0, n, 0, key)).toBe(DropReason.None); // another peer's window
    rx.reset(1);
    expect(rx.receive(b, 0, n, 1, key)).toBe(DropReason.None);
    expect(rx.receive(b, 0, n, 1, Buffer.from('wrong'))).toBe(DropReason.BadAuthentication);

    const own = new ControlSender(0x9999);
    const m = own.keepalive(b, 0, 25, key);
    expect(rx.receive(b, 0, m, 1, key)).toBe(DropReason.BadAuthentication); // our own, reflected

    const u = Buffer.alloc(controlLength(4, true));
    const un = emitControl(u, 0, { ctype: CTYPE_BINDING_UPDATE, senderId: 0x1234, counter: Date.now() * 1000 + 5e9, body: Buffer.alloc(4) }, key);
    expect(rx.receive(u, 0, un, 1, key)).toBe(DropReason.BadControlMessage);
  });

  it("each sender's counter goes up message by message", () => {
    const s = new ControlSender(1);
    const b = Buffer.alloc(64);
    const counters = [0, 1, 2].map(() => new ControlMessage(b, 0, s.keepalive(b, 0, 0, null)).counter);
    expect(counters[1]).toBeGreaterThan(counters[0]!);
    expect(counters[2]).toBeGreaterThan(counters[1]!);
  });
});

describe('keepalive replay state across clock steps and spoofs (issue 12)', () => {
  const key = Buffer.from('a pre-shared key');
  const buf = Buffer.alloc(controlLength(KEEPALIVE_BODY_LEN, true));
  afterEach(() => vi.useRealTimers());

  it('a peer restarted with its clock stepped back is heard at once; its old messages stay replays', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-06-01T12:00:00Z'));
    const rx = new ControlReceiver(1, 0x9999);
    const before = new ControlSender(0x1234);
    const old = Buffer.from(buf.subarray(0, before.keepalive(buf, 0, 25, key)));
    expect(rx.receive(old, 0, old.length, 0, key)).toBe(DropReason.None);
    // The peer restarts after its clock was stepped back by a day (a bad RTC, an NTP correction).
    vi.setSystemTime(new Date('2026-05-31T12:00:00Z'));
    const after = new ControlSender(0x1234);
    for (let i = 0; i < 3; i++) {
      const n = after.keepalive(buf, 0, 25, key);
      expect(new ControlMessage(buf, 0, n).counter).toBeLessThan(new ControlMessage(old, 0, old.length).counter);
      expect(rx.receive(buf, 0, n, 0, key)).toBe(DropReason.None);
    }
    // What is still a replay: the message of the epoch it replaced, and one of this epoch again.
    expect(rx.receive(old, 0, old.length, 0, key)).toBe(DropReason.ReplayedMessage);
    expect(rx.receive(buf, 0, controlLength(KEEPALIVE_BODY_LEN, true), 0, key)).toBe(DropReason.ReplayedMessage);
  });

  it('within one start the counter never goes back, even when the clock does', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-06-01T12:00:00Z'));
    const c = new ControlCounter();
    const a = c.next();
    vi.setSystemTime(new Date('2026-05-01T12:00:00Z'));
    expect(c.next()).toBe(a + 1);
  });

  it(`refuses the last ${RETIRED_EPOCHS} replaced epochs of a peer; forgets them with its state`, () => {
    const rx = new ControlReceiver(1, 0x9999);
    const captured: Buffer[] = [];
    for (let boot = 0; boot <= RETIRED_EPOCHS + 1; boot++) {
      const s = new ControlSender(0x1234, new ControlCounter(1000), 0x100 + boot);
      const n = s.keepalive(buf, 0, 25, key);
      captured.push(Buffer.from(buf.subarray(0, n)));
      expect(rx.receive(buf, 0, n, 0, key)).toBe(DropReason.None);
    }
    // boots 1..RETIRED_EPOCHS are remembered as retired; boot 0 fell out of the ring
    for (let boot = 1; boot <= RETIRED_EPOCHS; boot++) expect(rx.receive(captured[boot]!, 0, captured[boot]!.length, 0, key)).toBe(DropReason.ReplayedMessage);
    expect(rx.receive(captured[0]!, 0, captured[0]!.length, 0, key)).toBe(DropReason.None);
    rx.reset(0);
    expect(rx.receive(captured[3]!, 0, captured[3]!.length, 0, key)).toBe(DropReason.None);
  });

  it('a keyless peer: a spoofed counter 2^64-1 does not silence the real peer (no replay state without a MAC)', () => {
    const rx = new ControlReceiver(1, 0x9999);
    const real = new ControlSender(0x1234);
    let n = real.keepalive(buf, 0, 25, null);
    expect(rx.receive(buf, 0, n, 0, null)).toBe(DropReason.None);
    // The spoof: same sender id and epoch as the real peer, counter 2^64-1, from the peer's address.
    const spoof = Buffer.from(buf.subarray(0, n));
    spoof.fill(0xff, 12, 20);
    expect(new ControlMessage(spoof, 0, n).counterHi).toBe(0xffffffff);
    expect(rx.receive(spoof, 0, n, 0, null)).toBe(DropReason.None);
    for (let i = 0; i < 3; i++) {
      n = real.keepalive(buf, 0, 25, null);
      expect(rx.receive(buf, 0, n, 0, null)).toBe(DropReason.None);
    }
    // With a key, the same spoof cannot authenticate and moves nothing.
    const keyed = new ControlReceiver(1, 0x9999);
    n = real.keepalive(buf, 0, 25, key);
    const spoofKeyed = Buffer.from(buf.subarray(0, n));
    expect(keyed.receive(buf, 0, n, 0, key)).toBe(DropReason.None);
    spoofKeyed.fill(0xff, 12, 20);
    expect(keyed.receive(spoofKeyed, 0, n, 0, key)).toBe(DropReason.BadAuthentication);
    n = real.keepalive(buf, 0, 25, key);
    expect(keyed.receive(buf, 0, n, 0, key)).toBe(DropReason.None);
  });
});

describe('ReplayWindow (keepalives and mobility messages share it)', () => {
  it('orders full 64-bit counters by their halves: duplicate, old, fresh; grows on demand', () => {
    const w = new ReplayWindow(1);
    expect(w.check(0, 0, 5, 7)).toBe(ReplayVerdict.Fresh);
    w.accept(0, 0, 5, 7);
    expect(w.check(0, 0, 5, 7)).toBe(ReplayVerdict.Duplicate);
    expect(w.check(0, 0, 5, 6)).toBe(ReplayVerdict.Old);
    expect(w.check(0, 0, 4, 0xffffffff)).toBe(ReplayVerdict.Old); // the high half decides first
    expect(w.check(0, 0, 6, 0)).toBe(ReplayVerdict.Fresh);
    expect(w.isFresh(0, 0, 5, 7)).toBe(false);
    expect(w.lastAccepted(0)).toBe(5 * 2 ** 32 + 7);
    w.accept(9, 0, 1, 1); // beyond the initial size
    expect(w.check(9, 0, 1, 1)).toBe(ReplayVerdict.Duplicate);
    expect(w.check(3, 0, 0, 0)).toBe(ReplayVerdict.Fresh);
    w.reset(0);
    expect(w.check(0, 0, 0, 1)).toBe(ReplayVerdict.Fresh);
  });

  it('without a window a counter from any time is fresh; with one, far from our clock is stale', () => {
    const now = 1_767_225_600_000;
    expect(new ReplayWindow(1).checkCounter(0, 1, now)).toBe(ReplayVerdict.Fresh);
    const w = new ReplayWindow(1, 1000);
    expect(w.checkCounter(0, (now - 1001) * 1000, now)).toBe(ReplayVerdict.Stale);
    expect(w.checkCounter(0, (now + 999) * 1000, now)).toBe(ReplayVerdict.Fresh);
    // an old counter is Old before it is Stale (we still remember the sender)
    w.acceptCounter(0, now * 1000);
    expect(w.checkCounter(0, (now - 5000) * 1000, now)).toBe(ReplayVerdict.Old);
  });

  it('epochs: a new one is a restart (fresh whatever its counter), a retired one is old, the window still applies', () => {
    const now = 1_767_225_600_000;
    const w = new ReplayWindow(1, 60_000);
    const c = now * 1000;
    w.accept(0, 7, Math.floor(c / 2 ** 32), c >>> 0);
    const lower = c - 5_000_000; // the restarted sender's clock was 5 s behind
    expect(w.check(0, 8, Math.floor(lower / 2 ** 32), lower >>> 0, now)).toBe(ReplayVerdict.Fresh);
    w.accept(0, 8, Math.floor(lower / 2 ** 32), lower >>> 0);
    expect(w.check(0, 7, Math.floor(c / 2 ** 32), (c + 1) >>> 0, now)).toBe(ReplayVerdict.Old); // retired
    const far = (now - 120_000) * 1000;
    expect(w.check(0, 9, Math.floor(far / 2 ** 32), far >>> 0, now)).toBe(ReplayVerdict.Stale);
  });
});
