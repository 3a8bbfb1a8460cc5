import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { createApplication, findApplication } from "../../applications/index.js";
import type { ApplicationCache } from "../../applications/cache.js";
import { createAppPortalToken, deleteExpiredTokens, revokeToken } from "../../auth/tokens.js";
import type { Context } from "../../context/index.js";
import { HookwardenError, hasCode } from "../../errors/index.js";
import { pickAlias } from "../aliases.js";
import type { BearerAuth } from "../auth.js";
import { metadata, rateLimit, uid } from "../schemas.js";
import { parse } from "../validate.js";
import { named, route } from "../contract/index.js";

const AppPortalAccess = named("AppPortalAccess", z.object({ url: z.string(), token: z.string() }));

const HOUR = 3600;
const WEEK = 7 * 24 * HOUR;

// Strict: `capabilities`, `featureFlags` and `sessionId` are not implemented, and silently
// ignoring `capabilities` would hand out more than the caller asked for.
const portalIn = z
  .object({
    application: z
      .object({ name: z.string().min(1).max(256), uid: uid.nullish(), rateLimit: rateLimit.nullish(), throttleRate: rateLimit.nullish(), metadata: metadata.optional() })
      .strict()
      .nullish(),
    readOnly: z.boolean().nullish(),
    // Svix: "between 1 hour and 7 days. The default is 7 days."
    expiry: z.number().int().min(HOUR).max(WEEK).nullish(),
  })
  .strict();

/** `/api/v1/auth`: app-portal tokens (svix `authentication.appPortalAccess`) and logout. */
export function authenticationRoutes(app: FastifyInstance, ctx: Context, auth: BearerAuth, apps: ApplicationCache, apiUrl: () => string): void {
  route(app, { method: "POST", url: "/api/v1/auth/app-portal-access/:app_id", operationId: "v1.authentication.app-portal-access", summary: "Mint an expiring token limited to one application", tag: "Authentication", body: portalIn, bodyOptional: true, responses: { 200: { description: "The token (shown once) and the link that opens the portal with it", schema: AppPortalAccess } } }, async (req, reply, { body: input }) => {
    let application = await findApplication(ctx, req.orgId, req.params.app_id).catch((err: unknown) => {
      if (hasCode(err, "E_NOT_FOUND") && input.application) return undefined;
      throw err;
    });
    if (!application) {
      // Svix: `application` in the body creates the app on first use, the path naming its uid.
      const { throttleRate, rateLimit: rl, uid: bodyUid, ...appIn } = input.application!;
      const pathUid = parse(z.object({ app_id: uid }), req.params, "path").app_id;
      if (bodyUid != null && bodyUid !== pathUid) throw HookwardenError.invalidField(["body", "application", "uid"], "Application UID in the path and body must match");
      const rate = pickAlias("throttleRate", throttleRate, "rateLimit", rl);
      application = (await createApplication(ctx, req.orgId, { ...appIn, ...(rate !== undefined ? { rateLimit: rate } : {}), uid: pathUid }, true)).row;
      apps.invalidate(req.orgId);
    }
    const now = ctx.clock.now();
    const token = await createAppPortalToken(ctx.store.db, req.orgId, application.id, now, now + (input.expiry ?? WEEK) * 1000, input.readOnly === true);
    // Shown once; never cached by a proxy or browser. `url` opens the portal on this application,
    // as Svix's does: the token rides in the fragment (`#key=`), which no request, log line or
    // Referer carries, and the portal removes it from the address at once. Without the console
    // (`--console false`) it is the application's API root, without the token.
    const url = ctx.config.console ? `${apiUrl()}/portal#key=${encodeURIComponent(token.reveal())}` : `${apiUrl()}/api/v1/app/${application.id}`;
    return reply.header("cache-control", "no-store").send({ url, token: token.reveal() });
  });

  route(app, { method: "POST", url: "/api/v1/auth/logout", operationId: "v1.authentication.logout", summary: "Revoke the app-portal token this call is made with", tag: "Authentication", responses: { 204: { description: "Revoked" } } }, async (req, reply) => {
    if (req.appScope === undefined) {
      // An organisation token is an operator's credential: revoking it from a stray logout call
      // could lock the operator out. Org tokens are revoked with the CLI.
      throw new HookwardenError("E_FORBIDDEN", 403, "logout revokes app-portal tokens; organisation tokens are revoked with the CLI");
    }
    await revokeToken(ctx.store.db, req.tokenId, req.orgId);
    await deleteExpiredTokens(ctx.store.db, ctx.clock.now());
    auth.forget(req.tokenId);
    return reply.status(204).send();
  });
}
