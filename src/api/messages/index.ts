import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { createApplication, findApplication } from "../../applications/index.js";
import type { ApplicationCache } from "../../applications/cache.js";
import type { Context } from "../../context/index.js";
import { findEndpoint } from "../../endpoints/index.js";
import { HookwardenError } from "../../errors/index.js";
import { findMessage, listMessages, type MessageRow } from "../../messages/index.js";
import type { Publisher } from "../../messages/publisher.js";
import { TRIGGER_MANUAL } from "../../queue/types.js";
import { listResponse, parsePage } from "../pagination.js";
import { channel, eventTypeName, iso, jsonOrNull, metadata, rateLimit, uid } from "../schemas.js";
import { dateTime, Empty, listOf, named, route } from "../contract/index.js";
import { pageQuery } from "../pagination.js";
import { pickAlias } from "../aliases.js";
import { firstHeader, SpanKind } from "../../tracing/index.js";
import { contentRemoved, DAY_MS, removeMessageContent } from "../../retention/index.js";

// Strict: a field Hookwarden does not implement is refused (422 naming it), never dropped.
const messageIn = z.object({
  eventType: eventTypeName,
  payload: z.record(z.string(), z.unknown(), { error: "Payload must be an object" }),
  eventId: uid.nullish(),
  channels: z.array(channel).min(1).max(5, "Channels must have at least 1 and at most 5 items, or be set to null").nullish(),
  tags: z.array(z.string().min(1).max(128)).max(5).nullish(),
  deliverAt: z.iso.datetime({ offset: true }).nullish(),
  /** Days the payload is kept (Svix's field; Svix caps it at 90, Hookwarden at the server's ceiling). */
  payloadRetentionPeriod: z.number().int().min(1).max(3650).optional(),
  /** Hours the payload is kept (svix 2.x); not together with `payloadRetentionPeriod`. */
  payloadRetentionHours: z.number().int().min(1).max(3650 * 24).optional(),
  application: z
    .object({ name: z.string().min(1).max(256), uid: uid.nullish(), rateLimit: rateLimit.nullish(), throttleRate: rateLimit.nullish(), metadata: metadata.optional() })
    .strict()
    .optional(),
}).strict();

const bool = z.enum(["true", "false"]).optional();
/** Built once: zod compiles an object schema on first use, so one per request cost ~27% of publish throughput. */
const withContentQuery = z.object({ with_content: bool }).passthrough();
const date = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s)).optional();

export const Message = named(
  "Message",
  z.object({
    id: z.string(),
    eventId: z.string().nullable(),
    eventType: z.string(),
    /** `{}` when read with `with_content=false`; `{"expired": true}` once removed by retention or expungeContent. */
    payload: z.record(z.string(), z.unknown()),
    channels: z.array(z.string()).nullable(),
    tags: z.array(z.string()).nullable(),
    timestamp: dateTime,
    deliverAt: dateTime.optional(),
  }),
);
const listQuery = pageQuery.extend({ with_content: bool, channel: channel.optional(), tag: z.string().min(1).max(128).optional(), event_types: z.string().optional(), before: date, after: date });
const TAG = "Message";

export function messageOut(row: MessageRow, withContent: boolean): z.output<typeof Message> {
  return {
    id: row.id,
    eventId: row.event_id,
    eventType: row.event_type,
    // Svix answers `{"expired": true}` for a payload removed by retention or expungeContent.
    payload: withContent ? (contentRemoved(row) ? { expired: true } : (JSON.parse(row.payload) as Record<string, unknown>)) : {},
    channels: jsonOrNull<string[]>(row.channels),
    tags: jsonOrNull<string[]>(row.tags),
    timestamp: iso(row.created_at),
    ...(row.deliver_at !== null ? { deliverAt: iso(row.deliver_at) } : {}),
  };
}

/**
 * `messageOut` as JSON text, the stored payload spliced in as it is kept (`JSON.stringify` of the
 * parsed body, so valid JSON) instead of parsed and serialised again for every publish answer;
 * the same text `JSON.stringify(messageOut(row, withContent))` gives, keys in the same order.
 */
