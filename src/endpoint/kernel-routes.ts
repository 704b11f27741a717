/**
 * Kernel routes for the tunnel, as wg-quick does: on start, each peer prefix is routed into the
 * TUN device; on stop, exactly the routes we added are removed again (never an operator's).
 *
 * Underlay protection (seed 002, the OpenMPTCProuter case): if a tunnel prefix would capture a
 * peer's underlay endpoint (a default route into the tunnel, say), the endpoint's current route
 * is pinned first with a host route, so the encapsulated packets never loop back into the tunnel.
 */
import { execFileSync } from 'node:child_process';
import { formatAddress, formatPrefix, prefixContains, type AddressBytes, type Prefix } from '../wire/address-text.ts';

export type IpRunner = (args: string[]) => string;

/** Runs `ip ARGS...` and returns stdout; throws with the tool's stderr on failure. */
export const runIp: IpRunner = (args) =>
  execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 });

interface UnderlayRoute {
  gateway?: string;
  dev?: string;
}

export class KernelRoutes {
  /** Route specs we added, in order, each as the `ip route` arguments after add/del. */
  private readonly added: string[][] = [];

  constructor(
    private readonly dev: string,
    private readonly log: (line: string) => void = () => {},
    private readonly ip: IpRunner = runIp,
  ) {}

  /**
   * Pin underlay host routes for endpoints a tunnel prefix would capture, then add the tunnel
   * routes. `prefixes` are the peer routes; `endpoints` the peers' underlay addresses.
   */
  install(prefixes: readonly Prefix[], endpoints: readonly AddressBytes[]): void {
    for (const ep of endpoints) {
      const capturing = prefixes.find((p) => prefixContains(p, ep));
      if (capturing === undefined) continue;
      const epText = formatAddress(ep.bytes, 0, ep.family);
      const via = this.underlayRoute(ep);
      if (via === undefined || via.dev === this.dev) {
        this.log(
          `warning: ${formatPrefix(capturing)} captures peer endpoint ${epText} and no underlay route to it was found; traffic to the peer may loop`,
        );
        continue;
      }
      const spec = [`${epText}/${ep.family === 4 ? 32 : 128}`];
      if (via.gateway) spec.push('via', via.gateway);
      if (via.dev) spec.push('dev', via.dev);
      this.log(
        `warning: ${formatPrefix(capturing)} would capture peer endpoint ${epText}; keeping it reachable with host route ${spec.join(' ')}`,
      );
      this.add(spec);
    }
    for (const p of prefixes) this.add([formatPrefix(p), 'dev', this.dev]);
  }

  /** Remove every route we added, newest first. Errors are logged, never thrown. */
  remove(): void {
    while (this.added.length > 0) this.del(this.added.pop()!);
  }

  private del(spec: string[]): void {
    try {
      this.ip(['route', 'del', ...spec]);
    } catch (e) {
      // The TUN going away removes its routes with it: not worth a warning.
      const msg = errorText(e);
      if (!/No such process|Cannot find device/.test(msg)) this.log(`warning: ip route del ${spec.join(' ')}: ${msg}`);
    }
  }

  /**
   * Route one more prefix into the TUN at run time (a mobile node's host route at its home
   * agent, a mobile node's tunnel routes when it leaves home). Throws like install().
   */
  addRoute(prefix: Prefix): void {
    this.add([formatPrefix(prefix), 'dev', this.dev]);
  }

  /** Take back one route addRoute() or install() added (logged, never thrown, when it fails). */
  removeRoute(prefix: Prefix): void {
    const text = formatPrefix(prefix);
    const i = this.added.findIndex((s) => s.length === 3 && s[0] === text && s[2] === this.dev);
    if (i < 0) return;
    const [spec] = this.added.splice(i, 1);
    this.del(spec!);
  }

  /** Routes currently installed by us (for show and tests). */
  get installed(): readonly string[][] {
    return this.added;
  }

  private add(spec: string[]): void {
    try {
      this.ip(['route', 'add', ...spec]);
      this.added.push(spec);
    } catch (e) {
      const msg = errorText(e);
      if (/File exists/.test(msg)) {
        this.log(`warning: route ${spec.join(' ')} already exists; leaving it as it is`);
        return;
      }
      throw new Error(`ip route add ${spec.join(' ')}: ${msg}`);
    }
  }

  private underlayRoute(ep: AddressBytes): UnderlayRoute | undefined {
    try {
      const out = this.ip(['-j', 'route', 'get', formatAddress(ep.bytes, 0, ep.family)]);
      const r = (JSON.parse(out) as Array<{ gateway?: string; dev?: string }>)[0];
      return r ? { gateway: r.gateway, dev: r.dev } : undefined;
    } catch {
      return undefined;
    }
  }
}

function errorText(e: unknown): string {
  const err = e as { stderr?: string | Buffer; message?: string };
  const s = err.stderr ? String(err.stderr).trim() : '';
  return (s || err.message || String(e)).split('\n')[0]!;
}
