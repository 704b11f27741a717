/**
 * The capture session when the reader is slower than the traffic: the endpoint's ring is bounded,
 * what does not fit is dropped and counted, and the count reaches the operator twice — in the
 * pcapng interface statistics at the end of the file and in `ipferry capture`'s last line.
 * A control server in this process serves the capture from a ring the test fills itself; the
 * real CLI reads it.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { serveCapture } from '../../src/control/capture-session.ts';
import { ControlServer } from '../../src/control/control-socket.ts';
import { BLOCK_EPB, BLOCK_ISB, PcapngReader, readStatisticsBlock } from '../../src/control/pcapng.ts';
import { CAPTURE_IN, CaptureRing } from '../../src/endpoint/capture-ring.ts';
import { tsharkAvailable, tsharkFields } from '../support/tshark.ts';
import { kernelFixture } from '../support/pcap.ts';
import { runCli } from './cli-helper.ts';
import { fakeSnapshot } from './fake-snapshot.ts';

const dir = mkdtempSync(join(tmpdir(), 'ipferry-capsess-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('capture session with a ring that overflows', () => {
  it('drops are counted in the file and in the last line', async () => {
    const ping = kernelFixture('ping4')[0]!;
    let ring: CaptureRing | null = null;
    let stopped = 0;
    const source = {
      startCapture: () => {
        // a small ring, filled past its end before the session drains it once
        ring = new CaptureRing(4096);
        for (let i = 0; i < 100; i++) ring.write(CAPTURE_IN, ping, 0, ping.length, 65535, 0, null, 0, 1_000_000 + i);
        return ring;
      },
      stopCapture: () => void stopped++,
    };
    const path = join(dir, 'c.sock');
    const server = await ControlServer.start({
      path,
      snapshot: () => fakeSnapshot(),
      streams: { capture: (req, sock, rest) => serveCapture(req, sock, rest, { source, interfaceName: 't0', listen: () => '127.0.0.1:6080' }) },
    });
    try {
      const kept = Math.floor(4095 / ((40 + ping.length + 7) & ~7));
      const file = join(dir, 'c.pcapng');
      const r = await runCli(['capture', '--socket', path, '-w', file, '-c', String(kept)]);
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(new RegExp(`\\n${kept} packets captured, ${100 - kept} dropped by the endpoint \\(this reader was too slow\\)\\n$`));
      expect(stopped).toBe(1);
      const blocks = new PcapngReader().push(readFileSync(file));
      expect(blocks.filter((b) => b.type === BLOCK_EPB)).toHaveLength(kept);
      const isb = blocks.filter((b) => b.type === BLOCK_ISB);
      expect(isb).toHaveLength(1);
      expect(readStatisticsBlock(isb[0]!.bytes)).toEqual({ received: 100, dropped: 100 - kept });
      if (tsharkAvailable()) {
        const rows = tsharkFields(file, ['ip.src', 'ip.dst', 'icmp.type']);
        expect(rows).toHaveLength(kept);
        expect(rows[0]!.map((f) => f[0])).toEqual(['192.168.10.1', '192.168.20.20', '8']);
      }
    } finally {
      await server.close();
    }
  });
});
