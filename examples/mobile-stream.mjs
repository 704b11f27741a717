// A checksummed TCP byte stream for examples/mobile-node.ts and the mobility namespace tests:
// plain Node (no loader), run inside a network namespace.
//
//   node examples/mobile-stream.mjs receive HOST PORT      listen, check every byte, report
//   node examples/mobile-stream.mjs send HOST PORT RATE    connect, send until SIGTERM, report
//
// The stream is a fixed pseudo-random sequence: byte i is a function of i alone (streamByte), so
// the receiver checks every byte where it lands without being told what was sent. Both sides
// print one JSON line per event on stdout:
//   {"ev":"listening"} {"ev":"connected"}
//   {"ev":"progress","bytes":N,"at":EPOCH_MS}          receiver, every 20 ms while bytes arrive
//   {"ev":"stall","ms":M,"at":EPOCH_MS}                receiver: no bytes for M >= 5 ms, until `at`
//   {"ev":"done","bytes":N,"bad":B,"sha256":H,"resets":R,"error":E|null}
// RATE is bytes per second (the sender never has more than ~1 s of data queued).
import { createHash } from 'node:crypto';
import net from 'node:net';

/** Byte i of the stream: the i>>2'th word of a 32-bit mixer, byte i&3 of it. */
export function streamWord(w) {
  let z = (w + 0x9e3779b9) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** Fill out[0..len) with stream bytes from absolute offset `from`. */
export function fillStream(out, from, len) {
  for (let k = 0; k < len; k++) {
    const i = from + k;
    out[k] = (streamWord(Math.floor(i / 4)) >>> ((i & 3) * 8)) & 0xff;
  }
}

const say = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

function receive(host, port) {
  const server = net.createServer((c) => {
    say({ ev: 'connected' });
    let bytes = 0;
    let bad = 0;
    let resets = 0;
    let error = null;
    const hash = createHash('sha256');
    let want = Buffer.alloc(0);
    let lastReport = 0;
    let lastData = 0;
    c.on('data', (d) => {
      const t = Date.now();
      if (lastData > 0 && t - lastData >= 5) say({ ev: 'stall', ms: t - lastData, at: t });
      lastData = t;
      if (want.length < d.length) want = Buffer.alloc(Math.max(d.length, 65536));
      fillStream(want, bytes, d.length);
      if (want.compare(d, 0, d.length, 0, d.length) !== 0) for (let k = 0; k < d.length; k++) if (want[k] !== d[k]) bad++;
      hash.update(d);
      bytes += d.length;
      const now = Date.now();
      if (now - lastReport >= 20) {
        lastReport = now;
        say({ ev: 'progress', bytes, at: now });
      }
    });
    c.on('error', (e) => {
      error = e.code ?? e.message;
      if (e.code === 'ECONNRESET') resets++;
    });
    c.on('close', () => {
      say({ ev: 'progress', bytes, at: Date.now() });
      say({ ev: 'done', bytes, bad, sha256: hash.digest('hex'), resets, error });
      server.close();
      process.exit(0);
    });
  });
  server.listen(port, host, () => say({ ev: 'listening' }));
}

function send(host, port, rate) {
  const c = net.connect({ host, port });
  let bytes = 0;
  let resets = 0;
  let error = null;
  let stopping = false;
  const hash = createHash('sha256');
  const chunk = 16384;
  const buf = Buffer.alloc(chunk);
  const t0 = Date.now();
  let timer = null;
  const pump = () => {
    if (stopping) return;
    // stay within RATE and never queue more than ~1 s of data in the socket
    const allowed = Math.floor(((Date.now() - t0) / 1000) * rate) - bytes;
    let budget = Math.min(allowed, rate);
    while (budget >= chunk && c.writableLength < rate) {
      fillStream(buf, bytes, chunk);
      hash.update(buf);
      c.write(Buffer.from(buf));
      bytes += chunk;
      budget -= chunk;
    }
  };
  c.on('connect', () => {
    say({ ev: 'connected' });
    timer = setInterval(pump, 10);
  });
  c.on('error', (e) => {
    error = e.code ?? e.message;
    if (e.code === 'ECONNRESET' || e.code === 'EPIPE') resets++;
  });
  c.on('close', () => {
    clearInterval(timer);
    say({ ev: 'done', bytes, bad: 0, sha256: hash.digest('hex'), resets, error });
    process.exit(0);
  });
  process.on('SIGTERM', () => {
    stopping = true;
    clearInterval(timer);
    c.end();
  });
}

const [mode, host, port, rate] = process.argv.slice(2);
if (mode === 'receive') receive(host, Number(port));
else if (mode === 'send') send(host, Number(port), Number(rate ?? 1_000_000));
else {
  process.stderr.write('usage: node mobile-stream.mjs receive HOST PORT | send HOST PORT RATE\n');
  process.exit(2);
}
