import type { Db, Store } from "../store/index.js";
import { insertJobs, type NewJob } from "./enqueue.js";

/** What the caller's transaction may do to the queue (`JobQueue.transaction`). */
export interface QueueWrites {
  /** Queues `jobs`, due at `now`, in this transaction. */
  enqueue(jobs: NewJob | readonly NewJob[], now: number): Promise<void>;
  /** Jobs already queued became due in this transaction (a lifted pause): announced like new ones. */
  due(): void;
}

/**
 * The job queue as the rest of the gateway sees it (the svix server's anchor: the API only
 * enqueues, the delivery worker is one consumer). Producers (resend, recover, send-example,
 * replay, incident resume) write inside `transaction`, which announces their jobs inside it
 * (PostgreSQL NOTIFY, for every node) and wakes this node's consumers after the commit: a producer
 * cannot queue a job and forget the wake, which would leave it to the next poll (a second by
 * default). The batch writers (publisher, ingress intake) insert their jobs in their own group
 * commit with the NOTIFY folded into the insert (`store/batch-write.ts`) and call `committed`.
 *
 * The local worker registers with `consume` (on an API-only node, the worker that sends only the
 * ephemeral requests that node holds); the CLI registers nothing, and its jobs reach the workers
 * through NOTIFY (or the poll).
 */
export class JobQueue {
  readonly #store: Store;
  readonly #consumers = new Set<() => void>();
  #listening: Promise<void> | undefined;

  constructor(store: Store) {
    this.#store = store;
  }

  /**
   * Runs `fn` in a transaction of its own; if it queued jobs (or made queued ones due), other
   * nodes are told before the commit and this node's worker after it.
   *
   * @example
   * await ctx.queue.transaction(async (trx, queue) => {
   *   await trx.insertInto("messages").values(row).execute();
   *   await queue.enqueue({ orgId, appId, msgId: row.id, endpointId, triggerType: TRIGGER_MANUAL }, now);
   * });
   */
  async transaction<T>(fn: (trx: Db, queue: QueueWrites) => Promise<T>): Promise<T> {
    let announce = false;
    const result = await this.#store.db.transaction().execute(async (trx) => {
      const out = await fn(trx, {
        enqueue: async (jobs, now) => {
          const list: readonly NewJob[] = isList(jobs) ? jobs : [jobs];
          if (list.length === 0) return;
          await insertJobs(trx, list, now);
          announce = true;
        },
        due: () => {
          announce = true;
        },
      });
      if (announce) await this.#store.notifyJobs(trx);
      return out;
    });
    if (announce) this.committed();
    return result;
  }

  /** Jobs were committed outside `transaction` (a batch writer, which sends its own NOTIFY): wakes this node's worker. */
  committed(): void {
    for (const wake of this.#consumers) wake();
  }

  /**
   * Registers a consumer (the local delivery worker): `wake` runs after every commit that queued
   * jobs on this node, and whenever another node announces some (PostgreSQL LISTEN, one connection
   * however many consumers). Returns the unregistration.
   */
  async consume(wake: () => void): Promise<() => void> {
    this.#consumers.add(wake);
    try {
      await (this.#listening ??= this.#store.listenJobs(() => this.committed()).catch((err: unknown) => {
        this.#listening = undefined;
        throw err;
      }));
    } catch (err) {
      this.#consumers.delete(wake);
      throw err;
    }
    return () => this.#consumers.delete(wake);
  }
}

function isList(jobs: NewJob | readonly NewJob[]): jobs is readonly NewJob[] {
  return Array.isArray(jobs);
}
