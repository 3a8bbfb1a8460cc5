import type { Kysely, Transaction } from "kysely";
import type { StorageHealth } from "./health.js";
import type { Database } from "./schema.js";
import type { TableWrites } from "./table-writes.js";

export type Dialect = "sqlite" | "postgres";
export type Db = Kysely<Database> | Transaction<Database>;

/**
 * What differs between the dialects, as capabilities (as Kysely's dialect adapters do), so code
 * outside `store/` asks what the database can do and never which one it is.
 */
export interface StoreCapabilities {
  /**
   * Several nodes may share this database (PostgreSQL). SQLite's data directory is locked to one
   * process, so a starting node may release every lease a previous run left behind.
   */
  readonly sharedByNodes: boolean;
  /**
   * Freed space returns to the filesystem only as whole free pages (SQLite's incremental vacuum):
   * the retention cleaner rewrites the rows it shrinks so that their old pages empty out.
   */
  readonly reclaimsByRelocation: boolean;
  /**
   * `select … for update skip locked`: concurrent claimers on several nodes pass over each other's
   * rows (PostgreSQL). SQLite's one writer needs no row locks.
   */
  readonly skipLocked: boolean;
}

/** A database connection plus the few things that really differ between the two dialects. */
export interface Store {
  readonly db: Kysely<Database>;
  /** Which database this is, for messages and `/ready`; behaviour asks `capabilities` instead. */
  readonly dialect: Dialect;
  readonly capabilities: StoreCapabilities;
  /** Whether storage is failing right now (a database outage, a full disk): see `StorageHealth`. */
  readonly health: StorageHealth;
  /** Writes made through this store, per table, for this process's caches (`TableWrites`). */
  readonly writes: TableWrites;
  /**
   * A cheap check that storage would take a write now; run by `/ready` while `health` reports a
   * fault, so readiness comes back without waiting for traffic. Throws the classified fault.
   */
  probe(): Promise<void>;
  /**
   * Serialises, until `trx` ends, the writers of one append-only chain (the audit log) across every
   * node sharing the database: a PostgreSQL advisory transaction lock on `key`; nothing on SQLite,
   * whose one writer already is.
   */
  serializeAppends(trx: Transaction<Database>, key: number): Promise<void>;
  /**
   * Runs a write that only takes or moves leases (the claim): a crash may lose it, the job is then
   * due again, which it would be anyway. SQLite: a `relaxed` transaction (a claim went from
   * 2.5-3.8 ms with an fsync to 0.34 ms without, and SQLite releases every lease at start);
   * PostgreSQL: `fn` on the pool, one autocommitted statement.
   */
  leaseWrite<T>(fn: (db: Db) => Promise<T>): Promise<T>;
  /** Tells other nodes that jobs are ready (PostgreSQL NOTIFY inside `trx`; no-op on SQLite). */
  notifyJobs(trx: Db): Promise<void>;
  /** Calls `onNotify` whenever another node announces jobs. */
  listenJobs(onNotify: () => void): Promise<void>;
  /**
   * Runs `fn` in a transaction whose commit does not wait for the disk: for writes that a crash
   * may safely repeat (leases, delivery results), or for what a 2xx promises only when the answer
   * waits for `durable()` (group commit). SQLite commits
   * with `synchronous = NORMAL` (still atomic, and durable across a process crash; only power
   * loss can drop the latest such commits); PostgreSQL with `synchronous_commit = off`.
   */
  relaxed<T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T>;
  /**
   * Resolves once every commit made before the call is on disk. Group commit (publisher, ingress
   * intake) commits a batch with `relaxed` and answers its requests after this: on SQLite the
   * write-ahead log is then flushed by `fdatasync` in libuv's thread pool, one flush for every
   * batch committed meanwhile, instead of an fsync inside the commit that blocks the event loop.
   * PostgreSQL's normal commits are already durable: it resolves at once.
   */
  durable(): Promise<void>;
  /**
   * Gives space freed by deletes back to the filesystem, at most `pages` database pages per call,
   * so the retention cleaner can do it in small steps between deliveries. SQLite: one
   * `PRAGMA incremental_vacuum(pages)` (a data dir created before issue 11 needs one
   * `hookwarden vacuum` first); `remaining` is the free-list length left. PostgreSQL: nothing to
   * do here (autovacuum makes deleted rows' space reusable; no VACUUM FULL, which locks tables):
   * `{ released: 0, remaining: 0 }`.
   */
  reclaimSpace(pages: number): Promise<{ released: number; remaining: number }>;
  ping(): Promise<void>;
  close(): Promise<void>;
}
