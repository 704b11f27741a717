/**
 * Binding refresh requests (ctype 133): the home agent answers a node's authenticated keepalive
 * from an address the node has no binding at with a signed request, and the node re-registers at
 * once. The home agent-restart case end to end, on fake clocks and a recording wire.
 */
import { describe, expect, it } from 'vitest';
import { HomeAgent } from '../../src/mobility/home-agent.ts';
import { MobilityVerdict } from '../../src/mobility/io.ts';
import { MobileNode } from '../../src/mobility/mobile-node.ts';
import { MobilityCounter as C } from '../../src/mobility/stats.ts';
import { ControlCounter, ControlSender } from '../../src/tunnel/control.ts';
import { CTYPE_BINDING_REFRESH, emitRefreshRequest, refreshRequestLength } from '../../src/wire/binding.ts';
import { ControlMessage, controlLength, KEEPALIVE_BODY_LEN, senderIdFromName } from '../../src/wire/gue.ts';
import { fakeIo, key, sock4, v4 } from './harness.ts';

const HOME = { family: 4 as const, bytes: v4('10.77.0.5') };
const HA_ADDR = sock4('192.0.2.2', 6080);
const WIFI = sock4('198.51.100.10', 6080);
const KEY = key(1);
const PREFIX = { family: 4 as const, bytes: v4('10.77.0.0'), length: 24 };

function world() {
  const io = fakeIo(3);
  const makeHa = () => new HomeAgent({ name: 'ha', homePrefixes: [PREFIX], nodes: [{ name: 'mn', home: HOME, key: KEY }], maxBindings: 4 }, io);
  let ha = makeHa();
  const counter = new ControlCounter(io.clock);
  const mn = new MobileNode({ name: 'mn', home: HOME, homeAgent: HA_ADDR, key: KEY, counter }, io);
  // the endpoint's keepalives share the node's sender id and counter
  const ka = new ControlSender(senderIdFromName('mn'), counter);
  const keepalive = (k = KEY) => {
    const b = Buffer.alloc(controlLength(KEEPALIVE_BODY_LEN, true));
    return b.subarray(0, ka.keepalive(b, 0, 1, k, io.clock.now()));
  };
  /** Deliver everything sent until the wire is quiet: HA <-> MN. */
  const pump = () => {
    for (let i = 0; i < 20; i++) {
      const out = io.sender.take();
      if (out.length === 0) return;
      for (const s of out) {
        const ctype = new ControlMessage(s.bytes).ctype;
        if (s.to.port === HA_ADDR.port && s.to.bytes[0] === 192) ha.handleUpdate(s.bytes, 0, s.bytes.length, WIFI);
        else {
          expect([130, CTYPE_BINDING_REFRESH]).toContain(ctype);
          mn.handle(s.bytes, 0, s.bytes.length, HA_ADDR);
        }
      }
    }
  };
  return { io, mn, get ha() { return ha; }, restartHa: () => (ha = makeHa()), keepalive, pump };
}

describe('binding refresh request', () => {
  it('after a home agent restart: keepalive -> refresh request -> update -> registered again', () => {
    const w = world();
    w.mn.start(WIFI);
    w.pump();
    expect(w.mn.state()).toBe('registered');
    expect(w.ha.cache.size).toBe(1);
    // the node's keepalive from its bound care-of: nothing to do
    let k = w.keepalive();
    expect(w.ha.handleKeepalive(k, 0, k.length, WIFI)).toBe(MobilityVerdict.Accepted);
    expect(w.io.sender.take()).toEqual([]);

    w.restartHa();
    w.io.clock.advance(700);
    k = w.keepalive();
    expect(w.ha.handleKeepalive(k, 0, k.length, WIFI)).toBe(MobilityVerdict.Accepted);
    expect(w.ha.stats.get(C.NBindRqsSent)).toBe(1);
    expect(w.ha.stats.get(C.NKeepalivesUnbound)).toBe(1);
    const before = w.mn.stats.get(C.NBindUpdatesSent);
    w.pump();
    expect(w.mn.stats.get(C.NBindRqsRcvd)).toBe(1);
    expect(w.mn.stats.get(C.NBindUpdatesSent)).toBe(before + 1);
    expect(w.ha.cache.size).toBe(1);
    expect(w.mn.state()).toBe('registered');
    // the same keepalive again is a replay: no second request
    expect(w.ha.handleKeepalive(k, 0, k.length, WIFI)).toBe(MobilityVerdict.DropReplay);
  });

  it('refuses keepalives no node key signs, and requests within the node rate only', () => {
    const w = world();
    const bad = w.keepalive(key(9));
    expect(w.ha.handleKeepalive(bad, 0, bad.length, WIFI)).toBe(MobilityVerdict.DropAuth);
    expect(w.ha.stats.get(C.NKeepalivesDropped)).toBe(1);
    let sent = 0;
    for (let i = 0; i < 30; i++) {
      const k = w.keepalive();
      if (w.ha.handleKeepalive(k, 0, k.length, WIFI) === MobilityVerdict.Accepted) sent++;
    }
    expect(sent).toBe(10); // the bucket (burst 10, 5/s, no time passed)
    expect(w.ha.stats.get(C.NBindRqsSent)).toBe(10);
  });

  it('the node takes a request only from its home agent key, fresh, for its home address', () => {
    const w = world();
    w.mn.start(WIFI);
    w.pump();
    const brr = (k: Uint8Array, counter: number, home = HOME.bytes) => {
      const r = { homeFamily: 4 as const, home };
      const b = Buffer.alloc(refreshRequestLength(r));
      emitRefreshRequest(b, 0, { senderId: senderIdFromName('ha'), counter }, r, k);
      return b;
    };
    const c = w.io.clock.now() * 1000 + 10_000;
    expect(w.mn.handle(brr(key(2), c), 0, 44, HA_ADDR)).toBe(MobilityVerdict.DropAuth);
    expect(w.mn.handle(brr(KEY, c, v4('10.77.0.6')), 0, 44, HA_ADDR)).toBe(MobilityVerdict.DropInvalid);
    expect(w.mn.handle(brr(KEY, c), 0, 44, HA_ADDR)).toBe(MobilityVerdict.Accepted);
    expect(w.mn.state()).toBe('registering');
    expect(w.mn.handle(brr(KEY, c), 0, 44, HA_ADDR)).toBe(MobilityVerdict.DropReplay);
    expect(w.mn.stats.get(C.NBindRqsDropAuth)).toBe(2);
    expect(w.mn.stats.get(C.NBindRqsDropInvalid)).toBe(1);
    // at home a request changes nothing
    w.pump();
    w.mn.setAtHome(true);
    w.pump();
    expect(w.mn.handle(brr(KEY, c + 5), 0, 44, HA_ADDR)).toBe(MobilityVerdict.DropUnexpected);
  });
});
