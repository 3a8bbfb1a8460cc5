import type { Context } from "../context/index.js";
import { STATUS_SUCCESS } from "../attempts/destinations.js";
import type { BucketRow } from "./buckets.js";
import type { RejectionLog } from "./rejections.js";
import { listRequests, type ListedRequest } from "./requests.js";

/** One row of a bucket's live tail: the listed request, how it was checked and where it went. */
export interface TailEntry extends ListedRequest {
  /** `verified (stripe)`, `not checked` (input without verification), or the refusal's code. */
  verification: string;
  /** Accepted requests: `pending`, `delivered`, `failed`, or `none` (no output); null when rejected. */
  forward: { state: "pending" | "delivered" | "failed" | "none"; statusCode: number | null; errorCode: string | null; attempts: number } | null;
}

/** The newest rows each read looks at: a tail shows arrivals, not history (the list API pages). */
export const TAIL_ROWS = 25;

/**
 * The newest requests of a bucket, accepted and rejected, with their verification and forward
 * outcome: indexed reads only (requests and rejections by bucket, attempts by request, the
 * bucket's inputs and outputs).
 */
export async function readTail(ctx: Context, bucket: BucketRow, rows = TAIL_ROWS): Promise<TailEntry[]> {
  const listed = (await listRequests(ctx, bucket, { limit: rows - 1, iterator: undefined, status: "all" })).slice(0, rows);
  const accepted = listed.filter((r) => r.status === "accepted").map((r) => r.id);
  const db = ctx.store.db;
  // Not the jobs table: it has no index by request (one would cost every enqueue), so "pending"
  // is read as "an output exists and no attempt yet"; a failed attempt that will be retried
  // shows as failed until the retry lands.
  const [inputs, attempts, outputs] = await Promise.all([
    db.selectFrom("inputs").select(["id", "verification"]).where("bucket_id", "=", bucket.id).execute(),
    accepted.length === 0 ? [] : db.selectFrom("attempts").select(["item_id", "status", "response_status_code", "error_code", "id"]).where("item_id", "in", accepted).where("scope_id", "=", bucket.id).orderBy("id", "desc").execute(),
    db.selectFrom("outputs").select("id").where("bucket_id", "=", bucket.id).where("disabled", "=", 0).limit(1).execute(),
  ]);
  const verificationOf = new Map(inputs.map((i) => [i.id, (JSON.parse(i.verification) as { type?: string }).type ?? "none"]));
  const hasOutput = outputs.length > 0;
  type Row = (typeof attempts)[number];
  const byRequest = new Map<string, Row[]>();
  for (const a of attempts) {
    const list = byRequest.get(a.item_id);
    if (list) list.push(a);
    else byRequest.set(a.item_id, [a]);
  }
  return listed.map((r) => {
    if (r.status === "rejected") return { ...r, verification: r.rejectionCode ?? "rejected", forward: null };
    const type = verificationOf.get(r.inputId) ?? "none";
    const tries = byRequest.get(r.id) ?? [];
    const last = tries[0];
    const state = !last ? (hasOutput ? "pending" : "none") : Number(last.status) === STATUS_SUCCESS ? "delivered" : "failed";
    return {
      ...r,
      verification: type === "none" ? "not checked" : `verified (${type})`,
      forward: { state, statusCode: last ? last.response_status_code : null, errorCode: last?.error_code ?? null, attempts: tries.length },
    };
  });
}

type Listener = (entries: readonly TailEntry[]) => void;

interface Watch {
  bucket: BucketRow;
  listeners: Set<Listener>;
  /** What each listed row looked like when last sent, by id (bounded by TAIL_ROWS). */
  sent: Map<string, string>;
  timer: NodeJS.Timeout | undefined;
  soon: NodeJS.Timeout | undefined;
  reading: boolean;
  again: boolean;
}

/**
 * Live tails, one poller per watched bucket however many streams watch it. A bucket is re-read
 * every `pollMs` (requests accepted or refused on another node of a PostgreSQL cluster show up
 * this way: a short server-side poll of indexed rows, which needs nothing of the dialect), and
 * at once (25 ms later, to gather a burst) when this node accepts, refuses or forwards one of its
 * requests. Only rows that are new or changed are passed on.
 */
export class TailHub {
  readonly #ctx: Context;
  readonly #pollMs: number;
  readonly #watches = new Map<string, Watch>();
  readonly #off: (() => void)[] = [];
  #closed = false;

  constructor(ctx: Context, opts: { rejections?: RejectionLog; pollMs?: number } = {}) {
    this.#ctx = ctx;
    this.#pollMs = opts.pollMs ?? 1000;
    const wake = (bucketId: string | null) => {
      const w = bucketId === null ? undefined : this.#watches.get(bucketId);
      if (w && !w.soon) w.soon = setTimeout(() => this.#read(w), 25);
    };
    this.#off.push(
      ctx.events.on("ingress:accepted", (e) => wake(e.bucketId)),
      ctx.events.on("forward:attempted", (e) => wake(e.bucketId)),
    );
    if (opts.rejections) {
      const off = opts.rejections.onWritten((ids) => {
        for (const id of ids) wake(id);
      });
      this.#off.push(off);
    }
  }

  /** Streams watching right now (all buckets). */
  get size(): number {
    let n = 0;
    for (const w of this.#watches.values()) n += w.listeners.size;
    return n;
  }

  /**
   * Calls `listener` with the newest rows now (the first read, whole), then with every row that
   * arrives or changes. Returns the unsubscribe function.
   */
  async watch(bucket: BucketRow, listener: Listener): Promise<() => void> {
    if (this.#closed) throw new Error("TailHub closed");
    const first = await readTail(this.#ctx, bucket);
    listener(first);
    let w = this.#watches.get(bucket.id);
    if (!w) {
      w = { bucket, listeners: new Set(), sent: new Map(first.map((e) => [e.id, JSON.stringify(e)])), timer: undefined, soon: undefined, reading: false, again: false };
      this.#watches.set(bucket.id, w);
      const watch = w;
      w.timer = setInterval(() => this.#read(watch), this.#pollMs);
      w.timer.unref();
    }
    w.listeners.add(listener);
    const watch = w;
    return () => {
      watch.listeners.delete(listener);
      if (watch.listeners.size === 0) this.#stop(watch);
    };
  }

  close(): void {
    this.#closed = true;
    for (const off of this.#off) off();
    for (const w of this.#watches.values()) this.#stop(w);
  }

  #stop(w: Watch): void {
    clearInterval(w.timer);
    clearTimeout(w.soon);
    w.listeners.clear();
    if (this.#watches.get(w.bucket.id) === w) this.#watches.delete(w.bucket.id);
  }

  #read(w: Watch): void {
    w.soon = undefined;
    if (w.reading) {
      w.again = true;
      return;
    }
    w.reading = true;
    readTail(this.#ctx, w.bucket).then(
      (entries) => {
        const changed: TailEntry[] = [];
        const next = new Map<string, string>();
        for (const e of entries) {
          const text = JSON.stringify(e);
          next.set(e.id, text);
          if (w.sent.get(e.id) !== text) changed.push(e);
        }
        w.sent = next;
        if (changed.length > 0) for (const l of w.listeners) l(changed);
      },
      (err: unknown) => this.#ctx.logger.warn({ err, bucketId: w.bucket.id }, "live tail: could not read the bucket's requests"),
    ).finally(() => {
      w.reading = false;
      if (w.again && this.#watches.get(w.bucket.id) === w) {
        w.again = false;
        this.#read(w);
      }
    });
  }
}
