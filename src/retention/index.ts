import { sql } from "kysely";
import type { Context } from "../context/index.js";
import { deleteExpiredDedupeKeys, deleteOldRejections, deleteOldRequests } from "../ingress/retention.js";
import type { Db } from "../store/index.js";
import { DAY_MS } from "../messages/expiry.js";
import { expireMessages } from "./messages.js";

export { messageRetention, DAY_MS } from "../messages/expiry.js";
export { removeMessageContent, contentRemoved } from "./messages.js";

export interface RetentionReport {
  /** Messages whose payload (and their attempts' bodies) were removed. */
  messages: number;
  requests: number;
  attempts: number;
  rejections: number;
  dedupeKeys: number;
  idempotencyKeys: number;
  /** SQLite pages given back to the filesystem (always 0 on PostgreSQL). */
  reclaimedPages: number;
}

export interface RetentionOptions {
  /** Rows per transaction (default `config.retentionBatchSize`). */
  batchSize?: number;
  /** Pages per `incremental_vacuum` step (default 256: 1 MiB with 4 KiB pages). */
  vacuumStep?: number;
  /** Checked between batches: a stopping server ends the pass early (the next one carries on). */
  stopped?: () => boolean;
}

/** Pages per `incremental_vacuum` step: about 1 ms of work, short enough not to delay a delivery. */
const VACUUM_STEP = 256;

/** Lets publishes, intake and deliveries queued meanwhile run between two batches. */
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * One retention pass (issue 11), in small batches: each batch is one short transaction of at
 * most `batchSize` rows, committed relaxed (a crash repeats it, harmlessly), followed by a turn
 * of the event loop, so delivery and publishing are never held behind the cleaner for more than
 * one batch. In order:
 *
 * 1. messages whose `expires_at` passed lose their payload and their attempts' bodies (the rows
 *    stay, as in Svix); a message with a job still pending keeps its content until the job ends;
 * 2. received requests older than their bucket's `retentionDays` are deleted with their
 *    attempts, then rejection records; expired dedupe and idempotency keys;
 * 3. SQLite: the freed pages are given back to the filesystem in `vacuumStep`-page steps.
 *
 * Idempotent, so every node may run it on its own timer.
 */
export async function runRetention(ctx: Context, opts: RetentionOptions = {}): Promise<RetentionReport> {
  const { store, clock, config } = ctx;
  const limit = opts.batchSize ?? config.retentionBatchSize;
  const stopped = opts.stopped ?? (() => false);
  const report: RetentionReport = { messages: 0, requests: 0, attempts: 0, rejections: 0, dedupeKeys: 0, idempotencyKeys: 0, reclaimedPages: 0 };
  /** Runs `batch` until it handles fewer than `limit` rows. */
  const drain = async (batch: (db: Db) => Promise<number>): Promise<void> => {
    while (!stopped()) {
      const n = await store.relaxed(batch);
      await yieldToLoop();
      if (n < limit) return;
    }
  };

  const now = clock.now();
  await drain(async (db) => {
    const n = await expireMessages(db, now, limit, store.capabilities.reclaimsByRelocation);
    report.messages += n;
    return n;
  });

  const buckets = await store.db.selectFrom("buckets").select(["id", "retention_days"]).execute();
  for (const b of buckets) {
    const cutoff = now - b.retention_days * DAY_MS;
    await drain(async (db) => {
      const r = await deleteOldRequests(db, b.id, cutoff, limit);
      report.requests += r.requests;
      report.attempts += r.attempts;
      return r.requests;
    });
    await drain(async (db) => {
      const n = await deleteOldRejections(db, b.id, cutoff, limit);
      report.rejections += n;
      return n;
    });
  }
  await drain(async (db) => {
    const n = await deleteExpiredDedupeKeys(db, now, limit);
    report.dedupeKeys += n;
    return n;
  });
  await drain(async (db) => {
    const r = await db
      .deleteFrom("idempotency_keys")
      .where(sql<boolean>`(scope, key) in (select scope, key from idempotency_keys where expires_at <= ${now} limit ${limit})`)
      .executeTakeFirst();
    const n = Number(r.numDeletedRows);
    report.idempotencyKeys += n;
    return n;
  });

  const step = opts.vacuumStep ?? VACUUM_STEP;
  while (!stopped()) {
    const { released, remaining } = await store.reclaimSpace(step);
    report.reclaimedPages += released;
    await yieldToLoop();
    if (released === 0 || remaining === 0) break;
  }
  return report;
}

/**
 * Runs `runRetention` every `config.retentionInterval`, never two passes at once; `stop()` ends a
 * running pass after its current batch. Started by the composition root (src/server).
 */
export class RetentionCleaner {
  readonly #ctx: Context;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(ctx: Context) {
    this.#ctx = ctx;
  }

  start(): void {
    this.#timer = setInterval(() => void this.runNow(), this.#ctx.config.retentionInterval);
    this.#timer.unref();
  }

  /** One pass now, unless one is running (then that one's promise). */
  runNow(): Promise<void> {
    this.#running ??= runRetention(this.#ctx, { stopped: () => this.#stopped })
      .then(
        (r) => this.#ctx.logger.info({ retention: r }, "retention pass done"),
        (err: unknown) => this.#ctx.logger.error({ err }, "retention pass failed"),
      )
      .finally(() => (this.#running = undefined));
    return this.#running;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#running;
  }
}
