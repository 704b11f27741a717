/**
 * Prometheus metrics: `metrics: "127.0.0.1:9587"` in the config serves `GET /metrics` in the text
 * exposition format (version 0.0.4) from the control plane.
 *
 * Written here in a few lines rather than with prom-client: the endpoint already keeps every
 * counter (its snapshot), so a scrape only has to print them. prom-client would add a second set
 * of counters to keep in step (or collect() callbacks doing the same printing), two
 * dependencies, and default process metrics nobody asked for.
 *
 * A scrape reads the endpoint's snapshot('stats'): counters, peers, pool, drops, route lookups,
 * mobility (bindings, handovers, the mipdiag counters) when it runs. It never builds
 * the route list, so its cost does not grow with the route table.
 */
import { createServer, type Server } from 'node:http';
import { DROP_REASON_NAMES } from '../base/drop-reason.ts';
import type { Snapshot } from '../endpoint/snapshot.ts';

type Labels = Record<string, string>;
interface Sample {
  labels?: Labels;
  value: number;
}

/** Label values escape backslash, double quote and newline (the format's rule). */
function labelText(labels: Labels | undefined): string {
  if (labels === undefined) return '';
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length > 0 ? `{${parts.join(',')}}` : '';
}

function num(v: number): string {
  return Number.isFinite(v) ? String(v) : Number.isNaN(v) ? 'NaN' : v > 0 ? '+Inf' : '-Inf';
}

/** One metric family: HELP, TYPE, then its samples. */
function family(out: string[], name: string, type: 'counter' | 'gauge', help: string, samples: Sample[]): void {
  out.push(`# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`);
  out.push(`# TYPE ${name} ${type}`);
  for (const s of samples) out.push(`${name}${labelText(s.labels)} ${num(s.value)}`);
}

