/**
 * The `ipferry` command line with the fake endpoint (fake-endpoint.ts) injected: what the CLI tests
 * run as a child process when they need `up` without a TUN or sockets.
 *   node --import tsx test/control/fake-cli.ts up --userspace CONFIG
 */
import { main } from '../../src/control/cli.ts';
import { createEndpoint } from './fake-endpoint.ts';

process.exitCode = await main(process.argv.slice(2), { createEndpoint });
