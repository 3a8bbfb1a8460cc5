import { mkdirSync, statfsSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { Kysely, SqliteDialect, sql, type SqliteDatabase, type Transaction } from "kysely";
import type { Logger } from "pino";
import type { Store } from "../types.js";
import type { Database } from "../schema.js";
import { classifyStorageError } from "../errors.js";
import { guardedDialect } from "../guarded-dialect.js";
import { TableWrites } from "../table-writes.js";
import { StorageHealth } from "../health.js";
import { startCheckpointer } from "./checkpointer.js";

export const SQLITE_FILE = "hookwarden.db";

/**
 * Free space below which the disk counts as still full after SQLITE_FULL: a write that fits in
 * pages SQLite already holds can succeed while the next larger one fails, and readiness must not
 * flap between the two.
 */
export const MIN_FREE_BYTES = 4 * 1024 * 1024;

/** Distinct SQL texts kept compiled; multi-row inserts and `in (...)` lists vary by row count. */
const STATEMENT_CACHE = 512;

/**
 * Kysely's SQLite driver calls `prepare` for every query, and compiling the same few statements
 * again and again was 7% of the gateway's CPU in the end-to-end bench (`better-sqlite3`
 * `prepare`, from `node --cpu-prof`). A small LRU of prepared statements removes it. A statement
 * still iterating (`busy`) is never handed out twice; SQLite re-prepares cached statements itself
 * after a schema change.
 */
function cachingStatements(raw: BetterSqlite3.Database): SqliteDatabase {
  const cache = new Map<string, BetterSqlite3.Statement>();
  return {
    close: () => raw.close(),
    prepare: (text) => {
      const hit = cache.get(text);
      if (hit && !hit.busy) {
        cache.delete(text);
        cache.set(text, hit);
        return hit;
      }
      const stmt = raw.prepare(text);
      if (!hit) {
        cache.set(text, stmt);
        if (cache.size > STATEMENT_CACHE) cache.delete(cache.keys().next().value!);
      }
      return stmt;
    },
  };
}

/**
 * Embedded SQLite in WAL mode. `synchronous = FULL` makes every commit survive power loss, not
 * only a process crash: a 2xx from the API means the row is on disk. The hot paths (publisher,
 * ingress intake) commit relaxed and answer after `durable()`, which flushes the WAL in the thread
 * pool, shared by every batch committed meanwhile (see BENCHMARKS.md).
 */
export function openSqlite(opts: { dataDir: string; logger: Logger; file?: string }): Store {
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  const path = opts.file ?? join(opts.dataDir, SQLITE_FILE);
  const raw = new BetterSqlite3(path);
  // Before the first table exists this makes the file incremental-vacuum capable for good, so the
  // retention cleaner can give deleted rows' pages back (`reclaimSpace`). On a file created
  // before issue 11 it changes nothing until one `hookwarden vacuum` rebuilds it.
  // Setting the pragma writes the database header (a write transaction, new WAL frames), so it is
  // set only on a new file: opening an existing database writes nothing, and a restart on a full
  // disk starts (test/crash/full-disk-restart.test.ts).
  if (raw.pragma("auto_vacuum", { simple: true }) !== AUTO_VACUUM_INCREMENTAL) {
    const empty = raw.prepare("select count(*) from sqlite_master").pluck().get() === 0;
    if (empty) raw.pragma("auto_vacuum = INCREMENTAL");
    else opts.logger.warn({ path }, "this SQLite database predates incremental vacuum: retention frees rows but the file will not shrink until `hookwarden vacuum` is run once with the server stopped");
  }
  raw.pragma("journal_mode = WAL");
  raw.pragma("synchronous = FULL");
  // Savepoints' and statements' journals in memory rather than in temporary files: each
  // coalesced turn (`coalescingRelaxed`) opens one savepoint per call, and a multi-row insert
  // needs a statement journal; past 64 KiB SQLite spilled them to a file it created, wrote and
  // deleted every transaction (pwrite, open, close and unlink were ~4% of the gateway's CPU in
  // the ingest bench, `perf record`). Only this connection: `hookwarden vacuum` opens its own.
  raw.pragma("temp_store = MEMORY");
  raw.pragma("busy_timeout = 5000");
  raw.pragma("foreign_keys = ON");
  // Checkpoints run in a worker thread (`startCheckpointer`); back on this connection if it fails.
  raw.pragma("wal_autocheckpoint = 0");
  const checkpointer = startCheckpointer(path, opts.logger, () => {
    if (raw.open) raw.pragma("wal_autocheckpoint = 1000");
  });
  const hasRoom = () => {
    try {
      const fs = statfsSync(opts.dataDir);
      return fs.bavail * fs.bsize >= MIN_FREE_BYTES;
    } catch {
      return true;
    }
  };
  const health = new StorageHealth(opts.logger, { hasRoom });
  // Another process (a CLI command next to the server) committed: PRAGMA data_version changed.
  // Read first when a cache first asks (reading at open would create the WAL file).
  const dataVersion = raw.prepare("pragma data_version").pluck();
  let seenVersion: unknown;
  const writes = new TableWrites({
    elsewhere: () => {
      const v = dataVersion.get();
      const changed = seenVersion !== undefined && v !== seenVersion;
      seenVersion = v;
      return changed;
    },
  });
  const db = new Kysely<Database>({ dialect: guardedDialect(new SqliteDialect({ database: cachingStatements(raw) }), health, writes) });
  opts.logger.debug({ path }, "opened SQLite database");
  const wal = walFlusher(`${path}-wal`);
  const relaxed = coalescingRelaxed(db, raw);
  return {
    db,
    writes,
    dialect: "sqlite",
    capabilities: { sharedByNodes: false, reclaimsByRelocation: true, skipLocked: false },
    health,
    serializeAppends: async () => {},
    // A write that changes a row (an UPDATE to the same value writes a page): it succeeds only once
    // the disk has room again, and then ends the streak in `health`.
    probe: async () => {
      if (!hasRoom()) {
        const cause = Object.assign(new Error(`less than ${MIN_FREE_BYTES} bytes free in ${opts.dataDir}`), { code: "ENOSPC" });
        throw classifyStorageError(cause)!;
      }
      await sql`update hookwarden_migration_lock set is_locked = is_locked`.execute(db);
    },
    notifyJobs: async () => {},
    // better-sqlite3 commits synchronously: an fsync blocks the event loop. Measured on the bench
    // machine, a FULL commit took 1-3 ms and a NORMAL one ~0.1 ms; with one delivery result per
    // commit at low rates the recorder's fsyncs were a third of the gateway's CPU profile. See
    // `coalescingRelaxed` for how the calls of one loop turn share a transaction.
    relaxed,
    leaseWrite: (fn) => relaxed(fn),
    durable: wal.flush,
    listenJobs: async () => {},
    reclaimSpace: (pages) => incrementalVacuum(db, raw, pages),
    ping: async () => {
      await sql`select 1`.execute(db);
    },
    close: async () => {
      await checkpointer.stop();
      await wal.close();
      await db.destroy();
    },
  };
}

/**
 * `Store.relaxed` for SQLite. Every call made during one event-loop turn (the publisher's batch,
 * the recorder's results, the worker's claim, the intake's batch) runs in one transaction, each
 * inside its own savepoint: a call that fails is rolled back alone and only its caller sees the
 * error. One commit instead of three or four per turn writes the pages they share (the jobs
 * table and its indexes above all) once, and pays BEGIN/COMMIT once.
 *
 * The commit uses `synchronous = NORMAL`, set and restored on the one reserved connection, so no
 * other statement (an API write) runs in between with the weaker setting; the next FULL commit
 * or `durable()` syncs the WAL, relaxed commits included.
 */
function coalescingRelaxed(db: Kysely<Database>, raw: BetterSqlite3.Database): Store["relaxed"] {
  // The pragmas and savepoints around the calls go straight to better-sqlite3 on the connection
  // held here: through Kysely they were four to six of the ten statements of a typical turn.
  const exec = (text: string) => {
    try {
      raw.exec(text);
    } catch (err) {
      throw classifyStorageError(err) ?? err;
    }
  };
  interface Call {
    fn: (trx: Transaction<Database>) => Promise<unknown>;
    resolve: (v: unknown) => void;
    reject: (e: unknown) => void;
    outcome?: { ok: true; value: unknown } | { ok: false; error: unknown };
  }
  let queue: Call[] = [];
  const run = async () => {
    const calls = queue;
    queue = [];
    try {
      await db.connection().execute(async (conn) => {
        exec("pragma synchronous = NORMAL");
        try {
          await conn.transaction().execute(async (trx) => {
            if (calls.length === 1) {
              calls[0]!.outcome = { ok: true, value: await calls[0]!.fn(trx) };
              return;
            }
            for (const call of calls) {
              exec("savepoint relaxed_call");
              try {
                call.outcome = { ok: true, value: await call.fn(trx) };
              } catch (error) {
                call.outcome = { ok: false, error };
                try {
                  await sql`rollback to relaxed_call`.execute(trx);
                } catch (rollbackError) {
                  // SQLite rolled the whole transaction back itself (it does on SQLITE_FULL): the
                  // savepoint is gone, nothing of this turn commits, and every call gets the cause.
                  throw withSecondary(error, rollbackError);
                }
              }
              exec("release relaxed_call");
            }
          });
        } catch (error) {
          try {
            exec("pragma synchronous = FULL");
          } catch (e) {
            withSecondary(error, e);
          }
          throw error;
        }
        exec("pragma synchronous = FULL");
      });
    } catch (error) {
      // The transaction itself failed (or the one call in it): nothing was committed.
      for (const call of calls) call.reject(error);
      return;
    }
    for (const call of calls) {
      const o = call.outcome!;
      if (o.ok) call.resolve(o.value);
      else call.reject(o.error);
    }
  };
  return <T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (queue.length === 0) setImmediate(() => void run());
      queue.push({ fn, resolve: resolve as (v: unknown) => void, reject });
    });
}

