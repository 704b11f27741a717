/**
 * `ipferry route ...` (the command tree and help live in cli.ts):
 *   ipferry route get  --routes FILE [--rules FILE] [--json] [ADDR ...]
 *   ipferry route show --routes FILE [--rules FILE] [--json | -n] [--table T] [-4 | -6]
 * `get` answers each ADDR (or each line of standard input when none is given) the way
 * `ip route get fibmatch ADDR` does: the matching route as it appears in FILE. FILE is iproute2
 * text (`ip route show` / `ip -6 route show` output or `ip route add` lines, v4 and v6 mixed).
 * Exit: 0 all answered, 1 some address had no route, 2 usage or input error (one line on stderr).
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { CliError } from './args.ts';
import { parseAddress } from '../wire/address-text.ts';
import { Router } from '../route/router.ts';
import { loadRoutes } from '../route/text/iproute2.ts';
import { formatCidr, formatRoute, routeJson, showRouteN, showRoutes, showRoutesJson } from '../route/text/show.ts';
import { ROUTE_TYPE_NAMES } from '../route/types.ts';

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

export function routeShowCommand(flags: RouteFlags): Promise<number> {
  return guard('show', async () => {
    const family = familyOf(flags);
    const router = loadRouter(flags.routes, flags.rules);
    const filter = { table: flags.table ?? 'main', ...(family !== undefined ? { family } : {}) };
    if (flags.json) process.stdout.write(showRoutesJson(router, filter) + '\n');
    else if (flags.numeric) process.stdout.write((family !== 6 ? showRouteN(router, 4, filter) : '') + (family !== 4 ? showRouteN(router, 6, filter) : ''));
    else process.stdout.write(showRoutes(router, filter));
    return 0;
  });
}

export function routeGetCommand(positionals: string[], flags: RouteFlags): Promise<number> {
  return guard('get', () => routeGet(positionals, flags));
}

async function routeGet(positionals: string[], values: RouteFlags): Promise<number> {
  const router = loadRouter(values.routes, values.rules);

  let addrs: { text: string; where: string }[];
  if (positionals.length > 0) {
    addrs = positionals.map((text) => ({ text, where: 'address' }));
  } else {
    addrs = [];
    const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
    let n = 0;
    for await (const line of rl) {
      n++;
      const t = line.trim();
      if (t !== '' && !t.startsWith('#')) addrs.push({ text: t, where: `stdin line ${n}` });
    }
  }
  // Validate all addresses first: one error line, nothing printed.
  const parsedAddrs = addrs.map(({ text, where }) => {
    try {
      return parseAddress(text);
    } catch (e) {
      throw new UsageError(`${where}: ${(e as Error).message}`);
    }
  });
  let missing = 0;
  const json: unknown[] = [];
  const out: string[] = [];
  parsedAddrs.forEach((a, i) => {
    const text = addrs[i]!.text;
    const id = router.lookupAddress(a);
    if (id < 0) {
      missing++;
      const reason = router.lastType === 0 ? 'no route' : ROUTE_TYPE_NAMES[router.lastType];
      if (values.json) json.push({ address: text, prefix: null, error: reason });
      else out.push(`${text}: ${reason === 'no route' ? 'Network is unreachable' : `rule says ${reason}`}`);
      return;
    }
    if (values.json) {
      const r = routeJson(router, id);
      json.push({ address: text, ...r, prefix: formatCidr(router.prefixOf(id)), route: formatRoute(router, id, true) });
    } else {
      out.push(formatRoute(router, id, true));
    }
  });
  process.stdout.write(values.json ? JSON.stringify(json) + '\n' : out.map((l) => l + '\n').join(''));
  return missing > 0 ? 1 : 0;
}
