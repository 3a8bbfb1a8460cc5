import type { ApplicationRow } from "../applications/index.js";
import type { Context } from "../context/index.js";
import type { EndpointRow } from "../endpoints/index.js";
import { HookwardenError } from "../errors/index.js";
import { newId } from "../ids/index.js";
import type { MessageRow } from "../messages/index.js";
import { TRIGGER_SYNC } from "../queue/types.js";
import { performAttempt, type AttemptResult } from "./attempt.js";
import { buildRequest, type BuiltRequest } from "./build-request.js";
import { loadEndpointContexts } from "./endpoint-context.js";
import type { HttpSender } from "./http-sender.js";
import { isHttpUrl } from "./destination-send.js";
import type { FunctionRunner } from "../functions/runner.js";
import { messageRetention } from "../messages/expiry.js";
import { SpanKind } from "../tracing/index.js";

export interface CallInput {
  eventType: string;
  payload: Record<string, unknown>;
  eventId?: string | null | undefined;
}

function messageRow(ctx: Context, app: ApplicationRow, input: CallInput, now: number, id: string): MessageRow {
  return {
    id,
    org_id: app.org_id,
    app_id: app.id,
    event_id: input.eventId ?? null,
    event_type: input.eventType,
    deliver_at: null,
    trace_context: null,
    payload: JSON.stringify(input.payload),
    channels: null,
    tags: null,
    created_at: now,
    expires_at: now + messageRetention(ctx.config, app),
  };
}

/**
 * A synchronous delivery (`POST .../call` and `.../test`): stored as a message, signed, templated
 * and recorded like any attempt, never retried, and the endpoint's answer returned to the caller.
 * The endpoint's transformation (`functions`) runs as it does for a queued delivery.
 */
export async function callEndpoint(
  ctx: Context,
  sender: HttpSender,
  app: ApplicationRow,
  ep: EndpointRow,
  input: CallInput,
  functions?: FunctionRunner,
  callerTraceparent?: string,
): Promise<AttemptResult & { msg: MessageRow }> {
  if (ep.disabled === 1) throw new HookwardenError("E_ENDPOINT_DISABLED", 409, "The endpoint is disabled");
  if (!isHttpUrl(ep.url)) throw new HookwardenError("E_VALIDATION", 422, "Sync calls are for HTTP endpoints; a broker destination receives its messages through the queue");
  const now = ctx.clock.now();
  const msg = messageRow(ctx, app, input, now, newId("msg"));
  // Traced as one attempt span (tracing on): a child of the caller's `traceparent`, if valid.
  const span = ctx.tracing?.start("hookwarden.attempt", SpanKind.CLIENT, callerTraceparent, {
    "hookwarden.org.id": app.org_id,
    "hookwarden.app.id": app.id,
    "hookwarden.message.id": msg.id,
    "hookwarden.endpoint.id": ep.id,
    "hookwarden.attempt.number": 1,
    "hookwarden.sync": true,
  });
  if (span) msg.trace_context = span.traceparent;
  await ctx.store.db.insertInto("messages").values(msg).execute();
  const epCtx = (await loadEndpointContexts(ctx, [ep], now)).get(ep.id)!;
  const out = await performAttempt(ctx, sender, { orgId: app.org_id, appId: app.id, triggerType: TRIGGER_SYNC }, ep, msg, epCtx, undefined, undefined, functions, span?.traceparent);
  span?.end({ "hookwarden.attempt.id": out.attempt.id, "http.response.status_code": out.result.statusCode }, out.result.ok ? null : (out.result.errorCode ?? "E_HTTP_STATUS"));
  await ctx.store.db.insertInto("attempts").values(out.attempt).execute();
  ctx.events.emit("delivery:attempted", {
    orgId: app.org_id,
    appId: app.id,
    endpointId: ep.id,
    msgId: msg.id,
    attemptId: out.attempt.id,
    outcome: out.result.ok ? "success" : "failure",
    statusCode: out.result.statusCode,
    errorCode: out.result.errorCode,
    durationMs: out.result.durationMs,
    sincePublishMs: null,
    willRetry: false,
    tlsVerify: ep.tls_verify === 1,
  });
  return { ...out, msg };
}

/** The request an event would produce, every secret shown as `******`; nothing is sent or stored. */
export async function previewRequest(ctx: Context, app: ApplicationRow, ep: EndpointRow, input: CallInput): Promise<BuiltRequest> {
  const now = ctx.clock.now();
  // No vault secret is decrypted for a preview: every one renders as ******.
  const epCtx = (await loadEndpointContexts(ctx, [ep], now, { withSecrets: false })).get(ep.id)!;
  if (epCtx.broken) throw epCtx.broken;
  return buildRequest({
    ep,
    msg: messageRow(ctx, app, input, now, "msg_preview"),
    ...epCtx,
    // A broker's credentials open the connection; they are not part of the message.
    ...(isHttpUrl(ep.url) ? {} : { integration: { ...epCtx.integration, auth: null } }),
    secrets: new Map(),
    timestamp: Math.floor(now / 1000),
    outputLimit: ctx.config.templateOutputLimit,
    preview: true,
  });
}
