import type { Kysely } from "kysely";

/**
 * Issue 13: rejected inbound requests are listed beside accepted ones (the console's tail, the
 * requests API's `status=rejected`), so a rejection keeps its machine code and the method on
 * their own. Still no body and no header: a rejected request is something a stranger sent.
 * Older rows have `code` null; their `reason` starts with the code (`E_…: …`).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("inbound_rejections").addColumn("code", "text").execute();
  await db.schema.alterTable("inbound_rejections").addColumn("method", "text").execute();
}
