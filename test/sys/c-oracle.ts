/**
 * The system's C headers as an oracle for struct layouts and constants: compile a tiny C program
 * that prints sizeof/offsetof/macro values (gcc or cc), run it, parse "name value" lines.
 * Returns null when no compiler is installed (the caller skips with C_ORACLE_MISSING).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const C_ORACLE_MISSING = 'no C compiler (gcc/cc): layout check against the C headers skipped';

const HEADERS = [
  'sys/socket.h', 'sys/uio.h', 'sys/ioctl.h', 'sys/eventfd.h', 'poll.h', 'fcntl.h', 'errno.h',
  'netinet/in.h', 'net/if.h', 'linux/if_tun.h', 'linux/virtio_net.h', 'linux/udp.h',
];

function compiler(): string | null {
  for (const cc of ['gcc', 'cc']) {
    try {
      execFileSync(cc, ['--version'], { stdio: 'ignore', timeout: 10000 });
      return cc;
    } catch {
      // try the next
    }
  }
  return null;
}

/** Values of C expressions, e.g. { 'sizeof(struct msghdr)': 56 }. */
export function cValues(exprs: readonly string[]): Map<string, number> | null {
  const cc = compiler();
  if (!cc) return null;
  const dir = mkdtempSync(join(tmpdir(), 'ipferry-c-oracle-'));
  try {
    const src = [
      '#define _GNU_SOURCE',
      '#include <stdio.h>',
      '#include <stddef.h>',
      ...HEADERS.map((h) => `#include <${h}>`),
      'int main(void) {',
      ...exprs.map((e, i) => `  printf("%d %ld\\n", ${i}, (long)(${e}));`),
      '  return 0;',
      '}',
    ].join('\n');
    writeFileSync(join(dir, 'o.c'), src);
    execFileSync(cc, ['-o', join(dir, 'o'), join(dir, 'o.c')], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60000 });
    const out = execFileSync(join(dir, 'o'), { encoding: 'utf8', timeout: 10000 });
    const m = new Map<string, number>();
    for (const line of out.trim().split('\n')) {
      const [i, v] = line.split(' ');
      m.set(exprs[Number(i)]!, Number(v));
    }
    return m;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
