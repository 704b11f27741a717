/**
 * `ipferry genkey`: a new pre-shared key, 32 random bytes from the system's CSPRNG, base64 (as
 * `wg genkey` prints), for `peers[].key` on both ends. Not a secret store: put it in the two
 * configs and keep them readable by root only.
 */
import { randomBytes } from 'node:crypto';

export const KEY_BYTES = 32;

export function genkeyCommand(): number {
  process.stdout.write(`${randomBytes(KEY_BYTES).toString('base64')}\n`);
  return 0;
}
