import { describe, expect, it } from 'vitest';
import { Correspondent, PathState, type CorrespondentOptions } from '../../src/mobility/correspondent.ts';
import { MobilityVerdict } from '../../src/mobility/io.ts';
import { MobileNode } from '../../src/mobility/mobile-node.ts';
import { MobilityCounter as C } from '../../src/mobility/stats.ts';
import {
  BindingStatus,
  BindingUpdate,
  CTYPE_BINDING_ACK,
  CTYPE_BINDING_UPDATE,
  CTYPE_PATH_CHALLENGE,
  PathProbe,
  bindingUpdateLength,
  emitBindingUpdate,
  emitPathProbe,
  pathProbeLength,
  type BindingUpdateRepr,
  type SocketAddress,
} from '../../src/wire/binding.ts';
import { ControlMessage, senderIdFromName } from '../../src/wire/gue.ts';
import { fakeIo, key, sock4, v4, T0, type Sent } from './harness.ts';

const HOME = { family: 4 as const, bytes: v4('10.77.0.5') };
const HA = sock4('203.0.113.1', 6080);
const CN = sock4('203.0.113.50', 6080);
const WIFI = sock4('192.0.2.10', 40000);
const CELL = sock4('198.51.100.20', 51000);
const HA_KEY = key(1);
const CN_KEY = key(5);

function setup(opts: Partial<CorrespondentOptions> = {}, ro = true) {
  const io = fakeIo(11);
  const log: string[] = [];
  const cn = new Correspondent(
    { name: 'cn', nodes: [{ name: 'mn-a', home: HOME, key: CN_KEY, routeOptimisation: ro }], maxBindings: 8, probeSize: 1200, ...opts },
    io,
    { direct: (n) => log.push(`direct ${n}`), viaHomeAgent: (n, why) => log.push(`via-ha ${n} ${why}`) },
  );
  let counter = T0 * 1000;
  const bu = (seq: number, x: { padTo?: number; careOf?: SocketAddress; h?: boolean; r?: boolean; lifetime?: number } = {}) => {
    const r: BindingUpdateRepr = {
      sequence: seq, lifetime: x.lifetime ?? 120, ackRequested: true, homeRegistration: x.h ?? false, routeOptimisation: x.r ?? true,
      homeFamily: 4, home: HOME.bytes, careOf: x.careOf ?? WIFI, padding: 0,
    };
    if (x.padTo) r.padding = x.padTo - bindingUpdateLength(r);
    const out = Buffer.alloc(bindingUpdateLength(r));
    counter = Math.max(counter + 1, io.clock.now() * 1000);
    emitBindingUpdate(out, 0, { senderId: senderIdFromName('mn-a'), counter }, r, CN_KEY);
    return out;
  };
  const respond = (challenge: Sent, k = CN_KEY, dataFlip = false) => {
    const m = new ControlMessage(challenge.bytes);
    const p = new PathProbe(challenge.bytes, m.bodyOffset, m.bodyLength).parse();
    if (dataFlip) p.data[0]! ^= 1;
    const out = Buffer.alloc(pathProbeLength(p));
    counter = Math.max(counter + 1, io.clock.now() * 1000);
    emitPathProbe(out, 0, true, { senderId: senderIdFromName('mn-a'), counter }, p, k);
    return out;
  };
  const sent = () => io.sender.take().map((s) => ({ ...s, ctype: new ControlMessage(s.bytes).ctype }));
  return { io, cn, bu, respond, sent, log, clock: io.clock };
}

