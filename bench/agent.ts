/**
 * `tsx bench/agent.ts`: webhooks relayed through an agent, from the public ingress to an internal
 * service, next to this machine's raw baseline (the same requests posted straight to the internal
 * service) measured in the same run. Prints one JSON line per figure on stdout (progress goes to
 * stderr), stops by itself, and opens sockets on 127.0.0.1 only.
 *
 * Topology, four processes so that no two share an event loop: this one generates the load; the
 * gateway (`hookwarden serve`); the agent (`hookwarden agent`, connected out to the gateway over
 * a WebSocket, then over gRPC); the internal service (`bench/receiver.ts`), which only the agent
 * knows about.
 *
 * Path of one webhook: POST /in/{input} → stored and queued (one commit) → 200 to the caller →
 * worker → request frame over the WebSocket → agent → POST to the internal service → ack frame
 * → attempt recorded. Latency is measured from the intended send time to the arrival at the
 * internal service; the raw baseline is measured the same way.
 *
 * Environment: BENCH_QUICK=1, BENCH_DIALECTS=sqlite,postgres, BENCH_CONCURRENCY (32),
 * BENCH_RUNTIME=tsx|dist (dist needs `npm run build` first), BENCH_DATABASE_URL,
 * BENCH_AGENT_TRANSPORTS=ws,grpc (each figure line names its `transport`).
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { Agent, request } from "undici";
import { spawnAgent, type AgentProcess } from "../test/helpers/agents.js";
import { closedPort } from "../test/helpers/delivery.js";
import { gatewaySecrets, spawnGateway } from "../test/helpers/gateway-process.js";
import { benchNow, closedLoop, cpuMsOf, openLoop, percentile, round } from "./load.js";
import { ReceiverProcess } from "./receiver-process.js";

type Dialect = "sqlite" | "postgres";

const QUICK = process.env.BENCH_QUICK === "1";
const DIALECTS = (process.env.BENCH_DIALECTS ?? "sqlite,postgres").split(",").filter((d): d is Dialect => d === "sqlite" || d === "postgres");
/** In-flight requests: the load generator's, and the gateway's per-output and the agent's defaults. */
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
type Transport = "ws" | "grpc";
/** Both by default, one after the other against the same gateway: the comparison is within one run. */
const TRANSPORTS = (process.env.BENCH_AGENT_TRANSPORTS ?? "ws,grpc").split(",").filter((t): t is Transport => t === "ws" || t === "grpc");
const RUNTIME = process.env.BENCH_RUNTIME === "dist" ? "dist" : "tsx";
const PG_URL = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const RAW_REQUESTS = QUICK ? 3_000 : 20_000;
const RELAYED = QUICK ? 1_500 : 8_000;
const WARMUP = QUICK ? 500 : 2_000;
const LATENCY_SECONDS = QUICK ? 3 : 10;
/** The whole run is stopped (and counted as failed) after this long, whatever happens. */
const WATCHDOG_MS = QUICK ? 5 * 60_000 : 15 * 60_000;

const log = (msg: string) => process.stderr.write(`[bench:agent] ${msg}\n`);
const emit = (line: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ ...line, loadavg_1m: round(loadavg()[0]!, 2) })}\n`);

/** A ~1 KB event, the same bytes for the raw client and the ingress. */
const payload = (i: number) => JSON.stringify({ id: `evt_${i}`, type: "invoice.paid", data: { customer: "cus_8f2kQ0aLm3", amount: 1999, note: "x".repeat(900) } });

const cleanups: (() => Promise<void>)[] = [];
async function runCleanups(): Promise<void> {
  for (const c of cleanups.splice(0).reverse()) await c().catch((err: unknown) => log(`cleanup failed: ${String(err)}`));
}

/**
 * POSTs to `url` with `webhook-id: {prefix}{i}` (what the receiver counts by); throws unless 200.
 * The same client, pool size and headers serve the raw baseline and the ingress.
 */
function poster(url: string, prefix: string): { post: (i: number) => Promise<void>; close: () => Promise<void> } {
  const dispatcher = new Agent({ connections: CONCURRENCY, keepAliveTimeout: 10_000 });
  return {
    post: async (i) => {
      const res = await request(url, { method: "POST", dispatcher, headers: { "content-type": "application/json", "webhook-id": `${prefix}${i}` }, body: payload(i) });
      await res.body.dump();
      if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}`);
    },
    close: () => dispatcher.close(),
  };
}

