/**
 * Config errors through the real CLI: `ipferry up FILE` (from source) for every bad config in the
 * table prints exactly one line, `ipferry: FILE: <message>`, exits 2 and creates no TUN.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BAD_CONFIGS, IF } from './bad-configs.ts';
import { runCli as run } from './cli-helper.ts';

const dir = mkdtempSync(join(tmpdir(), 'ipferry-badcfg-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const runCli = (args: string[]) => run(args, { cwd: dir });

describe('ipferry up with a bad config', () => {
  it('the table has the cases the issue asks for', () => {
    expect(BAD_CONFIGS.length).toBeGreaterThanOrEqual(15);
    expect(new Set(BAD_CONFIGS.map((c) => c.name)).size).toBe(BAD_CONFIGS.length);
  });

  it.concurrent.each(BAD_CONFIGS)('$name', async ({ name, text, message }) => {
    const file = `${name}.json`;
    writeFileSync(join(dir, file), text);
    const r = await runCli(['up', file]);
    expect(r.stderr).toBe(`ipferry: ${file}: ${message}\n`);
    expect(r.stdout).toBe('');
    expect(r.code).toBe(2);
    expect(existsSync(`/sys/class/net/${IF}`)).toBe(false);
  });

  it.concurrent('a missing file', async () => {
    const r = await runCli(['up', 'no-such-config.json']);
    expect(r.stderr).toBe('ipferry: no-such-config.json: no such file\n');
    expect(r.code).toBe(2);
  });

  it.concurrent('up without CONFIG, and an unknown option', async () => {
    const a = await runCli(['up']);
    expect(a.stderr).toBe('ipferry: up: missing CONFIG (usage: ipferry up CONFIG)\n');
    expect(a.code).toBe(2);
    const b = await runCli(['up', '--frobnicate', 'x.json']);
    expect(b.stderr).toBe('ipferry: up: unknown option --frobnicate (see ipferry up --help)\n');
    expect(b.code).toBe(2);
  });
});
