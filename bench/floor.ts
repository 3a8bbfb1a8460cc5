/**
 * The `floor` phase of `npm run bench`: the same signed posts as the ingest phase, sent to
 * `bench/floor-gateway.ts` (the least a gateway can do per webhook: HMAC check, AES-GCM seal,
 * one SQLite insert without fsync, 200, forward, delete) instead of Hookwarden, against the raw
 * baseline measured just before. Its ratio is what the issues' ratio targets would ask of a
 * gateway that does nothing else, on this machine.
 */
import { fork } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { CONCURRENCY, PG_URL, QUICK, e2eResults, emit, ingestResults, log, withCleanup, type Dialect } from "./common.js";
import { peak, signedPoster } from "./ingest.js";
import { closedLoop, cpuMsOf, round } from "./load.js";
import type { ReceiverProcess } from "./receiver-process.js";

const POSTS = QUICK ? 3_000 : 10_000;
const WARMUP = QUICK ? 500 : 2_000;

/** `bench/floor-gateway.ts` in its own process, forwarding to the receiver; listening once this resolves. */
export async function startFloor(dialect: Dialect, receiver: ReceiverProcess, key: Buffer): Promise<{ port: number; pid: number; stop: () => Promise<void> }> {
  const child = fork(fileURLToPath(new URL("./floor-gateway.ts", import.meta.url)), [`${receiver.url}/hook`], {
    execArgv: ["--import", "tsx"],
    env: { ...process.env, FLOOR_INBOUND_KEY: key.toString("base64"), ...(dialect === "postgres" ? { FLOOR_DATABASE_URL: PG_URL } : {}) },
    stdio: ["ignore", "pipe", "inherit", "ipc"],
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.once("exit", (code) => reject(new Error(`floor gateway exited during start (code ${code})`)));
      child.stdout!.once("data", (d: Buffer) => resolve((JSON.parse(d.toString()) as { port: number }).port));
    });
    return { port, pid: child.pid!, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

export async function floor(dialect: Dialect, receiver: ReceiverProcess): Promise<void> {
  const key = randomBytes(24);
  const { port, pid, stop } = await startFloor(dialect, receiver, key);
  await withCleanup(stop, async () => {
    const raw = signedPoster(`${receiver.url}/hook`, key, "floor_raw_");
    const gateway = signedPoster(`http://127.0.0.1:${port}/in`, key, "floor_");
    try {
      await closedLoop(WARMUP, CONCURRENCY, async (i) => void (await raw.post(-1_000_000 - i)));
      log(`${dialect}: floor: raw baseline, then ${POSTS} posts through the minimal pipeline`);
      const rawPeak = await peak(raw, POSTS);
      const warm = (await receiver.track(WARMUP, 120_000)).done;
      await closedLoop(WARMUP, CONCURRENCY, async (i) => void (await gateway.post(-1_000_000 - i)));
      await warm;
      const forwarded = (await receiver.track(POSTS, 240_000)).done;
      const cpu0 = cpuMsOf(pid);
      const gwPeak = await peak(gateway, POSTS);
      const cpuMs = cpuMsOf(pid) - cpu0;
      const done = await forwarded;
      const delivered = (POSTS / (done.last - (gwPeak.lastAnswer - gwPeak.elapsedMs))) * 1000;
      emit({
        bench: "floor_accepted",
        dialect,
        value: Math.round(gwPeak.rps),
        unit: "req/s",
        delivered_msg_s: Math.round(delivered),
        raw_req_s: Math.round(rawPeak.rps),
        ratio_to_raw: round(gwPeak.rps / rawPeak.rps, 3),
        delivered_ratio_to_raw: round(delivered / rawPeak.rps, 3),
        cpu_ms_per_post: round(cpuMs / POSTS, 3),
        posts: POSTS,
        concurrency: CONCURRENCY,
        pipeline:
          dialect === "postgres"
            ? "bench/floor-gateway.ts: node:http, HMAC check, AES-256-GCM seal, PostgreSQL INSERT (durable commit), 200, undici forward, DELETE"
            : "bench/floor-gateway.ts: node:http, HMAC check, AES-256-GCM seal, SQLite insert (no fsync), 200, undici forward, delete",
      });
      // Issue 10's goal, as lines: each path's rate over the floor's, and its gateway CPU per
      // message over the floor's CPU per post, with the phases that ran earlier in this run. The
      // phases run minutes apart: on a machine whose speed drifts, compare several runs.
      const floorCpu = cpuMs / POSTS;
      const e2e = e2eResults.get(dialect);
      const ingested = ingestResults.get(dialect);
      const paths = [
        ...(e2e ? [{ path: "e2e", rate: e2e.rate, cpu: e2e.gatewayCpuMsPerMsg }] : []),
        ...(ingested ? [{ path: "ingest", rate: ingested.rate, cpu: ingested.gatewayCpuMsPerPost }] : []),
      ];
      for (const { path, ...r } of paths) {
        emit({
          bench: `${path}_ratio_to_floor`,
          dialect,
          // The `ratio` phase measures the same with the paths interleaved (`method: "interleaved"`).
          method: "separate phases",
          value: round(r.rate / gwPeak.rps, 3),
          unit: "ratio",
          target: 0.7,
          [`${path}_per_s`]: Math.round(r.rate),
          floor_req_s: Math.round(gwPeak.rps),
          gateway_cpu_ms_per_msg: round(r.cpu, 3),
          floor_cpu_ms_per_post: round(floorCpu, 3),
          cpu_ratio_to_floor: round(r.cpu / floorCpu, 2),
        });
      }
    } finally {
      await raw.close();
      await gateway.close();
    }
  });
}
