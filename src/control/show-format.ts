/**
 * Text output for `ipferry show`, in the manner of `wg show`:
 *
 *   interface: ferry0
 *     listening: 203.0.113.10:6080
 *     ...
 *
 *   peer: shanghai
 *     endpoint: 203.0.113.20:6080
 *     routes: 192.168.20.0/24, fd00:20::/64
 *     last packet: 3 seconds ago
 *     transfer: 1.21 MiB received, 3.40 MiB sent
 *
 * Pure functions of the snapshot and a clock (`now`), so output is golden-testable.
 */
import type { PeerSnapshot, RouteSnapshot, ShowWhat, Snapshot, StatsSnapshot } from '../endpoint/snapshot.ts';
import { formatBindings, formatBindingUpdates, formatMobilityStats } from './show-mobility.ts';

export interface FormatOptions {
  /** Current time, epoch ms (default Date.now()). */
  now?: number;
}

const plural = (n: number, unit: string): string => `${n} ${unit}${n === 1 ? '' : 's'}`;

/** "1 hour, 2 minutes, 3 seconds" (largest units first, zero units left out). */
export function formatDuration(ms: number): string {
  let s = Math.max(0, Math.floor(ms / 1000));
  const parts: string[] = [];
  const units: [number, string][] = [
    [365 * 86400, 'year'],
    [86400, 'day'],
    [3600, 'hour'],
    [60, 'minute'],
    [1, 'second'],
  ];
  for (const [size, name] of units) {
    if (s >= size) {
      parts.push(plural(Math.floor(s / size), name));
      s %= size;
    }
  }
  return parts.length === 0 ? '0 seconds' : parts.join(', ');
}

/** "3 seconds ago", "just now", "never". */
export function formatAgo(t: number | null | undefined, now: number): string {
  if (t === null || t === undefined) return 'never';
  const d = now - t;
  if (d < 1000) return 'just now';
  return `${formatDuration(d)} ago`;
}

