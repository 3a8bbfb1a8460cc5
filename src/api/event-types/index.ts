import type { FastifyInstance } from "fastify";
import { z } from "zod";
import type { Context } from "../../context/index.js";
import { HookwardenError } from "../../errors/index.js";
import {
  createEventType,
  deleteEventType,
  findEventType,
  listEventTypes,
  patchEventType,
  upsertEventType,
  type EventTypeRow,
} from "../../event-types/index.js";
import { listResponse, pageFrom, pageQuery } from "../pagination.js";
import { dateTime, listOf, named, route } from "../contract/index.js";
import { eventTypeName, iso, jsonOrNull } from "../schemas.js";
import { parse } from "../validate.js";

const eventTypeUpdate = z.object({
  description: z.string().max(4096),
  archived: z.boolean().optional(),
  deprecated: z.boolean().optional(),
  schemas: z.record(z.string(), z.unknown()).nullish(),
  featureFlag: z.string().max(256).nullish(),
  /** svix 2.x sends flags as a list; Hookwarden keeps one per event type (Svix allows several). */
  featureFlags: z.array(z.string().min(1).max(256)).max(1, "Hookwarden keeps at most one feature flag per event type").nullish(),
  groupName: z.string().max(256).nullish(),
});
const eventTypeIn = eventTypeUpdate.extend({ name: eventTypeName });
const eventTypePatch = eventTypeUpdate.partial();
const bool = z.enum(["true", "false"]).optional();

export const EventType = named(
  "EventType",
  z.object({
    name: z.string(),
    description: z.string(),
    archived: z.boolean(),
    deprecated: z.boolean(),
    schemas: z.record(z.string(), z.unknown()).nullable(),
    featureFlag: z.string().nullable(),
    featureFlags: z.array(z.string()).nullable(),
    groupName: z.string().nullable(),
    createdAt: dateTime,
    updatedAt: dateTime,
  }),
);
const listQuery = pageQuery.extend({ include_archived: bool });
const deleteQuery = z.object({ expunge: bool });
const TAG = "Event Type";
const one = (description: string) => ({ description, schema: EventType });

/**
 * `featureFlags` (svix 2.x) and `featureFlag` (1.x) name the same one flag: either is taken, a
 * disagreement between them is refused.
 */
function oneFlag<T extends { featureFlag?: string | null | undefined; featureFlags?: string[] | null | undefined }>(body: T): Omit<T, "featureFlags"> {
  const { featureFlags, ...rest } = body;
  if (featureFlags === undefined) return rest;
  const listed = featureFlags === null ? null : (featureFlags[0] ?? null);
  if (rest.featureFlag !== undefined && rest.featureFlag !== listed) {
    throw HookwardenError.invalidField(["body", "featureFlags"], "featureFlag and featureFlags name different flags");
  }
  return { ...rest, featureFlag: listed };
}

function eventTypeOut(row: EventTypeRow): z.output<typeof EventType> {
  return {
    name: row.name,
    description: row.description,
    archived: row.archived === 1,
    deprecated: row.deprecated === 1,
    schemas: jsonOrNull<Record<string, unknown>>(row.schemas),
    featureFlag: row.feature_flag,
    featureFlags: row.feature_flag === null ? null : [row.feature_flag],
    groupName: row.group_name,
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}

/** `/api/v1/event-type`: Svix's event type catalogue (per organisation). */
export function eventTypeRoutes(app: FastifyInstance, ctx: Context): void {
  route(app, { method: "GET", url: "/api/v1/event-type", operationId: "v1.event-type.list", summary: "List event types", tag: TAG, query: listQuery, responses: { 200: { description: "A page of event types", schema: listOf(EventType) } } }, async (req, _reply, { query }) => {
    const page = pageFrom(query, "ascending");
    // An app-portal token sees the catalogue as the customer's portal does (Svix): no archived or flagged types.
    const rows = await listEventTypes(ctx, req.orgId, page, query.include_archived === "true", req.appScope !== undefined);
    return listResponse(rows.map(eventTypeOut), page, (r) => r.name);
  });

  route(app, { method: "POST", url: "/api/v1/event-type", operationId: "v1.event-type.create", summary: "Create an event type", tag: TAG, body: eventTypeIn, responses: { 201: one("Created") } }, async (req, reply, { body }) => {
    const { name, ...input } = oneFlag(body);
    return reply.status(201).send(eventTypeOut(await createEventType(ctx, req.orgId, name, input)));
  });

  route(app, { method: "GET", url: "/api/v1/event-type/:name", operationId: "v1.event-type.get", summary: "Get an event type", tag: TAG, responses: { 200: one("The event type") } }, async (req) => {
    return eventTypeOut(await findEventType(ctx, req.orgId, req.params.name, req.appScope !== undefined));
  });

  route(app, { method: "PUT", url: "/api/v1/event-type/:name", operationId: "v1.event-type.update", summary: "Replace an event type, or create it", tag: TAG, body: eventTypeUpdate, responses: { 200: one("Replaced"), 201: one("Created") } }, async (req, reply, { body }) => {
    const { row, created } = await upsertEventType(ctx, req.orgId, parse(eventTypeName, req.params.name, "path"), oneFlag(body));
    return reply.status(created ? 201 : 200).send(eventTypeOut(row));
  });

  route(app, { method: "PATCH", url: "/api/v1/event-type/:name", operationId: "v1.event-type.patch", summary: "Change some fields of an event type", tag: TAG, body: eventTypePatch, responses: { 200: one("Updated") } }, async (req, _reply, { body }) => {
    return eventTypeOut(await patchEventType(ctx, req.orgId, req.params.name, oneFlag(body)));
  });

  route(app, { method: "DELETE", url: "/api/v1/event-type/:name", operationId: "v1.event-type.delete", summary: "Archive an event type (`expunge=true`: delete it)", tag: TAG, query: deleteQuery, responses: { 204: { description: "Archived or deleted" } } }, async (req, reply, { query }) => {
    await deleteEventType(ctx, req.orgId, req.params.name, query.expunge === "true");
    return reply.status(204).send();
  });
}
