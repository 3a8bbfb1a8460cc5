import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import type { Context } from "../../context/index.js";
import { parseDuration } from "../../config/duration.js";
import { HookwardenError } from "../../errors/index.js";
import { tokenActor } from "../../incident/actor.js";
import { listPauses, pause, resume, type PauseInfo, type PauseSet } from "../../incident/pauses.js";
import { MAX_OVERLAP_MS, rotateCredentials } from "../../incident/rotate.js";
import { resolveScope } from "../../incident/scope.js";
import type { BearerAuth } from "../auth.js";
import { noStore } from "../no-store.js";
import { iso } from "../schemas.js";
import { parse } from "../validate.js";

const target = z
  .object({
    /** An application (id or uid); with neither this nor `bucket`, the whole organisation. */
    app: z.string().min(1).max(256).optional(),
    /** A bucket (id or name). */
    bucket: z.string().min(1).max(256).optional(),
  })
  .strict()
  .refine((t) => t.app === undefined || t.bucket === undefined, { message: "name an application or a bucket, not both", path: ["bucket"] });

/** `overlap`: a duration text (`24h`, `90m`, `0`), or milliseconds as a number. */
const overlap = z
  .union([z.number().int().nonnegative(), z.string().max(32)])
  .transform((v, ctx) => {
    if (typeof v === "number") return v;
    try {
      return parseDuration(v);
    } catch (e) {
      ctx.addIssue({ code: "custom", message: (e as Error).message });
      return z.NEVER;
    }
  })
  .pipe(z.number().int().min(0).max(MAX_OVERLAP_MS, "must be at most 30d"));

const rotateIn = z
  .object({
    app: z.string().min(1).max(256).optional(),
    overlap: overlap.optional(),
  })
  .strict();

function pauseOut(p: PauseInfo): Record<string, unknown> {
  return { id: p.id, kind: p.kind, actor: p.actor, pausedAt: iso(p.createdAt) };
}

/** Incident steps act on the whole organisation's deliveries and credentials: full, organisation-wide tokens only. */
function requireAdmin(req: FastifyRequest): void {
  if (req.apiToken.appId !== null || req.apiToken.scope !== "full" || req.apiToken.portal) {
    throw new HookwardenError("E_FORBIDDEN", 403, "Incident response needs a full token not limited to one application");
  }
}

/**
 * `/api/v1/incident`: pause and resume deliveries (an application, a bucket, or the whole
 * organisation) and rotate credentials at once. Svix has no such API; these are Hookwarden's own.
 * The audit hook records each step (the first `id` of each answer is the scope acted on); events
 * `incident:*` are emitted by src/incident.
 */
export function incidentRoutes(app: FastifyInstance, ctx: Context, deps: { auth: BearerAuth; pauses?: PauseSet | undefined }): void {
  app.get("/api/v1/incident/pause", async (req) => {
    requireAdmin(req);
    const data = (await listPauses(ctx.store.db, req.orgId)).map(pauseOut);
    return { data, iterator: null, prevIterator: null, done: true };
  });

  app.post("/api/v1/incident/pause", async (req) => {
    requireAdmin(req);
    const body = parse(target, req.body === undefined ? {} : req.body, "body");
    const scope = await resolveScope(ctx.store.db, req.orgId, body);
    const { pause: p, created } = await pause(ctx, scope, tokenActor(req.tokenId, req.apiToken.name), deps.pauses);
    return { ...pauseOut(p), created };
  });

  app.post("/api/v1/incident/resume", async (req) => {
    requireAdmin(req);
    const body = parse(target, req.body === undefined ? {} : req.body, "body");
    const scope = await resolveScope(ctx.store.db, req.orgId, body);
    const resumed = await resume(ctx, scope, tokenActor(req.tokenId, req.apiToken.name), deps.pauses);
    return { id: scope.id, kind: scope.kind, resumed };
  });

  app.post("/api/v1/incident/rotate", async (req, reply) => {
    requireAdmin(req);
    const body = parse(rotateIn, req.body === undefined ? {} : req.body, "body");
    const appId = body.app === undefined ? null : (await resolveScope(ctx.store.db, req.orgId, { app: body.app })).id;
    const overlapMs = body.overlap ?? ctx.config.rotationOverlap;
    const r = await rotateCredentials(ctx, req.orgId, appId, overlapMs, tokenActor(req.tokenId, req.apiToken.name));
    // Old tokens with no overlap stop on this node at once; other nodes drop their cached lookup within 5 s.
    if (overlapMs === 0) for (const t of r.tokens) deps.auth.forget(t.replaces);
    noStore(reply);
    return {
      id: appId ?? req.orgId,
      overlapMs,
      oldExpireAt: iso(r.oldExpireAt),
      endpoints: r.endpoints.map((e) => ({ endpointId: e.id, appId: e.appId, secret: e.secret.reveal() })),
      tokens: r.tokens.map((t) => ({ tokenId: t.id, replaces: t.replaces, name: t.name, scope: t.scope, appId: t.appId, token: t.token.reveal() })),
    };
  });
}
