import type { Kysely } from "kysely";

/**
 * Issue 12: OpenTelemetry. A message and an inbound request keep the W3C `traceparent` of the
 * span that accepted them (publish, ingress), so the attempts and forwards the worker runs later,
 * on any node, are children of it. Null when tracing was off at the time.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("messages").addColumn("trace_context", "text").execute();
  await db.schema.alterTable("inbound_requests").addColumn("trace_context", "text").execute();
}
