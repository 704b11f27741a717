/**
 * The systemd unit template (examples/ipferry@.service) and the privileges it grants:
 * - systemd-analyze verify reads it without a single warning;
 * - `ipferry up` as an unprivileged user (nobody) holding only CAP_NET_ADMIN, as an ambient
 *   capability (what AmbientCapabilities= gives), creates the TUN with its address, adds its
 *   kernel routes through `ip`, serves its control socket, and on `ipferry down` removes them.
 *   In a network namespace of the test's own, plus a private mount namespace whose /dev/net/tun
 *   is mode 0666 as on common distributions (this machine's is 0600; the host's is untouched).
 */
import { execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, runCli } from './cli-helper.ts';

const UNIT = join(import.meta.dirname, '../../examples/ipferry@.service');
const dir = mkdtempSync(join(tmpdir(), 'ipferry-service-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const has = (cmd: string): boolean => {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

describe('examples/ipferry@.service', () => {
  const unit = readFileSync(UNIT, 'utf8');
  it('runs up on /etc/ipferry/%i with CAP_NET_ADMIN only, reloads with SIGHUP, restarts on failure but not on exit 2', () => {
    const keys = new Map(unit.split('\n').filter((l) => /^\w+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    expect(keys.get('ExecStart')).toBe('/usr/local/bin/ipferry up /etc/ipferry/%i');
    expect(keys.get('ExecReload')).toBe('/bin/kill -HUP $MAINPID');
    expect(keys.get('AmbientCapabilities')).toBe('CAP_NET_ADMIN');
    expect(keys.get('CapabilityBoundingSet')).toBe('CAP_NET_ADMIN');
    expect(keys.get('User')).toBe('ipferry');
    expect(keys.get('Restart')).toBe('on-failure');
    expect(keys.get('RestartPreventExitStatus')).toBe('2');
    expect(keys.get('RuntimeDirectory')).toBe('ipferry');
  });

  it.skipIf(!has('systemd-analyze'))('systemd-analyze verify: no warning', () => {
    const d = mkdtempSync(join(dir, 'unit-'));
    // verify wants the executables to exist: stand-ins for the installed bin
    writeFileSync(join(d, 'ipferry@.service'), unit.replaceAll('/usr/local/bin/ipferry', '/bin/true'));
    const out = execFileSync('sh', ['-c', `systemd-analyze verify '${join(d, 'ipferry@ferry0.service')}' 2>&1`], { encoding: 'utf8', timeout: 60_000 });
    expect(out).toBe('');
  });
});

const canRun = process.getuid?.() === 0 && has('setpriv') && has('unshare') && has('ip') && existsSync('/dev/net/tun');

describe.skipIf(!canRun)('up as nobody with only CAP_NET_ADMIN (netns, ambient capability)', () => {
  it('creates the TUN, its address and routes; down removes them', async () => {
    const ns = `ipf-cap-${process.pid}`;
    const own = mkdtempSync(join(dir, 'run-'));
    chmodSync(dir, 0o755);
    chmodSync(own, 0o755);
    chownSync(own, 65534, 65534); // the control socket's directory belongs to the service user
    const sock = join(own, 'capt0.sock');
    const file = join(dir, 'capt0.json');
    writeFileSync(
      file,
      JSON.stringify({
        interface: { name: 'capt0', address: ['10.0.0.1/30'] },
        listen: '127.0.0.1:46080',
        control: sock,
        stack: { address: ['10.0.0.254/32'] },
        peers: [{ name: 'far', endpoint: '127.0.0.1:46081', routes: ['192.168.77.0/24'] }],
      }),
    );
    chmodSync(file, 0o644);
    const ip = (...a: string[]): string => execFileSync('ip', ['-n', ns, ...a], { encoding: 'utf8', timeout: 10_000 });
    execFileSync('ip', ['netns', 'add', ns]);
    let child: ReturnType<typeof spawn> | undefined;
    try {
      ip('link', 'set', 'lo', 'up');
      const node = [process.execPath, ...CLI, 'up', file].map((a) => `'${a}'`).join(' ');
      const script =
        'mount -t tmpfs -o mode=755 none /dev/net && mknod -m 666 /dev/net/tun c 10 200 && ' +
        `exec setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=+net_admin --ambient-caps=+net_admin env IPFERRY_WARMUP=0 HOME=${own} ${node}`;
      child = spawn('ip', ['netns', 'exec', ns, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c', script], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const exited = new Promise<number | null>((r) => child!.once('close', (code) => r(code)));
      const t0 = Date.now();
      while (!/control socket /.test(stderr)) {
        if (child.exitCode !== null || Date.now() - t0 > 30_000) throw new Error(`up did not start: ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }

      expect(ip('-4', 'addr', 'show', 'capt0')).toContain('inet 10.0.0.1/30');
      expect(ip('route', 'show', 'dev', 'capt0')).toContain('192.168.77.0/24');
      const shown = await runCli(['show', '--socket', sock, 'stats', '--json']);
      expect(shown.code).toBe(0);
      const pid = (JSON.parse(shown.stdout) as { pid: number }).pid;
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      expect(/^Uid:\s+65534\s/m.test(status)).toBe(true);
      expect(/^CapEff:\s+0*1000$/m.test(status)).toBe(true); // CAP_NET_ADMIN (bit 12) and nothing else

      const down = await runCli(['down', '--socket', sock]);
      expect(down.stdout).toBe(`capt0: stopped (pid ${pid})\n`);
      expect(await exited).toBe(0);
      expect(stderr).toMatch(/ shutdown complete\n$/);
      expect(ip('link', 'show')).not.toContain('capt0');
      expect(ip('route', 'show')).not.toContain('192.168.77.0/24');
    } finally {
      if (child && child.exitCode === null) child.kill('SIGKILL');
      execFileSync('ip', ['netns', 'del', ns]);
    }
  });
});
