/**
 * `ipferry down [IFACE] [--socket PATH]`: stop a running endpoint cleanly through its control
 * socket, the way SIGTERM does (kernel routes removed, TUN gone), and wait until its process has
 * exited. Exit 0 stopped; 1 no such endpoint, or still running after --timeout; 2 usage.
 */
import { CliError, intOption } from './args.ts';
import { controlRequest } from './control-socket.ts';
import { asCliError, resolveOneSocket } from './show-cli.ts';

export interface DownFlags {
  socket?: string;
  interface?: string;
  timeout?: string;
}

/** True while a process with this pid exists (EPERM: it exists, we may not signal it). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function downCommand(iface: string | undefined, flags: DownFlags): Promise<number> {
  if (iface !== undefined && flags.interface !== undefined) throw new CliError(`down: interface given twice (${iface} and --interface ${flags.interface})`);
  const timeoutMs = intOption('down', '--timeout', flags.timeout, 1, 600_000, 15_000);
  const path = await resolveOneSocket('down', { socket: flags.socket, interface: iface ?? flags.interface });
  let answer: { pid: number; interface: string };
  try {
    answer = (await controlRequest(path, { cmd: 'stop' }, { timeoutMs: Math.min(timeoutMs, 5000) })) as typeof answer;
  } catch (e) {
    return asCliError(e);
  }
  // The endpoint answers first, then stops: wait for its process to go (bounded).
  const t0 = Date.now();
  while (alive(answer.pid)) {
    if (Date.now() - t0 > timeoutMs) {
      throw new CliError(`${answer.interface}: asked to stop, but pid ${answer.pid} still runs after ${timeoutMs / 1000} s`, 1);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  process.stdout.write(`${answer.interface}: stopped (pid ${answer.pid})\n`);
  return 0;
}
