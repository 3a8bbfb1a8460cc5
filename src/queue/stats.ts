import { sql } from "kysely";
import type { Db } from "../store/index.js";

export interface QueueStats {
  /** Jobs waiting for a worker now. */
  ready: number;
  /** Jobs scheduled for a later retry, or leased to a worker. */
  waiting: number;
  /** Age of the oldest job that is due and not yet taken, in ms (0 when none). */
  oldestReadyAgeMs: number;
}

export async function queueStats(db: Db, now: number): Promise<QueueStats> {
  const row = await db
    .selectFrom("jobs")
    .select([
      sql<number>`sum(case when run_at <= ${now} and locked_by is null then 1 else 0 end)`.as("ready"),
      sql<number>`sum(case when run_at > ${now} or locked_by is not null then 1 else 0 end)`.as("waiting"),
      sql<number | null>`min(case when run_at <= ${now} and locked_by is null then run_at end)`.as("oldest"),
    ])
    .executeTakeFirst();
  const oldest = row?.oldest == null ? null : Number(row.oldest);
  return {
    ready: Number(row?.ready ?? 0),
    waiting: Number(row?.waiting ?? 0),
    oldestReadyAgeMs: oldest === null ? 0 : Math.max(0, now - oldest),
  };
}
