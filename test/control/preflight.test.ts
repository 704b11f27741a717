import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/config.ts';
import {
  checkInterface,
  checkListen,
  checkPrivileges,
  checkTunDevice,
  listenText,
  preflight,
  PreflightError,
} from '../../src/control/preflight.ts';

const dir = mkdtempSync(join(tmpdir(), 'ipferry-pre-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function thrown(f: () => unknown): PreflightError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(PreflightError);
    return e as PreflightError;
  }
  throw new Error('expected a PreflightError');
}
async function rejected(p: Promise<unknown>): Promise<PreflightError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(PreflightError);
    return e as PreflightError;
  }
  throw new Error('expected a PreflightError');
}

describe('preflight', () => {
  it('privileges: CAP_NET_ADMIN in CapEff, else euid 0', () => {
    const e = thrown(() => checkPrivileges({ capEff: () => 0n }));
    expect(e.message).toBe('not root (CAP_NET_ADMIN needed to create a TUN device)');
    expect(e.kind).toBe('not-root');
    expect(() => checkPrivileges({ capEff: () => 1n << 12n })).not.toThrow();
    expect(() => checkPrivileges({ capEff: () => null, euid: () => 0 })).not.toThrow();
    expect(thrown(() => checkPrivileges({ capEff: () => null, euid: () => 1000 })).kind).toBe('not-root');
  });

  it('/dev/net/tun', () => {
    expect(thrown(() => checkTunDevice(join(dir, 'no-tun'))).message).toBe(`${join(dir, 'no-tun')} missing (load the tun module)`);
    const f = join(dir, 'plain');
    writeFileSync(f, '');
    expect(thrown(() => checkTunDevice(f)).message).toBe(`${f} is not a character device`);
  });

  it('an existing non-TUN interface', () => {
    expect(thrown(() => checkInterface('lo')).message).toBe('interface lo already exists and is not a TUN device');
    expect(() => checkInterface('surely-absent0')).not.toThrow();
  });

  it('listen: port in use, address not available', async () => {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    const port = s.address().port;
    try {
      const c = parseConfig({ interface: { name: 'f' }, listen: `127.0.0.1:${port}`, control: false });
      const e = await rejected(checkListen(c.listen));
      expect(e.message).toBe(`listen 127.0.0.1:${port}: port in use`);
      expect(e.kind).toBe('port-in-use');
      // the whole preflight, userspace: the same first error
      expect((await rejected(preflight(c, { noTun: true }))).message).toBe(`listen 127.0.0.1:${port}: port in use`);
    } finally {
      s.close();
    }
    // 192.0.2.1 (TEST-NET-1) is on no interface here: bind fails, nothing is sent.
    const c2 = parseConfig({ interface: { name: 'f' }, listen: '192.0.2.1:6080', control: false });
    expect((await rejected(checkListen(c2.listen))).message).toBe('listen 192.0.2.1:6080: address not available');
  });

  it('listen text', () => {
    const l = (listen: string) => listenText(parseConfig({ interface: { name: 'f' }, listen, control: false }).listen);
    expect(l('203.0.113.10:6080')).toBe('203.0.113.10:6080');
    expect(l('[2001:db8::1]:7')).toBe('[2001:db8::1]:7');
    expect(l(':7000')).toBe('*:7000');
  });
});
