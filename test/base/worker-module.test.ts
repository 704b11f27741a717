/**
 * startWorker / workerEntry (src/base/worker-module.ts): a worker module named next to its caller
 * loads from source here (vitest runs src/*.ts), and maps to the compiled names for dist/.
 * The compiled side also runs for real in test/package/pack.test.ts (the TUN reader worker from
 * the installed package, under plain node).
 */
import { describe, expect, it } from 'vitest';
import { RUNNING_COMPILED, startWorker, workerEntry } from '../../src/base/worker-module.ts';

function firstMessage(spec: URL, n: number): Promise<Record<string, unknown>> {
  const w = startWorker(spec, { workerData: { n } });
  return new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no message from the worker within 20 s')), 20_000);
    w.once('message', (m: Record<string, unknown>) => {
      clearTimeout(timer);
      resolve(m);
    });
    w.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  }).finally(() => w.terminate());
}

describe('workerEntry', () => {
  const at = (name: string) => new URL(name, 'file:///pkg/src/device/tun.ts');

  it('rewrites TypeScript extensions as tsc does when compiled', () => {
    expect(workerEntry(at('./reader.ts'), true)).toEqual({ url: at('./reader.js'), needsLoader: false });
    expect(workerEntry(at('./reader.mts'), true)).toEqual({ url: at('./reader.mjs'), needsLoader: false });
    expect(workerEntry(at('./reader.cts'), true)).toEqual({ url: at('./reader.cjs'), needsLoader: false });
    expect(workerEntry(at('./reader.mjs'), true)).toEqual({ url: at('./reader.mjs'), needsLoader: false });
    expect(workerEntry(at('./reader.js'), true)).toEqual({ url: at('./reader.js'), needsLoader: false });
  });

  it('keeps source names and asks for a loader for TypeScript from source', () => {
    expect(workerEntry(at('./reader.ts'), false)).toEqual({ url: at('./reader.ts'), needsLoader: true });
    expect(workerEntry(at('./reader.mjs'), false)).toEqual({ url: at('./reader.mjs'), needsLoader: false });
  });

  it('knows it runs from source under vitest', () => {
    expect(RUNNING_COMPILED).toBe(false);
  });
});

describe('startWorker from source', () => {
  it('runs a TypeScript worker (and its own .ts imports) with workerData', async () => {
    const spec = new URL('./fixtures/ts-worker.ts', import.meta.url);
    expect(await firstMessage(spec, 21)).toEqual({ doubled: 42, self: spec.href });
  });

  it('runs a plain JavaScript worker as it is', async () => {
    const spec = new URL('./fixtures/js-worker.mjs', import.meta.url);
    expect(await firstMessage(spec, 41)).toEqual({ plusOne: 42, self: spec.href });
  });
});
