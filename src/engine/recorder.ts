import type { Context } from "../context/index.js";
import { completeJobs, onlyFinished, recordFinished, type JobOutcome } from "../queue/complete-jobs.js";
import type { Db } from "../store/index.js";
import { isStorageFault } from "../store/errors.js";
import type { LifecycleEvents } from "../events/index.js";

type GoneEvent =
  | { event: "endpoint:disabled"; payload: LifecycleEvents["endpoint:disabled"] }
  | { event: "output:disabled"; payload: LifecycleEvents["output:disabled"] };

/**
 * Standard Webhooks: a receiver answering `410 Gone` asks never to be called again. Its endpoint
 * (or bucket output) is disabled with the reason shown by the API, in the transaction that records
 * the attempt; jobs still queued for it are dropped when claimed (a disabled endpoint's are).
 * Only HTTP answers carry `E_ENDPOINT_GONE` (set by HttpSender), never a broker or an agent.
 */
/** A success of a destination with no known failure streak: nothing for health to write. */
function uneventful(s: HealthSignal): boolean {
  return s.ok && s.knownFailures === 0;
}

/** An attempt answered 410 Gone: its destination is disabled (`disableGone`). */
function endpointGone(o: JobOutcome): o is Extract<JobOutcome, { attempt: unknown }> {
  return (o.kind === "done" || o.kind === "retry") && o.attempt.error_code === "E_ENDPOINT_GONE";
}

async function disableGone(trx: Db, outcomes: readonly JobOutcome[], now: number): Promise<GoneEvent[]> {
  const events: GoneEvent[] = [];
  const seen = new Set<string>();
  for (const o of outcomes) {
    if (!endpointGone(o) || seen.has(o.job.destination_id)) continue;
    seen.add(o.job.destination_id);
    const reason = `Disabled automatically: the endpoint answered 410 Gone at ${new Date(o.attempt.created_at).toISOString()} (attempt ${o.attempt.id})`;
    const table = o.job.kind === "forward" ? "outputs" : "endpoints";
    const res = await trx
      .updateTable(table)
      .set({ disabled: 1, disabled_reason: reason, updated_at: now })
      .where("id", "=", o.job.destination_id)
      .where("disabled", "=", 0)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) continue;
    if (table === "outputs") events.push({ event: "output:disabled", payload: { outputId: o.job.destination_id, bucketId: o.job.scope_id, orgId: o.job.org_id, reason } });
    else events.push({ event: "endpoint:disabled", payload: { endpointId: o.job.destination_id, reason, trigger: "automatic" } });
  }
  return events;
}
import { parkJobs, unparkJobs } from "../queue/park-jobs.js";

/** One attempt's effect on its destination's health: an endpoint, or a bucket's URL output. */
export interface HealthSignal {
  endpointId: string;
  /** Which table keeps the destination's health; `endpoint` when absent. */
  destination?: "endpoint" | "output";
  ok: boolean;
  at: number;
  /** `consecutive_failures` as read when the job was claimed. */
  knownFailures: number;
}

/** Outcomes per transaction, and the most a worker may hold unrecorded (see `saturated`). */
export const RECORDER_MAX_BATCH = 500;
const MAX_BATCH = RECORDER_MAX_BATCH;
/**
 * Under a steady stream of results, at most one commit per this many milliseconds (real time, not
 * the injectable clock): results that finish meanwhile share it. A result that follows a quiet
 * spell is written at once, as is everything when a caller waits (`flush`) or a quarter batch is
 * queued. At 2,500 deliveries/s this turns about one commit per two results into one per twelve.
 */
const STREAM_INTERVAL_MS = 5;
const EAGER = MAX_BATCH / 4;

/**
 * Writes delivery results in batches: one transaction for everything that finished while the
 * previous one was committing. Until it commits, a finished job is still leased, so a crash
 * repeats at most the deliveries of the batch in flight (at-least-once, bounded duplicates).
 */
export class Recorder {
  readonly #ctx: Context;
  readonly #workerId: string;
  readonly #onJobsDue: () => void;
  #outcomes: JobOutcome[] = [];
  #signals: HealthSignal[] = [];
  #waiters: (() => void)[] = [];
  /** Run once their outcome is committed (see `add`). */
  readonly #recorded = new Map<JobOutcome, () => void>();
  /** Outcomes added and not yet committed (or given up on): queued plus the batch in flight. */
  #unrecorded = 0;
  #flushing: Promise<void> | undefined;
  #lastCommit = -Infinity;
  #timer: NodeJS.Timeout | undefined;

