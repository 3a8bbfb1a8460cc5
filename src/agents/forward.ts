import type { Context } from "../context/index.js";
import type { SendResult } from "../delivery/http-sender.js";
import { forwardAttempt, forwardSpan, forwardedHeaders, forwardedQuery, transformForward, type ForwardTarget } from "../ingress/forward.js";
import type { StoredRequest } from "../ingress/stored-request.js";
import type { AttemptInsert } from "../queue/complete-jobs.js";
import type { JobRow } from "../queue/types.js";
import type { AgentRelay } from "../ingress/agent-relay.js";
import type { AgentHub } from "./hub.js";
import { agentModeOfBucket } from "./tokens.js";
import type { FunctionRunner } from "../functions/runner.js";

/**
 * One delivery of an inbound request through an agent: the same request a URL output would get
 * (hop-by-hop headers and the bucket's credentials removed, body byte for byte), pushed over the
 * agent's WebSocket; the agent's ack is the attempt's result.
 */
export async function performAgentForward(
  ctx: Context,
  hub: AgentHub,
  job: Pick<JobRow, "org_id" | "scope_id" | "item_id" | "trigger_type">,
  target: ForwardTarget,
  stored: StoredRequest,
  signal?: AbortSignal,
  functions?: FunctionRunner,
): Promise<{ result: SendResult; attempt: AttemptInsert }> {
  const { config, clock } = ctx;
  // Traced like a URL output's forward: a child of the ingress span stored with the request.
  const { traceparent, done } = forwardSpan(ctx, job, target, stored, "agent");
  // The same transformations as a URL output's: the agent receives the shaped request, or nothing.
  const shaped = await transformForward(ctx, functions, job, target, stored);
  if ("early" in shaped) return done(shaped.early);
  stored = shaped.stored;
  const headers = forwardedHeaders(target, stored);
  // The internal service joins the trace one hop further down (the provider's own is replaced).
  if (traceparent !== undefined) headers.traceparent = traceparent;
  const { result, via } = await hub.deliver(
    target.bucket.id,
    {
      requestId: job.item_id,
      bucket: target.bucket.name,
      method: stored.method,
      path: stored.suffix,
      query: forwardedQuery(target, stored).toString(),
      headers: Object.entries(headers),
      body: stored.body.toString("base64"),
    },
    { broadcast: target.output.broadcast === 1, timeoutMs: config.requestTimeout, ...(signal ? { signal } : {}) },
  );
  return done({ result, attempt: forwardAttempt(job, target, result, via, true, clock.now()) });
}

/**
 * Makes the bucket's unacknowledged agent deliveries due now (an agent just connected), going
 * back `resendWindow`; older ones are expired by the worker when it meets them.
 */
export async function resendToAgents(ctx: Context, bucketIds: string[]): Promise<number> {
  if (bucketIds.length === 0) return 0;
  const now = ctx.clock.now();
  const res = await ctx.store.db
    .updateTable("jobs")
    .set({ run_at: now })
    .where("kind", "=", "forward")
    .where("locked_by", "is", null)
    .where("run_at", ">", now)
    .where("created_at", ">=", now - ctx.config.resendWindow)
    .where("destination_id", "in", (eb) => eb.selectFrom("outputs").select("id").where("bucket_id", "in", bucketIds).where("type", "=", "agent"))
    .executeTakeFirst();
  return Number(res.numUpdatedRows);
}

/** The agents of this node as ingress sees them (`AgentRelay`): serving modes and forwards. */
export function agentRelay(ctx: Context, hub: AgentHub, functions?: FunctionRunner): AgentRelay {
  return {
    serves: (bucketId) => hub.serves(bucketId),
    servedBuckets: () => hub.servedBuckets(),
    servingOf: async (orgId, bucketId) => hub.modeFor(bucketId) ?? (await agentModeOfBucket(ctx, orgId, bucketId)),
    forward: (job, target, stored, signal) => performAgentForward(ctx, hub, job, target, stored, signal, functions),
  };
}
