import type { FastifyReply, FastifyRequest } from "fastify";
import type { ApplicationRow } from "../applications/index.js";
import type { Clock } from "../clock/index.js";
import { HookwardenError } from "../errors/index.js";
import { findTokenByHash, hashToken, type TokenInfo } from "../auth/tokens.js";
import type { TokenUse } from "../auth/token-use.js";
import type { Db } from "../store/index.js";

declare module "fastify" {
  interface FastifyRequest {
    orgId: string;
    /** The token's id (`tok_…`), for logs and the audit trail; never the token itself. */
    tokenId: string;
    /** The caller's token as listed (scope, application, name); never its value. */
    apiToken: TokenInfo;
    /** Set when the caller holds an app-portal token: the one application it may reach. */
    appScope: { appId: string; readOnly: boolean } | undefined;
  }
}

const CACHE_MS = 5_000;
const READ_METHODS = new Set(["GET", "HEAD"]);

export interface BearerAuth {
  (req: FastifyRequest, reply: FastifyReply): Promise<void>;
  /** Drops a revoked token from this node's cache at once (other nodes follow within 5 s). */
  forget(tokenId: string): void;
}

/**
 * `Authorization: Bearer <token>` → organisation. Lookups are cached for a few seconds by token
 * hash (never by token), which keeps a hot publisher off the database. A `read-only` token may
 * only GET; a token with an application reaches only routes under that application.
 */
export function bearerAuth(
  db: Db,
  clock: Clock,
  use?: TokenUse,
  /**
   * The token a console session cookie was opened with (src/console), tried when there is no
   * Authorization header: a session reaches exactly what its token reaches, no more.
   */
  session?: (req: FastifyRequest) => TokenInfo | undefined,
): BearerAuth {
  const cache = new Map<string, { token: TokenInfo | undefined; until: number }>();
  const lookup = async (bearer: string, now: number): Promise<TokenInfo | undefined> => {
    const key = hashToken(bearer);
    let hit = cache.get(key);
    if (!hit || hit.until < now) {
      hit = { token: await findTokenByHash(db, key), until: now + CACHE_MS };
      if (cache.size > 10_000) cache.clear();
      cache.set(key, hit);
    }
    return hit.token;
  };
  const hook = async (req: FastifyRequest) => {
    const header = req.headers.authorization;
    const m = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    const now = clock.now();
    let token: TokenInfo | undefined;
    if (m) token = await lookup(m[1]!, now);
    else if (header === undefined) token = session?.(req);
    if (!m && token === undefined) throw new HookwardenError("E_UNAUTHORIZED", 401, "Missing Authorization: Bearer <token>");
    if (token === undefined || (token.expiresAt !== null && token.expiresAt <= now)) throw new HookwardenError("E_UNAUTHORIZED", 401, "Invalid token");
    req.orgId = token.orgId;
    req.tokenId = token.id;
    req.apiToken = token;
    use?.touch(token.id, now);
    // An app-portal token's reach (routes, read-only, its application) is appScopeGuard's.
    req.appScope = token.portal && token.appId !== null ? { appId: token.appId, readOnly: token.scope === "read-only" } : undefined;
    if (req.appScope) return;
    if (token.scope === "read-only" && !READ_METHODS.has(req.method)) throw new HookwardenError("E_FORBIDDEN", 403, "This token is read-only");
    if (token.appId !== null) await checkApp(db, req, token);
  };
  return Object.assign(hook, {
    forget(tokenId: string) {
      for (const [k, v] of cache) if (v.token?.id === tokenId) cache.delete(k);
    },
  });
}

/** An application-scoped token: the route must name its application, by id or uid. */
async function checkApp(db: Db, req: FastifyRequest, token: TokenInfo): Promise<void> {
  const named = (req.params as { app_id?: unknown } | undefined)?.app_id;
  if (typeof named !== "string") throw new HookwardenError("E_FORBIDDEN", 403, "This token is limited to one application");
  if (named === token.appId) return;
  const row = await db.selectFrom("applications").select("id").where("org_id", "=", token.orgId).where("internal", "=", 0).where("uid", "=", named).executeTakeFirst();
  if (row?.id !== token.appId) throw new HookwardenError("E_FORBIDDEN", 403, "This token is limited to one application");
}

/**
 * What an app-portal token may reach, by route pattern: its application's endpoints (all of
 * Svix's endpoint operations), its messages and attempts read-only, resend, logout, and the
 * event catalogue read-only.
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
  // The organisation's event catalogue, read-only (archived and feature-flagged types hidden).
  { pattern: /^\/api\/v1\/event-type(\/:name)?$/, write: false },
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
