import { createHash } from "node:crypto";
import type { Insertable } from "kysely";
import type { Context } from "../context/index.js";
import { HookwardenError } from "../errors/index.js";
import { newId } from "../ids/index.js";
import type { JobRow } from "../queue/types.js";
import { HandOffBatch, type HandOff } from "../queue/hand-off.js";
import { fitsOneStatement, insertDedupedWithJobs, insertWithJobs } from "../store/batch-write.js";
import { commitBatch, type Db } from "../store/index.js";
import { GroupCommit } from "../store/group-commit.js";
import { notDurable } from "../store/errors.js";
import type { InboundRequestsTable } from "../store/schema.js";
import type { ResolvedInput } from "./lookup.js";
import { loadBucketOutputs, type OutputCache } from "./output-cache.js";
import type { OutputRow } from "./outputs.js";
import type { HeldRequests } from "./held-requests.js";
import { keptForm, sealStored, toStored, type StoredRequest } from "./stored-request.js";
import type { ReceivedRequest } from "./types.js";

export const DEDUPE_WINDOW_MS = 24 * 3_600_000;

export interface IntakeItem {
  resolved: ResolvedInput;
  req: ReceivedRequest;
  /** The provider's delivery id, when the input dedupes and the request carries one. */
  deliveryId: string | undefined;
  /** What the caller will be answered (static mode); wait mode records 0 until it knows. */
  statusCode: number;
  /** Wait mode: lease the first output's job to this node so the handler can deliver it now. */
  leaseFirstTo: string | undefined;
}

export interface IntakeResult {
  requestId: string;
  duplicate: boolean;
  outputs: OutputRow[];
  /** The first output's job, already leased to this node (wait mode only). */
  leasedJob: JobRow | undefined;
}

/** The local worker's direct hand-off of new forward jobs, started with their requests in the clear. */
export type ForwardHandOff = HandOff<ReadonlyMap<string, StoredRequest>>;

interface Pending {
  item: IntakeItem;
  id: string;
  /** What is stored and forwarded, in the clear (non-ephemeral buckets): handed to the worker as is. */
  kept: StoredRequest | undefined;
  /** An ephemeral bucket's request in the clear: held in memory only (`HeldRequests`), never stored. */
  clear: StoredRequest | undefined;
  dedupeKey: string | undefined;
  /** The row as it will be inserted: sealed in `accept`, outside any transaction. */
  row: Insertable<InboundRequestsTable>;
  resolve: (r: IntakeResult) => void;
  reject: (e: unknown) => void;
}

const MAX_BATCH = 256;
const MAX_QUEUED = 20_000;

/**
 * Group commit for received requests, as the publisher does for messages: the request row (sealed
 * unless the bucket is ephemeral), its dedupe key and one forward job per output commit in one
 * transaction before the caller gets its 2xx; requests arriving meanwhile share the next commit.
 *
 * One commit at a time, on PostgreSQL too: with four in flight each of a commit's round trips took
 * ~2 ms instead of ~1 ms (PostgreSQL, gateway and callers share the bench machine's two cores),
 * and ingest p50 at 300 req/s went from 13 ms to 20 ms.
 */
export class Intake {
  readonly #ctx: Context;
  readonly #worker: ForwardHandOff | undefined;
  readonly #outputs: OutputCache | undefined;
  readonly #held: HeldRequests | undefined;
  readonly #group: GroupCommit<Pending>;

  /**
   * `worker` takes the forwards to URL outputs it can start at once (as the publisher's hand-off);
   * `outputs` is the node's cache of bucket outputs (without it they are read for every batch);
   * `held` keeps ephemeral buckets' requests in memory for their jobs (without it they are not
   * forwarded).
   */
  constructor(ctx: Context, worker?: ForwardHandOff, outputs?: OutputCache, held?: HeldRequests) {
    this.#ctx = ctx;
    this.#worker = worker;
    this.#outputs = outputs;
    this.#held = held;
    this.#group = new GroupCommit<Pending>(ctx.store, { enabled: ctx.config.groupCommit, maxBatch: MAX_BATCH, commit: (batch, release) => this.#commit(batch, release) });
  }

