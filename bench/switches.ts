/**
 * `switches` phase of `npm run bench` (issue 10): what the engine's optimisations buy, measured by
 * throwing their off switches in the same run. Publish → delivered, closed loop at the bench's
 * concurrency, on a gateway with the defaults, on one started with `--delivery-cache false`
 * (routing, endpoints, keys and transformations read for every batch) and on one with every
 * switch off (`--group-commit false --direct-hand-off false --delivery-cache false
 * --prepared-statements false`: each publish also commits alone, every delivery waits for a
 * claim, and PostgreSQL parses every statement). One JSON line per dialect and
 * setting, then the ratios to `on`.
 */
import { CONCURRENCY, QUICK, emit, eventPayload, log, type Dialect } from "./common.js";
import { withGateway } from "./gateway.js";
import { benchNow, closedLoop, cpuMsOf, percentile, round } from "./load.js";
import type { ReceiverProcess } from "./receiver-process.js";

const MESSAGES = QUICK ? 1_000 : 4_000;
const SETTINGS = {
  on: [],
  delivery_cache_off: ["--delivery-cache", "false"],
  off: ["--group-commit", "false", "--direct-hand-off", "false", "--delivery-cache", "false", "--prepared-statements", "false"],
} as const;

export async function switchesPhase(dialect: Dialect, receiver: ReceiverProcess): Promise<void> {
  const rates: Record<string, number> = {};
  for (const [setting, args] of Object.entries(SETTINGS)) {
    await withGateway(
      dialect,
      `switches-${setting}`,
      async (gw, client) => {
        const app = await client.createApp("bench");
        await client.createEndpoint(app.id, `${receiver.url}/hook`);
        const body = (i: number) => JSON.stringify({ eventType: "invoice.paid", payload: eventPayload(i) });
        const publish = async (i: number) => {
          const t0 = benchNow();
          const r = await client.publish(app.id, body(i));
          if (r.status !== 202) throw new Error(`publish ${i} answered ${r.status}`);
          return benchNow() - t0;
        };
        const warm = (await receiver.track(200, 60_000)).done;
        await closedLoop(200, CONCURRENCY, async (i) => void (await publish(i)));
        await warm;
        log(`${dialect}: optimisations ${setting}: ${MESSAGES} messages at concurrency ${CONCURRENCY}`);
        const delivered = (await receiver.track(MESSAGES, 300_000)).done;
        const cpu0 = cpuMsOf(gw.pid);
        const latencies: number[] = [];
        const t0 = benchNow();
        await closedLoop(MESSAGES, CONCURRENCY, async (i) => void latencies.push(await publish(1_000 + i)));
        const done = await delivered;
        const rate = (MESSAGES / (done.last - t0)) * 1000;
        rates[setting] = rate;
        latencies.sort((a, b) => a - b);
        emit({
          bench: "optimisations",
          dialect,
          setting,
          value: Math.round(rate),
          unit: "msg/s",
          messages: MESSAGES,
          concurrency: CONCURRENCY,
          publish_p50_ms: round(percentile(latencies, 50), 1),
          publish_p99_ms: round(percentile(latencies, 99), 1),
          gateway_cpu_ms_per_msg: round((cpuMsOf(gw.pid) - cpu0) / MESSAGES, 3),
        });
      },
      [...args],
    );
  }
  emit({ bench: "optimisations_off_vs_on", dialect, value: round(rates.off! / rates.on!, 3), unit: "ratio" });
  emit({ bench: "delivery_cache_off_vs_on", dialect, value: round(rates.delivery_cache_off! / rates.on!, 3), unit: "ratio" });
}
