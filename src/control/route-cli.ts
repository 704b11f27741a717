/**
 * `ipferry route ...`:
 *   ipferry route get  --routes FILE [--rules FILE] [--json] [ADDR ...]
 *   ipferry route show --routes FILE [--rules FILE] [--json | -n] [--table T]
 * `get` answers each ADDR (or each line of standard input when none is given) the way
 * `ip route get fibmatch ADDR` does: the matching route as it appears in FILE. FILE is iproute2
 * text (`ip route show` / `ip -6 route show` output or `ip route add` lines, v4 and v6 mixed).
 * Exit: 0 all answered, 1 some address had no route, 2 usage or input error (one line on stderr).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline';
import { parseAddress } from '../wire/address-text.ts';
import { Router } from '../route/router.ts';
import { loadRoutes } from '../route/text/iproute2.ts';
import { formatCidr, formatRoute, routeJson, showRouteN, showRoutes, showRoutesJson } from '../route/text/show.ts';
import { ROUTE_TYPE_NAMES } from '../route/types.ts';

const USAGE = `usage: ipferry route get --routes FILE [--rules FILE] [--json] [ADDR ...]
       ipferry route show --routes FILE [--rules FILE] [--json | -n] [--table TABLE]
`;

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

export async function routeCommand(argv: string[]): Promise<number> {
  try {
    return await run(argv);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`ipferry route: ${msg.split('\n')[0]}\n`);
    return 2;
  }
}

async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    process.stdout.write(USAGE);
    return sub === undefined ? 2 : 0;
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      strict: true,
      options: {
        routes: { type: 'string' },
        rules: { type: 'string' },
        json: { type: 'boolean', default: false },
        numeric: { type: 'boolean', short: 'n', default: false },
        table: { type: 'string' },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message.split('\n')[0]!);
  }
  const { values, positionals } = parsed;
  if (sub === 'show') {
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`);
    const router = loadRouter(values.routes, values.rules);
    const filter = { table: values.table ?? 'main' };
    if (values.json) process.stdout.write(showRoutesJson(router, filter) + '\n');
    else if (values.numeric) process.stdout.write(showRouteN(router, 4, filter) + showRouteN(router, 6, filter));
    else process.stdout.write(showRoutes(router, filter));
    return 0;
  }
  if (sub !== 'get') throw new UsageError(`unknown subcommand ${sub} (get, show)`);
  if (values.numeric || values.table !== undefined) throw new UsageError('-n and --table apply to route show');
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
