import { describe, expect, it } from 'vitest';
import { HomeAgent } from '../../src/mobility/home-agent.ts';
import { MobilityVerdict } from '../../src/mobility/io.ts';
import { MobileNode, type MobileNodeOptions, type RegisteredInfo } from '../../src/mobility/mobile-node.ts';
import { MobilityCounter as C } from '../../src/mobility/stats.ts';
import {
  BindingUpdate,
  bindingAckLength,
  emitBindingAck,
  type BindingAckRepr,
  type BindingUpdateRepr,
  type SocketAddress,
} from '../../src/wire/binding.ts';
import { ControlMessage, senderIdFromName } from '../../src/wire/gue.ts';
import { verifyControl } from '../../src/tunnel/control.ts';
import { DropReason } from '../../src/base/drop-reason.ts';
import { fakeIo, key, sock4, v4, T0, type Sent } from './harness.ts';

const HOME = { family: 4 as const, bytes: v4('10.77.0.5') };
const HA = sock4('203.0.113.1', 6080);
const WIFI = sock4('192.0.2.10', 40000);
const CELL = sock4('198.51.100.20', 51000);
const KEY = key(1);

function setup(over: Partial<MobileNodeOptions> = {}, seed = 7) {
  const io = fakeIo(seed);
  const events: string[] = [];
  const infos: RegisteredInfo[] = [];
  const mn = new MobileNode({ name: 'mn-a', home: HOME, homeAgent: HA, key: KEY, lifetime: 600, ...over }, io, {
    registered: (i) => {
      infos.push(i);
      events.push(`registered ${i.recipient}`);
    },
    rejected: (r, s) => events.push(`rejected ${r} ${s}`),
    deregistered: (r) => events.push(`deregistered ${r}`),
  });
  /** Binding updates sent since the last call, verified and parsed. */
  const bus = (): (BindingUpdateRepr & { to: SocketAddress; at: number; counter: number })[] =>
    io.sender.take().map((s: Sent) => {
      expect(verifyControl(s.bytes, 0, s.bytes.length, KEY)).toBe(DropReason.None);
      const m = new ControlMessage(s.bytes);
      expect(m.senderId).toBe(senderIdFromName('mn-a'));
      const v = new BindingUpdate(s.bytes, m.bodyOffset, m.bodyLength);
      expect(v.check()).toBe(DropReason.None);
      return { ...v.parse(), to: s.to, at: s.at, counter: m.counter };
    });
  let haCounter = T0 * 1000;
  /** An ack as the home agent would send it. */
  const ack = (r: Partial<BindingAckRepr> & { sequence: number }, k = KEY, counter?: number) => {
    const full: BindingAckRepr = { status: 0, nat: false, lifetime: 600, retryAfter: 0, homeFamily: 4, home: HOME.bytes, observed: WIFI, ...r };
    const out = Buffer.alloc(bindingAckLength(full));
    haCounter = counter ?? Math.max(haCounter + 1, io.clock.now() * 1000);
    emitBindingAck(out, 0, { senderId: senderIdFromName('ha'), counter: haCounter }, full, k);
    return out;
  };
  const deliver = (m: Buffer, from: SocketAddress = HA) => mn.handle(m, 0, m.length, from);
  /** Run the timers until `ms` have passed (tick at each due time). */
  const run = (ms: number) => {
    const end = io.clock.now() + ms;
    for (let due = mn.nextDue(); due <= end; due = mn.nextDue()) {
      io.clock.t = Math.max(io.clock.t, due);
      mn.tick();
    }
    io.clock.t = end;
  };
  return { io, mn, bus, ack, deliver, run, events, infos, clock: io.clock };
}

