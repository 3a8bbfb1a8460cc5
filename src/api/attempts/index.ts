import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { findApplication } from "../../applications/index.js";
import { findAttempt, listAttempts } from "../../attempts/index.js";
import type { Context } from "../../context/index.js";
import { findEndpoint } from "../../endpoints/index.js";
import { listAttemptedDestinations, listAttemptedMessages } from "../../attempts/destinations.js";
import { endpointOut } from "../endpoints/index.js";
import { messageOut } from "../messages/index.js";
import { channel } from "../schemas.js";
import { findMessage } from "../../messages/index.js";
import { listResponse, parsePage } from "../pagination.js";
import { iso } from "../schemas.js";
import { listOf, route, dateTime } from "../contract/index.js";
import { Attempt, STATUS_TEXT, attemptOut } from "./schemas.js";
import { Endpoint } from "../endpoints/index.js";
import { Message } from "../messages/index.js";
import { pageQuery } from "../pagination.js";

export { Attempt, attemptOut } from "./schemas.js";

const filters = pageQuery
  .extend({
    status: z.coerce.number().int().min(0).max(3).optional(),
    before: z.iso.datetime({ offset: true }).transform((s) => Date.parse(s)).optional(),
    after: z.iso.datetime({ offset: true }).transform((s) => Date.parse(s)).optional(),
    endpoint_id: z.string().optional(),
  })
  .passthrough();

const destination = (d: { status: number; nextAttempt: number | null }) => ({
  status: d.status,
  statusText: STATUS_TEXT[d.status] ?? ("fail" as const),
  nextAttempt: d.nextAttempt === null ? null : iso(d.nextAttempt),
});

const attemptedQuery = pageQuery
  .extend({
    status: z.coerce.number().int().min(0).max(3).optional(),
    channel: channel.optional(),
    tag: z.string().min(1).max(128).optional(),
    event_types: z.string().optional(),
    before: z.iso.datetime({ offset: true }).transform((s) => Date.parse(s)).optional(),
    after: z.iso.datetime({ offset: true }).transform((s) => Date.parse(s)).optional(),
    with_content: z.enum(["true", "false"]).optional(),
  })
  .passthrough();

/** `/api/v1/app/{app_id}/attempt/...`: every attempt, by message or by endpoint. */
export function attemptRoutes(app: FastifyInstance, ctx: Context): void {
  // Built here, not at module level: endpoints/ and messages/ import this module too.
  const destinationFields = { status: z.number().int().min(0).max(3), statusText: Attempt.shape.statusText, nextAttempt: dateTime.nullable() };
  const AttemptedMessage = Message.extend(destinationFields);
  const AttemptedDestination = Endpoint.extend(destinationFields);
  const TAG = "Message Attempt";
  const attempts = { 200: { description: "A page of attempts", schema: listOf(Attempt) } };
  route(app, { method: "GET", url: "/api/v1/app/:app_id/attempt/msg/:msg_id", operationId: "v1.message-attempt.list-by-msg", summary: "A message's attempts", tag: TAG, query: filters, responses: attempts }, async (req, _reply, { query: q }) => {
    const page = parsePage(req.query, "descending");
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    const msg = await findMessage(ctx, application, req.params.msg_id);
    const endpointId = q.endpoint_id === undefined ? undefined : (await findEndpoint(ctx, application, q.endpoint_id)).id;
    const rows = await listAttempts(ctx, application.id, page, { msgId: msg.id, ...(endpointId ? { endpointId } : {}), status: q.status, before: q.before, after: q.after });
    return listResponse(rows.map(attemptOut), page);
  });

  route(app, { method: "GET", url: "/api/v1/app/:app_id/attempt/endpoint/:endpoint_id", operationId: "v1.message-attempt.list-by-endpoint", summary: "An endpoint's attempts", tag: TAG, query: filters, responses: attempts }, async (req, _reply, { query: q }) => {
    const page = parsePage(req.query, "descending");
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    const ep = await findEndpoint(ctx, application, req.params.endpoint_id);
    const rows = await listAttempts(ctx, application.id, page, { endpointId: ep.id, status: q.status, before: q.before, after: q.after });
    return listResponse(rows.map(attemptOut), page);
  });

  route(app, { method: "GET", url: "/api/v1/app/:app_id/msg/:msg_id/attempt/:attempt_id", operationId: "v1.message-attempt.get", summary: "Get an attempt", tag: TAG, responses: { 200: { description: "The attempt", schema: Attempt } } }, async (req) => {
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    const msg = await findMessage(ctx, application, req.params.msg_id);
    return attemptOut(await findAttempt(ctx, application, msg.id, req.params.attempt_id));
  });

  // Svix's listAttemptedMessages: the messages sent (or queued) to one endpoint, with their status there.
  route(app, { method: "GET", url: "/api/v1/app/:app_id/endpoint/:endpoint_id/msg", operationId: "v1.message-attempt.list-attempted-messages", summary: "The messages sent (or queued) to an endpoint, with their status there", tag: TAG, query: attemptedQuery, responses: { 200: { description: "A page of messages", schema: listOf(AttemptedMessage) } } }, async (req, _reply, { query: q }) => {
    const page = parsePage(req.query, "descending");
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    const ep = await findEndpoint(ctx, application, req.params.endpoint_id);
    const rows = await listAttemptedMessages(ctx, application.id, ep.id, page, {
      status: q.status,
      channel: q.channel,
      tag: q.tag,
      eventTypes: q.event_types?.split(",").filter(Boolean),
      before: q.before,
      after: q.after,
    });
    return listResponse(rows.map((r) => ({ ...messageOut(r, q.with_content !== "false"), ...destination(r) })), page);
  });

  // Svix's listAttemptedDestinations: the endpoints one message went (or is going) to.
  route(app, { method: "GET", url: "/api/v1/app/:app_id/msg/:msg_id/endpoint", operationId: "v1.message-attempt.list-attempted-destinations", summary: "The endpoints a message went (or is going) to", tag: TAG, query: pageQuery, responses: { 200: { description: "A page of endpoints", schema: listOf(AttemptedDestination) } } }, async (req) => {
    const page = parsePage(req.query, "ascending");
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    const msg = await findMessage(ctx, application, req.params.msg_id);
    const rows = await listAttemptedDestinations(ctx, application.id, msg.id, page);
    return listResponse(rows.map((r) => ({ ...endpointOut(r), ...destination(r) })), page);
  });

  // Deletes what the endpoint answered (and the request as sent), keeping the attempt's status.
  route(app, { method: "DELETE", url: "/api/v1/app/:app_id/msg/:msg_id/attempt/:attempt_id/content", operationId: "v1.message-attempt.expunge-content", summary: "Delete what the endpoint answered and the request as sent", tag: TAG, responses: { 204: { description: "Deleted" } } }, async (req, reply) => {
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    const msg = await findMessage(ctx, application, req.params.msg_id);
    const attempt = await findAttempt(ctx, application, msg.id, req.params.attempt_id);
    await ctx.store.db.updateTable("attempts").set({ response: "", request: null }).where("id", "=", attempt.id).execute();
    return reply.status(204).send();
  });
}
