/**
 * A stand-in for the endpoint `ipferry up` creates, injected by fake-cli.ts in the CLI tests:
 * no TUN, no sockets, just the contract.
 *   FAKE_FAIL_START=1   start() rejects
 *   FAKE_MARK=FILE      stop() writes "stopped" to FILE
 *   FAKE_SNAPSHOTS=FILE each snapshot(what) appends "what" to FILE (which parts were asked for)
 * ping(address) answers 1.5 ms for addresses inside a peer's routes, rejects with "no reply"
 * otherwise (as the real stack does on a timeout).
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import type { Config } from '../../src/config/config.ts';
import type { CreateEndpointOptions, EndpointHandle } from '../../src/control/up-cli.ts';
import type { ShowWhat, Snapshot } from '../../src/endpoint/snapshot.ts';
import { parseAddress, prefixContains } from '../../src/wire/address-text.ts';

export async function createEndpoint(initial: Config, options: CreateEndpointOptions): Promise<EndpointHandle> {
  const startedAt = Date.now();
  let running = false;
  let config = initial;
  return {
    async start() {
      if (process.env.FAKE_FAIL_START) throw new Error('TUNSETIFF: Device or resource busy');
      running = true;
      options.log(`fake endpoint started (tun: ${options.tun})`);
    },
    async stop() {
      running = false;
      if (process.env.FAKE_MARK) writeFileSync(process.env.FAKE_MARK, 'stopped');
      options.log.info('fake endpoint stopped');
    },
    reload(next: Config) {
      // the contract only: what a real endpoint would apply is Endpoint.reload's (test/endpoint/reload.test.ts)
      const before = new Set(config.peers.map((p) => p.name));
      const applied = next.peers.filter((p) => !before.has(p.name)).map((p) => `peer ${p.name} added`);
      config = next;
      options.log(`fake endpoint reloaded ${next.source}`);
      return { applied, restart: [] };
    },
    async ping(address: string, size = 56, timeoutMs = 2000, from?: string): Promise<number> {
      const a = parseAddress(address);
      if (from !== undefined && !config.stack.address.some((s) => s.text.split('/')[0] === from)) {
        throw new Error(`${from} is not an address of this endpoint's stack`);
      }
      if (config.peers.some((p) => p.routes.some((r) => prefixContains(r, a)))) return 1.5 + size / 1e6;
      throw new Error(`ping ${address}: no reply within ${timeoutMs} ms`);
    },
    snapshot(what: ShowWhat = 'all'): Snapshot {
      if (!running) throw new Error('not running');
      if (process.env.FAKE_SNAPSHOTS) appendFileSync(process.env.FAKE_SNAPSHOTS, `${what}\n`);
      return {
        interface: config.interface.name,
        listen: `${config.listen.host ?? '*'}:${config.listen.port}`,
        pid: process.pid,
        device: options.tun === false ? 'memory' : 'tun',
        peers: config.peers.map((p) => ({
          name: p.name,
          endpoint: `${p.endpoint.host}:${p.endpoint.port}`,
          routes: p.routes.map((r) => r.text),
          lastRx: null,
          lastTx: null,
          rxPackets: 0,
          rxBytes: 0,
          txPackets: 0,
          txBytes: 0,
          drops: 0,
          keepalive: p.keepalive,
        })),
        routes: [],
        stats: {
          startedAt,
          tunRx: { packets: 0, bytes: 0 },
          tunTx: { packets: 0, bytes: 0 },
          udpRx: { packets: 0, bytes: 0 },
          udpTx: { packets: 0, bytes: 0 },
          forwarded: 0,
          icmpSent: 0,
          drops: {},
          poolLive: 0,
          poolCapacity: 1024,
          poolExhausted: 0,
        },
      };
    },
  };
}
