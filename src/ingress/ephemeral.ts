import type { Context } from "../context/index.js";
import type { HttpSender, SendResult } from "../delivery/http-sender.js";
import { nextRunAt } from "../engine/retry-schedule.js";
import type { JobRow } from "../queue/types.js";
import { SecretValue } from "../vault/secret-value.js";
import type { BucketRow } from "./buckets.js";
import { performForward, type ForwardTarget } from "./forward.js";
import { outputAad, type OutputRow } from "./outputs.js";
import { toStored, type StoredRequest } from "./stored-request.js";
import type { AgentRelay } from "./agent-relay.js";
import type { ReceivedRequest } from "./types.js";
import type { FunctionRunner } from "../functions/runner.js";

const MAX_PENDING = 10_000;

/**
 * Forwarding for ephemeral buckets, which keep no body, header or query in storage: the request
 * lives only in this process's memory until every output took it or its retries ran out. This is
 * the documented trade of an ephemeral bucket: privacy over durability (a crash loses what is
 * still pending here). Attempts are recorded with status and time only.
 */
export class EphemeralForwarder {
  readonly #ctx: Context;
  readonly #sender: HttpSender;
  readonly #random: () => number;
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #abort = new AbortController();
  #pending = 0;
  #agents: AgentRelay | undefined;
  readonly #functions: FunctionRunner | undefined;

  /** `functions`: the sandbox running the input's and the outputs' transformations. */
  constructor(ctx: Context, sender: HttpSender, random: () => number = Math.random, functions?: FunctionRunner) {
    this.#ctx = ctx;
    this.#sender = sender;
    this.#random = random;
    this.#functions = functions;
  }

  useAgents(relay: AgentRelay): void {
    this.#agents = relay;
  }

  get pending(): number {
    return this.#pending;
  }

  /** Whether another request can be taken without exceeding the memory bound. */
  hasRoom(outputs: number): boolean {
    return this.#pending + outputs <= MAX_PENDING;
  }

  target(bucket: BucketRow, output: OutputRow): ForwardTarget {
    const signingSecret = output.signing_secret_enc === null ? undefined : new SecretValue(this.#ctx.keyring.openString(output.signing_secret_enc, outputAad(output.id)));
    return { output, bucket, signingSecret };
  }

  /** Starts delivery to each URL output (all but the first when the caller is delivering that one). */
  forward(requestId: string, bucket: BucketRow, outputs: readonly OutputRow[], req: ReceivedRequest, inputId: string, skipFirst = false): void {
    const stored: StoredRequest = { ...toStored(req), inputId, trace: req.traceContext };
    outputs.forEach((o, i) => {
      if (skipFirst && i === 0) return;
      this.#pending++;
      // #attempt has logged the failure; left unhandled, the rejection (a failed attempt insert
      // when the database blips) would end the whole process under Node's default policy.
      this.#attempt(requestId, bucket, this.target(bucket, o), stored, 0).catch(() => {});
    });
  }

  /** Delivers to one output now and returns its answer; failures continue on the retry schedule. */
  deliverNow(requestId: string, bucket: BucketRow, output: OutputRow, req: ReceivedRequest, inputId: string): Promise<SendResult> {
    this.#pending++;
    return this.#attempt(requestId, bucket, this.target(bucket, output), { ...toStored(req), inputId, trace: req.traceContext }, 0, this.#ctx.config.maxPayloadSize);
  }

  async #attempt(requestId: string, bucket: BucketRow, target: ForwardTarget, stored: StoredRequest, attempt: number, answerLimit?: number): Promise<SendResult> {
    const { config, clock, logger, store, events } = this.#ctx;
    const job: Pick<JobRow, "org_id" | "scope_id" | "item_id" | "trigger_type"> = { org_id: bucket.org_id, scope_id: bucket.id, item_id: requestId, trigger_type: 0 };
    let result: SendResult;
    try {
      const out =
        target.output.type === "agent" && this.#agents
          ? await this.#agents.forward(job, target, stored, this.#abort.signal)
          : await performForward(this.#ctx, this.#sender, job, target, stored, this.#abort.signal, answerLimit, this.#functions);
      result = out.result;
      await store.db.insertInto("attempts").values(out.attempt).execute();
    } catch (err) {
      logger.error({ err, requestId }, "ephemeral forward failed unexpectedly");
      this.#pending--;
      throw err;
    }
    const retryAt = result.ok ? undefined : nextRunAt(config.retrySchedule, attempt, clock.now(), this.#random);
    events.emit("forward:attempted", {
      orgId: bucket.org_id,
      bucketId: bucket.id,
      outputId: target.output.id,
      requestId,
      outcome: result.ok ? "success" : "failure",
      statusCode: result.statusCode,
      errorCode: result.errorCode,
      durationMs: result.durationMs,
      willRetry: retryAt !== undefined && !this.#abort.signal.aborted,
    });
    if (retryAt === undefined || this.#abort.signal.aborted) {
      this.#pending--;
      return result;
    }
    const t = setTimeout(() => {
      this.#timers.delete(t);
      void this.#attempt(requestId, bucket, target, stored, attempt + 1).catch(() => {});
    }, Math.max(0, retryAt - clock.now()));
    t.unref();
    this.#timers.add(t);
    return result;
  }

  stop(): void {
    this.#abort.abort();
    for (const t of this.#timers) clearTimeout(t);
    if (this.#timers.size > 0) this.#ctx.logger.warn({ pending: this.#timers.size }, "ephemeral forwards still retrying were dropped at shutdown");
    this.#timers.clear();
  }
}
