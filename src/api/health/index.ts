import type { FastifyInstance } from "fastify";
import type { Registry } from "prom-client";
import type { Context } from "../../context/index.js";
import { classifyStorageError } from "../../store/errors.js";
import { z } from "zod";
import { ErrorBody, route } from "../contract/index.js";

const TAG = "Health";
const Ready = z.object({ status: z.literal("ready"), database: z.enum(["sqlite", "postgres"]) });

/**
 * Liveness, readiness and Prometheus metrics; none needs a token. `/health` is liveness: the
 * process answers, whatever its storage does (a restart would not bring a database back).
 * `/ready` is readiness: storage answers and takes writes. While writes fail (database down, disk
 * full: `store.health`) it answers 503 with the fault's code and `Retry-After`; each call then
 * probes storage, so it turns 200 again as soon as writes succeed, with or without traffic.
 */
export function healthRoutes(app: FastifyInstance, ctx: Context, registry: Registry): void {
  route(app, { method: "GET", url: "/health", operationId: "hookwarden.health.live", summary: "Liveness", tag: TAG, auth: "none", responses: { 200: { description: "The process answers", schema: z.object({ status: z.literal("ok") }) } } }, async () => ({ status: "ok" as const }));
  route(app, { method: "GET", url: "/api/v1/health", operationId: "v1.health.get", summary: "Svix's health check", tag: TAG, auth: "none", responses: { 204: { description: "Up" } } }, async (_req, reply) => reply.status(204).send());
  route(app, { method: "GET", url: "/ready", operationId: "hookwarden.health.ready", summary: "Readiness: storage answers and takes writes", tag: TAG, auth: "none", responses: { 200: { description: "Ready", schema: Ready }, 503: { description: "Storage is failing (`E_UNAVAILABLE`, `E_STORAGE_FULL`), with Retry-After", schema: ErrorBody } } }, async (req, reply) => {
    const { store } = ctx;
    let error: unknown;
    try {
      if (store.health.failing) await store.probe();
      else await store.ping();
    } catch (err) {
      error = err;
      req.log.debug({ err }, "readiness check failed");
    }
    const fault = store.health.failing ?? (error === undefined ? undefined : classifyStorageError(error));
    if (fault === undefined && error === undefined) return { status: "ready" as const, database: store.dialect };
    if (fault?.retryAfter !== undefined) reply.header("retry-after", String(fault.retryAfter));
    const full = fault?.code === "E_STORAGE_FULL";
    return reply.status(503).send({ code: fault?.code ?? "E_UNAVAILABLE", detail: full ? "Storage is full; writes are refused" : "Storage is not reachable" });
  });
  route(app, { method: "GET", url: "/metrics", operationId: "hookwarden.metrics.get", summary: "Prometheus metrics", tag: TAG, auth: "none", responses: { 200: { description: "Prometheus text format", contentType: "text/plain" } } }, async (_req, reply) => {
    reply.header("content-type", registry.contentType);
    return registry.metrics();
  });
}
