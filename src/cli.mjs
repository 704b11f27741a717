#!/usr/bin/env node
// Launcher for the `ipferry` command: registers tsx so the TypeScript sources run as they are.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./control/cli.ts');
process.exitCode = await main(process.argv.slice(2));
