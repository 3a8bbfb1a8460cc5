/**
 * `npm run bench`: throughput, latency and memory of the gateway, each next to this machine's raw
 * baseline measured in the same run. Prints one JSON line per figure on stdout (progress goes to
 * stderr) and stops by itself; `BENCH_QUICK=1` for a short run.
 *
 * Phases (BENCH_PHASES, default all): `raw` (undici straight to the receiver), `e2e` (publish →
 * delivered, then latency at half the peak), `ingest` (verified, sealed, durable posts to /in,
 * bench/ingest.ts), `rss` (memory with a large backlog), `floor` (the same posts through the least a
 * gateway can do, bench/floor.ts), `ratio` (issue 10's ratio to the floor with the drift cancelled:
 * floor, ingest and e2e measured back to back in alternating rounds, bench/ratio.ts), `agent` (bench/agent.ts in its own process), `brokers`
 * (RabbitMQ, NATS JetStream and Redis Streams destinations on this machine's brokers, bench/brokers.ts),
 * `functions` (what a sandboxed function costs per call and per sandbox start, bench/functions.ts),
 * `retention` (data size after simulated days of traffic, retention on vs off, bench/retention.ts),
 * `bullmq` (what a Node team would build instead: Fastify + BullMQ on Redis + standardwebhooks +
 * undici, as configured and with `appendfsync always`, compared with `e2e`: bench/bullmq.ts),
 * `fanout` (one message to 100 endpoints) and `backlog` (BENCH_BACKLOG pending jobs, 1,000,000 by
 * default, drained after an outage; long, so only when named), both bench/engine-load.ts,
 * `fairness` (a healthy endpoint's latency beside slow or failing ones, bench/fairness.ts),
 * `switches` (the engine's optimisations on and off: group commit, direct hand-off, bench/switches.ts).
 *
 * Topology: the gateway (built, `node bin/hookwarden.js serve`) and the receiver
 * (`bench/receiver.ts`) are separate processes; this process generates the load, so no two of
 * the three share an event loop.
 *
 * Environment (parsed in bench/common.ts): BENCH_QUICK=1, BENCH_DIALECTS=sqlite,postgres,
 * BENCH_CONCURRENCY (32), BENCH_PROFILE=1 (the gateway writes a .cpuprofile per run into
 * $TMPDIR/hookwarden-profiles/; summarise with `npx tsx bench/profile-summary.ts FILE...`),
 * BENCH_SKIP_BUILD=1, BENCH_DATABASE_URL, BENCH_PHASES=raw,e2e,ingest,rss,floor,ratio,agent,brokers,functions,retention,bullmq,fanout,fairness,switches (+ backlog),
 * BENCH_LATENCY_RATE=req/s (instead of half the measured peak, to compare two builds at one rate),
 * BENCH_RATIO_ROUNDS (the `ratio` phase's rounds, 6; 3 with BENCH_QUICK), BENCH_EVENT_BYTES (the
 * event's size, ~1 KB by default; lines then carry `event_bytes`).
 *
 * Every line carries `loadavg_1m`: the figures are only comparable on an otherwise idle machine.
 */
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer as createHttpServer } from "node:http";
import { fileURLToPath } from "node:url";
import { Agent, request } from "undici";
import type { GatewayClient } from "../test/helpers/gateway-client.js";
import { REPO_ROOT } from "../test/helpers/gateway-process.js";
import { switchesPhase } from "./switches.js";
import { brokers } from "./brokers.js";
import { CONCURRENCY, DIALECTS, LATENCY_RATE, LATENCY_SECONDS, PHASES, QUICK, cleanups, e2eResults, emit, eventPayload, log, publishBody, runCleanups, vacuumCatalogs, withCleanup, type Dialect } from "./common.js";
import { withGateway } from "./gateway.js";
import { floor } from "./floor.js";
import { ratioPhase } from "./ratio.js";
import { fairnessPhase } from "./fairness.js";
import { functionsPhase } from "./functions.js";
import { retentionPhase } from "./retention.js";
import { ingest } from "./ingest.js";
import { benchNow, closedLoop, cpuMsOf, memoryOf, openLoop, percentile, postgresCpuMs, round } from "./load.js";
import { bullmqPhase } from "./bullmq.js";
import { backlog, fanout } from "./engine-load.js";
import { ReceiverProcess } from "./receiver-process.js";

