// Run by test/package/pack.test.ts with plain node: the TUN reader worker starts from the
// installed package's dist/ (src/base/worker-module.ts in its compiled mode) and reads a packet.
// A FIFO stands in for the TUN fd (same read(2)/write(2) contract for one packet), so this needs
// neither root nor the tuntap2 addon. Deep imports by file path: these classes are not exports.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dist = new URL('./node_modules/ipferry/dist/', import.meta.url);
const { BufferPool } = await import(new URL('base/pool.js', dist).href);
const { TunDevice } = await import(new URL('device/tun.js', dist).href);
const { RUNNING_COMPILED } = await import(new URL('base/worker-module.js', dist).href);

const dir = mkdtempSync(join(tmpdir(), 'ipferry-fifo-'));
try {
  const fifo = join(dir, 'tun');
  execFileSync('mkfifo', [fifo]);
  const pool = new BufferPool({ slots: 64 });
  // 'r+' opens a FIFO without waiting for a peer; 'nosuchtun0' is never created, so close()'s
  // `ip link del` fails harmlessly.
  const dev = new TunDevice(openSync(fifo, 'r+'), 'nosuchtun0', 1500, undefined, pool, { readAhead: 8 });
  const got = new Promise((resolve, reject) =>
    dev.start(
      (batch, n) => {
        for (let i = 0; i < n; i++) {
          const p = batch[i];
          resolve(Buffer.from(p.buf.subarray(p.offset, p.offset + p.length)).toString());
          pool.release(p);
        }
      },
      (why) => reject(new Error(why)), // e.g. "TUN nosuchtun0: reader failed: Cannot find module ..."
    ),
  );
  dev.writeBytes(Buffer.from('one packet'), 0, 10);
  // A ref'd timer: it also keeps the event loop alive (the device unrefs its worker, as a TUN
  // device beside the endpoint's UDP socket should).
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error('the reader delivered nothing within 10 s')), 10_000);
  });
  const text = await Promise.race([got, timeout]).finally(() => clearTimeout(timer));
  // close() sets STOP, then the worker's blocked read needs one more byte to return and see it.
  const closed = dev.close();
  const waker = openSync(fifo, 'r+');
  writeSync(waker, 'x');
  await closed;
  console.log(`compiled=${RUNNING_COMPILED} read "${text}" through the reader worker; stuck=${dev.readerStuck} live=${pool.live}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
