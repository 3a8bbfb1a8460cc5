/**
 * `fairness` phase of `npm run bench` (issue 10): a healthy endpoint's publish-to-delivery latency
 * at 40 msg/s, alone and beside each bad population, with the default slots (128 per node, 32 per
 * endpoint): 4 endpoints that never answer (attempt timeout 10 s here instead of 30 s), 4 that
 * answer 200 after 8 s, 50 that answer 500 (breaker cooldown 3 s instead of 30 s, so several
 * cooldowns end during the run). The bad endpoints get their own stream beside the healthy one.
 * One JSON line per scenario: healthy p50/p99 and the ratio of p99 to the p99 alone.
 * Runs alone with `npx tsx bench/fairness.ts` (builds unless BENCH_SKIP_BUILD=1); BENCH_FAIRNESS
 * picks scenarios (`alone` always runs: the ratios are to it).
 */
import { execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { REPO_ROOT } from "../test/helpers/gateway-process.js";
import { DIALECTS, FAIRNESS_SCENARIOS, QUICK, emit, eventPayload, log, withCleanup, type Dialect } from "./common.js";
import { withGateway } from "./gateway.js";
import { benchNow, openLoop, percentile, round } from "./load.js";
import { ReceiverProcess } from "./receiver-process.js";

const RATE = 40;
const SECONDS = QUICK ? 8 : 20;
type Scenario = "alone" | "never_answer" | "slow_200" | "failing_500";
const ALL: Scenario[] = ["alone", "never_answer", "slow_200", "failing_500"];
/** BENCH_FAIRNESS=never_answer,slow_200 runs only those (and always `alone`, the reference). */
const SCENARIOS = ALL.filter((s) => s === "alone" || FAIRNESS_SCENARIOS === undefined || FAIRNESS_SCENARIOS.includes(s));

/** In-process endpoints that misbehave: they never answer, answer after 8 s, or answer 500. */
async function badEndpoints(kind: Scenario): Promise<{ urls: string[]; close: () => Promise<void> }> {
  const n = kind === "failing_500" ? 50 : 4;
  const timers = new Set<NodeJS.Timeout>();
  const srv = createServer((req, res) => {
    req.resume();
    if (kind === "failing_500") return void res.writeHead(500).end("down");
    if (kind === "never_answer") return;
    const t = setTimeout(() => {
      timers.delete(t);
      res.writeHead(200).end("ok");
    }, 8_000);
    timers.add(t);
  });
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const { port } = srv.address() as { port: number };
  return {
    urls: Array.from({ length: n }, (_, i) => `http://127.0.0.1:${port}/bad-${i}`),
    close: async () => {
      for (const t of timers) clearTimeout(t);
      srv.closeAllConnections();
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    },
  };
}

async function scenario(dialect: Dialect, receiver: ReceiverProcess, kind: Scenario): Promise<{ p50: number; p99: number; messages: number }> {
  const bad = kind === "alone" ? { urls: [] as string[], close: async () => {} } : await badEndpoints(kind);
  const args = ["--delivery-concurrency", "128", "--endpoint-concurrency", "32", "--request-timeout", "10s", "--circuit-breaker-cooldown", "3s"];
  return withCleanup(bad.close, () =>
    withGateway(dialect, `fairness-${kind}`, async (_gw, client) => {
      const good = await client.createApp(`good-${kind}`);
      await client.createEndpoint(good.id, `${receiver.url}/hook`);
      const badApp = await client.createApp(`bad-${kind}`);
      for (const url of bad.urls) await client.createEndpoint(badApp.id, url);
      // The bad stream: 40 deliveries/s in all (fanned out over 50 endpoints for failing_500).
      const badRate = kind === "failing_500" ? RATE / 50 : RATE;
      let stop = false;
      const badStream = bad.urls.length === 0 ? Promise.resolve() : (async () => {
        let i = 0;
        const start = benchNow();
        while (!stop) {
          const due = start + (i * 1000) / badRate;
          if (due > benchNow()) await new Promise((r) => setTimeout(r, due - benchNow()));
          void client.publish(badApp.id, JSON.stringify({ eventType: "bad", payload: eventPayload(i++) })).catch(() => {});
        }
      })();
      // Let the bad population take its slots (and the circuits open) before measuring.
      if (bad.urls.length > 0) await new Promise((r) => setTimeout(r, 3_000));
      const count = RATE * SECONDS;
      const due = new Map<string, number>();
      const arrived = (await receiver.track(count, 120_000)).done;
      await openLoop(count, RATE, async (i, at) => {
        const r = await client.publish(good.id, JSON.stringify({ eventType: "good", payload: eventPayload(i) }));
        if (r.status !== 202 || !r.id) throw new Error(`publish answered ${r.status}`);
        due.set(r.id, at);
      });
      await arrived;
      stop = true;
      await badStream;
      const latencies: number[] = [];
      for (const [id, at] of await receiver.arrivals()) {
        const d = due.get(id);
        if (d !== undefined) latencies.push(at - d);
      }
      latencies.sort((a, b) => a - b);
      return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), messages: latencies.length };
    }, args),
  );
}

export async function fairnessPhase(receiver: ReceiverProcess): Promise<void> {
  for (const dialect of DIALECTS) {
    let alone: number | undefined;
    for (const kind of SCENARIOS) {
      log(`${dialect}: fairness, healthy endpoint at ${RATE} msg/s, ${kind}`);
      const r = await scenario(dialect, receiver, kind);
      if (kind === "alone") alone = r.p99;
      emit({
        bench: "fairness_healthy_p99",
        dialect,
        scenario: kind,
        value: round(r.p99, 2),
        unit: "ms",
        p50_ms: round(r.p50, 2),
        p99_alone_ms: alone === undefined ? null : round(alone, 2),
        ratio_to_alone: alone === undefined ? null : round(r.p99 / alone, 2),
        messages: r.messages,
        rate_msg_s: RATE,
        slots: "128 per node, 32 per endpoint",
      });
    }
  }
}

// `npx tsx bench/fairness.ts` runs this phase alone.
if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.env.BENCH_SKIP_BUILD !== "1") execFileSync("npm", ["run", "build", "--silent"], { cwd: REPO_ROOT, stdio: ["ignore", 2, 2] });
  const receiver = await ReceiverProcess.start();
  try {
    await fairnessPhase(receiver);
  } finally {
    await receiver.stop();
  }
}
