/**
 * test/examples/quickstart.test.ts again on the portable path (IPFERRY_NO_FFI=1: the tuntap2 TUN read by a
 * reader worker, a Node dgram socket), so CI runs the namespace tests on both data paths; the
 * endpoints it starts inherit the variable. Each test file runs in its own process.
 */
process.env.IPFERRY_NO_FFI = '1';
await import('../examples/quickstart.test.ts');
