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

export function applicationOut(row: ApplicationRow) {
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
  app.get("/api/v1/app", async (req) => {
    const page = parsePage(req.query, "ascending");
    const rows = await listApplications(ctx, req.orgId, page);
    return listResponse(rows.map(applicationOut), page);
  });

  app.post("/api/v1/app", async (req, reply) => {
    const input = normalise(parse(applicationIn, req.body));
    const getIfExists = parse(z.object({ get_if_exists: z.enum(["true", "false"]).optional() }), req.query, "query").get_if_exists === "true";
    const { row, created } = await createApplication(ctx, req.orgId, { ...input, name: input.name! }, getIfExists);
    return reply.status(created ? 201 : 200).send(applicationOut(row));
  });

  app.get<{ Params: { app_id: string } }>("/api/v1/app/:app_id", async (req) => {
    return applicationOut(await findApplication(ctx, req.orgId, req.params.app_id));
  });

  // Svix's upsert: PUT on an unknown id/uid creates the application, the path naming its uid.
  app.put<{ Params: { app_id: string } }>("/api/v1/app/:app_id", async (req, reply) => {
    const input = normalise(parse(applicationIn, req.body));
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
  });

  app.patch<{ Params: { app_id: string } }>("/api/v1/app/:app_id", async (req) => {
    const input = normalise(parse(applicationPatch, req.body));
    const row = await updateApplication(ctx, req.orgId, req.params.app_id, input);
    apps.invalidate(req.orgId);
    return applicationOut(row);
  });

  app.delete<{ Params: { app_id: string } }>("/api/v1/app/:app_id", async (req, reply) => {
    await deleteApplication(ctx, req.orgId, req.params.app_id);
    apps.invalidate(req.orgId);
    return reply.status(204).send();
  });
}
