import type { Snapshot } from '../../src/endpoint/snapshot.ts';

export const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);

export function fakeSnapshot(): Snapshot {
  return {
    interface: 'ferry0',
    listen: '203.0.113.10:6080',
    pid: 4242,
    device: 'tun',
    mtu: 1400,
    addresses: ['10.0.0.1/30', 'fd00::1/64'],
    stackAddresses: ['10.0.0.254/32'],
    hub: false,
    peers: [
      {
        name: 'shanghai',
        endpoint: '203.0.113.20:6080',
        routes: ['192.168.20.0/24', 'fd00:20::/64'],
        lastRx: NOW - 3_000,
        lastTx: NOW - 1_000,
        rxPackets: 1000,
        rxBytes: 1_268_776,
        txPackets: 2000,
        txBytes: 3_565_158,
        drops: 3,
        mtu: 1400,
        keepalive: 25,
        up: true,
      },
      {
        name: 'guangzhou',
        endpoint: '[2001:db8::30]:6080',
        routes: [],
        lastRx: null,
        lastTx: NOW - 3_723_000,
        rxPackets: 0,
        rxBytes: 0,
        txPackets: 1,
        txBytes: 60,
        drops: 0,
        keepalive: null,
        up: false,
      },
    ],
    routes: [
      {
        text: '192.168.20.0/24 dev shanghai',
        uses: 1234,
        json: { dst: '192.168.20.0/24', prefix: '192.168.20.0/24', type: 'unicast', table: 'main', metric: 0, dev: 'shanghai', packets: 1234, bytes: 99 },
      },
      {
        text: 'unreachable 10.99.0.0/16',
        uses: 7,
        json: { dst: '10.99.0.0/16', prefix: '10.99.0.0/16', type: 'unreachable', table: 'main', metric: 0, packets: 7, bytes: 0 },
      },
    ],
    stats: {
      startedAt: NOW - 90_061_000,
      tunRx: { packets: 2000, bytes: 3_565_158 },
      tunTx: { packets: 1000, bytes: 1_268_776 },
      udpRx: { packets: 1001, bytes: 1_268_836 },
      udpTx: { packets: 2001, bytes: 3_565_218 },
      forwarded: 0,
      icmpSent: 4,
      drops: { NoRoute: 5, SourceNotAllowed: 2, UnknownPeer: 5 },
      poolLive: 12,
      poolCapacity: 4096,
      poolExhausted: 0,
    },
  };
}
