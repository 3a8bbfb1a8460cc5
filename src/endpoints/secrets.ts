import type { Context } from "../context/index.js";
import type { Db } from "../store/index.js";
import { newId } from "../ids/index.js";
import { signingKeyFrom } from "../signing/endpoint-secret.js";
import type { SigningKey } from "../signing/standard-webhooks.js";
import type { Keyring } from "../vault/envelope.js";
import { SecretValue } from "../vault/secret-value.js";

/** Binds a sealed signing secret to its endpoint and row: a ciphertext copied elsewhere fails to open. */
export function secretAad(endpointId: string, secretId: string): string {
  return `endpoint-secret:${endpointId}:${secretId}`;
}

export async function insertSecret(ctx: Context, db: Db, endpointId: string, secret: SecretValue, now: number): Promise<void> {
  const id = newId("whs");
  await db
    .insertInto("endpoint_secrets")
    .values({
      id,
      endpoint_id: endpointId,
      scheme: secret.reveal().startsWith("whsk_") ? "ed25519" : "hmac-sha256",
      secret_enc: ctx.keyring.seal(secret.reveal(), secretAad(endpointId, id)),
      created_at: now,
      expires_at: null,
    })
    .execute();
}

/**
 * Starts a rotation: the current secret keeps signing until `now + overlap` (Svix's default is
 * 24 h) alongside the new one, so receivers can switch without dropping a delivery.
 */
export async function rotateSecret(ctx: Context, db: Db, endpointId: string, secret: SecretValue, now: number, overlapMs: number): Promise<void> {
  await db.deleteFrom("endpoint_secrets").where("endpoint_id", "=", endpointId).where("expires_at", "<=", now).execute();
  await db
    .updateTable("endpoint_secrets")
    .set({ expires_at: now + overlapMs })
    .where("endpoint_id", "=", endpointId)
    .where("expires_at", "is", null)
    .execute();
  await insertSecret(ctx, db, endpointId, secret, now);
}

export interface StoredSecret {
  id: string;
  endpoint_id: string;
  secret_enc: string;
  created_at: number;
  expires_at: number | null;
}

export function openSecret(keyring: Keyring, row: StoredSecret): SecretValue {
  return new SecretValue(keyring.openString(row.secret_enc, secretAad(row.endpoint_id, row.id)));
}

/**
 * Signing keys already opened, by secret row id. A row's plaintext never changes (rotating an
 * endpoint's secret writes a new row; `keys rotate` re-seals the same plaintext), so an entry is
 * never stale; only rows that are still active are ever looked up. Opening one (AES-GCM, and for
 * ed25519 a key derivation) was 2.5% of the gateway's CPU in the end-to-end bench, once per batch.
 * Kept per keyring and checked against the exact ciphertext, so a server holding another master
 * key (or a row whose ciphertext was swapped) still has to open, and fail to open, it.
 */
const opened = new WeakMap<Keyring, Map<string, { enc: string; key: SigningKey }>>();
const OPENED_MAX = 10_000;

function signingKeyOf(keyring: Keyring, row: StoredSecret): SigningKey {
  let cache = opened.get(keyring);
  if (!cache) opened.set(keyring, (cache = new Map()));
  const hit = cache.get(row.id);
  if (hit && hit.enc === row.secret_enc) return hit.key;
  const key = signingKeyFrom(openSecret(keyring, row));
  if (cache.size >= OPENED_MAX) cache.delete(cache.keys().next().value!);
  cache.set(row.id, { enc: row.secret_enc, key });
  return key;
}

/** Active secrets of several endpoints at `now`, newest first, as signing keys. */
export async function loadSigningKeys(ctx: Context, endpointIds: string[], now: number): Promise<Map<string, SigningKey[]>> {
  const out = new Map<string, SigningKey[]>();
  if (endpointIds.length === 0) return out;
  const rows = await ctx.store.db
    .selectFrom("endpoint_secrets")
    .select(["id", "endpoint_id", "secret_enc", "created_at", "expires_at"])
    .where("endpoint_id", "in", endpointIds)
    .where((eb) => eb.or([eb("expires_at", "is", null), eb("expires_at", ">", now)]))
    .orderBy("created_at", "desc")
    .execute();
  for (const row of rows) {
    const list = out.get(row.endpoint_id) ?? [];
    list.push(signingKeyOf(ctx.keyring, row));
    out.set(row.endpoint_id, list);
  }
  return out;
}

/** The newest active secret of one endpoint (for `--allow-secret-reveal` and ed25519 public keys). */
export async function currentSecret(ctx: Context, endpointId: string): Promise<SecretValue | undefined> {
  const row = await ctx.store.db
    .selectFrom("endpoint_secrets")
    .select(["id", "endpoint_id", "secret_enc", "created_at", "expires_at"])
    .where("endpoint_id", "=", endpointId)
    .where("expires_at", "is", null)
    .orderBy("created_at", "desc")
    .executeTakeFirst();
  return row ? openSecret(ctx.keyring, row) : undefined;
}
