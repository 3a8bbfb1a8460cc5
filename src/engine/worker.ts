import { randomUUID } from "node:crypto";
import type { Context } from "../context/index.js";
import { claimJobs, type ClaimShares } from "../queue/claim-jobs.js";
import { releaseJobs } from "../queue/release-jobs.js";
import type { HandOff, TakeRow } from "../queue/hand-off.js";
import type { JobRow } from "../queue/types.js";
import { RateLimiter } from "../util/rate-limiter.js";
import { isStorageFault } from "../store/errors.js";
import { FairShare } from "./fair-share.js";
import type { Attempted, DestinationHealth, DestinationKind, DestinationKinds, Loaded, Readiness } from "./kind.js";
import { Recorder } from "./recorder.js";
import { jobLifetimeMs, nextRetryAt } from "./retry-schedule.js";

const CLAIM_BATCH = 100;
/**
 * How often a claim looks at every due job (`claimJobs`' `deep`); the others look among the oldest
 * few thousand. Under a backlog of a million jobs a deep claim costs about 170 ms on SQLite.
 */
const DEEP_CLAIM_MS = 10_000;

const BUSY_DEFER_MS = 250;
const GO: Readiness = { go: true };

/**
 * The engine. Claims due jobs in batches (or takes new ones handed over by the publisher and the
 * intake), has each job's destination kind load it, passes it through the gates every destination
 * passes (circuit breaker, per-destination concurrency, rate limit), has the kind make the attempt,
 * and hands the result to the `Recorder` with its retry. Knows kinds only by `DestinationKind`.
 * Woken in-process by enqueuers, by PostgreSQL NOTIFY from other nodes, and by a slow poll that
 * picks up retries whose time has come.
 */
export class DeliveryWorker {
  readonly id = `wrk_${randomUUID()}`;
  readonly #ctx: Context;
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
   * Destinations whose due jobs the last claims left in the queue (cut at their share), or one of
   * whose new jobs the hand-off left to the queue: the hand-off takes none of their new jobs, so
   * those do not overtake the queued ones. Bounded, oldest out.
   */
  readonly #behind = new Set<string>();
  /** Bumped by every wake: a claim that started before a wake cannot declare the backlog empty. */
  #wakes = 0;
  #timer: NodeJS.Timeout | undefined;
  #unconsume: (() => void) | undefined;
  #deferTimer: NodeJS.Timeout | undefined;
  #deferTimerAt = Infinity;
  /** When this worker last made a deep claim (`claimJobs`' `deep`). */
  #deepClaimAt = -Infinity;
  readonly #deferredUntil = new Set<number>();
  readonly #random: () => number;
  /**
   * Jobs of a destination with no slot free, leased to this worker and waiting in memory for one
   * of its slots, with their items: handed over (see `take`, what the enqueuer held) or claimed
   * beyond the destination's room (see `#extraShares`, loaded with the claim).
   */
  readonly #waiting = new Map<string, { job: JobRow; item: unknown }[]>();
  /** Per destination, jobs taken to wait: committed (in `#waiting`) or still being committed. */
  readonly #waitCount = new Map<string, number>();
  #waitTotal = 0;
  /** Taken rows that are to wait rather than start (`take` marks them, `#startTaken` files them). */
  readonly #toWait = new WeakSet<object>();

  /** What each job kind delivers to (registered by server/; a kind not registered: its jobs wait). */
  readonly #kinds: DestinationKinds;
  /** Incident pauses (src/incident): the hand-off leaves a paused scope's jobs to the queue. */
  readonly #paused: { blocks(orgId: string, appId: string): boolean } | undefined;

  /** A node that runs no worker (`--role api`) still sends the jobs whose items only it holds. */
  readonly #heldOnly: boolean;
  /** How old a job held by another worker must be before this one may give it up. */
  readonly #lifetime: number;

