/**
 * The `ingest` phase of `npm run bench`: webhooks posted to a verified input (Standard Webhooks
 * HMAC, checked with its 300 s replay window), deduped, sealed with AES-256-GCM and committed
 * with their forward job before the 2xx; figures are 2xx per second and the latency of the 2xx.
 * The forward to the receiver happens in the background, as in production.
 *
 * Baseline, measured in the same run just before each dialect: the same load generator, payloads,
 * headers (signed the same way) and concurrency against `bench/receiver.ts`, a plain `node:http`
 * server in its own process that answers 200 once the body has arrived.
 */
import { createHmac, randomBytes } from "node:crypto";
import { Agent, request } from "undici";
import { withGateway } from "./gateway.js";
import { CONCURRENCY, LATENCY_RATE, LATENCY_SECONDS, QUICK, emit, eventPayload, ingestResults, log, type Dialect } from "./common.js";
import { benchNow, closedLoop, cpuMsOf, openLoop, percentile, round } from "./load.js";
import type { ReceiverProcess } from "./receiver-process.js";

const RAW_REQUESTS = QUICK ? 3_000 : 15_000;
const WARMUP = QUICK ? 500 : 2_000;
const POSTS = QUICK ? 3_000 : 10_000;

/** POSTs signed webhooks to one URL; `post` resolves with the time of the complete answer. */
export interface Poster {
  post: (i: number) => Promise<number>;
  close: () => Promise<void>;
}

/**
 * Signs every request as a Standard Webhooks sender does (`v1,` HMAC-SHA256 of
 * `{id}.{timestamp}.{body}` under the `whsec_` key), at send time so the timestamp is always
 * fresh; node:crypto rather than the `standardwebhooks` package, whose pure-JS HMAC would load
 * the generator (the raw baseline pays the same). A non-200 answer throws: a rejected request
 * would otherwise count as throughput.
 */
