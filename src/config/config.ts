/**
 * The ipferry config file: read it, check its shape (schema.ts) and meaning (normalize.ts), and
 * get back the normalized `Config` (types.ts). This module is the config layer's front door.
 *
 * Every error is a ConfigError whose message is ONE line naming the file and the path:
 *   config.json: peers[1].routes[0]: host bits set in 192.168.20.1/24
 *
 * Defaults (all keys but interface.name and peers[].name/endpoint are optional):
 *   interface.address  []              interface.mtu   1400
 *   listen             all addresses (dual-stack "::"), port DEFAULT_PORT (6080, GUE's port)
 *   stack.address      []              peers           []
 *   peers[].routes     []              peers[].mtu     interface.mtu
 *   peers[].keepalive  off             peers[].key     none
 *   routes, rules      []              mssClamp        true (derive from each peer's MTU)
 *   icmpRateLimit      { rate: 1000, burst: 50, perDestinationMs: 1000 }   (Linux's icmp_msgs_per_sec /
 *                      icmp_msgs_burst / icmp_ratelimit)
 *   hub                false           kernelRoutes    true
 *   control            CONTROL_DEFAULT: the CLI's default location (control/socket-path.ts);
 *                      false = no control socket
 *   log                "info"
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError, PathError } from './errors.ts';
import { JsonSyntaxError, parseJson } from './json-parse.ts';
import { normalize, type ParseOptions } from './normalize.ts';
import type { Config } from './types.ts';

export * from './types.ts';
export { ConfigError, formatPath } from './errors.ts';
export { decodeKey } from './key.ts';
export { configJsonSchema, ConfigSchema, type RawConfig } from './schema.ts';
export type { ParseOptions } from './normalize.ts';

/** Validate a parsed JSON value; throws ConfigError with a one-line message. */
export function parseConfig(json: unknown, source = '<config>', opts: ParseOptions = {}): Config {
  try {
    return normalize(json, source, opts);
  } catch (e) {
    if (e instanceof PathError) {
      throw new ConfigError(`${source}: ${e.path ? `${e.path}: ` : ''}${e.detail}`, e.path);
    }
    throw e;
  }
}

/** Read, parse and validate a config file; throws ConfigError with a one-line message. */
export function loadConfig(path: string): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'is a directory'
            : ((e as Error).message ?? String(e));
    throw new ConfigError(`${path}: ${why}`);
  }
  let json: unknown;
  try {
    json = parseJson(text);
  } catch (e) {
    if (e instanceof JsonSyntaxError) {
      throw new ConfigError(`${path}: line ${e.line}, column ${e.column}: JSON syntax error: ${e.reason}`);
    }
    throw e;
  }
  return parseConfig(json, path, { baseDir: dirname(resolve(path)) });
}
