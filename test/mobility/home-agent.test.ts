import { describe, expect, it } from 'vitest';
import { HomeAgent, type HomeAgentOptions } from '../../src/mobility/home-agent.ts';
import { MobilityVerdict } from '../../src/mobility/io.ts';
import type { RegistrarHooks } from '../../src/mobility/registrar.ts';
import { MobilityCounter as C } from '../../src/mobility/stats.ts';
import {
  BindingAck,
  BindingStatus,
  bindingUpdateLength,
  emitBindingUpdate,
  type BindingAckRepr,
  type BindingUpdateRepr,
  type SocketAddress,
} from '../../src/wire/binding.ts';
import { ControlMessage, senderIdFromName } from '../../src/wire/gue.ts';
import { verifyControl } from '../../src/tunnel/control.ts';
import { DropReason } from '../../src/base/drop-reason.ts';
import { FakeClock, fakeIo, key, sock4, v4, T0 } from './harness.ts';

const PREFIX = { family: 4 as const, bytes: v4('10.77.0.0'), length: 16 };
const HOME6 = Uint8Array.from(Buffer.from('fd770000000000000000000000000009', 'hex'));
const NODES = [
  { name: 'mn-a', home: { family: 4 as const, bytes: v4('10.77.0.5') }, key: key(1) },
  { name: 'mn-b', home: { family: 4 as const, bytes: v4('10.77.0.6') }, key: key(2) },
  { name: 'mn-c', home: { family: 4 as const, bytes: v4('10.77.0.7') }, key: key(3) },
  { name: 'mn-6', home: { family: 6 as const, bytes: HOME6 }, key: key(4) },
];
const WIFI = sock4('192.0.2.10', 40000);
const CELL = sock4('198.51.100.20', 51000);

interface BuArgs {
  node?: number;
  seq: number;
  lifetime?: number;
  careOf?: SocketAddress | null;
  home?: Uint8Array;
  homeFamily?: 4 | 6;
  h?: boolean;
  a?: boolean;
  counter?: number;
  keyOverride?: Uint8Array;
  name?: string;
}

let counterBase = T0 * 1000;
function bu(clock: FakeClock, x: BuArgs): Buffer {
  const n = NODES[x.node ?? 0]!;
  const r: BindingUpdateRepr = {
    sequence: x.seq,
    lifetime: x.lifetime ?? 600,
    ackRequested: x.a ?? true,
    homeRegistration: x.h ?? true,
    routeOptimisation: false,
    homeFamily: x.homeFamily ?? n.home.family,
    home: x.home ?? n.home.bytes,
    careOf: x.careOf === undefined ? WIFI : x.careOf,
    padding: 0,
  };
  const out = Buffer.alloc(bindingUpdateLength(r));
  counterBase = Math.max(counterBase + 1, clock.now() * 1000);
  emitBindingUpdate(out, 0, { senderId: senderIdFromName(x.name ?? n.name), counter: x.counter ?? counterBase }, r, x.keyOverride ?? n.key);
  return out;
}

function setup(over: Partial<HomeAgentOptions> = {}, hooks: RegistrarHooks = {}) {
  counterBase = T0 * 1000; // each test's node clock starts again at T0
  const io = fakeIo();
  const ha = new HomeAgent({ name: 'ha', homePrefixes: [PREFIX, { family: 6, bytes: Uint8Array.from(Buffer.from('fd77' + '00'.repeat(14), 'hex')), length: 64 }], nodes: NODES, maxBindings: 10, ...over }, io, hooks);
  const send = (m: Buffer, from: SocketAddress = WIFI) => ha.handleUpdate(m, 0, m.length, from);
  /** The acks sent since the last call, checked and parsed with the node's key. */
  const acks = (): (BindingAckRepr & { to: SocketAddress; bytes: Buffer })[] =>
    io.sender.take().map((s) => {
      const m = new ControlMessage(s.bytes);
      expect(m.senderId).toBe(senderIdFromName('ha'));
      const a = new BindingAck(s.bytes, m.bodyOffset, m.bodyLength);
      expect(a.check()).toBe(DropReason.None);
      const r = a.parse();
      // signed with the key of the node the ack is about
      const node = NODES.findIndex((n) => Buffer.from(n.home.bytes).equals(Buffer.from(r.home)));
      expect(verifyControl(s.bytes, 0, s.bytes.length, NODES[node === -1 ? 0 : node]!.key)).toBe(DropReason.None);
      return { ...r, to: s.to, bytes: s.bytes };
    });
  return { io, ha, send, acks, clock: io.clock };
}

