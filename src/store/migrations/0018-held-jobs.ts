import type { Kysely } from "kysely";

/**
 * Issue 10: ephemeral buckets' forwards run through the engine like every other job, while their
 * request stays in the memory of the process that received it (nothing of it is stored).
 * `held_by` names that process's worker: only it claims the job, until the job could no longer be
 * alive (its retry schedule's span: then anyone gives it up, visibly). `''`: the holder stopped,
 * so the next claim gives it up at once.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("jobs").addColumn("held_by", "text").execute();
}
