import type { AttemptInsert } from "../queue/complete-jobs.js";
import type { JobRow } from "../queue/types.js";
import type { SendResult } from "./http-sender.js";

/** What the health gates read of a destination's row (endpoints and bucket outputs alike). */
export interface DestinationHealth {
  id: string;
  consecutive_failures: number;
  circuit_open_until: number | null;
  rate_limit: number | null;
}

/** A bucket output as the engine sees it: its health, whether it is disabled, its bucket. */
export interface ForwardDestination {
  readonly output: DestinationHealth & { readonly disabled: number };
  readonly bucket: { readonly id: string };
}

/** Whether a forward can go out from this node now. */
export type Readiness =
  | { go: true }
  /** Not from here now (no agent connected here serves the bucket): try again later. */
  | { go: false; wait: true }
  /** Given up for good (an agent output's resend window ran out): record this attempt. */
  | { go: false; expired: AttemptInsert };

/**
 * Forward jobs (inbound requests to their bucket's outputs) as the engine runs them, without
 * knowing ingress or agents: ingress/ provides it (`forwardRunner`: loading, URL outputs, and
 * agent outputs through the agents' relay), server/ hands it to the worker. The engine keeps the
 * gates (breaker, rate limit, concurrency), retries and the recording.
 */
export interface ForwardRunner {
  /** The requests (in the clear) and targets of these jobs; `known` are requests already held. */
  load(jobs: readonly JobRow[], known?: ReadonlyMap<string, unknown>): Promise<{ requests: ReadonlyMap<string, unknown>; targets: ReadonlyMap<string, ForwardDestination> }>;
  readiness(job: JobRow, target: ForwardDestination, now: number): Readiness;
  /** One attempt; `answerLimit`: keep that many bytes of the answer (a caller waits for it). */
  deliver(job: JobRow, target: ForwardDestination, request: unknown, signal: AbortSignal, answerLimit?: number): Promise<{ result: SendResult; attempt: AttemptInsert }>;
  /** Buckets an agent connected to this node serves (the claim passes over the others' agent jobs). */
  servedBuckets(): string[];
  /** The outputs' health changed (a circuit opened, an output was disabled or recovered). */
  invalidate(): void;
}
