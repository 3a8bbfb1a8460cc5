import { sql } from "kysely";
import type { Db } from "../store/index.js";

/**
 * One batch of inbound retention for one bucket: up to `limit` received requests older than
 * `cutoff` (and that no forward job still waits on) are deleted with their forwarding attempts.
 * Unlike a message, a received request is deleted whole: its row *is* its content (the sealed
 * request), and the API answers 404 for it afterwards. Returns what was deleted.
 */
export async function deleteOldRequests(db: Db, bucketId: string, cutoff: number, limit: number): Promise<{ requests: number; attempts: number }> {
  const rows = await db
    .selectFrom("inbound_requests")
    .select("id")
    .where("bucket_id", "=", bucketId)
    .where("received_at", "<", cutoff)
    .where(sql<boolean>`not exists (select 1 from jobs where jobs.item_id = inbound_requests.id)`)
    .limit(limit)
    .execute();
  if (rows.length === 0) return { requests: 0, attempts: 0 };
  const ids = rows.map((r) => r.id);
  const atts = await db.deleteFrom("attempts").where("item_id", "in", ids).executeTakeFirst();
  await db.deleteFrom("inbound_requests").where("id", "in", ids).execute();
  return { requests: ids.length, attempts: Number(atts.numDeletedRows) };
}

/** One batch: up to `limit` of a bucket's rejection records older than `cutoff`. */
export async function deleteOldRejections(db: Db, bucketId: string, cutoff: number, limit: number): Promise<number> {
  const r = await db
    .deleteFrom("inbound_rejections")
    .where("id", "in", (qb) => qb.selectFrom("inbound_rejections").select("id").where("bucket_id", "=", bucketId).where("at", "<", cutoff).limit(limit))
    .executeTakeFirst();
  return Number(r.numDeletedRows);
}

/** One batch: up to `limit` provider-delivery dedupe keys past their expiry. */
export async function deleteExpiredDedupeKeys(db: Db, now: number, limit: number): Promise<number> {
  const r = await db
    .deleteFrom("inbound_dedupe")
    .where(sql<boolean>`(input_id, delivery_id) in (select input_id, delivery_id from inbound_dedupe where expires_at <= ${now} limit ${limit})`)
    .executeTakeFirst();
  return Number(r.numDeletedRows);
}
