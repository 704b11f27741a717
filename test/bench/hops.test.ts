/**
 * Per-hop matching (bench/e2e/hops.ts) on tcpdump -tt -n -i any captured in the gateways during
 * the e2e bench: ipferry on UDP port 6081 (which tcpdump prints as "Geneve ERROR") and OpenVPN on
 * 1194 ("UDP, length 84"), 31 pings each. Oracle: the first echo's delays worked out by hand from
 * the fixture's first lines.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hopDelays } from '../../bench/e2e/hops.ts';

const FIX = join(import.meta.dirname, '../fixtures/bench');
const lines = (name: string): string[] => readFileSync(join(FIX, name), 'utf8').split('\n');

describe('hopDelays', () => {
  it('ipferry gwA: request TUN -> UDP and reply UDP -> TUN for all 31 pings, in microseconds', () => {
    const h = hopDelays(lines('tcpdump-ipferry-port6081-gwA.txt'), { tun: 'ferry1', wan: 'wan0', port: 6081 });
    expect(h.out).toHaveLength(31);
    expect(h.in).toHaveLength(31);
    // 1796518254.552220 ferry1 Out (request) -> .552445 wan0 Out; .552941 wan0 In -> .553189 ferry1 In (reply)
    expect(h.out[0]).toBe(225);
    expect(h.in[0]).toBe(248);
  });

  it('ipferry gwB: the request arrives (UDP -> TUN), the reply leaves (TUN -> UDP)', () => {
    const h = hopDelays(lines('tcpdump-ipferry-port6081-gwB.txt'), { tun: 'ferry1', wan: 'wan0', port: 6081 });
    expect(h.in).toHaveLength(31);
    expect(h.out).toHaveLength(31);
    // .552448 wan0 In -> .552734 ferry1 In; .552773 ferry1 Out -> .552939 wan0 Out
    expect(h.in[0]).toBe(286);
    expect(h.out[0]).toBe(166);
  });

  it('OpenVPN gwA on port 1194 with its own TUN name', () => {
    const h = hopDelays(lines('tcpdump-openvpn-gwA.txt'), { tun: 'ovpn0', wan: 'wan0', port: 1194 });
    expect(h.out).toHaveLength(31);
    expect(h.in).toHaveLength(31);
    expect(h.out[0]).toBe(38); // .551351 -> .551389
    expect(h.in[0]).toBe(14); // .551526 -> .551540
  });

  it('another tunnel\'s device or port matches nothing', () => {
    expect(hopDelays(lines('tcpdump-openvpn-gwA.txt'), { tun: 'ferry1', wan: 'wan0', port: 1194 })).toEqual({ out: [], in: [] });
    expect(hopDelays(lines('tcpdump-ipferry-port6081-gwA.txt'), { tun: 'ferry1', wan: 'wan0', port: 6080 })).toEqual({ out: [], in: [] });
  });
});
