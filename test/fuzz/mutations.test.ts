/**
 * The bounds-checked fuzzers catch the deleted checks of issue 12 (point 4): in a copy of the
 * tree with the IPv4 total-length check or the IPv6 extension-header bound deleted, both the wire
 * fuzzer and the pipeline fuzzer, bounds-checked, report exceptions (reads outside a packet).
 * (Unchecked, both pass with either check deleted: `npm run fuzz:mutations` shows that too.)
 */
import { describe, expect, it } from 'vitest';
import { runMutations } from './mutations.ts';

describe('mutations: a deleted length check is caught by the bounds-checked fuzzers', () => {
  it('IPv4 total-length check and IPv6 extension-header bound, each deleted in a copy', () => {
    const results = runMutations({ packets: 100_000, pipelinePackets: 100_000 });
    expect(results.map((r) => r.mutation.file)).toEqual(['src/wire/ipv4.ts', 'src/wire/ipv6-chain.ts']);
    for (const r of results) {
      expect(r.checked.wire.exceptions, `${r.mutation.name}: wire fuzzer`).toBeGreaterThan(0);
      expect(r.checked.pipeline.exceptions, `${r.mutation.name}: pipeline fuzzer`).toBeGreaterThan(0);
      expect(r.checked.wire.first).toMatch(/outside the packet/);
      expect(r.checked.pipeline.first).toMatch(/outside the packet/);
    }
  }, 300_000);
});
