/**
 * TUN device integration: the Linux kernel on the other side of our TUN, inside a network
 * namespace this test creates. Needs root and /dev/net/tun; skipped otherwise.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTun, TunError, type TunDevice } from '../../src/device/tun.ts';
import { BufferPool, type PacketBuffer } from '../../src/base/pool.ts';
import { checksum, pseudoHeaderSumV6 } from '../../src/wire/checksum.ts';

const pexec = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..');

const isRoot = process.getuid?.() === 0;
const hasTun = existsSync('/dev/net/tun');
const skipReason = !isRoot ? 'not root' : !hasTun ? 'no /dev/net/tun' : '';
if (skipReason) console.log(`tun.test.ts: skipping TUN integration tests (${skipReason})`);

const suffix = `${process.pid % 100000}${Math.floor(Math.random() * 1000)}`;
const ns = `fxdev${suffix}`;
let nameSeq = 0;
const devName = (): string => `fx${suffix}${nameSeq++}`.slice(0, 15);

function nsExec(args: string[], timeoutMs = 20_000): Promise<{ stdout: string; stderr: string }> {
  return pexec('ip', ['netns', 'exec', ns, ...args], { timeout: timeoutMs });
}

function linkExists(name: string): boolean {
  try {
    execFileSync('ip', ['-n', ns, 'link', 'show', 'dev', name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Turn an ICMP / ICMPv6 echo request into the reply in place; false if it is not one. */
function echoReplyInPlace(p: PacketBuffer): boolean {
  const b = p.buf;
  const o = p.offset;
  const v = b[o]! >> 4;
  if (v === 4) {
    const ihl = (b[o]! & 15) * 4;
    if (b[o + 9] !== 1 || b[o + ihl] !== 8) return false;
    for (let k = 0; k < 4; k++) {
      const t = b[o + 12 + k]!;
      b[o + 12 + k] = b[o + 16 + k]!;
      b[o + 16 + k] = t;
    }
    b[o + ihl] = 0;
    b[o + ihl + 2] = 0;
    b[o + ihl + 3] = 0;
    const c = checksum(b, o + ihl, p.length - ihl);
    b[o + ihl + 2] = c >> 8;
    b[o + ihl + 3] = c & 0xff;
    return true;
  }
  if (v === 6) {
    if (b[o + 6] !== 58 || b[o + 40] !== 128) return false;
    for (let k = 0; k < 16; k++) {
      const t = b[o + 8 + k]!;
      b[o + 8 + k] = b[o + 24 + k]!;
      b[o + 24 + k] = t;
    }
    const len = p.length - 40;
    b[o + 40] = 129;
    b[o + 42] = 0;
    b[o + 43] = 0;
    const c = checksum(b, o + 40, len, pseudoHeaderSumV6(b, o + 8, o + 24, 58, len));
    b[o + 42] = c >> 8;
    b[o + 43] = c & 0xff;
    return true;
  }
  return false;
}

