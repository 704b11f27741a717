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
 *   controlGroup       none            controlMode     0600 (0660 with a group)
 *   metrics            none
 *   log                "info"
 *
 * File formats, chosen by the file name's extension: .json strict JSON; .jsonc JSON with
 * comments and trailing commas; .yaml / .yml YAML 1.2. Any other name is read as JSON. Syntax
 * errors name the line and column; everything else names the path, the same in every format.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';
import { ConfigError, PathError } from './errors.ts';
import { JsonSyntaxError, parseJson } from './json-parse.ts';
import { parseYaml, YamlSyntaxError } from './yaml-parse.ts';
import { normalize, type ParseOptions } from './normalize.ts';
import type { Config } from './types.ts';

export * from './types.ts';
export { ConfigError, formatPath } from './errors.ts';
export { decodeKey } from './key.ts';
export { assertResolved, isResolved, resolveConfig, resolveEndpoint, type Lookup, type ResolveOptions } from './resolve.ts';
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
  const format = configFormat(path);
  let json: unknown;
  try {
    json = format === 'yaml' ? parseYaml(text) : parseJson(text, { jsonc: format === 'jsonc' });
  } catch (e) {
    if (e instanceof JsonSyntaxError) {
      throw new ConfigError(`${path}: line ${e.line}, column ${e.column}: JSON syntax error: ${e.reason}`);
    }
    if (e instanceof YamlSyntaxError) throw new ConfigError(`${path}: ${e.message}`);
    throw e;
  }
  try {
    return parseConfig(json, path, { baseDir: dirname(resolve(path)) });
  } catch (e) {
    // YAML reads 0011 or 0660 as numbers: say how to keep them text.
    if (format === 'yaml' && e instanceof ConfigError && /, got number [^ ]+$/.test(e.message)) {
      throw new ConfigError(`${e.message} (quote it in YAML to keep it text)`, e.path);
    }
    throw e;
  }
}

export type ConfigFormat = 'json' | 'jsonc' | 'yaml';

/** The format a file name says: .yaml/.yml YAML, .jsonc JSON with comments, else JSON. */
export function configFormat(path: string): ConfigFormat {
  const ext = extname(path).toLowerCase();
  return ext === '.yaml' || ext === '.yml' ? 'yaml' : ext === '.jsonc' ? 'jsonc' : 'json';
}

/** Where configs named without a path live (`ipferry up ferry0`, the systemd unit's instance). */
export const CONFIG_DIR = '/etc/ipferry';
export const CONFIG_EXTENSIONS = ['.json', '.jsonc', '.yaml', '.yml'] as const;

/**
 * The file a config argument names: the file itself when it exists; else, for a name without an
 * extension, NAME.json, NAME.jsonc, NAME.yaml or NAME.yml (exactly one of them), looked for beside
 * NAME and, for a bare name, in /etc/ipferry (as wg-quick finds /etc/wireguard/wg0.conf).
 * Throws a one-line ConfigError when none or several match.
 */
export function findConfigFile(arg: string, configDir = CONFIG_DIR): string {
  const isFile = (p: string): boolean => {
    try {
      return statSync(p).isFile();
    } catch {
      return false;
    }
  };
  if (existsSync(arg) || extname(arg) !== '') return arg;
  const bases = [arg, ...(/^[\w.-]+$/.test(arg) ? [join(configDir, arg)] : [])];
  for (const base of bases) {
    const found = CONFIG_EXTENSIONS.map((e) => base + e).filter(isFile);
    if (found.length > 1) throw new ConfigError(`${arg}: several configs match (${found.join(', ')}): name one`);
    if (found.length === 1) return found[0]!;
  }
  throw new ConfigError(`${arg}: no such file (nor ${bases.map((b) => `${b}.{json,jsonc,yaml,yml}`).join(' or ')})`);
}
