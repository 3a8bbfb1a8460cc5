import type { Kysely } from "kysely";

/**
 * Issue 14: functions (sandboxed JavaScript), versioned per application or bucket. Every save is
 * a new row; the highest version of a name is the one that runs. Code holds no secret (it reads
 * vault values by name at run time), so it is stored as text.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("functions")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("org_id", "text", (c) => c.notNull().references("orgs.id").onDelete("cascade"))
    .addColumn("scope", "text", (c) => c.notNull())
    .addColumn("scope_id", "text", (c) => c.notNull())
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("version", "integer", (c) => c.notNull())
    .addColumn("code", "text", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addUniqueConstraint("functions_scope_name_version", ["scope", "scope_id", "name", "version"])
    .execute();

  // An endpoint's transformation (Svix's `…/endpoint/{id}/transformation`): which function of its
  // application runs before each attempt. A table of its own, so the endpoint rows stay as they are.
  await db.schema
    .createTable("endpoint_transformations")
    .addColumn("endpoint_id", "text", (c) => c.primaryKey().references("endpoints.id").onDelete("cascade"))
    .addColumn("app_id", "text", (c) => c.notNull())
    .addColumn("function_name", "text", (c) => c.notNull())
    .addColumn("enabled", "integer", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .execute();
  // A URL output's transformation: which function of its bucket shapes (or drops) each forward.
  await db.schema
    .createTable("output_transformations")
    .addColumn("output_id", "text", (c) => c.primaryKey().references("outputs.id").onDelete("cascade"))
    .addColumn("bucket_id", "text", (c) => c.notNull())
    .addColumn("function_name", "text", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .execute();
}
