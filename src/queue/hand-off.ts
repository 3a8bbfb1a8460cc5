import type { JobRow } from "./types.js";

/** What `HandOff.take` needs of a new job row, and sets on the rows it takes. */
export interface TakeRow {
  org_id: string;
  scope_id: string;
  destination_id: string;
  locked_by?: string | null;
  run_at: number;
}

/**
 * The direct hand-off to this node's worker, as an enqueuer (publisher, ingress intake) sees it:
 * before its commit, `take` marks the new jobs the worker can start at once as leased to it (they
 * are inserted so: no claim, no NOTIFY, no re-read); after the commit `start` runs them with `P`,
 * what the enqueuer already holds (the message rows, the requests in the clear); after a failed
 * commit `unreserve` gives their slots back. The delivery worker provides it; the enqueuers use
 * it only through `HandOffBatch`.
 */
export interface HandOff<P> {
  take<T extends TakeRow>(rows: readonly T[], now: number): T[];
  unreserve(rows: readonly TakeRow[]): void;
  start(jobs: JobRow[], held: P): void;
}

/**
 * One enqueuer batch (publisher, ingress intake) through the direct hand-off and the queue, so the
 * protocol is written once: `offer`, inside the batch's write and before its insert, lets the
 * worker take the due jobs it can start now (inserted leased to it); `committed`, after the commit,
 * starts them with what the enqueuer holds and wakes the queue's consumers for the others;
 * `failed`, after a failed commit, gives the taken slots back.
 */
export class HandOffBatch<P> {
  readonly #port: HandOff<P> | undefined;
  readonly #queue: { committed(): void };
  #taken: TakeRow[] = [];
  #queued = false;

  /** `port`: none when the hand-off is off (`--direct-hand-off false`) or this node runs no worker. */
  constructor(port: HandOff<P> | undefined, queue: { committed(): void }) {
    this.#port = port;
    this.#queue = queue;
  }

  /**
   * `rows`: every job the batch inserts; `offered`: those the worker may take. Returns whether
   * any stays queued (the insert then notifies other nodes).
   */
  offer<T extends TakeRow>(rows: readonly T[], offered: readonly T[], now: number): boolean {
    this.#taken = this.#port && offered.length > 0 ? this.#port.take(offered, now) : [];
    this.#queued = rows.length > this.#taken.length;
    return this.#queued;
  }

  /**
   * Inside the batch's write, after its insert: `rows` were not inserted after all (their requests
   * were duplicates); the slots taken for them go back. Rows the worker did not take are ignored.
   */
  withdraw(rows: readonly TakeRow[]): void {
    if (rows.length === 0 || this.#taken.length === 0) return;
    const gone = new Set(rows);
    const back = this.#taken.filter((r) => gone.has(r));
    if (back.length === 0) return;
    this.#taken = this.#taken.filter((r) => !gone.has(r));
    this.#port!.unreserve(back);
  }

  failed(): void {
    if (this.#taken.length > 0) this.#port!.unreserve(this.#taken);
    this.#taken = [];
    this.#queued = false;
  }

  committed(held: P): void {
    if (this.#taken.length > 0) this.#port!.start(this.#taken as JobRow[], held);
    if (this.#queued) this.#queue.committed();
  }
}
