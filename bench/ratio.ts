/**
 * The `ratio` phase of `npm run bench`: issue 10's goal (each path at 0.7 of the floor or more)
 * measured so that the machine's drift cancels out. The `floor` phase compares against `e2e` and
 * `ingest` phases that ran minutes earlier; on a machine whose speed moves by a factor of two
 * within minutes (stop 26) that ratio says more about the minute than about the code.
 *
 * Here one Hookwarden gateway (set up for both paths) and one floor gateway run side by side, both
 * warmed up, and each round measures the three back to back, seconds apart, on the same
 * receiver: the floor's accepted posts/s, Hookwarden's accepted posts/s on a verified input
 * (ingest) and its delivered messages/s through the publish API (e2e). The order is reversed every
 * round, so a drift within a round favours neither side. Each line gives the median of the
 * rounds' ratios, their range, and CPU per message (the process's own, `/proc`) over the floor's.
 *
 * The other speed goal, ahead of what a Node team would build instead, is measured the
 * same way: the BullMQ sender of the `bullmq` phase (Redis as configured here, the faster of its
 * two modes) runs in the same rounds, and `e2e_vs_bullmq` compares delivered/s and total CPU per
 * message, datastore included (PostgreSQL's server processes; redis-server).
 */
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { Agent } from "undici";
import { publishToSender, redisServerPid, startSender } from "./bullmq.js";
import { CONCURRENCY, QUICK, emit, log, publishBody, withCleanup, type Dialect } from "./common.js";
import { startFloor } from "./floor.js";
import { withGateway } from "./gateway.js";
import { peak, signedPoster, type Poster } from "./ingest.js";
import { benchNow, cpuMsOf, postgresCpuMs, round } from "./load.js";
import type { ReceiverProcess } from "./receiver-process.js";

const ROUNDS = Number(process.env.BENCH_RATIO_ROUNDS ?? 0) || (QUICK ? 3 : 6);
const PER_ROUND = QUICK ? 2_000 : 5_000;
const WARMUP = QUICK ? 500 : 2_000;

type Path = "floor" | "ingest" | "e2e" | "bullmq";
interface Measured {
  /** Accepted/s (floor, ingest) or delivered/s (e2e). */
  rate: number;
  /** Every webhook of the step at the receiver: from the first send to the last arrival. */
  arrivedRate: number;
  /** The process's own CPU per message. */
  cpuMsPerMsg: number;
  /** With its datastore's (PostgreSQL's server processes, redis-server). */
  totalCpuMsPerMsg: number;
}

