import type { Insertable } from "kysely";
import { deleteLeasedJobs, insertAndDeleteLeased, insertRows } from "../store/hot.js";
import type { Db } from "../store/index.js";
import type { AttemptsTable } from "../store/schema.js";
import type { JobRow } from "./types.js";

/**
 * One attempt row; its ids are its job's (`JobRow`): application, message and endpoint for an
 * `outbound` attempt, bucket, inbound request and output for a `forward`, which says so in `kind`.
 */
export type AttemptInsert = Insertable<AttemptsTable>;

/**
 * What became of a leased job: `done` (delivered, or out of retries) and `drop` (its endpoint or
 * message is gone) delete it; `retry` counts an attempt and schedules the next; `defer` puts it
 * back without counting one (circuit open, rate limit, endpoint busy).
 */
export type JobOutcome =
  | { kind: "done"; job: JobRow; attempt: AttemptInsert }
  | { kind: "retry"; job: JobRow; attempt: AttemptInsert; runAt: number }
  | { kind: "defer"; job: JobRow; runAt: number }
  | { kind: "drop"; job: JobRow };

const CHUNK = 200;

/**
 * Applies many outcomes in the caller's transaction: one multi-row insert for attempts, one
 * delete for finished jobs, one update per rescheduled job. Each statement checks `locked_by`,
 * so a worker whose lease expired cannot undo another worker's claim.
 */
export async function completeJobs(trx: Db, workerId: string, outcomes: readonly JobOutcome[]): Promise<void> {
  const attempts: AttemptInsert[] = [];
  const finished: string[] = [];
  for (const o of outcomes) {
    if (o.kind === "done" || o.kind === "retry") attempts.push(o.attempt);
    if (o.kind === "done" || o.kind === "drop") finished.push(o.job.id);
  }
  for (let i = 0; i < attempts.length; i += CHUNK) {
    await insertRows(trx, "attempts", attempts.slice(i, i + CHUNK));
  }
  for (let i = 0; i < finished.length; i += CHUNK * 2) {
    await deleteLeasedJobs(trx, workerId, finished.slice(i, i + CHUNK * 2));
  }
  for (const o of outcomes) {
    if (o.kind === "retry") {
      await trx
        .updateTable("jobs")
        .set((eb) => ({ attempt: eb("attempt", "+", 1), run_at: o.runAt, locked_by: null }))
        .where("id", "=", o.job.id)
        .where("locked_by", "=", workerId)
        .execute();
    } else if (o.kind === "defer") {
      await trx.updateTable("jobs").set({ run_at: o.runAt, locked_by: null }).where("id", "=", o.job.id).where("locked_by", "=", workerId).execute();
    }
  }
}

/**
 * Whether `recordFinished` can apply these outcomes: every one `done` or `drop`, at most one
 * statement's worth. Those need no transaction of their own.
 */
export function onlyFinished(outcomes: readonly JobOutcome[]): boolean {
  return outcomes.length <= CHUNK && outcomes.every((o) => o.kind === "done" || o.kind === "drop");
}

/**
 * `completeJobs` for outcomes that are all `done` or `drop` (`onlyFinished`): their attempts
 * inserted and their jobs deleted in one statement on PostgreSQL (`insertAndDeleteLeased`), so
 * the recorder's usual batch is one round trip there.
 */
export async function recordFinished(db: Db, workerId: string, outcomes: readonly JobOutcome[]): Promise<void> {
  const attempts: AttemptInsert[] = [];
  for (const o of outcomes) if (o.kind === "done") attempts.push(o.attempt);
  await insertAndDeleteLeased(db, "attempts", attempts, workerId, outcomes.map((o) => o.job.id));
}