/** Closed loop at `CONCURRENCY`: requests/s from the first send to the last arrival. */
async function throughput(receiver: ReceiverProcess, post: (i: number) => Promise<void>, n: number, offset: number): Promise<{ rps: number; elapsedMs: number; p99Ms: number }> {
  const sent = new Map<number, number>();
  const done = (await receiver.track(n, 300_000)).done;
  const t0 = benchNow();
  await closedLoop(n, CONCURRENCY, async (i) => {
    sent.set(i, benchNow());
    await post(offset + i);
  });
  const d = await done;
  const arrivals = await receiver.arrivals();
  const lat: number[] = [];
  for (const [id, at] of arrivals) {
    const s = sent.get(Number(/(\d+)$/.exec(id)![1]) - offset);
    if (s !== undefined) lat.push(at - s);
  }
  lat.sort((a, b) => a - b);
  return { rps: (n / (d.last - t0)) * 1000, elapsedMs: d.last - t0, p99Ms: percentile(lat, 99) };
}

/** Open loop at `rate`: latency from the intended send time to the arrival, p50/p99/max. */
async function latency(receiver: ReceiverProcess, post: (i: number) => Promise<void>, rate: number, offset: number): Promise<{ n: number; p50: number; p99: number; max: number }> {
  const n = Math.max(200, Math.round(rate * LATENCY_SECONDS));
  const due = new Map<number, number>();
  const arrived = (await receiver.track(n, 120_000)).done;
  await openLoop(n, rate, async (i, dueAt) => {
    due.set(i, dueAt);
    await post(offset + i);
  });
  await arrived;
  const lat: number[] = [];
  for (const [id, at] of await receiver.arrivals()) {
    const d = due.get(Number(/(\d+)$/.exec(id)![1]) - offset);
    if (d !== undefined) lat.push(at - d);
  }
  lat.sort((a, b) => a - b);
  return { n: lat.length, p50: percentile(lat, 50), p99: percentile(lat, 99), max: lat.at(-1) ?? Number.NaN };
}

async function call(url: string, token: string, path: string, body: unknown): Promise<any> {
  const res = await request(`${url}${path}`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify(body) });
  const text = await res.body.text();
  if (res.statusCode !== 201) throw new Error(`POST ${path} answered ${res.statusCode}: ${text}`);
  return JSON.parse(text);
}

/** Forward attempts that did not succeed so far (`hookwarden_forward_attempts_total`), by error code. */
async function failedForwards(url: string): Promise<Record<string, number>> {
  const res = await request(`${url}/metrics`);
  const text = await res.body.text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^hookwarden_forward_attempts_total\{([^}]*)\} (\d+)/gm)) {
    if (/outcome="success"/.test(m[1]!)) continue;
    const code = /error_code="([^"]*)"/.exec(m[1]!)?.[1] ?? "";
    out[code] = (out[code] ?? 0) + Number(m[2]);
  }
  return out;
}

