/**
 * Run the real `ipferry` CLI as a child process, from the sources: `node --import tsx src/cli.ts`,
 * so `npm test` needs no build (the compiled bin, dist/cli.js, is run by test/package/).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';

/** Node arguments that run the CLI from source: spawn(process.execPath, [...CLI, ...args]). */
export const CLI: readonly string[] = [
  '--import',
  import.meta.resolve('tsx'), // an absolute URL: resolves from any cwd (tests run it in temp dirs)
  resolve(__dirname, '../../src/cli.ts'),
];
/** The same command line with the fake endpoint injected (fake-cli.ts). */
export const FAKE_CLI: readonly string[] = ['--import', import.meta.resolve('tsx'), resolve(__dirname, 'fake-cli.ts')];

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeout?: number;
  /** Run through this command first, e.g. ['ip', 'netns', 'exec', NS]. */
  prefix?: string[];
  /** Run fake-cli.ts (the fake endpoint injected) instead of the real CLI. */
  fake?: boolean;
}

function command(args: string[], prefix: string[] = [], fake = false): [string, string[]] {
  const argv = [...prefix, process.execPath, ...(fake ? FAKE_CLI : CLI), ...args];
  return [argv[0]!, argv.slice(1)];
}

export function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const [file, argv] = command(args, opts.prefix, opts.fake);
  return new Promise((res) => {
    const child = execFile(
      file,
      argv,
      { cwd: opts.cwd, env: { ...process.env, ...opts.env }, timeout: opts.timeout ?? 30_000 },
      (_err, stdout, stderr) => res({ code: child.exitCode, signal: child.signalCode, stdout, stderr }),
    );
  });
}

/** Start the CLI and keep it running (for `up`); collect its output. */
export function startCli(args: string[], opts: CliOptions = {}) {
  const [file, argv] = command(args, opts.prefix, opts.fake);
  const child: ChildProcess = spawn(file, argv, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<CliResult>((res) =>
    child.once('close', (code, signal) => res({ code, signal, stdout, stderr })),
  );
  return {
    child,
    exited,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    /** Wait (bounded) until stderr matches. */
    async waitFor(re: RegExp, ms = 30_000): Promise<void> {
      const t0 = Date.now();
      while (!re.test(stderr)) {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited before ${re}: ${stderr}`);
        if (Date.now() - t0 > ms) throw new Error(`timeout waiting for ${re}: ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}
