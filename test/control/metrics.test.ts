/**
 * Prometheus metrics: the text the endpoint serves is read back by the Prometheus project's own
 * Python client parser (prometheus_client.parser, Debian's python3-prometheus-client: an
 * independent, strict reader of the exposition format), from a formatted snapshot, from an
 * in-process endpoint pair, and from `ipferry up` with `metrics:` in its config. A scrape must
 * not build the route list (its cost would grow with the table).
 */
import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../src/config/config.ts';
import { formatMetrics, METRICS_CONTENT_TYPE, MetricsServer } from '../../src/control/metrics.ts';
import { Endpoint } from '../../src/endpoint/endpoint.ts';
import { runCli, startCli } from './cli-helper.ts';
import { fakeSnapshot, NOW } from './fake-snapshot.ts';

const PY = '/usr/bin/python3';
const hasParser = (() => {
  try {
    execFileSync(PY, ['-c', 'import prometheus_client.parser'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
if (!hasParser) console.warn('metrics.test: python3-prometheus-client missing: the exposition-format oracle is skipped (apt-get install python3-prometheus-client)');

type Family = { name: string; type: string; help: string; samples: { name: string; labels: Record<string, string>; value: number }[] };

/** Parse with prometheus_client (raises on anything malformed). */
function parseExposition(text: string): Map<string, Family> {
  const py = `
import sys, json
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    out.append({"name": f.name, "type": f.type, "help": f.documentation,
                "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples]})
print(json.dumps(out))
`;
  const fams = JSON.parse(execFileSync(PY, ['-c', py], { input: text, encoding: 'utf8', timeout: 30_000 })) as Family[];
  return new Map(fams.map((f) => [f.name, f]));
}

const value = (fams: Map<string, Family>, family: string, labels: Record<string, string> = {}): number | undefined =>
  fams.get(family)?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

const dir = mkdtempSync(join(tmpdir(), 'ipferry-metrics-'));
const children: ReturnType<typeof startCli>[] = [];
afterAll(() => {
  for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

async function freeTcpPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
async function freeUdpPorts(n: number): Promise<number[]> {
  const socks = Array.from({ length: n }, () => createSocket('udp4'));
  await Promise.all(socks.map((s) => new Promise<void>((r) => s.bind(0, '127.0.0.1', r))));
  const ports = socks.map((s) => s.address().port);
  await Promise.all(socks.map((s) => new Promise<void>((r) => s.close(r))));
  return ports;
}

describe('formatMetrics', () => {
  it('line format by hand: HELP, TYPE, samples; label values escaped', () => {
    const s = fakeSnapshot();
    s.peers[0]!.name = 'a"b\\c';
    const text = formatMetrics(s);
    expect(text).toContain('# HELP ipferry_peer_receive_packets_total Datagrams received from the peer\n# TYPE ipferry_peer_receive_packets_total counter\n');
    expect(text).toContain('ipferry_peer_receive_packets_total{peer="a\\"b\\\\c"} 1000\n');
    expect(text).toContain(`ipferry_start_time_seconds ${s.stats.startedAt / 1000}\n`);
    expect(text.endsWith('\n')).toBe(true);
  });

  it.skipIf(!hasParser)('parsed by prometheus_client: every family, the snapshot values', () => {
    const s = fakeSnapshot();
    const fams = parseExposition(formatMetrics(s));
    const st = s.stats;
    expect(value(fams, 'ipferry_peer_receive_packets', { peer: 'shanghai' })).toBe(1000);
    expect(value(fams, 'ipferry_peer_transmit_bytes', { peer: 'shanghai' })).toBe(3_565_158);
    expect(value(fams, 'ipferry_peer_up', { peer: 'shanghai' })).toBe(1);
    expect(value(fams, 'ipferry_peer_last_receive_timestamp_seconds', { peer: 'shanghai' })).toBe((NOW - 3000) / 1000);
    expect(value(fams, 'ipferry_device_receive_packets')).toBe(st.tunRx.packets);
    expect(value(fams, 'ipferry_udp_transmit_bytes')).toBe(st.udpTx.bytes);
    expect(value(fams, 'ipferry_icmp_errors_sent')).toBe(st.icmpSent);
    expect(value(fams, 'ipferry_pool_live_slots')).toBe(st.poolLive);
    for (const [reason, n] of Object.entries(st.drops)) expect(value(fams, 'ipferry_drops', { reason })).toBe(n);
    expect(value(fams, 'ipferry_drops', { reason: 'FragmentTimeout' })).toBe(0); // every reason present, 0 when none
    expect(fams.get('ipferry_drops')!.type).toBe('counter');
    expect(fams.get('ipferry_pool_live_slots')!.type).toBe('gauge');
    expect(value(fams, 'ipferry_info', { interface: 'ferry0' })).toBe(1);
  });

  it.skipIf(!hasParser)('route lookups and mobility (bindings gauge, handovers, the mipdiag counters) when the snapshot has them', () => {
    const s = fakeSnapshot();
    expect(parseExposition(formatMetrics(s)).has('ipferry_mobility_bindings')).toBe(false);
    s.stats.extra = { ...(s.stats.extra ?? {}), routeLookups: 12345 };
    s.stats.mobility = { counters: { NBindUpdatesRcvd: 5, NCareOfChanges: 2, NHandovers: 1, Bindings: 3 }, mipdiag: 1 };
    const fams = parseExposition(formatMetrics(s));
    expect(value(fams, 'ipferry_route_lookups')).toBe(12345);
    expect(fams.get('ipferry_mobility_bindings')!.type).toBe('gauge');
    expect(value(fams, 'ipferry_mobility_bindings')).toBe(3);
    expect(value(fams, 'ipferry_mobility_handovers', { role: 'home-agent' })).toBe(2);
    expect(value(fams, 'ipferry_mobility_handovers', { role: 'mobile-node' })).toBe(1);
    expect(value(fams, 'ipferry_mobility_events', { counter: 'NBindUpdatesRcvd' })).toBe(5);
    expect(value(fams, 'ipferry_mobility_events', { counter: 'Bindings' })).toBeUndefined(); // a gauge, not a counter
  });
});

describe('a real endpoint pair in-process: scraped over HTTP, no route list built', () => {
  it.skipIf(!hasParser)('counts the pings; router.list is never called by a scrape', async () => {
    const [pa, pb] = await freeUdpPorts(2);
    const site = (name: string, port: number, peer: number, own: string, theirs: string) =>
      parseConfig({ interface: { name }, listen: `127.0.0.1:${port}`, stack: { address: [own] }, peers: [{ name: 'other', endpoint: `127.0.0.1:${peer}`, routes: [`${theirs}/32`] }], control: false });
    const a = new Endpoint(site('ma', pa!, pb!, '10.0.0.1', '10.0.0.2'), { tun: false, warmUp: 0 });
    const b = new Endpoint(site('mb', pb!, pa!, '10.0.0.2', '10.0.0.1'), { tun: false, warmUp: 0 });
    await a.start();
    await b.start();
    const server = await MetricsServer.start({ host: '127.0.0.1', port: 0, collect: () => a.snapshot('stats') });
    try {
      for (let i = 0; i < 3; i++) await a.ping('10.0.0.2', 1000);
      const list = vi.spyOn(a.router, 'list');
      const res = await fetch(`http://${server.address}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe(METRICS_CONTENT_TYPE);
      const fams = parseExposition(await res.text());
      expect(list).not.toHaveBeenCalled();
      expect(value(fams, 'ipferry_peer_transmit_packets', { peer: 'other' })).toBeGreaterThanOrEqual(3);
      expect(value(fams, 'ipferry_peer_receive_packets', { peer: 'other' })).toBeGreaterThanOrEqual(3);
      expect(value(fams, 'ipferry_peer_receive_bytes', { peer: 'other' })).toBeGreaterThanOrEqual(3 * 1028);
      expect(value(fams, 'ipferry_pool_live_slots')).toBe(a.pools.live);
      expect(value(fams, 'ipferry_reassembly_memory_bytes')).toBe(0);
      // the pongs were routed by a's pipeline (one lookup per routed packet)
      expect(value(fams, 'ipferry_route_lookups')).toBeGreaterThanOrEqual(3);
      expect((await fetch(`http://${server.address}/nope`)).status).toBe(404);
      expect((await fetch(`http://${server.address}/metrics`, { method: 'POST' })).status).toBe(405);
    } finally {
      await server.close();
      await a.stop();
      await b.stop();
    }
  });
});

describe('ipferry up with metrics in the config', () => {
  it.skipIf(!hasParser)('serves /metrics while running, says where, closes on stop; a taken port is a preflight error', async () => {
    const [udp] = await freeUdpPorts(1);
    const port = await freeTcpPort();
    const file = join(dir, 'm.yaml');
    writeFileSync(
      file,
      `interface: { name: mup${process.pid % 10000} }\nlisten: 127.0.0.1:${udp}\ncontrol: ${join(dir, 'm.sock')}\nmetrics: 127.0.0.1:${port}\nstack: { address: [10.0.0.1/32] }\npeers:\n  - { name: far, endpoint: 127.0.0.1:9, routes: [10.0.0.2/32] }\n`,
    );
    const up = startCli(['up', '--userspace', file], { env: { IPFERRY_WARMUP: '0' } });
    children.push(up);
    await up.waitFor(/metrics on http:/);
    expect(up.stderr).toContain(`metrics on http://127.0.0.1:${port}/metrics`);
    const fams = parseExposition(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
    expect(value(fams, 'ipferry_peer_up', { peer: 'far' })).toBe(0); // never heard from
    expect(value(fams, 'ipferry_pool_capacity_slots')).toBeGreaterThan(0);

    // The same port again: refused before anything starts.
    const second = join(dir, 'm2.json');
    writeFileSync(second, JSON.stringify({ interface: { name: 'mup2' }, listen: `127.0.0.1:${udp! + 1}`, control: false, metrics: `127.0.0.1:${port}` }));
    const r = await runCli(['up', '--userspace', second]);
    expect(r.stderr).toBe(`ipferry: metrics 127.0.0.1:${port}: port in use\n`);
    expect(r.code).toBe(2);

    up.child.kill('SIGTERM');
    expect((await up.exited).code).toBe(0);
    await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow();
  });
});
