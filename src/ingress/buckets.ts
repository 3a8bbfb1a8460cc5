import { randomBytes } from "node:crypto";
import type { Selectable } from "kysely";
import type { Context } from "../context/index.js";
import { parseCidr } from "../net/ssrf.js";
import { HookwardenError } from "../errors/index.js";
import { newId } from "../ids/index.js";
import { isUniqueViolation } from "../store/errors.js";
import type { BucketsTable } from "../store/schema.js";
import type { Patch } from "../util/patch.js";
import { SecretValue } from "../vault/secret-value.js";

export type BucketRow = Selectable<BucketsTable>;

export type BucketAuthInput = { type: "none" } | { type: "basic"; username: string; password: string } | { type: "token"; token?: string | undefined };

export interface BucketInput {
  name: string;
  auth?: BucketAuthInput | undefined;
  ephemeral?: boolean | undefined;
  ipAllowlist?: string[] | null | undefined;
  rateLimit?: number | null | undefined;
  retentionDays?: number | undefined;
}

/** Binds a bucket's sealed password or token to the bucket. */
export function bucketAuthAad(bucketId: string): string {
  return `bucket-auth:${bucketId}`;
}

function checkAllowlist(list: string[]): void {
  list.forEach((c, i) => {
    try {
      parseCidr(c);
    } catch (e) {
      throw HookwardenError.invalidField(["body", "ipAllowlist", String(i)], (e as Error).message);
    }
  });
}

/** Seals the bucket's credential; returns a token generated for `{type: "token"}` without one. */
function authColumns(ctx: Context, bucketId: string, auth: BucketAuthInput): { cols: Pick<BucketRow, "auth_type" | "auth_username" | "auth_secret_enc">; generated: SecretValue | undefined } {
  if (auth.type === "none") return { cols: { auth_type: "none", auth_username: null, auth_secret_enc: null }, generated: undefined };
  if (auth.type === "basic") {
    if (auth.username.includes(":")) throw HookwardenError.invalidField(["body", "auth", "username"], "A basic-auth username cannot contain ':'");
    if (auth.password.length < 12) throw HookwardenError.invalidField(["body", "auth", "password"], "Use a password of at least 12 characters", "E_SECRET_TOO_SHORT");
    return { cols: { auth_type: "basic", auth_username: auth.username, auth_secret_enc: ctx.keyring.seal(auth.password, bucketAuthAad(bucketId)) }, generated: undefined };
  }
  if (auth.token !== undefined && auth.token.length < 24) throw HookwardenError.invalidField(["body", "auth", "token"], "Tokens are at least 24 characters", "E_SECRET_TOO_SHORT");
  const token = new SecretValue(auth.token ?? `hwi_${randomBytes(24).toString("base64url")}`);
  return {
    cols: { auth_type: "token", auth_username: null, auth_secret_enc: ctx.keyring.seal(token.reveal(), bucketAuthAad(bucketId)) },
    generated: auth.token === undefined ? token : undefined,
  };
}

export async function createBucket(ctx: Context, orgId: string, input: BucketInput): Promise<{ row: BucketRow; generatedToken: SecretValue | undefined }> {
  const now = ctx.clock.now();
  const id = newId("bkt");
  if (input.ipAllowlist) checkAllowlist(input.ipAllowlist);
  const { cols, generated } = authColumns(ctx, id, input.auth ?? { type: "none" });
  const row: BucketRow = {
    id,
    org_id: orgId,
    name: input.name,
    ...cols,
    ephemeral: input.ephemeral ? 1 : 0,
    ip_allowlist: input.ipAllowlist && input.ipAllowlist.length > 0 ? JSON.stringify(input.ipAllowlist) : null,
    rate_limit: input.rateLimit ?? null,
    retention_days: input.retentionDays ?? ctx.config.retentionDays,
    created_at: now,
    updated_at: now,
  };
  try {
    await ctx.store.db.insertInto("buckets").values(row).execute();
  } catch (err) {
    if (isUniqueViolation(err)) throw new HookwardenError("E_CONFLICT", 409, "A bucket with this name already exists");
    throw err;
  }
  return { row, generatedToken: generated };
}

/** A bucket of `orgId` by id or name; another organisation's is a 404. */
export async function findBucket(ctx: Context, orgId: string, idOrName: string): Promise<BucketRow> {
  const row = await ctx.store.db
    .selectFrom("buckets")
    .selectAll()
    .where("org_id", "=", orgId)
    .where((eb) => eb.or([eb("id", "=", idOrName), eb("name", "=", idOrName)]))
    .executeTakeFirst();
  if (!row) throw HookwardenError.notFound("Bucket");
  return row;
}

export async function listBuckets(ctx: Context, orgId: string): Promise<BucketRow[]> {
  return ctx.store.db.selectFrom("buckets").selectAll().where("org_id", "=", orgId).orderBy("id").execute();
}

export async function updateBucket(ctx: Context, orgId: string, idOrName: string, patch: Patch<BucketInput>): Promise<{ row: BucketRow; generatedToken: SecretValue | undefined }> {
  const current = await findBucket(ctx, orgId, idOrName);
  const set: Partial<BucketRow> = { updated_at: ctx.clock.now() };
  let generated: SecretValue | undefined;
  if (patch.name !== undefined) set.name = patch.name;
  if (patch.ephemeral !== undefined) set.ephemeral = patch.ephemeral ? 1 : 0;
  if (patch.ipAllowlist !== undefined) {
    if (patch.ipAllowlist) checkAllowlist(patch.ipAllowlist);
    set.ip_allowlist = patch.ipAllowlist && patch.ipAllowlist.length > 0 ? JSON.stringify(patch.ipAllowlist) : null;
  }
  if (patch.rateLimit !== undefined) set.rate_limit = patch.rateLimit;
  if (patch.retentionDays !== undefined) set.retention_days = patch.retentionDays;
  if (patch.auth !== undefined) {
    const a = authColumns(ctx, current.id, patch.auth);
    Object.assign(set, a.cols);
    generated = a.generated;
  }
  try {
    await ctx.store.db.updateTable("buckets").set(set).where("id", "=", current.id).execute();
  } catch (err) {
    if (isUniqueViolation(err)) throw new HookwardenError("E_CONFLICT", 409, "A bucket with this name already exists");
    throw err;
  }
  return { row: { ...current, ...set }, generatedToken: generated };
}

/** Deletes the bucket with its inputs, outputs, stored requests, their attempts and pending forwards. */
export async function deleteBucket(ctx: Context, orgId: string, idOrName: string): Promise<void> {
  const b = await findBucket(ctx, orgId, idOrName);
  await ctx.store.db.transaction().execute(async (trx) => {
    await trx.deleteFrom("jobs").where("scope_id", "=", b.id).execute();
    await trx.deleteFrom("attempts").where("scope_id", "=", b.id).execute();
    await trx.deleteFrom("inbound_rejections").where("bucket_id", "=", b.id).execute();
    await trx.deleteFrom("functions").where("org_id", "=", b.org_id).where("scope", "=", "bucket").where("scope_id", "=", b.id).execute();
    await trx.deleteFrom("buckets").where("id", "=", b.id).execute();
  });
}
