/**
 * Kernel routes for the tunnel, as wg-quick does: on start, each peer prefix is routed into the
 * TUN device; on stop, exactly the routes we added are removed again (never an operator's).
 *
 * Underlay protection (seed 002, the OpenMPTCProuter case): if a tunnel prefix would capture a
 * peer's underlay endpoint (a default route into the tunnel, say), the endpoint's current route
 * is pinned first with a host route, so the encapsulated packets never loop back into the tunnel.
 *
 * Every route we add carries our own route protocol number (`proto 249`, ROUTE_PROTO; routing
 * daemons mark theirs the same way: bird 12, babel 42, FRR 186-197), and we delete only routes with
 * that mark. An endpoint killed with SIGKILL cannot clean up: its TUN (not persistent) goes away
 * with the process and takes the tunnel routes along, but the pinned underlay host route stays.
 * So the next start first removes stale routes with our mark that are ours to remove
 * (removeStale): any through our interface, and host routes to one of our peers' endpoints.
 *
 * On a reload, sync() moves the installed set to the new one: routes that go are removed,
 * new ones added, the rest left alone (traffic on them never sees a gap). Every call returns the
 * routes it added and removed (`ip route` text), for the log.
 */
import { execFileSync } from 'node:child_process';
import { formatAddress, formatPrefix, prefixContains, type AddressBytes, type Prefix } from '../wire/address-text.ts';

export type IpRunner = (args: string[]) => string;

/**
 * The route protocol number (`ip route ... proto N`, rtm_protocol) on the routes we add: not one
 * of iproute2's rt_protos names, nor FRR's 186-197. `ip route show proto 249` lists ours.
 */
export const ROUTE_PROTO = 249;
const PROTO_ARGS = ['proto', String(ROUTE_PROTO)];

/** A route as `ip -j route show` prints it (the fields removeStale reads). */
interface IpJsonRoute {
  dst?: string;
  gateway?: string;
  dev?: string;
  table?: string;
  type?: string;
}

/** Runs `ip ARGS...` and returns stdout; throws with the tool's stderr on failure. */
export const runIp: IpRunner = (args) =>
  execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 });

interface UnderlayRoute {
  gateway?: string;
  dev?: string;
}

/** What a call changed, each route as `ip route` arguments joined ("192.168.20.0/24 dev ferry0"). */
export interface KernelRouteChanges {
  added: string[];
  removed: string[];
}

export class KernelRoutes {
  /** Route specs we added, in order, each as the `ip route` arguments after add/del. */
  private readonly added: string[][] = [];
  /** Those added at run time with addRoute (mobility): sync() leaves them alone. */
  private readonly runTime = new Set<string>();

  constructor(
    private readonly dev: string,
    private readonly log: (line: string) => void = () => {},
    private readonly ip: IpRunner = runIp,
  ) {}

  /**
   * Pin underlay host routes for endpoints a tunnel prefix would capture, then add the tunnel
   * routes. `prefixes` are the peer routes; `endpoints` the peers' underlay addresses.
   */
  install(prefixes: readonly Prefix[], endpoints: readonly AddressBytes[]): KernelRouteChanges {
    const out: KernelRouteChanges = { added: [], removed: [] };
    for (const spec of this.wanted(prefixes, endpoints)) if (this.add(spec)) out.added.push(spec.join(' '));
    return out;
  }

  /**
   * Move the installed routes to what `prefixes` and `endpoints` want now (a reload, a peer
   * moved): remove ours that are no longer wanted (newest first), add the new ones; routes in
   * both stay untouched. Removal errors are logged; an add that fails throws (as install does).
   */
  sync(prefixes: readonly Prefix[], endpoints: readonly AddressBytes[]): KernelRouteChanges {
    const out: KernelRouteChanges = { added: [], removed: [] };
    const want = this.wanted(prefixes, endpoints);
    const wantKeys = new Set(want.map((s) => s.join(' ')));
    for (let i = this.added.length - 1; i >= 0; i--) {
      const spec = this.added[i]!;
      if (wantKeys.has(spec.join(' ')) || this.runTime.has(spec.join(' '))) continue;
      this.added.splice(i, 1);
      if (this.del(spec)) out.removed.push(spec.join(' '));
    }
    const have = new Set(this.added.map((s) => s.join(' ')));
    for (const spec of want) {
      if (!have.has(spec.join(' ')) && this.add(spec)) out.added.push(spec.join(' '));
    }
    return out;
  }

