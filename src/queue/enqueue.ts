import type { Db } from "../store/index.js";
import { newId } from "../ids/index.js";

/** Queues one delivery of `msgId` to `endpointId` (resend uses the manual trigger). */
export async function enqueueJob(
  db: Db,
  job: { orgId: string; appId: string; msgId: string; endpointId: string; triggerType: number; now: number },
): Promise<string> {
  const id = newId("job");
  await db
    .insertInto("jobs")
    .values({
      id,
      org_id: job.orgId,
      scope_id: job.appId,
      item_id: job.msgId,
      destination_id: job.endpointId,
      attempt: 0,
      trigger_type: job.triggerType,
      run_at: job.now,
      locked_by: null,
      created_at: job.now,
    })
    .execute();
  return id;
}
