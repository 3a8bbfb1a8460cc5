import type { Kysely } from "kysely";

/**
 * Issue 14: an input's transformation, which shapes (or drops) each request before it is
 * forwarded to any output of the bucket; the output's own transformation runs after it.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("input_transformations")
    .addColumn("input_id", "text", (c) => c.primaryKey().references("inputs.id").onDelete("cascade"))
    .addColumn("bucket_id", "text", (c) => c.notNull())
    .addColumn("function_name", "text", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .execute();
}
