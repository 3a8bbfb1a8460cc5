import { Migrator, type Kysely, type Migration } from "kysely";
import type { Logger } from "pino";
import type { Config } from "../config/index.js";
import * as m0001 from "./migrations/0001-initial.js";
import * as m0002 from "./migrations/0002-integrations.js";
import * as m0003 from "./migrations/0003-ingress.js";
import * as m0004 from "./migrations/0004-agents.js";
import * as m0005 from "./migrations/0005-svix-parity.js";
import * as m0006 from "./migrations/0006-functions.js";
import * as m0007 from "./migrations/0007-token-scope-last-use.js";
import * as m0008 from "./migrations/0008-audit-log.js";
import * as m0009 from "./migrations/0009-operational-webhooks.js";
import * as m0010 from "./migrations/0010-retention.js";
import * as m0011 from "./migrations/0011-incident-pauses.js";
import * as m0012 from "./migrations/0012-trace-context.js";
import * as m0013 from "./migrations/0013-output-health.js";
import * as m0014 from "./migrations/0014-rejection-codes.js";
import * as m0015 from "./migrations/0015-input-transformations.js";
import * as m0016 from "./migrations/0016-job-columns.js";
import * as m0017 from "./migrations/0017-endpoint-events.js";
import * as m0018 from "./migrations/0018-held-jobs.js";
import * as m0019 from "./migrations/0019-sealed-request-storage.js";
import { openPostgres } from "./postgres/connect.js";
import type { Database } from "./schema.js";
import { openSqlite } from "./sqlite/connect.js";

export type { Database } from "./schema.js";
export type { Db, Dialect, Store, StoreCapabilities } from "./types.js";
import type { Db, Store } from "./types.js";

/** Every migration by name; a test builds an older schema from a subset (test/operations/job-columns-upgrade.test.ts). */
export const MIGRATIONS: Readonly<Record<string, Migration>> = Object.freeze({
  "0001-initial": m0001,
  "0002-integrations": m0002,
  "0003-ingress": m0003,
  "0004-agents": m0004,
  "0005-svix-parity": m0005,
  "0006-functions": m0006,
  "0007-token-scope-last-use": m0007,
  "0008-audit-log": m0008,
  "0009-operational-webhooks": m0009,
  "0010-retention": m0010,
  "0011-incident-pauses": m0011,
  "0012-trace-context": m0012,
  "0013-output-health": m0013,
  "0014-rejection-codes": m0014,
  "0015-input-transformations": m0015,
  "0016-job-columns": m0016,
  "0017-endpoint-events": m0017,
  "0018-held-jobs": m0018,
  "0019-sealed-request-storage": m0019,
});

/**
 * Opens the configured database (embedded SQLite in `dataDir` unless `databaseUrl` is set) and
 * brings its schema up to date. Migrations hold a lock, so several nodes may start at once.
 */
export async function openStore(config: Config, logger: Logger): Promise<Store> {
  const store = config.databaseUrl
    ? await openPostgres({ url: config.databaseUrl, schema: config.databaseSchema, logger, preparedStatements: config.preparedStatements })
    : openSqlite({ dataDir: config.dataDir, logger });
  try {
    // Kysely's migration check introspects every schema of the database; a schema dropped at that
    // moment by someone else (seen with parallel test runs) fails it once. A retry sees a stable list.
    for (let attempt = 1; ; attempt++) {
      try {
        await migrate(store.db, store.dialect === "postgres" ? (config.databaseSchema ?? "public") : undefined);
        break;
      } catch (err) {
        if (store.dialect !== "postgres" || attempt >= 3 || !/does not exist/.test(String((err as Error).message))) throw err;
        logger.warn({ err, attempt }, "migration check raced a concurrent schema change; retrying");
        await new Promise((r) => setTimeout(r, 200 * attempt));
      }
    }
  } catch (err) {
    await store.close();
    throw err;
  }
  return store;
}

/**
 * `schema` must be explicit on PostgreSQL: Kysely's introspection sees every schema, so without it
 * one installation's migration tables would be taken for another's.
 */
export async function migrate(db: Kysely<Database>, schema: string | undefined): Promise<void> {
  const migrator = new Migrator({
    db,
    ...(schema ? { migrationTableSchema: schema } : {}),
    provider: { getMigrations: async () => MIGRATIONS },
    migrationTableName: "hookwarden_migration",
    migrationLockTableName: "hookwarden_migration_lock",
    // Branches number their migrations independently (0007 may land before 0006): each runs once.
    allowUnorderedMigrations: true,
  });
  const { error } = await migrator.migrateToLatest();
  if (error) throw error;
}

/**
 * Commits one group-commit batch (publisher, ingress intake): as the single statement `write`
 * issues when `single` (PostgreSQL, atomic without BEGIN/COMMIT); relaxed on SQLite, the caller
 * answering only after `store.durable()`; otherwise in a transaction.
 */
export async function commitBatch(store: Store, single: boolean, write: (db: Db) => Promise<void>): Promise<void> {
  if (single) await write(store.db);
  else if (store.dialect === "sqlite") await store.relaxed(write);
  else await store.db.transaction().execute(write);
}

/**
 * Answers a committed group-commit batch once it is on disk (`store.durable()`): `settle` then,
 * `fail` if the flush failed. The promise sits in `pending` until done, so a drain (and the group
 * commit's next batch) can wait for it.
 */
export function settleWhenDurable(store: Store, pending: Set<Promise<void>>, settle: () => void, fail: (err: unknown) => void): void {
  const settled: Promise<void> = store
    .durable()
    .then(settle, fail)
    .finally(() => pending.delete(settled));
  pending.add(settled);
}

