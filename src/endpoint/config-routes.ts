/**
 * The routes a config implies, in one place:
 * - the endpoint's router: each peer's prefixes (dev = peer name), the own stack's addresses
 *   (type local), the TUN's connected subnets (dev = the interface: the kernel side), then the
 *   config's extra `routes` lines and policy `rules`;
 * - the source check (AllowedIPs): each peer's prefixes, the peer index as the value, looked up
 *   by inner source;
 * - the kernel routes through the TUN: peer prefixes, stack addresses, and extra main-table
 *   unicast routes whose nexthops all lead to peers.
 */
import { STACK_DEV, type Config } from '../config/config.ts';
import { AllowedSources } from '../route/allowed.ts';
import { Router } from '../route/router.ts';
import { formatPrefix, maskInPlace, type Prefix } from '../wire/address-text.ts';

/** Route and dev name for the endpoint's own stack. */
export { STACK_DEV };

function toPrefix(r: { family: 4 | 6; bytes: Uint8Array; length: number }): Prefix {
  return { family: r.family, bytes: r.bytes, length: r.length };
}

function hostPrefix(a: { family: 4 | 6; bytes: Uint8Array }): Prefix {
  return { family: a.family, bytes: a.bytes, length: a.family === 4 ? 32 : 128 };
}

/** The endpoint's router and source check (AllowedIPs; peer index = position in config.peers). */
export function buildRouters(config: Config): { router: Router; allowed: AllowedSources } {
  const router = new Router({ keepText: true });
  const allowed = new AllowedSources();
  const ifName = config.interface.name;
  config.peers.forEach((peer, index) => {
    for (const r of peer.routes) {
      const prefix = toPrefix(r);
      router.add({ prefix, dev: peer.name, text: `${formatPrefix(prefix)} dev ${peer.name}` });
      allowed.add(prefix, index);
    }
  });
  for (const a of config.stack.address) {
    const prefix = hostPrefix(a);
    router.add({ prefix, type: 'local', dev: STACK_DEV, text: `local ${formatPrefix(prefix)} dev ${STACK_DEV}` });
  }
  for (const a of config.interface.address) {
    if (a.length === (a.family === 4 ? 32 : 128)) continue;
    const bytes = Uint8Array.from(a.bytes);
    maskInPlace(bytes, a.length);
    const prefix: Prefix = { family: a.family, bytes, length: a.length };
    try {
      router.add({ prefix, dev: ifName, text: `${formatPrefix(prefix)} dev ${ifName} proto kernel` });
    } catch {
      /* a peer or config route for the same prefix wins */
    }
  }
  for (const r of config.routes) router.add({ ...r.parsed, text: r.text });
  for (const r of config.rules) router.addRule(r.parsed);
  return { router, allowed };
}

/** Prefixes to route into the TUN in the kernel (as wg-quick does for AllowedIPs). */
export function kernelPrefixes(config: Config): Prefix[] {
  const prefixes: Prefix[] = [];
  for (const p of config.peers) for (const r of p.routes) prefixes.push(toPrefix(r));
  for (const a of config.stack.address) prefixes.push(hostPrefix(a));
  const peerNames = new Set(config.peers.map((p) => p.name));
  for (const r of config.routes) {
    const s = r.parsed;
    if ((s.type ?? 'unicast') !== 'unicast' || (s.table !== undefined && s.table !== 'main' && s.table !== 254)) continue;
    const hops = s.nexthops && s.nexthops.length > 0 ? s.nexthops : [s];
    if (typeof s.prefix !== 'string' && hops.every((h) => h.dev && peerNames.has(h.dev))) prefixes.push(s.prefix);
  }
  return prefixes;
}