describe('home agent: registration', () => {
  it('accepts a home registration: binding with the observed care-of, route hook, signed ack to the source', () => {
    const added: number[] = [];
    const { ha, send, acks, clock } = setup({}, { bindingAdded: (n) => added.push(n) });
    expect(send(bu(clock, { seq: 10 }))).toBe(MobilityVerdict.Accepted);
    const [a, more] = acks();
    expect(more).toBeUndefined();
    expect(a).toMatchObject({ status: 0, sequence: 10, lifetime: 600, nat: false, retryAfter: 0, to: WIFI });
    expect(a!.observed).toEqual({ ...WIFI, bytes: Uint8Array.from(WIFI.bytes) });
    expect(added).toEqual([0]);
    const slot = ha.bindingForV4(0x0a4d0005);
    expect(slot).toBeGreaterThanOrEqual(0);
    expect(ha.bindingFor(4, v4('10.77.0.5'), 0)).toBe(slot);
    expect(ha.bindingForV4(0x0a4d0006)).toBe(-1);
    expect(ha.cache.describeCareOf(slot)).toBe('192.0.2.10:40000');
    const [row] = ha.bindings();
    expect(row).toMatchObject({ name: 'mn-a', sequence: 10, lifetime: 600, remaining: 600, nat: false, updates: 1, bicastTo: null });
    expect(ha.stats.get(C.NBindUpdatesRcvd)).toBe(1);
    expect(ha.stats.get(C.NBindAcksSent)).toBe(1);
    expect(ha.stats.get(C.NBindingsAdded)).toBe(1);
  });

  it('keeps an IPv6 home address and finds it by bytes', () => {
    const { ha, send, acks, clock } = setup();
    expect(send(bu(clock, { node: 3, seq: 1 }))).toBe(MobilityVerdict.Accepted);
    expect(acks()[0]!.status).toBe(0);
    expect(ha.bindingFor(6, HOME6, 0)).toBeGreaterThanOrEqual(0);
  });

  it('reports a NAT when the observed care-of differs from the claimed one', () => {
    const { ha, send, acks, clock } = setup();
    send(bu(clock, { seq: 1, careOf: sock4('192.168.1.20', 40000) }), CELL);
    const [a] = acks();
    expect(a).toMatchObject({ status: 0, nat: true, to: CELL });
    const [row] = ha.bindings();
    expect(row!.nat).toBe(true);
    expect(row!.claimedCareOf!.port).toBe(40000);
    expect(row!.careOf.port).toBe(51000);
    expect(ha.stats.get(C.NNatDetected)).toBe(1);
  });

  it('caps the lifetime at maxLifetime and expires the binding (route removed)', () => {
    const removed: string[] = [];
    const { ha, send, acks, clock } = setup({ maxLifetime: 60 }, { bindingRemoved: (n, _s, why) => removed.push(`${n}:${why}`) });
    send(bu(clock, { seq: 1, lifetime: 600 }));
    expect(acks()[0]!.lifetime).toBe(60);
    clock.advance(59_999);
    expect(ha.expire()).toBe(T0 + 60_000);
    expect(ha.cache.size).toBe(1);
    clock.advance(1);
    expect(ha.expire()).toBe(Infinity);
    expect(ha.cache.size).toBe(0);
    expect(removed).toEqual(['0:expired']);
    expect(ha.stats.get(C.NBindingsExpired)).toBe(1);
  });

  it('deregisters with lifetime 0 (route removed, ack with lifetime 0)', () => {
    const removed: string[] = [];
    const { ha, send, acks, clock } = setup({}, { bindingRemoved: (n, _s, why) => removed.push(`${n}:${why}`) });
    send(bu(clock, { seq: 1 }));
    acks();
    clock.advance(1000);
    expect(send(bu(clock, { seq: 2, lifetime: 0, careOf: null }))).toBe(MobilityVerdict.Accepted);
    expect(acks()[0]).toMatchObject({ status: 0, lifetime: 0, sequence: 2 });
    expect(ha.cache.size).toBe(0);
    expect(removed).toEqual(['0:deregistered']);
  });

  it('moves to a new care-of: hook, and copies to the old one for bicastMs', () => {
    const moved: number[] = [];
    const { ha, send, acks, clock } = setup({ bicastMs: 300 }, { careOfChanged: (n) => moved.push(n) });
    send(bu(clock, { seq: 1 }));
    clock.advance(5000);
    send(bu(clock, { seq: 2 })); // refresh, same place
    expect(moved).toEqual([]);
    clock.advance(5000);
    send(bu(clock, { seq: 3, careOf: CELL }), CELL);
    expect(moved).toEqual([0]);
    const slot = ha.cache.slotOf(0);
    expect(ha.cache.describeCareOf(slot)).toBe('198.51.100.20:51000');
    expect(ha.cache.bicasting(slot, clock.now())).toBe(true);
    expect(ha.bindings()[0]!.bicastTo!.port).toBe(40000);
    clock.advance(299);
    expect(ha.cache.bicasting(slot, clock.now())).toBe(true);
    clock.advance(1);
    expect(ha.cache.bicasting(slot, clock.now())).toBe(false);
    expect(acks().map((a) => a.status)).toEqual([0, 0, 0]);
    expect(ha.stats.get(C.NCareOfChanges)).toBe(1);
    expect(ha.stats.get(C.NBindingsRefreshed)).toBe(2);
  });

  it('sends no ack when none was asked for and the update was accepted', () => {
    const { send, acks, clock } = setup();
    expect(send(bu(clock, { seq: 1, a: false }))).toBe(MobilityVerdict.Accepted);
    expect(acks()).toEqual([]);
  });
});

