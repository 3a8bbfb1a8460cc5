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
import { dateTime, listOf, named, route } from "../contract/index.js";

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

const scopeKind = z.enum(["org", "app", "bucket"]);
export const IncidentPause = named(
  "IncidentPause",
  z.object({
    /** The scope paused: the organisation's, an application's or a bucket's id. */
    id: z.string(),
    kind: scopeKind,
    /** Who paused (a token's name and id, or the CLI), never a secret. */
    actor: z.string(),
    pausedAt: dateTime,
  }),
);
const PauseAnswer = named("IncidentPauseAnswer", IncidentPause.extend({ created: z.boolean() }));
const ResumeAnswer = named("IncidentResumeAnswer", z.object({ id: z.string(), kind: scopeKind, resumed: z.boolean() }));
const RotateAnswer = named(
  "IncidentRotateAnswer",
  z.object({
    id: z.string(),
    overlapMs: z.number().int(),
    oldExpireAt: dateTime,
    /** The new signing secrets and tokens, shown only here. */
    endpoints: z.array(z.object({ endpointId: z.string(), appId: z.string(), secret: z.string() })),
    tokens: z.array(z.object({ tokenId: z.string(), replaces: z.string(), name: z.string(), scope: z.string(), appId: z.string().nullable(), token: z.string() })),
  }),
);
const TAG = "Incident";

function pauseOut(p: PauseInfo): z.output<typeof IncidentPause> {
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
  route(app, { method: "GET", url: "/api/v1/incident/pause", operationId: "hookwarden.incident.pause-list", summary: "The pauses in force (full organisation-wide token)", tag: TAG, responses: { 200: { description: "Every pause, in one page", schema: listOf(IncidentPause) } } }, async (req) => {
    requireAdmin(req);
    const data = (await listPauses(ctx.store.db, req.orgId)).map(pauseOut);
    return { data, iterator: null, prevIterator: null, done: true };
  });

  route(app, { method: "POST", url: "/api/v1/incident/pause", operationId: "hookwarden.incident.pause", summary: "Pause deliveries of an application, a bucket, or the whole organisation", tag: TAG, body: target, bodyOptional: "absent", responses: { 200: { description: "Paused (`created: false` when it already was)", schema: PauseAnswer } } }, async (req, _reply, { body }) => {
    requireAdmin(req);
    const scope = await resolveScope(ctx.store.db, req.orgId, body);
    const { pause: p, created } = await pause(ctx, scope, tokenActor(req.tokenId, req.apiToken.name), deps.pauses);
    return { ...pauseOut(p), created };
  });

  route(app, { method: "POST", url: "/api/v1/incident/resume", operationId: "hookwarden.incident.resume", summary: "Resume deliveries paused with the same scope", tag: TAG, body: target, bodyOptional: "absent", responses: { 200: { description: "Resumed (`resumed: false` when it was not paused)", schema: ResumeAnswer } } }, async (req, _reply, { body }) => {
    requireAdmin(req);
    const scope = await resolveScope(ctx.store.db, req.orgId, body);
    const resumed = await resume(ctx, scope, tokenActor(req.tokenId, req.apiToken.name), deps.pauses);
    return { id: scope.id, kind: scope.kind, resumed };
  });

  route(app, { method: "POST", url: "/api/v1/incident/rotate", operationId: "hookwarden.incident.rotate", summary: "Rotate every signing secret and API token at once (the old ones stay valid for the overlap)", tag: TAG, body: rotateIn, bodyOptional: "absent", responses: { 200: { description: "The new secrets and tokens, shown only here", schema: RotateAnswer } } }, async (req, reply, { body }) => {
    requireAdmin(req);
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
