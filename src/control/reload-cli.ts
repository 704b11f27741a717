/**
 * `ipferry reload [IFACE] [--socket PATH]`: make a running endpoint read its config file again
 * and apply it, as SIGHUP (`systemctl reload`) does, and print what changed:
 *
 *   ferry0: reloaded /etc/ipferry/ferry0.yaml
 *     peer shanghai: key changed
 *     route added: unreachable 10.99.0.0/16
 *   ipferry: ferry0: needs restart: listen 0.0.0.0:6080 -> 0.0.0.0:7000 (not applied; everything else is)   (stderr)
 *
 * Exit 0 applied (also with a "needs restart" line); 2 the config does not load or cannot run
 * (the endpoint keeps the one it runs, and says why in one line, here and in its log);
 * 1 no endpoint or no answer.
 */
import { CliError, intOption } from './args.ts';
import { ControlError, controlRequest } from './control-socket.ts';
import { asCliError, resolveOneSocket } from './show-cli.ts';
import type { ReloadAnswer } from './up-cli.ts';

export interface ReloadFlags {
  socket?: string;
  interface?: string;
  timeout?: string;
}

export async function reloadCommand(iface: string | undefined, flags: ReloadFlags): Promise<number> {
  if (iface !== undefined && flags.interface !== undefined) throw new CliError(`reload: interface given twice (${iface} and --interface ${flags.interface})`);
  // names in the config are looked up again: give DNS its time
  const timeoutMs = intOption('reload', '--timeout', flags.timeout, 1, 600_000, 30_000);
  const path = await resolveOneSocket('reload', { socket: flags.socket, interface: iface ?? flags.interface });
  let a: ReloadAnswer;
  try {
    a = (await controlRequest(path, { cmd: 'reload' }, { timeoutMs })) as ReloadAnswer;
  } catch (e) {
    if (e instanceof ControlError && e.kind === 'config') {
      throw new CliError(`${e.message.replace(/^[^:]*\.sock: /, '')} (still running the previous config)`, 2);
    }
    return asCliError(e);
  }
  const out = a.applied.length === 0 ? `${a.interface}: reloaded ${a.source}: no changes\n` : `${a.interface}: reloaded ${a.source}\n${a.applied.map((l) => `  ${l}\n`).join('')}`;
  process.stdout.write(out);
  if (a.restart.length > 0) process.stderr.write(`ipferry: ${a.interface}: needs restart: ${a.restart.join('; ')} (not applied; everything else is)\n`);
  return 0;
}
