import type { FastifyInstance } from "fastify";
import { z } from "zod";
import {
  createApplication,
  deleteApplication,
  findApplication,
  listApplications,
  updateApplication,
  type ApplicationRow,
} from "../../applications/index.js";
import type { ApplicationCache } from "../../applications/cache.js";
import type { Context } from "../../context/index.js";
import { listResponse, parsePage } from "../pagination.js";
import { HookwardenError, hasCode } from "../../errors/index.js";
import { pickAlias } from "../aliases.js";
import { iso, metadata, rateLimit, uid } from "../schemas.js";
import { parse } from "../validate.js";
import { dateTime, listOf, named, route } from "../contract/index.js";
import { pageQuery } from "../pagination.js";

// Strict: a field Hookwarden does not implement is refused (422 naming it), never dropped.
const applicationIn = z
  .object({
    name: z.string().min(1).max(256),
    uid: uid.nullish(),
    rateLimit: rateLimit.nullish(),
    throttleRate: rateLimit.nullish(),
    metadata: metadata.optional(),
    /** Issue 11: days this application's message payloads are kept; null: the server's `--retention`. */
    payloadRetentionPeriod: z.number().int().min(1).max(3650).nullish(),
  })
  .strict();
const applicationPatch = applicationIn.partial();

export const Application = named(
  "Application",
  z.object({
    id: z.string(),
    uid: z.string().nullable(),
    name: z.string(),
    rateLimit: z.number().int().nullable(),
    throttleRate: z.number().int().nullable(),
    metadata: z.record(z.string(), z.string()),
    /** Days this application's message payloads are kept; null: the server's `--retention`. */
    payloadRetentionPeriod: z.number().int().nullable(),
    createdAt: dateTime,
    updatedAt: dateTime,
  }),
);
const createQuery = z.object({ get_if_exists: z.enum(["true", "false"]).optional() });
const TAG = "Application";
const one = (description: string) => ({ description, schema: Application });

export function applicationOut(row: ApplicationRow): z.output<typeof Application> {
  return {
    id: row.id,
    uid: row.uid,
    name: row.name,
    rateLimit: row.rate_limit,
    throttleRate: row.rate_limit,
    metadata: JSON.parse(row.metadata) as Record<string, string>,
    payloadRetentionPeriod: row.payload_retention_days,
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}

/** svix 2.x sends `throttleRate`, svix 1.x `rateLimit` (kept as an alias). */
function normalise(input: z.output<typeof applicationPatch>) {
  const { throttleRate, rateLimit: rl, ...rest } = input;
  const rate = pickAlias("throttleRate", throttleRate, "rateLimit", rl);
  return { ...rest, ...(rate !== undefined ? { rateLimit: rate } : {}) };
}

/** `/api/v1/app`: Svix's application resource. */
export function applicationRoutes(app: FastifyInstance, ctx: Context, apps: ApplicationCache): void {
  route(app, { method: "GET", url: "/api/v1/app", operationId: "v1.application.list", summary: "List applications", tag: TAG, query: pageQuery, responses: { 200: { description: "A page of applications", schema: listOf(Application) } } }, async (req) => {
    const page = parsePage(req.query, "ascending");
    const rows = await listApplications(ctx, req.orgId, page);
    return listResponse(rows.map(applicationOut), page);
  });

  route(
    app,
    { method: "POST", url: "/api/v1/app", operationId: "v1.application.create", summary: "Create an application", tag: TAG, body: applicationIn, query: createQuery, responses: { 201: one("Created"), 200: one("Already there (`get_if_exists=true`)") } },
    async (req, reply, { body, query }) => {
      const input = normalise(body);
      const getIfExists = query.get_if_exists === "true";
      const { row, created } = await createApplication(ctx, req.orgId, { ...input, name: input.name! }, getIfExists);
      return reply.status(created ? 201 : 200).send(applicationOut(row));
    },
  );

  route(app, { method: "GET", url: "/api/v1/app/:app_id", operationId: "v1.application.get", summary: "Get an application (by id or uid)", tag: TAG, responses: { 200: one("The application") } }, async (req) => {
    return applicationOut(await findApplication(ctx, req.orgId, req.params.app_id));
  });

  // Svix's upsert: PUT on an unknown id/uid creates the application, the path naming its uid.
  route(
    app,
    { method: "PUT", url: "/api/v1/app/:app_id", operationId: "v1.application.update", summary: "Replace an application, or create it under this uid", tag: TAG, body: applicationIn, responses: { 200: one("Replaced"), 201: one("Created") } },
    async (req, reply, { body }) => {
      const input = normalise(body);
      const full = { uid: null, rateLimit: null, metadata: {}, payloadRetentionPeriod: null, ...input };
      const existing = await findApplication(ctx, req.orgId, req.params.app_id).catch((err: unknown) => {
        if (hasCode(err, "E_NOT_FOUND")) return undefined;
        throw err;
      });
      if (!existing) {
        const pathUid = parse(z.object({ app_id: uid }), req.params, "path").app_id;
        if (input.uid != null && input.uid !== pathUid) {
          throw HookwardenError.invalidField(["body", "uid"], "Creating through PUT: the uid in the body must match the one in the path");
        }
        const { row, created } = await createApplication(ctx, req.orgId, { ...full, name: input.name!, uid: pathUid }, true);
        apps.invalidate(req.orgId);
        if (created) return reply.status(201).send(applicationOut(row));
      }
      const row = await updateApplication(ctx, req.orgId, existing?.id ?? req.params.app_id, full);
      apps.invalidate(req.orgId);
      return applicationOut(row);
    },
  );

  route(app, { method: "PATCH", url: "/api/v1/app/:app_id", operationId: "v1.application.patch", summary: "Change some fields of an application", tag: TAG, body: applicationPatch, responses: { 200: one("Updated") } }, async (req, _reply, { body }) => {
    const row = await updateApplication(ctx, req.orgId, req.params.app_id, normalise(body));
    apps.invalidate(req.orgId);
    return applicationOut(row);
  });

  route(app, { method: "DELETE", url: "/api/v1/app/:app_id", operationId: "v1.application.delete", summary: "Delete an application with its endpoints, messages and attempts", tag: TAG, responses: { 204: { description: "Deleted" } } }, async (req, reply) => {
    await deleteApplication(ctx, req.orgId, req.params.app_id);
    apps.invalidate(req.orgId);
    return reply.status(204).send();
  });
}
