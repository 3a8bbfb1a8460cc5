import type { Context } from "../context/index.js";
import type { DestinationKind, Loaded, Readiness } from "../engine/kind.js";
import type { HttpSender } from "../delivery/http-sender.js";
import type { FunctionRunner } from "../functions/runner.js";
import type { JobRow } from "../queue/types.js";
import type { ErrorCode } from "../errors/index.js";
import type { AgentRelay } from "./agent-relay.js";
import type { HeldRequests } from "./held-requests.js";
import { forwardAttempt, loadForwardContexts, performForward, type ForwardTarget } from "./forward.js";
import type { OutputCache } from "./output-cache.js";
import type { StoredRequest } from "./stored-request.js";

/**
 * A forward job as loaded: the output (its health is the destination's), its bucket, the request;
 * `undefined` for an ephemeral bucket's request no longer in memory (its holder stopped).
 */
export interface ForwardLoaded extends Loaded {
  readonly destination: ForwardTarget["output"];
  readonly item: StoredRequest | undefined;
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
export function forwardKind(
  ctx: Context,
  sender: HttpSender,
  opts: { outputs?: OutputCache; functions?: FunctionRunner; relay?: AgentRelay; held?: HeldRequests } = {},
): DestinationKind<ForwardLoaded> {
  const { outputs, functions, relay, held } = opts;
  /** A forward given up before any attempt, recorded as a failed attempt that says why. */
  const givenUp = (job: JobRow, target: ForwardTarget, now: number, url: string, errorCode: ErrorCode, why: string): Readiness => ({
    go: false,
    expired: forwardAttempt(job, target, { ok: false, statusCode: 0, headers: {}, body: "", durationMs: 0, errorCode, errorDetail: why }, url, true, now),
  });
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
      // Ephemeral requests held here are never read from storage (nothing of them is there).
      const have = new Map(known as ReadonlyMap<string, StoredRequest> | undefined);
      for (const job of jobs) {
        const stored = have.has(job.item_id) ? undefined : held?.get(job.item_id);
        if (stored) have.set(job.item_id, stored);
      }
      const { requests, targets } = await loadForwardContexts(ctx, jobs, have, outputs);
      const loaded = new Map<string, ForwardLoaded>();
      for (const job of jobs) {
        const target = targets.get(job.destination_id);
        if (!target) continue;
        const stored = requests.get(job.item_id);
        if (stored || target.bucket.ephemeral === 1) loaded.set(job.id, { destination: target.output, item: stored, target });
      }
      return loaded;
    },
    readiness(job, { target, item }, now): Readiness {
      const url = target.output.type === "agent" ? "agent" : (target.output.url ?? "");
      if (!item) return givenUp(job, target, now, url, "E_EPHEMERAL_LOST", "The process holding this ephemeral request stopped before it was delivered; an ephemeral bucket keeps no copy");
      if (target.output.type !== "agent") return { go: true };
      // Unacknowledged for longer than the resend window: given up, visibly.
      if (job.created_at < now - ctx.config.resendWindow) return givenUp(job, target, now, url, "E_AGENT_RESEND_EXPIRED", "No agent acknowledged this request within the resend window");
      // No agent here now: wait (an agent connecting anywhere makes these due again).
      return relay?.serves(target.bucket.id) ? { go: true } : { go: false, wait: AGENT_WAIT_MS };
    },
    deliver: (job, { target, item }, signal, answerLimit) =>
      target.output.type === "agent" && relay ? relay.forward(job, target, item!, signal) : performForward(ctx, sender, job, target, item!, signal, answerLimit, functions),
    finished: (job) => held?.release(job.item_id),
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
