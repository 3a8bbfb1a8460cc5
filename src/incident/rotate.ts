import type { Context } from "../context/index.js";
import { createTokenRow, type TokenScope } from "../auth/tokens.js";
import { rotateSecret } from "../endpoints/secrets.js";
import { generateSecret } from "../signing/endpoint-secret.js";
import type { SecretValue } from "../vault/secret-value.js";

/** The longest overlap accepted: past it an "incident" rotation would leave the old values valid for months. */
export const MAX_OVERLAP_MS = 30 * 86_400_000;

export interface RotatedEndpoint {
  id: string;
  appId: string;
  /** The new signing secret: shown to the caller once, then only ever sealed in the database. */
  secret: SecretValue;
}

export interface RotatedToken {
  /** The new token's id. */
  id: string;
  /** The id of the token it replaces (valid until `oldExpiresAt`). */
  replaces: string;
  name: string;
  scope: TokenScope;
  appId: string | null;
  token: SecretValue;
}

export interface Rotation {
  orgId: string;
  appId: string | null;
  overlapMs: number;
  /** When the old secrets and tokens stop working (`now + overlapMs`; now itself for 0). */
  oldExpireAt: number;
  endpoints: RotatedEndpoint[];
  tokens: RotatedToken[];
}

/**
 * Rotates, in one transaction, every signing secret of the endpoints of one application (or of
 * the whole organisation) and its API tokens: an application's rotation replaces the tokens
 * limited to that application, an organisation's every API token of it (app-portal tokens are
 * short-lived and left to expire). Each new value keeps its predecessor's scheme, name, scope and
 * application. The old values keep working until `now + overlapMs` (0: they stop at once; on other
 * nodes a token lookup is cached for up to 5 s, like a revoke). Unsigned endpoints have nothing to
 * rotate. Only the returned values ever hold the new secrets in the clear.
 */
export async function rotateCredentials(ctx: Context, orgId: string, appId: string | null, overlapMs: number, actor: string): Promise<Rotation> {
  const now = ctx.clock.now();
  const oldExpireAt = now + overlapMs;
  const rotation = await ctx.store.db.transaction().execute(async (trx): Promise<Rotation> => {
    let eps = trx.selectFrom("endpoints").select(["id", "app_id", "signature_scheme"]).where("org_id", "=", orgId).where("signature_scheme", "!=", "none");
    if (appId !== null) eps = eps.where("app_id", "=", appId);
    const endpoints: RotatedEndpoint[] = [];
    for (const ep of await eps.orderBy("id").execute()) {
      const secret = generateSecret(ep.signature_scheme as "hmac-sha256" | "ed25519");
      await rotateSecret(ctx, trx, ep.id, secret, now, overlapMs);
      await trx.updateTable("endpoints").set({ updated_at: now }).where("id", "=", ep.id).execute();
      endpoints.push({ id: ep.id, appId: ep.app_id, secret });
    }
    let toks = trx
      .selectFrom("api_tokens")
      .select(["id", "name", "scope", "app_id", "expires_at"])
      .where("org_id", "=", orgId)
      .where("kind", "=", "api")
      .where((eb) => eb.or([eb("expires_at", "is", null), eb("expires_at", ">", now)]));
    if (appId !== null) toks = toks.where("app_id", "=", appId);
    const tokens: RotatedToken[] = [];
    for (const t of await toks.orderBy("created_at").orderBy("id").execute()) {
      const scope: TokenScope = t.scope === "read-only" ? "read-only" : "full";
      const created = await createTokenRow(trx, orgId, t.name, now, undefined, { scope, appId: t.app_id });
      // A token that was to expire sooner keeps its own, earlier end.
      const until = t.expires_at === null ? oldExpireAt : Math.min(Number(t.expires_at), oldExpireAt);
      await trx.updateTable("api_tokens").set({ expires_at: until }).where("id", "=", t.id).execute();
      tokens.push({ id: created.id, replaces: t.id, name: t.name, scope, appId: t.app_id, token: created.token });
    }
    return { orgId, appId, overlapMs, oldExpireAt, endpoints, tokens };
  });
  ctx.events.emit("incident:rotated", { orgId, appId, endpoints: rotation.endpoints.length, tokens: rotation.tokens.length, overlapMs, actor, at: now });
  return rotation;
}
