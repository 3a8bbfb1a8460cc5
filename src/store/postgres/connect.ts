import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import type { Logger } from "pino";
import type { Db, Store } from "../types.js";
import type { Database } from "../schema.js";
import { guardedDialect } from "../guarded-dialect.js";
import { TableWrites } from "../table-writes.js";
import { StorageHealth } from "../health.js";
import { statementName } from "../hot.js";

/** Where nodes announce new jobs (LISTEN/NOTIFY). */
export const JOBS_CHANNEL = "hookwarden_jobs";
const CHANNEL = JOBS_CHANNEL;
/** Where nodes announce their committed writes to cached tables (`TableWrites`): `schema:table,…`. */
export const WRITES_CHANNEL = "hookwarden_writes";
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
/** How the LISTEN connection comes back after an outage: capped exponential backoff. */
export interface ListenBackoff {
  /** First wait after the connection is lost (default 250 ms). */
  initialMs: number;
  /** Longest wait between two attempts (default 30 s). */
  maxMs: number;
}

const DEFAULT_BACKOFF: ListenBackoff = { initialMs: 250, maxMs: 30_000 };

export async function openPostgres(opts: { url: string; schema: string | undefined; logger: Logger; listenBackoff?: ListenBackoff; preparedStatements?: boolean }): Promise<Store> {
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
  // Relaxed writes (leases, delivery results, `relaxed` transactions) on connections whose
  // commits do not wait for the WAL flush: no `SET LOCAL` round trip per transaction, and a
  // single statement (a claim, the recorder's usual batch) needs no transaction at all.
  const relaxedPool = new pg.Pool({ ...connection, options: [connection.options, "-c synchronous_commit=off"].filter(Boolean).join(" "), max: 4 });
  for (const p of [pool, relaxedPool]) p.on("error", (err) => opts.logger.debug({ err }, "idle PostgreSQL client failed"));
  // A client checked out of the pool (between two statements of a transaction) whose server goes
  // away emits "error" with nobody listening: an uncaught exception that ended the process on
  // every outage. Its next statement fails (classified as E_UNAVAILABLE) and the pool drops it.
  for (const p of [pool, relaxedPool]) {
    p.on("connect", (client) => {
      client.on("error", (err) => opts.logger.debug({ err }, "PostgreSQL connection lost"));
      if (opts.preparedStatements !== false) preparing(client);
    });
  }
  const health = new StorageHealth(opts.logger);
  // Committed writes to cached tables, announced to the other nodes once per loop turn.
  const schemaKey = opts.schema ?? "";
  let announce: Set<string> | undefined;
  const broadcast = (table: string) => {
    if (!announce) {
      announce = new Set();
      setImmediate(() => {
        const payload = `${schemaKey}:${[...announce!].join(",")}`;
        announce = undefined;
        pool.query("select pg_notify($1, $2)", [WRITES_CHANNEL, payload]).catch((err: unknown) => opts.logger.debug({ err }, "announcing a write to other nodes failed; their caches expire within 2 s"));
      });
    }
    announce.add(table);
  };
  const writes = new TableWrites({ broadcast });
  const heard = (payload: string | undefined) => {
    const at = payload?.indexOf(":") ?? -1;
    if (at < 0 || payload!.slice(0, at) !== schemaKey) return;
    for (const table of payload!.slice(at + 1).split(",")) writes.heard(table);
  };
  const db = new Kysely<Database>({ dialect: guardedDialect(new PostgresDialect({ pool }), health, writes) });
  const relaxedDb = new Kysely<Database>({ dialect: guardedDialect(new PostgresDialect({ pool: relaxedPool }), health, writes) });
  let listener: pg.Client | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  let closed = false;
  const backoff = opts.listenBackoff ?? DEFAULT_BACKOFF;

  /**
   * One dedicated connection LISTENs for other nodes' jobs. When it is lost (an outage, a restart,
   * a network cut) it is opened again with capped exponential backoff until it succeeds: "lost"
   * is logged once per outage and "recovered" once, and wake-ups across nodes resume without a
   * restart. Meanwhile the slow poll covers the gap.
   */
  const listen = async (onNotify: () => void): Promise<void> => {
    let lostAt: number | undefined;
    let delay = backoff.initialMs;
    const connect = async (): Promise<void> => {
      const client = new pg.Client(connection);
      client.on("notification", (msg) => (msg.channel === WRITES_CHANNEL ? heard(msg.payload) : onNotify()));
      let dropped = false;
      const drop = (err: unknown) => {
        if (dropped) return;
        dropped = true;
        if (listener === client) listener = undefined;
        void client.end().catch(() => {});
        if (closed) return;
        if (lostAt === undefined) {
          lostAt = Date.now();
          opts.logger.warn({ err }, "LISTEN connection lost; reconnecting with backoff (the slow poll covers the gap)");
        }
        schedule();
      };
      client.on("error", drop);
      client.on("end", () => drop(new Error("LISTEN connection ended")));
      try {
        await client.connect();
        await client.query(`listen ${CHANNEL}; listen ${WRITES_CHANNEL}`);
      } catch (err) {
        drop(err);
        throw err;
      }
      if (closed) {
        await client.end().catch(() => {});
        return;
      }
      listener = client;
      delay = backoff.initialMs;
      if (lostAt !== undefined) {
        opts.logger.info({ downMs: Date.now() - lostAt }, "LISTEN connection recovered");
        lostAt = undefined;
        // Jobs and writes announced while this node was deaf: look for them now rather than at
        // the next poll, and forget what the caches hold.
        writes.heard();
        onNotify();
      }
    };
    const schedule = () => {
      if (closed || retryTimer) return;
      const wait = delay;
      delay = Math.min(delay * 2, backoff.maxMs);
      retryTimer = setTimeout(() => {
        retryTimer = undefined;
        connect().catch(() => {}); // a failure has scheduled the next attempt already
      }, wait);
      retryTimer.unref();
    };
    await connect();
  };

  return {
    db,
    writes,
    dialect: "postgres",
    capabilities: { sharedByNodes: true, reclaimsByRelocation: false, skipLocked: true },
    leaseWrite: (fn) => fn(relaxedDb),
    health,
    serializeAppends: async (trx, key) => {
      await sql`select pg_advisory_xact_lock(${key})`.execute(trx);
    },
    // PostgreSQL meets a full disk by failing WAL writes, which stops the server: reachable means
    // writable as far as a probe can cheaply tell.
    probe: async () => {
      await sql`select 1`.execute(db);
    },
    notifyJobs: async (trx: Db) => {
      await sql`select pg_notify(${CHANNEL}, '')`.execute(trx);
    },
    listenJobs: listen,
    // The commit returns before the WAL is flushed; a PostgreSQL crash may lose the last ~0.6 s of
    // such commits (3 x wal_writer_delay), never a Hookwarden crash, and never half a transaction.
    relaxed: (fn) => relaxedDb.transaction().execute(fn),
    durable: () => Promise.resolve(),
    // Autovacuum marks deleted rows' space reusable (the retention cleaner deletes in small
    // batches, so it keeps up); VACUUM FULL would lock the tables, so it is never run here.
    reclaimSpace: async () => ({ released: 0, remaining: 0 }),
    ping: async () => {
      await sql`select 1`.execute(db);
    },
    close: async () => {
      closed = true;
      if (retryTimer) clearTimeout(retryTimer);
      await listener?.end().catch(() => {});
      await relaxedDb.destroy();
      await db.destroy();
    },
  };
}

/**
 * Runs the hot statements (`store/hot.ts`, `statementName`) on `client` as named prepared
 * statements: pg parses each once per connection and then only binds and executes it. Every other
 * query goes through unchanged. Off with `--prepared-statements false` (a pooler in transaction
 * mode, PgBouncer before 1.21, does not keep a connection's prepared statements).
 */
function preparing(client: pg.PoolClient): void {
  const query = client.query as (...args: unknown[]) => unknown;
  const named = function (this: pg.PoolClient, ...args: unknown[]) {
    const [text, values] = args;
    if (args.length === 2 && typeof text === "string" && Array.isArray(values)) {
      const name = statementName(text);
      if (name !== undefined) return query.call(this, { name, text, values });
    }
    return query.apply(this, args);
  };
  client.query = named as typeof client.query;
}