async function relay(dialect: Dialect, receiver: ReceiverProcess, raw: { rps: number; post: (i: number) => Promise<void> }): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), "hookwarden-bench-agent-"));
  const schema = `hwbench_${randomBytes(6).toString("hex")}`;
  const secrets = gatewaySecrets();
  const grpcPort = await closedPort();
  const gw = await spawnGateway({
    runtime: RUNTIME,
    // A loaded machine starts a tsx gateway slowly; the default 30 s failed whole runs here.
    startTimeoutMs: 120_000,
    ...secrets,
    args: [
      "--host", "127.0.0.1", "--port", "0", "--data-dir", dataDir, "--log-level", "warn", "--shutdown-grace", "2s",
      "--allow-private-networks", "127.0.0.0/8",
      "--delivery-concurrency", String(CONCURRENCY), "--endpoint-concurrency", String(CONCURRENCY),
      ...(TRANSPORTS.includes("grpc") ? ["--grpc-port", String(grpcPort)] : []),
      ...(dialect === "postgres" ? ["--database-url", PG_URL, "--database-schema", schema] : []),
    ],
  });
  let agent: AgentProcess | undefined;
  let ingress: ReturnType<typeof poster> | undefined;
  let forward: ReturnType<typeof poster> | undefined;
  const cleanup = async () => {
    await ingress?.close();
    await forward?.close();
    await agent?.stop();
    await gw.stop(15_000);
    rmSync(dataDir, { recursive: true, force: true });
    if (dialect === "postgres") {
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      await client.query(`drop schema if exists ${schema} cascade`).finally(() => client.end());
    }
  };
  cleanups.push(cleanup);
  try {
    const bucket = await call(gw.url, secrets.adminToken, "/api/v1/bucket", { name: "internal" });
    const input = await call(gw.url, secrets.adminToken, `/api/v1/bucket/${bucket.id}/input`, { name: "bench" });
    await call(gw.url, secrets.adminToken, `/api/v1/bucket/${bucket.id}/output`, { type: "agent" });
    const token = await call(gw.url, secrets.adminToken, "/api/v1/agent-token", { name: "bench", buckets: ["internal"], mode: "forward" });
    ingress = poster(`${gw.url}/in/${input.id}`, `${dialect}_`);
    // The same ingress and queue with a URL output instead: what the agent hop itself costs.
    const direct = await call(gw.url, secrets.adminToken, "/api/v1/bucket", { name: "direct" });
    const directInput = await call(gw.url, secrets.adminToken, `/api/v1/bucket/${direct.id}/input`, { name: "bench" });
    await call(gw.url, secrets.adminToken, `/api/v1/bucket/${direct.id}/output`, { type: "url", url: `${receiver.url}/hook` });
    forward = poster(`${gw.url}/in/${directInput.id}`, `${dialect}_url_`);

    // One agent at a time, each transport in turn against the same gateway, bucket and receiver;
    // latency for all at one rate (half the first transport's peak), with the raw baseline's.
    let rate = 0;
    let rawLat: Awaited<ReturnType<typeof latency>> | undefined;
    const peaks: Partial<Record<Transport, number>> = {};
    for (const [k, transport] of TRANSPORTS.entries()) {
      const server = transport === "grpc" ? `grpc://127.0.0.1:${grpcPort}` : gw.url;
      agent = spawnAgent({ runtime: RUNTIME, server, key: token.key, secret: token.secret, bucket: "internal", forwardTo: `${receiver.url}/hook` });
      await agent.waitConnected(1, 60_000);
      // Both paths warm (JIT, connection pools, SQLite pages) before anything is timed.
      const warm = (await receiver.track(WARMUP, 120_000)).done;
      await closedLoop(WARMUP, CONCURRENCY, (i) => ingress!.post(-1_000_000 - k * 100_000 - i));
      await warm;

      log(`${dialect}: ${RELAYED} webhooks through the agent over ${transport} at concurrency ${CONCURRENCY}`);
      const cpu0 = { gw: cpuMsOf(gw.pid), agent: cpuMsOf(agent.pid) };
      const peak = await throughput(receiver, ingress.post, RELAYED, 10_000_000 * (k + 1));
      peaks[transport] = peak.rps;
      const context = { transport, webhooks: RELAYED, concurrency: CONCURRENCY, runtime: RUNTIME, measured: "first send to last arrival at the internal service" };
      emit({
        bench: "agent_relay_throughput",
        dialect,
        value: Math.round(peak.rps),
        unit: "req/s",
        ...context,
        p99_at_peak_ms: round(peak.p99Ms, 2),
        gateway_cpu_cores: round((cpuMsOf(gw.pid) - cpu0.gw) / peak.elapsedMs, 2),
        agent_cpu_cores: round((cpuMsOf(agent.pid) - cpu0.agent) / peak.elapsedMs, 2),
      });
      emit({ bench: "agent_relay_ratio_to_raw", dialect, value: round(peak.rps / raw.rps, 3), unit: "ratio", raw_req_s: Math.round(raw.rps), relayed_req_s: Math.round(peak.rps), ...context });

      // Latency without a queue in front of it.
      if (rate === 0) rate = Math.max(20, Math.round(peak.rps / 2));
      log(`${dialect}: latency at ${rate} req/s through the agent over ${transport}`);
      rawLat ??= await latency(receiver, raw.post, rate, 2_000_000);
      const relayLat = await latency(receiver, ingress.post, rate, 10_000_000 * (k + 1) + 5_000_000);
      const latencyContext = { transport, rate_req_s: rate, measured_from: "intended send time (open loop) to arrival at the internal service", runtime: RUNTIME };
      emit({ bench: "agent_relay_p50", dialect, value: round(relayLat.p50, 2), unit: "ms", requests: relayLat.n, raw_p50_ms: round(rawLat.p50, 2), ...latencyContext });
      emit({ bench: "agent_relay_p99", dialect, value: round(relayLat.p99, 2), unit: "ms", requests: relayLat.n, raw_p99_ms: round(rawLat.p99, 2), max_ms: round(relayLat.max, 2), ...latencyContext });
      await agent.kill("SIGTERM");
      agent = undefined;
    }
    if (peaks.ws !== undefined && peaks.grpc !== undefined) {
      emit({ bench: "agent_relay_grpc_to_ws", dialect, value: round(peaks.grpc / peaks.ws, 3), unit: "ratio", grpc_req_s: Math.round(peaks.grpc), ws_req_s: Math.round(peaks.ws), webhooks: RELAYED, concurrency: CONCURRENCY, runtime: RUNTIME });
    }

    log(`${dialect}: ${RELAYED} webhooks to a URL output (no agent)`);
    const urlWarm = (await receiver.track(WARMUP, 120_000)).done;
    await closedLoop(WARMUP, CONCURRENCY, (i) => forward!.post(-5_000_000 - i));
    await urlWarm;
    const url = await throughput(receiver, forward.post, RELAYED, 4_000_000);
    emit({ bench: "agent_url_output_throughput", dialect, value: Math.round(url.rps), unit: "req/s", webhooks: RELAYED, concurrency: CONCURRENCY, runtime: RUNTIME, p99_at_peak_ms: round(url.p99Ms, 2), note: "same gateway and ingress, a URL output instead of the agent" });
    // Every figure above assumes first-time success: a failed attempt would hide in the tail.
    emit({ bench: "agent_failed_forwards", dialect, value: Object.values(await failedForwards(gw.url)).reduce((a, b) => a + b, 0), unit: "attempts", by_code: await failedForwards(gw.url) });
  } catch (err) {
    log(`${dialect} failed; gateway output:\n${gw.output().slice(-4_000)}\nagent output:\n${agent?.output().slice(-4_000) ?? ""}`);
    throw err;
  } finally {
    cleanups.splice(cleanups.indexOf(cleanup), 1);
    await cleanup();
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  const receiver = await ReceiverProcess.start();
  cleanups.push(() => receiver.stop());
  const direct = poster(`${receiver.url}/hook`, "raw_");
  cleanups.push(direct.close);
  await closedLoop(WARMUP, CONCURRENCY, (i) => direct.post(-1_000_000 - i));
  log(`raw baseline: ${RAW_REQUESTS} requests straight to the internal service`);
  const raw = await throughput(receiver, direct.post, RAW_REQUESTS, 0);
  emit({ bench: "agent_raw_baseline", dialect: null, value: Math.round(raw.rps), unit: "req/s", requests: RAW_REQUESTS, concurrency: CONCURRENCY, p99_at_peak_ms: round(raw.p99Ms, 2), client: "undici request, keep-alive Agent" });
  for (const dialect of DIALECTS) await relay(dialect, receiver, { rps: raw.rps, post: direct.post });
  await runCleanups();
  log(`done in ${Math.round((Date.now() - started) / 1000)} s`);
}

const watchdog = setTimeout(() => {
  log(`still running after ${WATCHDOG_MS / 1000} s: giving up`);
  void runCleanups().finally(() => process.exit(1));
}, WATCHDOG_MS);
watchdog.unref();

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    log(`${signal}: cleaning up`);
    void runCleanups().finally(() => process.exit(130));
  });
}

main().then(
  () => process.exit(0),
  async (err: unknown) => {
    log(`failed: ${(err as Error)?.stack ?? String(err)}`);
    await runCleanups();
    process.exit(1);
  },
);
