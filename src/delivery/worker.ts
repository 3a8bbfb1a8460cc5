import { randomUUID } from "node:crypto";
import type { Context } from "../context/index.js";
import type { EndpointRow } from "../endpoints/index.js";
import type { MessageRow } from "../messages/index.js";
import { claimJobs, type ClaimShares } from "../queue/claim-jobs.js";
import { releaseJobs } from "../queue/release-jobs.js";
import type { HandOff, TakeRow } from "../queue/hand-off.js";
import type { JobRow } from "../queue/types.js";
import { performAttempt } from "./attempt.js";
import { loadEndpointContexts, type EndpointContext } from "./endpoint-context.js";
import { loadSigningKeys } from "../endpoints/secrets.js";
import type { HttpSender, SendResult } from "./http-sender.js";
import type { AttemptInsert } from "../queue/complete-jobs.js";
import type { DestinationHealth, ForwardDestination, ForwardRunner } from "./forwards.js";
import { RateLimiter } from "../util/rate-limiter.js";
import { FairShare } from "./fair-share.js";
import { selectByIds } from "../store/hot.js";
import { isStorageFault } from "../store/errors.js";
import { Recorder } from "./recorder.js";
import { nextRetryAt } from "./retry-schedule.js";
import type { DestinationRegistry } from "../destinations/registry.js";
import type { FunctionRunner } from "../functions/runner.js";
import { isHttpUrl } from "./destination-send.js";
import { SpanKind } from "../tracing/index.js";

const CLAIM_BATCH = 100;
const AGENT_WAIT_MS = 5_000;

const BUSY_DEFER_MS = 250;

interface Prepared {
  messages: Map<string, MessageRow>;
  endpoints: Map<string, EndpointRow>;
  contexts: Map<string, EndpointContext>;
}

/**
 * Claims due jobs in batches, sends them with bounded concurrency (overall and per endpoint),
 * and hands results to the `Recorder`. Woken in-process by the publisher, by PostgreSQL NOTIFY
 * from other nodes, and by a slow poll that picks up retries whose time has come.
 */
export class DeliveryWorker {
  readonly id = `wrk_${randomUUID()}`;
  readonly #ctx: Context;
  readonly #sender: HttpSender;
  readonly #recorder: Recorder;
  readonly #limiter = new RateLimiter();
  /** Per-destination slots, the reserve for fast destinations, latency (see fair-share.ts). */
  readonly #fair: FairShare;
  /** Per destination, the open period for which this node already let one job wait as its probe. */
  readonly #probes = new Map<string, number>();
  readonly #abort = new AbortController();
  readonly #inflight = new Set<Promise<void>>();
  #reserved = 0;
  #running = false;
  #claiming: Promise<void> | undefined;
  #again = false;
  #backlog = true;
  /** The last claim left some destination's due jobs behind (no room): a freed slot may let them in. */
  #skipping = false;
  /**
   * Destinations whose due jobs the last claims left in the queue (cut at their share): the
   * hand-off takes none of their new jobs, so those do not overtake the queued ones.
   * Bounded, oldest out.
   */
  readonly #behind = new Set<string>();
  /** Bumped by every wake: a claim that started before a wake cannot declare the backlog empty. */
  #wakes = 0;
  #timer: NodeJS.Timeout | undefined;
  #unconsume: (() => void) | undefined;
  #deferTimer: NodeJS.Timeout | undefined;
  #deferTimerAt = Infinity;
  readonly #deferredUntil = new Set<number>();
  readonly #random: () => number;

  /** Forward jobs' loading and sending (ingress provides it; none: they wait in the queue). */
  #forwards: ForwardRunner | undefined;
  readonly #destinations: DestinationRegistry | undefined;
  readonly #functions: FunctionRunner | undefined;
  /** Incident pauses (src/incident): the hand-off leaves a paused scope's jobs to the queue. */
  readonly #paused: { blocks(orgId: string, appId: string): boolean } | undefined;