describe('mobile node: registration', () => {
  it('sends a binding update at start: A H, lifetime, home and care-of, to the home agent', () => {
    const { mn, bus } = setup();
    mn.start(WIFI);
    const [b, more] = bus();
    expect(more).toBeUndefined();
    expect(b).toMatchObject({ ackRequested: true, homeRegistration: true, routeOptimisation: false, lifetime: 600, to: HA, at: T0 });
    expect(b!.careOf).toEqual({ ...WIFI, bytes: Uint8Array.from(WIFI.bytes) });
    expect(b!.sequence).toBe(((Math.floor(T0 / 1000) & 0xffff) + 1) & 0xffff); // clock-derived start
    expect(mn.state()).toBe('registering');
  });

  it('retransmits until acked: new sequence each time, waits jittered within doubling bounds 1.5 s .. 32 s', () => {
    const { mn, bus, clock } = setup();
    mn.start(WIFI);
    let last = bus()[0]!;
    const bounds = [1500, 3000, 6000, 12_000, 24_000, 32_000, 32_000, 32_000];
    const waits: number[] = [];
    for (const bound of bounds) {
      clock.t = mn.nextDue();
      mn.tick();
      const [b, more] = bus();
      expect(more).toBeUndefined();
      const wait = b!.at - last.at;
      expect(wait).toBeGreaterThanOrEqual(100);
      expect(wait).toBeLessThanOrEqual(bound);
      expect(b!.sequence).toBe((last.sequence + 1) & 0xffff);
      expect(b!.counter).toBeGreaterThan(last.counter);
      waits.push(wait);
      last = b!;
    }
    // jittered: no wait is its bound, and they spread over the range
    expect(waits.filter((w, i) => w === bounds[i]).length).toBe(0);
    expect(new Set(waits.map((w, i) => Math.floor((w / bounds[i]!) * 4))).size).toBeGreaterThan(1);
    expect(mn.list()[0]).toMatchObject({ state: 'registering', delay: 32, maxDelay: 32, retransmissions: 8 });
    expect(mn.stats.get(C.NBindUpdatesRetransmitted)).toBe(8);
  });

  it('is registered on ack 0; refreshes between 50% and 80% of the granted lifetime with the 1 s bound', () => {
    const { mn, bus, ack, deliver, run, events, clock } = setup();
    mn.start(WIFI);
    const b = bus()[0]!;
    clock.advance(40);
    expect(deliver(ack({ sequence: b.sequence, lifetime: 400 }))).toBe(MobilityVerdict.Accepted);
    expect(events).toEqual(['registered 0']);
    expect(mn.state()).toBe('registered');
    const row = mn.list()[0]!;
    expect(row).toMatchObject({ state: 'registered', expires: 399, recipient: 'home agent' });
    run(199_999);
    expect(bus()).toEqual([]);
    run(400_000 * 0.3 + 1);
    const [r, r2] = bus();
    expect(r!.at - T0).toBeGreaterThanOrEqual(200_000);
    expect(r!.at - T0).toBeLessThanOrEqual(320_000);
    expect(r!.sequence).toBe((b.sequence + 1) & 0xffff);
    // not a first registration any more: its retransmission waits at most 1 s
    expect(r2!.at - r!.at).toBeLessThanOrEqual(1000);
  });

  it('re-registers at once when the underlay changes and reports the handover latency', () => {
    const { mn, bus, ack, deliver, infos, clock } = setup();
    mn.start(WIFI);
    deliver(ack({ sequence: bus()[0]!.sequence }));
    clock.advance(10_000);
    mn.underlayChanged(CELL);
    const [b] = bus();
    expect(b!.at).toBe(clock.now());
    expect(b!.careOf!.port).toBe(51000);
    clock.advance(35);
    deliver(ack({ sequence: b!.sequence, observed: CELL }));
    expect(infos[1]).toMatchObject({ recipient: 0, latencyMs: 35, handover: true, nat: false });
    expect(mn.stats.get(C.NHandovers)).toBe(1);
    // the same address again is no handover, and no address at all sends nothing
    mn.underlayChanged(null);
    expect(bus()).toEqual([]);
  });

  it('accepts an ack for any transmission of the current attempt, not for an older attempt', () => {
    const { mn, bus, ack, deliver, run } = setup();
    mn.start(WIFI);
    const first = bus()[0]!;
    run(1500);
    const second = bus()[0]!;
    expect(deliver(ack({ sequence: (first.sequence - 1) & 0xffff }))).toBe(MobilityVerdict.DropUnexpected);
    expect(deliver(ack({ sequence: first.sequence }))).toBe(MobilityVerdict.Accepted); // late ack of the first send
    expect(mn.state()).toBe('registered');
    expect(deliver(ack({ sequence: second.sequence }))).toBe(MobilityVerdict.DropUnexpected); // nothing pending now
    expect(mn.stats.get(C.NBindAcksDropMisc)).toBe(2);
  });

  it('135: takes the home agent sequence + 1 and resends at once', () => {
    const { mn, bus, ack, deliver } = setup();
    mn.start(WIFI);
    bus();
    expect(deliver(ack({ status: 135, sequence: 4242, lifetime: 0 }))).toBe(MobilityVerdict.Rejected);
    const [b] = bus();
    expect(b!.sequence).toBe(4243);
    expect(deliver(ack({ sequence: 4243 }))).toBe(MobilityVerdict.Accepted);
    expect(mn.stats.get(C.NBindNAcksRcvd)).toBe(1);
  });

  it('130: waits between retry-after and twice that, then tries again', () => {
    const { mn, bus, ack, deliver, run, events } = setup();
    mn.start(WIFI);
    const b = bus()[0]!;
    deliver(ack({ status: 130, sequence: b.sequence, lifetime: 0, retryAfter: 20 }));
    expect(events).toEqual(['rejected 0 130']);
    expect(mn.state()).toBe('waiting');
    run(19_999);
    expect(bus()).toEqual([]);
    run(20_002);
    const [again] = bus();
    expect(again!.at - T0).toBeGreaterThanOrEqual(20_000);
    expect(again!.at - T0).toBeLessThanOrEqual(40_000);
  });

  it('133: rejected, tries again later at the cap (jittered)', () => {
    const { mn, bus, ack, deliver, run } = setup();
    mn.start(WIFI);
    deliver(ack({ status: 133, sequence: bus()[0]!.sequence, lifetime: 0 }));
    expect(mn.state()).toBe('rejected');
    run(32_000);
    const [again] = bus();
    expect(again!.at - T0).toBeLessThanOrEqual(32_000);
    expect(mn.list()[0]!.lastStatus).toBe(133);
  });

  it('deregisters (lifetime 0) when home, and registers again when it leaves', () => {
    const { mn, bus, ack, deliver, events, clock } = setup();
    mn.start(WIFI);
    deliver(ack({ sequence: bus()[0]!.sequence }));
    clock.advance(5000);
    mn.setAtHome(true);
    const [d] = bus();
    expect(d).toMatchObject({ lifetime: 0, homeRegistration: true, ackRequested: true });
    deliver(ack({ sequence: d!.sequence, lifetime: 0 }));
    expect(mn.state()).toBe('idle');
    expect(mn.nextDue()).toBe(Infinity);
    clock.advance(5000);
    mn.setAtHome(false, CELL);
    expect(bus()[0]).toMatchObject({ lifetime: 600, careOf: { port: 51000 } });
    expect(events).toEqual(['registered 0', 'deregistered 0']);
  });

  it('on shutdown sends at most shutdownAttempts deregistrations, then is idle', () => {
    const { mn, bus, ack, deliver, run } = setup({ shutdownAttempts: 3 });
    mn.start(WIFI);
    deliver(ack({ sequence: bus()[0]!.sequence }));
    mn.shutdown();
    run(60_000);
    const sent = bus();
    expect(sent.map((b) => b.lifetime)).toEqual([0, 0, 0]);
    expect(mn.idle()).toBe(true);
  });

  it('drops a forged, replayed or reordered ack (registration unchanged)', () => {
    const { mn, bus, ack, deliver, run } = setup();
    mn.start(WIFI);
    const b = bus()[0]!;
    expect(deliver(ack({ sequence: b.sequence }, key(99)))).toBe(MobilityVerdict.DropAuth);
    const good = ack({ sequence: b.sequence });
    const older = ack({ sequence: b.sequence, status: 133 }, KEY, T0 * 1000 - 5); // counter below the good one
    expect(deliver(good)).toBe(MobilityVerdict.Accepted);
    expect(deliver(good)).toBe(MobilityVerdict.DropReplay);
    expect(deliver(older)).toBe(MobilityVerdict.DropReplay);
    const stale = ack({ sequence: b.sequence }, KEY, (T0 - 400_000) * 1000);
    expect(deliver(stale)).toBe(MobilityVerdict.DropReplay); // older than the last accepted anyway
    expect(mn.state()).toBe('registered');
    run(10);
    expect(mn.stats.get(C.NBindAcksDropAuth)).toBe(4);
  });

  it('drops an ack for another home address or a bad body', () => {
    const { mn, bus, ack, deliver } = setup();
    mn.start(WIFI);
    const b = bus()[0]!;
    expect(deliver(ack({ sequence: b.sequence, home: v4('10.77.0.6') }))).toBe(MobilityVerdict.DropInvalid);
    expect(deliver(Buffer.from([0x20, 130, 0, 0]))).toBe(MobilityVerdict.DropInvalid);
    expect(mn.state()).toBe('registering');
  });
});

