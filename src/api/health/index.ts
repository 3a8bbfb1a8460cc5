import type { FastifyInstance } from "fastify";
import type { Registry } from "prom-client";
import type { Context } from "../../context/index.js";
import { classifyStorageError } from "../../store/errors.js";

/**
 * Liveness, readiness and Prometheus metrics; none needs a token. `/health` is liveness: the
 * process answers, whatever its storage does (a restart would not bring a database back).
 * `/ready` is readiness: storage answers and takes writes. While writes fail (database down, disk
 * full: `store.health`) it answers 503 with the fault's code and `Retry-After`; each call then
 * probes storage, so it turns 200 again as soon as writes succeed, with or without traffic.
 */
export function healthRoutes(app: FastifyInstance, ctx: Context, registry: Registry): void {
  app.get("/health", async () => ({ status: "ok" }));
  app.get("/api/v1/health", async (_req, reply) => reply.status(204).send());
  app.get("/ready", async (req, reply) => {
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
    if (fault === undefined && error === undefined) return { status: "ready", database: store.dialect };
    if (fault?.retryAfter !== undefined) reply.header("retry-after", String(fault.retryAfter));
    const full = fault?.code === "E_STORAGE_FULL";
    return reply.status(503).send({ code: fault?.code ?? "E_UNAVAILABLE", detail: full ? "Storage is full; writes are refused" : "Storage is not reachable" });
  });
  app.get("/metrics", async (_req, reply) => {
    reply.header("content-type", registry.contentType);
    return registry.metrics();
  });
}