const RAW_REQUESTS = QUICK ? 10_000 : 40_000;
const E2E_MESSAGES = QUICK ? 3_000 : 10_000;
const WARMUP_MESSAGES = QUICK ? 300 : 1_000;
const PENDING_MESSAGES = QUICK ? 20_000 : 100_000;


/**
 * A receiver that takes 25 s to answer each delivery (under the 30 s attempt timeout): the gateway
 * keeps `CONCURRENCY` attempts open and everything else waits in the queue. It must not fail:
 * failures open the endpoint's circuit, and the worker then re-defers the whole backlog row by
 * row every cooldown, which measures that churn instead of the memory of a queue.
 */
async function slowEndpoint(): Promise<{ url: string; close: () => Promise<void> }> {
  const timers = new Set<NodeJS.Timeout>();
  const srv = createHttpServer((req, res) => {
    req.resume();
    const t = setTimeout(() => {
      timers.delete(t);
      res.writeHead(200).end("ok");
    }, 25_000);
    timers.add(t);
  });
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const { port } = srv.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/hook`,
    close: async () => {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      srv.closeAllConnections();
      if (srv.listening) await new Promise<void>((resolve) => srv.close(() => resolve()));
    },
  };
}

async function publishOrThrow(client: GatewayClient, appId: string, i: number): Promise<string> {
  const r = await client.publish(appId, publishBody(i));
  if (r.status !== 202 || !r.id) throw new Error(`publish ${i} answered ${r.status}`);
  return r.id;
}

/**
 * Requests/s of undici posting the same payloads straight to the receiver, at the same
 * concurrency. `label` tells the run at start (emitted) from the re-measure taken just before each
 * end-to-end run, which the ratio uses: on a shared machine the baseline moves with the load.
 */
async function rawBaseline(receiver: ReceiverProcess, requests: number, label: "start" | Dialect): Promise<number> {
  const agent = new Agent({ connections: CONCURRENCY, keepAliveTimeout: 10_000 });
  const signature = `v1,${randomBytes(32).toString("base64")}`;
  const post = async (i: number) => {
    const res = await request(`${receiver.url}/hook`, {
      method: "POST",
      dispatcher: agent,
      headers: {
        "content-type": "application/json",
        "user-agent": "Hookwarden/0.1 (+https://www.standardwebhooks.com)",
        "webhook-id": `msg_raw_${i}`,
        "webhook-timestamp": String(Math.floor(Date.now() / 1000)),
        "webhook-signature": signature,
      },
      body: JSON.stringify(eventPayload(i)),
    });
    await res.body.dump();
    if (res.statusCode !== 200) throw new Error(`receiver answered ${res.statusCode}`);
  };
  try {
    await closedLoop(2_000, CONCURRENCY, (i) => post(-1 - i));
    const done = (await receiver.track(requests, 120_000)).done;
    const t0 = benchNow();
    await closedLoop(requests, CONCURRENCY, post);
    const elapsed = benchNow() - t0;
    await done;
    const rps = (requests / elapsed) * 1000;
    if (label === "start") {
      emit({ bench: "raw_baseline", dialect: null, value: Math.round(rps), unit: "req/s", requests, concurrency: CONCURRENCY, client: "undici request, keep-alive Agent" });
    }
    return rps;
  } finally {
    await agent.close();
  }
}

/** Delivered/s end to end, then publish-to-delivery latency at half that rate. */
async function endToEnd(dialect: Dialect, receiver: ReceiverProcess, rawAtStart: number): Promise<void> {
  const raw = await rawBaseline(receiver, RAW_REQUESTS / 4, dialect);
  await withGateway(dialect, "e2e", async (gw, client) => {
    const app = await client.createApp("bench");
    await client.createEndpoint(app.id, `${receiver.url}/hook`);

    const warm = (await receiver.track(WARMUP_MESSAGES, 60_000)).done;
    await closedLoop(WARMUP_MESSAGES, CONCURRENCY, async (i) => void (await publishOrThrow(client, app.id, i)));
    await warm;

    log(`${dialect}: publishing ${E2E_MESSAGES} messages at concurrency ${CONCURRENCY}`);
    const delivered = (await receiver.track(E2E_MESSAGES, 240_000)).done;
    const cpu0 = cpuMsOf(gw.pid);
    const pg0 = dialect === "postgres" ? postgresCpuMs() : 0;
    const t0 = benchNow();
    await closedLoop(E2E_MESSAGES, CONCURRENCY, async (i) => void (await publishOrThrow(client, app.id, i)));
    const published = benchNow();
    const done = await delivered;
    const elapsed = done.last - t0;
    const rate = (E2E_MESSAGES / elapsed) * 1000;
    const gatewayCpu = (cpuMsOf(gw.pid) - cpu0) / E2E_MESSAGES;
    const datastoreCpu = dialect === "postgres" ? (postgresCpuMs() - pg0) / E2E_MESSAGES : 0;
    const context = { messages: E2E_MESSAGES, concurrency: CONCURRENCY, gateway: "node bin/hookwarden.js (dist)" };
    emit({
      bench: "e2e_delivered",
      dialect,
      value: Math.round(rate),
      unit: "msg/s",
      ...context,
      publish_rate_msg_s: Math.round((E2E_MESSAGES / (published - t0)) * 1000),
      gateway_cpu_cores: round((gatewayCpu * E2E_MESSAGES) / elapsed, 2),
      gateway_cpu_ms_per_msg: round(gatewayCpu, 3),
      // SQLite runs inside the gateway's process; PostgreSQL's server processes are added here.
      datastore_cpu_ms_per_msg: round(datastoreCpu, 3),
      total_cpu_ms_per_msg: round(gatewayCpu + datastoreCpu, 3),
      receiver_requests: done.total,
    });
    emit({
      bench: "e2e_ratio_to_raw",
      dialect,
      value: round(rate / raw, 3),
      unit: "ratio",
      raw_req_s: Math.round(raw),
      raw_req_s_at_start: Math.round(rawAtStart),
      delivered_msg_s: Math.round(rate),
      ...context,
    });

    const half = LATENCY_RATE ?? rate / 2;
    const count = Math.max(200, Math.round(half * LATENCY_SECONDS));
    log(`${dialect}: ${count} messages open-loop at ${Math.round(half)} msg/s (half of peak)`);
    const due = new Map<string, number>();
    const accepted = new Map<string, number>();
    const arrived = (await receiver.track(count, 120_000)).done;
    await openLoop(count, half, async (i, dueAt) => {
      const id = await publishOrThrow(client, app.id, 1_000_000 + i);
      accepted.set(id, benchNow());
      due.set(id, dueAt);
    });
    await arrived;
    const arrivals = await receiver.arrivals();
    const fromPublish: number[] = [];
    const from202: number[] = [];
    const publishMs: number[] = [];
    for (const [id, at] of arrivals) {
      const d = due.get(id);
      const a = accepted.get(id);
      if (d === undefined || a === undefined) continue;
      fromPublish.push(at - d);
      from202.push(at - a);
      publishMs.push(a - d);
    }
    for (const xs of [fromPublish, from202, publishMs]) xs.sort((a, b) => a - b);
    const latencyContext = {
      rate_msg_s: Math.round(half),
      messages: fromPublish.length,
      measured_from: "intended publish time (open loop) to arrival at the receiver",
      publish_202_p50_ms: round(percentile(publishMs, 50), 2),
      after_202_p50_ms: round(percentile(from202, 50), 2),
    };
    emit({ bench: "publish_to_delivery_p50", dialect, value: round(percentile(fromPublish, 50), 2), unit: "ms", ...latencyContext });
    e2eResults.set(dialect, { rate, gatewayCpuMsPerMsg: gatewayCpu, totalCpuMsPerMsg: gatewayCpu + datastoreCpu, p50: percentile(fromPublish, 50), p99: percentile(fromPublish, 99) });
    emit({ bench: "publish_to_delivery_p99", dialect, value: round(percentile(fromPublish, 99), 2), unit: "ms", ...latencyContext, after_202_p99_ms: round(percentile(from202, 99), 2) });
  });
}

/** Peak RSS of the gateway while `PENDING_MESSAGES` wait behind an endpoint that answers in 25 s. */
async function pendingMemory(dialect: Dialect): Promise<void> {
  const endpoint = await slowEndpoint();
  await withCleanup(endpoint.close, () => withGateway(dialect, "rss", async (gw, client) => {
    const app = await client.createApp("bench-rss");
    await client.createEndpoint(app.id, endpoint.url);
    const base = memoryOf(gw.pid);
    log(`${dialect}: publishing ${PENDING_MESSAGES} messages to an endpoint that answers in 25 s`);
    const t0 = benchNow();
    await closedLoop(PENDING_MESSAGES, CONCURRENCY, async (i) => void (await publishOrThrow(client, app.id, i)));
    const publishRate = (PENDING_MESSAGES / (benchNow() - t0)) * 1000;
    // A few poll cycles with the whole backlog due and every delivery slot taken.
    await new Promise((r) => setTimeout(r, 3_000));
    const pending = await client.queueDepth();
    const mem = memoryOf(gw.pid);
    emit({
      bench: "peak_rss_pending",
      dialect,
      value: mem.peakRssMb,
      unit: "MB",
      pending_jobs: pending,
      rss_now_mb: mem.rssMb,
      rss_at_start_mb: base.rssMb,
      publish_rate_msg_s: Math.round(publishRate),
      concurrency: CONCURRENCY,
      endpoint: "answers after 25 s",
    });
  }));
}

/**
 * bench/agent.ts (the relay through an agent) in its own process, on the build this run made:
 * it has its own receiver and raw baseline, and its JSON lines are passed through as they come.
 */
async function agentPhase(): Promise<void> {
  log("agent: bench/agent.ts in its own process");
  const script = fileURLToPath(new URL("./agent.ts", import.meta.url));
  const child = spawn(process.execPath, ["--import", "tsx", script], {
    cwd: REPO_ROOT,
    env: { ...process.env, BENCH_RUNTIME: "dist" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  child.stdout.pipe(process.stdout, { end: false });
  await withCleanup(
    async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
    async () => {
      const code = await exited;
      if (code !== 0) throw new Error(`bench/agent.ts exited with code ${code}`);
    },
  );
}

async function main(): Promise<void> {
  const started = Date.now();
  if (process.env.BENCH_SKIP_BUILD !== "1") {
    log("building (npm run build)");
    execFileSync("npm", ["run", "build", "--silent"], { cwd: REPO_ROOT, stdio: ["ignore", 2, 2] });
  }
  if (DIALECTS.includes("postgres")) await vacuumCatalogs();
  const receiver = await ReceiverProcess.start();
  cleanups.push(() => receiver.stop());
  const raw = PHASES.has("raw") ? await rawBaseline(receiver, RAW_REQUESTS, "start") : Number.NaN;
  if (PHASES.has("e2e")) for (const dialect of DIALECTS) await endToEnd(dialect, receiver, raw);
  if (PHASES.has("ingest")) for (const dialect of DIALECTS) await ingest(dialect, receiver);
  if (PHASES.has("rss")) for (const dialect of DIALECTS) await pendingMemory(dialect);
  if (PHASES.has("floor")) for (const dialect of DIALECTS) await floor(dialect, receiver);
  if (PHASES.has("ratio")) for (const dialect of DIALECTS) await ratioPhase(dialect, receiver);
  if (PHASES.has("brokers")) for (const dialect of DIALECTS) await brokers(dialect, publishBody);
  if (PHASES.has("fanout")) for (const dialect of DIALECTS) await fanout(dialect, receiver);
  if (PHASES.has("backlog")) for (const dialect of DIALECTS) await backlog(dialect, receiver);
  if (PHASES.has("fairness")) await fairnessPhase(receiver);
  if (PHASES.has("switches")) for (const dialect of DIALECTS) await switchesPhase(dialect, receiver);
  if (PHASES.has("bullmq")) await bullmqPhase(receiver);
  await runCleanups();
  if (PHASES.has("agent")) await agentPhase();
  if (PHASES.has("functions")) await functionsPhase();
  if (PHASES.has("retention")) for (const dialect of DIALECTS) await retentionPhase(dialect);
  log(`done in ${Math.round((Date.now() - started) / 1000)} s`);
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    log(`${signal}: cleaning up`);
    void runCleanups().finally(() => process.exit(130));
  });
}

main().catch(async (err: unknown) => {
  log(`failed: ${(err as Error)?.stack ?? String(err)}`);
  await runCleanups();
  process.exit(1);
});
