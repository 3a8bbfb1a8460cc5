import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { findApplication } from "../../applications/index.js";
import { endpointStats, failedMessageIds } from "../../attempts/destinations.js";
import type { Context } from "../../context/index.js";
import { findEndpoint } from "../../endpoints/index.js";
import { HookwardenError, hasCode } from "../../errors/index.js";
import { findEventType } from "../../event-types/index.js";
import { newId } from "../../ids/index.js";
import type { MessageRow } from "../../messages/index.js";
import { TRIGGER_MANUAL, TRIGGER_SCHEDULED } from "../../queue/types.js";
import { messageOut } from "../messages/index.js";
import { messageRetention } from "../../messages/expiry.js";
import { eventTypeName, iso } from "../schemas.js";
import { route } from "../contract/index.js";
import { Message } from "../messages/index.js";


const date = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));
const recoverIn = z.object({ since: date, until: date.nullish() }).strict();
const exampleIn = z.object({ eventType: eventTypeName, exampleIndex: z.number().int().min(0).max(1000).optional() }).strict();
const statsQuery = z.object({ since: date.optional(), until: date.optional() });
const RecoverTask = z.object({ id: z.string(), status: z.literal("finished"), task: z.literal("endpoint.recover"), updatedAt: z.string(), data: z.object({ messagesSent: z.number().int() }) });
const Stats = z.object({ success: z.number().int(), pending: z.number().int(), sending: z.number().int(), fail: z.number().int(), canceled: z.number().int() });

/** Svix sends this payload for its built-in ping event type. */
const PING = "svix.ping";

/**
 * Svix's endpoint recovery operations: `recover` (resend what failed for good in a window),
 * `stats` (messages by status) and `send-example` (an event type's example to one endpoint).
 */
export function endpointRecoveryRoutes(app: FastifyInstance, ctx: Context): void {
  route(app, { method: "GET", url: "/api/v1/app/:app_id/endpoint/:endpoint_id/stats", operationId: "v1.endpoint.get-stats", summary: "Messages to this endpoint by status", tag: "Endpoint", query: statsQuery, responses: { 200: { description: "Counts", schema: Stats } } }, async (req, _reply, { query: q }) => {
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    const ep = await findEndpoint(ctx, application, req.params.endpoint_id);
    return endpointStats(ctx, application.id, ep.id, q.since, q.until);
  });

  route(app, { method: "POST", url: "/api/v1/app/:app_id/endpoint/:endpoint_id/recover", operationId: "v1.endpoint.recover", summary: "Resend what failed for good in a time window", tag: "Endpoint", body: recoverIn, responses: { 202: { description: "Queued (every job is stored)", schema: RecoverTask } } }, async (req, reply, { body: input }) => {
    if (input.until != null && input.until <= input.since) throw HookwardenError.invalidField(["body", "until"], "until must be after since");
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    const ep = await findEndpoint(ctx, application, req.params.endpoint_id);
    if (ep.disabled === 1) throw new HookwardenError("E_ENDPOINT_DISABLED", 409, "The endpoint is disabled; enable it before recovering");
    const now = ctx.clock.now();
    const failed = await failedMessageIds(ctx, application.id, ep.id, input.since, input.until ?? undefined);
    // One transaction: the 202 means every recovery job is stored.
    await ctx.queue.transaction((_trx, queue) => queue.enqueue(failed.map((m) => ({ orgId: m.org_id, appId: application.id, msgId: m.id, endpointId: ep.id, triggerType: TRIGGER_MANUAL })), now));
    return reply.status(202).send({ id: newId("qtask"), status: "finished", task: "endpoint.recover", updatedAt: iso(now), data: { messagesSent: failed.length } });
  });

  route(app, { method: "POST", url: "/api/v1/app/:app_id/endpoint/:endpoint_id/send-example", operationId: "v1.endpoint.send-example", summary: "Send an event type's example to this endpoint only", tag: "Endpoint", body: exampleIn, responses: { 202: { description: "The message, queued", schema: Message } } }, async (req, reply, { body: input }) => {
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    const ep = await findEndpoint(ctx, application, req.params.endpoint_id);
    const payload = input.eventType === PING ? { success: true } : await examplePayload(ctx, req.orgId, input.eventType, input.exampleIndex ?? 0, req.appScope !== undefined);
    const now = ctx.clock.now();
    const row: MessageRow = {
      id: newId("msg"),
      org_id: application.org_id,
      app_id: application.id,
      event_id: null,
      event_type: input.eventType,
      payload: JSON.stringify(payload),
      channels: null,
      tags: null,
      created_at: now,
      deliver_at: null,
      trace_context: null,
      expires_at: now + messageRetention(ctx.config, application),
    };
    // Only to this endpoint, whatever its filter: the caller asked for this one.
    await ctx.queue.transaction(async (trx, queue) => {
      await trx.insertInto("messages").values(row).execute();
      await queue.enqueue({ orgId: row.org_id, appId: row.app_id, msgId: row.id, endpointId: ep.id, triggerType: TRIGGER_SCHEDULED }, now);
    });
    return reply.status(202).send(messageOut(row, true));
  });
}

/** `schemas["1"].examples[index]` of the event type, as Svix reads it. */
async function examplePayload(ctx: Context, orgId: string, name: string, index: number, customerView: boolean): Promise<Record<string, unknown>> {
  const et = await findEventType(ctx, orgId, name, customerView).catch((err: unknown) => {
    if (hasCode(err, "E_NOT_FOUND")) throw HookwardenError.invalidField(["body", "eventType"], `Event type ${name} does not exist`);
    throw err;
  });
  const schemas = et.schemas === null ? null : (JSON.parse(et.schemas) as Record<string, { examples?: unknown[] } | undefined>);
  const example = schemas?.["1"]?.examples?.[index];
  if (example === null || typeof example !== "object" || Array.isArray(example)) {
    throw HookwardenError.invalidField(["body", "exampleIndex"], `Event type ${name} has no example object at index ${index} (schemas["1"].examples)`);
  }
  return example as Record<string, unknown>;
}
