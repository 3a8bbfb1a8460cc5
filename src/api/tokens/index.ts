import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import { createTokenRow, listTokens, revokeToken, TOKEN_SCOPES, type TokenInfo, type TokenScope } from "../../auth/tokens.js";
import type { Context } from "../../context/index.js";
import { HookwardenError } from "../../errors/index.js";
import type { BearerAuth } from "../auth.js";
import { noStore } from "../no-store.js";
import { iso } from "../schemas.js";
import { dateTime, listOf, named, route } from "../contract/index.js";

const tokenIn = z
  .object({
    name: z.string().trim().min(1).max(100),
    scope: z.enum(TOKEN_SCOPES as [TokenScope, ...TokenScope[]]).default("full"),
    /** Limit the token to one application (its id or uid). */
    app: z.string().min(1).max(256).optional(),
  })
  .strict();

export const ApiToken = named(
  "ApiToken",
  z.object({
    id: z.string(),
    name: z.string(),
    scope: z.enum(TOKEN_SCOPES as [TokenScope, ...TokenScope[]]),
    appId: z.string().nullable(),
    createdAt: dateTime,
    lastUsedAt: dateTime.nullable(),
    expiresAt: dateTime.nullable(),
  }),
);
const ApiTokenCreated = named("ApiTokenCreated", ApiToken.extend({ token: z.string() }));
const TAG = "API Token";

export function tokenOut(t: TokenInfo): z.output<typeof ApiToken> {
  return {
    id: t.id,
    name: t.name,
    scope: t.scope,
    appId: t.appId,
    createdAt: iso(t.createdAt),
    lastUsedAt: t.lastUsedAt === null ? null : iso(t.lastUsedAt),
    expiresAt: t.expiresAt === null ? null : iso(t.expiresAt),
  };
}

/** Managing tokens takes a full token: a scoped one must not mint itself a wider one. */
function requireFull(req: FastifyRequest, write: boolean): void {
  if (req.apiToken.appId !== null || (write && req.apiToken.scope !== "full")) {
    throw new HookwardenError("E_FORBIDDEN", 403, "Managing API tokens needs a full token not limited to one application");
  }
}

/**
 * `/api/v1/auth/token`: an organisation's own API tokens. The value is shown once, in the create
 * answer (sent `Cache-Control: no-store`); lists carry names, scopes and times only.
 */
export function tokenRoutes(app: FastifyInstance, ctx: Context, auth: BearerAuth): void {
  const { db } = ctx.store;
  route(app, { method: "GET", url: "/api/v1/auth/token", operationId: "hookwarden.token.list", summary: "List the organisation's API tokens (never their values)", tag: TAG, responses: { 200: { description: "The tokens", schema: listOf(ApiToken) } } }, async (req) => {
    requireFull(req, false);
    const data = (await listTokens(db, req.orgId)).map(tokenOut);
    return { data, iterator: null, prevIterator: null, done: true };
  });
  route(app, { method: "POST", url: "/api/v1/auth/token", operationId: "hookwarden.token.create", summary: "Create an API token (its value is shown once)", tag: TAG, body: tokenIn, responses: { 201: { description: "Created; `token` appears only here", schema: ApiTokenCreated } } }, async (req, reply, input) => {
    requireFull(req, true);
    const body = input.body;
    let appId: string | null = null;
    if (body.app !== undefined) {
      const row = await db
        .selectFrom("applications")
        .select("id")
        .where("org_id", "=", req.orgId)
        .where("internal", "=", 0)
        .where((eb) => eb.or([eb("id", "=", body.app!), eb("uid", "=", body.app!)]))
        .executeTakeFirst();
      if (!row) throw new HookwardenError("E_NOT_FOUND", 404, "Application not found");
      appId = row.id;
    }
    const now = ctx.clock.now();
    const { id, token } = await createTokenRow(db, req.orgId, body.name, now, undefined, { scope: body.scope, appId });
    const info: TokenInfo = { id, orgId: req.orgId, name: body.name, scope: body.scope, portal: false, appId, createdAt: now, lastUsedAt: null, expiresAt: null };
    return noStore(reply).status(201).send({ ...tokenOut(info), token: token.reveal() });
  });
  route(app, { method: "DELETE", url: "/api/v1/auth/token/:token_id", operationId: "hookwarden.token.revoke", summary: "Revoke an API token", tag: TAG, responses: { 204: { description: "Revoked" } } }, async (req, reply) => {
    requireFull(req, true);
    if (!(await revokeToken(db, req.params.token_id, req.orgId))) throw new HookwardenError("E_NOT_FOUND", 404, "Token not found");
    auth.forget(req.params.token_id);
    return reply.status(204).send();
  });
}
