/**
 * The `ipferry` command line: the command tree (options, help with examples, exit codes) on
 * commander, and the one place that turns every failure into one line and an exit code.
 * The commands' work lives in their own files (up-cli.ts, show-cli.ts, ...), loaded on use so
 * `ipferry show` does not load the endpoint.
 *
 * Why commander: per-command help generated from the option definitions (so help and parser
 * never disagree), `help CMD`, `--version`, nested subcommands (`route get`) and "did you mean"
 * suggestions, in a dependency-free, widely used package; util.parseArgs has none of these and
 * its errors are Node's raw text.
 *
 * exit codes: 0 ok; 1 runtime failure (no endpoint, no reply, start failed); 2 usage, config or
 * preflight error. Every error is one line on stderr: "ipferry: [command: ]message".
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, type Help } from 'commander';
import { CliError, shortUsage, translateCommanderError } from './args.ts';
import { ConfigError } from '../config/config.ts';
import { ControlError } from './control-socket.ts';
import { PreflightError } from './preflight.ts';
import type { CreateEndpoint } from './up-cli.ts';

/** What the command line can be given from outside (tests pass a fake endpoint). */
export interface CliDeps {
  createEndpoint?: CreateEndpoint;
}

/** The package's version (package.json sits two levels above src/control/ and dist/control/). */
export function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

const EXIT_CODES = `
exit codes: 0 ok, 1 runtime failure, 2 usage, config or preflight error`;

const examples = (...lines: string[]): string => `\nexamples:\n${lines.map((l) => `  ${l}`).join('\n')}\n`;

const ENDPOINT_OPTIONS = (c: Command): Command =>
  c
    .option('-i, --interface <NAME>', "the endpoint of interface NAME (its socket /run/ipferry/NAME.sock)")
    .option('--socket <PATH>', 'the control socket to use');