  /**
   * `destinations`: the non-HTTP kinds (brokers) endpoints may name by URL scheme.
   * `functions`: the sandbox that runs endpoint and output transformations.
   */
  constructor(
    ctx: Context,
    sender: HttpSender,
    opts: { random?: () => number; destinations?: DestinationRegistry; functions?: FunctionRunner; paused?: { blocks(orgId: string, appId: string): boolean } } = {},
  ) {
    this.#ctx = ctx;
    this.#sender = sender;
    this.#recorder = new Recorder(ctx, this.id, () => this.wake());
    this.#random = opts.random ?? Math.random;
    this.#destinations = opts.destinations;
    this.#functions = opts.functions;
    this.#paused = opts.paused;
    const { config } = ctx;
    this.#fair = new FairShare({
      total: config.deliveryConcurrency,
      perDestination: config.endpointConcurrency,
      slowMs: Math.min(1_000, config.requestTimeout / 4),
    });
    // Outputs are read through a 2 s cache: an opened circuit or a disabled output is seen now.
    ctx.events.on("output:circuit-opened", () => this.#forwards?.invalidate());
    ctx.events.on("output:disabled", () => this.#forwards?.invalidate());
    ctx.events.on("output:recovered", () => this.#forwards?.invalidate());
  }

  /** Forward jobs (bucket outputs, URL or agent) are loaded and sent by `runner` (from ingress/). */
  useForwards(runner: ForwardRunner): void {
    this.#forwards = runner;
  }

  async start(): Promise<void> {
    this.#running = true;
    // This worker is the queue's consumer on this node: woken after every local commit that queued
    // jobs, and by other nodes' NOTIFY.
    this.#unconsume = await this.#ctx.queue.consume(() => this.wake());
    this.#timer = setInterval(() => {
      this.#backlog = true;
      this.wake();
    }, this.#ctx.config.pollInterval);
    this.#timer.unref();
    this.wake();
  }

  /** Asks for a claim round now (new jobs were committed, or time moved). */
  wake(): void {
    if (!this.#running) return;
    this.#backlog = true;
    this.#wakes++;
    if (this.#claiming) {
      this.#again = true;
      return;
    }
    // One loop turn first, so the slots freed by every response read in this poll phase are
    // claimed (and prepared) together instead of one job per claim.
    this.#claiming = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.#claimLoop()).finally(() => {
      this.#claiming = undefined;
      // A wake in the few microtasks between the loop's last look at `#again` and this callback
      // found `#claiming` still set and only raised `#again`: its job waited for the poll (one of
      // 10,000 relayed webhooks took 977 ms with a 1 s poll). On SQLite the end of one transaction
      // settles the claim, the calls committed with it and the queries waiting for the connection
      // in one run of microtasks, so their wakes can land there.
      if (this.#again) this.wake();
    });
  }

  /** For tests and the CLI: runs claim rounds until nothing is due, in flight or unrecorded. */
  async runUntilIdle(): Promise<void> {
    for (;;) {
      this.wake();
      while (this.#claiming || this.#inflight.size > 0) {
        await this.#claiming;
        await Promise.all([...this.#inflight]);
      }
      await this.#recorder.flush();
      if (!this.#backlog && this.#inflight.size === 0 && !this.#claiming) return;
    }
  }

  get inflight(): number {
    return this.#reserved;
  }

  /** Aborts the attempts and agent requests still in flight when `stop`'s grace runs out. */
  get shutdownSignal(): AbortSignal {
    return this.#abort.signal;
  }

  /**
   * Direct hand-off, asked by the publisher and the ingress intake before they commit a batch:
   * which of these new jobs can this worker start the moment they are committed? Those it marks
   * leased to itself (`locked_by`, `run_at` = lease end), to be inserted so, and returns; after the
   * commit `outbound`/`forwards` start them (no claim, no NOTIFY, no re-read), after a failed
   * one `unreserve` gives their slots back. Nothing is taken for a destination whose due jobs a
   * claim left in the queue (they go first), nor while results wait to be recorded. A claim under
   * way, or other destinations' due jobs, do not stop it: refusing then sent 518 of a healthy
   * endpoint's 800 jobs through the queue beside four slow ones (each claim 10-30 ms on
   * PostgreSQL, one per freed slot), and its p99 went from 13 ms alone to 150 ms.
   */
  take<T extends TakeRow>(rows: readonly T[], now: number): T[] {
    const { config } = this.#ctx;
    const taken: T[] = [];
    if (!this.#running || this.#recorder.saturated) return taken;
    for (const row of rows) {
      if (this.#reserved >= config.deliveryConcurrency) break;
      if (this.#behind.has(row.endpoint_id)) continue;
      if (this.#fair.room(row.endpoint_id, config.deliveryConcurrency - this.#reserved) <= 0) continue;
      if (this.#paused?.blocks(row.org_id, row.app_id)) continue;
      // An open circuit's jobs are left to the queue: handed over, each would be loaded (three
      // queries) only to be parked, one by one, beside the healthy destinations' deliveries.
      if ((this.#probes.get(row.endpoint_id) ?? 0) > now) continue;
      this.#reserved += 1;
      this.#fair.hold(row.endpoint_id);
      row.locked_by = this.id;
      row.run_at = now + config.leaseDuration;
      taken.push(row);
    }
    return taken;
  }

  /** Gives back the slots of taken jobs that were not committed. */
  unreserve(endpointIds: readonly string[]): void {
    for (const id of endpointIds) {
      this.#fair.unhold(id);
      this.#release();
    }
  }

  /** The direct hand-off of new outbound jobs (publisher): started with their message rows. */
  readonly outbound: HandOff<ReadonlyMap<string, MessageRow>> = {
    take: (rows, now) => this.take(rows, now),
    unreserve: (ids) => this.unreserve(ids),
    start: (jobs, messages) => this.#startTaken(jobs, () => this.#dispatchOutbound(jobs, messages)),
  };

  /** The direct hand-off of new forward jobs (ingress intake): started with their requests in the clear. */
  readonly forwards: HandOff<ReadonlyMap<string, unknown>> = {
    take: (rows, now) => this.take(rows, now),
    unreserve: (ids) => this.unreserve(ids),
    start: (jobs, requests) => this.#startTaken(jobs, () => this.#dispatchForward(jobs, requests)),
  };

  #startTaken(jobs: JobRow[], dispatch: () => Promise<void>): void {
    for (const job of jobs) this.#fair.unhold(job.endpoint_id);
    const p: Promise<void> = dispatch()
      .catch((err: unknown) => this.#ctx.logger.error({ err }, "handing jobs over failed; their leases will bring them back"))
      .finally(() => this.#inflight.delete(p));
    this.#inflight.add(p);
  }

  /**
   * Stops claiming, lets in-flight attempts finish for up to `graceMs`, cancels the rest, records
   * what finished and gives every unfinished lease back so another node (or the next start) takes
   * it at once.
   */
  async stop(graceMs: number): Promise<void> {
    this.#running = false;
    this.#unconsume?.();
    if (this.#timer) clearInterval(this.#timer);
    if (this.#deferTimer) clearTimeout(this.#deferTimer);
    await this.#claiming;
    const grace = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
    await Promise.race([Promise.all([...this.#inflight]), grace]);
    this.#abort.abort();
    await Promise.all([...this.#inflight]);
    await this.#recorder.flush();
    const released = await releaseJobs(this.#ctx.store.db, this.id, this.#ctx.clock.now());
    if (released > 0) this.#ctx.logger.info({ released }, "released unfinished deliveries");
  }

  async #claimLoop(): Promise<void> {
    const { config, clock, logger, store } = this.#ctx;
    try {
      do {
        this.#again = false;
        while (this.#running && this.#backlog) {
          const free = config.deliveryConcurrency - this.#reserved;
          // The recorder wakes the worker once its backlog of results is below a batch again.
          if (free <= 0 || this.#recorder.saturated) break;
          const limit = Math.min(this.#fair.claimable(free), CLAIM_BATCH);
          const now = clock.now();
          const shares = this.#fair.shares(free);
          this.#skipping = shares.fresh === 0 || [...shares.room.values()].some((n) => n === 0);
          const wakes = this.#wakes;
          const agents = { servedBuckets: this.#forwards?.servedBuckets() ?? [], since: now - config.resendWindow };
          // The claim's slots outside the reserve are counted from its start, so the hand-off (which
          // may run meanwhile) sees only the slots left; the reserve stays open to it, or a healthy
          // endpoint's new jobs would wait for each claim the slow ones' freed slots cause.
          const claiming = Math.min(limit, this.#fair.shared(free));
          this.#reserved += claiming;
          let jobs: JobRow[];
          try {
            jobs = await claimJobs(store, this.id, now, now + config.leaseDuration, limit, shares, agents);
          } finally {
            this.#reserved -= claiming;
          }
          // Jobs committed while this claim ran may be missing from its snapshot: only a claim that
          // no wake overtook may declare the backlog empty. A destination that got its whole share
          // may have more due behind it, and so may a claim that got all it asked for.
          const taken = new Map<string, number>();
          for (const job of jobs) taken.set(job.endpoint_id, (taken.get(job.endpoint_id) ?? 0) + 1);
          const shareOf = (id: string) => shares.room.get(id) ?? shares.fresh;
          const cut = [...taken].some(([id, n]) => n >= shareOf(id));
          this.#noteBehind(shares, taken, jobs.length < limit);
          if (jobs.length < limit && !cut && wakes === this.#wakes) this.#backlog = false;
          if (jobs.length === 0) break;
          // Hand-offs during the claim took reserve slots it also claimed: the surplus goes back to
          // the queue, due now, so the node never runs more than its slots.
          const over = this.#reserved + jobs.length - config.deliveryConcurrency;
          if (over > 0) {
            for (const job of jobs.splice(jobs.length - over)) this.#recorder.add({ kind: "defer", job, runAt: now });
            this.#wakeAt(now);
            if (jobs.length === 0) break;
          }
          this.#reserved += jobs.length;
          await this.#dispatch(jobs);
        }
      } while (this.#again && this.#running);
    } catch (err) {
      this.#again = false;
      // A storage fault is logged once per streak by the store; the poll retries either way.
      if (isStorageFault(err)) logger.debug({ err }, "claiming jobs failed (storage is failing); the poll will try again");
      else logger.error({ err }, "claiming jobs failed; the poll will try again");
    }
  }

  /**
   * After a claim: which destinations still have due jobs in the queue (`#behind`). One cut at its
   * share has. One that got less than its share has none left, or only the few the claim's limit
   * kept back (they may be overtaken by a new job or two: keeping it listed until a claim under
   * its limit proved it empty kept a healthy endpoint out of the hand-off for as long as four slow
   * ones had a backlog, since every claim then fills its limit).
   */
  #noteBehind(shares: ClaimShares, taken: ReadonlyMap<string, number>, underLimit: boolean): void {
    const shareOf = (id: string) => shares.room.get(id) ?? shares.fresh;
    for (const id of this.#behind) {
      const n = taken.get(id) ?? 0;
      if (n < shareOf(id) && (n > 0 || underLimit)) this.#behind.delete(id);
    }
    for (const [id, n] of taken) if (n >= shareOf(id)) this.#behind.add(id);
    while (this.#behind.size > 10_000) this.#behind.delete(this.#behind.values().next().value!);
  }

  async #prepare(jobs: JobRow[], known?: ReadonlyMap<string, MessageRow>): Promise<Prepared> {
    const { store, clock } = this.#ctx;
    const msgIds = [...new Set(jobs.map((j) => j.msg_id))].filter((id) => !known?.has(id));
    const epIds = [...new Set(jobs.map((j) => j.endpoint_id))];
    const now = clock.now();
    // Messages, endpoints and their signing keys in one round trip (the keys of an unsigned
    // endpoint are simply not used).
    const [messages, endpoints, keys] = await Promise.all([
      selectByIds(store.db, "messages", msgIds),
      selectByIds(store.db, "endpoints", epIds),
      loadSigningKeys(this.#ctx, epIds, now),
    ]);
    const contexts = await loadEndpointContexts(this.#ctx, endpoints, now, { keys });
    const byId = new Map(messages.map((m) => [m.id, m]));
    if (known) for (const job of jobs) if (known.has(job.msg_id)) byId.set(job.msg_id, known.get(job.msg_id)!);
    return { messages: byId, endpoints: new Map(endpoints.map((e) => [e.id, e])), contexts };
  }

  async #dispatch(jobs: JobRow[]): Promise<void> {
    const forward = jobs.filter((j) => j.kind === "forward");
    const outbound = forward.length === 0 ? jobs : jobs.filter((j) => j.kind !== "forward");
    if (outbound.length > 0) await this.#dispatchOutbound(outbound);
    if (forward.length > 0) await this.#dispatchForward(forward);
  }

  /** Inbound requests to their bucket's outputs: same queue, retries and attempt records. */
  async #dispatchForward(jobs: JobRow[], known?: ReadonlyMap<string, unknown>): Promise<void> {
    const { clock } = this.#ctx;
    const runner = this.#forwards;
    let fctx: Awaited<ReturnType<ForwardRunner["load"]>>;
    try {
      if (!runner) throw new Error("no forward runner on this worker");
      fctx = await runner.load(jobs, known);
    } catch (err) {
      this.#reserved -= jobs.length;
      const runAt = clock.now() + 5_000;
      for (const job of jobs) this.#recorder.add({ kind: "defer", job, runAt });
      this.#ctx.logger.error({ err }, "could not load forwards; retrying in 5 s");
      return;
    }
    for (const job of jobs) {
      const stored = fctx.requests.get(job.msg_id);
      const target = fctx.targets.get(job.endpoint_id);
      if (!stored || !target || target.output.disabled === 1) {
        this.#release();
        this.#recorder.add({ kind: "drop", job });
        continue;
      }
      const now = clock.now();
      const ready = runner.readiness(job, target, now);
      if (!ready.go) {
        this.#release();
        if ("expired" in ready) this.#recorder.add({ kind: "done", job, attempt: ready.expired });
        // Not from here now (an agent connecting anywhere makes these due again).
        else this.#recorder.add({ kind: "defer", job, runAt: now + AGENT_WAIT_MS + Math.round(this.#random() * 1000) });
        continue;
      }
      if (!(await this.#admit("outputs", target.output, job, clock.now()))) continue;
      this.#track(
        this.#forward(job, target, stored).then(() => undefined),
        target.output.id,
        job,
      );
    }
  }

  /**
   * Sends a forward job this node already holds the lease of (an input in `wait` mode delivers its
   * first output while the caller waits) and records it like any other attempt.
   */
  deliverLeased(job: JobRow, target: ForwardDestination, stored: unknown): Promise<{ result: SendResult; attempt: AttemptInsert }> {
    const p = this.#forward(job, target, stored, this.#ctx.config.maxPayloadSize);
    const tracked = p.then(
      () => undefined,
      () => undefined,
    );
    this.#inflight.add(tracked);
    void tracked.finally(() => this.#inflight.delete(tracked));
    return p;
  }

  /** Hands a job this node leased for a waiting caller back to the queue, due now. */
  releaseLeased(job: JobRow): void {
    this.#recorder.add({ kind: "defer", job, runAt: this.#ctx.clock.now() });
    void this.#recorder.flush().then(() => this.wake());
  }

  /** `answerLimit`: keep that many bytes of the destination's answer (a caller is waiting for it). */
  async #forward(job: JobRow, target: ForwardDestination, stored: unknown, answerLimit?: number): Promise<{ result: SendResult; attempt: AttemptInsert }> {
    const { config, clock, events } = this.#ctx;
    if (!this.#forwards) throw new Error("no forward runner on this worker");
    const out = await this.#forwards.deliver(job, target, stored, this.#abort.signal, answerLimit);
    if (this.#abort.signal.aborted && !out.result.ok && out.result.statusCode === 0) return out;
    const now = clock.now();
    if (out.result.errorCode === "E_AGENT_DISCONNECTED" || out.result.errorCode === "E_AGENT_UNAVAILABLE") {
      // Not an attempt at the destination: the agent went away. Sent again when one is back.
      this.#recorder.add({ kind: "defer", job, runAt: now + AGENT_WAIT_MS });
      return out;
    }
    const retryAt = nextRetryAt(config.retrySchedule, job.attempt, now, out.result, this.#random);
    this.#recorder.add(retryAt === undefined ? { kind: "done", job, attempt: out.attempt } : { kind: "retry", job, attempt: out.attempt, runAt: retryAt }, {
      endpointId: target.output.id,
      destination: "output",
      ok: out.result.ok,
      at: now,
      knownFailures: target.output.consecutive_failures,
    });
    events.emit("forward:attempted", {
      orgId: job.org_id,
      bucketId: job.app_id,
      outputId: target.output.id,
      requestId: job.msg_id,
      outcome: out.result.ok ? "success" : "failure",
      statusCode: out.result.statusCode,
      errorCode: out.result.errorCode,
      durationMs: out.result.durationMs,
      willRetry: retryAt !== undefined,
    });
    return out;
  }

  /** Counts an attempt against its endpoint's (or output's) concurrency until it settles. */
  #track(work: Promise<void>, endpointId: string, job: JobRow): void {
    const { clock } = this.#ctx;
    const settle = this.#fair.start(endpointId);
    const p = work
      .catch((err: unknown) => {
        this.#ctx.logger.error({ err, jobId: job.id, endpointId }, "delivery failed unexpectedly; retrying in 30 s");
        this.#recorder.add({ kind: "defer", job, runAt: clock.now() + 30_000 });
      })
      .finally(() => {
        this.#inflight.delete(p);
        settle();
        this.#release();
        // A freed slot may be the room a destination the claim skipped was waiting for.
        if (this.#backlog || this.#skipping) this.wake();
      });
    this.#inflight.add(p);
  }

  async #dispatchOutbound(jobs: JobRow[], known?: ReadonlyMap<string, MessageRow>): Promise<void> {
    const { clock } = this.#ctx;
    let prepared: Prepared;
    try {
      prepared = await this.#prepare(jobs, known);
    } catch (err) {
      this.#reserved -= jobs.length;
      const runAt = clock.now() + 5_000;
      for (const job of jobs) this.#recorder.add({ kind: "defer", job, runAt });
      this.#ctx.logger.error({ err }, "could not load deliveries; retrying in 5 s");
      return;
    }
    for (const job of jobs) {
      const now = clock.now();
      const msg = prepared.messages.get(job.msg_id);
      const ep = prepared.endpoints.get(job.endpoint_id);
      // An expunged message's jobs are deleted with its content; one already taken is dropped here.
      if (!msg || !ep || ep.disabled === 1 || msg.payload === "") {
        this.#release();
        this.#recorder.add({ kind: "drop", job });
        continue;
      }
      if (!(await this.#admit("endpoints", ep, job, now))) continue;
      this.#track(this.#deliver(job, msg, ep, prepared), ep.id, job);
    }
  }

  /**
   * The gates every destination passes, whatever its kind (endpoint, URL or agent output): circuit
   * breaker, per-destination concurrency, rate limit. True when the job may start now; otherwise
   * it was put back in the queue and its slot freed.
   */
  async #admit(table: "endpoints" | "outputs", dest: DestinationHealth, job: JobRow, now: number): Promise<boolean> {
    const { config, store } = this.#ctx;
    if (dest.consecutive_failures >= config.circuitBreakerThreshold) {
      if (dest.circuit_open_until !== null && dest.circuit_open_until > now) return this.#putBack(job, this.#heldBack(dest.id, dest.circuit_open_until));
      // Half-open: exactly one node wins the right to send a probe.
      const until = now + config.circuitBreakerCooldown;
      const won = await store.db
        // Both tables keep the same health columns (migration 0013).
        .updateTable(table as "endpoints")
        .set({ circuit_open_until: until })
        .where("id", "=", dest.id)
        .where((eb) => eb.or([eb("circuit_open_until", "is", null), eb("circuit_open_until", "<=", now)]))
        .executeTakeFirst();
      dest.circuit_open_until = until;
      this.#probes.set(dest.id, until);
      if (Number(won.numUpdatedRows) === 0) return this.#putBack(job, until + config.circuitBreakerCooldown);
    }
    if (this.#fair.full(dest.id)) return this.#putBack(job, now + Math.round(BUSY_DEFER_MS * (1 + this.#random())), true);
    if (dest.rate_limit !== null) {
      const wait = this.#limiter.take(dest.id, dest.rate_limit, now);
      if (wait > 0) return this.#putBack(job, now + wait, true);
    }
    return true;
  }

  /** Defers a claimed job to `runAt` without counting an attempt; `wake`: claim again then. */
  #putBack(job: JobRow, runAt: number, wake = false): false {
    this.#release();
    this.#recorder.add({ kind: "defer", job, runAt });
    if (wake) this.#wakeAt(runAt);
    return false;
  }

  /**
   * Where a job held back by an open circuit waits. The first this node sees in an open period is
   * a half-open probe at the cooldown's end (with up to 1 s of jitter); the rest are parked one
   * cooldown later, and made due at once by a successful probe (see queue/park-jobs.ts).
   */
  #heldBack(id: string, openUntil: number): number {
    if (this.#probes.get(id) === openUntil) return openUntil + this.#ctx.config.circuitBreakerCooldown;
    this.#probes.delete(id);
    this.#probes.set(id, openUntil);
    if (this.#probes.size > 10_000) this.#probes.delete(this.#probes.keys().next().value!);
    return openUntil + Math.round(this.#random() * 1000);
  }

  #release(): void {
    this.#reserved -= 1;
  }

  /**
   * Wakes the worker when the earliest job it deferred (rate limit, endpoint busy) comes due. The
   * poll alone would hold such jobs up to `pollInterval` longer: with `rateLimit: 1` and a 1 s
   * poll that halved the rate. The wake first waits for the recorder, which still holds the job
   * leased until it has committed the new `run_at`.
   */
  #wakeAt(runAt: number): void {
    if (!this.#running) return;
    this.#deferredUntil.add(runAt);
    if (runAt < this.#deferTimerAt) this.#armDeferTimer(runAt);
  }

  #armDeferTimer(at: number): void {
    if (this.#deferTimer) clearTimeout(this.#deferTimer);
    this.#deferTimerAt = at;
    // +1 ms: timers may fire up to a millisecond before the wall clock reaches `at`.
    this.#deferTimer = setTimeout(() => {
      if (!this.#running) return;
      this.#deferTimer = undefined;
      this.#deferTimerAt = Infinity;
      for (const t of this.#deferredUntil) if (t <= at) this.#deferredUntil.delete(t);
      if (this.#deferredUntil.size > 0) this.#armDeferTimer(Math.min(...this.#deferredUntil));
      void this.#recorder.flush().then(() => this.wake());
    }, Math.max(0, at - this.#ctx.clock.now()) + 1);
    this.#deferTimer.unref();
  }

  async #deliver(job: JobRow, msg: MessageRow, ep: EndpointRow, prepared: Prepared): Promise<void> {
    const { config, clock, events, tracing } = this.#ctx;
    // A child of the publish span stored with the message: the trace spans the queue.
    const span = tracing?.start("hookwarden.attempt", isHttpUrl(ep.url) ? SpanKind.CLIENT : SpanKind.PRODUCER, msg.trace_context, {
      "hookwarden.org.id": job.org_id,
      "hookwarden.app.id": job.app_id,
      "hookwarden.message.id": msg.id,
      "hookwarden.endpoint.id": ep.id,
      "hookwarden.attempt.number": job.attempt + 1,
    });
    const { result, attempt } = await performAttempt(
      this.#ctx,
      this.#sender,
      { orgId: job.org_id, appId: job.app_id, triggerType: job.trigger_type },
      ep,
      msg,
      prepared.contexts.get(ep.id)!,
      this.#abort.signal,
      this.#destinations,
      this.#functions,
      span?.traceparent,
    );
    span?.end({ "hookwarden.attempt.id": attempt.id, "http.response.status_code": result.statusCode }, result.ok ? null : (result.errorCode ?? "E_HTTP_STATUS"));
    if (this.#abort.signal.aborted && !result.ok && result.statusCode === 0) return; // shutting down: the lease is released, not counted
    const now = clock.now();
    const tlsVerify = ep.tls_verify === 1;
    const retryAt = nextRetryAt(config.retrySchedule, job.attempt, now, result, this.#random);
    this.#recorder.add(
      retryAt === undefined ? { kind: "done", job, attempt } : { kind: "retry", job, attempt, runAt: retryAt },
      { endpointId: ep.id, ok: result.ok, at: now, knownFailures: ep.consecutive_failures },
    );
    events.emit("delivery:attempted", {
      orgId: job.org_id,
      appId: job.app_id,
      endpointId: ep.id,
      msgId: msg.id,
      attemptId: attempt.id,
      outcome: result.ok ? "success" : "failure",
      statusCode: result.statusCode,
      errorCode: result.errorCode,
      durationMs: result.durationMs,
      sincePublishMs: job.attempt === 0 && job.trigger_type === 0 ? now - msg.created_at : null,
      willRetry: retryAt !== undefined,
      tlsVerify,
      attempt: job.attempt,
    });
  }
}
