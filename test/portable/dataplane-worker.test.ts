/**
 * test/endpoint/dataplane-worker.test.ts again on the portable path (IPFERRY_NO_FFI=1): the
 * same boundary operations answered by the in-thread data plane on a kernel TUN. Each test
 * file runs in its own process; the child endpoint inherits the variable.
 */
process.env.IPFERRY_NO_FFI = '1';
await import('../endpoint/dataplane-worker.test.ts');
