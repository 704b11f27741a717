/**
 * Mutation check for the bounds-checked fuzzers (issue 12, point 4): each mutation deletes one
 * length check in a copy of the tree; the fuzzers run there and must fail. The two named in the
 * issue: the IPv4 total-length check (Ipv4Packet.check, total length > packet) and the IPv6
 * extension-header bound (walkIpv6Chain, a header running past the packet's end). Without the
 * bounds-checked mode both fuzzers pass with either check deleted (JavaScript reads `undefined` or
 * the stale bytes after the packet); `--plain-too` shows that as well.
 *
 *   npm run fuzz:mutations [-- --packets N --plain-too]
 *
 * test/fuzz/mutations.test.ts runs it in CI. The copy: src/ and test/ (and package.json,
 * tsconfig.json) in a temporary directory, node_modules linked, removed afterwards.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface Mutation {
  name: string;
  file: string;
  /** The line deleted (must occur exactly once). */
  line: string;
}

export const MUTATIONS: readonly Mutation[] = [
  { name: 'IPv4 total-length check deleted', file: 'src/wire/ipv4.ts', line: '    if (tl > len) return DropReason.Truncated;\n' },
  { name: 'IPv6 extension-header bound deleted', file: 'src/wire/ipv6-chain.ts', line: '    if (pos + hlen > end) return truncatedChain(c, pos + 1);\n' },
];

export interface FuzzOnce {
  checked: boolean;
  wire: { packets: number; exceptions: number; first: string | null; liveAfter: number };
  pipeline: { exceptions: number; first: string | null; live: number };
}

export interface MutationResult {
  mutation: Mutation;
  checked: FuzzOnce;
  plain: FuzzOnce | null;
}

/** Run the fuzzers in a copy of the tree with each mutation applied (one at a time). */
export function runMutations(opts: { packets?: number; pipelinePackets?: number; plainToo?: boolean } = {}): MutationResult[] {
  const dir = mkdtempSync(join(tmpdir(), 'ipferry-mutant-'));
  try {
    cpSync(join(repo, 'src'), join(dir, 'src'), { recursive: true });
    cpSync(join(repo, 'test'), join(dir, 'test'), { recursive: true, filter: (p) => !p.includes(`${join('test', 'package', 'consumer')}`) });
    for (const f of ['package.json', 'tsconfig.json']) cpSync(join(repo, f), join(dir, f));
    symlinkSync(join(repo, 'node_modules'), join(dir, 'node_modules'), 'dir');
    const out: MutationResult[] = [];
    for (const m of MUTATIONS) {
      const path = join(dir, m.file);
      const original = readFileSync(path, 'utf8');
      if (original.split(m.line).length !== 2) throw new Error(`mutation "${m.name}": the line to delete is not in ${m.file} exactly once`);
      writeFileSync(path, original.replace(m.line, ''));
      try {
        const run = (checked: boolean): FuzzOnce => {
          const args = ['--import', 'tsx', join(dir, 'test/fuzz/fuzz-once.ts'), '--packets', String(opts.packets ?? 100_000), '--pipeline-packets', String(opts.pipelinePackets ?? 100_000)];
          if (checked) args.push('--checked');
          const stdout = execFileSync(process.execPath, args, { cwd: dir, encoding: 'utf8', timeout: 600_000, stdio: ['ignore', 'pipe', 'pipe'] });
          return JSON.parse(stdout.trim().split('\n').at(-1)!) as FuzzOnce;
        };
        out.push({ mutation: m, checked: run(true), plain: opts.plainToo ? run(false) : null });
      } finally {
        writeFileSync(path, original);
      }
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const i = process.argv.indexOf('--packets');
  const packets = i < 0 ? 100_000 : Number(process.argv[i + 1]);
  const results = runMutations({ packets, pipelinePackets: packets, plainToo: process.argv.includes('--plain-too') });
  let ok = true;
  for (const r of results) {
    const caught = r.checked.wire.exceptions > 0 && r.checked.pipeline.exceptions > 0;
    ok &&= caught;
    process.stdout.write(
      `${r.mutation.name} (${r.mutation.file}): bounds-checked wire fuzzer ${r.checked.wire.exceptions} exception(s), pipeline fuzzer ${r.checked.pipeline.exceptions}: ${caught ? 'CAUGHT' : 'MISSED'}\n` +
        `  first: ${r.checked.wire.first ?? '-'}\n  first: ${r.checked.pipeline.first ?? '-'}\n` +
        (r.plain ? `  plain (unchecked): wire ${r.plain.wire.exceptions}, pipeline ${r.plain.pipeline.exceptions}\n` : ''),
    );
  }
  process.exit(ok ? 0 : 1);
}
