import type { Context } from "../context/index.js";
import type { DestinationKind, Loaded, Readiness } from "../engine/kind.js";
import type { HttpSender } from "../delivery/http-sender.js";
import { ATTEMPT_FAIL } from "../delivery/attempt.js";
import type { FunctionRunner } from "../functions/runner.js";
import { newId } from "../ids/index.js";
import type { JobRow } from "../queue/types.js";
import type { AgentRelay } from "./agent-relay.js";
import { loadForwardContexts, performForward, type ForwardTarget } from "./forward.js";
import type { OutputCache } from "./output-cache.js";
import type { StoredRequest } from "./stored-request.js";

/** A forward job as loaded: the output (its health is the destination's), its bucket, the request. */
export interface ForwardLoaded extends Loaded {
  readonly destination: ForwardTarget["output"];
  readonly item: StoredRequest;
  readonly target: ForwardTarget;
}

/** What the engine needs to send one forward: `target` to send `stored` to. */
export function forwardLoaded(target: ForwardTarget, stored: StoredRequest): ForwardLoaded {
  return { destination: target.output, item: stored, target };
}

/** No agent here, or it went away mid-request (no attempt at the destination): look again then. */
const AGENT_WAIT_MS = 5_000;

/**
 * The engine's `forward` jobs: an inbound request to one of its bucket's outputs. A URL output is
 * sent over HTTP; an agent output goes through the agents connected to this node (`relay`, which
 * agents/ provides; none on a node without them). Outputs are read through a 2 s cache, dropped
 * when an output's circuit opens, it is disabled or recovers, so the gates see the change now.
 */
export function forwardKind(ctx: Context, sender: HttpSender, opts: { outputs?: OutputCache; functions?: FunctionRunner; relay?: AgentRelay } = {}): DestinationKind<ForwardLoaded> {
  const { outputs, functions, relay } = opts;
  if (outputs) {
    ctx.events.on("output:circuit-opened", () => outputs.invalidate());
    ctx.events.on("output:disabled", () => outputs.invalidate());
    ctx.events.on("output:recovered", () => outputs.invalidate());
  }
  return {
    job: "forward",
    table: "outputs",
    health: "output",
    async load(jobs, known) {
      const { requests, targets } = await loadForwardContexts(ctx, jobs, known as ReadonlyMap<string, StoredRequest> | undefined, outputs);
      const loaded = new Map<string, ForwardLoaded>();
      for (const job of jobs) {
        const stored = requests.get(job.item_id);
        const target = targets.get(job.destination_id);
        if (stored && target) loaded.set(job.id, forwardLoaded(target, stored));
      }
      return loaded;
    },
    readiness(job, { target }, now): Readiness {
      if (target.output.type !== "agent") return { go: true };
      // Unacknowledged for longer than the resend window: given up, visibly.
      if (job.created_at < now - ctx.config.resendWindow) {
        return {
          go: false,
          expired: {
            id: newId("atmpt"),
            org_id: job.org_id,
            scope_id: job.scope_id,
            item_id: job.item_id,
            destination_id: target.output.id,
            kind: "forward",
            url: "agent",
            status: ATTEMPT_FAIL,
            response_status_code: 0,
            response: "No agent acknowledged this request within the resend window",
            duration_ms: 0,
            trigger_type: job.trigger_type,
            error_code: "E_AGENT_RESEND_EXPIRED",
            tls_verify: 1,
            created_at: now,
            request: null,
          },
        };
      }
      // No agent here now: wait (an agent connecting anywhere makes these due again).
      return relay?.serves(target.bucket.id) ? { go: true } : { go: false, wait: AGENT_WAIT_MS };
    },
    deliver: (job, { target, item }, signal, answerLimit) =>
      target.output.type === "agent" && relay ? relay.forward(job, target, item, signal) : performForward(ctx, sender, job, target, item, signal, answerLimit, functions),
    notAttempted: (result) => (result.errorCode === "E_AGENT_DISCONNECTED" || result.errorCode === "E_AGENT_UNAVAILABLE" ? AGENT_WAIT_MS : undefined),
    attempted(job: JobRow, { target }, { result }, willRetry) {
      ctx.events.emit("forward:attempted", {
        orgId: job.org_id,
        bucketId: job.scope_id,
        outputId: target.output.id,
        requestId: job.item_id,
        outcome: result.ok ? "success" : "failure",
        statusCode: result.statusCode,
        errorCode: result.errorCode,
        durationMs: result.durationMs,
        willRetry,
      });
    },
    servedBuckets: () => relay?.servedBuckets() ?? [],
  };
}
