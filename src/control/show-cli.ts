/**
 * `ipferry show [all|peers|routes|stats|bindings|binding-updates] [--json] [--socket PATH | --interface NAME]`: asks a
 * running endpoint through its control socket and prints like `wg show`. With neither --socket
 * nor --interface it shows every endpoint whose socket is in /run/ipferry (or the per-user
 * fallback directory).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CliError, parseCommandArgs } from './args.ts';
import { fallbackSocketDir, runSocketDir, socketPathCandidates } from './socket-path.ts';
import { ControlError, isControlSocketLive, requestSnapshot } from './control-socket.ts';
import { formatShow, formatShowJson } from './show-format.ts';
import type { ShowWhat, Snapshot } from '../endpoint/snapshot.ts';

export const SHOW_HELP = `usage: ipferry show [all|peers|routes|stats|bindings|binding-updates] [--json] [--socket PATH | --interface NAME]

Show a running endpoint, through its control socket:
  (nothing), all   interface, peers, routes and stats
  peers            each peer: endpoint, routes, last packet, transfer
  routes           the route table in ip route syntax, with use counters
  stats            device and UDP counters, ICMP errors, drops by reason, pool slots;
                   mobility counters (mipdiag -s names) and handover gaps
  bindings         a home agent's binding cache (the mipdiag -c layout)
  binding-updates  a mobile node's binding update list (mipdiag -l) and its recent handovers

options:
  --json             print the endpoint's data as JSON
  --socket PATH      control socket to use
  --interface NAME   the endpoint of interface NAME (/run/ipferry/NAME.sock)
  --timeout MS       give up after MS milliseconds (default 3000)
  -h, --help         this help
`;

const WHATS: readonly ShowWhat[] = ['all', 'peers', 'routes', 'stats', 'bindings', 'binding-updates'];

export const SOCKET_DIRS = (): string[] => [runSocketDir(), fallbackSocketDir()];

function listSockets(): string[] {
  const out: string[] = [];
  for (const dir of SOCKET_DIRS()) {
    try {
      for (const f of readdirSync(dir).sort()) if (f.endsWith('.sock')) out.push(join(dir, f));
    } catch {
      /* no such dir */
    }
  }
  return out;
}

/** Which sockets to ask. */
export async function resolveSockets(opts: { socket?: string; interface?: string }): Promise<string[]> {
  if (opts.socket !== undefined && opts.interface !== undefined) {
    throw new CliError('show: give --socket or --interface, not both');
  }
  if (opts.socket !== undefined) return [opts.socket];
  if (opts.interface !== undefined) {
    const cands = socketPathCandidates(opts.interface);
    for (const c of cands) if (await isControlSocketLive(c)) return [c];
    return [cands[0]!];
  }
  const all = listSockets();
  if (all.length === 0) {
    throw new CliError(`no running endpoint (no control socket in ${SOCKET_DIRS().join(' or ')})`, 1);
  }
  const live: string[] = [];
  for (const s of all) if (await isControlSocketLive(s)) live.push(s);
  return live.length > 0 ? live : [all[0]!];
}

export async function showCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('show', args, {
    json: { type: 'boolean' },
    socket: { type: 'string' },
    interface: { type: 'string', short: 'i' },
    timeout: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(SHOW_HELP);
    return 0;
  }
  if (positionals.length > 1) throw new CliError(`show: unexpected argument ${positionals[1]} (see ipferry show --help)`);
  const what = (positionals[0] ?? 'all') as ShowWhat;
  if (!WHATS.includes(what)) throw new CliError(`show: unknown section ${what} (peers, routes, stats)`);
  let timeoutMs = 3000;
  if (values.timeout !== undefined) {
    timeoutMs = Number(values.timeout);
    if (!/^\d+$/.test(values.timeout) || timeoutMs < 1) throw new CliError(`show: --timeout needs milliseconds, got ${values.timeout}`);
  }

  const sockets = await resolveSockets({ socket: values.socket, interface: values.interface });
  const results: Partial<Snapshot>[] = [];
  for (const path of sockets) {
    try {
      results.push(await requestSnapshot(path, what, { timeoutMs }));
    } catch (e) {
      if (e instanceof ControlError) throw new CliError(e.message, 1);
      throw e;
    }
  }
  if (values.json) {
    process.stdout.write(results.length === 1 ? formatShowJson(results[0]!) : `${JSON.stringify(results, null, 2)}\n`);
  } else {
    process.stdout.write(results.map((r) => formatShow(r, what)).join('\n'));
  }
  return 0;
}
