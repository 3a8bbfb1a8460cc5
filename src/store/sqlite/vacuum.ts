import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { AUTO_VACUUM_INCREMENTAL, SQLITE_FILE } from "./connect.js";

export interface SqliteFileStats {
  /** Bytes of the database file (the WAL is checkpointed and truncated first). */
  fileBytes: number;
  pageSize: number;
  pageCount: number;
  freelistCount: number;
  /** 0 none, 1 full, 2 incremental (SQLite's `PRAGMA auto_vacuum`). */
  autoVacuum: number;
}

export interface VacuumReport {
  before: SqliteFileStats;
  after: SqliteFileStats;
  /** `rebuilt`: a full VACUUM ran (the file was not incremental yet); `incremental`: free pages given back only. */
  mode: "rebuilt" | "incremental";
}

function stats(raw: BetterSqlite3.Database, path: string): SqliteFileStats {
  raw.pragma("wal_checkpoint(TRUNCATE)");
  return {
    fileBytes: statSync(path).size,
    pageSize: raw.pragma("page_size", { simple: true }) as number,
    pageCount: raw.pragma("page_count", { simple: true }) as number,
    freelistCount: raw.pragma("freelist_count", { simple: true }) as number,
    autoVacuum: raw.pragma("auto_vacuum", { simple: true }) as number,
  };
}

/**
 * `hookwarden vacuum` on embedded SQLite (the server must be stopped; the caller holds the data
 * dir lock). A file created before issue 11 has `auto_vacuum = NONE`: SQLite can only switch it to
 * INCREMENTAL by rebuilding the whole file with VACUUM, once. That copies every live page (time
 * proportional to the database's size, and up to twice its size in free disk while it runs,
 * since the copy is written through the WAL). Afterwards, and for every data dir created since,
 * the running server's retention cleaner gives space back in small steps, without downtime; run
 * again, this command only gives back what is free, at once.
 */
export function vacuumSqlite(dataDir: string): VacuumReport {
  const path = join(dataDir, SQLITE_FILE);
  if (!existsSync(path)) throw Object.assign(new Error(`no Hookwarden database at ${path}`), { code: "ENOENT" });
  const raw = new BetterSqlite3(path, { fileMustExist: true });
  try {
    raw.pragma("busy_timeout = 5000");
    const before = stats(raw, path);
    let mode: VacuumReport["mode"] = "incremental";
    if (before.autoVacuum !== AUTO_VACUUM_INCREMENTAL) {
      raw.pragma("auto_vacuum = INCREMENTAL");
      raw.exec("VACUUM");
      mode = "rebuilt";
    } else {
      raw.exec("pragma incremental_vacuum");
    }
    return { before, after: stats(raw, path), mode };
  } finally {
    raw.close();
  }
}