describe('route optimisation: correspondent', () => {
  it('validates the care-of with a padded challenge before going direct (1 RTT)', () => {
    const { cn, bu, respond, sent, log, clock } = setup();
    const m = bu(1, { padTo: 400 });
    expect(cn.handleUpdate(m, 0, m.length, WIFI)).toBe(MobilityVerdict.Accepted);
    const out = sent();
    expect(out.map((s) => s.ctype)).toEqual([CTYPE_BINDING_ACK, CTYPE_PATH_CHALLENGE]);
    const challenge = out[1]!;
    expect(challenge.to).toEqual(WIFI);
    expect(challenge.bytes.length).toBe(1200); // 3 x 400 received allows the full probe
    expect(cn.isDirect(0)).toBe(false);
    expect(cn.pathState(0)).toBe(PathState.Validating);
    clock.advance(30);
    const r = respond(challenge);
    expect(cn.handleResponse(r, 0, r.length, WIFI)).toBe(MobilityVerdict.Accepted);
    expect(cn.isDirect(0)).toBe(true);
    expect(cn.probedSize[0]).toBe(1200);
    expect(log).toEqual(['direct 0']);
    expect(cn.stats.get(C.NPathValidated)).toBe(1);
  });

  it('never sends more than 3x what it received to an unvalidated address', () => {
    const { cn, bu, sent } = setup();
    const m = bu(1); // 52 bytes, unpadded: budget 156, less than a 1200-byte probe
    cn.handleUpdate(m, 0, m.length, WIFI);
    const out = sent();
    const challenge = out.find((s) => s.ctype === CTYPE_PATH_CHALLENGE)!;
    expect(challenge.bytes.length).toBe(3 * 52);
    expect(cn.probedSize[0]).toBe(156);
    // nothing more may go there until more arrives
    expect(cn.allowToCareOf(0, 1)).toBe(false);
    cn.noteReceived(0, 100);
    expect(cn.allowToCareOf(0, 300)).toBe(true);
    expect(cn.allowToCareOf(0, 1)).toBe(false);
    expect(cn.stats.get(C.NAmplificationLimited)).toBe(2);
  });

  it('refuses a response with the wrong data, from another address, with a bad key, or replayed', () => {
    const { cn, bu, respond, sent, clock } = setup();
    const m = bu(1, { padTo: 400 });
    cn.handleUpdate(m, 0, m.length, WIFI);
    const challenge = sent()[1]!;
    clock.advance(10);
    const wrongData = respond(challenge, CN_KEY, true);
    expect(cn.handleResponse(wrongData, 0, wrongData.length, WIFI)).toBe(MobilityVerdict.DropUnexpected);
    const r = respond(challenge);
    expect(cn.handleResponse(r, 0, r.length, CELL)).toBe(MobilityVerdict.DropUnexpected);
    const forged = respond(challenge, key(77));
    expect(cn.handleResponse(forged, 0, forged.length, WIFI)).toBe(MobilityVerdict.DropAuth);
    expect(cn.handleResponse(r, 0, r.length, WIFI)).toBe(MobilityVerdict.DropReplay); // its counter was accepted above
    expect(cn.isDirect(0)).toBe(false);
    const good = respond(challenge);
    expect(cn.handleResponse(good, 0, good.length, WIFI)).toBe(MobilityVerdict.Accepted);
  });

  it('retries the challenge with doubling waits, then falls back to the home agent', () => {
    const { cn, bu, sent, log, clock } = setup({ challengeAttempts: 3, challengeTimeoutMs: 1000 });
    const m = bu(1, { padTo: 1200 });
    cn.handleUpdate(m, 0, m.length, WIFI);
    const times: number[] = [];
    for (let i = 0; i < 10; i++) {
      const due = cn.tick();
      if (due === Infinity) break;
      clock.t = due;
    }
    for (const s of sent()) if (s.ctype === CTYPE_PATH_CHALLENGE) times.push(s.at - T0);
    expect(times).toEqual([0, 1000, 3000]);
    expect(cn.pathState(0)).toBe(PathState.Off);
    expect(cn.stats.get(C.NPathFailed)).toBe(1);
    expect(log).toEqual(['via-ha 0 path-failed']);
    // the node's next refresh tries again
    clock.advance(1000);
    const m2 = bu(2, { padTo: 1200 });
    cn.handleUpdate(m2, 0, m2.length, WIFI);
    expect(sent().filter((s) => s.ctype === CTYPE_PATH_CHALLENGE).length).toBe(1);
  });

  it('falls back on expiry, on a move (until the new path validates) and on pathFailed()', () => {
    const { cn, bu, respond, sent, log, clock } = setup();
    const validate = (seq: number, at: SocketAddress) => {
      const m = bu(seq, { padTo: 400, careOf: at });
      cn.handleUpdate(m, 0, m.length, at);
      const c = sent().find((s) => s.ctype === CTYPE_PATH_CHALLENGE)!;
      const r = respond(c);
      return cn.handleResponse(r, 0, r.length, at);
    };
    expect(validate(1, WIFI)).toBe(MobilityVerdict.Accepted);
    clock.advance(1000);
    expect(validate(2, CELL)).toBe(MobilityVerdict.Accepted);
    cn.pathFailed(0);
    expect(cn.pathState(0)).toBe(PathState.Validating);
    const c = sent().find((s) => s.ctype === CTYPE_PATH_CHALLENGE)!;
    expect(c.to).toEqual(CELL);
    const r = respond(c);
    cn.handleResponse(r, 0, r.length, CELL);
    clock.advance(121_000);
    cn.tick();
    expect(cn.isDirect(0)).toBe(false);
    expect(log).toEqual(['direct 0', 'via-ha 0 moved', 'direct 0', 'via-ha 0 path-failed', 'direct 0', 'via-ha 0 expired']);
  });

  it('is off by default per node (129), and refuses home registrations (131)', () => {
    const off = setup({}, false);
    const m = off.bu(1);
    expect(off.cn.handleUpdate(m, 0, m.length, WIFI)).toBe(MobilityVerdict.Rejected);
    expect(off.cn.lastStatus).toBe(BindingStatus.AdministrativelyProhibited);
    const { cn, bu } = setup();
    const noR = bu(1, { r: false });
    expect(cn.handleUpdate(noR, 0, noR.length, WIFI)).toBe(MobilityVerdict.Rejected);
    expect(cn.lastStatus).toBe(BindingStatus.AdministrativelyProhibited);
    const h = bu(2, { h: true });
    expect(cn.handleUpdate(h, 0, h.length, WIFI)).toBe(MobilityVerdict.Rejected);
    expect(cn.lastStatus).toBe(BindingStatus.HomeRegistrationNotSupported);
    expect(cn.cache.size).toBe(0);
  });
});