export function messageJson(row: MessageRow, withContent: boolean): string {
  if (!withContent || contentRemoved(row)) return JSON.stringify(messageOut(row, withContent));
  const { id, eventId, eventType, payload: _empty, ...rest } = messageOut(row, false);
  return `${JSON.stringify({ id, eventId, eventType }).slice(0, -1)},"payload":${row.payload},${JSON.stringify(rest).slice(1)}`;
}

/**
 * `deliverAt` as epoch ms. Svix schedules up to its retention period ahead; ours is
 * `--retention` (a message keeps its content while its delivery is pending, whatever its expiry).
 */
function scheduledAt(ctx: Context, deliverAt: string | null | undefined): number | undefined {
  if (deliverAt == null) return undefined;
  const at = Date.parse(deliverAt);
  const limit = ctx.clock.now() + ctx.config.retention;
  if (at > limit) throw HookwardenError.invalidField(["body", "deliverAt"], `deliverAt may be at most ${formatRetention(ctx.config.retention)} ahead (the retention period)`);
  return at;
}

function formatRetention(ms: number): string {
  return ms % DAY_MS === 0 ? `${ms / DAY_MS} days` : `${Math.round(ms / 3_600_000)} hours`;
}

/** A message's own retention (svix `payloadRetentionPeriod` days or `payloadRetentionHours`), in ms. */
function ownRetention(input: { payloadRetentionPeriod?: number | undefined; payloadRetentionHours?: number | undefined }): number | undefined {
  if (input.payloadRetentionPeriod !== undefined && input.payloadRetentionHours !== undefined) {
    throw HookwardenError.invalidField(["body", "payloadRetentionHours"], "payloadRetentionHours and payloadRetentionPeriod are mutually exclusive");
  }
  if (input.payloadRetentionHours !== undefined) return input.payloadRetentionHours * 3_600_000;
  if (input.payloadRetentionPeriod !== undefined) return input.payloadRetentionPeriod * DAY_MS;
  return undefined;
}

