import type { Kysely } from "kysely";

/**
 * Issue 11: Svix parity. `deliver_at` keeps a scheduled message's send time (svix `deliverAt`);
 * `app_id` and `expires_at` make an API token an app-portal token, scoped to one application and
 * expiring (svix `authentication.appPortalAccess`). Still stored only as a SHA-256 hash.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("messages").addColumn("deliver_at", "bigint").execute();
  await db.schema.alterTable("api_tokens").addColumn("app_id", "text").execute();
  await db.schema.alterTable("api_tokens").addColumn("expires_at", "bigint").execute();
  await db.schema.alterTable("api_tokens").addColumn("read_only", "integer", (c) => c.notNull().defaultTo(0)).execute();
}
