import type { EventBus } from "../events/index.js";
import type { Logger } from "../logger/index.js";

/**
 * The one place lifecycle events become log lines: one per delivery attempt, forward attempt and
 * inbound request. Business code emits events and never calls the logger for these.
 *
 * Levels: a success or an accepted request is `info`, a failed attempt `warn`. A refused inbound
 * request is `debug`: anyone on the internet can send them, so at the default level they would let
 * a stranger flood the log; `RejectionLog` already warns once a minute about an input that keeps
 * refusing, and every refusal is stored and counted in /metrics.
 *
 * Cost: child loggers are built once here, so a line is one object literal plus pino's
 * serialisation (no per-line bindings); below the configured level pino returns at once.
 */
export function logLifecycle(events: EventBus, logger: Logger): () => void {
  const delivery = logger.child({ component: "delivery" });
  const ingress = logger.child({ component: "ingress" });
  const offs = [
    events.on("delivery:attempted", (e) => {
      const line = {
        msgId: e.msgId,
        endpointId: e.endpointId,
        attemptId: e.attemptId,
        appId: e.appId,
        orgId: e.orgId,
        outcome: e.outcome,
        status: e.statusCode,
        errorCode: e.errorCode,
        ms: Math.round(e.durationMs),
        willRetry: e.willRetry,
      };
      if (e.outcome === "success") delivery.info(line, "delivery attempt succeeded");
      else delivery.warn(line, "delivery attempt failed");
    }),
    events.on("forward:attempted", (e) => {
      const line = {
        requestId: e.requestId,
        outputId: e.outputId,
        bucketId: e.bucketId,
        orgId: e.orgId,
        outcome: e.outcome,
        status: e.statusCode,
        errorCode: e.errorCode,
        ms: Math.round(e.durationMs),
        willRetry: e.willRetry,
      };
      if (e.outcome === "success") delivery.info(line, "forward attempt succeeded");
      else delivery.warn(line, "forward attempt failed");
    }),
    events.on("ingress:accepted", (e) => {
      ingress.info({ inputId: e.inputId, bucketId: e.bucketId, outcome: "accepted", status: e.status, size: e.size, ms: Math.round(e.durationMs) }, "inbound request accepted");
    }),
    events.on("ingress:duplicate", (e) => {
      ingress.info({ inputId: e.inputId, bucketId: e.bucketId, outcome: "duplicate", status: e.status }, "inbound request was a duplicate");
    }),
    events.on("ingress:rejected", (e) => {
      ingress.debug({ inputId: e.inputId, bucketId: e.bucketId, outcome: "rejected", status: e.status, errorCode: e.code }, "inbound request refused");
    }),
  ];
  return () => {
    for (const off of offs) off();
  };
}