describe.skipIf(skipReason !== '')('TunDevice (root, in a namespace)', () => {
  beforeAll(() => {
    execFileSync('ip', ['netns', 'add', ns]);
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  });
  afterAll(() => {
    // Deleting the namespace also deletes any TUN a failed test left in it.
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      /* already gone */
    }
  });

  it('is configured, receives the kernel pings through the worker and answers them (v4 and v6)', async () => {
    const pool = new BufferPool({ slots: 512 });
    const name = devName();
    const dev = await openTun({ name, netns: ns, mtu: 1400, addresses: ['10.77.0.1/24', 'fd77::1/64'], pool });
    try {
      expect(dev.name).toBe(name);
      const link = JSON.parse(execFileSync('ip', ['-n', ns, '-j', 'addr', 'show', 'dev', name]).toString())[0];
      expect(link.mtu).toBe(1400);
      expect(link.flags).toContain('UP');
      const addrs = link.addr_info.map((a: { local: string; prefixlen: number }) => `${a.local}/${a.prefixlen}`);
      expect(addrs).toEqual(expect.arrayContaining(['10.77.0.1/24', 'fd77::1/64']));

      let echoes = 0;
      let notOurs = 0;
      dev.start((batch, count) => {
        for (let i = 0; i < count; i++) {
          const p = batch[i]!;
          if (echoReplyInPlace(p)) {
            echoes++;
            expect(dev.write(p)).toBe(true);
          } else {
            notOurs++; // router solicitations, MLD reports
          }
          p.release();
        }
      });
      const v4 = await nsExec(['ping', '-c', '3', '-i', '0.2', '-W', '2', '10.77.0.2']);
      expect(v4.stdout).toMatch(/3 packets transmitted, 3 received/);
      const v6 = await nsExec(['ping', '-6', '-c', '3', '-i', '0.2', '-W', '2', '-s', '1000', 'fd77::2']);
      expect(v6.stdout).toMatch(/3 packets transmitted, 3 received/);
      expect(echoes).toBe(6);
      expect(dev.stats.txPackets).toBe(6);
      expect(dev.stats.rxPackets).toBe(echoes + notOurs);
      expect(dev.stats.txErrors).toBe(0);
      expect(pool.live).toBe(dev.parkedSlots);
    } finally {
      await dev.close();
    }
    expect(dev.readerStuck).toBe(false);
    expect(pool.live).toBe(0);
    expect(pool.badReleases).toBe(0);
    expect(linkExists(name)).toBe(false);
  });

  it('close() returns while the reader is blocked on an idle device, and nothing is left', async () => {
    const pool = new BufferPool({ slots: 64 });
    const name = devName();
    const dev = await openTun({ name, netns: ns, mtu: 1400, pool, readAhead: 16 });
    dev.start((batch, count) => {
      for (let i = 0; i < count; i++) batch[i]!.release();
    });
    // No address, no route: after the kernel's first IPv6 router solicitation nothing reaches
    // the device, and the worker sits in read(2).
    await new Promise((r) => setTimeout(r, 200));
    expect(pool.live).toBe(16);
    await dev.close(); // a hang here fails the test by its timeout
    await dev.close(); // idempotent
    expect(dev.readerStuck).toBe(false);
    expect(pool.live).toBe(0);
    expect(linkExists(name)).toBe(false);
  });

  it('counts write errors without throwing: EINVAL for garbage, EIO when down, EBADF after close', async () => {
    const name = devName();
    const dev = await openTun({ name, netns: ns, mtu: 1400, addresses: ['10.78.0.1/24'] });
    try {
      expect(dev.writeBytes(Uint8Array.of(0x00, 1, 2, 3, 4, 5, 6, 7), 0, 8)).toBe(false);
      expect(dev.lastTxError).toBe('EINVAL');
      await pexec('ip', ['-n', ns, 'link', 'set', 'dev', name, 'down']);
      const pkt = new Uint8Array(20);
      pkt[0] = 0x45;
      pkt[3] = 20;
      expect(dev.writeBytes(pkt, 0, 20)).toBe(false);
      expect(dev.lastTxError).toBe('EIO');
      expect(dev.stats.txErrors).toBe(2);
    } finally {
      await dev.close();
    }
    expect(dev.writeBytes(Uint8Array.of(0x45), 0, 1)).toBe(false);
    expect(dev.lastTxError).toBe('EBADF');
  });

  it('when the pipeline holds the whole pool the reader waits, then resumes once slots come back', async () => {
    const pool = new BufferPool({ slots: 8 });
    const name = devName();
    const dev = await openTun({ name, netns: ns, mtu: 1400, addresses: ['10.76.0.1/24'], pool });
    const held: PacketBuffer[] = [];
    let hold = true;
    let echoes = 0;
    try {
      dev.start((batch, count) => {
        for (let i = 0; i < count; i++) {
          const p = batch[i]!;
          if (hold) {
            held.push(p);
            continue;
          }
          if (echoReplyInPlace(p)) {
            echoes++;
            dev.write(p);
          }
          p.release();
        }
      });
      // Phase 1: keep every packet; 12 pings need more than the 8 slots.
      await nsExec(['ping', '-c', '12', '-i', '0.05', '-W', '1', '10.76.0.2']).catch(() => undefined);
      expect(pool.live).toBe(8);
      expect(held.length).toBeGreaterThan(0);
      expect(dev.stats.rxStalls).toBeGreaterThan(0);
      // Phase 2: give the slots back; the reader gets them within a refill retry and answers.
      hold = false;
      for (const p of held.splice(0)) p.release();
      const r = await nsExec(['ping', '-c', '3', '-i', '0.2', '-W', '2', '10.76.0.2']);
      expect(r.stdout).toMatch(/3 received/);
      expect(echoes).toBeGreaterThanOrEqual(3);
    } finally {
      for (const p of held) p.release();
      await dev.close();
    }
    expect(pool.live).toBe(0);
    expect(pool.badReleases).toBe(0);
  });

  it('a batch handler that throws: counted and reported, the reader goes on, no unhandled rejection (issue 12)', async () => {
    const pool = new BufferPool({ slots: 256 });
    const name = devName();
    const dev = await openTun({ name, netns: ns, mtu: 1400, addresses: ['10.78.0.1/24'], pool, readAhead: 32 });
    const rejections: unknown[] = [];
    const onRejection = (r: unknown) => rejections.push(r);
    process.on('unhandledRejection', onRejection);
    const reported: string[] = [];
    let echoes = 0;
    try {
      let calls = 0;
      dev.start(
        (batch, count) => {
          for (let i = 0; i < count; i++) {
            const p = batch[i]!;
            if (echoReplyInPlace(p)) {
              echoes++;
              dev.write(p);
            }
            p.release(); // the handler owns the batch, also when it throws below
          }
          if (++calls % 2 === 1) throw new Error(`handler bug #${calls}`);
        },
        undefined,
        (e) => reported.push((e as Error).message),
      );
      const r = await nsExec(['ping', '-c', '4', '-i', '0.2', '-W', '2', '10.78.0.2']);
      expect(r.stdout).toMatch(/4 packets transmitted, 4 received/);
      await new Promise((res) => setImmediate(res));
      expect(echoes).toBe(4);
      expect(dev.stats.rxHandlerErrors).toBeGreaterThanOrEqual(2);
      expect(reported.length).toBe(dev.stats.rxHandlerErrors);
      expect(reported[0]).toBe('handler bug #1');
      expect(rejections).toEqual([]);
    } finally {
      process.off('unhandledRejection', onRejection);
      await dev.close();
    }
    expect(pool.live).toBe(0);
    expect(pool.badReleases).toBe(0);
  });

  it('reports the device going away (interface deleted under it) through onDown', async () => {
    const pool = new BufferPool({ slots: 64 });
    const name = devName();
    const dev = await openTun({ name, netns: ns, mtu: 1400, pool, readAhead: 8 });
    const down = new Promise<string>((resolve) => {
      dev.start((batch, count) => {
        for (let i = 0; i < count; i++) batch[i]!.release();
      }, resolve);
    });
    await new Promise((r) => setTimeout(r, 100));
    await pexec('ip', ['-n', ns, 'link', 'del', 'dev', name]);
    expect(await down).toBe(`TUN ${name}: interface ${name} was deleted`);
    await dev.close();
    expect(pool.live).toBe(0);
  });

  it('rejects bad options with one-line TunErrors and leaves nothing behind', async () => {
    const fail = async (opts: Parameters<typeof openTun>[0]): Promise<TunError> => {
      try {
        const d: TunDevice = await openTun(opts);
        await d.close();
      } catch (e) {
        expect(e).toBeInstanceOf(TunError);
        expect((e as Error).message).not.toMatch(/\n/);
        return e as TunError;
      }
      throw new Error('expected a TunError');
    };
    expect((await fail({ name: 'lo', netns: ns })).message).toBe('interface name lo is already in use');
    expect((await fail({ name: 'lo', netns: ns })).code).toBe('EEXIST');
    expect((await fail({ name: 'a/b', netns: ns })).code).toBe('EINVAL');
    expect((await fail({ name: 'x'.repeat(16), netns: ns })).code).toBe('EINVAL');
    expect((await fail({ netns: ns, mtu: 9000 })).message).toBe(
      'interface MTU 9000 is larger than a pool slot holds (1920 bytes)',
    );
    expect((await fail({ netns: ns, mtu: 20 })).code).toBe('EINVAL');
    expect((await fail({ netns: ns, addresses: ['10.0.0.300/24'] })).message).toMatch(/^interface address 10\.0\.0\.300\/24: /);
    expect((await fail({ netns: ns, addresses: ['10.0.0.1'] })).message).toMatch(/needs a prefix length/);
    expect((await fail({ netns: `${ns}-missing` })).message).toBe(`network namespace ${ns}-missing does not exist`);
    // A configuration step the kernel refuses (IPv6 needs MTU >= 1280): named, and the device goes.
    const name = devName();
    const e = await fail({ name, netns: ns, mtu: 1000, addresses: ['fd78::1/64'] });
    expect(e.code).toBe('ESETUP');
    expect(e.message).toMatch(new RegExp(`^cannot add address fd78::1/64 on ${name}: `));
    expect(linkExists(name)).toBe(false);
  });

  const child = (mode: string, name: string): Promise<{ stdout: string; stderr: string }> =>
    pexec('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', join(here, 'fixtures', 'tun-child.ts'), mode, name], {
      cwd: repo,
      timeout: 30_000,
    });

  it('configures through the library in the process namespace: name, MTU, two IPv4 and an IPv6 address', async () => {
    const name = devName();
    const { stdout } = await child('config', name);
    const link = JSON.parse(stdout)[0];
    expect(link.ifname).toBe(name);
    expect(link.mtu).toBe(1400);
    expect(link.flags).toContain('UP');
    const addrs = link.addr_info.map((a: { local: string; prefixlen: number }) => `${a.local}/${a.prefixlen}`);
    expect(addrs).toEqual(expect.arrayContaining(['10.79.0.1/24', '10.79.1.1/24', 'fd79::1/64']));
    expect(linkExists(name)).toBe(false);
  });

  it.each(['exit', 'throw', 'natural'])('a process that ends (%s) without close() does not hang on the reader', async (mode) => {
    const name = devName();
    // A hang would hit the 30 s child timeout and reject.
    const r = await child(mode, name).catch((e: { code?: number; stdout?: string; killed?: boolean }) => e);
    expect((r as { killed?: boolean }).killed ?? false).toBe(false);
    expect(String(r.stdout)).toContain('started');
    expect(linkExists(name)).toBe(false);
  });
});
