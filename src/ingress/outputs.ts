import type { Selectable } from "kysely";
import type { Context } from "../context/index.js";
import { checkEndpointUrl } from "../endpoints/url.js";
import { HookwardenError } from "../errors/index.js";
import { newId } from "../ids/index.js";
import { generateSecret } from "../signing/endpoint-secret.js";
import type { OutputsTable } from "../store/schema.js";
import type { Patch } from "../util/patch.js";
import type { SecretValue } from "../vault/secret-value.js";
import type { BucketRow } from "./buckets.js";

export type OutputRow = Selectable<OutputsTable>;

export interface OutputInput {
  name?: string | undefined;
  type: "url" | "agent";
  url?: string | undefined;
  /** Add Standard Webhooks headers signed with the output's own secret (shown once). */
  resign?: boolean | undefined;
  tlsVerify?: boolean | undefined;
  /** Agent outputs: every connected agent gets each request instead of one of them. */
  broadcast?: boolean | undefined;
  disabled?: boolean | undefined;
  /** Deliveries per second to this output; null for no limit. */
  rateLimit?: number | null | undefined;
}

export function outputAad(outputId: string): string {
  return `output-signing:${outputId}`;
}

export async function createOutput(ctx: Context, bucket: BucketRow, input: OutputInput): Promise<{ row: OutputRow; generatedSecret: SecretValue | undefined }> {
  const now = ctx.clock.now();
  const id = newId("out");
  if (input.type === "url" && !input.url) throw HookwardenError.invalidField(["body", "url"], "A url output needs a url");
  if (input.type === "agent" && input.url) throw HookwardenError.invalidField(["body", "url"], "An agent output has no url: the agent's own configuration says where requests go");
  const url = input.type === "url" ? checkEndpointUrl(input.url!, ctx.config.allowPrivateNetworks) : null;
  const secret = input.resign ? generateSecret("hmac-sha256") : undefined;
  const row: OutputRow = {
    id,
    bucket_id: bucket.id,
    org_id: bucket.org_id,
    name: input.name ?? "",
    type: input.type,
    url,
    resign: input.resign ? 1 : 0,
    signing_secret_enc: secret ? ctx.keyring.seal(secret.reveal(), outputAad(id)) : null,
    tls_verify: input.tlsVerify === false ? 0 : 1,
    broadcast: input.broadcast ? 1 : 0,
    disabled: input.disabled ? 1 : 0,
    disabled_reason: null,
    rate_limit: input.rateLimit ?? null,
    consecutive_failures: 0,
    failing_since: null,
    circuit_open_until: null,
    created_at: now,
    updated_at: now,
  };
  await ctx.store.db.insertInto("outputs").values(row).execute();
  if (row.tls_verify === 0) ctx.logger.warn({ outputId: id, bucketId: bucket.id }, "output created with TLS verification disabled");
  return { row, generatedSecret: secret };
}

export async function findOutput(ctx: Context, bucket: BucketRow, id: string): Promise<OutputRow> {
  const row = await ctx.store.db.selectFrom("outputs").selectAll().where("bucket_id", "=", bucket.id).where("id", "=", id).executeTakeFirst();
  if (!row) throw HookwardenError.notFound("Output");
  return row;
}

export async function listOutputs(ctx: Context, bucket: BucketRow): Promise<OutputRow[]> {
  return ctx.store.db.selectFrom("outputs").selectAll().where("bucket_id", "=", bucket.id).orderBy("id").execute();
}

export async function updateOutput(ctx: Context, bucket: BucketRow, id: string, patch: Patch<Omit<OutputInput, "type">>): Promise<{ row: OutputRow; generatedSecret: SecretValue | undefined }> {
  const current = await findOutput(ctx, bucket, id);
  const set: Partial<OutputRow> = { updated_at: ctx.clock.now() };
  let secret: SecretValue | undefined;
  if (patch.name !== undefined) set.name = patch.name;
  if (patch.url !== undefined) {
    if (current.type !== "url") throw HookwardenError.invalidField(["body", "url"], "An agent output has no url");
    set.url = checkEndpointUrl(patch.url, ctx.config.allowPrivateNetworks);
  }
  if (patch.tlsVerify !== undefined) set.tls_verify = patch.tlsVerify ? 1 : 0;
  if (patch.broadcast !== undefined) set.broadcast = patch.broadcast ? 1 : 0;
  if (patch.disabled !== undefined) set.disabled = patch.disabled ? 1 : 0;
  // Re-enabled by hand: a fresh failure streak, as for endpoints.
  if (patch.disabled === false) Object.assign(set, { disabled_reason: null, consecutive_failures: 0, failing_since: null, circuit_open_until: null });
  if (patch.rateLimit !== undefined) set.rate_limit = patch.rateLimit;
  if (patch.resign !== undefined) {
    set.resign = patch.resign ? 1 : 0;
    if (patch.resign && current.signing_secret_enc === null) {
      secret = generateSecret("hmac-sha256");
      set.signing_secret_enc = ctx.keyring.seal(secret.reveal(), outputAad(id));
    }
  }
  await ctx.store.db.updateTable("outputs").set(set).where("id", "=", current.id).execute();
  return { row: { ...current, ...set }, generatedSecret: secret };
}

export async function deleteOutput(ctx: Context, bucket: BucketRow, id: string): Promise<void> {
  await ctx.store.db.transaction().execute(async (trx) => {
    const res = await trx.deleteFrom("outputs").where("bucket_id", "=", bucket.id).where("id", "=", id).executeTakeFirst();
    if (Number(res.numDeletedRows) === 0) throw HookwardenError.notFound("Output");
    await trx.deleteFrom("jobs").where("destination_id", "=", id).execute();
  });
}
