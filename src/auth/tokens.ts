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

/** The token whose SHA-256 is `tokenHash`, if any. */
export async function findTokenByHash(db: Db, tokenHash: string): Promise<{ id: string; orgId: string } | undefined> {
  const row = await db.selectFrom("api_tokens").select(["id", "org_id"]).where("token_hash", "=", tokenHash).executeTakeFirst();
  return row ? { id: row.id, orgId: row.org_id } : undefined;
}

export async function findOrgIdByToken(db: Db, token: string): Promise<string | undefined> {
  const row = await db.selectFrom("api_tokens").select("org_id").where("token_hash", "=", hashToken(token)).executeTakeFirst();
  return row?.org_id;
}