describe('mobile node against a home agent (in-memory wire, lossy)', () => {
  it('registers through loss, follows moves, deregisters at home; binding cache matches each step', () => {
    const io = fakeIo(3);
    const clock = io.clock;
    const haIo = { ...io, sender: { send: (buf: Buffer, off: number, len: number, to: SocketAddress) => toMn.push([Buffer.from(buf.subarray(off, off + len)), to]) } };
    const toMn: [Buffer, SocketAddress][] = [];
    const toHa: [Buffer, SocketAddress][] = [];
    let where = WIFI;
    const mnIo = { ...io, sender: { send: (buf: Buffer, off: number, len: number) => toHa.push([Buffer.from(buf.subarray(off, off + len)), where]) } };
    const ha = new HomeAgent({ name: 'ha', homePrefixes: [{ family: 4, bytes: v4('10.77.0.0'), length: 16 }], nodes: [{ name: 'mn-a', home: HOME, key: KEY }], maxBindings: 4, bicastMs: 200 }, haIo);
    const mn = new MobileNode({ name: 'mn-a', home: HOME, homeAgent: HA, key: KEY, lifetime: 120 }, mnIo);
    let drop = 2; // lose the first two updates
    const pump = () => {
      for (let guard = 0; guard < 100 && (toHa.length || toMn.length); guard++) {
        for (const [m, from] of toHa.splice(0)) {
          if (drop > 0) {
            drop--;
            continue;
          }
          ha.handleUpdate(m, 0, m.length, from);
        }
        for (const [m] of toMn.splice(0)) mn.handle(m, 0, m.length, HA);
      }
    };
    const runFor = (ms: number) => {
      const end = clock.now() + ms;
      for (;;) {
        pump();
        const due = Math.min(mn.nextDue(), ha.expire());
        if (due > end) break;
        clock.t = Math.max(clock.t, due);
        mn.tick();
      }
      clock.t = end;
      pump();
    };
    mn.start(WIFI);
    runFor(10_000);
    expect(mn.state()).toBe('registered');
    expect(ha.bindings()[0]!.careOf.port).toBe(40000);
    for (const [i, at] of [CELL, WIFI, sock4('203.0.113.77', 6000)].entries()) {
      where = at;
      mn.underlayChanged(at);
      runFor(1000);
      expect(mn.state(), `move ${i}`).toBe('registered');
      expect(ha.bindings()[0]!.careOf.port).toBe(at.port);
    }
    runFor(3_600_000); // an hour of refreshes with lifetime 120 s: never expires
    expect(ha.cache.size).toBe(1);
    expect(ha.stats.get(C.NBindingsExpired)).toBe(0);
    mn.setAtHome(true);
    runFor(5000);
    expect(mn.state()).toBe('idle');
    expect(ha.cache.size).toBe(0);
    expect(ha.stats.get(C.NBindingsDeregistered)).toBe(1);
  });
});