describe('route optimisation: mobile node and correspondent together', () => {
  it('the node registers with its home agent and the correspondent, answers the challenge, the correspondent goes direct', () => {
    const io = fakeIo(5);
    const wire: { bytes: Buffer; to: SocketAddress; from: SocketAddress }[] = [];
    let at = WIFI;
    const mnIo = { ...io, sender: { send: (b: Buffer, o: number, l: number, to: SocketAddress) => wire.push({ bytes: Buffer.from(b.subarray(o, o + l)), to, from: at }) } };
    const cnIo = { ...io, sender: { send: (b: Buffer, o: number, l: number, to: SocketAddress) => wire.push({ bytes: Buffer.from(b.subarray(o, o + l)), to, from: CN }) } };
    const mn = new MobileNode(
      { name: 'mn-a', home: HOME, homeAgent: HA, key: HA_KEY, routeOptimisation: true, correspondents: [{ name: 'cn', endpoint: CN, key: CN_KEY, padTo: 400 }] },
      mnIo,
    );
    const direct: number[] = [];
    const cn = new Correspondent({ name: 'cn', nodes: [{ name: 'mn-a', home: HOME, key: CN_KEY, routeOptimisation: true }], maxBindings: 4 }, cnIo, {
      direct: (n) => direct.push(n),
    });
    const pump = () => {
      for (let guard = 0; guard < 20 && wire.length; guard++) {
        for (const d of wire.splice(0)) {
          const ctype = new ControlMessage(d.bytes).ctype;
          if (sameAddr(d.to, CN)) {
            if (ctype === CTYPE_BINDING_UPDATE) cn.handleUpdate(d.bytes, 0, d.bytes.length, d.from);
            else cn.handleResponse(d.bytes, 0, d.bytes.length, d.from);
          } else if (sameAddr(d.to, at)) {
            mn.handle(d.bytes, 0, d.bytes.length, d.from);
          } // to the home agent: nobody answers in this test
        }
      }
    };
    mn.start(WIFI);
    const first = wire.map((d) => [d.to.port, d.bytes.length, new BindingUpdate(d.bytes, 20, d.bytes.length - 36).homeRegistration]);
    expect(first).toEqual([[6080, 52, true], [6080, 400, false]]);
    pump();
    expect(mn.state(1)).toBe('registered');
    expect(cn.isDirect(0)).toBe(true);
    expect(direct).toEqual([0]);
    expect(mn.stats.get(C.NPathResponsesSent)).toBe(1);
    expect(mn.state(0)).toBe('registering'); // the home agent never answered
    // the node moves: the correspondent learns the new care-of and validates it again
    at = CELL;
    io.clock.advance(2000);
    mn.underlayChanged(CELL);
    pump();
    expect(cn.bindings()[0]!.careOf.port).toBe(51000);
    expect(cn.isDirect(0)).toBe(true);
    expect(direct).toEqual([0, 0]);
  });
});

function sameAddr(a: SocketAddress, b: SocketAddress): boolean {
  return a.port === b.port && Buffer.from(a.bytes).equals(Buffer.from(b.bytes));
}
