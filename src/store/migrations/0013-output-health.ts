import type { Kysely } from "kysely";

/**
 * Issue 10: every destination gets the same health machinery. Bucket outputs now keep what
 * endpoints keep: a failure streak (circuit breaker, automatic disabling with a reason) and an
 * optional rate limit (deliveries per second). (`disabled_reason` came with 0009.)
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("outputs").addColumn("consecutive_failures", "integer", (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable("outputs").addColumn("failing_since", "bigint").execute();
  await db.schema.alterTable("outputs").addColumn("circuit_open_until", "bigint").execute();
  await db.schema.alterTable("outputs").addColumn("rate_limit", "integer").execute();
}
