/**
 * The CLI's logger: text lines and JSON lines (time, level, interface, event, msg, then the
 * event's fields), level filter, level and format changed while running (a reload).
 */
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/control/log.ts';

function capture(opts: Parameters<typeof createLogger>[0] = {}) {
  const lines: string[] = [];
  const log = createLogger({ prefix: 'ferry0', time: () => '2026-12-08T10:00:00.000Z', write: (t) => lines.push(t), ...opts });
  return { log, lines };
}

describe('createLogger', () => {
  it('text: one line per event, "warning:" lines as warnings, newlines folded, below the level dropped', () => {
    const { log, lines } = capture();
    log('up: ferry0 mtu 1400');
    log('warning: no IPv4 stack.address');
    log.event({ level: 'warn', event: 'auth-failure', msg: 'peer far (192.0.2.1:6080): control message failed\nauthentication', fields: { peer: 'far' } });
    log.debug('drop: BadGue');
    expect(lines).toEqual([
      '2026-12-08T10:00:00.000Z info ferry0: up: ferry0 mtu 1400\n',
      '2026-12-08T10:00:00.000Z warn ferry0: warning: no IPv4 stack.address\n',
      '2026-12-08T10:00:00.000Z warn ferry0: peer far (192.0.2.1:6080): control message failed authentication\n',
    ]);
  });

  it('json: each line parses, named fields first, the event\'s own fields after (reserved names kept)', () => {
    const { log, lines } = capture({ format: 'json', level: 'debug' });
    log.event({ level: 'warn', event: 'unknown-source', msg: 'datagram from unknown source 192.0.2.9:40000', fields: { from: '192.0.2.9:40000', count: 1, level: 'spoof' } });
    log('control socket /run/ipferry/ferry0.sock');
    log.debug('drop: BadGue (peer far)');
    const objs = lines.map((l) => {
      expect(l.endsWith('\n')).toBe(true);
      expect(l.indexOf('\n')).toBe(l.length - 1);
      return JSON.parse(l) as Record<string, unknown>;
    });
    expect(objs[0]).toEqual({
      time: '2026-12-08T10:00:00.000Z',
      level: 'warn',
      interface: 'ferry0',
      event: 'unknown-source',
      msg: 'datagram from unknown source 192.0.2.9:40000',
      from: '192.0.2.9:40000',
      count: 1,
    });
    expect(Object.keys(objs[0]!).slice(0, 5)).toEqual(['time', 'level', 'interface', 'event', 'msg']);
    expect(objs[1]).toMatchObject({ level: 'info', event: 'log', msg: 'control socket /run/ipferry/ferry0.sock' });
    expect(objs[2]).toMatchObject({ level: 'debug', event: 'log' });
  });

  it('level and format change while running', () => {
    const { log, lines } = capture();
    log.debug('not yet');
    log.setLevel('debug');
    log.setFormat('json');
    log.debug('now');
    log.setLevel('error');
    log.warn('warning: filtered');
    expect(log.level).toBe('error');
    expect(log.format).toBe('json');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'debug', msg: 'now' });
  });
});
