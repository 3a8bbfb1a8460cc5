/**
 * `functions` phase of `npm run bench`: what a function costs. In this process (no gateway, no
 * network: the sandbox is the only thing measured), with a ~1 KB event as input:
 * - `functions_sandbox_start_ms`: a new sandbox thread loading QuickJS's WASM module until its
 *   first call answers (paid once per thread, and again when a thread is replaced after a cap);
 * - `functions_call_us`: one call of a trivial function (`export default (x) => x`), one at a
 *   time: fresh QuickJS runtime + context, module evaluation, input and result as JSON, thread
 *   round trip; `functions_throughput` with `threads` threads and 8 calls in flight;
 * - the raw baseline beside it: the same transform in plain JavaScript on this thread (JSON
 *   parse and stringify of the same input), so the ratio can be quoted.
 */
import { FunctionRunner } from "../src/functions/runner.js";
import { QUICK, emit, eventPayload, log } from "./common.js";
import { percentile, round } from "./load.js";

const CALLS = QUICK ? 300 : 2_000;
const TRIVIAL = "export default function handler(event) { return event; }";

export async function functionsPhase(): Promise<void> {
  log("functions: sandbox start, per-call cost of a trivial function");
  const input = eventPayload(1);
  const now = Date.now();

  for (let i = 0; i < 3; i++) {
    const runner = new FunctionRunner({ threads: 1 });
    const t0 = performance.now();
    const first = await runner.run({ code: TRIVIAL, input, now });
    const ms = performance.now() - t0;
    if (!first.ok) throw new Error(`trivial function failed: ${first.error.message}`);
    emit({ figure: "functions_sandbox_start_ms", run: i + 1, ms: round(ms, 1) });
    await runner.close();
  }

  const runner = new FunctionRunner({ threads: 2 });
  try {
    for (let i = 0; i < 50; i++) await runner.run({ code: TRIVIAL, input, now });
    const samples: number[] = [];
    for (let i = 0; i < CALLS; i++) {
      const t0 = performance.now();
      const out = await runner.run({ code: TRIVIAL, input, now });
      samples.push((performance.now() - t0) * 1000);
      if (!out.ok) throw new Error(out.error.message);
    }
    samples.sort((a, b) => a - b);
    const mean = samples.reduce((a, b) => a + b, 0) / samples.length;

    const raw: number[] = [];
    for (let i = 0; i < CALLS; i++) {
      const t0 = performance.now();
      JSON.parse(JSON.stringify(((e: unknown) => e)(JSON.parse(JSON.stringify(input)))));
      raw.push((performance.now() - t0) * 1000);
    }
    raw.sort((a, b) => a - b);
    const rawMean = raw.reduce((a, b) => a + b, 0) / raw.length;
    emit({
      figure: "functions_call_us",
      calls: CALLS,
      mean_us: round(mean, 1),
      p50_us: round(percentile(samples, 50), 1),
      p99_us: round(percentile(samples, 99), 1),
      raw_js_mean_us: round(rawMean, 2),
      ratio: round(mean / rawMean, 0),
    });

    const inFlight = 8;
    let next = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: inFlight }, async () => {
      while (next++ < CALLS) await runner.run({ code: TRIVIAL, input, now });
    }));
    const seconds = (performance.now() - t0) / 1000;
    emit({ figure: "functions_throughput", threads: 2, in_flight: inFlight, calls: CALLS, calls_per_s: round(CALLS / seconds, 0) });
  } finally {
    await runner.close();
  }
}

// `npx tsx bench/functions.ts` runs this phase alone.
if (import.meta.url === `file://${process.argv[1]}`) await functionsPhase();
