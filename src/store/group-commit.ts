import { isStorageFault } from "./errors.js";
import { settleWhenDurable, type Store } from "./index.js";

/** An item waiting for its commit: the group commit refuses it when its batch cannot commit. */
export interface Committable {
  reject(err: unknown): void;
}

export interface GroupCommitOptions<T extends Committable> {
  /**
   * The off switch (`--group-commit false`): each item commits alone, as soon as it arrives, with
   * no loop turn spent collecting neighbours. Still answered once durable (`Store.durable`).
   */
  readonly enabled: boolean;
  /** At most this many items per commit. */
  readonly maxBatch: number;
  /**
   * Writes one batch and answers its items, normally through `GroupCommit.settle` once durable;
   * calls `release` then too (it answers `barrier()` callers). A throw fails the batch: see `add`.
   */
  readonly commit: (batch: T[], release: () => void) => Promise<void>;
  /** What an item is refused with when it failed alone (e.g. a foreign-key violation → 404). */
  readonly refusal?: (err: unknown) => unknown;
}

/**
 * Group commit, written once for every writer whose 2xx promises durability (the publisher, the
 * ingress intake): items that arrive while a batch commits and is flushed share the next commit,
 * so N fsyncs become one (on SQLite the flush, `Store.durable`, runs in the thread pool, and the
 * event loop serves requests meanwhile). One commit at a time, on PostgreSQL too (with four in
 * flight each round trip of a commit doubled on the bench machine's two cores).
 *
 * A batch that fails for a storage fault (database down, disk full) refuses every item alike; any
 * other failure retries the items one by one, so one bad row does not fail its neighbours.
 */
export class GroupCommit<T extends Committable> {
  readonly #store: Store;
  readonly #opts: GroupCommitOptions<T>;
  #queue: T[] = [];
  /** Callers of `barrier()` waiting for the next batch to be on disk. */
  #barriers: (() => void)[] = [];
  /** Committed batches waiting for `Store.durable` before their items are answered. */
  readonly #settling = new Set<Promise<void>>();
  #flushing: Promise<void> | undefined;

  constructor(store: Store, opts: GroupCommitOptions<T>) {
    this.#store = store;
    this.#opts = opts;
  }

  /** Items waiting for a commit (callers refuse new work past their bound: 503 + Retry-After). */
  get waiting(): number {
    return this.#queue.length;
  }

  /** Queues `item` for the next commit. */
  add(item: T): void {
    this.#queue.push(item);
    this.#kick();
  }

  /**
   * Resolves when the next batch is on disk, as an item's answer would, while storing nothing. A
   * turn that holds no item still waits for `Store.durable()` and for the batch committing before it.
   */
  barrier(): Promise<void> {
    return new Promise((resolve) => {
      this.#barriers.push(resolve);
      this.#kick();
    });
  }

  /** Answers a committed batch once it is on disk: `settle` then, `fail` if the flush failed. */
  settle(settle: () => void, fail: (err: unknown) => void): void {
    settleWhenDurable(this.#store, this.#settling, settle, fail);
  }

  /** Resolves once every item added so far has been committed or refused. */
  async drain(): Promise<void> {
    while (this.#flushing || this.#settling.size > 0) {
      await this.#flushing;
      await Promise.all([...this.#settling]);
    }
  }

  #kick(): void {
    if (this.#flushing) return;
    // Collect the batch one event-loop turn later (setImmediate runs after the poll phase has read
    // every socket that is ready). better-sqlite3 commits synchronously, so without this turn no
    // request could arrive during a commit and every batch held exactly one item: 3,000 publishes
    // at concurrency 32 took 3,000 transactions (one WAL fsync each, ~3 ms on the bench machine);
    // with it they took 146, and the SQLite ingest bench went from 266-492 to 637-734 req/s.
    // PostgreSQL, whose commits are asynchronous, already batched and pays at most one loop turn.
    const turn = this.#opts.enabled ? new Promise<void>((resolve) => setImmediate(resolve)) : Promise.resolve();
    this.#flushing = turn
      .then(() => this.#loop())
      .finally(() => {
        this.#flushing = undefined;
        if (this.#queue.length > 0 || this.#barriers.length > 0) this.#kick();
      });
  }

  async #loop(): Promise<void> {
    const { commit, refusal = (e: unknown) => e } = this.#opts;
    const maxBatch = this.#opts.enabled ? this.#opts.maxBatch : 1;
    while (this.#queue.length > 0 || this.#barriers.length > 0) {
      // The next batch commits once the last one is on disk. Its items would wait for the next
      // flush either way (one started after they committed), so they lose nothing and share one
      // commit. On SQLite, where commits cost nothing to wait for and `durable()` is the fsync,
      // committing every loop turn instead made ~1.5 requests a commit in the ingest bench, each
      // commit writing every page its tables and indexes share again (WAL frames).
      if (this.#opts.enabled) while (this.#settling.size > 0) await Promise.all([...this.#settling]);
      const batch = this.#queue.splice(0, maxBatch);
      const barriers = this.#barriers.splice(0);
      const release = () => {
        for (const b of barriers) b();
      };
      if (batch.length === 0) {
        this.settle(release, release);
        continue;
      }
      try {
        await commit(batch, release);
      } catch (err) {
        release();
        if (batch.length === 1) {
          batch[0]!.reject(refusal(err));
          continue;
        }
        // Storage down or full fails every item alike: retrying them one by one would only hold
        // the callers (and the database) longer.
        if (isStorageFault(err)) {
          for (const p of batch) p.reject(err);
          continue;
        }
        for (const p of batch) await commit([p], () => {}).catch((e: unknown) => p.reject(refusal(e)));
      }
    }
  }
}
