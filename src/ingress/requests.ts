import type { Context } from "../context/index.js";
import { HookwardenError } from "../errors/index.js";
import { newId } from "../ids/index.js";
import { TRIGGER_MANUAL } from "../queue/types.js";
import type { BucketRow } from "./buckets.js";
import { openRequest, type StoredRequest } from "./stored-request.js";

export interface RequestSummary {
  id: string;
  inputId: string;
  receivedAt: number;
  size: number;
  statusCode: number;
}

export async function listRequests(ctx: Context, bucket: BucketRow, opts: { limit: number; iterator: string | undefined }): Promise<RequestSummary[]> {
  let q = ctx.store.db.selectFrom("inbound_requests").select(["id", "input_id", "received_at", "size", "status_code"]).where("bucket_id", "=", bucket.id);
  if (opts.iterator) q = q.where("id", "<", opts.iterator);
  const rows = await q.orderBy("id", "desc").limit(opts.limit + 1).execute();
  return rows.map((r) => ({ id: r.id, inputId: r.input_id, receivedAt: r.received_at, size: r.size, statusCode: r.status_code }));
}

/** A stored request, decrypted for an authorised caller; ephemeral buckets have nothing to show. */
export async function getRequest(ctx: Context, bucket: BucketRow, id: string): Promise<RequestSummary & { request: StoredRequest | null }> {
  const row = await ctx.store.db.selectFrom("inbound_requests").selectAll().where("bucket_id", "=", bucket.id).where("id", "=", id).executeTakeFirst();
  if (!row) throw HookwardenError.notFound("Request");
  return {
    id: row.id,
    inputId: row.input_id,
    receivedAt: row.received_at,
    size: row.size,
    statusCode: row.status_code,
    request: row.data_enc === null ? null : openRequest(ctx.keyring, row.id, row.data_enc),
  };
}

/** Queues the stored request to every enabled output again (manual trigger). */
export async function replayRequest(ctx: Context, bucket: BucketRow, id: string): Promise<number> {
  const row = await ctx.store.db.selectFrom("inbound_requests").select(["id", "data_enc"]).where("bucket_id", "=", bucket.id).where("id", "=", id).executeTakeFirst();
  if (!row) throw HookwardenError.notFound("Request");
  if (row.data_enc === null) throw new HookwardenError("E_CONFLICT", 409, "Requests of ephemeral buckets are not stored and cannot be replayed");
  const now = ctx.clock.now();
  return ctx.store.db.transaction().execute(async (trx) => {
    const outputs = await trx.selectFrom("outputs").select(["id"]).where("bucket_id", "=", bucket.id).where("disabled", "=", 0).execute();
    if (outputs.length === 0) return 0;
    await trx
      .insertInto("jobs")
      .values(
        outputs.map((o) => ({
          id: newId("job"),
          org_id: bucket.org_id,
          app_id: bucket.id,
          msg_id: row.id,
          endpoint_id: o.id,
          attempt: 0,
          trigger_type: TRIGGER_MANUAL,
          run_at: now,
          locked_by: null,
          created_at: now,
          kind: "forward",
        })),
      )
      .execute();
    await ctx.store.notifyJobs(trx);
    return outputs.length;
  });
}