describe('home agent: sequence numbers (RFC 6275 9.5.1)', () => {
  it('answers an old sequence with 135 and the last accepted one; the binding stays', () => {
    const { ha, send, acks, clock } = setup();
    send(bu(clock, { seq: 100 }));
    acks();
    clock.advance(10);
    expect(send(bu(clock, { seq: 100, careOf: CELL }), CELL)).toBe(MobilityVerdict.Rejected);
    expect(send(bu(clock, { seq: 99, careOf: CELL }), CELL)).toBe(MobilityVerdict.Rejected);
    const a = acks();
    expect(a.map((x) => [x.status, x.sequence, x.lifetime])).toEqual([[135, 100, 0], [135, 100, 0]]);
    expect(ha.cache.describeCareOf(ha.cache.slotOf(0))).toBe('192.0.2.10:40000');
    expect(ha.stats.get(C.NBindNAcksSent)).toBe(2);
  });

  it('accepts across the wrap (65534 -> 65535 -> 0 -> 1) and up to 32768 ahead, not beyond', () => {
    const { send, acks, clock } = setup();
    for (const s of [65534, 65535, 0, 1]) {
      clock.advance(1000);
      send(bu(clock, { seq: s }));
    }
    expect(acks().map((a) => a.status)).toEqual([0, 0, 0, 0]);
    clock.advance(1000);
    send(bu(clock, { seq: 1 + 0x8001 })); // more than 2^15 ahead = "behind"
    clock.advance(1000);
    send(bu(clock, { seq: 1 + 0x8000 }));
    expect(acks().map((a) => a.status)).toEqual([135, 0]);
  });

  it('takes any sequence for a node without a binding (after expiry or deregistration)', () => {
    const { send, acks, clock } = setup();
    send(bu(clock, { seq: 500 }));
    clock.advance(1000);
    send(bu(clock, { seq: 501, lifetime: 0 }));
    clock.advance(1000);
    send(bu(clock, { seq: 7 }));
    expect(acks().map((a) => [a.status, a.sequence])).toEqual([[0, 500], [0, 501], [0, 7]]);
  });
});

describe('home agent: rejections', () => {
  it('132 outside the home prefixes, 133 inside but not this node, 129 for a correspondent registration', () => {
    const { ha, send, acks, clock } = setup();
    expect(send(bu(clock, { seq: 1, home: v4('10.99.0.5') }))).toBe(MobilityVerdict.Rejected);
    expect(send(bu(clock, { seq: 2, home: v4('10.77.0.6') }))).toBe(MobilityVerdict.Rejected);
    expect(send(bu(clock, { seq: 3, h: false }))).toBe(MobilityVerdict.Rejected);
    expect(acks().map((a) => a.status)).toEqual([BindingStatus.NotHomeSubnet, BindingStatus.NotHomeAgentForThisNode, BindingStatus.AdministrativelyProhibited]);
    expect(ha.cache.size).toBe(0);
  });

  it('answers 130 with retry-after when the cache is full, and takes the node once a binding expired', () => {
    const { ha, send, acks, clock } = setup({ maxBindings: 2, maxLifetime: 120, retryAfterMax: 300 });
    send(bu(clock, { node: 0, seq: 1, lifetime: 120 }));
    clock.advance(30_000);
    send(bu(clock, { node: 1, seq: 1, lifetime: 120 }));
    clock.advance(1000);
    expect(send(bu(clock, { node: 2, seq: 1 }))).toBe(MobilityVerdict.Rejected);
    const a = acks().map((x) => [x.status, x.retryAfter]);
    expect(a).toEqual([[0, 0], [0, 0], [130, 89]]); // node 0 expires 89 s from now
    expect(ha.stats.get(C.NCacheFull)).toBe(1);
    // a refresh of a node that has a binding still works when full
    send(bu(clock, { node: 1, seq: 2, lifetime: 120 }));
    expect(acks()[0]!.status).toBe(0);
    clock.advance(89_000); // node 0 expired: its slot is taken on demand
    expect(send(bu(clock, { node: 2, seq: 2 }))).toBe(MobilityVerdict.Accepted);
    expect(acks().map((x) => x.status)).toEqual([0]);
    expect(ha.cache.slotOf(0)).toBe(-1);
    expect(ha.stats.get(C.NBindingsExpired)).toBe(1);
  });

  it('caps retry-after at retryAfterMax', () => {
    const { send, acks, clock } = setup({ maxBindings: 1, retryAfterMax: 20 });
    send(bu(clock, { node: 0, seq: 1 }));
    send(bu(clock, { node: 1, seq: 1 }));
    expect(acks().map((x) => [x.status, x.retryAfter])).toEqual([[0, 0], [130, 20]]);
  });
});

