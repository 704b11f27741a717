/**
 * A peer given by DNS name, looked up again (when it went down: its address may have moved, as
 * wg users expect of a dynamic-DNS endpoint). The decision only; the endpoint acts on it.
 */
import { resolveEndpoint, type Config, type ConfigEndpoint, type ResolveOptions } from '../config/config.ts';
import { checkPeerEndpoints } from '../config/normalize.ts';

export type Reresolved =
  /** Not a name, not in the config, or the same address. */
  | { kind: 'same' }
  /** The name has another address now: `config` is `c` with it. */
  | { kind: 'moved'; hostname: string; from: ConfigEndpoint; to: ConfigEndpoint; config: Config }
  /** The lookup failed, or the new address cannot be used: why, in one line. */
  | { kind: 'failed'; hostname: string; why: string };

export async function reresolvePeer(c: Config, name: string, opts?: ResolveOptions): Promise<Reresolved> {
  const i = c.peers.findIndex((pc) => pc.name === name);
  const pc = c.peers[i];
  if (pc === undefined || pc.endpoint.hostname === null) return { kind: 'same' };
  const hostname = pc.endpoint.hostname;
  let to: ConfigEndpoint;
  try {
    to = await resolveEndpoint(pc.endpoint, c.listen, `peers[${i}].endpoint`, opts);
  } catch (e) {
    return { kind: 'failed', hostname, why: (e as Error).message.split('\n')[0]! };
  }
  const from = pc.endpoint;
  if (to.family === from.family && to.port === from.port && Buffer.from(to.bytes).equals(Buffer.from(from.bytes))) return { kind: 'same' };
  const peers = c.peers.map((p) => (p === pc ? { ...p, endpoint: to } : p));
  try {
    checkPeerEndpoints(peers, c.listen);
  } catch (e) {
    return { kind: 'failed', hostname, why: `now resolves to ${to.host}: ${(e as Error).message}` };
  }
  return { kind: 'moved', hostname, from, to, config: { ...c, peers } };
}
