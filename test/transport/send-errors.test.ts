/**
 * UDP send errors (issue 12 point 7b): counted by cause, reported at most once per peer per
 * interval, never thrown; the socket goes on working. The kernel gives the real EMSGSIZE (a
 * datagram over 65,507 bytes) and a real routing error; ENOBUFS and ECONNREFUSED (which Node's
 * unconnected dgram socket never sees: no IP_RECVERR) are fed to the counter directly.
 */
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { PacketPools } from '../../src/base/pool.ts';
import { parseConfig } from '../../src/config/config.ts';
import { Endpoint } from '../../src/endpoint/endpoint.ts';
import { sendErrorLine, SendErrors, type SendErrorReport } from '../../src/transport/send-errors.ts';
import { UdpTransport } from '../../src/transport/udp-transport.ts';

describe('SendErrors', () => {
  it('counts by cause; the first error toward a peer is reported at once, later ones summed into the next report after the interval', () => {
    const reports: SendErrorReport[] = [];
    const e = new SendErrors((r) => reports.push({ ...r }), 10_000);
    e.note(0, 'EMSGSIZE', 1000);
    e.note(0, 'ENOBUFS', 2000);
    e.note(0, 'ENOBUFS', 3000);
    e.note(3, 'ECONNREFUSED', 3000); // another peer: its own report
    e.note(-1, 'EHOSTUNREACH', 3000); // no peer
    expect(reports).toEqual([
      { peer: 0, code: 'EMSGSIZE', count: 1, sinceMs: 0 },
      { peer: 3, code: 'ECONNREFUSED', count: 1, sinceMs: 0 },
      { peer: -1, code: 'EHOSTUNREACH', count: 1, sinceMs: 0 },
    ]);
    e.note(0, 'ENOBUFS', 11_000); // interval over: the two held back and this one
    expect(reports[3]).toEqual({ peer: 0, code: 'ENOBUFS', count: 3, sinceMs: 10_000 });
    for (let t = 0; t < 1000; t++) e.note(0, 'ENOBUFS', 11_001 + t);
    expect(reports).toHaveLength(4);
    expect(e.toJSON()).toEqual({ udpTxENOBUFS: 1003, udpTxEMSGSIZE: 1, udpTxECONNREFUSED: 1, udpTxOtherErrors: 1 });
    expect(e.total).toBe(1006);
    expect(e.reports).toBe(4);
    // a peer index far beyond the first arrays
    e.note(500, 'ENOBUFS', 20_000);
    expect(reports[4]!.peer).toBe(500);
  });

  it('a reporter that throws does not break the sender', () => {
    const e = new SendErrors(() => {
      throw new Error('bad logger');
    });
    expect(() => e.note(0, 'ENOBUFS', 0)).not.toThrow();
    expect(e.enobufs).toBe(1);
  });

  it('the log line names the peer, the cause, and how often it is logged', () => {
    expect(sendErrorLine({ peer: 0, code: 'EMSGSIZE', count: 1, sinceMs: 0 }, 'shanghai (203.0.113.20:6080)', 10_000)).toBe(
      'warning: udp: sending to peer shanghai (203.0.113.20:6080) failed: EMSGSIZE; further send errors toward it are logged at most every 10 s (counted in show stats)',
    );
    expect(sendErrorLine({ peer: 0, code: 'ENOBUFS', count: 42, sinceMs: 12_400 }, 'shanghai (203.0.113.20:6080)', 10_000)).toBe(
      'warning: udp: sending to peer shanghai (203.0.113.20:6080) failed: ENOBUFS (42 send errors toward it in the last 12 s)',
    );
  });
});

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
});

describe('UdpTransport send errors from the kernel', () => {
  it('EMSGSIZE and a routing error: counted, reported once per peer, the socket still delivers', async () => {
    const pools = new PacketPools({ small: { slots: 64 }, large: { slots: 16 } });
    const sink = dgram.createSocket('udp4');
    await new Promise<void>((r) => sink.bind(0, '127.0.0.1', r));
    const got: number[] = [];
    sink.on('message', (m) => got.push(m.length));
    const reports: SendErrorReport[] = [];
    const t = new UdpTransport({ address: '127.0.0.1', port: 0, pools, onBatch: () => {}, onSendErrorReport: (r) => reports.push({ ...r }) });
    await t.start();
    closers.push(async () => {
      await t.close();
      await new Promise<void>((r) => sink.close(() => r()));
      expect(pools.live).toBe(0);
    });
    t.setPeer(0, '127.0.0.1', sink.address().port);
    t.setPeer(1, '192.0.2.1', 6080); // unreachable from a socket bound to 127.0.0.1
    const send = (peer: number, n: number): void => {
      const p = pools.acquire(n)!;
      p.length = n;
      t.send(p, peer);
    };
    for (let i = 0; i < 5; i++) send(0, 65_508); // one byte over what IPv4 UDP can carry
    send(1, 100);
    send(1, 100);
    send(0, 1000);
    const deadline = Date.now() + 5000;
    while ((got.length < 1 || t.inFlight > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(got).toEqual([1000]);
    expect(t.sendErrors.emsgsize).toBe(5);
    expect(t.sendErrors.other).toBe(2);
    expect(t.stats.txErrors).toBe(7);
    expect(reports.map((r) => [r.peer, r.code, r.count])).toEqual([
      [0, 'EMSGSIZE', 1],
      [1, reports[1]!.code, 1],
    ]);
    expect(reports[1]!.code).toMatch(/^E[A-Z]+$/);
  });
});

describe('an endpoint with a peer it cannot send to', () => {
  it('logs one line per peer, counts in show stats, keeps running', async () => {
    const lines: string[] = [];
    const port = 30000 + Math.floor(Math.random() * 20000);
    const ep = new Endpoint(
      parseConfig({
        interface: { name: 'ferryS', address: ['10.0.0.1/30'], mtu: 1400 },
        listen: `127.0.0.1:${port}`,
        peers: [{ name: 'far', endpoint: '192.0.2.1:6080', routes: ['192.168.20.0/24'], keepalive: 1 }],
      }),
      { tun: false, warmUp: 0, log: (l) => lines.push(l) },
    );
    await ep.start(); // says hello at once: a keepalive the socket cannot send
    closers.push(() => ep.stop());
    const deadline = Date.now() + 5000;
    while ((ep.stats().extra?.udpTxOtherErrors ?? 0) < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(ep.stats().extra?.udpTxOtherErrors).toBeGreaterThanOrEqual(2); // the hello and a keepalive a second later
    const warned = lines.filter((l) => l.startsWith('warning: udp: sending to peer far (192.0.2.1:6080) failed: EINVAL'));
    expect(warned).toEqual([
      'warning: udp: sending to peer far (192.0.2.1:6080) failed: EINVAL; further send errors toward it are logged at most every 10 s (counted in show stats)',
    ]);
  });
});
