import type { ApplicationRow } from "../applications/index.js";
import type { Context } from "../context/index.js";
import { newId } from "../ids/index.js";
import { isUniqueViolation } from "../store/errors.js";

/**
 * The uid of an organisation's hidden operational-webhooks application. The colon is refused in
 * every uid a caller can send (`api/schemas.ts`), so no application of theirs can take it, and
 * the (org_id, uid) unique constraint keeps concurrent first registrations to one row.
 */
export const OPERATIONAL_APP_UID = "hookwarden:operational";

/**
 * The organisation's operational-webhooks application, or `undefined` before its first
 * operational endpoint. Its endpoints are the organisation's operational endpoints: the delivery
 * engine signs, retries and records them like any other, while `findApplication` and every
 * listing leave it out (`applications.internal = 1`), so /api/v1/app/… and application-scoped
 * tokens never reach it.
 */
export async function findOperationalApp(ctx: Context, orgId: string): Promise<ApplicationRow | undefined> {
  return ctx.store.db.selectFrom("applications").selectAll().where("org_id", "=", orgId).where("internal", "=", 1).executeTakeFirst();
}

/** Creates the operational application on first use (idempotent, safe against a concurrent call). */
export async function ensureOperationalApp(ctx: Context, orgId: string): Promise<ApplicationRow> {
  const found = await findOperationalApp(ctx, orgId);
  if (found) return found;
  const now = ctx.clock.now();
  const row: ApplicationRow = {
    id: newId("app"),
    org_id: orgId,
    uid: OPERATIONAL_APP_UID,
    name: "Operational webhooks",
    rate_limit: null,
    payload_retention_days: null,
    metadata: "{}",
    internal: 1,
    created_at: now,
    updated_at: now,
  };
  try {
    await ctx.store.db.insertInto("applications").values(row).execute();
    return row;
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    const raced = await findOperationalApp(ctx, orgId);
    if (!raced) throw err;
    return raced;
  }
}
