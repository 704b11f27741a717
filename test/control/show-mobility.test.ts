/** Golden output of the mobility sections of `ipferry show` (the mipdiag -c / -l / -s layouts). */
import { describe, expect, it } from 'vitest';
import { selectSnapshot } from '../../src/control/control-socket.ts';
import { formatShow } from '../../src/control/show-format.ts';
import type { Snapshot } from '../../src/endpoint/snapshot.ts';
import { fakeSnapshot, NOW } from './fake-snapshot.ts';

const counters: Record<string, number> = {};
for (const k of [
  'NEncapsulations', 'NDecapsulations', 'NBindUpdatesRcvd', 'NBindAcksRcvd', 'NBindNAcksRcvd', 'NBindRqsRcvd', 'NBindUpdatesSent',
  'NBindAcksSent', 'NBindNAcksSent', 'NBindRqsSent', 'NBindUpdatesDropAuth', 'NBindUpdatesDropInvalid', 'NBindUpdatesDropMisc',
  'NBindAcksDropAuth', 'NBindAcksDropInvalid', 'NBindAcksDropMisc', 'NBindRqsDropAuth', 'NBindRqsDropInvalid', 'NBindRqsDropMisc',
  'NBindUpdatesBadMac', 'NHandovers',
]) counters[k] = 0;
Object.assign(counters, { NEncapsulations: 56, NDecapsulations: 25, NBindAcksRcvd: 1, NBindUpdatesSent: 1, NBindUpdatesBadMac: 0, NHandovers: 2 });

function mobileSnapshot(): Snapshot {
  const s = fakeSnapshot();
  s.stats.mobility = {
    counters,
    mipdiag: 19,
    handoverGaps: { boundsMs: [5, 10, 20], counts: [1, 0, 1, 0], count: 2, medianMs: 3, p95Ms: 14, maxMs: 14 },
  };
  s.mobility = {
    roles: ['home-agent', 'mobile-node'],
    bindings: [
      {
        type: 'home', node: 'laptop', home: '10.77.0.5', careOf: '198.51.100.10:6080', claimedCareOf: '198.51.100.10:6080', nat: false,
        lifetime: 600, remaining: 571, sequence: 1234, state: 'registered', bicastTo: null, registeredAt: NOW - 60_000, lastUpdate: NOW - 29_000, updates: 3,
      },
      {
        type: 'home', node: 'phone', home: '10.77.0.6', careOf: '192.0.2.1:40001', claimedCareOf: '100.64.2.10:6080', nat: true,
        lifetime: 600, remaining: 12, sequence: 7, state: 'bicasting', bicastTo: '203.0.113.10:6080', registeredAt: NOW - 1000, lastUpdate: NOW - 100, updates: 1,
      },
    ],
    node: 'laptop',
    careOf: '198.51.100.10:6080',
    atHome: false,
    bindingUpdates: [
      {
        recipient: 'home agent', recipientAddress: '192.0.2.2:6080', homeAgent: true, home: '10.77.0.5', careOf: '198.51.100.10:6080',
        expires: 571, sequence: 1234, state: 'registered', delay: 1, maxDelay: 32, callbackTime: 300, lastStatus: 0, observed: '198.51.100.10:6080',
        nat: false, retransmissions: 0,
      },
    ],
    handovers: [
      { role: 'mobile-node', node: 'laptop', from: '203.0.113.10:6080', to: '198.51.100.10:6080', gapMs: 3, detectedAt: NOW - 2003, detection: 'netlink', at: NOW - 2000, nat: false },
    ],
  };
  return s;
}

describe('show: mobility sections', () => {
  it('bindings, in the mipdiag -c layout', () => {
    expect(formatShow(selectSnapshot(mobileSnapshot(), 'bindings'), 'bindings', { now: NOW })).toBe(
      `binding cache (ferry0: home-agent, mobile-node):
  Home Address  Care-of Address     Lifetime  Sequence  Type  State
  10.77.0.5     198.51.100.10:6080  571       1234      home  registered [laptop]
  10.77.0.6     192.0.2.1:40001     12        7         home  bicasting NAT (claims 100.64.2.10:6080) to 203.0.113.10:6080 [phone]
`,
    );
    // an endpoint without the role says so
    expect(formatShow(selectSnapshot(fakeSnapshot(), 'bindings'), 'bindings')).toBe(
      'binding cache (ferry0: no mobility role):\n  (not a home agent or correspondent: see mobility.homeAgent / mobility.correspondent)\n',
    );
  });

  it('binding-updates, in the mipdiag -l layout, with the recent handovers', () => {
    expect(formatShow(selectSnapshot(mobileSnapshot(), 'binding-updates'), 'binding-updates', { now: NOW })).toBe(
      `binding update list (mobile node laptop, care-of 198.51.100.10:6080):
Recipient HA: 192.0.2.2:6080 (home agent)
BINDING home address: 10.77.0.5 care-of address: 198.51.100.10:6080
expires: 571 sequence: 1234 state: registered status: 0
delay: 1 max delay 32 callback time: 300 retransmissions: 0
handovers (last 1):
  11:59:58.000 handover 203.0.113.10:6080 -> 198.51.100.10:6080: 3 ms (noticed by netlink)
`,
    );
  });

  it('stats: every mipdiag -s counter, ours when non-zero, the handover-gap histogram', () => {
    const text = formatShow(selectSnapshot(mobileSnapshot(), 'stats'), 'stats', { now: NOW });
    const part = text.slice(text.indexOf('  mobility (mipdiag -s):'));
    expect(part).toBe(
      `  mobility (mipdiag -s):
    NEncapsulations         : 56
    NDecapsulations         : 25
    NBindUpdatesRcvd        : 0
    NBindAcksRcvd           : 1
    NBindNAcksRcvd          : 0
    NBindRqsRcvd            : 0
    NBindUpdatesSent        : 1
    NBindAcksSent           : 0
    NBindNAcksSent          : 0
    NBindRqsSent            : 0
    NBindUpdatesDropAuth    : 0
    NBindUpdatesDropInvalid : 0
    NBindUpdatesDropMisc    : 0
    NBindAcksDropAuth       : 0
    NBindAcksDropInvalid    : 0
    NBindAcksDropMisc       : 0
    NBindRqsDropAuth        : 0
    NBindRqsDropInvalid     : 0
    NBindRqsDropMisc        : 0
    NHandovers              : 2
  handover gaps: 2, median 3 ms, p95 14 ms, max 14 ms
    <=5 ms: 1, <=10 ms: 0, <=20 ms: 1, >20 ms: 0
`,
    );
  });

  it('--json selects the same parts', () => {
    const b = selectSnapshot(mobileSnapshot(), 'bindings');
    expect(Object.keys(b)).toEqual(['interface', 'pid', 'mobility']);
    expect(Object.keys(b.mobility!)).toEqual(['roles', 'bindings']);
    const u = selectSnapshot(mobileSnapshot(), 'binding-updates');
    expect(Object.keys(u.mobility!)).toEqual(['roles', 'node', 'careOf', 'atHome', 'bindingUpdates', 'handovers']);
    // peers / stats keep their shape (the mobility part is not in peers)
    expect(Object.keys(selectSnapshot(mobileSnapshot(), 'peers'))).not.toContain('mobility');
  });
});
