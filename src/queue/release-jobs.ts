import type { Db } from "../store/index.js";

/** Gives a worker's leased jobs back (graceful shutdown): they are due again at once. */
export async function releaseJobs(db: Db, workerId: string, now: number): Promise<number> {
  const res = await db.updateTable("jobs").set({ locked_by: null, run_at: now }).where("locked_by", "=", workerId).executeTakeFirst();
  return Number(res.numUpdatedRows);
}

/**
 * On SQLite one process owns the database (see `src/server/lock.ts`), so every lease left over is
 * from a crashed predecessor and can be released at start instead of waiting for it to expire.
 */
export async function releaseAllLeases(db: Db, now: number): Promise<number> {
  const res = await db.updateTable("jobs").set({ locked_by: null, run_at: now }).where("locked_by", "is not", null).executeTakeFirst();
  return Number(res.numUpdatedRows);
}
