import type { Insertable } from "kysely";
import type { Context } from "../context/index.js";
import { newId } from "../ids/index.js";
import type { InboundRejectionsTable } from "../store/schema.js";

const MAX_QUEUED = 10_000;
const WARN_AFTER = 10;
const WINDOW_MS = 60_000;

/**
 * Every refused request is recorded (time, input, reason; never the body), counted in metrics and,
 * when an input keeps refusing, logged as a warning once a minute. Rows are written in batches:
 * under a flood of forged requests recording must not cost one transaction each. Past 10,000
 * queued rows new ones are dropped (still counted in metrics).
 */
export class RejectionLog {
  readonly #ctx: Context;
  #queue: Insertable<InboundRejectionsTable>[] = [];
  #flushing: Promise<void> | undefined;
  readonly #recent = new Map<string, { count: number; since: number; warned: boolean }>();

  constructor(ctx: Context) {
    this.#ctx = ctx;
  }

  record(r: { orgId: string | null; bucketId: string | null; inputId: string; status: number; code: string; reason: string }): void {
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
    if (this.#queue.length >= MAX_QUEUED) return;
    this.#queue.push({ id: newId("rej"), org_id: r.orgId, bucket_id: r.bucketId, input_id: r.inputId, status_code: r.status, reason: `${r.code}: ${r.reason}`.slice(0, 500), at: now });
    this.#kick();
  }

  flush(): Promise<void> {
    return this.#flushing ?? Promise.resolve();
  }

  #kick(): void {
    if (this.#flushing) return;
    this.#flushing = (async () => {
      while (this.#queue.length > 0) {
        const rows = this.#queue.splice(0, 500);
        try {
          await this.#ctx.store.db.insertInto("inbound_rejections").values(rows).execute();
        } catch (err) {
          this.#ctx.logger.error({ err, rows: rows.length }, "could not record rejected requests");
        }
      }
    })().finally(() => {
      this.#flushing = undefined;
      if (this.#queue.length > 0) this.#kick();
    });
  }
}