/** The middle value (the mean of the two middle ones for an even count). */
function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export async function ratioPhase(dialect: Dialect, receiver: ReceiverProcess): Promise<void> {
  const key = randomBytes(24);
  const floorGw = await startFloor(dialect, receiver, key);
  let redisPid: number;
  let sender: Awaited<ReturnType<typeof startSender>>;
  try {
    const redis = new Redis("redis://127.0.0.1:6379", { maxRetriesPerRequest: 3 });
    redisPid = await redisServerPid(redis);
    redis.disconnect();
    sender = await startSender(`${receiver.url}/hook`, `hwbench-ratio-${Date.now()}`);
  } catch (err) {
    await floorGw.stop();
    throw err;
  }
  const senderAgent = new Agent({ connections: CONCURRENCY, keepAliveTimeout: 10_000 });
  const stopAll = async () => {
    await senderAgent.close();
    await sender.stop();
    await floorGw.stop();
  };
  await withCleanup(stopAll, () =>
    withGateway(dialect, "ratio", async (gw, client) => {
      const bucket = await client.createBucket("bench-ratio", { ephemeral: false });
      const input = await client.createInput(bucket.id, { verification: { type: "standard-webhooks", secret: `whsec_${key.toString("base64")}` } });
      await client.createOutput(bucket.id, `${receiver.url}/hook`);
      const app = await client.createApp("bench-ratio");
      await client.createEndpoint(app.id, `${receiver.url}/hook`);
      const floorPoster = signedPoster(`http://127.0.0.1:${floorGw.port}/in`, key, `ratio_floor_${dialect}_`);
      const ingestPoster = signedPoster(`${gw.url}/in/${input.id}`, key, `ratio_in_${dialect}_`);
      const publisher: Poster = {
        post: async (i) => {
          const r = await client.publish(app.id, publishBody(i));
          if (r.status !== 202) throw new Error(`publish ${i} answered ${r.status}`);
          return benchNow();
        },
        close: async () => {},
      };
      const bullmq: Poster = {
        post: async (i) => {
          await publishToSender(sender, senderAgent, i);
          return benchNow();
        },
        close: async () => {},
      };
      const noDatastore = () => 0;
      const pgCpu = dialect === "postgres" ? postgresCpuMs : noDatastore;
      const posters: Record<Path, { poster: Poster; pid: number; datastoreCpuMs: () => number }> = {
        floor: { poster: floorPoster, pid: floorGw.pid, datastoreCpuMs: pgCpu },
        ingest: { poster: ingestPoster, pid: gw.pid, datastoreCpuMs: pgCpu },
        e2e: { poster: publisher, pid: gw.pid, datastoreCpuMs: pgCpu },
        bullmq: { poster: bullmq, pid: sender.pid, datastoreCpuMs: () => cpuMsOf(redisPid) },
      };
      // Accepted/s for the two ingest paths (their forwards trail in the background, as in the
      // `ingest` and `floor` phases); delivered/s for e2e. Every step waits until its webhooks have
      // all reached the receiver, so none runs while the previous one's forwards still do.
      const measure = async (path: Path, offset: number, n: number): Promise<Measured> => {
        const { poster, pid, datastoreCpuMs } = posters[path];
        const arrived = (await receiver.track(n, 240_000)).done;
        const cpu0 = cpuMsOf(pid);
        const store0 = datastoreCpuMs();
        const t0 = benchNow();
        const accepted = await peak(poster, n, offset);
        const done = await arrived;
        const cpuMs = cpuMsOf(pid) - cpu0;
        const storeMs = datastoreCpuMs() - store0;
        const arrivedRate = (n / (done.last - t0)) * 1000;
        const delivered = path === "e2e" || path === "bullmq";
        return { rate: delivered ? arrivedRate : accepted.rps, arrivedRate, cpuMsPerMsg: cpuMs / n, totalCpuMsPerMsg: (cpuMs + storeMs) / n };
      };
      try {
        log(`${dialect}: ratio: warming up the floor and Hookwarden (ingest and e2e)`);
        for (const path of ["floor", "ingest", "e2e", "bullmq"] as const) await measure(path, -1_000_000, WARMUP);
        log(`${dialect}: ratio: ${ROUNDS} rounds of ${PER_ROUND} posts each through the floor, ingest, e2e and the BullMQ sender, the order reversed every round`);
        const rounds: Record<Path, Measured>[] = [];
        for (let r = 0; r < ROUNDS; r++) {
          const order: Path[] = r % 2 === 0 ? ["floor", "ingest", "e2e", "bullmq"] : ["bullmq", "e2e", "ingest", "floor"];
          const got = {} as Record<Path, Measured>;
          for (const path of order) got[path] = await measure(path, r * PER_ROUND, PER_ROUND);
          rounds.push(got);
          log(`${dialect}: ratio round ${r + 1}: floor ${Math.round(got.floor.rate)}/s (forwarded ${Math.round(got.floor.arrivedRate)}/s), ingest ${Math.round(got.ingest.rate)}/s (${Math.round(got.ingest.arrivedRate)}/s), e2e ${Math.round(got.e2e.rate)}/s, BullMQ ${Math.round(got.bullmq.rate)}/s`);
        }
        for (const path of ["e2e", "ingest"] as const) {
          const ratios = rounds.map((x) => x[path].rate / x.floor.rate);
          const cpuRatios = rounds.map((x) => x[path].cpuMsPerMsg / x.floor.cpuMsPerMsg);
          emit({
            bench: `${path}_ratio_to_floor`,
            dialect,
            method: "interleaved",
            value: round(median(ratios), 3),
            unit: "ratio",
            target: 0.7,
            min: round(Math.min(...ratios), 3),
            max: round(Math.max(...ratios), 3),
            rounds: ROUNDS,
            per_round: PER_ROUND,
            concurrency: CONCURRENCY,
            [`${path}_per_s`]: Math.round(median(rounds.map((x) => x[path].rate))),
            floor_req_s: Math.round(median(rounds.map((x) => x.floor.rate))),
            gateway_cpu_ms_per_msg: round(median(rounds.map((x) => x[path].cpuMsPerMsg)), 3),
            floor_cpu_ms_per_post: round(median(rounds.map((x) => x.floor.cpuMsPerMsg)), 3),
            cpu_ratio_to_floor: round(median(cpuRatios), 2),
            // With PostgreSQL's server processes: both sides write to the same server.
            ...(dialect === "postgres"
              ? {
                  total_cpu_ms_per_msg: round(median(rounds.map((x) => x[path].totalCpuMsPerMsg)), 3),
                  floor_total_cpu_ms_per_post: round(median(rounds.map((x) => x.floor.totalCpuMsPerMsg)), 3),
                }
              : {}),
            // Accepted/s can run ahead of the forwards, which trail after the last 2xx: the
            // same ratio with both sides' rates taken to the last webhook's arrival.
            ...(path === "ingest" ? { forwarded_ratio: round(median(rounds.map((x) => x.ingest.arrivedRate / x.floor.arrivedRate)), 3) } : {}),
          });
        }
        const vs = rounds.map((x) => x.e2e.rate / x.bullmq.rate);
        emit({
          bench: "e2e_vs_bullmq",
          dialect,
          method: "interleaved",
          value: round(median(vs), 3),
          unit: "ratio of delivered msg/s (Hookwarden / BullMQ sender, Redis as configured)",
          min: round(Math.min(...vs), 3),
          max: round(Math.max(...vs), 3),
          rounds: ROUNDS,
          per_round: PER_ROUND,
          hookwarden_msg_s: Math.round(median(rounds.map((x) => x.e2e.rate))),
          bullmq_msg_s: Math.round(median(rounds.map((x) => x.bullmq.rate))),
          cpu_ratio: round(median(rounds.map((x) => x.e2e.totalCpuMsPerMsg / x.bullmq.totalCpuMsPerMsg)), 3),
          hookwarden_total_cpu_ms_per_msg: round(median(rounds.map((x) => x.e2e.totalCpuMsPerMsg)), 3),
          bullmq_total_cpu_ms_per_msg: round(median(rounds.map((x) => x.bullmq.totalCpuMsPerMsg)), 3),
          note: "throughput ratio > 1 and cpu_ratio < 1 are better for Hookwarden",
        });
      } finally {
        await floorPoster.close();
        await ingestPoster.close();
      }
    }),
  );
}
