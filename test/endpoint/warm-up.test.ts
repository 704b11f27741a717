import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/config.ts';
import { Endpoint } from '../../src/endpoint/endpoint.ts';
import { exercisePipeline } from '../../src/endpoint/warm-up.ts';

describe('JIT warm-up', () => {
  it('pushes the packet mix through a throwaway pipeline without drops, and returns every slot', () => {
    const cfg = parseConfig({
      interface: { name: 'ferry0', address: ['10.0.0.1/30', 'fd00::1/64'], mtu: 1400 },
      listen: '127.0.0.1:6080',
      peers: [{ name: 'shanghai', endpoint: '127.0.0.1:6081', routes: ['192.168.20.0/24', 'fd00:20::/64'] }],
    });
    const t = new Endpoint(cfg, { poolSlots: { small: 64, large: 2 }, warmUp: 0 });
    const n = exercisePipeline(t.pipeline, t.pools, cfg, 2400);
    expect(n).toBe(2400); // 12 kinds x 200 rounds
    expect(t.drops.toJSON()).toEqual({});
    expect(t.peers[0]!.txPackets).toBe(1200);
    expect(t.peers[0]!.rxPackets).toBe(1200);
    expect(t.pools.live).toBe(0);
    expect(t.pipeline.device).toBeNull();
  });
});