/** wg's units: B, KiB, MiB, GiB, TiB with two decimals. */
export function formatBytes(n: number): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  if (n < 1024) return `${n} B`;
  let v = n;
  let u = -1;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(2)} ${units[u]}`;
}

export function formatInterface(s: Partial<Snapshot>): string {
  const lines = [`interface: ${s.interface ?? '?'}`];
  if (s.listen !== undefined) lines.push(`  listening: ${s.listen}`);
  if (s.pid !== undefined) lines.push(`  pid: ${s.pid}`);
  if (s.device !== undefined) lines.push(`  device: ${s.device === 'tun' ? 'kernel TUN' : 'in-memory (userspace)'}`);
  if (s.dataplane !== undefined && s.dataplane !== '') lines.push(`  data path: ${s.dataplane}`);
  if (s.mtu !== undefined) lines.push(`  mtu: ${s.mtu}`);
  if (s.addresses !== undefined && s.addresses.length > 0) lines.push(`  address: ${s.addresses.join(', ')}`);
  if (s.stackAddresses !== undefined && s.stackAddresses.length > 0) lines.push(`  stack: ${s.stackAddresses.join(', ')}`);
  if (s.hub !== undefined) lines.push(`  hub: ${s.hub ? 'on' : 'off'}`);
  return lines.join('\n');
}

export function formatPeer(p: PeerSnapshot, now: number): string {
  const lines = [`peer: ${p.name}${p.up === false ? ' (down)' : ''}`];
  lines.push(`  endpoint: ${p.endpoint}`);
  lines.push(`  routes: ${p.routes.length > 0 ? p.routes.join(', ') : '(none)'}`);
  lines.push(`  last packet: ${formatAgo(p.lastRx, now)}`);
  lines.push(`  last sent: ${formatAgo(p.lastTx, now)}`);
  lines.push(`  transfer: ${formatBytes(p.rxBytes)} received, ${formatBytes(p.txBytes)} sent`);
  lines.push(`  packets: ${p.rxPackets} received, ${p.txPackets} sent, ${p.drops} dropped`);
  if (p.mtu !== undefined) lines.push(`  mtu: ${p.mtu}`);
  if (p.keepalive) lines.push(`  keepalive: every ${plural(p.keepalive, 'second')}`);
  if (p.mobility) lines.push(`  mobility: ${p.mobility === 'mobile-node' ? 'a mobile node (its binding sets the endpoint)' : 'a correspondent (route optimisation)'}`);
  return lines.join('\n');
}

export function formatPeers(s: Partial<Snapshot>, now: number): string {
  const blocks = [formatInterface(s)];
  for (const p of s.peers ?? []) blocks.push(formatPeer(p, now));
  return blocks.join('\n\n');
}

/** One route per line in ip route syntax, the use counter aligned on the right. */
export function formatRoutes(routes: readonly RouteSnapshot[]): string {
  if (routes.length === 0) return '(no routes)';
  const width = Math.max(...routes.map((r) => r.text.length));
  return routes.map((r) => `${r.text.padEnd(width)}  uses ${r.uses}`).join('\n');
}

export function formatStats(s: Partial<Snapshot>, now: number): string {
  const st = s.stats as StatsSnapshot;
  const lines = [`interface: ${s.interface ?? '?'}${s.pid !== undefined ? ` (pid ${s.pid})` : ''}`];
  lines.push(`  uptime: ${formatDuration(now - st.startedAt)}`);
  const io = (name: string, rx: StatsSnapshot['tunRx'], tx: StatsSnapshot['tunTx']): string =>
    `  ${name}: ${plural(rx.packets, 'packet')} (${formatBytes(rx.bytes)}) received, ${plural(tx.packets, 'packet')} (${formatBytes(tx.bytes)}) sent`;
  lines.push(io('tun', st.tunRx, st.tunTx));
  lines.push(io('udp', st.udpRx, st.udpTx));
  lines.push(`  forwarded: ${st.forwarded}`);
  lines.push(`  icmp errors sent: ${st.icmpSent}`);
  lines.push(`  pool: ${st.poolLive} live of ${st.poolCapacity} slots, exhausted ${plural(st.poolExhausted, 'time')}`);
  const drops = Object.entries(st.drops).filter(([, n]) => n > 0);
  drops.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const total = drops.reduce((t, [, n]) => t + n, 0);
  lines.push(`  drops: ${total}`);
  if (drops.length > 0) {
    const w = Math.max(...drops.map(([k]) => k.length));
    for (const [k, n] of drops) lines.push(`    ${k.padEnd(w)}  ${n}`);
  }
  const extra = Object.entries(st.extra ?? {});
  if (extra.length > 0) {
    const w = Math.max(...extra.map(([k]) => k.length));
    lines.push('  other:');
    for (const [k, n] of extra) lines.push(`    ${k.padEnd(w)}  ${n}`);
  }
  if (st.mobility !== undefined) lines.push(...formatMobilityStats(st.mobility));
  return lines.join('\n');
}

/** The text `ipferry show [WHAT]` prints (ending with a newline). */
export function formatShow(data: Partial<Snapshot>, what: ShowWhat, opts: FormatOptions = {}): string {
  const now = opts.now ?? Date.now();
  switch (what) {
    case 'peers':
      return `${formatPeers(data, now)}\n`;
    case 'routes':
      return `${formatRoutes(data.routes ?? [])}\n`;
    case 'stats':
      return `${formatStats(data, now)}\n`;
    case 'bindings':
      return `${formatBindings(data)}\n`;
    case 'binding-updates':
      return `${formatBindingUpdates(data)}\n`;
    case 'all': {
      const parts = [formatPeers(data, now)];
      if (data.routes !== undefined) parts.push(`routes:\n${indent(formatRoutes(data.routes))}`);
      if (data.mobility?.bindings !== undefined) parts.push(formatBindings(data));
      if (data.mobility?.bindingUpdates !== undefined) parts.push(formatBindingUpdates(data));
      if (data.stats !== undefined) parts.push(`stats:\n${indent(formatStats({ ...data, interface: data.interface }, now).split('\n').slice(1).map((l) => l.slice(2)).join('\n'))}`);
      return `${parts.join('\n\n')}\n`;
    }
  }
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

/** `--json`: the data as the socket returned it, pretty-printed. */
export function formatShowJson(data: Partial<Snapshot>): string {
  return `${JSON.stringify(data, null, 2)}\n`;
}