describe('home agent: authentication and replay', () => {
  it('drops (never answers) a wrong key, an unknown sender, a bit flip, a truncation, a missing MAC', () => {
    const { ha, io, send, clock } = setup();
    expect(send(bu(clock, { seq: 1, keyOverride: key(9) }), CELL)).toBe(MobilityVerdict.DropAuth);
    expect(send(bu(clock, { seq: 1, name: 'mallory' }), CELL)).toBe(MobilityVerdict.DropAuth);
    const good = bu(clock, { seq: 1 });
    for (const i of [0, 5, 12, 22, 30, good.length - 1]) {
      const c = Buffer.from(good);
      c[i]! ^= 0x10;
      expect(send(c, CELL)).not.toBe(MobilityVerdict.Accepted);
    }
    expect(send(good.subarray(0, good.length - 1), CELL)).toBe(MobilityVerdict.DropInvalid);
    const noMac = Buffer.from(good.subarray(0, good.length - 16));
    noMac[5] = 0;
    expect(send(noMac, CELL)).toBe(MobilityVerdict.DropAuth);
    expect(io.sender.take()).toEqual([]);
    expect(ha.cache.size).toBe(0);
    // auth: wrong key, unknown sender, 4 flips in counter/body/MAC, no MAC; invalid: 2 flips in
    // the GUE and control headers (structure), the truncation
    expect(ha.stats.get(C.NBindUpdatesDropAuth)).toBe(7);
    expect(ha.stats.get(C.NBindUpdatesUnknownNode)).toBe(1);
    expect(ha.stats.get(C.NBindUpdatesBadMac)).toBe(6);
    expect(ha.stats.get(C.NBindUpdatesDropInvalid)).toBe(3);
    // the genuine message still works afterwards
    expect(send(good)).toBe(MobilityVerdict.Accepted);
  });

  it('a duplicate from the same address gets the cached ack back byte for byte; from elsewhere it is a replay', () => {
    const { ha, send, acks, clock } = setup();
    const m = bu(clock, { seq: 1 });
    send(m);
    const [first] = acks();
    clock.advance(200);
    expect(send(m)).toBe(MobilityVerdict.Duplicate);
    const [again] = acks();
    expect(again!.bytes.equals(first!.bytes)).toBe(true);
    expect(send(m, CELL)).toBe(MobilityVerdict.DropReplay);
    expect(acks()).toEqual([]);
    expect(ha.stats.get(C.NBindUpdatesDuplicate)).toBe(1);
    expect(ha.stats.get(C.NBindUpdatesReplayed)).toBe(1);
  });

  it('a duplicate of an update that got no ack does not get an older ack', () => {
    const { send, acks, clock } = setup();
    send(bu(clock, { seq: 1 }));
    acks();
    clock.advance(100);
    const quiet = bu(clock, { seq: 2, a: false });
    expect(send(quiet)).toBe(MobilityVerdict.Accepted);
    expect(send(quiet)).toBe(MobilityVerdict.DropReplay);
    expect(acks()).toEqual([]);
  });

  it('a replayed or reordered older update never moves the binding', () => {
    const { ha, send, acks, clock } = setup();
    const atWifi = bu(clock, { seq: 1 });
    clock.advance(1000);
    const atCell = bu(clock, { seq: 2, careOf: CELL });
    send(atWifi);
    send(atCell, CELL);
    expect(send(atWifi)).toBe(MobilityVerdict.DropReplay); // reordered/replayed: older counter
    expect(ha.cache.describeCareOf(ha.cache.slotOf(0))).toBe('198.51.100.20:51000');
    expect(acks().length).toBe(2);
  });

  it('after a home agent restart an old captured update is stale; a restarted node resyncs through 135', () => {
    const first = setup({ freshnessMs: 60_000 });
    const captured = bu(first.clock, { seq: 40 });
    first.send(captured);
    first.clock.advance(30_000);
    first.send(bu(first.clock, { seq: 41 }));
    // the home agent restarts 2 minutes later: no replay state, empty cache
    const clock = first.clock;
    clock.advance(120_000);
    const io2 = fakeIo(2, clock);
    const ha2 = new HomeAgent({ name: 'ha', homePrefixes: [PREFIX], nodes: NODES, maxBindings: 10, freshnessMs: 60_000 }, io2);
    expect(ha2.handleUpdate(captured, 0, captured.length, WIFI)).toBe(MobilityVerdict.DropStale);
    expect(ha2.cache.size).toBe(0);
    expect(io2.sender.take()).toEqual([]);
    // the node itself registers again (fresh counter), any sequence goes without a binding
    expect(ha2.handleUpdate(...args(bu(clock, { seq: 42 })))).toBe(MobilityVerdict.Accepted);
    // the node restarts: its counter is still ahead (clock based), its sequence restarted low
    clock.advance(1000);
    expect(ha2.handleUpdate(...args(bu(clock, { seq: 3 })))).toBe(MobilityVerdict.Rejected);
    const acks = io2.sender.take().map((s) => new BindingAck(s.bytes, 20, s.bytes.length - 36));
    expect(acks.map((a) => [a.status, a.sequence])).toEqual([[0, 42], [135, 42]]);
    clock.advance(100);
    expect(ha2.handleUpdate(...args(bu(clock, { seq: 43 })))).toBe(MobilityVerdict.Accepted);
  });

  it('refuses counters from far in the future (freshness window both ways)', () => {
    const { send, clock } = setup({ freshnessMs: 60_000 });
    expect(send(bu(clock, { seq: 1, counter: (clock.now() + 61_000) * 1000 }))).toBe(MobilityVerdict.DropStale);
    expect(send(bu(clock, { seq: 1, counter: (clock.now() + 59_000) * 1000 }))).toBe(MobilityVerdict.Accepted);
  });

  it('rate-limits each node on its own', () => {
    const { ha, send, clock } = setup({ ratePerSecond: 2, rateBurst: 3 });
    const v: MobilityVerdict[] = [];
    for (let s = 1; s <= 5; s++) v.push(send(bu(clock, { seq: s })));
    expect(v).toEqual([0, 0, 0, MobilityVerdict.DropRate, MobilityVerdict.DropRate]);
    expect(send(bu(clock, { node: 1, seq: 1 }))).toBe(MobilityVerdict.Accepted);
    clock.advance(500); // one token back
    expect(send(bu(clock, { seq: 6 }))).toBe(MobilityVerdict.Accepted);
    expect(send(bu(clock, { seq: 7 }))).toBe(MobilityVerdict.DropRate);
    expect(ha.stats.get(C.NBindUpdatesRateLimited)).toBe(3);
  });

  it('tells apart two nodes whose names share a 32-bit sender id by their keys', () => {
    expect(senderIdFromName('mn18451')).toBe(senderIdFromName('mn35240'));
    const io = fakeIo();
    const nodes = [
      { name: 'mn18451', home: { family: 4 as const, bytes: v4('10.77.1.1') }, key: key(11) },
      { name: 'mn35240', home: { family: 4 as const, bytes: v4('10.77.1.2') }, key: key(12) },
    ];
    const ha = new HomeAgent({ name: 'ha', homePrefixes: [PREFIX], nodes, maxBindings: 4 }, io);
    for (const [i, n] of nodes.entries()) {
      const r: BindingUpdateRepr = { sequence: 1, lifetime: 60, ackRequested: true, homeRegistration: true, routeOptimisation: false, homeFamily: 4, home: n.home.bytes, careOf: WIFI, padding: 0 };
      const out = Buffer.alloc(bindingUpdateLength(r));
      emitBindingUpdate(out, 0, { senderId: senderIdFromName(n.name), counter: T0 * 1000 + i }, r, n.key);
      expect(ha.handleUpdate(out, 0, out.length, WIFI)).toBe(MobilityVerdict.Accepted);
    }
    expect(ha.bindings().map((b) => b.name).sort()).toEqual(['mn18451', 'mn35240']);
  });
});

function args(m: Buffer): [Buffer, number, number, SocketAddress] {
  return [m, 0, m.length, WIFI];
}
