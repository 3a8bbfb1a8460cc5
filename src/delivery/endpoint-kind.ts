import type { Context } from "../context/index.js";
import type { DestinationRegistry } from "../destinations/registry.js";
import type { DestinationKind, Loaded } from "../engine/kind.js";
import type { EndpointRow } from "../endpoints/index.js";
import type { FunctionRunner } from "../functions/runner.js";
import type { MessageRow } from "../messages/index.js";
import { selectByIds } from "../store/hot.js";
import { SpanKind } from "../tracing/index.js";
import { performAttempt } from "./attempt.js";
import { isHttpUrl } from "./destination-send.js";
import { EndpointCache, uncachedEndpoints } from "./endpoint-cache.js";
import type { EndpointContext } from "./endpoint-context.js";
import type { HttpSender } from "./http-sender.js";

/** An outbound job as loaded: its endpoint (whose health is the destination's), the message, what signing needs. */
export interface EndpointLoaded extends Loaded {
  readonly destination: EndpointRow;
  readonly item: MessageRow;
  readonly context: EndpointContext;
}

/**
 * The engine's `outbound` jobs: a message to one of its application's endpoints, signed (Standard
 * Webhooks) with the endpoint's secret, sent over HTTP, or to the broker its URL's scheme names
 * (`destinations`: amqp, nats, redis-stream). `functions`: the sandbox running endpoint
 * transformations.
 */
export function endpointKind(ctx: Context, sender: HttpSender, opts: { destinations?: DestinationRegistry; functions?: FunctionRunner } = {}): DestinationKind<EndpointLoaded> {
  const withTransformations = opts.functions !== undefined;
  const source = ctx.config.deliveryCache ? new EndpointCache(ctx, withTransformations) : uncachedEndpoints(ctx, withTransformations);
  return {
    job: "outbound",
    table: "endpoints",
    health: "endpoint",
    async load(jobs, known) {
      const { store, clock } = ctx;
      const msgIds = [...new Set(jobs.map((j) => j.item_id))].filter((id) => !known?.has(id));
      // Messages and the endpoints not cached in one round trip.
      const { endpoints, also: messages } = await source.of(
        jobs.map((j) => j.destination_id),
        clock.now(),
        selectByIds(store.db, "messages", msgIds),
      );
      const byId = new Map<string, MessageRow>(messages.map((m) => [m.id, m]));
      const loaded = new Map<string, EndpointLoaded>();
      for (const job of jobs) {
        const msg = (known?.get(job.item_id) as MessageRow | undefined) ?? byId.get(job.item_id);
        const ready = endpoints.get(job.destination_id);
        // An expunged message keeps its row without payload: its jobs go with it.
        if (!msg || !ready || msg.payload === "") continue;
        loaded.set(job.id, { destination: ready.endpoint, item: msg, context: ready.context });
      }
      return loaded;
    },
    async deliver(job, { destination: ep, item: msg, context }, signal) {
      // A child of the publish span stored with the message: the trace spans the queue.
      const span = ctx.tracing?.start("hookwarden.attempt", isHttpUrl(ep.url) ? SpanKind.CLIENT : SpanKind.PRODUCER, msg.trace_context, {
        "hookwarden.org.id": job.org_id,
        "hookwarden.app.id": job.scope_id,
        "hookwarden.message.id": msg.id,
        "hookwarden.endpoint.id": ep.id,
        "hookwarden.attempt.number": job.attempt + 1,
      });
      const { result, attempt } = await performAttempt(
        ctx,
        sender,
        { orgId: job.org_id, appId: job.scope_id, triggerType: job.trigger_type },
        ep,
        msg,
        context,
        signal,
        opts.destinations,
        opts.functions,
        span?.traceparent,
      );
      span?.end({ "hookwarden.attempt.id": attempt.id, "http.response.status_code": result.statusCode }, result.ok ? null : (result.errorCode ?? "E_HTTP_STATUS"));
      return { result, attempt };
    },
    attempted(job, { destination: ep, item: msg }, { result, attempt }, willRetry, now) {
      ctx.events.emit("delivery:attempted", {
        orgId: job.org_id,
        appId: job.scope_id,
        endpointId: ep.id,
        msgId: msg.id,
        attemptId: attempt.id,
        outcome: result.ok ? "success" : "failure",
        statusCode: result.statusCode,
        errorCode: result.errorCode,
        durationMs: result.durationMs,
        sincePublishMs: job.attempt === 0 && job.trigger_type === 0 ? now - msg.created_at : null,
        willRetry,
        tlsVerify: ep.tls_verify === 1,
        attempt: job.attempt,
      });
    },
  };
}
