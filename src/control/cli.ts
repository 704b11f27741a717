/** The `ipferry` command line: dispatches subcommands; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [cmd] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h') {
    process.stdout.write('usage: ipferry <up|show|route> ...\n');
    return cmd === undefined ? 2 : 0;
  }
  if (cmd === 'route') return (await import('./route-cli.ts')).routeCommand(argv.slice(1));
  process.stderr.write(`ipferry: unknown command ${cmd}\n`);
  return 2;
}