  /**
   * The routes wanted, in the order to add them: a host route pinning each peer endpoint a
   * tunnel prefix would capture (one we pinned before is kept as it is), then the prefixes.
   */
  private wanted(prefixes: readonly Prefix[], endpoints: readonly AddressBytes[]): string[][] {
    const out: string[][] = [];
    for (const ep of endpoints) {
      const capturing = prefixes.find((p) => prefixContains(p, ep));
      if (capturing === undefined) continue;
      const epText = formatAddress(ep.bytes, 0, ep.family);
      const host = `${epText}/${ep.family === 4 ? 32 : 128}`;
      const pinned = this.added.find((s) => s[0] === host && !s.includes(this.dev));
      if (pinned !== undefined) {
        out.push(pinned);
        continue;
      }
      const via = this.underlayRoute(ep);
      if (via === undefined || via.dev === this.dev) {
        this.log(
          `warning: ${formatPrefix(capturing)} captures peer endpoint ${epText} and no underlay route to it was found; traffic to the peer may loop`,
        );
        continue;
      }
      const spec = [host];
      if (via.gateway) spec.push('via', via.gateway);
      if (via.dev) spec.push('dev', via.dev);
      this.log(
        `warning: ${formatPrefix(capturing)} would capture peer endpoint ${epText}; keeping it reachable with host route ${spec.join(' ')}`,
      );
      out.push(spec);
    }
    for (const p of prefixes) out.push([formatPrefix(p), 'dev', this.dev]);
    return out;
  }

  /**
   * Remove the routes with our mark that an endpoint on this interface left behind when it was
   * killed: those through `dev` and host routes to one of `endpoints` (the pinned underlay).
   * Call before install(). Returns the removed routes (`ip route` text); errors are logged.
   */
  removeStale(endpoints: readonly AddressBytes[]): string[] {
    const hosts = new Set(endpoints.map((e) => formatAddress(e.bytes, 0, e.family)));
    const removed: string[] = [];
    for (const family of ['-4', '-6']) {
      let routes: IpJsonRoute[];
      try {
        routes = JSON.parse(this.ip(['-j', family, 'route', 'show', 'table', 'all', ...PROTO_ARGS]) || '[]') as IpJsonRoute[];
      } catch (e) {
        this.log(`warning: cannot list stale routes (ip ${family} route show proto ${ROUTE_PROTO}): ${errorText(e)}`);
        continue;
      }
      for (const r of routes) {
        if (r.dst === undefined || (r.type !== undefined && r.type !== 'unicast')) continue;
        const host = r.dst.split('/')[0]!;
        const isHost = !r.dst.includes('/') || /\/(32|128)$/.test(r.dst);
        if (r.dev !== this.dev && !(isHost && hosts.has(host))) continue;
        const spec = [r.dst];
        if (r.gateway !== undefined) spec.push('via', r.gateway);
        if (r.dev !== undefined) spec.push('dev', r.dev);
        if (r.table !== undefined && r.table !== 'main') spec.push('table', r.table);
        try {
          this.ip(['route', 'del', ...spec, ...PROTO_ARGS]);
          removed.push(spec.join(' '));
          this.log(`removed stale route ${spec.join(' ')} proto ${ROUTE_PROTO} (left by an endpoint that did not stop cleanly)`);
        } catch (e) {
          this.log(`warning: cannot remove stale route ${spec.join(' ')}: ${errorText(e)}`);
        }
      }
    }
    return removed;
  }

  /** Remove every route we added, newest first. Errors are logged, never thrown. */
  remove(): KernelRouteChanges {
    const out: KernelRouteChanges = { added: [], removed: [] };
    this.runTime.clear();
    while (this.added.length > 0) {
      const spec = this.added.pop()!;
      if (this.del(spec)) out.removed.push(spec.join(' '));
    }
    return out;
  }

  /** `ip route del`: true when it went (or was gone with the device); other errors logged. */
  private del(spec: string[]): boolean {
    try {
      this.ip(['route', 'del', ...spec, ...PROTO_ARGS]);
      return true;
    } catch (e) {
      // The TUN going away removes its routes with it: not worth a warning.
      const msg = errorText(e);
      if (!/No such process|Cannot find device/.test(msg)) this.log(`warning: ip route del ${spec.join(' ')}: ${msg}`);
      return false;
    }
  }

  /**
   * Route one more prefix into the TUN at run time (a mobile node's host route at its home
   * agent, a mobile node's tunnel routes when it leaves home). Throws like install().
   */
  addRoute(prefix: Prefix): void {
    const spec = [formatPrefix(prefix), 'dev', this.dev];
    if (this.add(spec)) this.runTime.add(spec.join(' '));
  }

  /** Take back one route addRoute() or install() added (logged, never thrown, when it fails). */
  removeRoute(prefix: Prefix): void {
    const text = formatPrefix(prefix);
    const i = this.added.findIndex((s) => s.length === 3 && s[0] === text && s[2] === this.dev);
    if (i < 0) return;
    const [spec] = this.added.splice(i, 1);
    this.runTime.delete(spec!.join(' '));
    this.del(spec!);
  }

  /** Routes currently installed by us (for show and tests). */
  get installed(): readonly string[][] {
    return this.added;
  }

  /** `ip route add`: true when added; false when it existed already (not ours: left alone). */
  private add(spec: string[]): boolean {
    try {
      this.ip(['route', 'add', ...spec, ...PROTO_ARGS]);
      this.added.push(spec);
      return true;
    } catch (e) {
      const msg = errorText(e);
      if (/File exists/.test(msg)) {
        this.log(`warning: route ${spec.join(' ')} already exists; leaving it as it is`);
        return false;
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