  /**
   * True while a full batch of results waits to be committed. A crash repeats every delivery
   * whose result is not committed, so the worker starts no new attempt meanwhile: a crash then
   * repeats at most one batch plus the attempts in flight, whatever the database's pace.
   */
  get saturated(): boolean {
    return this.#unrecorded >= MAX_BATCH;
  }

  /**
   * `onJobsDue` runs after a commit that made held-back jobs due now (a closed circuit), or that
   * brought the backlog of results back under a batch (`saturated`).
   */
  constructor(ctx: Context, workerId: string, onJobsDue: () => void = () => {}) {
    this.#ctx = ctx;
    this.#workerId = workerId;
    this.#onJobsDue = onJobsDue;
  }

  /** `recorded`: runs once the outcome is committed (not if the commit fails: the job comes back). */
  add(outcome: JobOutcome, signal?: HealthSignal, recorded?: () => void): void {
    this.#outcomes.push(outcome);
    if (recorded) this.#recorded.set(outcome, recorded);
    this.#unrecorded++;
    if (signal) this.#signals.push(signal);
    this.#kick();
  }

  /** Resolves once everything added so far is committed. */
  flush(): Promise<void> {
    if (this.#outcomes.length === 0 && !this.#flushing) return Promise.resolve();
    return new Promise((resolve) => {
      this.#waiters.push(resolve);
      this.#kick();
    });
  }

  #kick(): void {
    if (this.#flushing) return;
    const urgent = this.#waiters.length > 0 || this.#outcomes.length >= EAGER;
    const wait = urgent ? 0 : this.#lastCommit + STREAM_INTERVAL_MS - performance.now();
    if (wait > 0) {
      this.#timer ??= setTimeout(() => {
        this.#timer = undefined;
        this.#kick();
      }, wait);
      return;
    }
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    // One loop turn first: better-sqlite3 commits synchronously, so results that finish during a
    // commit could never join the next batch; they now share it (one fsync for many attempts).
    this.#flushing = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.#loop()).finally(() => {
      this.#flushing = undefined;
      this.#lastCommit = performance.now();
      if (this.#outcomes.length > 0 || this.#waiters.length > 0) this.#kick();
    });
  }

  async #loop(): Promise<void> {
    while (this.#outcomes.length > 0 || this.#signals.length > 0) {
      const outcomes = this.#outcomes.splice(0, MAX_BATCH);
      const signals = this.#signals.splice(0, this.#signals.length);
      try {
        // Relaxed: a result lost to power failure means the delivery is repeated (at least once),
        // while an fsync per batch blocked the event loop (see Store.relaxed).
        // The usual batch (deliveries done, nothing for health to write) is one statement on
        // PostgreSQL, without a transaction of its own: five round trips fewer per batch.
        const quiet = onlyFinished(outcomes) && !outcomes.some(endpointGone) && !this.#healthWork(signals);
        const { released, gone } = quiet
          ? await this.#ctx.store.leaseWrite(async (db) => {
              await recordFinished(db, this.#workerId, outcomes);
              return { released: false, gone: [] as GoneEvent[] };
            })
          : await this.#ctx.store.relaxed(async (trx) => {
              await completeJobs(trx, this.#workerId, outcomes);
              const gone = await disableGone(trx, outcomes, this.#ctx.clock.now());
              return { released: await this.#applyHealth(trx, signals), gone };
            });
        for (const g of gone) this.#ctx.events.emit(g.event, g.payload);
        if (released) this.#onJobsDue();
        if (this.#recorded.size > 0) for (const o of outcomes) this.#recorded.get(o)?.();
      } catch (err) {
        // The jobs stay leased and come back when the lease ends: delivered again, never lost.
        // A storage fault is logged once per streak by the store (`StorageHealth`).
        const level = isStorageFault(err) ? "warn" : "error";
        this.#ctx.logger[level]({ err, outcomes: outcomes.length }, "could not record delivery results; affected jobs will be retried");
      } finally {
        if (this.#recorded.size > 0) for (const o of outcomes) this.#recorded.delete(o);
        const wasSaturated = this.saturated;
        this.#unrecorded -= outcomes.length;
        if (wasSaturated && !this.saturated) this.#onJobsDue();
      }
    }
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Whether `#applyHealth` would write anything for these signals: a failure, or a streak to reset. */
  #healthWork(signals: readonly HealthSignal[]): boolean {
    return !signals.every(uneventful);
  }

  /**
   * Folds the batch's signals per endpoint in order. A success resets the failure streak; a
   * streak reaching the threshold opens the circuit for the cooldown; a streak older than
   * `disableAfter` disables the endpoint with a recorded reason. Returns true when a success
   * closed an open circuit and the jobs it held back became due.
   */
  async #applyHealth(trx: Db, signals: HealthSignal[]): Promise<boolean> {
    const { config, clock, events } = this.#ctx;
    const now = clock.now();
    let released = false;
    const per = new Map<string, HealthSignal[]>();
    for (const s of signals) per.set(s.endpointId, [...(per.get(s.endpointId) ?? []), s]);
    for (const [endpointId, list] of per) {
      // Outputs keep the same columns as endpoints (migration 0013): one code path for both.
      const output = list[0]!.destination === "output";
      const table = (output ? "outputs" : "endpoints") as "endpoints";
      const lastOk = list.map((s) => s.ok).lastIndexOf(true);
      const trailing = list.slice(lastOk + 1);
      const openUntil = now + config.circuitBreakerCooldown;
      if (lastOk >= 0) {
        if (trailing.length === 0) {
          // Endpoints and outputs come from caches (delivery/endpoint-cache.ts, OutputCache)
          // dropped by every health write of this node (`Store.writes`): a known streak of 0 is
          // stale only by another node's failures, announced to this one at once on PostgreSQL.
          if (list.every(uneventful)) continue;
          const reset = await trx
            .updateTable(table)
            .set({ consecutive_failures: 0, failing_since: null, circuit_open_until: null })
            .where("id", "=", endpointId)
            .$if(output, (q) => q.where((eb) => eb.or([eb("consecutive_failures", ">", 0), eb("failing_since", "is not", null)])))
            .executeTakeFirst();
          const hadStreak = output ? Number(reset.numUpdatedRows) > 0 : list.some((s) => s.knownFailures >= config.circuitBreakerThreshold);
          if (hadStreak) {
            if (output) events.emit("output:recovered", { outputId: endpointId });
            else events.emit("endpoint:recovered", { endpointId });
            // The half-open probe succeeded. Its backlog was parked up to two cooldowns away (plus
            // up to 1 s of jitter); without this it would wait behind a circuit that is now closed.
            if ((await unparkJobs(trx, endpointId, now, openUntil + config.circuitBreakerCooldown + 1_000)) > 0) released = true;
          }
          continue;
        }
        await trx
          .updateTable(table)
          .set({
            consecutive_failures: trailing.length,
            failing_since: trailing[0]!.at,
            circuit_open_until: trailing.length >= config.circuitBreakerThreshold ? openUntil : null,
          })
          .where("id", "=", endpointId)
          .execute();
      } else {
        await trx
          .updateTable(table)
          .set((eb) => ({
            consecutive_failures: eb("consecutive_failures", "+", list.length),
            failing_since: eb.fn.coalesce("failing_since", eb.val(list[0]!.at)),
            circuit_open_until: eb
              .case()
              .when(eb("consecutive_failures", "+", list.length), ">=", config.circuitBreakerThreshold)
              .then(openUntil)
              .else(eb.ref("circuit_open_until"))
              .end(),
          }))
          .where("id", "=", endpointId)
          .execute();
      }
      const row = await trx
        .selectFrom(table)
        .select(["consecutive_failures", "failing_since", "circuit_open_until", "disabled"])
        .where("id", "=", endpointId)
        .executeTakeFirst();
      if (!row) continue;
      if (row.circuit_open_until === openUntil) {
        await parkJobs(trx, endpointId, openUntil, openUntil + config.circuitBreakerCooldown);
        if (output) events.emit("output:circuit-opened", { outputId: endpointId, until: openUntil, failures: row.consecutive_failures });
        else events.emit("endpoint:circuit-opened", { endpointId, until: openUntil, failures: row.consecutive_failures });
      }
      if (row.disabled === 0 && row.failing_since !== null && now - row.failing_since >= config.disableAfter) {
        const reason = `Disabled automatically: every attempt failed since ${new Date(row.failing_since).toISOString()}`;
        await trx.updateTable(table).set({ disabled: 1, disabled_reason: reason, updated_at: now }).where("id", "=", endpointId).execute();
        if (output) {
          const o = await trx.selectFrom("outputs").select(["org_id", "bucket_id"]).where("id", "=", endpointId).executeTakeFirst();
          if (o) events.emit("output:disabled", { outputId: endpointId, orgId: o.org_id, bucketId: o.bucket_id, reason });
        } else events.emit("endpoint:disabled", { endpointId, reason, trigger: "automatic" });
      }
    }
    return released;
  }
}