export function signedPoster(url: string, key: Buffer, idPrefix: string): Poster {
  const dispatcher = new Agent({ connections: CONCURRENCY, keepAliveTimeout: 10_000 });
  return {
    post: async (i) => {
      const id = `${idPrefix}${i}`;
      const body = JSON.stringify(eventPayload(i));
      const ts = String(Math.floor(Date.now() / 1000));
      const signature = createHmac("sha256", key).update(`${id}.${ts}.`).update(body).digest("base64");
      const res = await request(url, {
        method: "POST",
        dispatcher,
        headers: { "content-type": "application/json", "user-agent": "bench-sender/1.0", "webhook-id": id, "webhook-timestamp": ts, "webhook-signature": `v1,${signature}` },
        body,
      });
      await res.body.dump();
      const at = benchNow();
      if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}`);
      return at;
    },
    close: () => dispatcher.close(),
  };
}

/** Closed loop at `CONCURRENCY`: answered requests/s from the first send to the last answer; ids from `offset`. */
export async function peak(poster: Poster, n: number, offset = 0): Promise<{ rps: number; elapsedMs: number; lastAnswer: number; p50Ms: number; p99Ms: number }> {
  const lat: number[] = [];
  const t0 = benchNow();
  let last = t0;
  await closedLoop(n, CONCURRENCY, async (i) => {
    const sent = benchNow();
    last = await poster.post(offset + i);
    lat.push(last - sent);
  });
  lat.sort((a, b) => a - b);
  return { rps: (n / (last - t0)) * 1000, elapsedMs: last - t0, lastAnswer: last, p50Ms: percentile(lat, 50), p99Ms: percentile(lat, 99) };
}

/** Open loop at `rate`: from the intended send time to the complete answer (no coordinated omission). */
async function paced(poster: Poster, rate: number, offset: number): Promise<{ n: number; p50: number; p99: number; max: number }> {
  const n = Math.max(200, Math.round(rate * LATENCY_SECONDS));
  const lat: number[] = [];
  await openLoop(n, rate, async (i, due) => void lat.push((await poster.post(offset + i)) - due));
  lat.sort((a, b) => a - b);
  return { n, p50: percentile(lat, 50), p99: percentile(lat, 99), max: lat.at(-1) ?? Number.NaN };
}

/** Raw rate, then the gateway's accepted rate and its ratio, then latency at half that rate (gateway and raw). */
export async function ingest(dialect: Dialect, receiver: ReceiverProcess): Promise<void> {
  const keyBytes = randomBytes(24);
  const raw = signedPoster(`${receiver.url}/hook`, keyBytes, `raw_${dialect}_`);
  try {
    await closedLoop(WARMUP, CONCURRENCY, async (i) => void (await raw.post(-1_000_000 - i)));
    log(`${dialect}: ingest raw baseline, ${RAW_REQUESTS} posts to a plain node:http server`);
    const rawPeak = await peak(raw, RAW_REQUESTS);

    await withGateway(dialect, "ingest", async (gw, client) => {
      const bucket = await client.createBucket("bench-ingest", { ephemeral: false });
      const input = await client.createInput(bucket.id, { verification: { type: "standard-webhooks", secret: `whsec_${keyBytes.toString("base64")}` } });
      await client.createOutput(bucket.id, `${receiver.url}/hook`);
      const gateway = signedPoster(`${gw.url}/in/${input.id}`, keyBytes, `${dialect}_`);
      try {
        const warm = (await receiver.track(WARMUP, 120_000)).done;
        await closedLoop(WARMUP, CONCURRENCY, async (i) => void (await gateway.post(-1_000_000 - i)));
        await warm;

        log(`${dialect}: ${POSTS} posts to a verified input at concurrency ${CONCURRENCY}`);
        const forwarded = (await receiver.track(POSTS, 240_000)).done;
        const cpu0 = cpuMsOf(gw.pid);
        const gwPeak = await peak(gateway, POSTS);
        const cores = (cpuMsOf(gw.pid) - cpu0) / gwPeak.elapsedMs;
        const done = await forwarded;
        const context = { posts: POSTS, concurrency: CONCURRENCY, verification: "standard-webhooks", stored: "sealed AES-256-GCM, committed before the 2xx", gateway: "node bin/hookwarden.js (dist)" };
        emit({
          bench: "ingest_accepted",
          dialect,
          value: Math.round(gwPeak.rps),
          unit: "req/s",
          ...context,
          p50_at_peak_ms: round(gwPeak.p50Ms, 2),
          p99_at_peak_ms: round(gwPeak.p99Ms, 2),
          gateway_cpu_cores: round(cores, 2),
          // Less sensitive than the rate to other load on the machine: what one accepted post cost,
          // its forward included as far as it ran in the same window.
          gateway_cpu_ms_per_post: round((cores * gwPeak.elapsedMs) / POSTS, 3),
          // How far the background forwards trail the ingest: a growing backlog would show here.
          forwards_done_ms_after_last_2xx: Math.round(done.last - gwPeak.lastAnswer),
        });
        ingestResults.set(dialect, { rate: gwPeak.rps, gatewayCpuMsPerPost: (cores * gwPeak.elapsedMs) / POSTS });
        emit({ bench: "ingest_ratio_to_raw", dialect, value: round(gwPeak.rps / rawPeak.rps, 3), unit: "ratio", raw_req_s: Math.round(rawPeak.rps), raw_p99_at_peak_ms: round(rawPeak.p99Ms, 2), accepted_req_s: Math.round(gwPeak.rps), target: 0.5, ...context });

        const rate = LATENCY_RATE ?? Math.max(20, Math.round(gwPeak.rps / 2));
        log(`${dialect}: ingest latency at ${rate} req/s (open loop), raw then gateway`);
        const rawLat = await paced(raw, rate, 2_000_000);
        const lat = await paced(gateway, rate, 2_000_000);
        const latencyContext = { rate_req_s: rate, requests: lat.n, measured_from: "intended send time (open loop) to the complete 2xx", raw_p50_ms: round(rawLat.p50, 2), raw_p99_ms: round(rawLat.p99, 2) };
        emit({ bench: "ingest_p50", dialect, value: round(lat.p50, 2), unit: "ms", ...latencyContext });
        emit({ bench: "ingest_p99", dialect, value: round(lat.p99, 2), unit: "ms", ...latencyContext, max_ms: round(lat.max, 2), target_ms: 20 });
      } finally {
        await gateway.close();
      }
    });
  } finally {
    await raw.close();
  }
}
