import type { Selectable } from "kysely";
import type { Context } from "../context/index.js";
import { HookwardenError } from "../errors/index.js";
import { newId } from "../ids/index.js";
import { isUniqueViolation } from "../store/errors.js";
import type { ApplicationsTable } from "../store/schema.js";
import type { Page } from "../store/page.js";
import type { Patch } from "../util/patch.js";

export type ApplicationRow = Selectable<ApplicationsTable>;

export interface ApplicationInput {
  name: string;
  uid?: string | null | undefined;
  rateLimit?: number | null | undefined;
  metadata?: Record<string, string> | undefined;
  /** Issue 11: days this application's messages keep their payload; null: `--retention`. */
  payloadRetentionPeriod?: number | null | undefined;
}

/**
 * Finds an application of `orgId` by id (`app_...`) or uid; another organisation's is a 404, and
 * so is the organisation's hidden operational-webhooks application (src/operational/): its
 * endpoints are reached only through /api/v1/operational-webhook/…, never as an application.
 */
export async function findApplication(ctx: Context, orgId: string, idOrUid: string): Promise<ApplicationRow> {
  const row = await ctx.store.db
    .selectFrom("applications")
    .selectAll()
    .where("org_id", "=", orgId)
    .where("internal", "=", 0)
    .where((eb) => eb.or([eb("id", "=", idOrUid), eb("uid", "=", idOrUid)]))
    .executeTakeFirst();
  if (!row) throw HookwardenError.notFound("Application");
  return row;
}

export async function createApplication(
  ctx: Context,
  orgId: string,
  input: ApplicationInput,
  getIfExists = false,
): Promise<{ row: ApplicationRow; created: boolean }> {
  const now = ctx.clock.now();
  const row: ApplicationRow = {
    id: newId("app"),
    org_id: orgId,
    uid: input.uid ?? null,
    name: input.name,
    rate_limit: input.rateLimit ?? null,
    metadata: JSON.stringify(input.metadata ?? {}),
    internal: 0,
    created_at: now,
    updated_at: now,
    payload_retention_days: input.payloadRetentionPeriod ?? null,
  };
  try {
    await ctx.store.db.insertInto("applications").values(row).execute();
    return { row, created: true };
  } catch (err) {
    if (!isUniqueViolation(err) || row.uid === null) throw err;
    if (getIfExists) return { row: await findApplication(ctx, orgId, row.uid), created: false };
    throw new HookwardenError("E_CONFLICT", 409, "An application with this uid already exists");
  }
}

export async function listApplications(ctx: Context, orgId: string, page: Page): Promise<ApplicationRow[]> {
  let q = ctx.store.db.selectFrom("applications").selectAll().where("org_id", "=", orgId).where("internal", "=", 0);
  if (page.iterator) q = q.where("id", page.order === "ascending" ? ">" : "<", page.iterator);
  return q.orderBy("id", page.order === "ascending" ? "asc" : "desc").limit(page.limit + 1).execute();
}

export async function updateApplication(ctx: Context, orgId: string, idOrUid: string, patch: Patch<ApplicationInput>): Promise<ApplicationRow> {
  const current = await findApplication(ctx, orgId, idOrUid);
  const next: ApplicationRow = {
    ...current,
    ...(patch.name !== undefined ? { name: patch.name } : {}),
    ...(patch.uid !== undefined ? { uid: patch.uid } : {}),
    ...(patch.rateLimit !== undefined ? { rate_limit: patch.rateLimit } : {}),
    ...(patch.metadata !== undefined ? { metadata: JSON.stringify(patch.metadata) } : {}),
    ...(patch.payloadRetentionPeriod !== undefined ? { payload_retention_days: patch.payloadRetentionPeriod } : {}),
    updated_at: ctx.clock.now(),
  };
  try {
    await ctx.store.db
      .updateTable("applications")
      .set({ name: next.name, uid: next.uid, rate_limit: next.rate_limit, metadata: next.metadata, payload_retention_days: next.payload_retention_days, updated_at: next.updated_at })
      .where("id", "=", current.id)
      .execute();
  } catch (err) {
    if (isUniqueViolation(err)) throw new HookwardenError("E_CONFLICT", 409, "An application with this uid already exists");
    throw err;
  }
  return next;
}

/** Deletes the application and everything under it: endpoints, messages, attempts, pending jobs. */
export async function deleteApplication(ctx: Context, orgId: string, idOrUid: string): Promise<void> {
  const app = await findApplication(ctx, orgId, idOrUid);
  await ctx.store.db.transaction().execute(async (trx) => {
    await trx.deleteFrom("jobs").where("scope_id", "=", app.id).execute();
    await trx.deleteFrom("attempts").where("scope_id", "=", app.id).execute();
    // Functions name their application without a foreign key (an application or a bucket).
    await trx.deleteFrom("functions").where("org_id", "=", app.org_id).where("scope", "=", "app").where("scope_id", "=", app.id).execute();
    await trx.deleteFrom("applications").where("id", "=", app.id).execute();
  });
}
