import type { Kysely } from "kysely";

/**
 * Issue 12, incident response: what an operator paused. `id` is the paused scope's own id (an
 * application `app_…`, a bucket `bkt_…` or a whole organisation `org_…`), so the claim excludes a
 * job with one lookup by primary key on its `app_id` (a forward job's is its bucket) or `org_id`.
 * The table is empty unless an incident is under way.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("incident_pauses")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("org_id", "text", (c) => c.notNull().references("orgs.id").onDelete("cascade"))
    .addColumn("kind", "text", (c) => c.notNull())
    .addColumn("actor", "text", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .execute();
}
