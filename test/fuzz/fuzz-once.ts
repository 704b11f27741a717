/**
 * Run both packet fuzzers once and print one JSON line: the wire fuzzer (test/fuzz/fuzz.ts) and
 * the pipeline fuzzer (test/endpoint/pipeline-fuzz.ts), optionally bounds-checked. For
 * mutations.ts, which runs this in a mutated copy of the tree.
 *
 *   tsx test/fuzz/fuzz-once.ts [--checked] [--packets N] [--pipeline-packets N] [--seed S]
 */
import { fuzzPipeline } from '../endpoint/pipeline-fuzz.ts';
import { runFuzz } from './fuzz.ts';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : Number(process.argv[i + 1]);
}

const checked = process.argv.includes('--checked');
/** The error's first line and the first stack frame in src/ (where the bad read was). */
const where = (e: string | undefined): string | null => {
  if (e === undefined) return null;
  const frame = e.split(/ \| |\n/).find((l) => l.includes('/src/'));
  return `${e.split(/\s+at /)[0]!.trim()}${frame ? ` (${frame.trim().replace(/^at /, '')})` : ''}`;
};
const wire = runFuzz({ packets: arg('packets', 100_000), seed: arg('seed', 0x1f2e3d), checked });
const pipe = fuzzPipeline(arg('pipeline-packets', 100_000), checked);
process.stdout.write(
  `${JSON.stringify({
    checked,
    wire: { packets: wire.packets, exceptions: wire.exceptions, first: where(wire.samples[0]?.error), liveAfter: wire.liveAfter },
    pipeline: { exceptions: pipe.thrown + pipe.caught, first: where(pipe.errors[0]), live: pipe.live },
  })}\n`,
);
