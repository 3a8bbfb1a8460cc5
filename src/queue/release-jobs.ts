import type { Db } from "../store/index.js";

/** Gives a worker's leased jobs back (graceful shutdown): they are due again at once. */
export async function releaseJobs(db: Db, workerId: string, now: number): Promise<number> {
  const res = await db.updateTable("jobs").set({ locked_by: null, run_at: now }).where("locked_by", "=", workerId).executeTakeFirst();
  // The items it held in memory go with this process: the next claim gives their jobs up.
  await db.updateTable("jobs").set({ held_by: "", run_at: now }).where("held_by", "=", workerId).execute();
  return Number(res.numUpdatedRows);
}

/**
 * On SQLite one process owns the database (see `src/server/lock.ts`), so every lease left over is
 * from a crashed predecessor and can be released at start instead of waiting for it to expire.
 * `except`: this process's own worker, when the release runs late (deferred by a full disk).
 */
export async function releaseAllLeases(db: Db, now: number, except?: string): Promise<number> {
  let q = db.updateTable("jobs").set({ locked_by: null, run_at: now }).where("locked_by", "is not", null);
  if (except !== undefined) q = q.where("locked_by", "!=", except);
  const res = await q.executeTakeFirst();
  // What the crashed predecessor held in memory only is gone with it: given up at the next claim.
  let held = db.updateTable("jobs").set({ held_by: "", run_at: now }).where("held_by", "is not", null).where("held_by", "!=", "");
  if (except !== undefined) held = held.where("held_by", "!=", except);
  await held.execute();
  return Number(res.numUpdatedRows);
}
