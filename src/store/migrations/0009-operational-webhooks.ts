import type { Kysely } from "kysely";

/**
 * Issue 11 §3–4. `applications.internal`: 1 for the hidden per-organisation application whose
 * endpoints are the organisation's operational-webhook endpoints (never listed, never reachable
 * through /api/v1/app/…). `outputs.disabled_reason`: why an output was disabled (a 410 Gone),
 * as endpoints already record.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("applications").addColumn("internal", "integer", (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable("outputs").addColumn("disabled_reason", "text").execute();
}
