import type { Insertable } from "kysely";
import type { Context } from "../context/index.js";
import { newId } from "../ids/index.js";
import type { Db } from "../store/index.js";
import type { InboundRejectionsTable } from "../store/schema.js";

const MAX_QUEUED = 10_000;
const WARN_AFTER = 10;
const WINDOW_MS = 60_000;

/**
 * Every refused request is recorded (time, input, method, code, reason; never the body nor a
 * header), counted in metrics and, when an input keeps refusing, logged as a warning once a
 * minute. Rows are written in batches: under a flood of forged requests recording must not cost
 * one transaction each. Past 10,000 queued rows new ones are dropped (still counted in metrics).
 * A bucket keeps its newest `config.rejectionsKept` rows: every tenth of that many recorded, one
 * indexed DELETE trims the older ones, so a flood costs a row and a tenth of a deleted row per
 * request, and its rows on disk stay under 1.1 × the cap per node. A refusal with no bucket
 * (none today: unknown inputs are answered before any check) is counted, not stored: nobody
 * could list it, and nothing would ever delete it.
 */
export class RejectionLog {
  readonly #ctx: Context;
  #queue: Insertable<InboundRejectionsTable>[] = [];
  #flushing: Promise<void> | undefined;
  readonly #recent = new Map<string, { count: number; since: number; warned: boolean }>();
  /** Rows recorded per bucket since its last trim. */
  readonly #sinceTrim = new Map<string, number>();
  readonly #listeners = new Set<(bucketIds: ReadonlySet<string>) => void>();

  constructor(ctx: Context) {
    this.#ctx = ctx;
  }

  /** Called after each written batch with the buckets it touched (the console's live tail). */
  onWritten(listener: (bucketIds: ReadonlySet<string>) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  record(r: { orgId: string | null; bucketId: string | null; inputId: string; status: number; code: string; reason: string; method?: string }): void {
    const { clock, events, logger } = this.#ctx;
    const now = clock.now();
    events.emit("ingress:rejected", { orgId: r.orgId, bucketId: r.bucketId, inputId: r.inputId, status: r.status, code: r.code });
    const w = this.#recent.get(r.inputId);
    if (!w || now - w.since > WINDOW_MS) {
      if (this.#recent.size > 10_000) this.#recent.clear();
      this.#recent.set(r.inputId, { count: 1, since: now, warned: false });
    } else if (++w.count >= WARN_AFTER && !w.warned) {
      w.warned = true;
      logger.warn({ inputId: r.inputId, bucketId: r.bucketId, rejections: w.count, lastCode: r.code }, "input keeps refusing requests (wrong secret, clock skew or an attack?)");
    }
    if (this.#queue.length >= MAX_QUEUED || r.bucketId === null) return;
    this.#queue.push({
      id: newId("rej"),
      org_id: r.orgId,
      bucket_id: r.bucketId,
      input_id: r.inputId,
      status_code: r.status,
      code: r.code,
      // Methods are tokens (RFC 9110 §9.1); a custom one is cut short, it is only shown.
      method: r.method?.slice(0, 16) ?? null,
      reason: `${r.code}: ${r.reason}`.slice(0, 500),
      at: now,
    });
    this.#kick();
  }

  flush(): Promise<void> {
    return this.#flushing ?? Promise.resolve();
  }

  async #trim(rows: readonly Insertable<InboundRejectionsTable>[]): Promise<void> {
    const kept = this.#ctx.config.rejectionsKept;
    const every = Math.max(1, Math.floor(kept / 10));
    const due: string[] = [];
    if (this.#sinceTrim.size > 10_000) this.#sinceTrim.clear();
    for (const row of rows) {
      if (!row.bucket_id) continue;
      const n = (this.#sinceTrim.get(row.bucket_id) ?? 0) + 1;
      if (n >= every) {
        this.#sinceTrim.set(row.bucket_id, 0);
        if (!due.includes(row.bucket_id)) due.push(row.bucket_id);
      } else this.#sinceTrim.set(row.bucket_id, n);
    }
    for (const bucketId of due) await trimRejections(this.#ctx.store.db, bucketId, kept);
  }

  #kick(): void {
    if (this.#flushing) return;
    this.#flushing = (async () => {
      while (this.#queue.length > 0) {
        const rows = this.#queue.splice(0, 500);
        const buckets = new Set<string>();
        for (const row of rows) if (row.bucket_id) buckets.add(row.bucket_id);
        try {
          await this.#ctx.store.db.insertInto("inbound_rejections").values(rows).execute();
          await this.#trim(rows);
        } catch (err) {
          this.#ctx.logger.error({ err, rows: rows.length }, "could not record rejected requests");
        }
        for (const l of this.#listeners) l(buckets);
      }
    })().finally(() => {
      this.#flushing = undefined;
      if (this.#queue.length > 0) this.#kick();
    });
  }
}

/**
 * Deletes a bucket's rejection records older than its `kept` newest (ids are time-ordered ULIDs).
 * One statement on the (bucket_id, id) index; nothing when there are `kept` or fewer.
 */
export async function trimRejections(db: Db, bucketId: string, kept: number): Promise<number> {
  const r = await db
    .deleteFrom("inbound_rejections")
    .where("bucket_id", "=", bucketId)
    .where("id", "<", (qb) => qb.selectFrom("inbound_rejections").select("id").where("bucket_id", "=", bucketId).orderBy("id", "desc").limit(1).offset(kept - 1))
    .executeTakeFirst();
  return Number(r.numDeletedRows);
}
