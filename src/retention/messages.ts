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
      .where("msg_id", "in", msgIds)
      .where((eb) => eb.or([eb("response", "<>", ""), eb("request", "is not", null)]))
      .execute();
  } else {
    await db.updateTable("attempts").set({ request: null }).where("msg_id", "in", msgIds).where("request", "is not", null).execute();
  }
}

/**
 * One batch of the cleaner: up to `limit` messages whose payload expired by `now` and that no
 * job still waits to deliver (a scheduled or retrying delivery keeps its message whole until it
 * ends; the next pass takes it). A range scan of the partial index `messages_expires_at`.
 * Returns how many messages lost their content.
 */
export async function expireMessages(db: Db, now: number, limit: number): Promise<number> {
  const rows = await db
    .selectFrom("messages")
    .select("id")
    .where("expires_at", "is not", null)
    .where("expires_at", "<=", now)
    .where(sql<boolean>`not exists (select 1 from jobs where jobs.msg_id = messages.id)`)
    .orderBy("expires_at")
    .limit(limit)
    .execute();
  await removeMessageContent(
    db,
    rows.map((r) => r.id),
    { responses: true },
  );
  return rows.length;
}

/** True once a message's content was removed (expired or expunged). */
export function contentRemoved(row: { payload: string }): boolean {
  return row.payload === "";
}
