/**
 * Phase `bullmq` of `npm run bench`: the sender a Node team would build instead (bench/bullmq-sender.ts:
 * Fastify → BullMQ on this machine's Redis → a worker signing with `standardwebhooks` and posting
 * with undici), measured like the `e2e` phase with the same client, payload, concurrency and
 * receiver: delivered msg/s, CPU per message with its datastore (the sender's process plus
 * redis-server), and publish-to-delivery p50/p99 at half its peak. Run twice: Redis as configured
 * here, and with `appendonly yes` + `appendfsync always`, so that its 202 is as durable as
 * Hookwarden's. When the `e2e` phase ran in the same run, `vs_bullmq` lines compare the two.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { Agent, request } from "undici";
import { REPO_ROOT } from "../test/helpers/gateway-process.js";
import { CONCURRENCY, LATENCY_RATE, LATENCY_SECONDS, QUICK, e2eResults, emit, log, publishBody, withCleanup } from "./common.js";
import { benchNow, closedLoop, cpuMsOf, openLoop, percentile, round } from "./load.js";
import type { ReceiverProcess } from "./receiver-process.js";

const MESSAGES = QUICK ? 3_000 : 10_000;
const WARMUP = QUICK ? 300 : 1_000;
const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

type Mode = "redis_as_configured" | "appendfsync_always";

export interface Sender {
  url: string;
  pid: number;
  stop: () => Promise<void>;
}

/** The BullMQ sender (bench/bullmq-sender.ts) in its own process, posting to `target`. */
export async function startSender(target: string, queue: string): Promise<Sender> {
  const script = fileURLToPath(new URL("./bullmq-sender.ts", import.meta.url));
  const child = spawn(process.execPath, ["--import", "tsx", script], {
    cwd: REPO_ROOT,
    env: { ...process.env, BULLMQ_TARGET: target, BULLMQ_SECRET: SECRET, BULLMQ_QUEUE: queue, BULLMQ_CONCURRENCY: String(CONCURRENCY) },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error("the BullMQ sender did not start within 60 s")), 60_000);
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString("utf8");
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (line) {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { url: string }).url);
      }
    });
    void exited.then(() => reject(new Error("the BullMQ sender exited during start")));
  });
  return {
    url,
    pid: child.pid!,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(killer);
    },
  };
}

/** Publishes `publishBody(i)` through the sender's API; resolves with the message id once answered 202. */
export async function publishToSender(sender: Sender, agent: Agent, i: number): Promise<string> {
  const res = await request(`${sender.url}/api/v1/app/bench/msg`, {
    method: "POST",
    dispatcher: agent,
    headers: { "content-type": "application/json" },
    body: publishBody(i),
  });
  const text = await res.body.text();
  if (res.statusCode !== 202) throw new Error(`BullMQ sender answered ${res.statusCode}: ${text}`);
  return (JSON.parse(text) as { id: string }).id;
}

/** The pid of the redis-server this client talks to (its CPU counts as the sender's datastore's). */
export async function redisServerPid(redis: Redis): Promise<number> {
  return Number(/process_id:(\d+)/.exec(await redis.info("server"))?.[1]);
}

/** Waits until Redis has finished rewriting its append-only file (switched on just before). */
async function aofSettled(redis: Redis): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const info = await redis.info("persistence");
    if (/aof_rewrite_in_progress:0/.test(info) && /aof_rewrite_scheduled:0/.test(info)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("Redis did not finish its AOF rewrite within 60 s");
}

