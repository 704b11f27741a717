/**
 * `ipferry ping ADDR [IFACE] [--from STACKADDR] [-c N] [-s SIZE]`: echo requests from a running
 * endpoint's own stack (its `stack.address`), sent through the tunnel like any packet, so an
 * endpoint in userspace mode can be checked without root. Output as iputils ping prints it.
 * Exit 0 when a reply came back, 1 when none did (or no endpoint), 2 usage.
 */
import { parseAddress } from '../wire/address-text.ts';
import { CliError, intOption } from './args.ts';
import { ControlError, controlRequest } from './control-socket.ts';
import { asCliError, resolveOneSocket } from './show-cli.ts';

export interface PingFlags {
  from?: string;
  count?: string;
  size?: string;
  interval?: string;
  wait?: string;
  socket?: string;
  interface?: string;
}

const ms = (v: number): string => v.toFixed(3);

export async function pingCommand(address: string, iface: string | undefined, flags: PingFlags): Promise<number> {
  let family: 4 | 6;
  try {
    family = parseAddress(address).family;
    if (flags.from !== undefined && parseAddress(flags.from).family !== family) {
      throw new CliError(`ping: --from ${flags.from} and ${address} are not the same address family`);
    }
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(`ping: ${(e as Error).message}`);
  }
  if (iface !== undefined && flags.interface !== undefined) throw new CliError(`ping: interface given twice (${iface} and --interface ${flags.interface})`);
  const count = intOption('ping', '-c', flags.count, 1, 1_000_000, 4);
  const size = intOption('ping', '-s', flags.size, 0, family === 4 ? 65_507 : 65_487, 56);
  const intervalMs = intOption('ping', '-i', flags.interval, 0, 60_000, 1000);
  const waitMs = intOption('ping', '-W', flags.wait, 1, 60_000, 2000);
  const path = await resolveOneSocket('ping', { socket: flags.socket, interface: iface ?? flags.interface });

  const header = family === 4 ? 20 + 8 : 40 + 8;
  process.stdout.write(`PING ${address}${flags.from ? ` from ${flags.from}` : ''}: ${size} data bytes (${size + header} with headers), through ${path}\n`);
  const rtts: number[] = [];
  for (let seq = 1; seq <= count; seq++) {
    if (seq > 1 && intervalMs > 0) await new Promise((r) => setTimeout(r, intervalMs));
    try {
      const r = (await controlRequest(path, { cmd: 'echo', address, size, timeoutMs: waitMs, from: flags.from }, { timeoutMs: waitMs + 3000 })) as {
        rttMs: number;
      };
      rtts.push(r.rttMs);
      process.stdout.write(`${size + 8} bytes from ${address}: seq=${seq} time=${ms(r.rttMs)} ms\n`);
    } catch (e) {
      // No reply: say so and go on, as ping does; anything else (no endpoint, a refused source) ends it.
      if (e instanceof ControlError && e.kind === 'remote' && /no reply within/.test(e.message)) {
        process.stdout.write(`no reply from ${address}: seq=${seq}\n`);
        continue;
      }
      if (e instanceof ControlError && e.kind === 'remote') throw new CliError(`ping: ${e.message.replace(/^[^:]*\.sock: /, '')}`, 1);
      asCliError(e);
    }
  }
  const loss = Math.round((100 * (count - rtts.length)) / count);
  process.stdout.write(`--- ${address} ping statistics ---\n${count} packets transmitted, ${rtts.length} received, ${loss}% packet loss\n`);
  if (rtts.length > 0) {
    const avg = rtts.reduce((a, b) => a + b, 0) / rtts.length;
    process.stdout.write(`rtt min/avg/max = ${ms(Math.min(...rtts))}/${ms(avg)}/${ms(Math.max(...rtts))} ms\n`);
  }
  return rtts.length > 0 ? 0 : 1;
}
