import type { Context } from "../context/index.js";
import type { ForwardDestination, ForwardRunner, Readiness } from "../delivery/forwards.js";
import type { HttpSender } from "../delivery/http-sender.js";
import { ATTEMPT_FAIL } from "../delivery/attempt.js";
import type { FunctionRunner } from "../functions/runner.js";
import { newId } from "../ids/index.js";
import type { AgentRelay } from "./agent-relay.js";
import { loadForwardContexts, performForward, type ForwardTarget } from "./forward.js";
import type { OutputCache } from "./output-cache.js";
import type { StoredRequest } from "./stored-request.js";

/**
 * The engine's forward jobs, run by ingress: URL outputs over HTTP, agent outputs through the
 * agents connected to this node (`relay`; none on a node without them).
 */
export function forwardRunner(ctx: Context, sender: HttpSender, opts: { outputs?: OutputCache; functions?: FunctionRunner; relay?: AgentRelay } = {}): ForwardRunner {
  const { outputs, functions, relay } = opts;
  return {
    load: (jobs, known) => loadForwardContexts(ctx, jobs, known as ReadonlyMap<string, StoredRequest> | undefined, outputs),
    readiness(job, dest, now): Readiness {
      const target = dest as ForwardTarget;
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
      return relay?.serves(target.bucket.id) ? { go: true } : { go: false, wait: true };
    },
    deliver: (job, dest: ForwardDestination, request, signal, answerLimit) => {
      const target = dest as ForwardTarget;
      const stored = request as StoredRequest;
      return target.output.type === "agent" && relay
        ? relay.forward(job, target, stored, signal)
        : performForward(ctx, sender, job, target, stored, signal, answerLimit, functions);
    },
    servedBuckets: () => relay?.servedBuckets() ?? [],
    invalidate: () => outputs?.invalidate(),
  };
}
