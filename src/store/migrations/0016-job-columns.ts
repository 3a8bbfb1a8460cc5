import { sql, type Kysely } from "kysely";

/**
 * Issue 10, one delivery engine: job and attempt rows say what they hold. Both tables carry
 * outbound deliveries (message → endpoint) and forwards (inbound request → bucket output), so
 * `app_id`, `msg_id` and `endpoint_id` held a bucket, a request and an output on a forward.
 * Neutral names (`scope_id`, `item_id`, `destination_id`) and a `kind` on attempts too.
 *
 * RENAME COLUMN (SQLite ≥ 3.25, PostgreSQL) keeps the rows, the indexes (now on the new names,
 * `attempts_msg` and `attempts_endpoint` keep theirs) and takes no table rewrite.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  for (const table of ["jobs", "attempts"]) {
    await db.schema.alterTable(table).renameColumn("app_id", "scope_id").execute();
    await db.schema.alterTable(table).renameColumn("msg_id", "item_id").execute();
    await db.schema.alterTable(table).renameColumn("endpoint_id", "destination_id").execute();
  }
  await db.schema.alterTable("attempts").addColumn("kind", "text", (c) => c.notNull().defaultTo("outbound")).execute();
  // A forward's destination is an output; a deleted output leaves its attempts (its bucket's
  // deletion takes them), so the bucket in `scope_id` says it too. Application and bucket ids,
  // endpoint and output ids, never collide (distinct prefixes).
  await sql`update attempts set kind = 'forward' where destination_id in (select id from outputs) or scope_id in (select id from buckets)`.execute(db);
}
