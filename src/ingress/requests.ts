import type { Context } from "../context/index.js";
import { HookwardenError } from "../errors/index.js";
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

/** A row of the requests list: an accepted request, or a refused one (no body, no headers kept). */
export interface ListedRequest extends RequestSummary {
  status: "accepted" | "rejected";
  method: string | null;
  /** Rejected only: the machine code (`E_SIGNATURE_INVALID`, ...) and the reason. */
  rejectionCode: string | null;
  rejectionReason: string | null;
}

export type RequestStatusFilter = "accepted" | "rejected" | "all";

/** The time-ordered part of an id (`req_…` and `rej_…` share one ULID order). */
const ulidOf = (id: string): string => id.slice(id.indexOf("_") + 1);

/**
 * A bucket's requests, newest first: accepted ones, rejected ones, or both merged by time (each
 * table read on its (bucket_id, id) index, `limit + 1` rows each). The iterator is the last id
 * seen, of either kind.
 */
export async function listRequests(ctx: Context, bucket: BucketRow, opts: { limit: number; iterator: string | undefined; status?: RequestStatusFilter }): Promise<ListedRequest[]> {
  const status = opts.status ?? "accepted";
  const after = opts.iterator === undefined ? undefined : ulidOf(opts.iterator);
  const out: ListedRequest[] = [];
  if (status !== "rejected") {
    let q = ctx.store.db.selectFrom("inbound_requests").select(["id", "input_id", "received_at", "size", "status_code"]).where("bucket_id", "=", bucket.id);
    if (after !== undefined) q = q.where("id", "<", `req_${after}`);
    for (const r of await q.orderBy("id", "desc").limit(opts.limit + 1).execute()) {
      out.push({ id: r.id, inputId: r.input_id, receivedAt: r.received_at, size: r.size, statusCode: r.status_code, status: "accepted", method: null, rejectionCode: null, rejectionReason: null });
    }
  }
  if (status !== "accepted") {
    let q = ctx.store.db.selectFrom("inbound_rejections").select(["id", "input_id", "at", "status_code", "code", "method", "reason"]).where("bucket_id", "=", bucket.id);
    if (after !== undefined) q = q.where("id", "<", `rej_${after}`);
    for (const r of await q.orderBy("id", "desc").limit(opts.limit + 1).execute()) out.push(rejectionOut(r));
  }
  if (status === "all") out.sort((a, b) => (ulidOf(a.id) < ulidOf(b.id) ? 1 : -1));
  return out.slice(0, opts.limit + 1);
}

export function rejectionOut(r: { id: string; input_id: string; at: number; status_code: number; code: string | null; method: string | null; reason: string }): ListedRequest {
  const code = r.code ?? r.reason.split(":", 1)[0] ?? "";
  const reason = r.reason.startsWith(`${code}: `) ? r.reason.slice(code.length + 2) : r.reason;
  return { id: r.id, inputId: r.input_id, receivedAt: r.at, size: 0, statusCode: r.status_code, status: "rejected", method: r.method, rejectionCode: code, rejectionReason: reason };
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
  return ctx.queue.transaction(async (trx, queue) => {
    const outputs = await trx.selectFrom("outputs").select(["id"]).where("bucket_id", "=", bucket.id).where("disabled", "=", 0).execute();
    await queue.enqueue(
      outputs.map((o) => ({ orgId: bucket.org_id, appId: bucket.id, msgId: row.id, endpointId: o.id, triggerType: TRIGGER_MANUAL, kind: "forward" as const })),
      now,
    );
    return outputs.length;
  });
}
