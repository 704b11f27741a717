/**
 * `ipferry capture [IFACE] [-w FILE|-] [--outer|--inner] [-c N] [-s SNAPLEN]`: packets from a
 * running endpoint, as tcpdump shows them from an interface.
 *
 *   -w FILE   write pcapng to FILE (Wireshark, tshark, tcpdump -r read it); -w - to stdout:
 *             ipferry capture ferry0 -w - | wireshark -k -i -
 *   (no -w)   one line per packet on stdout: time, direction, the packet (tcpdump's words)
 *   --inner   the tunnelled packets (default): what went into the tunnel and came out of it
 *   --outer   the UDP datagrams between the endpoints (GUE), with IP/UDP headers made from the
 *             underlay addresses: tshark -d udp.port==6080,ip shows the packets inside
 *
 * Ctrl-C (or -c N packets) ends it: the endpoint closes the file with its statistics (packets,
 * and how many it dropped because this reader was slower than the traffic), and the last line
 * on stderr says the same. Exit 0; 1 no endpoint or the endpoint refused; 2 usage.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { connect } from 'node:net';
import { describeIp } from '../wire/describe.ts';
import { CliError, intOption } from './args.ts';
import { BLOCK_EPB, BLOCK_ISB, PcapngReader, readPacketBlock, readStatisticsBlock, EPB_INBOUND } from './pcapng.ts';
import { resolveOneSocket } from './show-cli.ts';

export interface CaptureFlags {
  write?: string;
  outer?: boolean;
  inner?: boolean;
  count?: string;
  snaplen?: string;
  socket?: string;
  interface?: string;
}

/** "10:00:00.123456" local time of a microsecond timestamp. */
function clock(us: number): string {
  const d = new Date(Math.floor(us / 1000));
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(us % 1_000_000, 6)}`;
}

export async function captureCommand(iface: string | undefined, flags: CaptureFlags): Promise<number> {
  if (iface !== undefined && flags.interface !== undefined) throw new CliError(`capture: interface given twice (${iface} and --interface ${flags.interface})`);
  if (flags.outer && flags.inner) throw new CliError('capture: give --outer or --inner, not both');
  if (flags.write === '') throw new CliError('capture: -w needs a file name (or - for stdout)');
  const count = intOption('capture', '-c', flags.count, 1, 2 ** 31, 0);
  const snaplen = intOption('capture', '-s', flags.snaplen, 64, 262_144, 262_144);
  const view = flags.outer ? 'outer' : 'inner';
  const path = await resolveOneSocket('capture', { socket: flags.socket, interface: iface ?? flags.interface });

  let out: WriteStream | NodeJS.WriteStream | null = null;
  if (flags.write === '-') out = process.stdout;
  else if (flags.write !== undefined) {
    const file = createWriteStream(flags.write);
    await new Promise<void>((res, rej) => {
      file.once('open', () => res());
      file.once('error', (e) => rej(new CliError(`capture: cannot write ${flags.write}: ${(e as NodeJS.ErrnoException).code ?? e.message}`, 1)));
    });
    out = file;
  }

  return new Promise<number>((resolve, reject) => {
    const sock = connect(path);
    const reader = new PcapngReader();
    let header: string | null = '';
    let packets = 0;
    let stats: { received: number; dropped: number } | null = null;
    let interrupted = 0;
    let settled = false;
    const onSigint = (): void => {
      interrupted++;
      if (interrupted === 1 && !sock.destroyed) sock.write('stop\n');
      else sock.destroy();
    };
    process.on('SIGINT', onSigint);
    const done = (err: Error | null): void => {
      if (settled) return;
      settled = true;
      process.off('SIGINT', onSigint);
      const finish = (): void => {
        if (err) return reject(err);
        const dropped = stats?.dropped ?? 0;
        process.stderr.write(`${packets} packet${packets === 1 ? '' : 's'} captured${dropped > 0 ? `, ${dropped} dropped by the endpoint (this reader was too slow)` : ''}\n`);
        resolve(0);
      };
      if (out !== null && out !== process.stdout) (out as WriteStream).end(finish);
      else finish();
    };
    sock.once('connect', () => sock.write(`${JSON.stringify({ cmd: 'capture', view, count, snaplen })}\n`));
    sock.on('data', (chunk: Buffer) => {
      let data = chunk;
      if (header !== null) {
        // the answer line first, then pcapng
        const nl = data.indexOf(0x0a);
        if (nl < 0) {
          header += data.toString('utf8');
          return;
        }
        header += data.subarray(0, nl).toString('utf8');
        data = data.subarray(nl + 1);
        let resp: { ok: boolean; error?: string };
        try {
          resp = JSON.parse(header) as typeof resp;
        } catch {
          sock.destroy();
          return done(new CliError(`${path}: bad response (not JSON)`, 1));
        }
        header = null;
        if (!resp.ok) {
          sock.destroy();
          return done(new CliError(`capture: ${resp.error ?? 'refused'}`, 1));
        }
        process.stderr.write(`capturing on ${path} (${view} view)${count > 0 ? `, ${count} packets` : ''}; Ctrl-C to stop\n`);
      }
      if (data.length === 0) return;
      let blocks;
      try {
        blocks = reader.push(data);
      } catch (e) {
        sock.destroy();
        return done(new CliError(`${path}: ${(e as Error).message}`, 1));
      }
      for (const b of blocks) {
        if (b.type === BLOCK_EPB) {
          packets++;
          if (out === null) {
            const p = readPacketBlock(b.bytes);
            process.stdout.write(`${clock(p.timeUs)} ${p.direction === EPB_INBOUND ? 'In ' : 'Out'} ${describeIp(p.data, 0, p.data.length)}\n`);
          }
        } else if (b.type === BLOCK_ISB) stats = readStatisticsBlock(b.bytes);
      }
      if (out !== null && !out.write(data)) {
        sock.pause();
        out.once('drain', () => sock.resume());
      }
    });
    sock.once('end', () => done(header === null ? null : new CliError(`${path}: connection closed without an answer`, 1)));
    sock.once('close', () => done(header === null ? null : new CliError(`${path}: connection closed without an answer`, 1)));
    sock.once('error', (e: NodeJS.ErrnoException) => {
      const code = e.code;
      if (code === 'ENOENT' || code === 'ECONNREFUSED') done(new CliError(`no running endpoint at ${path}`, 1));
      else if (code === 'EACCES' || code === 'EPERM') done(new CliError(`permission denied on ${path}`, 1));
      else done(header === null ? null : new CliError(`${path}: ${code ?? e.message}`, 1));
    });
  });
}
