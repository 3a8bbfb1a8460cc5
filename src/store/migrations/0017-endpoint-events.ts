import type { Kysely } from "kysely";

/**
 * Issue 13, endpoint health at a glance: the operational events that name an endpoint
 * (`data.endpointId`), kept per endpoint for the console whether or not the organisation has
 * operational endpoints. Bounded (src/operational/endpoint-log.ts keeps the newest per endpoint);
 * the rows go with their endpoint. `data` is the operational webhook's `data`: ids, times and
 * status codes, never a secret.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("endpoint_events")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("endpoint_id", "text", (c) => c.notNull().references("endpoints.id").onDelete("cascade"))
    .addColumn("type", "text", (c) => c.notNull())
    .addColumn("data", "text", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .execute();
  // Serves the list (newest first by id) and the trim's OFFSET lookup and ranged DELETE.
  await db.schema.createIndex("endpoint_events_endpoint").on("endpoint_events").columns(["endpoint_id", "id"]).execute();
}
