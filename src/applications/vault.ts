import type { ApplicationRow } from "./index.js";
import type { Context } from "../context/index.js";
import { HookwardenError, hasCode } from "../errors/index.js";
import type { Db } from "../store/index.js";
import { isUniqueViolation } from "../store/errors.js";
import { SECRET_NAME_RE } from "../templates/parse.js";
import { SecretValue } from "../vault/secret-value.js";

export interface AppSecretMeta {
  name: string;
  createdAt: number;
  updatedAt: number;
}

/**
 * Binds a vault value to its application and name: a ciphertext copied into another row (or
 * another application) fails to decrypt instead of leaking into the wrong request.
 */
export function vaultAad(appId: string, name: string): string {
  return `vault:${appId}:${name}`;
}

function checkName(name: string): void {
  if (!SECRET_NAME_RE.test(name)) {
    throw HookwardenError.invalidField(["body", "name"], "Secret names are 1-64 characters of A-Z, 0-9 and _, starting with a letter");
  }
}

function checkValue(ctx: Context, value: string): void {
  if (value.length === 0) throw HookwardenError.invalidField(["body", "value"], "A secret value cannot be empty");
  if (value.length > ctx.config.vaultMaxValueLength) {
    throw new HookwardenError("E_SECRET_TOO_LONG", 422, `Secret values are at most ${ctx.config.vaultMaxValueLength} characters`, {
      validation: [{ loc: ["body", "value"], msg: `at most ${ctx.config.vaultMaxValueLength} characters`, type: "value_error.too_long" }],
    });
  }
}

/** Stores a new named secret; its value can never be read back through the API. */
export async function createAppSecret(ctx: Context, app: ApplicationRow, name: string, value: SecretValue): Promise<AppSecretMeta> {
  checkName(name);
  checkValue(ctx, value.reveal());
  const now = ctx.clock.now();
  try {
    await ctx.store.db
      .insertInto("vault_secrets")
      .values({ app_id: app.id, name, value_enc: ctx.keyring.seal(value.reveal(), vaultAad(app.id, name)), created_at: now, updated_at: now })
      .execute();
  } catch (err) {
    if (isUniqueViolation(err)) throw new HookwardenError("E_CONFLICT", 409, `A secret named ${name} already exists; PUT to replace its value`);
    throw err;
  }
  return { name, createdAt: now, updatedAt: now };
}

export async function replaceAppSecret(ctx: Context, app: ApplicationRow, name: string, value: SecretValue): Promise<AppSecretMeta> {
  checkValue(ctx, value.reveal());
  const now = ctx.clock.now();
  const res = await ctx.store.db
    .updateTable("vault_secrets")
    .set({ value_enc: ctx.keyring.seal(value.reveal(), vaultAad(app.id, name)), updated_at: now })
    .where("app_id", "=", app.id)
    .where("name", "=", name)
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) === 0) throw HookwardenError.notFound("Secret");
  const row = await ctx.store.db.selectFrom("vault_secrets").select(["created_at"]).where("app_id", "=", app.id).where("name", "=", name).executeTakeFirstOrThrow();
  return { name, createdAt: row.created_at, updatedAt: now };
}

export async function listAppSecrets(ctx: Context, app: ApplicationRow): Promise<AppSecretMeta[]> {
  const rows = await ctx.store.db.selectFrom("vault_secrets").select(["name", "created_at", "updated_at"]).where("app_id", "=", app.id).orderBy("name").execute();
  return rows.map((r) => ({ name: r.name, createdAt: r.created_at, updatedAt: r.updated_at }));
}

export async function deleteAppSecret(ctx: Context, app: ApplicationRow, name: string): Promise<void> {
  const res = await ctx.store.db.deleteFrom("vault_secrets").where("app_id", "=", app.id).where("name", "=", name).executeTakeFirst();
  if (Number(res.numDeletedRows) === 0) throw HookwardenError.notFound("Secret");
}

export async function appSecretNames(db: Db, appId: string): Promise<Set<string>> {
  const rows = await db.selectFrom("vault_secrets").select("name").where("app_id", "=", appId).execute();
  return new Set(rows.map((r) => r.name));
}

/**
 * Decrypts the named secrets of an application (for rendering a request, and nothing else).
 * A value that fails to open (copied from another row, or sealed under a key this server lacks)
 * throws `E_MASTER_KEY`, unless `unreadable` is given: the delivery engine then collects the
 * names, so only the endpoints needing them fail instead of every delivery in the batch.
 */
export async function loadAppSecrets(ctx: Context, appId: string, names: Iterable<string>, unreadable?: Set<string>): Promise<Map<string, SecretValue>> {
  const wanted = [...new Set(names)];
  const out = new Map<string, SecretValue>();
  if (wanted.length === 0) return out;
  const rows = await ctx.store.db.selectFrom("vault_secrets").select(["name", "value_enc"]).where("app_id", "=", appId).where("name", "in", wanted).execute();
  for (const r of rows) {
    try {
      out.set(r.name, new SecretValue(ctx.keyring.openString(r.value_enc, vaultAad(appId, r.name))));
    } catch (err) {
      if (!unreadable || !hasCode(err, "E_MASTER_KEY")) throw err;
      unreadable.add(r.name);
    }
  }
  return out;
}
