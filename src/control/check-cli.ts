/**
 * `ipferry check CONFIG...`: validate config files alone, with nothing about this machine (no
 * root, no listen address, no DNS: hostnames are checked for form, not looked up). The example
 * configs pass it anywhere. `ipferry up --check` adds the environment checks.
 * Exit 0 all valid, 2 the first invalid one (one line naming the file and the field).
 */
import { findConfigFile, loadConfig } from '../config/config.ts';

export function checkCommand(files: string[]): number {
  for (const f of files) {
    const config = loadConfig(findConfigFile(f));
    const n = config.peers.length;
    const names = config.peers.filter((p) => p.endpoint.hostname !== null).length;
    process.stdout.write(`${config.source}: ok (${n} peer${n === 1 ? '' : 's'}${names > 0 ? `, ${names} by DNS name, resolved at start` : ''})\n`);
  }
  return 0;
}
