import type { Config } from "../config/index.js";
import { lockDataDir } from "../server/lock.js";
import { vacuumSqlite } from "../store/sqlite/vacuum.js";

const mib = (bytes: number) => `${(bytes / 1_048_576).toFixed(1)} MiB`;

/**
 * `hookwarden vacuum`: makes an embedded SQLite database give disk space back (issue 11). See
 * `vacuumSqlite` for what it costs. PostgreSQL needs nothing: autovacuum reuses deleted rows'
 * space, and Hookwarden never runs VACUUM FULL (it locks every table it rewrites).
 */
export async function vacuum(config: Config, out: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<void> {
  if (config.databaseUrl) {
    out("PostgreSQL: nothing to do. Autovacuum makes the space of rows deleted by retention reusable; Hookwarden never runs VACUUM FULL.");
    return;
  }
  // Refuses while a server runs on this data dir: VACUUM needs the database to itself.
  const unlock = lockDataDir(config.dataDir);
  try {
    const r = vacuumSqlite(config.dataDir);
    out(
      r.mode === "rebuilt"
        ? `Rebuilt the database with incremental auto-vacuum: ${mib(r.before.fileBytes)} -> ${mib(r.after.fileBytes)}. From now on the server's retention cleaner gives freed space back by itself.`
        : `Incremental auto-vacuum was already on; gave back ${r.before.freelistCount - r.after.freelistCount} free pages: ${mib(r.before.fileBytes)} -> ${mib(r.after.fileBytes)}.`,
    );
  } finally {
    unlock();
  }
}
