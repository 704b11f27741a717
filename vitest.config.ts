import { defineConfig } from 'vitest/config';

// IPFERRY_TEST_JSON=FILE also writes vitest's JSON report there (.ci/run prints a summary from it).
const json = process.env.IPFERRY_TEST_JSON;

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 90_000,
    // Namespace tests create their own uniquely named namespaces, so files may run in parallel.
    pool: 'forks',
    reporters: json ? ['default', ['json', { outputFile: json }]] : ['default'],
  },
});
