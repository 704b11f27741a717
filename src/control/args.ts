/**
 * Small helpers shared by the subcommands: util.parseArgs with one-line usage errors, and the
 * error type the dispatcher turns into "ipferry: <message>" plus an exit code.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

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

type Options = NonNullable<ParseArgsConfig['options']>;

export function parseCommandArgs<O extends Options>(
  cmd: string,
  args: string[],
  options: O,
): { values: { [K in keyof O]?: O[K]['type'] extends 'boolean' ? boolean : string }; positionals: string[] } {
  try {
    const r = parseArgs({ args, options, allowPositionals: true, strict: true });
    return r as unknown as ReturnType<typeof parseCommandArgs<O>>;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const opt = /'(-[^' ]*)/.exec(err.message)?.[1];
    if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      throw new CliError(`${cmd}: unknown option ${opt ?? err.message} (see ipferry ${cmd} --help)`);
    }
    if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      throw new CliError(
        /argument missing/.test(err.message)
          ? `${cmd}: option ${opt} needs a value`
          : `${cmd}: option ${opt} takes no value`,
      );
    }
    throw new CliError(`${cmd}: ${err.message.split('. ')[0]}`);
  }
}
