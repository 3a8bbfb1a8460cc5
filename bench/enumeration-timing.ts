/**
 * Can a prober tell a known input from an unknown one by the time of the answer? Status, headers
 * and body are identical (test/ingress/enumeration.test.ts); this measures the time.
 *
 *   npx tsx bench/enumeration-timing.ts            (BENCH_DIALECTS=sqlite,postgres, BENCH_ENUM_SAMPLES=400)
 *
 * A gateway in its own process (`tsx src/cli/main.ts serve`, loopback only) gets the same POST
 * (a unique ~100-byte JSON body each, so no request is a duplicate) to one known input in static
 * mode and to fresh random UUIDs, in a shuffled order, one at a time over one keep-alive
 * connection (the least noisy channel a prober has). A threshold classifier is fitted on one half
 * of the samples and scored on the other (two-fold, averaged): 50% accuracy means the timing
 * tells nothing. One JSON line per dialect; stops by itself.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, request } from "undici";
import { gatewaySecrets, spawnGateway, type GatewayProcess } from "../test/helpers/gateway-process.js";
import { DIALECTS, PG_URL, dropSchema, emit, log, withCleanup, type Dialect } from "./common.js";
import { percentile, round } from "./load.js";

const SAMPLES = Number(process.env.BENCH_ENUM_SAMPLES ?? 400);
const WARMUP = 50;

/** Best accuracy of `x < t ⇒ a` or `x < t ⇒ b` on `train`, applied to `test`. */
function thresholdAccuracy(train: { ms: number; known: boolean }[], test: { ms: number; known: boolean }[]): number {
  const sorted = [...train].sort((x, y) => x.ms - y.ms);
  const knownTotal = train.filter((s) => s.known).length;
  let best = { acc: 0, t: 0, knownBelow: true };
  let knownBelow = 0;
  for (let i = 0; i <= sorted.length; i++) {
    const t = i === sorted.length ? Infinity : sorted[i]!.ms;
    const unknownBelow = i - knownBelow;
    // Below t: known (direction A) or unknown (direction B).
    const accA = (knownBelow + (train.length - knownTotal - unknownBelow)) / train.length;
    const accB = (unknownBelow + (knownTotal - knownBelow)) / train.length;
    if (accA > best.acc) best = { acc: accA, t, knownBelow: true };
    if (accB > best.acc) best = { acc: accB, t, knownBelow: false };
    if (i < sorted.length && sorted[i]!.known) knownBelow++;
  }
  const right = test.filter((s) => (s.ms < best.t) === (best.knownBelow ? s.known : !s.known)).length;
  return right / test.length;
}

async function measure(dialect: Dialect): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), "hookwarden-bench-"));
  const schema = `hwbench_${randomBytes(6).toString("hex")}`;
  const secrets = gatewaySecrets();
  let gw: GatewayProcess | undefined;
  const dispatcher = new Agent({ connections: 1, keepAliveTimeout: 30_000 });
  const cleanup = async () => {
    await dispatcher.close();
    await gw?.stop(15_000);
    rmSync(dataDir, { recursive: true, force: true });
    if (dialect === "postgres") await dropSchema(schema);
  };
  await withCleanup(cleanup, async () => {
    gw = await spawnGateway({
      runtime: "tsx",
      ...secrets,
      args: ["--host", "127.0.0.1", "--port", "0", "--data-dir", dataDir, "--log-level", "warn", ...(dialect === "postgres" ? ["--database-url", PG_URL, "--database-schema", schema] : [])],
    });
    const api = async (path: string, body: unknown) => {
      const res = await fetch(gw!.url + path, { method: "POST", headers: { authorization: `Bearer ${secrets.adminToken}`, "content-type": "application/json" }, body: JSON.stringify(body) });
      if (res.status !== 201) throw new Error(`${path} answered ${res.status}: ${await res.text()}`);
      return (await res.json()) as { id: string };
    };
    const bucket = await api("/api/v1/bucket", { name: "enum" });
    const input = await api(`/api/v1/bucket/${bucket.id}/input`, { name: "in" });
    const post = async (id: string, i: number): Promise<number> => {
      const started = performance.now();
      const res = await request(`${gw!.url}/in/${id}`, { method: "POST", dispatcher, headers: { "content-type": "application/json" }, body: JSON.stringify({ id: `evt_${i}_${randomUUID()}`, type: "probe" }) });
      await res.body.dump();
      const ms = performance.now() - started;
      if (res.statusCode !== 200) throw new Error(`/in/${id} answered ${res.statusCode}`);
      return ms;
    };
    for (let i = 0; i < WARMUP; i++) {
      await post(input.id, i);
      await post(randomUUID(), i);
    }
    const order = [...Array<boolean>(SAMPLES).fill(true), ...Array<boolean>(SAMPLES).fill(false)].sort(() => Math.random() - 0.5);
    const samples: { ms: number; known: boolean }[] = [];
    for (let i = 0; i < order.length; i++) samples.push({ ms: await post(order[i] ? input.id : randomUUID(), WARMUP + i), known: order[i]! });
    const even = samples.filter((_, i) => i % 2 === 0);
    const odd = samples.filter((_, i) => i % 2 === 1);
    const accuracy = (thresholdAccuracy(even, odd) + thresholdAccuracy(odd, even)) / 2;
    const p = (known: boolean, q: number) => round(percentile(samples.filter((s) => s.known === known).map((s) => s.ms).sort((a, b) => a - b), q), 3);
    emit({
      bench: "enumeration_timing",
      dialect,
      value: round(accuracy * 100, 1),
      unit: "% classifier accuracy (50 = indistinguishable)",
      samples_per_class: SAMPLES,
      known_p50_ms: p(true, 50),
      unknown_p50_ms: p(false, 50),
      known_p90_ms: p(true, 90),
      unknown_p90_ms: p(false, 90),
      channel: "sequential POSTs over one keep-alive loopback connection; gateway under tsx in its own process",
    });
  });
}

for (const dialect of DIALECTS) {
  log(`${dialect}: ${SAMPLES} known and ${SAMPLES} unknown probes`);
  await measure(dialect);
}
