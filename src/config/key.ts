/** Pre-shared keys as written in a config: hex or base64 text to bytes. */
import { fail } from './errors.ts';
import { KEY_MIN_BYTES } from './types.ts';

const HEX_RE = /^[0-9a-fA-F]+$/;
const B64_RE = /^[A-Za-z0-9+/]*={0,2}$/;
const B64URL_RE = /^[A-Za-z0-9_-]*={0,2}$/;

/**
 * A pre-shared key: "hex:..." or "base64:...", or bare text that is taken as hex when it is an
 * even number of hex digits and as (standard or URL-safe) base64 otherwise.
 */
export function decodeKey(text: string, path = 'key'): Uint8Array {
  let t = text.trim();
  let kind: 'hex' | 'base64' | null = null;
  if (/^hex:/i.test(t)) {
    kind = 'hex';
    t = t.slice(4);
  } else if (/^base64:/i.test(t)) {
    kind = 'base64';
    t = t.slice(7);
  } else if (HEX_RE.test(t) && t.length % 2 === 0) kind = 'hex';
  else kind = 'base64';
  let bytes: Uint8Array;
  if (kind === 'hex') {
    if (!HEX_RE.test(t) || t.length % 2 !== 0) fail(path, 'key is not valid hex (an even number of hex digits)');
    bytes = Uint8Array.from(Buffer.from(t, 'hex'));
  } else {
    const std = B64_RE.test(t);
    if ((!std && !B64URL_RE.test(t)) || t.replace(/=+$/, '').length % 4 === 1) {
      fail(path, 'key is neither hex nor base64');
    }
    bytes = Uint8Array.from(Buffer.from(t, std ? 'base64' : 'base64url'));
  }
  if (bytes.every((b) => b === 0)) fail(path, 'key is all zeros (generate one: head -c 32 /dev/urandom | base64)');
  if (bytes.length < KEY_MIN_BYTES) {
    fail(path, `key too short (${bytes.length} bytes, need at least ${KEY_MIN_BYTES})`);
  }
  return bytes;
}
