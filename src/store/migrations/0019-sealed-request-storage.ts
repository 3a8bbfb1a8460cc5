import { PostgresAdapter, sql, type Kysely } from "kysely";

/**
 * PostgreSQL only (SQLite has no TOAST; nothing to do there): a received request's sealed form
 * (`inbound_requests.data_enc`, AES-256-GCM ciphertext in base64) is stored as it is.
 *
 * By default PostgreSQL compresses a value once its row passes ~2 KB and, if that does not shrink
 * it enough, moves it into the table's TOAST relation in ~2 KB chunks. Ciphertext never
 * compresses, so every sealed request above ~1.4 KB of body paid a pglz pass for nothing, and
 * then the TOAST rows and their index entries. Now the column is never compressed (`EXTERNAL`)
 * and a row stays in the table up to 8,160 bytes (`toast_tuple_target`): a request of up to ~5.8
 * KB is one heap row, larger ones go to TOAST uncompressed. Measured with 4 KB bodies: PostgreSQL
 * CPU per stored request 69 → 41 µs (BENCHMARKS.md, stop 29).
 *
 * Both settings are catalogue changes: no rewrite, instant on a large table; rows written before
 * keep their form and read as before.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  if (!(db.getExecutor().adapter instanceof PostgresAdapter)) return;
  await sql`alter table inbound_requests alter column data_enc set storage external`.execute(db);
  await sql`alter table inbound_requests set (toast_tuple_target = 8160)`.execute(db);
}
