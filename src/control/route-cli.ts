/**
 * `ipferry route ...` (the command tree and help live in cli.ts):
 *   ipferry route get  --routes FILE [--rules FILE] [--json] [fibmatch] ADDR [from ADDR] [iif DEV]
 *                      [ipproto P] [sport N] [dport N] ...
 *   ipferry route show --routes FILE [--rules FILE] [--json | -n] [--table T] [-4 | -6]
 *                      [[to] [root|match|exact] PREFIX]
 * `get` answers each query (or each line of standard input when none is given) the way
 * `ip route get` does: the chosen nexthop, or with fibmatch the whole matching route
 * (route/text/get.ts). FILE is iproute2 text (`ip route show` / `ip -6 route show` output or
 * `ip route add` lines, v4 and v6 mixed) or `ip -j route` JSON; `show` prints every attribute
 * it read, in ip's order, so its output (and `ipferry show routes`) loads back unchanged.
 * Exit: 0 all answered, 1 some address had no route, 2 usage or input error (one line on stderr).
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { CliError } from './args.ts';
import { formatAddress } from '../wire/address-text.ts';
import { Router } from '../route/router.ts';
import { formatGet, GetTextError, lookupQuery, parseGetWords, parseShowWords, rejectText, selects, type GetQuery } from '../route/text/get.ts';
import { loadRoutes } from '../route/text/iproute2.ts';
import { formatCidr, formatRoute, routeJson, showRouteN } from '../route/text/show.ts';
import { ROUTE_TYPE_NAMES, RouteType } from '../route/types.ts';

/** A usage or input error of `route SUB`: one line, exit 2. */
class UsageError extends Error {}

function loadRouter(routesFile: string | undefined, rulesFile: string | undefined): Router {
  if (routesFile === undefined) throw new UsageError('--routes FILE is required');
  const router = new Router({ keepText: true });
  const read = (f: string) => {
    try {
      return readFileSync(f, 'utf8');
    } catch (e) {
      throw new UsageError(`cannot read ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  };
  try {
    loadRoutes(router, read(routesFile));
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`${routesFile} ${(e as Error).message}`);
  }
  if (rulesFile !== undefined) {
    const lines = read(rulesFile).split(/\r?\n/);
    lines.forEach((l, i) => {
      const t = l.replace(/#.*/, '').trim();
      if (t === '') return;
      try {
        router.addRule(t);
      } catch (e) {
        throw new UsageError(`${rulesFile} line ${i + 1}: ${(e as Error).message}`);
      }
    });
  }
  return router;
}

export interface RouteFlags {
  routes?: string;
  rules?: string;
  json?: boolean;
  numeric?: boolean;
  table?: string;
  4?: boolean;
  6?: boolean;
}

/** Input and usage errors become `ipferry: route SUB: ...`, exit 2. */
async function guard(sub: string, run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof UsageError) throw new CliError(`route ${sub}: ${e.message.split('\n')[0]}`);
    throw e;
  }
}

function familyOf(flags: RouteFlags): 4 | 6 | undefined {
  if (flags[4] && flags[6]) throw new UsageError('give -4 or -6, not both');
  return flags[4] ? 4 : flags[6] ? 6 : undefined;
}

export function routeShowCommand(words: string[], flags: RouteFlags): Promise<number> {
  return guard('show', async () => {
    const family = familyOf(flags);
    let sel;
    try {
      sel = parseShowWords(words, family ?? 4);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    const router = loadRouter(flags.routes, flags.rules);
    const fam = family ?? sel?.prefix.family;
    const filter = { table: flags.table ?? 'main', ...(fam !== undefined ? { family: fam } : {}) };
    if (flags.numeric) {
      if (sel) throw new UsageError('-n prints whole tables: no PREFIX with it');
      process.stdout.write((fam !== 6 ? showRouteN(router, 4, filter) : '') + (fam !== 4 ? showRouteN(router, 6, filter) : ''));
      return 0;
    }
    const ids = router.list(filter).filter((id) => sel === null || selects(sel, router.prefixOf(id)));
    if (flags.json) process.stdout.write(`${JSON.stringify(ids.map((id) => routeJson(router, id)))}\n`);
    else process.stdout.write(ids.map((id) => `${formatRoute(router, id)}\n`).join(''));
    return 0;
  });
}

export function routeGetCommand(positionals: string[], flags: RouteFlags): Promise<number> {
  return guard('get', () => routeGet(positionals, flags));
}

/** Queries from the command line, or one per line of standard input. */
async function readQueries(positionals: string[]): Promise<{ q: GetQuery; where: string }[]> {
  const parse = (words: string[], where: string) => {
    try {
      return parseGetWords(words).map((q) => ({ q, where }));
    } catch (e) {
      if (e instanceof GetTextError) throw new UsageError(`${where}: ${e.message}`);
      throw e;
    }
  };
  if (positionals.length > 0) {
    const qs = parse(positionals, 'address');
    if (qs.length === 0) throw new UsageError('no address to look up');
    return qs;
  }
  const out: { q: GetQuery; where: string }[] = [];
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
  let n = 0;
  for await (const line of rl) {
    n++;
    const t = line.replace(/#.*/, '').trim();
    if (t !== '') out.push(...parse(t.split(/\s+/), `stdin line ${n}`));
  }
  return out;
}

async function routeGet(positionals: string[], values: RouteFlags): Promise<number> {
  const router = loadRouter(values.routes, values.rules);
  // All queries are read and checked first: one error line, nothing printed.
  const queries = await readQueries(positionals);
  let missing = 0;
  const json: unknown[] = [];
  const out: string[] = [];
  for (const { q } of queries) {
    const id = lookupQuery(router, q);
    if (id < 0) {
      missing++;
      const reason = router.lastType === 0 ? 'no route' : ROUTE_TYPE_NAMES[router.lastType];
      if (values.json) json.push({ address: q.text, prefix: null, error: reason });
      else out.push(`${q.text}: ${reason === 'no route' ? 'Network is unreachable' : `rule says ${reason}`}`);
      continue;
    }
    const type = router.typeOf(id);
    const reject = type === RouteType.BLACKHOLE || type === RouteType.UNREACHABLE || type === RouteType.PROHIBIT;
    if (values.json) {
      const r = routeJson(router, id);
      const nh = router.lastNexthop;
      const chosen = !q.fibmatch && nh ? { nexthop: { ...(nh.via ? { gateway: formatAddress(nh.via.bytes, 0, nh.via.family) } : {}), ...(nh.dev ? { dev: nh.dev } : {}) } } : {};
      json.push({ address: q.text, ...r, prefix: formatCidr(router.prefixOf(id)), route: formatRoute(router, id), ...chosen });
    } else if (reject && !q.fibmatch) {
      // as the kernel answers: an error for a reject route (fibmatch shows the route itself)
      out.push(`${q.text}: ${rejectText(type)} (${formatRoute(router, id).split('\n')[0]})`);
    } else {
      out.push(formatGet(router, id, q));
    }
  }
  process.stdout.write(values.json ? JSON.stringify(json) + '\n' : out.map((l) => l + '\n').join(''));
  return missing > 0 ? 1 : 0;
}
