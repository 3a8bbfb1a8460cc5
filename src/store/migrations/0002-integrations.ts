import type { Kysely } from "kysely";

/** Issue 3: the per-application vault, endpoint templates/auth/encryption, rendered requests on attempts. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("vault_secrets")
    .addColumn("app_id", "text", (c) => c.notNull().references("applications.id").onDelete("cascade"))
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("value_enc", "text", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .addPrimaryKeyConstraint("vault_secrets_pk", ["app_id", "name"])
    .execute();
  // SQLite adds one column per statement.
  await db.schema.alterTable("endpoints").addColumn("template", "text").execute();
  await db.schema.alterTable("endpoints").addColumn("auth", "text").execute();
  await db.schema.alterTable("endpoints").addColumn("encryption", "text").execute();
  await db.schema.alterTable("endpoints").addColumn("redact_responses", "integer", (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable("endpoints").addColumn("timeout_ms", "integer").execute();
  await db.schema.alterTable("attempts").addColumn("request", "text").execute();
}