  /** `heldOnly`: claim only the jobs this worker holds the items of (`jobs.held_by`). */
  constructor(ctx: Context, kinds: DestinationKinds, opts: { random?: () => number; paused?: { blocks(orgId: string, appId: string): boolean }; heldOnly?: boolean } = {}) {
    this.#ctx = ctx;
    this.#kinds = kinds;
    this.#heldOnly = opts.heldOnly ?? false;
    this.#lifetime = jobLifetimeMs(ctx.config);
    this.#recorder = new Recorder(ctx, this.id, () => this.wake());
    this.#random = opts.random ?? Math.random;
    this.#paused = opts.paused;
    const { config } = ctx;
    this.#fair = new FairShare({
      total: config.deliveryConcurrency,
      perDestination: config.endpointConcurrency,
      slowMs: Math.min(1_000, config.requestTimeout / 4),
    });
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
      if (!this.#backlog && this.#inflight.size === 0 && !this.#claiming && this.#waitTotal === 0) return;
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
   *
   * A job of a destination at its cap may instead wait here, leased, for one of its slots
   * (`#mayWait`): under a steady stream to one endpoint, 45% of jobs used to go through the queue
   * and its claims (14% of the gateway's busy time). A destination one of whose jobs went to the
   * queue is `#behind` until a claim has taken them, so waiting jobs never overtake queued ones.
   */
  take<T extends TakeRow>(rows: readonly T[], now: number): T[] {
    const { config } = this.#ctx;
    const taken: T[] = [];
    if (!this.#running || this.#recorder.saturated) return taken;
    for (const row of rows) {
      const dest = row.destination_id;
      if (this.#behind.has(dest)) continue;
      if (this.#paused?.blocks(row.org_id, row.scope_id)) continue;
      // An open circuit's jobs are left to the queue: handed over, each would be loaded only to
      // be parked, one by one, beside the healthy destinations' deliveries.
      if ((this.#probes.get(dest) ?? 0) > now) continue;
      const free = config.deliveryConcurrency - this.#reserved;
      if (free > 0 && !this.#waitCount.has(dest) && this.#fair.room(dest, free) > 0) {
        this.#reserved += 1;
        this.#fair.hold(dest);
      } else if (this.#mayWait(dest)) {
        this.#waitCount.set(dest, (this.#waitCount.get(dest) ?? 0) + 1);
        this.#waitTotal += 1;
        this.#toWait.add(row);
      } else {
        // Its new jobs queue behind this one until a claim has drained them (`#noteBehind`).
        this.#markBehind(dest);
        continue;
      }
      row.locked_by = this.id;
      row.run_at = now + config.leaseDuration;
      taken.push(row);
    }
    return taken;
  }

  /**
   * Whether a new job of `dest`, which has no slot free now, may wait on this node for one instead
   * of going through the queue (a claim, and a second read of its item). Only behind a destination
   * that answers quickly and has attempts running here, or all the slots it can get taken by jobs
   * about to start (a burst to one endpoint: 281 of 20,000 forwards went through the queue, in 251
   * claims; on a node with fewer slots outside the reserve than the endpoint's concurrency, as in
   * the bench, one such refusal sent 10,854 of 15,600 published messages through the queue), or
   * slots it would get but for those a claim has leased and not yet started (a claim under way
   * counts its slots from its start: refusing then sent most of the bench's messages through the
   * queue on PostgreSQL, each claim ~4 ms of its CPU);
   * each slot freed starts the next waiting job (its attempt settling, or `#dispatchKind` when the
   * gates give it back). Not behind a destination that merely holds a slot while the node is full:
   * tried under fan-out (one message, 100 endpoints), the bench delivered less (PostgreSQL 691-792
   * against 806-1,040 deliveries/s) than when those jobs went to the queue for a batch claim. At
   * most its own concurrency of them, and at most the node's slots in all (give or take the jobs
   * a claim under way takes to wait: `#extraShares`); a job whose lease has run short by the time
   * a slot frees goes back to the queue (`#drainWaiting`).
   */
  #mayWait(dest: string): boolean {
    const { config } = this.#ctx;
    return (
      this.#waitTotal < config.deliveryConcurrency &&
      (this.#waitCount.get(dest) ?? 0) < config.endpointConcurrency &&
      (this.#fair.running(dest) > 0 || this.#fair.atCap(dest) || this.#fair.room(dest, config.deliveryConcurrency - this.#fair.inUse) > 0) &&
      this.#fair.fast(dest)
    );
  }

  #unwait(dest: string): void {
    this.#waitTotal -= 1;
    const n = (this.#waitCount.get(dest) ?? 0) - 1;
    if (n <= 0) this.#waitCount.delete(dest);
    else this.#waitCount.set(dest, n);
  }

  /** Gives back the slots (or places in line) of taken jobs that were not committed. */
  unreserve(rows: readonly TakeRow[]): void {
    for (const row of rows) {
      if (this.#toWait.delete(row)) {
        this.#unwait(row.destination_id);
        continue;
      }
      this.#fair.unhold(row.destination_id);
      this.#release();
    }
    this.#drainWaiting();
  }

  /**
   * The direct hand-off (publisher: new outbound jobs with their message rows; ingress intake: new
   * forward jobs with their requests in the clear): the items are handed to the jobs' kind, which
   * need not read them again.
   */
  readonly handOff: HandOff<ReadonlyMap<string, unknown>> = {
    take: (rows, now) => this.take(rows, now),
    unreserve: (rows) => this.unreserve(rows),
    start: (jobs, items) => this.#startTaken(jobs, items),
  };

  #startTaken(jobs: JobRow[], items: ReadonlyMap<string, unknown>): void {
    const now: JobRow[] = [];
    for (const job of jobs) {
      if (!this.#toWait.delete(job)) {
        now.push(job);
        continue;
      }
      this.#fileWaiter(job, items.get(job.item_id));
    }
    if (now.length > 0) this.#run(now, items);
    this.#drainWaiting();
  }

  /** Dispatches jobs whose slots `take` or `#drainWaiting` reserved and held. */
  #run(jobs: JobRow[], items: ReadonlyMap<string, unknown>): void {
    const p: Promise<void> = this.#dispatch(jobs, items, true)
      .catch((err: unknown) => this.#ctx.logger.error({ err }, "handing jobs over failed; their leases will bring them back"))
      .finally(() => this.#inflight.delete(p));
    this.#inflight.add(p);
  }

  /**
   * Starts waiting jobs (see `take`) for which a slot is free, destination by destination, oldest
   * first. One whose lease could end before an attempt's timeout, or whose scope was paused
   * meanwhile, goes back to the queue, due now.
   */
  #drainWaiting(): void {
    if (this.#waitTotal === 0) return;
    const { config, clock } = this.#ctx;
    const now = clock.now();
    const start: JobRow[] = [];
    const items = new Map<string, unknown>();
    for (const [dest, list] of this.#waiting) {
      while (list.length > 0 && this.#running) {
        const free = config.deliveryConcurrency - this.#reserved;
        if (free <= 0 || this.#fair.room(dest, free) <= 0) break;
        const { job, item } = list.shift()!;
        this.#unwait(dest);
        if (job.run_at - now <= config.requestTimeout || this.#paused?.blocks(job.org_id, job.scope_id)) {
          this.#recorder.add({ kind: "defer", job, runAt: now });
          this.#wakeAt(now);
          continue;
        }
        this.#reserved += 1;
        this.#fair.hold(dest);
        start.push(job);
        // An item its kind could not load (an ephemeral request lost) is for the kind to handle.
        if (item !== undefined) items.set(job.item_id, item);
      }
      if (list.length === 0) this.#waiting.delete(dest);
    }
    if (start.length > 0) this.#run(start, items);
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
    // Waiting jobs are leased to this worker: `releaseJobs` below gives them back with the rest.
    this.#waiting.clear();
    this.#waitCount.clear();
    this.#waitTotal = 0;
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
        // Jobs already leased here go first: they need no claim.
        this.#drainWaiting();
        while (this.#running && this.#backlog) {
          const free = config.deliveryConcurrency - this.#reserved;
          // The recorder wakes the worker once its backlog of results is below a batch again.
          if (free <= 0 || this.#recorder.saturated) break;
          const now = clock.now();
          const shares = this.#fair.shares(free);
          // Beyond their room, fast destinations' jobs may be claimed to wait here for their slots.
          const extra = this.#extraShares(shares.room);
          let more = 0;
          for (const [id, n] of extra) {
            shares.room.set(id, shares.room.get(id)! + n);
            more += n;
          }
          const base = Math.min(this.#fair.claimable(free), CLAIM_BATCH);
          const limit = Math.min(base + more, CLAIM_BATCH);
          this.#skipping = shares.fresh === 0 || [...shares.room.values()].some((n) => n === 0);
          const wakes = this.#wakes;
          const agents = { servedBuckets: this.#kinds.servedBuckets(), since: now - config.resendWindow };
          // The claim's slots outside the reserve are counted from its start, so the hand-off (which
          // may run meanwhile) sees only the slots left; the reserve stays open to it, or a healthy
          // endpoint's new jobs would wait for each claim the slow ones' freed slots cause.
          const claiming = Math.min(base, this.#fair.shared(free));
          this.#reserved += claiming;
          let jobs: JobRow[];
          try {
            const deep = now - this.#deepClaimAt >= DEEP_CLAIM_MS;
            if (deep) this.#deepClaimAt = now;
            jobs = await claimJobs(store, this.id, now, now + config.leaseDuration, limit, shares, agents, { by: this.id, since: now - this.#lifetime, only: this.#heldOnly }, deep);
          } finally {
            this.#reserved -= claiming;
          }
          // Jobs committed while this claim ran may be missing from its snapshot: only a claim that
          // no wake overtook may declare the backlog empty. A destination that got its whole share
          // may have more due behind it, and so may a claim that got all it asked for.
          const taken = new Map<string, number>();
          for (const job of jobs) taken.set(job.destination_id, (taken.get(job.destination_id) ?? 0) + 1);
          const shareOf = (id: string) => shares.room.get(id) ?? shares.fresh;
          const cut = [...taken].some(([id, n]) => n >= shareOf(id));
          this.#noteBehind(shares, taken, jobs.length < limit);
          if (jobs.length < limit && !cut && wakes === this.#wakes) this.#backlog = false;
          if (jobs.length === 0) break;
          const { start, toWait } = extra.size > 0 ? this.#splitClaim(jobs, extra, shares.room, base, now) : { start: jobs, toWait: new Set<JobRow>() };
          // Hand-offs during the claim took reserve slots it also claimed: the surplus goes back to
          // the queue, due now, so the node never runs more than its slots.
          const over = this.#reserved + start.length - config.deliveryConcurrency;
          if (over > 0) {
            for (const job of start.splice(start.length - over)) this.#recorder.add({ kind: "defer", job, runAt: now });
            this.#wakeAt(now);
          }
          if (start.length + toWait.size === 0) break;
          this.#reserved += start.length;
          await this.#dispatch(toWait.size > 0 ? [...start, ...toWait] : start, undefined, false, toWait);
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
    for (const [id, n] of taken) if (n >= shareOf(id)) this.#markBehind(id);
  }

  #markBehind(id: string): void {
    this.#behind.add(id);
    while (this.#behind.size > 10_000) this.#behind.delete(this.#behind.values().next().value!);
  }

  /**
   * How many jobs beyond its room a claim may take of each listed destination, to wait here for its
   * slots (loaded with the rest of the claim): those `#mayWait` lets wait, within the same bounds.
   * Under a backlog behind a fast endpoint, claims otherwise took only the slots freed during the
   * previous one (about 12 of 28, each claim ~3.5 ms of PostgreSQL's time whatever its size).
   */
  #extraShares(room: ReadonlyMap<string, number>): Map<string, number> {
    const { config } = this.#ctx;
    const extra = new Map<string, number>();
    let left = config.deliveryConcurrency - this.#waitTotal;
    for (const [id, n] of room) {
      if (left <= 0) break;
      if (n <= 0 || !this.#fair.fast(id)) continue;
      const e = Math.min(left, config.endpointConcurrency - (this.#waitCount.get(id) ?? 0));
      if (e <= 0) continue;
      extra.set(id, e);
      left -= e;
    }
    return extra;
  }

  /**
   * Splits a claim that took `extra` jobs of fast destinations beyond their room: round-robin over
   * destinations, oldest first, what the claim would have taken without them (at most `base`, each
   * destination within its own room) starts; the rest wait here if their destination is fast,
   * within the waiting bounds (`#mayWait`'s), counted from now on, and otherwise go back to the
   * queue, due now. Under fan-out (100 endpoints) the bigger limit takes more jobs of destinations
   * without extra too: sending those back made each claim's surplus a write and another claim
   * (fan-out fell from 1,455-1,904 to 1,052-1,152 deliveries/s on SQLite).
   */
  #splitClaim(jobs: readonly JobRow[], extra: ReadonlyMap<string, number>, room: ReadonlyMap<string, number>, base: number, now: number): { start: JobRow[]; toWait: Set<JobRow> } {
    const byDest = new Map<string, JobRow[]>();
    for (const job of jobs) {
      const list = byDest.get(job.destination_id);
      if (list) list.push(job);
      else byDest.set(job.destination_id, [job]);
    }
    // A claim returns the lease end as `run_at`: creation time and id give the jobs' order.
    for (const list of byDest.values()) list.sort((a, b) => a.created_at - b.created_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const start: JobRow[] = [];
    const toWait = new Set<JobRow>();
    const { config } = this.#ctx;
    const started = new Map<string, number>();
    let back = false;
    for (let turn = 0; ; turn++) {
      let any = false;
      for (const [id, list] of byDest) {
        const job = list[turn];
        if (!job) continue;
        any = true;
        const e = extra.get(id) ?? 0;
        const n = started.get(id) ?? 0;
        if (start.length < base && n < (room.get(id) ?? Infinity) - e) {
          start.push(job);
          started.set(id, n + 1);
        } else if (this.#fair.fast(id) && this.#waitTotal < config.deliveryConcurrency && (this.#waitCount.get(id) ?? 0) < config.endpointConcurrency) {
          toWait.add(job);
          this.#waitCount.set(id, (this.#waitCount.get(id) ?? 0) + 1);
          this.#waitTotal += 1;
        } else {
          this.#recorder.add({ kind: "defer", job, runAt: now });
          back = true;
        }
      }
      if (!any) break;
    }
    if (back) this.#wakeAt(now);
    return { start, toWait };
  }

  /**
   * Claimed or handed-over jobs, by kind: loaded, passed through the gates, started. `held`: the
   * jobs' slots are held in `#fair` (taken or waiting jobs) until each passes its gates. `toWait`:
   * claimed jobs with no slot, loaded with the others and then filed to wait here (`#extraShares`).
   */
  async #dispatch(jobs: JobRow[], known?: ReadonlyMap<string, unknown>, held = false, toWait?: ReadonlySet<JobRow>): Promise<void> {
    const byKind = new Map<string, JobRow[]>();
    for (const job of jobs) {
      const group = byKind.get(job.kind);
      if (group) group.push(job);
      else byKind.set(job.kind, [job]);
    }
    for (const [name, group] of byKind) await this.#dispatchKind(name, group, known, held, toWait);
  }

  async #dispatchKind(name: string, jobs: JobRow[], known: ReadonlyMap<string, unknown> | undefined, held: boolean, toWait?: ReadonlySet<JobRow>): Promise<void> {
    const { clock, logger } = this.#ctx;
    const kind = this.#kinds.get(name);
    let loaded: ReadonlyMap<string, Loaded>;
    try {
      if (!kind) throw new Error(`no destination kind runs ${name} jobs on this worker`);
      loaded = await kind.load(jobs, known);
    } catch (err) {
      for (const job of jobs) {
        if (toWait?.has(job)) this.#unwait(job.destination_id);
        else this.#reserved -= 1;
      }
      if (held) for (const job of jobs) this.#fair.unhold(job.destination_id);
      const runAt = clock.now() + 5_000;
      for (const job of jobs) this.#recorder.add({ kind: "defer", job, runAt });
      logger.error({ err, kind: name }, "could not load deliveries; retrying in 5 s");
      this.#drainWaiting();
      return;
    }
    for (const job of jobs) {
      if (toWait?.has(job)) {
        this.#fileLoadedWaiter(kind!, job, loaded.get(job.id));
        continue;
      }
      // Held until here, so no other job took its slot while the batch loaded.
      if (held) this.#fair.unhold(job.destination_id);
      const item = loaded.get(job.id);
      // Its item or destination is gone (an expunged message's jobs are deleted with its
      // content; one already taken is dropped here), or the destination is disabled.
      if (!item || item.destination.disabled === 1) {
        this.#release();
        this.#recorder.add({ kind: "drop", job }, undefined, kind!.finished && (() => kind!.finished!(job)));
        continue;
      }
      const now = clock.now();
      const ready = kind!.readiness?.(job, item, now) ?? GO;
      if (!ready.go) {
        this.#release();
        if ("expired" in ready) this.#recorder.add({ kind: "done", job, attempt: ready.expired }, undefined, kind!.finished && (() => kind!.finished!(job)));
        // Not from here now (e.g. no agent here: one connecting anywhere makes these due again).
        else this.#recorder.add({ kind: "defer", job, runAt: now + ready.wait + Math.round(this.#random() * 1000) });
        continue;
      }
      if (!(await this.#admit(kind!.table, item.destination, job, clock.now()))) continue;
      this.#track(
        this.#attempt(kind!, job, item).then(() => undefined),
        item.destination.id,
        job,
      );
    }
    // Slots the gates gave back (a drop, a deferral) may be what jobs waiting here need.
    this.#drainWaiting();
  }

  /** A claimed job loaded to wait for a slot here (`#extraShares`); a gone item or destination drops it. */
  #fileLoadedWaiter(kind: DestinationKind, job: JobRow, item: Loaded | undefined): void {
    const dest = job.destination_id;
    if (!item || item.destination.disabled === 1) {
      this.#unwait(dest);
      this.#recorder.add({ kind: "drop", job }, undefined, kind.finished && (() => kind.finished!(job)));
      return;
    }
    this.#fileWaiter(job, item.item);
  }

  /** Files a job counted as waiting (`#waitCount`) behind its destination's other waiting jobs. */
  #fileWaiter(job: JobRow, item: unknown): void {
    const list = this.#waiting.get(job.destination_id);
    if (list) list.push({ job, item });
    else this.#waiting.set(job.destination_id, [{ job, item }]);
  }

  /**
   * One attempt by the job's kind, recorded with its retry (or deferred, when it was no attempt at
   * the destination), then announced by the kind. `answerLimit`: a caller waits for the answer.
   */
  async #attempt(kind: DestinationKind, job: JobRow, item: Loaded, answerLimit?: number): Promise<Attempted> {
    const { config, clock } = this.#ctx;
    const out = await kind.deliver(job, item, this.#abort.signal, answerLimit);
    // Shutting down: the lease is released, the attempt not counted.
    if (this.#abort.signal.aborted && !out.result.ok && out.result.statusCode === 0) return out;
    const now = clock.now();
    const wait = kind.notAttempted?.(out.result);
    if (wait !== undefined) {
      this.#recorder.add({ kind: "defer", job, runAt: now + wait });
      return out;
    }
    const retryAt = nextRetryAt(config.retrySchedule, job.attempt, now, out.result, this.#random);
    this.#recorder.add(
      retryAt === undefined ? { kind: "done", job, attempt: out.attempt } : { kind: "retry", job, attempt: out.attempt, runAt: retryAt },
      { endpointId: item.destination.id, destination: kind.health, ok: out.result.ok, at: now, knownFailures: item.destination.consecutive_failures },
      // Over once recorded; a failed commit leaves the job leased, to come back with its item.
      retryAt === undefined && kind.finished ? () => kind.finished!(job) : undefined,
    );
    kind.attempted(job, item, out, retryAt !== undefined, now);
    return out;
  }

  /**
   * Sends a job this node already holds the lease of (an input in `wait` mode delivers its first
   * output while the caller waits), `item` as its kind would have loaded it, and records it like
   * any other attempt.
   */
  deliverLeased(job: JobRow, item: Loaded): Promise<Attempted> {
    const kind = this.#kinds.get(job.kind);
    if (!kind) return Promise.reject(new Error(`no destination kind runs ${job.kind} jobs on this worker`));
    const p = this.#attempt(kind, job, item, this.#ctx.config.maxPayloadSize);
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

  /** Counts an attempt against its destination's concurrency until it settles. */
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
        this.#drainWaiting();
        // A freed slot may be the room a destination the claim skipped was waiting for.
        if (this.#backlog || this.#skipping) this.wake();
      });
    this.#inflight.add(p);
  }

  /**
   * The gates every destination passes, whatever its kind (endpoint, URL or agent output): circuit
   * breaker, per-destination concurrency, rate limit. True when the job may start now; otherwise
   * it was put back in the queue and its slot freed.
   */
  async #admit(table: DestinationKind["table"], dest: DestinationHealth, job: JobRow, now: number): Promise<boolean> {
    const { config, store } = this.#ctx;
    if (dest.consecutive_failures >= config.circuitBreakerThreshold) {
      if (dest.circuit_open_until !== null && dest.circuit_open_until > now) return this.#putBack(job, this.#heldBack(dest.id, dest.circuit_open_until));
      // Half-open: exactly one node wins the right to send a probe. A lease-like write: a crash
      // that loses it leaves the circuit half-open, and the next node to look sends the probe.
      // Committed with an fsync it took 0.4 ms on average and up to 5 ms of SQLite's event loop.
      const until = now + config.circuitBreakerCooldown;
      const won = await store.leaseWrite((db) =>
        db
          // Both tables keep the same health columns (migration 0013).
          .updateTable(table as "endpoints")
          .set({ circuit_open_until: until })
          .where("id", "=", dest.id)
          .where((eb) => eb.or([eb("circuit_open_until", "is", null), eb("circuit_open_until", "<=", now)]))
          .executeTakeFirst(),
      );
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
}
