import { describe, expect, it } from 'vitest';
import { RUN_LENGTH } from '../../src/route/list-cursor.ts';
import { Router } from '../../src/route/router.ts';
import type { RouteFilter } from '../../src/route/router.ts';
import { addressGen, randomPrefix, rng } from './helpers.ts';

/** A router with routes in random order: both families, three tables, equal prefixes with several metrics. */
function randomRouter(n: number, seed: number): { router: Router; ids: number[] } {
  const rand = rng(seed);
  const gen4 = addressGen(rand, 4);
  const gen6 = addressGen(rand, 6);
  const router = new Router();
  const ids: number[] = [];
  for (let i = 0; i < n; i++) {
    const family = rand() < 0.7 ? 4 : 6;
    const prefix = randomPrefix(rand, family === 4 ? gen4 : gen6, family);
    const table = [254, 254, 100, 'local'][Math.floor(rand() * 4)]!;
    try {
      ids.push(router.add({ prefix, dev: `d${i % 3}`, table, metric: Math.floor(rand() * 3) * 10 }));
    } catch {
      /* the same (table, prefix, metric) twice: skip */
    }
  }
  return { router, ids };
}

/** Every page of the cursor, concatenated; also how many steps it took and the largest page. */
function drain(router: Router, filter: RouteFilter, max: number): { ids: number[]; steps: number; largest: number } {
  const c = router.cursor(filter);
  const ids: number[] = [];
  let steps = 0;
  let largest = 0;
  for (let page = c.next(max); page !== null; page = c.next(max)) {
    steps++;
    largest = Math.max(largest, page.length);
    ids.push(...page);
  }
  expect(c.next(max)).toBeNull(); // stays done
  return { ids, steps, largest };
}

describe('route list cursor', () => {
  it('pages give exactly list() (same order), for every filter', () => {
    const { router } = randomRouter(20_000, 7);
    const filters: RouteFilter[] = [{ table: 'all' }, {}, { table: 100 }, { table: 'local', family: 6 }, { table: 'all', family: 4 }];
    for (const f of filters) {
      const want = router.list(f);
      expect(want.length).toBeGreaterThan(0);
      for (const max of [1, 97, 1000, 50_000]) {
        const got = drain(router, f, max);
        expect(got.ids).toEqual(want);
        expect(got.largest).toBeLessThanOrEqual(max);
      }
    }
  });

  it('works in bounded steps: no step sorts or hands out the whole table', () => {
    const { router } = randomRouter(50_000, 11);
    const n = router.list({ table: 'all' }).length;
    const c = router.cursor({ table: 'all' });
    const first = c.next(500);
    expect(first).toEqual([]); // the first steps sort runs; nothing is ready yet
    const got = drain(router, { table: 'all' }, 500);
    // sorting takes about n / (4 * 500) steps, handing out n / 500 more
    expect(got.steps).toBeGreaterThanOrEqual(Math.ceil(n / 500) + Math.floor(n / Math.max(RUN_LENGTH, 2000)) - 1);
  });

  it('a table that changes under the cursor: removed routes are skipped, every listed id is live and in order', () => {
    const { router, ids } = randomRouter(10_000, 3);
    const c = router.cursor({ table: 'all' });
    const out: number[] = [];
    let removed = 0;
    for (let page = c.next(100), step = 0; page !== null; page = c.next(100), step++) {
      out.push(...page);
      // remove a few routes not listed yet, and add some (not listed: added after the scan)
      if (step % 5 === 0) {
        for (let k = 0; k < 20; k++) {
          const id = ids[(step * 37 + k * 101) % ids.length]!;
          if (!out.includes(id) && router.isLive(id)) {
            router.remove(id);
            removed++;
          }
        }
      }
    }
    expect(removed).toBeGreaterThan(0);
    for (const id of out) expect(router.isLive(id)).toBe(true);
    expect(out).toEqual(router.list({ table: 'all' }));
  });

  it('an empty table ends at once', () => {
    const r = new Router();
    const c = r.cursor({ table: 'all' });
    expect(c.next(10)).toBeNull();
  });
});