/** The command tree; `done(code)` receives the exit code of the command that ran. */
export function buildProgram(deps: CliDeps, done: (code: number) => void): Command {
  const run =
    <A extends unknown[]>(f: (...a: A) => Promise<number> | number) =>
    async (...a: A): Promise<void> =>
      done(await f(...a));
  const program = new Command('ipferry')
    .usage('<command> [options]')
    .description('a userspace IP stack on a TUN device that ferries IPv4/IPv6 across UDP (GUE)')
    .version(`ipferry ${version()}`, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'this help')
    .addHelpCommand(false)
    .addHelpText('after', `\nipferry help COMMAND (or ipferry COMMAND --help) shows a command's options and examples.${EXIT_CODES}\n`);

  program
    .command('up')
    .summary('run a tunnel endpoint in the foreground')
    .description(
      'Run a tunnel endpoint in the foreground from CONFIG (.json, .jsonc, .yaml or .yml). A name without an ' +
        'extension is looked up as NAME.{json,jsonc,yaml,yml}, beside it or in /etc/ipferry (ipferry up ferry0). ' +
        'SIGHUP or `ipferry reload` reads CONFIG again and applies peer, route, rule and key changes live. ' +
        'Stop it with Ctrl-C, SIGTERM or `ipferry down`: kernel routes are removed and the TUN device goes away.',
    )
    .argument('<CONFIG>', 'the config file (or a name in /etc/ipferry)')
    .option('--log-level <LEVEL>', 'error, warn, info or debug: debug adds each drop reason (default: the config\'s "log", else info)')
    .option('--log-format <FORMAT>', 'text or json: one JSON object per line for journald or Loki (default: the config\'s log.format, else text)')
    .option('--userspace', 'no kernel TUN device (no root needed): only the endpoint\'s own stack addresses are reachable')
    .option('--check', 'validate the config, look up peer names and run the preflight checks (root, TUN, ports), then exit')
    .addHelpText(
      'after',
      examples('ipferry up /etc/ipferry/ferry0.yaml', 'ipferry up ferry0 --log-level debug', 'ipferry up ferry0 --log-format json', 'ipferry up --userspace site-a.json', 'ipferry up --check ferry0') +
        EXIT_CODES.replace('ok', 'stopped cleanly'),
    )
    .action(
      run(async (config: string, o: { logLevel?: string; logFormat?: string; userspace?: boolean; check?: boolean }) =>
        (await import('./up-cli.ts')).upCommand(config, o, { createEndpoint: deps.createEndpoint }),
      ),
    );

  program
    .command('down')
    .summary('stop a running endpoint cleanly')
    .description('Stop a running endpoint through its control socket, as SIGTERM does (kernel routes removed, TUN gone), and wait until its process has exited.')
    .argument('[IFACE]', 'the interface of the endpoint to stop (default: the only one running)')
    .option('-i, --interface <NAME>', 'the same as IFACE')
    .option('--socket <PATH>', 'the control socket to use')
    .option('--timeout <MS>', 'give up waiting after MS milliseconds (default 15000)')
    .addHelpText('after', examples('ipferry down ferry0', 'ipferry down --socket /run/ipferry/ferry0.sock') + EXIT_CODES)
    .action(run(async (iface: string | undefined, o: Record<string, string | undefined>) => (await import('./down-cli.ts')).downCommand(iface, o)));

  program
    .command('reload')
    .summary('apply a changed config to a running endpoint')
    .description(
      'Make a running endpoint read its config file again and apply it, as SIGHUP (systemctl reload) does: peers added, removed or ' +
        'changed (endpoint, routes, mtu, keepalive, key), extra routes and rules, the log level, live, without dropping other traffic. ' +
        'interface, listen, stack, hub, icmpRateLimit, kernelRoutes, control, metrics and mobility need a restart: a "needs restart" line names ' +
        'them and everything else is applied. A config that does not load keeps the running one (exit 2, the one-line error).',
    )
    .argument('[IFACE]', 'the interface of the endpoint (default: the only one running)')
    .option('-i, --interface <NAME>', 'the same as IFACE')
    .option('--socket <PATH>', 'the control socket to use')
    .option('--timeout <MS>', 'give up waiting after MS milliseconds (default 30000: names are looked up again)')
    .addHelpText('after', examples('ipferry reload ferry0', 'ipferry reload --socket /run/ipferry/ferry0.sock') + '\nsystemctl reload ipferry@NAME and kill -HUP PID do the same.\n' + '\nexit codes: 0 applied, 1 no endpoint or no answer, 2 the config does not load or cannot run (the old one keeps running)')
    .action(run(async (iface: string | undefined, o: Record<string, string | undefined>) => (await import('./reload-cli.ts')).reloadCommand(iface, o)));

  ENDPOINT_OPTIONS(
    program
      .command('capture')
      .summary('capture packets from a running endpoint (pcapng)')
      .description(
        'Stream packets from a running endpoint, like tcpdump on its interface: the tunnelled packets (--inner, the default) or the UDP ' +
          'datagrams between the endpoints (--outer, with IP/UDP headers from the underlay addresses). With -w, pcapng for Wireshark and ' +
          'tshark; without, one line per packet. Stops after -c N packets or on Ctrl-C; packets the endpoint dropped because the reader ' +
          'was too slow are counted in the file and the last line. Costs the endpoint nothing while no capture runs.',
      )
      .argument('[IFACE]', 'the endpoint (default: the only one running)'),
  )
    .option('-w, --write <FILE>', 'write pcapng to FILE, - for stdout')
    .option('--inner', 'the tunnelled IP packets (default)')
    .option('--outer', 'the UDP/GUE datagrams between the endpoints')
    .option('-c, --count <N>', 'stop after N packets')
    .option('-s, --snaplen <BYTES>', 'keep at most BYTES of each packet (64-262144, default all)')
    .addHelpText(
      'after',
      examples(
        'ipferry capture ferry0',
        'ipferry capture ferry0 -w inner.pcapng -c 100',
        'ipferry capture ferry0 --outer -w - | tshark -r - -d udp.port==6080,ip',
        'ipferry capture ferry0 -w - | wireshark -k -i -',
      ) + EXIT_CODES,
    )
    .action(run(async (iface: string | undefined, o: Record<string, string | boolean | undefined>) => (await import('./capture-cli.ts')).captureCommand(iface, o as object)));

  ENDPOINT_OPTIONS(
    program
      .command('show')
      .summary('show running endpoints (like wg show)')
      .description(
        'Show running endpoints through their control sockets, like wg show:\n' +
          '  (nothing), all   interface, peers, routes and stats\n' +
          '  peers            each peer: endpoint, routes, last packet, transfer\n' +
          '  routes           the route table in ip route syntax, with use counters\n' +
          '  stats            device/UDP counters, ICMP errors, drops by reason, pool slots;\n' +
          '                   mobility counters (mipdiag -s names), handover gaps\n' +
          '  bindings         a home agent\'s binding cache (the mipdiag -c layout)\n' +
          '  binding-updates  a mobile node\'s binding update list (mipdiag -l), recent handovers\n' +
          '  interfaces       the names of the running endpoints\n' +
          'Without IFACE (or --interface / --socket): every endpoint running here.',
      )
      .argument('[IFACE]', 'an interface name (or a section, to show it for every endpoint)')
      .argument('[SECTION]', 'all, peers, routes, stats, bindings, binding-updates or interfaces'),
  )
    .option('--json', "print the endpoint's data as JSON")
    .option('--timeout <MS>', 'give up after MS milliseconds (default 3000)')
    .addHelpText('after', examples('ipferry show', 'ipferry show ferry0', 'ipferry show ferry0 peers', 'ipferry show stats --json', 'ipferry show --socket /tmp/ipferry-1000/ferry0.sock routes') + EXIT_CODES)
    .action(run(async (a: string | undefined, b: string | undefined, o: Record<string, string | boolean | undefined>) =>
      (await import('./show-cli.ts')).showCommand([a, b].filter((w): w is string => w !== undefined), o as object),
    ));

  ENDPOINT_OPTIONS(
    program
      .command('ping')
      .summary("ping through a running endpoint's own stack")
      .description(
        "Send echo requests from a running endpoint's own stack (its stack.address) through the tunnel and\n" +
          'print the replies as ping does. Works in userspace mode (no root, no TUN).',
      )
      .argument('<ADDR>', 'the IPv4 or IPv6 address to ping')
      .argument('[IFACE]', 'the endpoint to ping from (default: the only one running)'),
  )
    .option('--from <STACKADDR>', "the source: one of the stack's addresses (default: its first of ADDR's family)")
    .option('-c, --count <N>', 'send N echo requests (default 4)')
    .option('-s, --size <SIZE>', 'SIZE data bytes per request (default 56; fragments above the MTU)')
    .option('--interval <MS>', 'wait MS milliseconds between requests (default 1000)')
    .option('-W, --wait <MS>', 'wait MS milliseconds for each reply (default 2000)')
    .addHelpText('after', examples('ipferry ping 10.0.0.253', 'ipferry ping fd00::2 ferry0 -c 3 -s 4000', 'ipferry ping 10.0.0.2 --from 10.0.0.254') + '\nexit codes: 0 a reply came back, 1 no reply or no endpoint, 2 usage error')
    .action(run(async (addr: string, iface: string | undefined, o: Record<string, string | undefined>) => (await import('./ping-cli.ts')).pingCommand(addr, iface, o)));

  program
    .command('check')
    .summary('validate config files (no environment checks)')
    .description(
      'Validate config files alone: schema, addresses, routes, keys. Nothing about this machine is checked ' +
        '(root, TUN, listen address, DNS): `ipferry up --check CONFIG` does that.',
    )
    .argument('<CONFIG...>', 'config files (.json, .jsonc, .yaml, .yml) or names in /etc/ipferry')
    .addHelpText('after', examples('ipferry check examples/beijing.json examples/shanghai.json', 'ipferry check ferry0') + EXIT_CODES)
    .action(run(async (files: string[]) => (await import('./check-cli.ts')).checkCommand(files)));

  program
    .command('genkey')
    .summary('print a new pre-shared key')
    .description('Print a new pre-shared key for peers[].key: 32 random bytes, base64. Use the same key on both ends.')
    .addHelpText('after', examples('ipferry genkey', 'umask 077; ipferry genkey > ferry0.key') + EXIT_CODES)
    .action(run(async () => (await import('./genkey-cli.ts')).genkeyCommand()));

  const route = program
    .command('route')
    .summary('look addresses up in an iproute2 route table')
    .description(
      'Load an iproute2 route table (ip route show / ip -6 route show output, ip route add lines, or ip -j route JSON; v4 and v6 ' +
        'mixed) and look addresses up in it, or print it back.',
    )
    .addHelpCommand(false)
    .addHelpText('after', examples('ipferry route get --routes routes.txt 192.168.20.7', 'ip route show | ipferry route show --routes /dev/stdin -n') + EXIT_CODES);
  const tableOptions = (c: Command): Command =>
    c.option('--routes <FILE>', 'the route table (required)').option('--rules <FILE>', 'policy rules in ip rule syntax, one per line').option('--json', 'print JSON');
  tableOptions(
    route
      .command('get')
      .summary('look addresses up, like ip route get fibmatch')
      .description(
        'Answer like `ip route get`: the chosen nexthop for ADDR (from, iif, ipproto, sport and dport as the policy rules see them), or with fibmatch the whole matching route. Without ADDR: one query per line of standard input.',
      )
      .argument('[QUERY...]', '[fibmatch] ADDR [from ADDR] [iif DEV] [ipproto PROTO] [sport N] [dport N]'),
  )
    .addHelpText(
      'after',
      examples(
        'ipferry route get --routes routes.txt 10.20.30.41',
        'ipferry route get --routes routes.txt 10.20.1.1 from 10.0.1.9 ipproto tcp dport 80',
        'ipferry route get --routes routes.txt fibmatch 192.168.20.9',
        'ip -j route | ipferry route get --routes /dev/stdin 8.8.8.8',
        'printf "8.8.8.8\\n::1\\n" | ipferry route get --routes routes.txt --json',
      ) + '\nexit codes: 0 all answered, 1 some address had no route, 2 usage or input error',
    )
    .action(run(async (addrs: string[], o: Record<string, string | boolean | undefined>) => (await import('./route-cli.ts')).routeGetCommand(addrs, o as object)));
  tableOptions(
    route
      .command('show')
      .summary('print the table, like ip route show')
      .description(
        'Print the table as ip route show does, every attribute read (proto, scope, src, metric, mtu, advmss, pref) in its order, or in the route -n layout. A PREFIX selects like ip: the route for exactly it, root PREFIX the routes inside it, match PREFIX the routes covering it.',
      )
      .argument('[SELECTOR...]', '[to] [root|match|exact] PREFIX'),
  )
    .option('-n, --numeric', 'the route -n / route -6 -n layout')
    .option('--table <TABLE>', 'the table to print (default main; all for every table)')
    .option('-4', 'IPv4 routes only')
    .option('-6', 'IPv6 routes only')
    .addHelpText(
      'after',
      examples('ipferry route show --routes routes.txt -6', 'ipferry route show --routes routes.txt root 10.0.0.0/8', 'ipferry route show --routes routes.txt -n --table all', 'ip -j route | ipferry route show --routes /dev/stdin') +
        EXIT_CODES,
    )
    .action(run(async (words: string[], o: Record<string, string | boolean | undefined>) => (await import('./route-cli.ts')).routeShowCommand(words, o as object)));

  configure(program);
  return program;
}

