import { describe, expect, it } from 'vitest';
import { KernelRoutes } from '../../src/endpoint/kernel-routes.ts';
import { parseAddress, parsePrefix } from '../../src/wire/address-text.ts';

function fakeIp(routeGet: Record<string, unknown>) {
  const calls: string[] = [];
  const run = (args: string[]) => {
    calls.push(args.join(' '));
    if (args[0] === '-j') return JSON.stringify([routeGet[args[3]!] ?? {}]);
    return '';
  };
  return { calls, run };
}

describe('KernelRoutes', () => {
  it('adds peer routes through the TUN and removes exactly those, newest first', () => {
    const ip = fakeIp({});
    const kr = new KernelRoutes('ferry0', () => {}, ip.run);
    kr.install([parsePrefix('192.168.20.0/24'), parsePrefix('fd00:20::/64')], [parseAddress('203.0.113.20')]);
    kr.remove();
    expect(ip.calls).toEqual([
      'route add 192.168.20.0/24 dev ferry0 proto 249',
      'route add fd00:20::/64 dev ferry0 proto 249',
      'route del fd00:20::/64 dev ferry0 proto 249',
      'route del 192.168.20.0/24 dev ferry0 proto 249',
    ]);
  });

  it('pins the underlay with a host route when a tunnel route would capture a peer endpoint', () => {
    const ip = fakeIp({ '203.0.113.20': { gateway: '203.0.113.1', dev: 'eth0' } });
    const logs: string[] = [];
    const kr = new KernelRoutes('ferry0', (l) => logs.push(l), ip.run);
    kr.install([parsePrefix('0.0.0.0/0')], [parseAddress('203.0.113.20')]);
    expect(ip.calls).toEqual([
      '-j route get 203.0.113.20',
      'route add 203.0.113.20/32 via 203.0.113.1 dev eth0 proto 249',
      'route add 0.0.0.0/0 dev ferry0 proto 249',
    ]);
    expect(logs[0]).toMatch(/would capture peer endpoint 203.0.113.20; keeping it reachable/);
    kr.remove();
    expect(ip.calls.slice(-2)).toEqual(['route del 0.0.0.0/0 dev ferry0 proto 249', 'route del 203.0.113.20/32 via 203.0.113.1 dev eth0 proto 249']);
  });

  it('leaves an existing route alone and does not remove it on stop', () => {
    const calls: string[] = [];
    const kr = new KernelRoutes('ferry0', () => {}, (args) => {
      calls.push(args.join(' '));
      if (args[1] === 'add') throw Object.assign(new Error('x'), { stderr: 'RTNETLINK answers: File exists\n' });
      return '';
    });
    kr.install([parsePrefix('10.0.0.0/8')], []);
    kr.remove();
    expect(calls).toEqual(['route add 10.0.0.0/8 dev ferry0 proto 249']);
  });

  it('removeStale: removes routes with our mark through our interface and pins to our peers, nothing else', () => {
    const calls: string[] = [];
    const logs: string[] = [];
    const shown: Record<string, unknown[]> = {
      '-4': [
        { dst: '203.0.113.20', gateway: '203.0.113.1', dev: 'wan0', flags: [] }, // our pin: a peer endpoint
        { dst: '203.0.113.99', gateway: '203.0.113.1', dev: 'wan0', flags: [] }, // another endpoint's pin
        { dst: '192.168.20.0/24', dev: 'ferry0', scope: 'link', flags: [] }, // through our interface
        { dst: '192.168.30.0/24', dev: 'ferry1', scope: 'link', flags: [] }, // another interface
        { dst: '10.7.0.0/16', dev: 'ferry0', table: '100', scope: 'link', flags: [] },
      ],
      '-6': [{ dst: '2001:db8::20', gateway: 'fe80::1', dev: 'wan0', metric: 1024, flags: [], pref: 'medium' }],
    };
    const kr = new KernelRoutes('ferry0', (l) => logs.push(l), (args) => {
      calls.push(args.join(' '));
      if (args[0] === '-j') return JSON.stringify(shown[args[1]!]);
      return '';
    });
    const removed = kr.removeStale([parseAddress('203.0.113.20'), parseAddress('2001:db8::20')]);
    expect(calls).toEqual([
      '-j -4 route show table all proto 249',
      'route del 203.0.113.20 via 203.0.113.1 dev wan0 proto 249',
      'route del 192.168.20.0/24 dev ferry0 proto 249',
      'route del 10.7.0.0/16 dev ferry0 table 100 proto 249',
      '-j -6 route show table all proto 249',
      'route del 2001:db8::20 via fe80::1 dev wan0 proto 249',
    ]);
    expect(removed).toHaveLength(4);
    expect(logs[0]).toBe('removed stale route 203.0.113.20 via 203.0.113.1 dev wan0 proto 249 (left by an endpoint that did not stop cleanly)');
    expect(kr.installed).toEqual([]); // not ours to remove again at stop
  });
});