/** The exposition text for one endpoint's snapshot (peers and stats; routes are not read). */
export function formatMetrics(s: Pick<Snapshot, 'interface' | 'peers' | 'stats'>): string {
  const out: string[] = [];
  const st = s.stats;
  const peer = (f: (p: Snapshot['peers'][number]) => number): Sample[] => s.peers.map((p) => ({ labels: { peer: p.name }, value: f(p) }));
  family(out, 'ipferry_info', 'gauge', 'The endpoint: its interface name (value always 1)', [{ labels: { interface: s.interface }, value: 1 }]);
  family(out, 'ipferry_start_time_seconds', 'gauge', 'When the endpoint started, seconds since the epoch', [{ value: st.startedAt / 1000 }]);
  family(out, 'ipferry_peer_up', 'gauge', 'Whether the peer is considered up (1) or not (0)', peer((p) => (p.up === false ? 0 : 1)));
  family(out, 'ipferry_peer_receive_packets_total', 'counter', 'Datagrams received from the peer', peer((p) => p.rxPackets));
  family(out, 'ipferry_peer_receive_bytes_total', 'counter', 'Bytes received from the peer (UDP payload)', peer((p) => p.rxBytes));
  family(out, 'ipferry_peer_transmit_packets_total', 'counter', 'Datagrams sent to the peer', peer((p) => p.txPackets));
  family(out, 'ipferry_peer_transmit_bytes_total', 'counter', 'Bytes sent to the peer (UDP payload)', peer((p) => p.txBytes));
  family(out, 'ipferry_peer_drops_total', 'counter', 'Packets from or toward the peer that were dropped', peer((p) => p.drops));
  family(
    out,
    'ipferry_peer_last_receive_timestamp_seconds',
    'gauge',
    'When a datagram last arrived from the peer, seconds since the epoch (0: never)',
    peer((p) => (p.lastRx ?? 0) / 1000),
  );
  const io = (dir: 'receive' | 'transmit', what: 'packets' | 'bytes', dev: 'device' | 'udp'): Sample[] => {
    const c = dev === 'device' ? (dir === 'receive' ? st.tunRx : st.tunTx) : dir === 'receive' ? st.udpRx : st.udpTx;
    return [{ value: c[what] }];
  };
  for (const dev of ['device', 'udp'] as const) {
    const where = dev === 'device' ? 'the TUN (or in-memory) device' : 'the UDP underlay';
    for (const dir of ['receive', 'transmit'] as const) {
      for (const what of ['packets', 'bytes'] as const) {
        family(out, `ipferry_${dev}_${dir}_${what}_total`, 'counter', `${what === 'packets' ? 'Packets' : 'Bytes'} ${dir === 'receive' ? 'read from' : 'written to'} ${where}`, io(dir, what, dev));
      }
    }
  }
  family(out, 'ipferry_forwarded_packets_total', 'counter', 'Packets forwarded from one peer to another (hub mode)', [{ value: st.forwarded }]);
  family(out, 'ipferry_icmp_errors_sent_total', 'counter', 'ICMP and ICMPv6 errors the endpoint sent (unreachable, too big, time exceeded)', [{ value: st.icmpSent }]);
  const reasons = new Map<string, number>();
  for (const n of DROP_REASON_NAMES) if (n !== undefined && n !== 'None') reasons.set(n, 0);
  for (const [k, v] of Object.entries(st.drops)) reasons.set(k, v);
  family(out, 'ipferry_drops_total', 'counter', 'Packets dropped, by reason', [...reasons].map(([reason, value]) => ({ labels: { reason }, value })));
  family(out, 'ipferry_pool_live_slots', 'gauge', 'Packet buffer slots in use', [{ value: st.poolLive }]);
  family(out, 'ipferry_pool_capacity_slots', 'gauge', 'Packet buffer slots in all', [{ value: st.poolCapacity }]);
  family(out, 'ipferry_pool_exhausted_total', 'counter', 'Times a packet buffer was wanted and none was free', [{ value: st.poolExhausted }]);
  const lookups = st.extra?.routeLookups;
  if (lookups !== undefined) family(out, 'ipferry_route_lookups_total', 'counter', 'Route lookups the data plane made (one per routed packet; one per TCP super-packet on the fast path)', [{ value: lookups }]);
  const mob = st.mobility?.counters;
  if (mob !== undefined) {
    const { Bindings: bindings, ...counters } = mob;
    family(out, 'ipferry_mobility_bindings', 'gauge', 'Binding cache entries now (home agent and correspondent roles)', [{ value: bindings ?? 0 }]);
    family(out, 'ipferry_mobility_handovers_total', 'counter', 'Handovers: care-of changes a home agent saw, and a mobile node\'s own moves', [
      { labels: { role: 'home-agent' }, value: counters.NCareOfChanges ?? 0 },
      { labels: { role: 'mobile-node' }, value: counters.NHandovers ?? 0 },
    ]);
    family(out, 'ipferry_mobility_events_total', 'counter', 'Mobility counters by their mipdiag -s names (and ours after them)', Object.entries(counters).map(([counter, value]) => ({ labels: { counter }, value })));
  }
  const reasm = st.extra?.reassemblyBytes;
  if (reasm !== undefined) family(out, 'ipferry_reassembly_memory_bytes', 'gauge', "Memory held by fragments waiting for reassembly (the endpoint's own stack)", [{ value: reasm }]);
  return `${out.join('\n')}\n`;
}

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export interface MetricsServerOptions {
  /** null = all addresses. */
  host: string | null;
  port: number;
  /** The data to print (the endpoint's snapshot('stats')). */
  collect: () => Pick<Snapshot, 'interface' | 'peers' | 'stats'> | Promise<Pick<Snapshot, 'interface' | 'peers' | 'stats'>>;
  log?: (line: string) => void;
}

/** An HTTP server answering GET /metrics (and / with a pointer to it). */
export class MetricsServer {
  private constructor(
    private readonly server: Server,
    /** "127.0.0.1:9587" as bound (the port filled in when 0 was asked). */
    readonly address: string,
  ) {}

  static async start(opts: MetricsServerOptions): Promise<MetricsServer> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
        return;
      }
      if (path === '/') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ipferry: metrics at /metrics\n');
        return;
      }
      if (path !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
        return;
      }
      Promise.resolve()
        .then(() => opts.collect())
        .then(
          (s) => res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE }).end(req.method === 'HEAD' ? undefined : formatMetrics(s)),
          (e: unknown) => {
            opts.log?.(`warning: metrics: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`);
            res.writeHead(500, { 'content-type': 'text/plain' }).end('collecting metrics failed\n');
          },
        );
    });
    server.headersTimeout = 10_000;
    server.requestTimeout = 10_000;
    server.maxConnections = 64;
    await new Promise<void>((resolvePromise, reject) => {
      server.once('error', reject);
      server.listen({ port: opts.port, host: opts.host ?? undefined }, () => {
        server.off('error', reject);
        resolvePromise();
      });
    });
    const a = server.address();
    const text = typeof a === 'object' && a !== null ? (a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`) : String(a);
    server.on('error', (e) => opts.log?.(`warning: metrics: ${e.message}`));
    return new MetricsServer(server, text);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
