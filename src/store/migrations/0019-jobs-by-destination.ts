import type { Kysely } from "kysely";

/**
 * Issue 10: a destination's jobs by time. Parking an open circuit's backlog, releasing it after a
 * good probe and finding its probe read every job due before the park's end through the `run_at`
 * index: with 50 failing endpoints each cooldown ran 100 such scans of the whole queue, on SQLite
 * on the event loop beside the healthy deliveries. With this index each reads its own backlog.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex("jobs_destination").on("jobs").columns(["destination_id", "run_at"]).execute();
}