/** SQLite's `auto_vacuum` values (`PRAGMA auto_vacuum`). */
export const AUTO_VACUUM_INCREMENTAL = 2;

/**
 * `Store.reclaimSpace` for SQLite: moves up to `pages` free pages to the end of the file and
 * truncates it (the file shrinks on disk at the next checkpoint). Run on the raw handle while
 * holding Kysely's one connection, so no transaction of the gateway is open around it: through a
 * prepared statement (Kysely) SQLite steps `incremental_vacuum` once, freeing a single page,
 * where `exec` runs it to the end. Committed with `synchronous = NORMAL` like `relaxed`: a crash
 * at worst repeats it. Each call is one short write transaction (~1 ms per 256 pages measured on
 * the bench machine), so the cleaner calls it in small steps and yields between them.
 */
async function incrementalVacuum(db: Kysely<Database>, raw: BetterSqlite3.Database, pages: number): Promise<{ released: number; remaining: number }> {
  const n = Math.max(1, Math.min(1_000_000, Math.floor(pages)));
  return db.connection().execute(async () => {
    const before = raw.pragma("freelist_count", { simple: true }) as number;
    if (before === 0 || raw.pragma("auto_vacuum", { simple: true }) !== AUTO_VACUUM_INCREMENTAL) return { released: 0, remaining: before };
    raw.pragma("synchronous = NORMAL");
    try {
      raw.exec(`pragma incremental_vacuum(${n})`);
    } finally {
      raw.pragma("synchronous = FULL");
    }
    const after = raw.pragma("freelist_count", { simple: true }) as number;
    return { released: before - after, remaining: after };
  });
}

