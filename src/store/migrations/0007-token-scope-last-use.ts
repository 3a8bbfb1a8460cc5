import type { Kysely } from "kysely";

/**
 * Issue 12: API tokens say what they may do and when they were last used. `scope` is `full` or
 * `read-only` (GET only); `app_id` (0005) additionally limits a token to one application.
 * `kind` tells app-portal tokens from API tokens.
 * `last_used_at` is written at most once a minute per token (see auth/token-use.ts).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("api_tokens").addColumn("scope", "text", (c) => c.notNull().defaultTo("full")).execute();
  await db.schema.alterTable("api_tokens").addColumn("last_used_at", "bigint").execute();
  // `portal` for app-portal tokens (0005's app_id + expires_at), `api` for every other token.
  await db.schema.alterTable("api_tokens").addColumn("kind", "text", (c) => c.notNull().defaultTo("api")).execute();
}