/** On every command: our error lines, lower-case help titles, arity checked by us. */
function configure(cmd: Command): void {
  cmd
    .exitOverride((err) => {
      throw err.code.startsWith('commander.help') || err.code === 'commander.version' ? err : translateCommanderError(err, cmd);
    })
    .configureOutput({ outputError: () => {} })
    .configureHelp({ styleTitle: (t: string) => t.toLowerCase(), showGlobalOptions: false } as Partial<Help>)
    .showSuggestionAfterError(true)
    .allowExcessArguments(true)
    .hook('preAction', (_top, action) => {
      const max = action.registeredArguments.some((a) => a.variadic) ? Infinity : action.registeredArguments.length;
      if (action.args.length > max) {
        const path = action.parent?.parent ? `${action.parent.name()} ${action.name()}` : action.name();
        throw new CliError(`${path}: unexpected argument ${action.args[max]} (usage: ${shortUsage(action)})`);
      }
    });
  for (const c of cmd.commands) configure(c);
}

export async function main(argv: string[], deps: CliDeps = {}): Promise<number> {
  let code = 0;
  const program = buildProgram(deps, (c) => (code = c));
  if (argv.length === 0) {
    program.outputHelp({ error: true });
    return 2;
  }
  // `ipferry help [COMMAND...]` is `ipferry [COMMAND...] --help` (also for `help route get`).
  const args = argv[0] === 'help' ? [...argv.slice(1), '--help'] : argv;
  try {
    if (argv[0] === 'help') {
      let c = program;
      for (const w of argv.slice(1)) {
        const sub = c.commands.find((s) => s.name() === w);
        if (sub === undefined) {
          throw new CliError(c === program ? `unknown command ${w} (see ipferry --help)` : `${c.name()}: unknown command ${w} (${c.commands.map((s) => s.name()).join(', ')})`);
        }
        c = sub;
      }
    }
    await program.parseAsync(args, { from: 'user' });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and version were printed by commander; `ipferry route` with no subcommand printed
      // route's help to stderr (a usage error).
      return e.code === 'commander.help' && e.exitCode !== 0 ? 2 : e.exitCode;
    }
    return report(e);
  }
}

/** Any failure as one line; exit 2 for what the operator must fix in input, 1 for the rest. */
function report(e: unknown): number {
  const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0];
  process.stderr.write(`ipferry: ${msg}\n`);
  if (e instanceof ConfigError || e instanceof PreflightError) return 2;
  if (e instanceof CliError) return e.exitCode;
  if (e instanceof ControlError) return e.kind === 'config' ? 2 : 1;
  // A bug, not an operator error: one line, the stack only on request.
  if (process.env.IPFERRY_DEBUG) process.stderr.write(`${(e as Error)?.stack ?? ''}\n`);
  return 1;
}
