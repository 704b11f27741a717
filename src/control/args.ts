/**
 * What every subcommand shares: the error type the CLI turns into one line plus an exit code,
 * the translation of commander's parse errors into that one line, and small value checks.
 *
 *   ipferry: show: unknown option --verbose (see ipferry show --help)
 *   ipferry: show: option --interface needs a value (NAME)
 *   ipferry: up: missing CONFIG (usage: ipferry up CONFIG)
 *   ipferry: route: unknown command frob (get, show)
 */
import type { Argument, Command, CommanderError } from 'commander';

/** A failure the CLI reports as one line with this exit code (2 = usage/config, 1 = runtime). */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
  }
}

/** "route get" for the `get` under `route`; '' for the program itself. */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c !== null && c.parent !== null; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** An argument as the usage lines write it: CONFIG, [IFACE], ADDR... */
export function argumentText(a: Argument): string {
  const n = a.name() + (a.variadic ? '...' : '');
  return a.required ? n : `[${n}]`;
}

/** "ipferry up CONFIG": the command and its arguments, without options. */
export function shortUsage(cmd: Command): string {
  const path = commandPath(cmd);
  return ['ipferry', ...(path ? [path] : []), ...cmd.registeredArguments.map(argumentText)].join(' ');
}

const see = (cmd: Command): string => `see ipferry ${commandPath(cmd) ? `${commandPath(cmd)} ` : ''}--help`;

/** commander's parse error (for `cmd`) as our one-line CliError, exit 2. */
export function translateCommanderError(err: CommanderError, cmd: Command): CliError {
  const path = commandPath(cmd);
  const prefix = path ? `${path}: ` : '';
  const quoted = /'([^']+)'/.exec(err.message)?.[1];
  const suggestion = /Did you mean ([^?]+)\?/.exec(err.message)?.[1];
  switch (err.code) {
    case 'commander.unknownOption':
      return new CliError(`${prefix}unknown option ${quoted} (${suggestion ? `did you mean ${suggestion}? ` : ''}${see(cmd)})`);
    case 'commander.optionMissingArgument': {
      const opt = cmd.options.find((o) => o.flags === quoted);
      const name = opt?.long ?? opt?.short ?? quoted;
      const value = /<([^>]+)>/.exec(quoted ?? '')?.[1];
      return new CliError(`${prefix}option ${name} needs a value${value ? ` (${value})` : ''}`);
    }
    case 'commander.missingArgument':
      return new CliError(`${prefix}missing ${quoted} (usage: ${shortUsage(cmd)})`);
    case 'commander.excessArguments':
      return new CliError(`${prefix}too many arguments (usage: ${shortUsage(cmd)})`);
    case 'commander.unknownCommand': {
      if (!path) return new CliError(`unknown command ${quoted} (${suggestion ? `did you mean ${suggestion}? ` : ''}${see(cmd)})`);
      const subs = cmd.commands.map((c) => c.name()).filter((n) => n !== 'help');
      return new CliError(`${prefix}unknown command ${quoted} (${subs.join(', ')})`);
    }
    default:
      return new CliError(`${prefix}${err.message.replace(/^error: /, '').split('\n')[0]}`);
  }
}

/** A whole number within [min, max], else a one-line CliError naming the option. */
export function intOption(cmd: string, name: string, text: string | undefined, min: number, max: number, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max) throw new CliError(`${cmd}: ${name} needs a whole number ${min}-${max}, got ${text}`);
  return n;
}
