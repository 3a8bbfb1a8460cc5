import { sql } from "kysely";
import type { Db } from "../store/index.js";

/**
 * Removes what a message carried: its payload (kept as `''`, which no real payload is: the API
 * then answers `{"expired": true}` as Svix does) and its attempts' copies of the request as sent
 * (they hold the payload). With `responses`, the endpoints' answers go too. The message and
 * attempt rows stay (ids, status codes, times), as in Svix, where the message row outlives its
 * content. Shared by `expungeContent` (at once, payload only: Svix expunges an attempt's answer
 * separately) and the retention cleaner (once `expires_at` has passed, answers included).
 */
export async function removeMessageContent(db: Db, msgIds: readonly string[], opts: { responses: boolean }): Promise<void> {
  if (msgIds.length === 0) return;
  await db.updateTable("messages").set({ payload: "", expires_at: null }).where("id", "in", msgIds).execute();
  if (opts.responses) {
    await db
      .updateTable("attempts")
      .set({ response: "", request: null })
      .where("item_id", "in", msgIds)
      .where((eb) => eb.or([eb("response", "<>", ""), eb("request", "is not", null)]))
      .execute();
  } else {
    await db.updateTable("attempts").set({ request: null }).where("item_id", "in", msgIds).where("request", "is not", null).execute();
  }
}

/**
 * SQLite only: gives the emptied rows new rowids at the end of the table. Shrinking a row in
 * place leaves its leaf page partly empty, and SQLite merges a page with its neighbours only
 * below a third full: measured in `npm run bench` (retention phase), emptying ~1 KB payloads in
 * place freed 21 pages for 400 messages and the messages table stayed 335 pages with 46% unused.
 * Moving the rows (a rowid change is a delete plus an insert; nothing references rowids, and
 * foreign keys refer to `id`, which is unchanged) empties the old leaves entirely, so their pages
 * go to the free list and `incremental_vacuum` can return them; the moved rows are packed at the
 * right edge, where new rows go anyway. PostgreSQL writes a new tuple on every UPDATE already.
 */
async function relocate(db: Db, table: "messages" | "attempts", ids: readonly string[]): Promise<void> {
  for (const id of ids) {
    await sql`update ${sql.table(table)} set rowid = (select max(rowid) + 1 from ${sql.table(table)}) where id = ${id}`.execute(db);
  }
}

/**
 * One batch of the cleaner: up to `limit` messages whose payload expired by `now` and that no
 * job still waits to deliver (a scheduled or retrying delivery keeps its message whole until it
 * ends; the next pass takes it). A range scan of the partial index `messages_expires_at`.
 * `compact` (SQLite): see `relocate`. Returns how many messages lost their content.
 */
export async function expireMessages(db: Db, now: number, limit: number, compact = false): Promise<number> {
  const rows = await db
    .selectFrom("messages")
    .select("id")
    .where("expires_at", "is not", null)
    .where("expires_at", "<=", now)
    .where(sql<boolean>`not exists (select 1 from jobs where jobs.item_id = messages.id)`)
    .orderBy("expires_at")
    .limit(limit)
    .execute();
  const ids = rows.map((r) => r.id);
  await removeMessageContent(db, ids, { responses: true });
  if (compact) {
    await relocate(db, "messages", ids);
    const attempts = ids.length === 0 ? [] : await db.selectFrom("attempts").select("id").where("item_id", "in", ids).execute();
    await relocate(
      db,
      "attempts",
      attempts.map((a) => a.id),
    );
  }
  return rows.length;
}

/** True once a message's content was removed (expired or expunged). */
export function contentRemoved(row: { payload: string }): boolean {
  return row.payload === "";
}
