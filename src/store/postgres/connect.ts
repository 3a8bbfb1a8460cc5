import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import type { Logger } from "pino";
import type { Db, Store } from "../index.js";
import type { Database } from "../schema.js";

/** Where nodes announce new jobs (LISTEN/NOTIFY). */
export const JOBS_CHANNEL = "hookwarden_jobs";
const CHANNEL = JOBS_CHANNEL;
const INT8_OID = 20;

/** BIGINT columns hold epoch milliseconds, well inside 2^53: read them as numbers. */
const types = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === INT8_OID && format !== "binary" ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as "text")) as typeof pg.types.getTypeParser,
};

/**
 * PostgreSQL for several stateless nodes. `schema` (optional) isolates one installation, or one
 * test run, inside a shared database through `search_path`.
 */
export async function openPostgres(opts: { url: string; schema: string | undefined; logger: Logger }): Promise<Store> {
  const connection = {
    connectionString: opts.url,
    types,
    ...(opts.schema ? { options: `-c search_path=${opts.schema}` } : {}),
  };
  if (opts.schema) {
    const admin = new pg.Client({ connectionString: opts.url });
    await admin.connect();
    try {
      await admin.query(`create schema if not exists ${opts.schema}`);
    } finally {
      await admin.end();
    }
  }
  const pool = new pg.Pool({ ...connection, max: 10 });
  pool.on("error", (err) => opts.logger.error({ err }, "idle PostgreSQL client failed"));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  let listener: pg.Client | undefined;
  let closed = false;

  const listen = async (onNotify: () => void): Promise<void> => {
    const client = new pg.Client(connection);
    client.on("notification", () => onNotify());
    client.on("error", (err) => {
      if (closed) return;
      opts.logger.warn({ err }, "LISTEN connection lost; reconnecting (the slow poll covers the gap)");
      setTimeout(() => void listen(onNotify).catch(() => {}), 1000).unref();
    });
    await client.connect();
    await client.query(`listen ${CHANNEL}`);
    listener = client;
  };

  return {
    db,
    dialect: "postgres",
    notifyJobs: async (trx: Db) => {
      await sql`select pg_notify(${CHANNEL}, '')`.execute(trx);
    },
    listenJobs: listen,
    // The commit returns before the WAL is flushed; a PostgreSQL crash may lose the last ~0.6 s of
    // such commits (3 x wal_writer_delay), never a Hookwarden crash, and never half a transaction.
    relaxed: (fn) =>
      db.transaction().execute(async (trx) => {
        await sql`set local synchronous_commit = off`.execute(trx);
        return fn(trx);
      }),
    durable: () => Promise.resolve(),
    ping: async () => {
      await sql`select 1`.execute(db);
    },
    close: async () => {
      closed = true;
      await listener?.end().catch(() => {});
      await db.destroy();
    },
  };
}
