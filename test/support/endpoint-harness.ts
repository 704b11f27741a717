/**
 * An Endpoint built from a config but not started: its pipeline writes to a MemoryDevice and sends
 * through a stand-in transport that hands each datagram to `onSend` (default: drop it) and
 * releases it. For pipeline unit tests, the pipeline fuzz and the pipeline bench.
 */
import { parseConfig } from '../../src/config/config.ts';
import { MemoryDevice } from '../../src/device/memory-device.ts';
import { DropReason } from '../../src/base/drop-reason.ts';
import { Endpoint } from '../../src/endpoint/endpoint.ts';
import type { PacketBuffer } from '../../src/base/pool.ts';
import type { Transport } from '../../src/transport/transport.ts';

export interface Harness {
  ep: Endpoint;
  dev: MemoryDevice;
}

export function detachedEndpoint(config: unknown, onSend?: (p: PacketBuffer, peer: number) => void): Harness {
  const ep = new Endpoint(parseConfig(config));
  const dev = new MemoryDevice({ name: ep.config.interface.name, mtu: ep.config.interface.mtu, pool: ep.pools.small });
  ep.pipeline.device = dev;
  ep.pipeline.transport = {
    send(p: PacketBuffer, peer: number) {
      onSend?.(p, peer);
      p.release();
      return DropReason.None;
    },
  } as unknown as Transport;
  return { ep, dev };
}
