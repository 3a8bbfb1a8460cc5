import type { SendResult } from "../delivery/http-sender.js";
import type { AttemptInsert } from "../queue/complete-jobs.js";
import type { JobRow } from "../queue/types.js";
import type { ForwardTarget } from "./forward.js";
import type { StoredRequest } from "./stored-request.js";

/** How agents serve a bucket: `forward` (fire and acknowledge) or `tunnel` (the answer comes back). */
export type AgentServing = "forward" | "tunnel";

/**
 * What ingress asks of the agents (outbound-connecting relays into private networks): agents/
 * provides it (`agentRelay`), server/ wires it in, so ingress never imports agents/.
 */
export interface AgentRelay {
  /** Whether an agent connected to this node serves the bucket. */
  serves(bucketId: string): boolean;
  /** The buckets agents connected to this node serve. */
  servedBuckets(): string[];
  /** How a bucket's requests reach its agents: from an agent connected here, else from its tokens. */
  servingOf(orgId: string, bucketId: string): Promise<AgentServing | undefined>;
  /** One delivery of a request through an agent connected to this node; its ack is the attempt. */
  forward(
    job: Pick<JobRow, "org_id" | "scope_id" | "item_id" | "trigger_type">,
    target: ForwardTarget,
    stored: StoredRequest,
    signal?: AbortSignal,
  ): Promise<{ result: SendResult; attempt: AttemptInsert }>;
}
