/**
 * The soak's arithmetic, pure functions (unit-tested in test/bench/soak-analysis.test.ts): the RSS
 * slope after warm-up, `ping -D -O` output read into reply times, and the outage around an event.
 */

export interface Sample {
  /** Seconds since the soak started. */
  t: number;
  /** Resident set size, KiB. */
  kb: number;
}

export interface Slope {
  /** Least-squares slope over the fitted samples, KiB per minute. */
  kbPerMin: number;
  /** Samples fitted, and the seconds they span. */
  n: number;
  spanS: number;
  /** Mean RSS of the fitted samples, MiB. */
  meanMb: number;
}

/** Least-squares slope of the last `keep` fraction of the samples (default 0.8: warm-up skipped). */
export function rssSlope(samples: readonly Sample[], keep = 0.8): Slope {
  const from = Math.round(samples.length * (1 - keep));
  const s = samples.slice(from);
  const n = s.length;
  if (n < 2) return { kbPerMin: 0, n, spanS: 0, meanMb: n === 1 ? s[0]!.kb / 1024 : 0 };
  let mt = 0;
  let mk = 0;
  for (const x of s) {
    mt += x.t;
    mk += x.kb;
  }
  mt /= n;
  mk /= n;
  let num = 0;
  let den = 0;
  for (const x of s) {
    num += (x.t - mt) * (x.kb - mk);
    den += (x.t - mt) * (x.t - mt);
  }
  const perS = den === 0 ? 0 : num / den;
  return { kbPerMin: perS * 60, n, spanS: s[n - 1]!.t - s[0]!.t, meanMb: mk / 1024 };
}

export interface PingLog {
  /** Epoch ms of every reply, in order. */
  replies: number[];
  /** Highest sequence number seen (sent), and replies received. */
  sent: number;
  received: number;
}

/**
 * `ping -D -O` output: "[1733450000.123456] 64 bytes from ...: icmp_seq=5 ttl=62 time=0.51 ms"
 * for a reply, "[1733450000.223456] no answer yet for icmp_seq=7" for a probe that got none.
 */
export function parsePingLog(text: string): PingLog {
  const replies: number[] = [];
  let sent = 0;
  for (const line of text.split('\n')) {
    const m = /^\[(\d+\.\d+)\] (.*)$/.exec(line);
    if (!m) continue;
    const seq = /icmp_seq=(\d+)/.exec(m[2]!);
    if (seq) sent = Math.max(sent, Number(seq[1]));
    if (/ bytes from /.test(m[2]!)) replies.push(Math.round(Number(m[1]) * 1000));
  }
  return { replies, sent, received: replies.length };
}

export interface Outage {
  /** The last reply before the event and the first after `after` (epoch ms; null: none). */
  lastBefore: number | null;
  firstAfter: number | null;
  /** firstAfter - lastBefore, ms (null when either is missing). */
  gapMs: number | null;
  /** firstAfter - after: from the endpoint being up again to traffic, ms. */
  upToTrafficMs: number | null;
}

/** The outage around an event at `at` whose endpoint was up again at `after` (>= at). */
export function outageAround(replies: readonly number[], at: number, after: number): Outage {
  let lastBefore: number | null = null;
  let firstAfter: number | null = null;
  for (const r of replies) {
    if (r <= at) lastBefore = r;
    else if (r >= after) {
      firstAfter = r;
      break;
    }
  }
  return {
    lastBefore,
    firstAfter,
    gapMs: lastBefore !== null && firstAfter !== null ? firstAfter - lastBefore : null,
    upToTrafficMs: firstAfter !== null ? firstAfter - after : null,
  };
}

/** The longest gap between consecutive replies in [from, to] (ms), 0 with fewer than two. */
export function longestGap(replies: readonly number[], from: number, to: number): number {
  let prev: number | null = null;
  let max = 0;
  for (const r of replies) {
    if (r < from || r > to) continue;
    if (prev !== null && r - prev > max) max = r - prev;
    prev = r;
  }
  return max;
}

/**
 * Lines of an endpoint's log that show an error nobody expected: uncaught exceptions, unhandled
 * rejections, stack traces, internal errors, "fatal:". `expected` are patterns of the error lines
 * an event causes on purpose (the TUN deleted).
 */
export function unexpectedErrors(log: string, expected: readonly RegExp[] = []): string[] {
  const bad = /uncaught|unhandled|internal error|fatal:|TypeError|RangeError|ReferenceError|SyntaxError|^\s+at .+:\d+:\d+\)?$|^\S+Z error /i;
  return log
    .split('\n')
    .filter((l) => bad.test(l))
    .filter((l) => !expected.some((re) => re.test(l)));
}
