/**
 * ipferry used as a user would: `npm pack` (which builds dist/ through prepack/prepare), install
 * the tarball into a temporary project, then, with no TypeScript loader installed there:
 *   (a) `node app.mjs` imports createEndpoint / parseConfig from 'ipferry', runs two endpoints in
 *       userspace mode over loopback and exchanges a UDP datagram between their stacks; app.mjs
 *       is the README's "Use it from Node" example, taken from README.md as it stands;
 *   (b) `tsc` type-checks app.ts against the installed .d.ts files with the consumer's own strict
 *       tsconfig (skipLibCheck false);
 *   (c) `node_modules/.bin/ipferry --help` runs;
 *   (d) the TUN reader worker starts from the installed dist/ (reader-worker.mjs).
 * The other consumer files are in test/package/consumer/. Dependencies install with --ignore-scripts,
 * so the tuntap2 native addon is not built: the package must import and run userspace mode
 * without it (only TUN mode needs it). npm uses its cache first (--prefer-offline).
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const REPO = join(import.meta.dirname, '../..');
const CONSUMER_FILES = join(import.meta.dirname, 'consumer');
const TSC = join(REPO, 'node_modules/.bin/tsc');

/** The environment for child processes: no loader or option inherited from the test runner. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  for (const k of Object.keys(env)) if (k.startsWith('VITEST') || k === 'TSX_TSCONFIG_PATH') delete env[k];
  return env;
}

/** Run a command, bounded in time; fail with its output when it does not exit 0. */
function run(cmd: string, args: string[], cwd: string, timeoutMs: number): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, env: cleanEnv(), encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
  if (r.status !== 0) {
    const why = r.error ? r.error.message : r.signal ? `killed by ${r.signal}` : `exit ${r.status}`;
    throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}): ${why}\n${r.stdout}\n${r.stderr}`.trim());
  }
  return r;
}

/** The code block of README.md's "Use it from Node" section. */
function readmeExample(): string {
  const m = /^## Use it from Node\n[\s\S]*?^```js\n([\s\S]*?)^```$/m.exec(readFileSync(join(REPO, 'README.md'), 'utf8'));
  if (!m) throw new Error('README.md: no ```js block under "## Use it from Node"');
  return m[1]!;
}

interface PackResult {
  filename: string;
  files: { path: string }[];
}

let work = '';
let app = '';
let packed: PackResult;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'ipferry-pack-'));
  const out = run('npm', ['pack', '--json', '--pack-destination', work], REPO, 180_000).stdout;
  // npm prints the build scripts' output before the JSON on stdout: take the JSON array.
  packed = (JSON.parse(out.slice(out.lastIndexOf('\n[') + 1)) as PackResult[])[0]!;

  app = join(work, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  for (const f of ['app.ts', 'tsconfig.json', 'reader-worker.mjs']) copyFileSync(join(CONSUMER_FILES, f), join(app, f));
  writeFileSync(join(app, 'app.mjs'), readmeExample());
  run(
    'npm',
    ['install', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund', join(work, packed.filename), '@types/node@^20'],
    app,
    240_000,
  );
}, 420_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the packed package', () => {
  it('ships dist/, the configs and schema, README and LICENSE; no sources, tests or benchmarks', () => {
    const paths = packed.files.map((f) => f.path);
    for (const p of [
      'package.json',
      'README.md',
      'LICENSE',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/index.js.map',
      'dist/cli.js',
      'dist/device/tun-reader-worker.mjs',
      'examples/ipferry.schema.json',
      'examples/beijing.json',
      'examples/host-a.yaml',
      'examples/ipferry@.service',
    ]) {
      expect(paths).toContain(p);
    }
    expect(paths.filter((p) => /^(src|test|bench)\//.test(p) || (p.endsWith('.ts') && !p.endsWith('.d.ts')))).toEqual([]);
    // Source maps carry the TypeScript text, since src/ is not shipped.
    const map = JSON.parse(readFileSync(join(app, 'node_modules/ipferry/dist/index.js.map'), 'utf8')) as { sourcesContent?: string[] };
    expect(map.sourcesContent?.[0]).toContain('export async function createEndpoint');
  });

  it('installs without a TypeScript loader or compiler at run time', () => {
    expect(existsSync(join(app, 'node_modules/ipferry/package.json'))).toBe(true);
    expect(existsSync(join(app, 'node_modules/tsx'))).toBe(false);
    expect(existsSync(join(app, 'node_modules/typescript'))).toBe(false);
  });

  it('(a) runs two userspace endpoints from plain node and carries a UDP datagram between their stacks', () => {
    const r = run(process.execPath, ['app.mjs'], app, 60_000);
    expect(r.stdout).toMatch(/^received "hello through ipferry" from 10\.0\.0\.1:\d+; A sent \d+ GUE datagrams$/m);
  });

  it("(b) type-checks a TypeScript consumer against the shipped declarations, with the consumer's strict settings", () => {
    const r = run(TSC, ['-p', 'tsconfig.json'], app, 120_000);
    expect(r.stdout + r.stderr).toBe('');
  });

  it('(c) runs the ipferry bin', () => {
    const r = run(join(app, 'node_modules/.bin/ipferry'), ['--help'], app, 30_000);
    expect(r.stdout).toMatch(/^usage: ipferry <command>/);
  });

  it('(d) starts the TUN reader worker from the compiled package', () => {
    const r = run(process.execPath, ['reader-worker.mjs'], app, 30_000);
    expect(r.stdout.trim()).toBe('compiled=true read "one packet" through the reader worker; stuck=false live=0');
  });
});
