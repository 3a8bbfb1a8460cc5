import { createHash, randomBytes } from "node:crypto";
import type { Db } from "../store/index.js";
import { newId } from "../ids/index.js";
import { SecretValue } from "../vault/secret-value.js";

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

/** Stores the hash of `token` (a new random one when omitted) for `orgId` and returns the token. */
export async function createToken(db: Db, orgId: string, name: string, now: number, token: SecretValue = generateToken()): Promise<SecretValue> {
  await db
    .insertInto("api_tokens")
    .values({ id: newId("tok"), org_id: orgId, token_hash: hashToken(token.reveal()), name, created_at: now })
    .execute();
  return token;
}

export async function findOrgIdByToken(db: Db, token: string): Promise<string | undefined> {
  const row = await db.selectFrom("api_tokens").select("org_id").where("token_hash", "=", hashToken(token)).executeTakeFirst();
  return row?.org_id;
}

/** What a token grants: its organisation and, for an app-portal token, one application until it expires. */
export interface TokenGrant {
  orgId: string;
  /** Set for an app-portal token. */
  appId: string | null;
  expiresAt: number | null;
  readOnly: boolean;
}

export async function findTokenGrant(db: Db, token: string): Promise<TokenGrant | undefined> {
  const row = await db
    .selectFrom("api_tokens")
    .select(["org_id", "app_id", "expires_at", "read_only"])
    .where("token_hash", "=", hashToken(token))
    .executeTakeFirst();
  if (!row) return undefined;
  return { orgId: row.org_id, appId: row.app_id, expiresAt: row.expires_at === null ? null : Number(row.expires_at), readOnly: Number(row.read_only) === 1 };
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
    })
    .execute();
  return token;
}

/** Revokes one token by its value (svix `authentication.logout`); expired portal tokens go too. */
export async function revokeToken(db: Db, token: string, now: number): Promise<void> {
  await db.deleteFrom("api_tokens").where("token_hash", "=", hashToken(token)).execute();
  await db.deleteFrom("api_tokens").where("expires_at", "<=", now).execute();
}