async function measure(mode: Mode, receiver: ReceiverProcess, redisPid: number): Promise<void> {
  const sender = await startSender(`${receiver.url}/hook`, `hwbench-${mode}-${Date.now()}`);
  const agent = new Agent({ connections: CONCURRENCY * 2, keepAliveTimeout: 10_000 });
  await withCleanup(
    async () => {
      await agent.close();
      await sender.stop();
    },
    async () => {
      const publish = (i: number) => publishToSender(sender, agent, i);
      const warm = (await receiver.track(WARMUP, 60_000)).done;
      await closedLoop(WARMUP, CONCURRENCY, async (i) => void (await publish(i)));
      await warm;

      log(`bullmq (${mode}): publishing ${MESSAGES} messages at concurrency ${CONCURRENCY}`);
      const delivered = (await receiver.track(MESSAGES, 240_000)).done;
      const cpu0 = cpuMsOf(sender.pid);
      const redis0 = cpuMsOf(redisPid);
      const t0 = benchNow();
      await closedLoop(MESSAGES, CONCURRENCY, async (i) => void (await publish(i)));
      const published = benchNow();
      const done = await delivered;
      const elapsed = done.last - t0;
      const rate = (MESSAGES / elapsed) * 1000;
      const senderCpu = (cpuMsOf(sender.pid) - cpu0) / MESSAGES;
      const redisCpu = (cpuMsOf(redisPid) - redis0) / MESSAGES;
      const context = { mode, messages: MESSAGES, concurrency: CONCURRENCY, sender: "Fastify + BullMQ 6 + standardwebhooks + undici, one process", datastore: "redis-server" };
      emit({
        bench: "bullmq_delivered",
        dialect: null,
        value: Math.round(rate),
        unit: "msg/s",
        ...context,
        publish_rate_msg_s: Math.round((MESSAGES / (published - t0)) * 1000),
        sender_cpu_ms_per_msg: round(senderCpu, 3),
        datastore_cpu_ms_per_msg: round(redisCpu, 3),
        total_cpu_ms_per_msg: round(senderCpu + redisCpu, 3),
      });

      const half = LATENCY_RATE ?? rate / 2;
      const count = Math.max(200, Math.round(half * LATENCY_SECONDS));
      log(`bullmq (${mode}): ${count} messages open-loop at ${Math.round(half)} msg/s (half of peak)`);
      const due = new Map<string, number>();
      const arrived = (await receiver.track(count, 120_000)).done;
      await openLoop(count, half, async (i, dueAt) => {
        due.set(await publish(1_000_000 + i), dueAt);
      });
      await arrived;
      const latencies: number[] = [];
      for (const [id, at] of await receiver.arrivals()) {
        const d = due.get(id);
        if (d !== undefined) latencies.push(at - d);
      }
      latencies.sort((a, b) => a - b);
      const p50 = percentile(latencies, 50);
      const p99 = percentile(latencies, 99);
      const latencyContext = { mode, rate_msg_s: Math.round(half), messages: latencies.length, measured_from: "intended publish time (open loop) to arrival at the receiver" };
      emit({ bench: "bullmq_publish_to_delivery_p50", dialect: null, value: round(p50, 2), unit: "ms", ...latencyContext });
      emit({ bench: "bullmq_publish_to_delivery_p99", dialect: null, value: round(p99, 2), unit: "ms", ...latencyContext });

      // Hookwarden against this sender, when the e2e phase measured it in this run.
      for (const [dialect, hw] of e2eResults) {
        emit({
          bench: "vs_bullmq",
          dialect,
          value: round(hw.rate / rate, 3),
          unit: "ratio of delivered msg/s (Hookwarden / BullMQ sender)",
          mode,
          hookwarden_msg_s: Math.round(hw.rate),
          bullmq_msg_s: Math.round(rate),
          cpu_ratio: round(hw.totalCpuMsPerMsg / (senderCpu + redisCpu), 3),
          hookwarden_total_cpu_ms_per_msg: round(hw.totalCpuMsPerMsg, 3),
          bullmq_total_cpu_ms_per_msg: round(senderCpu + redisCpu, 3),
          p50_ratio: round(hw.p50 / p50, 3),
          hookwarden_p50_ms: round(hw.p50, 2),
          bullmq_p50_ms: round(p50, 2),
          note: "lower cpu_ratio and p50_ratio are better for Hookwarden; throughput ratio > 1 is better",
        });
      }
    },
  );
}

export async function bullmqPhase(receiver: ReceiverProcess): Promise<void> {
  const redis = new Redis("redis://127.0.0.1:6379", { maxRetriesPerRequest: 3 });
  const [, appendonly] = (await redis.config("GET", "appendonly")) as [string, string];
  const [, appendfsync] = (await redis.config("GET", "appendfsync")) as [string, string];
  const redisPid = await redisServerPid(redis);
  const restore = async () => {
    await redis.config("SET", "appendfsync", appendfsync);
    await redis.config("SET", "appendonly", appendonly);
  };
  try {
    await measure("redis_as_configured", receiver, redisPid);
    await withCleanup(restore, async () => {
      await redis.config("SET", "appendonly", "yes");
      await redis.config("SET", "appendfsync", "always");
      await aofSettled(redis);
      await measure("appendfsync_always", receiver, redisPid);
    });
  } finally {
    redis.disconnect();
  }
}
