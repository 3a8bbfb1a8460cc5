import type { Kysely } from "kysely";

/**
 * Issue 12: the audit log. Append-only and hash-chained: each row's `hash` is SHA-256 over the
 * previous row's hash and this row's canonical content, so an edited or deleted row breaks the
 * chain (`hookwarden audit verify`). No bodies, no secrets: who, what, when, from where.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("audit_log")
    .addColumn("seq", "bigint", (c) => c.primaryKey())
    .addColumn("id", "text", (c) => c.notNull().unique())
    .addColumn("at", "bigint", (c) => c.notNull())
    .addColumn("org_id", "text", (c) => c.notNull())
    .addColumn("token_id", "text")
    .addColumn("token_name", "text")
    .addColumn("action", "text", (c) => c.notNull())
    .addColumn("resource_id", "text")
    .addColumn("status", "integer", (c) => c.notNull())
    .addColumn("client_ip", "text")
    .addColumn("prev_hash", "text", (c) => c.notNull())
    .addColumn("hash", "text", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("audit_log_org_at").on("audit_log").columns(["org_id", "at"]).execute();
}
