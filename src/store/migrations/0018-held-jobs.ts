import { sql, type Kysely } from "kysely";

/**
 * Issue 10: ephemeral buckets' forwards run through the engine like every other job, while their
 * request stays in the memory of the process that received it (nothing of it is stored).
 * `held_by` names that process's worker: only it claims the job, until the job could no longer be
 * alive (its retry schedule's span: then anyone gives it up, visibly). `''`: the holder stopped,
 * so the next claim gives it up at once.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("jobs").addColumn("held_by", "text").execute();
  // An API node's worker claims only its held jobs: without this it would read every due job.
  await db.schema.createIndex("jobs_held").on("jobs").columns(["held_by", "run_at"]).where(sql.ref("held_by"), "is not", null).execute();
}
