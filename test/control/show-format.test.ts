import { describe, expect, it } from 'vitest';
import { formatAgo, formatBytes, formatDuration, formatShow, formatShowJson } from '../../src/control/show-format.ts';
import { selectSnapshot } from '../../src/control/control-socket.ts';
import { fakeSnapshot, NOW } from './fake-snapshot.ts';

const s = fakeSnapshot();

describe('show formatting (golden)', () => {
  it('peers, like wg show', () => {
    expect(formatShow(selectSnapshot(s, 'peers'), 'peers', { now: NOW })).toBe(
      `interface: ferry0
  listening: 203.0.113.10:6080
  pid: 4242
  device: kernel TUN
  mtu: 1400
  address: 10.0.0.1/30, fd00::1/64
  stack: 10.0.0.254/32
  hub: off

peer: shanghai
  endpoint: 203.0.113.20:6080
  routes: 192.168.20.0/24, fd00:20::/64
  last packet: 3 seconds ago
  last sent: 1 second ago
  transfer: 1.21 MiB received, 3.40 MiB sent
  packets: 1000 received, 2000 sent, 3 dropped
  mtu: 1400
  keepalive: every 25 seconds

peer: guangzhou (down)
  endpoint: [2001:db8::30]:6080
  routes: (none)
  last packet: never
  last sent: 1 hour, 2 minutes, 3 seconds ago
  transfer: 0 B received, 60 B sent
  packets: 0 received, 1 sent, 0 dropped
`,
    );
  });

  it('routes in ip route syntax with use counters', () => {
    expect(formatShow(selectSnapshot(s, 'routes'), 'routes', { now: NOW })).toBe(
      `192.168.20.0/24 dev shanghai  uses 1234
unreachable 10.99.0.0/16      uses 7
`,
    );
    expect(formatShow({ interface: 'x', routes: [] }, 'routes')).toBe('(no routes)\n');
  });

  it('stats with per-reason drops and pool slots', () => {
    expect(formatShow(selectSnapshot(s, 'stats'), 'stats', { now: NOW })).toBe(
      `interface: ferry0 (pid 4242)
  uptime: 1 day, 1 hour, 1 minute, 1 second
  tun: 2000 packets (3.40 MiB) received, 1000 packets (1.21 MiB) sent
  udp: 1001 packets (1.21 MiB) received, 2001 packets (3.40 MiB) sent
  forwarded: 0
  icmp errors sent: 4
  pool: 12 live of 4096 slots, exhausted 0 times
  drops: 12
    NoRoute           5
    UnknownPeer       5
    SourceNotAllowed  2
`,
    );
  });

  it('all: interface, peers, routes, stats', () => {
    const out = formatShow(s, 'all', { now: NOW });
    expect(out).toContain('peer: shanghai\n');
    expect(out).toContain('\n\nroutes:\n  192.168.20.0/24 dev shanghai  uses 1234\n');
    expect(out).toContain('\n\nstats:\n  uptime: 1 day, 1 hour, 1 minute, 1 second\n');
    expect(out).toContain('\n  drops: 12\n    NoRoute           5\n');
    expect(out.endsWith('\n')).toBe(true);
    expect(out.endsWith('\n\n')).toBe(false);
  });

  it('--json is the data itself', () => {
    expect(JSON.parse(formatShowJson(s))).toEqual(s);
  });
});

describe('units', () => {
  it('durations and ages', () => {
    expect(formatDuration(0)).toBe('0 seconds');
    expect(formatDuration(61_000)).toBe('1 minute, 1 second');
    expect(formatDuration(2 * 86400_000 + 7_000)).toBe('2 days, 7 seconds');
    expect(formatAgo(null, NOW)).toBe('never');
    expect(formatAgo(NOW - 200, NOW)).toBe('just now');
    expect(formatAgo(NOW + 5000, NOW)).toBe('just now'); // clock skew: never "-5 seconds"
  });
  it('bytes like wg', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1024)).toBe('1.00 KiB');
    expect(formatBytes(1.5 * 1024 ** 3)).toBe('1.50 GiB');
  });
});
