/**
 * ipferry as a library: create, start and stop a tunnel endpoint from code, with a kernel TUN or
 * without one (userspace mode: the endpoint's own stack is the host), watch its events, read its
 * stats, and use UDP sockets and ping on its own stack.
 *
 *   import { createEndpoint, parseConfig } from 'ipferry';
 *   const ep = await createEndpoint(parseConfig(json), { tun: false });
 *   await ep.start();
 *   const sock = ep.udpBind(5000);
 *   sock.on('message', (data, from) => ...);
 *
 * Mobility (config `mobility`): `ep.on('binding', e => ...)` on a home agent or correspondent,
 * `ep.on('handover', e => ...)` on a mobile node (e.gapMs, e.from, e.to, e.detection).
 */
import { resolveConfig, type Config } from './config/config.ts';
import { Endpoint, type EndpointOptions } from './endpoint/endpoint.ts';

export { Endpoint, STACK_DEV } from './endpoint/endpoint.ts';
export type { BindingEvent, DropEvent, EndpointEvents, EndpointOptions, HandoverEvent } from './endpoint/endpoint.ts';
export { LocalStack, StackUdpSocket } from './endpoint/local-stack.ts';
export type { UdpMessageInfo } from './endpoint/local-stack.ts';
export { Peer } from './endpoint/peer.ts';
export { UserspaceHost } from './endpoint/userspace-host.ts';
export type { UserspaceHostOptions } from './endpoint/userspace-host.ts';
export { loadConfig, parseConfig, resolveConfig, ConfigError } from './config/config.ts';
export type { Config } from './config/config.ts';
export type {
  BindingSnapshot,
  BindingUpdateSnapshot,
  HandoverSnapshot,
  MobilitySnapshot,
  MobilityStatsSnapshot,
  PeerSnapshot,
  Snapshot,
  StatsSnapshot,
} from './endpoint/snapshot.ts';
export { MemoryDevice } from './device/memory-device.ts';
export type { PacketDevice } from './device/device.ts';
export { DropReason, DropCounters } from './base/drop-reason.ts';
export { BufferPool, PacketBuffer, PacketPools } from './base/pool.ts';
export { Router } from './route/router.ts';
export { DEFAULT_PORT } from './transport/udp-transport.ts';

/**
 * Build an endpoint from a validated config (see parseConfig / loadConfig), looking up peer
 * endpoints given as DNS names first (a ConfigError when one does not resolve). Call start() next.
 */
export async function createEndpoint(config: Config, options: EndpointOptions = {}): Promise<Endpoint> {
  return new Endpoint(await resolveConfig(config), options);
}
