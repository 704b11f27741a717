/**
 * Text output of the mobility sections of `ipferry show`, in the layouts of Linux MIPL's mipdiag:
 *
 *   show bindings          (mipdiag -c)  the binding cache of a home agent / correspondent
 *   show binding-updates   (mipdiag -l)  a mobile node's binding update list, recent handovers
 *   show stats             (mipdiag -s)  the counters under mipdiag's names, the handover gaps
 *
 * Pure functions of the snapshot and a clock, so the output is golden-testable.
 */
import type { BindingSnapshot, MobilitySnapshot, MobilityStatsSnapshot, Snapshot } from '../endpoint/snapshot.ts';

function table(header: string[], rows: string[][]): string[] {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]!))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)];
}

function roleOf(m: MobilitySnapshot | undefined): string {
  return m === undefined || m.roles.length === 0 ? 'no mobility role' : m.roles.join(', ');
}

/** `ipferry show bindings`: Home Address, Care-of Address, Lifetime (left), Sequence, Type, State. */
export function formatBindings(s: Partial<Snapshot>): string {
  const m = s.mobility;
  const head = `binding cache (${s.interface ?? '?'}: ${roleOf(m)}):`;
  if (m?.bindings === undefined) return `${head}\n  (not a home agent or correspondent: see mobility.homeAgent / mobility.correspondent)`;
  if (m.bindings.length === 0) return `${head}\n  (no bindings)`;
  const rows = m.bindings.map((b: BindingSnapshot) => [
    b.home,
    b.careOf,
    String(b.remaining),
    String(b.sequence),
    b.type === 'home' ? 'home' : 'corr',
    b.state + (b.nat ? ` NAT (claims ${b.claimedCareOf ?? '?'})` : '') + (b.bicastTo ? ` to ${b.bicastTo}` : '') + ` [${b.node}]`,
  ]);
  return [head, ...table(['Home Address', 'Care-of Address', 'Lifetime', 'Sequence', 'Type', 'State'], rows).map((l) => `  ${l}`)].join('\n');
}

function clock(t: number): string {
  return new Date(t).toISOString().slice(11, 23);
}

/** `ipferry show binding-updates`: mipdiag -l's entries, then the recent handovers. */
export function formatBindingUpdates(s: Partial<Snapshot>): string {
  const m = s.mobility;
  if (m?.bindingUpdates === undefined) {
    return `binding update list (${s.interface ?? '?'}: ${roleOf(m)}):\n  (not a mobile node: see mobility.mobileNode)`;
  }
  const lines = [`binding update list (mobile node ${m.node ?? '?'}, ${m.atHome ? 'at home' : `care-of ${m.careOf ?? 'none'}`}):`];
  for (const u of m.bindingUpdates) {
    lines.push(`Recipient ${u.homeAgent ? 'HA' : 'CN'}: ${u.recipientAddress} (${u.recipient})`);
    lines.push(`BINDING home address: ${u.home} care-of address: ${u.careOf ?? 'none'}`);
    lines.push(`expires: ${u.expires} sequence: ${u.sequence} state: ${u.state}${u.lastStatus >= 0 ? ` status: ${u.lastStatus}` : ''}${u.nat ? ` NAT: seen as ${u.observed}` : ''}`);
    lines.push(`delay: ${u.delay} max delay ${u.maxDelay} callback time: ${u.callbackTime ?? '-'} retransmissions: ${u.retransmissions}`);
  }
  const h = m.handovers ?? [];
  lines.push(h.length === 0 ? 'handovers: none yet' : `handovers (last ${h.length}):`);
  for (const e of h) {
    lines.push(`  ${clock(e.at)} handover ${e.from ?? 'home'} -> ${e.to ?? 'home'}: ${e.gapMs} ms (noticed by ${e.detection})${e.nat ? ' NAT' : ''}`);
  }
  return lines.join('\n');
}

/** The mobility lines of `show stats`: mipdiag -s's counters (all), ours (non-zero), the gaps. */
export function formatMobilityStats(st: MobilityStatsSnapshot): string[] {
  const entries = Object.entries(st.counters);
  const mip = entries.slice(0, st.mipdiag);
  const ours = entries.slice(st.mipdiag).filter(([, n]) => n > 0);
  const w = Math.max(...entries.map(([k]) => k.length));
  const lines = ['  mobility (mipdiag -s):'];
  for (const [k, n] of mip) lines.push(`    ${k.padEnd(w)} : ${n}`);
  for (const [k, n] of ours) lines.push(`    ${k.padEnd(w)} : ${n}`);
  const g = st.handoverGaps;
  if (g !== undefined) {
    if (g.count === 0) lines.push('  handover gaps: none yet');
    else {
      lines.push(`  handover gaps: ${g.count}, median ${g.medianMs} ms, p95 ${g.p95Ms} ms, max ${g.maxMs} ms`);
      const buckets = g.counts.map((n, i) => `${i < g.boundsMs.length ? `<=${g.boundsMs[i]}` : `>${g.boundsMs[g.boundsMs.length - 1]}`} ms: ${n}`);
      lines.push(`    ${buckets.join(', ')}`);
    }
  }
  return lines;
}
