/**
 * Start a worker thread on a module that sits next to the calling module, the same way from the
 * compiled package (dist/, plain `node`) and from the TypeScript sources (vitest, tsx).
 *
 * Name the worker the way imports are written in src/: a URL relative to the caller, with the
 * source file's extension, and hand it to startWorker():
 *
 *   const READER = new URL('./tun-reader-worker.mjs', import.meta.url);
 *   const w = startWorker(READER, { workerData });
 *
 * - Compiled (this module itself was loaded as .js): the extension is rewritten the way tsc
 *   rewrote the imports (rewriteRelativeImportExtensions): .ts -> .js, .mts -> .mjs,
 *   .cts -> .cjs. A plain .mjs / .js worker keeps its name (tsconfig.build.json's allowJs copies
 *   it into dist/).
 * - From source (this module was loaded as .ts): a .mjs / .js worker runs as it is. A .ts worker
 *   needs a TypeScript loader inside the worker, and on Node 20 none is inherited: neither tsx's
 *   hooks (`tsx file`, `node --import tsx`, register()) nor vitest's module runner reach worker
 *   threads, and `execArgv: ['--import', 'tsx']` does not either (checked on Node 20.20: ".ts" is
 *   still an unknown extension inside the worker). So the worker starts from a one-line
 *   bootstrap that calls tsx's register() and then imports the module. tsx is a devDependency:
 *   running from source is the development setup, never the installed package's.
 *
 * Called once per worker start, never per packet.
 */
import { extname } from 'node:path';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** True when this module runs compiled (dist/*.js), false when it runs from src/*.ts. */
export const RUNNING_COMPILED = !/\.[cm]?ts$/.test(new URL(import.meta.url).pathname);

/** Extensions tsc rewrites on emit, and what they become. */
const COMPILED_EXTENSION: Readonly<Record<string, string>> = { '.ts': '.js', '.mts': '.mjs', '.cts': '.cjs' };

export interface WorkerEntry {
  /** The module file the worker runs. */
  url: URL;
  /** It is TypeScript run from source: it needs tsx registered inside the worker first. */
  needsLoader: boolean;
}

/** Where the worker module named `spec` is in this build (see the module comment). */
export function workerEntry(spec: URL, compiled: boolean = RUNNING_COMPILED): WorkerEntry {
  const ext = extname(spec.pathname);
  const rewritten = COMPILED_EXTENSION[ext];
  if (rewritten === undefined) return { url: spec, needsLoader: false };
  if (!compiled) return { url: spec, needsLoader: true };
  const url = new URL(spec.href);
  url.pathname = url.pathname.slice(0, -ext.length) + rewritten;
  return { url, needsLoader: false };
}

/** Start a worker on the module named `spec` (a URL next to the caller; see the module comment). */
export function startWorker(spec: URL, options: WorkerOptions = {}): Worker {
  const entry = workerEntry(spec);
  if (!entry.needsLoader) return new Worker(entry.url, options);
  return new Worker(loaderBootstrap(entry.url), { ...options, eval: true });
}

/** Script for an eval worker: register tsx, then import the TypeScript worker module. */
function loaderBootstrap(url: URL): string {
  let api: string;
  try {
    api = import.meta.resolve('tsx/esm/api');
  } catch {
    throw new Error(`worker ${url.pathname} is TypeScript run from source: that needs tsx (npm install, devDependencies)`);
  }
  return `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(url.href)}); });`;
}
