// A TypeScript consumer of the installed package, type-checked (never run) by
// test/package/pack.test.ts with this folder's own strict tsconfig.json against the .d.ts files
// the package ships.
import { createEndpoint, parseConfig, ConfigError, DropReason, type Config, type Endpoint, type StackUdpSocket } from 'ipferry';

const config: Config = parseConfig({
  interface: { name: 'ferry0' },
  listen: '127.0.0.1:6080',
  stack: { address: ['10.0.0.1'] },
  peers: [{ name: 'b', endpoint: '127.0.0.1:6081', routes: ['10.0.0.2/32'] }],
});

export async function run(): Promise<number> {
  const ep: Endpoint = await createEndpoint(config, { tun: false, warmUp: 0 });
  ep.on('peer-up', (peer) => console.log(`${peer.name} up`));
  ep.on('drop', ({ reason, count }) => console.log(`${count} dropped: ${reason}`));
  await ep.start();
  const sock: StackUdpSocket = ep.udpBind(5000);
  const sent: boolean = sock.send(new Uint8Array(4), 5000, '10.0.0.2');
  const rtt: number = await ep.ping('10.0.0.2');
  const live: number = ep.stats().poolLive;
  await ep.stop();
  return sent ? rtt + live + DropReason.NoRoute : -1;
}

export function explain(e: unknown): string {
  return e instanceof ConfigError ? `config: ${e.message}` : String(e);
}

// The declarations are real, not `any`: each line below must be a type error.
// @ts-expect-error udpBind takes a port number
createEndpoint(config).then((ep) => ep.udpBind('5000'));
// @ts-expect-error createEndpoint needs a parsed Config, not a file name
void createEndpoint('ipferry.json');
// @ts-expect-error there is no such export
import { NoSuchExport } from 'ipferry';
void NoSuchExport;
