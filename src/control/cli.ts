/** The `ipferry` command line: dispatches subcommands; returns the exit code. */
import { CliError } from './args.ts';
import { ConfigError } from '../config/config.ts';
import { ControlError } from './control-socket.ts';
import { PreflightError } from './preflight.ts';
import type { CreateEndpoint } from './up-cli.ts';

/** What the command line can be given from outside (tests pass a fake endpoint). */
export interface CliDeps {
  createEndpoint?: CreateEndpoint;
}

export const HELP = `usage: ipferry <command> [options]

commands:
  up CONFIG                         run a tunnel endpoint in the foreground
  show [peers|routes|stats] [--json] [--socket PATH | --interface NAME]
                                    show a running endpoint (like wg show)
  route get|show ...                look up addresses in / print an iproute2 route table

ipferry <command> --help shows the command's options.
exit codes: 0 ok, 1 runtime failure, 2 usage, config or preflight error
`;

async function dispatch(argv: string[], deps: CliDeps): Promise<number> {
  const [cmd] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    (cmd === undefined ? process.stderr : process.stdout).write(HELP);
    return cmd === undefined ? 2 : 0;
  }
  if (cmd === 'up') return (await import('./up-cli.ts')).upCommand(argv.slice(1), { createEndpoint: deps.createEndpoint });
  if (cmd === 'show') return (await import('./show-cli.ts')).showCommand(argv.slice(1));
  if (cmd === 'route') return (await import('./route-cli.ts')).routeCommand(argv.slice(1));
  process.stderr.write(`ipferry: unknown command ${cmd} (see ipferry --help)\n`);
  return 2;
}

export async function main(argv: string[], deps: CliDeps = {}): Promise<number> {
  try {
    return await dispatch(argv, deps);
  } catch (e) {
    const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    if (e instanceof ConfigError || e instanceof PreflightError) {
      process.stderr.write(`ipferry: ${msg}\n`);
      return 2;
    }
    if (e instanceof CliError) {
      process.stderr.write(`ipferry: ${msg}\n`);
      return e.exitCode;
    }
    if (e instanceof ControlError) {
      process.stderr.write(`ipferry: ${msg}\n`);
      return 1;
    }
    // A bug, not an operator error: one line, the stack only on request.
    process.stderr.write(`ipferry: ${msg}\n`);
    if (process.env.IPFERRY_DEBUG) process.stderr.write(`${(e as Error)?.stack ?? ''}\n`);
    return 1;
  }
}
