import { sql } from "kysely";
import type { ApplicationRow } from "../../src/applications/index.js";
import type { Context } from "../../src/context/index.js";
import { headersAad, readHeaders, type EndpointRow } from "../../src/endpoints/index.js";
import { openSecret, secretAad } from "../../src/endpoints/secrets.js";
import { newId } from "../../src/ids/index.js";
import { createBucket } from "../../src/ingress/buckets.js";
import { createInput } from "../../src/ingress/inputs.js";
import { createOutput } from "../../src/ingress/outputs.js";
import { sealRequest } from "../../src/ingress/stored-request.js";
import { EXTRA_COLUMNS, SEALED_COLUMNS } from "../../src/keys/sealed-columns.js";
import type { Db } from "../../src/store/index.js";
import { createAppSecret, loadAppSecrets } from "../../src/applications/vault.js";
import type { Keyring } from "../../src/vault/envelope.js";
import { SecretValue } from "../../src/vault/secret-value.js";

/** A plain endpoint row (no integration settings), with `headers_enc` sealed if headers are given. */
export async function insertEndpoint(db: Db, keyring: Keyring, app: ApplicationRow, headers: Record<string, string> | null): Promise<string> {
  const id = newId("ep");
  const row: EndpointRow = {
    id,
    org_id: app.org_id,
    app_id: app.id,
    uid: null,
    url: "https://receiver.example.com/hook",
    description: "",
    version: 1,
    filter_types: null,
    channels: null,
    rate_limit: null,
    disabled: 0,
    disabled_reason: null,
    metadata: "{}",
    headers_enc: headers ? keyring.seal(JSON.stringify(headers), headersAad(id)) : null,
    signature_scheme: "hmac-sha256",
    tls_verify: 1,
    consecutive_failures: 0,
    failing_since: null,
    circuit_open_until: null,
    template: null,
    auth: null,
    encryption: null,
    redact_responses: 0,
    timeout_ms: null,
    created_at: 1_700_000_000_000,
    updated_at: 1_700_000_000_000,
  };
  await db.insertInto("endpoints").values(row).execute();
  return id;
}

/** `n` signing secrets on one endpoint, sealed under `keyring`, inserted in one statement. */
export async function insertSigningSecrets(db: Db, keyring: Keyring, endpointId: string, n: number): Promise<void> {
  const rows = Array.from({ length: n }, (_, i) => {
    const id = newId("whs");
    return { id, endpoint_id: endpointId, scheme: "hmac-sha256", secret_enc: keyring.seal(`whsec_${endpointId}_${i}`, secretAad(endpointId, id)), created_at: 1, expires_at: null };
  });
  for (let i = 0; i < rows.length; i += 100) await db.insertInto("endpoint_secrets").values(rows.slice(i, i + 100)).execute();
}

/**
 * Seeds every kind of sealed value under `ctx.keyring`, each through the code that writes it in
 * production: endpoint headers, signing secrets, vault values, and the ingress side's bucket
 * credentials, input verification secrets, output signing secrets and stored requests. Per pair
 * of apps: 3 endpoint headers, `signingSecrets` signing secrets, 5 vault values, 1 of each ingress kind.
 */
