/**
 * The soak in CI (issue 12 point 9): `npm run soak`'s run for 60 s at a lighter rate (TCP 20 Mbit/s
 * each way, UDP bursts 50 Mbit/s, floods at 40%) so the rest of the suite keeps its share of the
 * CPUs. Root only (namespaces, TUN, iperf3, scapy). Bounded: 60 s of traffic, every wait capped.
 * The checks are the soak's verdicts, without timing: every disturbance was followed by traffic,
 * pool slots all back, no unexpected error line, clean exits, no route of ours left behind.
 */
import { describe, expect, it } from 'vitest';
import { runSoak, soakMarkdown, soakSkipReason } from '../../bench/soak/soak.ts';
import { machineText } from '../../bench/machine.ts';

const skip = soakSkipReason();
if (skip !== null) console.warn(`soak.test.ts skipped: ${skip}`);

describe.skipIf(skip !== null)('soak, 60 s', () => {
  it('two endpoints under mixed traffic, floods, a restart, a reload, a deleted TUN and a SIGKILL', async () => {
    const r = await runSoak({ seconds: 60, tcpRate: '20M', udpRate: '50M' });
    console.log(soakMarkdown(r, machineText()));
    expect(r.events.map((e) => e.name)).toEqual([
      'restart B (SIGTERM, start)',
      'reload A (SIGHUP)',
      'TUN deleted on B (exit 1, started again)',
      'SIGKILL B, start',
    ]);
    expect(r.events.map((e) => e.note.split(' / ')[0])).toEqual(['exit 0', expect.any(String), 'exit 1', 'exit SIGKILL']);
    for (const e of r.events) expect(e.outage.firstAfter ?? e.outage.gapMs, e.name).not.toBeNull(); // traffic came back
    for (const e of r.endpoints) {
      expect(e.poolInUse, e.name).toBe(0);
      expect(e.unexpected, e.name).toEqual([]);
      expect(e.exitCode, e.name).toBe(0);
      expect(e.leftRoutes, e.name).toBe('');
      expect(e.samples.length, e.name).toBeGreaterThan(10);
    }
    expect(r.endpoints[1]!.starts).toBe(4);
    expect(r.endpoints[1]!.drops.UnknownPeer).toBeGreaterThan(0); // the floods from a non-peer reached B and were dropped
    expect(r.probe.received).toBeGreaterThan(r.probe.sent / 2);
  }, 400_000);
});
