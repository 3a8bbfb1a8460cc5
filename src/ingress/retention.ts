import { sql } from "kysely";
import type { Context } from "../context/index.js";

export interface RetentionReport {
  requests: number;
  attempts: number;
  rejections: number;
  dedupeKeys: number;
  idempotencyKeys: number;
}

/**
 * Deletes received requests (and their forwarding attempts and rejections) older than their
 * bucket's `retentionDays`, plus expired dedupe and idempotency keys. Idempotent, so every node
 * may run it on its own timer.
 */
export async function runRetention(ctx: Context): Promise<RetentionReport> {
  const { store, clock } = ctx;
  const now = clock.now();
  const buckets = await store.db.selectFrom("buckets").select(["id", "retention_days"]).execute();
  const report: RetentionReport = { requests: 0, attempts: 0, rejections: 0, dedupeKeys: 0, idempotencyKeys: 0 };
  for (const b of buckets) {
    const cutoff = now - b.retention_days * 86_400_000;
    await store.db.transaction().execute(async (trx) => {
      const reqs = await trx.deleteFrom("inbound_requests").where("bucket_id", "=", b.id).where("received_at", "<", cutoff).executeTakeFirst();
      report.requests += Number(reqs.numDeletedRows);
      const atts = await trx
        .deleteFrom("attempts")
        .where("app_id", "=", b.id)
        .where(sql<boolean>`not exists (select 1 from inbound_requests r where r.id = attempts.msg_id)`)
        .executeTakeFirst();
      report.attempts += Number(atts.numDeletedRows);
      const rej = await trx.deleteFrom("inbound_rejections").where("bucket_id", "=", b.id).where("at", "<", cutoff).executeTakeFirst();
      report.rejections += Number(rej.numDeletedRows);
    });
  }
  report.dedupeKeys = Number((await store.db.deleteFrom("inbound_dedupe").where("expires_at", "<=", now).executeTakeFirst()).numDeletedRows);
  report.idempotencyKeys = Number((await store.db.deleteFrom("idempotency_keys").where("expires_at", "<=", now).executeTakeFirst()).numDeletedRows);
  return report;
}
