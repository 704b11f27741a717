/**
 * Bad input never throws out of the dataplane: the pipeline fuzzer (pipeline-fuzz.ts), plain and
 * bounds-checked. No exception (caught inside the pipeline or escaping it), every pool slot back.
 */
import { describe, expect, it } from 'vitest';
import { fuzzPipeline } from './pipeline-fuzz.ts';

describe('pipeline fuzz', () => {
  it.each([
    ['300,000', 300_000, false],
    ['bounds-checked, 100,000', 100_000, true],
  ] as const)('%s random and mutated packets through both directions: no exception, pools back to zero', (_n, packets, checked) => {
    const f = fuzzPipeline(packets, checked);
    expect(f.errors).toEqual([]);
    expect(f.thrown).toBe(0);
    expect(f.caught).toBe(0);
    expect(f.internalDrops).toBe(0);
    expect(f.answered).toBeGreaterThan(0); // the stack path was exercised
    expect(f.live).toBe(0);
    expect(f.drops).toBeGreaterThan(0);
  });
});
