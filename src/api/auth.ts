import type { FastifyReply, FastifyRequest } from "fastify";
import type { ApplicationRow } from "../applications/index.js";
import type { Clock } from "../clock/index.js";
import { HookwardenError } from "../errors/index.js";
import { findTokenGrant, hashToken, type TokenGrant } from "../auth/tokens.js";
import type { Db } from "../store/index.js";

declare module "fastify" {
  interface FastifyRequest {
    orgId: string;
    /** Set when the caller holds an app-portal token: the one application it may reach. */
    appScope: { appId: string; readOnly: boolean } | undefined;
    /** The bearer token as sent, for logout. */
    bearer: string;
  }
}

const CACHE_MS = 5_000;

export interface BearerAuth {
  (req: FastifyRequest, reply: FastifyReply): Promise<void>;
  /** Drops a revoked token from the lookup cache, so it fails at once rather than within 5 s. */
  forget(token: string): void;
}

/**
 * `Authorization: Bearer <token>` → organisation (and, for an app-portal token, its application).
 * Lookups are cached for a few seconds by token hash (never by token), which keeps a hot
 * publisher off the database; expiry is checked on every request against the clock.
 */
export function bearerAuth(db: Db, clock: Clock): BearerAuth {
  const cache = new Map<string, { grant: TokenGrant | undefined; until: number }>();
  const hook = async (req: FastifyRequest) => {
    const header = req.headers.authorization;
    const m = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) throw new HookwardenError("E_UNAUTHORIZED", 401, "Missing Authorization: Bearer <token>");
    const token = m[1]!;
    const key = hashToken(token);
    const now = clock.now();
    let hit = cache.get(key);
    if (!hit || hit.until < now) {
      hit = { grant: await findTokenGrant(db, token), until: now + CACHE_MS };
      if (cache.size > 10_000) cache.clear();
      cache.set(key, hit);
    }
    const grant = hit.grant;
    if (grant === undefined) throw new HookwardenError("E_UNAUTHORIZED", 401, "Invalid token");
    if (grant.expiresAt !== null && grant.expiresAt <= now) throw new HookwardenError("E_UNAUTHORIZED", 401, "Token expired");
    req.orgId = grant.orgId;
    req.appScope = grant.appId === null ? undefined : { appId: grant.appId, readOnly: grant.readOnly };
    req.bearer = token;
  };
  return Object.assign(hook, { forget: (token: string) => void cache.delete(hashToken(token)) });
}

/**
 * What an app-portal token may reach, by route pattern: its application's endpoints (all of
 * Svix's endpoint operations), its messages and attempts read-only, resend, and logout.
 * Hookwarden's own endpoint routes that send caller-chosen payloads (`preview`, `call`, `test`)
 * and everything organisation-wide stay with organisation tokens.
 */
const PORTAL_ROUTES: { pattern: RegExp; write: boolean }[] = [
  { pattern: /^\/api\/v1\/app\/:app_id\/endpoint(\/:endpoint_id(\/(secret|secret\/rotate|headers|stats|recover|send-example))?)?$/, write: true },
  { pattern: /^\/api\/v1\/app\/:app_id\/endpoint\/:endpoint_id\/msg$/, write: false },
  { pattern: /^\/api\/v1\/app\/:app_id\/msg(\/:msg_id(\/endpoint|\/attempt\/:attempt_id)?)?$/, write: false },
  { pattern: /^\/api\/v1\/app\/:app_id\/attempt\/(msg\/:msg_id|endpoint\/:endpoint_id)$/, write: false },
  { pattern: /^\/api\/v1\/app\/:app_id\/msg\/:msg_id\/endpoint\/:endpoint_id\/resend$/, write: true },
  { pattern: /^\/api\/v1\/auth\/logout$/, write: true },
];

/**
 * Enforces an app-portal token's scope; organisation tokens pass untouched. Another
 * application's routes answer 404 (as if it did not exist), other routes 403.
 */
export function appScopeGuard(findApp: (orgId: string, idOrUid: string) => Promise<ApplicationRow>) {
  return async (req: FastifyRequest): Promise<void> => {
    const scope = req.appScope;
    if (scope === undefined) return;
    const route = req.routeOptions.url ?? "";
    const allowed = PORTAL_ROUTES.find((r) => r.pattern.test(route));
    const reading = req.method === "GET" || req.method === "HEAD";
    if (!allowed || (!reading && (!allowed.write || scope.readOnly) && route !== "/api/v1/auth/logout")) {
      throw new HookwardenError("E_FORBIDDEN", 403, "An app-portal token cannot use this route");
    }
    const appParam = (req.params as { app_id?: string }).app_id;
    if (appParam === undefined) return;
    const app = await findApp(req.orgId, appParam).catch(() => undefined);
    if (app === undefined || app.id !== scope.appId) throw HookwardenError.notFound("Application");
  };
}
