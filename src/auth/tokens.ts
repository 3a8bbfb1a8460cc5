import { createHash, randomBytes } from "node:crypto";
import type { Db } from "../store/index.js";
import { newId } from "../ids/index.js";
import { SecretValue } from "../vault/secret-value.js";

/** What a token may do: everything, or read (GET/HEAD) only. `appId` further limits either to one application. */
export type TokenScope = "full" | "read-only";
export const TOKEN_SCOPES: readonly TokenScope[] = ["full", "read-only"];

/** A token as listed: never its value, never its hash. */
export interface TokenInfo {
  id: string;
  orgId: string;
  name: string;
  scope: TokenScope;
  /**
   * An app-portal token (svix `authentication.appPortalAccess`): it reaches only the routes a
   * customer's portal needs (`PORTAL_ROUTES` in api/auth.ts), where an application-scoped API
   * token reaches every route of its application.
   */
  portal: boolean;
  appId: string | null;
  createdAt: number;
  lastUsedAt: number | null;
  expiresAt: number | null;
}

/** API tokens are 256 random bits; only their SHA-256 is stored, so a database dump grants nothing. */
export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

export function generateToken(): SecretValue {
  return new SecretValue(`hwk_${randomBytes(32).toString("base64url")}`);
}

export async function createOrg(db: Db, name: string, now: number): Promise<string> {
  const id = newId("org");
  await db.insertInto("orgs").values({ id, name, created_at: now }).execute();
  return id;
}

export async function findOrgByName(db: Db, name: string): Promise<string | undefined> {
  const row = await db.selectFrom("orgs").select("id").where("name", "=", name).executeTakeFirst();
  return row?.id;
}

export async function listOrgs(db: Db): Promise<{ id: string; name: string; createdAt: number; tokens: number }[]> {
  const rows = await db
    .selectFrom("orgs")
    .leftJoin("api_tokens", "api_tokens.org_id", "orgs.id")
    .select(["orgs.id", "orgs.name", "orgs.created_at"])
    .select((eb) => eb.fn.count<string | number>("api_tokens.id").as("tokens"))
    .groupBy(["orgs.id", "orgs.name", "orgs.created_at"])
    .orderBy("orgs.created_at")
    .orderBy("orgs.id")
    .execute();
  return rows.map((r) => ({ id: r.id, name: r.name, createdAt: Number(r.created_at), tokens: Number(r.tokens) }));
}

/** Stores the hash of `token` (a new random one when omitted) for `orgId` and returns the token. */
export async function createToken(
  db: Db,
  orgId: string,
  name: string,
  now: number,
  token: SecretValue = generateToken(),
  opts: { scope?: TokenScope; appId?: string | null } = {},
): Promise<SecretValue> {
  await createTokenRow(db, orgId, name, now, token, opts);
  return token;
}

/** Like `createToken`, returning the new row's id as well. */
export async function createTokenRow(
  db: Db,
  orgId: string,
  name: string,
  now: number,
  token: SecretValue = generateToken(),
  opts: { scope?: TokenScope; appId?: string | null } = {},
): Promise<{ id: string; token: SecretValue }> {
  const id = newId("tok");
  await db
    .insertInto("api_tokens")
    .values({ id, org_id: orgId, token_hash: hashToken(token.reveal()), name, created_at: now, scope: opts.scope ?? "full", app_id: opts.appId ?? null })
    .execute();
  return { id, token };
}

const INFO_COLUMNS = ["id", "org_id", "name", "scope", "kind", "app_id", "created_at", "last_used_at", "expires_at"] as const;

function toInfo(r: { id: string; org_id: string; name: string; scope: string; kind: string; app_id: string | null; created_at: number; last_used_at: number | null; expires_at: number | null }): TokenInfo {
  return {
    id: r.id,
    orgId: r.org_id,
    name: r.name,
    scope: r.scope === "read-only" ? "read-only" : "full",
    portal: r.kind === "portal",
    appId: r.app_id,
    createdAt: Number(r.created_at),
    lastUsedAt: r.last_used_at === null ? null : Number(r.last_used_at),
    expiresAt: r.expires_at === null ? null : Number(r.expires_at),
  };
}

/** The token whose SHA-256 is `tokenHash`, if any. */
export async function findTokenByHash(db: Db, tokenHash: string): Promise<TokenInfo | undefined> {
  const row = await db.selectFrom("api_tokens").select(INFO_COLUMNS).where("token_hash", "=", tokenHash).executeTakeFirst();
  return row ? toInfo(row) : undefined;
}

/** Tokens of one organisation (or of all, when `orgId` is omitted), oldest first. */
export async function listTokens(db: Db, orgId?: string): Promise<TokenInfo[]> {
  let q = db.selectFrom("api_tokens").select(INFO_COLUMNS).orderBy("created_at").orderBy("id");
  if (orgId !== undefined) q = q.where("org_id", "=", orgId);
  return (await q.execute()).map(toInfo);
}

/** Deletes a token (of `orgId` only, when given). False when there was no such token. */
export async function revokeToken(db: Db, id: string, orgId?: string): Promise<boolean> {
  let q = db.deleteFrom("api_tokens").where("id", "=", id);
  if (orgId !== undefined) q = q.where("org_id", "=", orgId);
  const res = await q.executeTakeFirst();
  return Number(res.numDeletedRows) > 0;
}

/**
 * An app-portal token (svix `authentication.appPortalAccess`): scoped to one application,
 * expiring, stored only as its SHA-256 hash like every API token, returned once.
 */
export async function createAppPortalToken(db: Db, orgId: string, appId: string, now: number, expiresAt: number, readOnly: boolean): Promise<SecretValue> {
  const token = new SecretValue(`hwp_${randomBytes(32).toString("base64url")}`);
  await db
    .insertInto("api_tokens")
    .values({
      id: newId("tok"),
      org_id: orgId,
      token_hash: hashToken(token.reveal()),
      name: "app-portal",
      created_at: now,
      app_id: appId,
      expires_at: expiresAt,
      read_only: readOnly ? 1 : 0,
      scope: readOnly ? "read-only" : "full",
      kind: "portal",
    })
    .execute();
  return token;
}

/** Portal tokens past their expiry are of no use to anyone: removed whenever one logs out. */
export async function deleteExpiredTokens(db: Db, now: number): Promise<void> {
  await db.deleteFrom("api_tokens").where("expires_at", "<=", now).execute();
}
