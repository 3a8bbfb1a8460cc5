import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { Clock } from "../clock/index.js";
import type { EventBus } from "../events/index.js";
import { queueStats } from "../queue/stats.js";
import type { Db } from "../store/index.js";

/**
 * Prometheus metrics, fed only by lifecycle events (business code never imports prom-client).
 * Labels are closed sets (outcome, error code): no ids, URLs or anything secret.
 */
export function createMetrics(events: EventBus, opts: { db: Db; clock: Clock }): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "hookwarden_" });

  const published = new Counter({ name: "hookwarden_messages_published_total", help: "Messages accepted and stored", registers: [registry] });
  const attempts = new Counter({
    name: "hookwarden_delivery_attempts_total",
    help: "Delivery attempts by outcome (success, retry, failed = retries exhausted) and error code",
    labelNames: ["outcome", "error_code"],
    registers: [registry],
  });
  const latency = new Histogram({
    name: "hookwarden_attempt_duration_seconds",
    help: "Duration of one delivery attempt",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const publishToDelivery = new Histogram({
    name: "hookwarden_publish_to_delivery_seconds",
    help: "Time from publish to the end of the first attempt",
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30],
    registers: [registry],
  });
  const circuits = new Counter({ name: "hookwarden_endpoint_circuit_opened_total", help: "Times an endpoint's circuit breaker opened", registers: [registry] });
  const disabled = new Counter({ name: "hookwarden_endpoints_disabled_total", help: "Endpoints disabled automatically (failing continuously, or answering 410 Gone)", registers: [registry] });
  const outputCircuits = new Counter({ name: "hookwarden_output_circuit_opened_total", help: "Times a bucket output's circuit breaker opened", registers: [registry] });
  const outputsDisabled = new Counter({ name: "hookwarden_outputs_disabled_total", help: "Bucket outputs disabled automatically (failing continuously, or answering 410 Gone)", registers: [registry] });
  const oldest = new Gauge({
    name: "hookwarden_queue_oldest_pending_age_seconds",
    help: "How long the oldest due, unclaimed delivery has been waiting",
    registers: [],
  });
  // Registered first so one query per scrape fills both gauges before either is serialised.
  const depth = new Gauge({
    name: "hookwarden_queue_depth",
    help: "Delivery jobs by state: ready (due, unclaimed) and waiting (scheduled retry or leased)",
    labelNames: ["state"],
    registers: [registry],
    async collect() {
      const s = await queueStats(opts.db, opts.clock.now());
      this.set({ state: "ready" }, s.ready);
      this.set({ state: "waiting" }, s.waiting);
      oldest.set(s.oldestReadyAgeMs / 1000);
    },
  });
  void depth;
  registry.registerMetric(oldest);

  events.on("message:published", () => published.inc());
  events.on("delivery:attempted", (e) => {
    attempts.inc({ outcome: e.outcome === "success" ? "success" : e.willRetry ? "retry" : "failed", error_code: e.errorCode ?? "" });
    latency.observe(e.durationMs / 1000);
    if (e.sincePublishMs !== null) publishToDelivery.observe(e.sincePublishMs / 1000);
  });
  const ingress = new Counter({
    name: "hookwarden_ingress_requests_total",
    help: "Inbound requests by outcome (accepted, duplicate, rejected) and rejection code",
    labelNames: ["outcome", "code"],
    registers: [registry],
  });
  const ingestLatency = new Histogram({
    name: "hookwarden_ingress_accept_seconds",
    help: "Time from receiving an inbound request to its durable acceptance",
    buckets: [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  const forwards = new Counter({
    name: "hookwarden_forward_attempts_total",
    help: "Attempts to forward inbound requests to outputs, by outcome and error code",
    labelNames: ["outcome", "error_code"],
    registers: [registry],
  });
  events.on("ingress:accepted", (e) => {
    ingress.inc({ outcome: "accepted", code: "" });
    ingestLatency.observe(e.durationMs / 1000);
  });
  events.on("ingress:duplicate", () => ingress.inc({ outcome: "duplicate", code: "" }));
  events.on("ingress:rejected", (e) => ingress.inc({ outcome: "rejected", code: e.code }));
  events.on("forward:attempted", (e) => forwards.inc({ outcome: e.outcome === "success" ? "success" : e.willRetry ? "retry" : "failed", error_code: e.errorCode ?? "" }));
  events.on("endpoint:circuit-opened", () => circuits.inc());
  events.on("endpoint:disabled", (e) => {
    if (e.trigger === "automatic") disabled.inc();
  });
  events.on("output:circuit-opened", () => outputCircuits.inc());
  events.on("output:disabled", () => outputsDisabled.inc());
  return registry;
}
