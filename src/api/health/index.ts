import type { FastifyInstance } from "fastify";
import type { Registry } from "prom-client";
import type { Context } from "../../context/index.js";

/** Liveness, readiness (storage reachable) and Prometheus metrics; none needs a token. */
export function healthRoutes(app: FastifyInstance, ctx: Context, registry: Registry): void {
  app.get("/health", async () => ({ status: "ok" }));
  app.get("/api/v1/health", async (_req, reply) => reply.status(204).send());
  app.get("/ready", async (req, reply) => {
    try {
      await ctx.store.ping();
      return { status: "ready", database: ctx.store.dialect };
    } catch (err) {
      req.log.warn({ err }, "readiness check failed");
      return reply.status(503).send({ code: "E_UNAVAILABLE", detail: "Storage is not reachable" });
    }
  });
  app.get("/metrics", async (_req, reply) => {
    reply.header("content-type", registry.contentType);
    return registry.metrics();
  });
}
