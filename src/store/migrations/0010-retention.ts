import { sql, type Kysely } from "kysely";

/**
 * Issue 11: retention. As in Svix, a message's payload expiry is fixed when it is created
 * (`expires_at`: the message's own `payloadRetentionPeriod`, else its application's
 * `payload_retention_days`, else `--retention`); the cleaner empties `payload` and clears
 * `expires_at`, keeping the row. The partial index holds only messages whose payload is still
 * there, so each batch of the cleaner is a short range scan however many expired rows remain.
 *
 * Messages stored before this migration get Svix's default, 90 days after they were created
 * (one UPDATE over the table, run once at the first start of this version).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("applications").addColumn("payload_retention_days", "integer").execute();
  await db.schema.alterTable("messages").addColumn("expires_at", "bigint").execute();
  await sql`update messages set expires_at = created_at + ${90 * 86_400_000} where payload <> ''`.execute(db);
  await db.schema
    .createIndex("messages_expires_at")
    .on("messages")
    .column("expires_at")
    .where(sql.ref("expires_at"), "is not", null)
    .execute();
}
