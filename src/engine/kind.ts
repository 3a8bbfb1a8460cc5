import type { ErrorCode } from "../errors/index.js";
import type { AttemptInsert } from "../queue/complete-jobs.js";
import type { JobRow } from "../queue/types.js";

/** What one attempt at a destination came to, whatever its kind (HTTP, broker, agent). */
export interface SendResult {
  ok: boolean;
  statusCode: number;
  headers: Record<string, string>;
  /** The first `responseBodyLimit` bytes of the response, as text. */
  body: string;
  /** The answer was longer than `body` (cut at `responseBodyLimit`): its tail may hold half a secret. */
  truncated?: boolean;
  /** The answer's bytes, up to `answerLimit`: only when the request asked for them. */
  raw?: Buffer;
  durationMs: number;
  errorCode: ErrorCode | null;
  /** Why it failed, without secrets: no URL, no header values. */
  errorDetail: string | null;
}

/** What the health gates read of a destination's row (endpoints and bucket outputs alike). */
export interface DestinationHealth {
  id: string;
  consecutive_failures: number;
  circuit_open_until: number | null;
  rate_limit: number | null;
}

/** A destination as the engine sees it: its health and whether it is disabled. */
export interface Destination extends DestinationHealth {
  readonly disabled: number;
}

/** What a kind loaded for one job: where it goes (its health included) and what it carries. */
export interface Loaded {
  readonly destination: Destination;
  readonly item: unknown;
}

/** Whether a job can go out from this node now. */
export type Readiness =
  | { go: true }
  /** Not from here now (no agent connected here serves the bucket): try again in `wait` ms (+ jitter). */
  | { go: false; wait: number }
  /** Given up for good (an agent output's resend window ran out): record this attempt. */
  | { go: false; expired: AttemptInsert };

/** One attempt as a kind made it: its result and its description for the attempt record. */
export interface Attempted {
  result: SendResult;
  attempt: AttemptInsert;
}

/**
 * A kind of destination the engine delivers to, one per job kind (`jobs.kind`), registered at
 * start-up by the composition root (`server/`). The engine keeps the queue, the slots, the gates
 * every destination passes (circuit breaker, per-destination concurrency, rate limit), retries and
 * the recording; a kind only loads its jobs, makes one attempt, and says what became of it. The
 * engine imports no kind; kinds import this file.
 *
 * - `outbound` (delivery/endpoint-kind.ts): a message to an application's endpoint, signed
 *   (Standard Webhooks), over HTTP or to the broker its URL's scheme names (destinations/).
 * - `forward` (ingress/forward-kind.ts): an inbound request to one of its bucket's outputs, a URL
 *   over HTTP or an agent connected to this node (agents/, through ingress/AgentRelay).
 */
export interface DestinationKind<L extends Loaded = Loaded> {
  /** The `jobs.kind` this kind runs. */
  readonly job: string;
  /** The table holding its destinations' health columns (the breaker's half-open probe updates it). */
  readonly table: "endpoints" | "outputs";
  /** Which health table the recorder updates (`HealthSignal.destination`). */
  readonly health: "endpoint" | "output";
  /**
   * What these jobs need, by job id; a job missing from the answer is dropped (its item or its
   * destination is gone). `known`: items already in memory (the hand-off's), by `job.item_id`.
   */
  load(jobs: readonly JobRow[], known?: ReadonlyMap<string, unknown>): Promise<ReadonlyMap<string, L>>;
  /** Whether the job can go out from this node now; absent: always. */
  readiness?(job: JobRow, loaded: L, now: number): Readiness;
  /**
   * One attempt; never throws for a destination's failure. `answerLimit`: keep that many bytes of
   * the destination's answer (a caller waits for it).
   */
  deliver(job: JobRow, loaded: L, signal: AbortSignal, answerLimit?: number): Promise<Attempted>;
  /**
   * Milliseconds to wait before sending again when the result was no attempt at the destination
   * (the agent that was to carry it went away); `undefined`: it was an attempt, retried on the
   * schedule. Absent: every result is an attempt.
   */
  notAttempted?(result: SendResult): number | undefined;
  /**
   * The job is over for good (delivered, given up, or dropped) and that is committed: a kind
   * holding its item in memory lets it go.
   */
  finished?(job: JobRow): void;
  /** Emits the kind's typed event for a recorded attempt (metrics, logs, operational webhooks). */
  attempted(job: JobRow, loaded: L, out: Attempted, willRetry: boolean, now: number): void;
  /**
   * Buckets whose agent outputs an agent connected to this node serves: the claim passes over the
   * other buckets' agent jobs, which another node can send (`queue/claim-jobs.ts`).
   */
  servedBuckets?(): string[];
}

/** The kinds a worker runs, by `jobs.kind`. */
export class DestinationKinds {
  // Each kind checks its own `L`; the engine hands back only what that kind loaded.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly #byJob = new Map<string, DestinationKind<any>>();

  register<L extends Loaded>(kind: DestinationKind<L>): this {
    if (this.#byJob.has(kind.job)) throw new Error(`Two destination kinds run ${kind.job} jobs`);
    this.#byJob.set(kind.job, kind);
    return this;
  }

  get(job: string): DestinationKind | undefined {
    return this.#byJob.get(job);
  }

  /** Every bucket an agent connected to this node serves, whatever kind knows of it. */
  servedBuckets(): string[] {
    return [...this.#byJob.values()].flatMap((k) => k.servedBuckets?.() ?? []);
  }
}