export async function seedSealedRows(ctx: Context, apps: ApplicationRow[], signingSecrets: number): Promise<void> {
  const db = ctx.store.db;
  const [a, b] = apps as [ApplicationRow, ApplicationRow];
  const ep1 = await insertEndpoint(db, ctx.keyring, a, { "x-api-key": "header-secret-1" });
  await insertEndpoint(db, ctx.keyring, a, { authorization: "Bearer header-secret-2", "x-plain": "p" });
  await insertEndpoint(db, ctx.keyring, b, { cookie: "session=header-secret-3" });
  await insertEndpoint(db, ctx.keyring, b, null);
  await insertSigningSecrets(db, ctx.keyring, ep1, signingSecrets);
  for (const [app, name] of [[a, "CRM_TOKEN"], [a, "API_KEY"], [b, "CRM_TOKEN"], [b, "PASSWORD"], [b, "BODY_KEY"]] as const) {
    await createAppSecret(ctx, app, name, new SecretValue(`vault:${app.name}:${name}`));
  }
  const { row: bucket } = await createBucket(ctx, a.org_id, { name: `bucket-${a.id}`, auth: { type: "basic", username: "provider", password: `bucket-pw-${a.id}` } });
  const input = await createInput(ctx, bucket, { name: "stripe", verification: { type: "standard-webhooks", secret: `whsec_${Buffer.from(a.id).toString("base64")}` } });
  await createOutput(ctx, bucket, { type: "url", url: "https://receiver.example.com/out", resign: true });
  const requestId = newId("msg");
  const received = { method: "POST", publicUrl: "https://hw.example.com/in/x", suffix: "", query: "", headers: {}, rawHeaders: [["x-sig", "s"]] as [string, string][], body: Buffer.from(`body of ${a.id}`), clientIp: "203.0.113.9", receivedAt: 1 };
  await db
    .insertInto("inbound_requests")
    .values({ id: requestId, org_id: a.org_id, bucket_id: bucket.id, input_id: input.id, status_code: 200, size: 10, data_enc: sealRequest(ctx.keyring, requestId, received), received_at: 1 })
    .execute();
}

/**
 * Every sealed value in the database, decrypted under `ctx`'s keyring (so it throws if any row is
 * not readable with it): issue-3 values through the server's own read paths, and every column of
 * SEALED_COLUMNS through its listed AAD, which must therefore match what the writers used.
 */
export async function readAllSealed(ctx: Context): Promise<Map<string, string>> {
  const db = ctx.store.db;
  const out = new Map<string, string>();
  for (const col of SEALED_COLUMNS) {
    const cols = [...col.key, ...(EXTRA_COLUMNS[col.table] ?? []), col.column];
    const { rows } = await sql<Record<string, string>>`select ${sql.join(cols.map((c) => sql.ref(c)))} from ${sql.table(col.table)} where ${sql.ref(col.column)} is not null`.execute(db);
    for (const r of rows) out.set(`${col.table}.${col.column}:${col.key.map((k) => r[k]).join("/")}`, ctx.keyring.openString(r[col.column]!, col.aad(r)));
  }
  for (const ep of await db.selectFrom("endpoints").selectAll().where("headers_enc", "is not", null).execute()) {
    out.set(`headers:${ep.id}`, JSON.stringify(readHeaders(ctx, ep)));
  }
  for (const s of await db.selectFrom("endpoint_secrets").selectAll().execute()) out.set(`signing:${s.id}`, openSecret(ctx.keyring, s).reveal());
  const vault = await db.selectFrom("vault_secrets").select(["app_id", "name"]).execute();
  for (const appId of new Set(vault.map((v) => v.app_id))) {
    const names = vault.filter((v) => v.app_id === appId).map((v) => v.name);
    for (const [name, value] of await loadAppSecrets(ctx, appId, names)) out.set(`vault:${appId}:${name}`, value.reveal());
  }
  return out;
}

/** Non-null sealed values per `table.column`. */
export async function sealedCounts(db: Db): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const col of SEALED_COLUMNS) {
    const { rows } = await sql<{ n: string | number }>`select count(*) as n from ${sql.table(col.table)} where ${sql.ref(col.column)} is not null`.execute(db);
    out.set(`${col.table}.${col.column}`, Number(rows[0]!.n));
  }
  return out;
}

/** Key ids of every sealed value, per `table.column`. */
export async function keyIdsInUse(db: Db): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  for (const col of SEALED_COLUMNS) {
    const { rows } = await sql<{ v: string | null }>`select ${sql.ref(col.column)} as v from ${sql.table(col.table)}`.execute(db);
    out.set(`${col.table}.${col.column}`, new Set(rows.filter((r) => r.v !== null).map((r) => r.v!.split(":")[1]!)));
  }
  return out;
}
