import type { FastifyReply, FastifyRequest } from "fastify";
import type { Clock } from "../clock/index.js";
import { HookwardenError } from "../errors/index.js";
import { findOrgIdByToken, hashToken } from "../auth/tokens.js";
import type { Db } from "../store/index.js";

declare module "fastify" {
  interface FastifyRequest {
    orgId: string;
  }
}

const CACHE_MS = 5_000;

/**
 * `Authorization: Bearer <token>` → organisation. Lookups are cached for a few seconds by token
 * hash (never by token), which keeps a hot publisher off the database.
 */
export function bearerAuth(
  db: Db,
  clock: Clock,
  /** A console session cookie's organisation (src/console), tried when there is no bearer token. */
  session?: (req: FastifyRequest) => string | undefined,
): (req: FastifyRequest, reply: FastifyReply) => Promise<void> {
  const cache = new Map<string, { orgId: string | undefined; until: number }>();
  return async (req) => {
    const header = req.headers.authorization;
    const m = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) {
      const orgId = header === undefined ? session?.(req) : undefined;
      if (orgId !== undefined) {
        req.orgId = orgId;
        return;
      }
      throw new HookwardenError("E_UNAUTHORIZED", 401, "Missing Authorization: Bearer <token>");
    }
    const token = m[1]!;
    const key = hashToken(token);
    const now = clock.now();
    let hit = cache.get(key);
    if (!hit || hit.until < now) {
      hit = { orgId: await findOrgIdByToken(db, token), until: now + CACHE_MS };
      if (cache.size > 10_000) cache.clear();
      cache.set(key, hit);
    }
    if (hit.orgId === undefined) throw new HookwardenError("E_UNAUTHORIZED", 401, "Invalid token");
    req.orgId = hit.orgId;
  };
}
