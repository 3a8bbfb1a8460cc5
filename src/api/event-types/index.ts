import type { FastifyInstance } from "fastify";
import { z } from "zod";
import type { Context } from "../../context/index.js";
import {
  createEventType,
  deleteEventType,
  findEventType,
  listEventTypes,
  patchEventType,
  upsertEventType,
  type EventTypeRow,
} from "../../event-types/index.js";
import { listResponse, parsePage } from "../pagination.js";
import { eventTypeName, iso, jsonOrNull } from "../schemas.js";
import { parse } from "../validate.js";

const eventTypeUpdate = z.object({
  description: z.string().max(4096),
  archived: z.boolean().optional(),
  deprecated: z.boolean().optional(),
  schemas: z.record(z.string(), z.unknown()).nullish(),
  featureFlag: z.string().max(256).nullish(),
  groupName: z.string().max(256).nullish(),
});
const eventTypeIn = eventTypeUpdate.extend({ name: eventTypeName });
const bool = z.enum(["true", "false"]).optional();

function eventTypeOut(row: EventTypeRow) {
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
  app.get("/api/v1/event-type", async (req) => {
    const page = parsePage(req.query, "ascending");
    const q = parse(z.object({ include_archived: bool }).passthrough(), req.query, "query");
    const rows = await listEventTypes(ctx, req.orgId, page, q.include_archived === "true");
    return listResponse(rows.map(eventTypeOut), page, (r) => r.name);
  });

  app.post("/api/v1/event-type", async (req, reply) => {
    const { name, ...input } = parse(eventTypeIn, req.body);
    return reply.status(201).send(eventTypeOut(await createEventType(ctx, req.orgId, name, input)));
  });

  app.get<{ Params: { name: string } }>("/api/v1/event-type/:name", async (req) => {
    return eventTypeOut(await findEventType(ctx, req.orgId, req.params.name));
  });

  app.put<{ Params: { name: string } }>("/api/v1/event-type/:name", async (req, reply) => {
    const input = parse(eventTypeUpdate, req.body);
    const { row, created } = await upsertEventType(ctx, req.orgId, parse(eventTypeName, req.params.name, "path"), input);
    return reply.status(created ? 201 : 200).send(eventTypeOut(row));
  });

  app.patch<{ Params: { name: string } }>("/api/v1/event-type/:name", async (req) => {
    return eventTypeOut(await patchEventType(ctx, req.orgId, req.params.name, parse(eventTypeUpdate.partial(), req.body)));
  });

  app.delete<{ Params: { name: string } }>("/api/v1/event-type/:name", async (req, reply) => {
    const q = parse(z.object({ expunge: bool }).passthrough(), req.query, "query");
    await deleteEventType(ctx, req.orgId, req.params.name, q.expunge === "true");
    return reply.status(204).send();
  });
}
