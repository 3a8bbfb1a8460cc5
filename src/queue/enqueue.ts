import type { Db } from "../store/index.js";
import { newId } from "../ids/index.js";

/** One delivery to queue: of message `msgId` to endpoint `endpointId`, or (`forward`) of a stored request to a bucket output. */
export interface NewJob {
  orgId: string;
  /** The application; for a `forward` job, its bucket. */
  appId: string;
  /** The message; for a `forward` job, the stored request. */
  msgId: string;
  /** The endpoint; for a `forward` job, the output. */
  endpointId: string;
  /** `TRIGGER_SCHEDULED` or `TRIGGER_MANUAL` (resend, recover, replay). */
  triggerType: number;
  /** `outbound` unless given. */
  kind?: "outbound" | "forward";
}

const CHUNK = 200;

/** Inserts `jobs`, due at `now`, in the caller's transaction; `JobQueue.transaction` is the way in. */
export async function insertJobs(db: Db, jobs: readonly NewJob[], now: number): Promise<void> {
  const rows = jobs.map((j) => ({
    id: newId("job"),
    org_id: j.orgId,
    app_id: j.appId,
    msg_id: j.msgId,
    endpoint_id: j.endpointId,
    attempt: 0,
    trigger_type: j.triggerType,
    run_at: now,
    locked_by: null,
    created_at: now,
    kind: j.kind ?? "outbound",
  }));
  for (let i = 0; i < rows.length; i += CHUNK) await db.insertInto("jobs").values(rows.slice(i, i + CHUNK)).execute();
}