/** Keeps `first` as the error, with what failed while cleaning up attached as `rollbackError`. */
function withSecondary(first: unknown, secondary: unknown): unknown {
  if (first !== null && typeof first === "object" && !("rollbackError" in first)) Object.assign(first, { rollbackError: secondary });
  return first;
}

/**
 * Flushes the write-ahead log with `fdatasync` off the event loop. `flush()` resolves once an
 * fdatasync that started after the call has finished, so every commit made before the call is on
 * disk (a commit's WAL frames are written by `write(2)` before it returns; syncing the file makes
 * them durable whichever descriptor wrote them). Calls made while a flush runs share the next one.
 * A checkpoint that moved frames into the database file synced both files itself.
 */
function walFlusher(walPath: string): { flush: () => Promise<void>; close: () => Promise<void> } {
  let handle: Promise<FileHandle | undefined> | undefined;
  let running: Promise<void> | undefined;
  let queued: Promise<void> | undefined;
  const sync = async () => {
    handle ??= open(walPath, "r+").catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return undefined; // no WAL yet: nothing was committed to flush
      throw err;
    });
    const h = await handle;
    if (h === undefined) handle = undefined;
    else await h.datasync();
  };
  const flush = (): Promise<void> => {
    if (!running) {
      running = sync().finally(() => {
        running = undefined;
      });
      return running;
    }
    queued ??= running.then(
      () => {
        queued = undefined;
        return flush();
      },
      () => {
        queued = undefined;
        return flush();
      },
    );
    return queued;
  };
  return {
    flush,
    close: async () => {
      await running?.catch(() => {});
      await queued?.catch(() => {});
      const h = await handle?.catch(() => undefined);
      await h?.close();
      handle = undefined;
    },
  };
}

