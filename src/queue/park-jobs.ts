import type { Db } from "../store/index.js";

/**
 * Parks the backlog of a destination whose circuit just opened, in two statements: every job not
 * leased and due before `parkUntil` moves there, except its oldest, which stays due at `probeAt`
 * (the end of the cooldown) to be the half-open probe. Re-deferring the backlog job by job instead
 * made all of it due again at each cooldown's end and claimed first: with 50 failing endpoints a
 * healthy one stalled 2-8 s per cycle. `parkUntil` is one more cooldown away, so a backlog whose
 * probe got lost (its message gone) still comes back.
 */
export async function parkJobs(trx: Db, destinationId: string, probeAt: number, parkUntil: number): Promise<void> {
  await trx
    .updateTable("jobs")
    .set({ run_at: parkUntil })
    .where("destination_id", "=", destinationId)
    .where("locked_by", "is", null)
    .where("run_at", "<", parkUntil)
    .execute();
  const probe = await trx
    .selectFrom("jobs")
    .select("id")
    .where("destination_id", "=", destinationId)
    .where("locked_by", "is", null)
    .where("run_at", "=", parkUntil)
    .orderBy("created_at")
    .orderBy("id")
    .limit(1)
    .executeTakeFirst();
  if (probe) await trx.updateTable("jobs").set({ run_at: probeAt }).where("id", "=", probe.id).execute();
}

/**
 * After a successful probe: the jobs parked behind the circuit (due until `parkedUntil`) are due
 * now. The claim then meters them out, at most the destination's share per claim, round-robin with
 * every other destination. Returns how many became due.
 */
export async function unparkJobs(trx: Db, destinationId: string, now: number, parkedUntil: number): Promise<number> {
  const res = await trx
    .updateTable("jobs")
    .set({ run_at: now })
    .where("destination_id", "=", destinationId)
    .where("locked_by", "is", null)
    .where("run_at", ">", now)
    .where("run_at", "<=", parkedUntil)
    .executeTakeFirst();
  return Number(res.numUpdatedRows);
}