/** `/api/v1/app/{app_id}/msg`: publishing and reading messages, and resending one to an endpoint. */
export function messageRoutes(app: FastifyInstance, ctx: Context, publisher: Publisher, apps: ApplicationCache): void {
  route(app, { method: "POST", url: "/api/v1/app/:app_id/msg", operationId: "v1.message.create", summary: "Publish a message to the application's endpoints (202 once on disk)", tag: TAG, body: messageIn, query: withContentQuery, responses: { 202: { description: "Stored; delivery is queued", schema: Message } } }, async (req, reply, { body: input, query: q }) => {
    const keyHeader = req.headers["idempotency-key"];
    const idempotencyKey = typeof keyHeader === "string" && keyHeader.length > 0 ? keyHeader.slice(0, 256) : undefined;
    let application;
    try {
      application = await apps.get(req.orgId, req.params.app_id);
    } catch (err) {
      // Svix: `application` in the body creates the app on first use.
      if (!(err instanceof HookwardenError && err.code === "E_NOT_FOUND" && input.application)) throw err;
      if (input.application.uid && input.application.uid !== req.params.app_id) {
        throw HookwardenError.invalidField(["body", "application", "uid"], "Application UID in the path and body must match");
      }
      const { throttleRate, rateLimit: rl, ...appIn } = input.application;
      const rate = pickAlias("throttleRate", throttleRate, "rateLimit", rl);
      application = (await createApplication(ctx, req.orgId, { ...appIn, ...(rate !== undefined ? { rateLimit: rate } : {}), uid: req.params.app_id }, true)).row;
    }
    const retention = ownRetention(input);
    // Tracing (issue 12): the caller's `traceparent` is the parent; the span's own is stored with
    // the message, so every attempt, whenever and wherever it runs, joins this trace.
    const span = ctx.tracing?.start("hookwarden.publish", SpanKind.SERVER, firstHeader(req.headers.traceparent), {
      "http.request.method": "POST",
      "http.route": "/api/v1/app/{app_id}/msg",
      "hookwarden.org.id": req.orgId,
      "hookwarden.app.id": application.id,
      "hookwarden.event_type": input.eventType,
    });
    let row;
    try {
      ({ row } = await publisher.publish(application, { ...input, deliverAt: scheduledAt(ctx, input.deliverAt), retention, traceContext: span?.traceparent }, idempotencyKey));
    } catch (err) {
      span?.end({ "http.response.status_code": err instanceof HookwardenError ? err.status : 500 }, err instanceof HookwardenError ? err.code : "E_INTERNAL");
      throw err;
    }
    span?.end({ "http.response.status_code": 202, "hookwarden.message.id": row.id });
    return reply.status(202).type("application/json; charset=utf-8").send(messageJson(row, q.with_content !== "false"));
  });

  route(app, { method: "GET", url: "/api/v1/app/:app_id/msg", operationId: "v1.message.list", summary: "List messages, newest first", tag: TAG, query: listQuery, responses: { 200: { description: "A page of messages", schema: listOf(Message) } } }, async (req, _reply, { query: q }) => {
    const page = parsePage(req.query, "descending");
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    const rows = await listMessages(ctx, application, page, {
      eventTypes: q.event_types?.split(",").filter(Boolean),
      channel: q.channel,
      tag: q.tag,
      before: q.before,
      after: q.after,
    });
    return listResponse(rows.map((r) => messageOut(r, q.with_content !== "false")), page);
  });

  route(app, { method: "GET", url: "/api/v1/app/:app_id/msg/:msg_id", operationId: "v1.message.get", summary: "Get a message", tag: TAG, query: withContentQuery, responses: { 200: { description: "The message", schema: Message } } }, async (req, _reply, { query: q }) => {
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    return messageOut(await findMessage(ctx, application, req.params.msg_id), q.with_content !== "false");
  });

  // Svix's expungeContent: the payload is deleted for good, at once (what the retention cleaner
  // does when a message expires); the message and its attempts remain, without their bodies.
  // Its pending deliveries are cancelled: there is nothing left to send.
  route(app, { method: "DELETE", url: "/api/v1/app/:app_id/msg/:msg_id/content", operationId: "v1.message.expunge-content", summary: "Delete a message's payload for good (the message and its attempts remain)", tag: TAG, responses: { 204: { description: "Deleted" } } }, async (req, reply) => {
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    const msg = await findMessage(ctx, application, req.params.msg_id);
    await ctx.store.db.transaction().execute(async (trx) => {
      await removeMessageContent(trx, [msg.id], { responses: false });
      await trx.deleteFrom("jobs").where("item_id", "=", msg.id).where("kind", "=", "outbound").where("locked_by", "is", null).execute();
    });
    return reply.status(204).send();
  });

  route(
    app,
    { method: "POST", url: "/api/v1/app/:app_id/msg/:msg_id/endpoint/:endpoint_id/resend", operationId: "v1.message-attempt.resend", summary: "Send a message to an endpoint again", tag: "Message Attempt", responses: { 202: { description: "Queued", schema: Empty } } },
    async (req, reply) => {
      const application = await findApplication(ctx, req.orgId, req.params.app_id);
      const msg = await findMessage(ctx, application, req.params.msg_id);
      const ep = await findEndpoint(ctx, application, req.params.endpoint_id);
      if (contentRemoved(msg)) throw new HookwardenError("E_CONTENT_EXPIRED", 409, "The message's payload has expired or was expunged; it cannot be resent");
      if (ep.disabled === 1) throw new HookwardenError("E_ENDPOINT_DISABLED", 409, "The endpoint is disabled; enable it before resending");
      await ctx.queue.transaction((_trx, queue) => queue.enqueue({ orgId: msg.org_id, appId: msg.app_id, msgId: msg.id, endpointId: ep.id, triggerType: TRIGGER_MANUAL }, ctx.clock.now()));
      return reply.status(202).send({});
    },
  );
}
