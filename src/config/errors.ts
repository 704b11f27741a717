/**
 * Config errors: ONE line naming the file and the path inside it, e.g.
 *   config.json: peers[1].routes[0]: host bits set in 192.168.20.1/24
 */

export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    message: string,
    /** The path inside the config ("peers[1].routes[0]"), '' for the whole file. */
    readonly path = '',
  ) {
    super(message);
  }
}

/** Thrown by the shape and semantic checks; turned into a ConfigError with the source prefix. */
export class PathError extends Error {
  constructor(
    readonly path: string,
    readonly detail: string,
  ) {
    super(detail);
  }
}

export function fail(path: string, detail: string): never {
  throw new PathError(path, detail);
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out;
}