  accept(item: IntakeItem): Promise<IntakeResult> {
    if (this.#group.waiting >= MAX_QUEUED) return Promise.reject(new HookwardenError("E_UNAVAILABLE", 503, "Too many requests waiting to be stored; retry shortly", { retryAfter: 1 }));
    // Only a digest of the provider's id is kept: ephemeral buckets keep no header values.
    const dedupeKey = item.deliveryId === undefined ? undefined : createHash("sha256").update(item.deliveryId).digest("hex");
    const id = newId("req");
    const { bucket, input } = item.resolved;
    // Sealed here rather than inside the transaction: on PostgreSQL the CPU (~60 µs a request)
    // would otherwise lengthen every transaction of the batch it joins.
    const kept = bucket.ephemeral === 1 ? undefined : keptForm(item.req, bucket.auth_type);
    const row: Insertable<InboundRequestsTable> = {
      id,
      org_id: bucket.org_id,
      bucket_id: bucket.id,
      input_id: input.id,
      status_code: item.statusCode,
      size: item.req.body.length,
      data_enc: kept === undefined ? null : sealStored(this.#ctx.keyring, id, kept),
      received_at: item.req.receivedAt,
      trace_context: item.req.traceContext ?? null,
    };
    if (kept !== undefined && item.req.traceContext !== undefined) kept.trace = item.req.traceContext;
    const clear: StoredRequest | undefined = bucket.ephemeral === 1 && this.#held ? { ...toStored(item.req), inputId: input.id, trace: item.req.traceContext } : undefined;
    return new Promise((resolve, reject) => this.#group.add({ item, id, kept, clear, dedupeKey, row, resolve, reject }));
  }

  /**
   * Resolves when the next batch is on disk, as an accepted request's answer would, while storing
   * nothing: an unknown input's answer waits for it, so it is not the one answer that comes
   * before any commit (which told unknown ids from known ones by time alone). A turn that holds no
   * request still waits for `Store.durable()` and for the batch committing before it.
   */
  barrier(): Promise<void> {
    return this.#group.barrier();
  }

  /** Resolves once every accepted request has been committed or refused. */
  drain(): Promise<void> {
    return this.#group.drain();
  }

  async #commit(batch: Pending[], release: () => void): Promise<void> {
    const { store, clock, config } = this.#ctx;
    const now = clock.now();
    const seen = new Set<string>();
    const dupes = new Set<Pending>();
    for (const p of batch) {
      if (p.dedupeKey === undefined) continue;
      const k = `${p.item.resolved.input.id}\0${p.dedupeKey}`;
      if (seen.has(k)) dupes.add(p);
      seen.add(k);
    }
    // Read before the transaction, as the publisher reads endpoints: inside it this read cost the
    // same round trip and kept the transaction open for it. No lock was taken on these rows
    // either way; an output removed meanwhile leaves jobs the worker drops.
    const bucketIds = [...new Set(batch.map((p) => p.item.resolved.bucket.id))];
    const byBucket = await (this.#outputs ? this.#outputs.of(bucketIds) : loadBucketOutputs(this.#ctx, bucketIds));
    const enabled = new Map<string, OutputRow[]>();
    for (const [id, b] of byBucket) enabled.set(id, b.outputs.filter((o) => o.disabled === 0));
    const outputsOf = (bucketId: string) => enabled.get(bucketId) ?? [];
    const typeOf = new Map<string, string>();
    for (const list of enabled.values()) for (const o of list) typeOf.set(o.id, o.type);
    // PostgreSQL writes a batch this size as one statement (store/batch-write); larger ones take several.
    const oneStatement = fitsOneStatement(
      store,
      batch.length,
      batch.reduce((n, p) => n + (p.item.resolved.bucket.ephemeral === 1 && !p.clear ? 0 : outputsOf(p.item.resolved.bucket.id).length), 0),
    );
    const results = new Map<Pending, IntakeResult>();
    // Forwards to URL outputs the local worker can start now are inserted leased to it and handed
    // over with the request in the clear (no claim, no re-read, no decryption).
    const handOff = new HandOffBatch(this.#worker, this.#ctx.queue);
    const kept = new Map<string, StoredRequest>();
    /** Ephemeral requests held for this batch's jobs: let go again if the batch does not commit. */
    const holding: { id: string; jobs: number }[] = [];
    const duplicate = (p: Pending) => results.set(p, { requestId: p.id, duplicate: true, outputs: [], leasedJob: undefined });
    const write = async (db: Db) => {
      const fresh = batch.filter((p) => !dupes.has(p));
      for (const p of dupes) duplicate(p);
      if (fresh.length === 0) return;
      const rows: Insertable<InboundRequestsTable>[] = [];
      const jobRows: JobRow[] = [];
      for (const p of fresh) {
        const { bucket } = p.item.resolved;
        rows.push(p.row);
        const mine = outputsOf(bucket.id);
        let leasedJob: JobRow | undefined;
        // An ephemeral request's jobs are this worker's alone (`held_by`): only it has the request.
        const heldBy = p.clear ? this.#held!.holder : null;
        if (bucket.ephemeral === 0 || p.clear) {
          if (p.clear && mine.length > 0) {
            this.#held!.hold(p.id, p.clear, mine.length);
            holding.push({ id: p.id, jobs: mine.length });
          }
          mine.forEach((o, i) => {
            const leased = i === 0 && p.item.leaseFirstTo !== undefined;
            const job: JobRow = {
              id: newId("job"),
              org_id: bucket.org_id,
              scope_id: bucket.id,
              item_id: p.id,
              destination_id: o.id,
              attempt: 0,
              trigger_type: 0,
              run_at: leased ? now + config.leaseDuration : now,
              locked_by: leased ? p.item.leaseFirstTo! : null,
              created_at: p.item.req.receivedAt,
              kind: "forward",
              held_by: heldBy,
            };
            if (leased) leasedJob = job;
            jobRows.push(job);
          });
        }
        results.set(p, { requestId: p.id, duplicate: false, outputs: mine, leasedJob });
      }
      for (const p of fresh) {
        if (p.kept) kept.set(p.id, { ...p.kept, inputId: p.item.resolved.input.id });
        else if (p.clear) kept.set(p.id, p.clear);
      }
      const offered = jobRows.filter((j) => j.locked_by === null && typeOf.get(j.destination_id) === "url");
      const notify = handOff.offer(jobRows, offered, now);
      const keys = fresh.map((p) => (p.dedupeKey === undefined ? undefined : { input_id: p.item.resolved.input.id, delivery_id: p.dedupeKey }));
      if (keys.every((k) => k === undefined)) {
        await insertWithJobs(store, db, "inbound_requests", rows, jobRows, notify);
        return;
      }
      // The keys are claimed with the requests they guard (one statement on PostgreSQL); a request
      // whose key was seen within the window is left out with its jobs, and answered as a duplicate.
      const late = await insertDedupedWithJobs(store, db, "inbound_requests", rows, jobRows, notify, { keys, expiresAt: now + DEDUPE_WINDOW_MS, now });
      if (late.size === 0) return;
      const gone = new Set<string>();
      for (const i of late) {
        const p = fresh[i]!;
        duplicate(p);
        kept.delete(p.id);
        gone.add(p.id);
        const h = holding.findIndex((x) => x.id === p.id);
        if (h >= 0) {
          for (let n = 0; n < holding[h]!.jobs; n++) this.#held!.release(p.id);
          holding.splice(h, 1);
        }
      }
      handOff.withdraw(jobRows.filter((j) => gone.has(j.item_id)));
    };
    // Such a batch is one statement, dedupe keys included, and needs no BEGIN/COMMIT; otherwise a
    // key must never commit without its request (the provider's retry would be answered as a
    // duplicate of a request that was never stored), and the statements share one transaction.
    try {
      await commitBatch(store, oneStatement, write);
    } catch (err) {
      handOff.failed();
      for (const h of holding) for (let i = 0; i < h.jobs; i++) this.#held!.release(h.id);
      throw err;
    }
    handOff.committed(kept);
    this.#group.settle(
      () => {
        for (const p of batch) p.resolve(results.get(p)!);
        release();
      },
      (err) => {
        release();
        this.#ctx.logger.error({ err }, "could not flush received requests to disk");
        for (const p of batch) p.reject(notDurable(err, "The request could not be made durable; retry"));
      },
    );
  }
}
