import { describe, expect, it } from 'vitest';
import { RoamDecision, roamDecision, roamDecisionFor } from '../../src/mobility/roaming.ts';
import { sock4 } from './harness.ts';

describe('roaming decision for ordinary peers', () => {
  const cases: [string, boolean, boolean, boolean, boolean, RoamDecision][] = [
    // name, fromCurrent, keyed, authenticated, fresh, decision
    ['anything from the current endpoint', true, false, false, false, RoamDecision.Stay],
    ['keyed peer, authenticated fresh keepalive from a new address', false, true, true, true, RoamDecision.Follow],
    ['keyed peer, data (no MAC) from a new address', false, true, false, false, RoamDecision.Refuse],
    ['keyed peer, bad MAC from a new address', false, true, false, true, RoamDecision.Refuse],
    ['keyed peer, replayed or reordered (authentic, not fresh)', false, true, true, false, RoamDecision.Refuse],
    ['keyless peer, from a new address: pinned', false, false, false, true, RoamDecision.Refuse],
    ['keyless peer, even "authenticated": pinned', false, false, true, true, RoamDecision.Refuse],
  ];
  it.each(cases)('%s', (_name, fromCurrent, keyed, authenticated, fresh, want) => {
    expect(roamDecision(fromCurrent, { keyed, authenticated, fresh })).toBe(want);
  });

  it('compares address and port', () => {
    const cur = sock4('192.0.2.10', 6080);
    const e = { keyed: true, authenticated: true, fresh: true };
    expect(roamDecisionFor(cur, sock4('192.0.2.10', 6080), e)).toBe(RoamDecision.Stay);
    expect(roamDecisionFor(cur, sock4('192.0.2.10', 6081), e)).toBe(RoamDecision.Follow); // NAT rebinding
    expect(roamDecisionFor(cur, sock4('192.0.2.11', 6080), e)).toBe(RoamDecision.Follow);
  });
});
