import { CompiledQuery, PostgresAdapter, type Selectable } from "kysely";
import type { Db } from "./index.js";
import type { Database } from "./schema.js";

/**
 * Hot-path statements with SQL text built once per shape and reused. Kysely builds an operation
 * tree and compiles it on every call; on the delivery and ingest paths (a few multi-row inserts,
 * `select * … where id in (…)` and the job delete, many times a second) that was about a tenth of
 * the gateway's CPU in the bench profiles. The text differs between the dialects only in its
 * placeholders (`?` / `$n`); tables resolve through PostgreSQL's `search_path` as Kysely's do.
 * Anything that does not fit the simple shape falls back to Kysely.
 */

const TEXT_CACHE = 2_000;
const texts = new Map<string, string>();

function cached(key: string, build: () => string): string {
  let text = texts.get(key);
  if (text === undefined) {
    if (texts.size >= TEXT_CACHE) texts.clear();
    text = build();
    texts.set(key, text);
  }
  return text;
}

/**
 * PostgreSQL: the hot statements run as named prepared statements, parsed and planned once per
 * connection instead of on every call (`postgres/connect.ts` names them; measured on the bench
 * machine, a four-row insert CTE cost PostgreSQL 0.12-0.13 ms of CPU prepared against 0.17-0.23
 * ms unnamed). Only statements whose result no migration can change are named (inserts, deletes,
 * the `pg_notify` select): a prepared `select *` fails once a migration adds a column ("cached
 * plan must not change result type"), an insert is re-planned.
 * At most `MAX_NAMED` texts (a few hundred per connection at most), the first ones seen.
 */
const MAX_NAMED = 256;
const names = new Map<string, string>();

/** The prepared statement name of a hot statement's text, if it has one (see `names`). */
export function statementName(text: string): string | undefined {
  return names.get(text);
}

function named(text: string): string {
  if (names.size < MAX_NAMED && !names.has(text)) names.set(text, `hookwarden_${names.size}`);
  return text;
}

function isPostgres(db: Db): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** `n` placeholders starting after `offset` parameters: `?, ?` or `$3, $4`. */
function placeholders(pg: boolean, offset: number, n: number): string {
  const out: string[] = new Array(n);
  for (let i = 0; i < n; i++) out[i] = pg ? `$${offset + i + 1}` : "?";
  return out.join(", ");
}

/**
 * `insert into table (columns of the first row) values (…), (…)`. Every row must carry the same
 * columns, none `undefined` (Kysely would leave such a column to its default): otherwise, and for
 * an empty list, Kysely builds the statement.
 */
export async function insertRows<T extends keyof Database & string>(db: Db, table: T, rows: readonly Record<string, unknown>[]): Promise<void> {
  if (rows.length === 0) return;
  const flat = flatten(rows);
  if (!flat) return slow(db, table, rows);
  const { columns, params } = flat;
  const width = columns.length;
  const pg = isPostgres(db);
  const text = cached(`i|${pg ? "p" : "s"}|${table}|${columns.join(",")}|${rows.length}`, () => {
    const tuples: string[] = [];
    for (let r = 0; r < rows.length; r++) tuples.push(`(${placeholders(pg, r * width, width)})`);
    const text = `insert into ${quote(table)} (${columns.map(quote).join(", ")}) values ${tuples.join(", ")}`;
    return pg ? named(text) : text;
  });
  await db.executeQuery(CompiledQuery.raw(text, params));
}

async function slow(db: Db, table: keyof Database & string, rows: readonly Record<string, unknown>[]): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the rows were typed by the caller
  await db.insertInto(table).values(rows as any).execute();
}

/** `select * from table where id in (ids)`, rows in the database's order. */
export function selectByIds<T extends keyof Database & string>(db: Db, table: T, ids: readonly string[]): Promise<Selectable<Database[T]>[]> {
  return selectWhereIn(db, table, "id" as keyof Database[T] & string, ids);
}

/** `select * from table where column in (values)`, rows in the database's order. */
export async function selectWhereIn<T extends keyof Database & string>(
  db: Db,
  table: T,
  column: keyof Database[T] & string,
  values: readonly string[],
): Promise<Selectable<Database[T]>[]> {
  if (values.length === 0) return [];
  const pg = isPostgres(db);
  const text = cached(`s|${pg ? "p" : "s"}|${table}|${column}|${values.length}`, () => `select * from ${quote(table)} where ${quote(column)} in (${placeholders(pg, 0, values.length)})`);
  const res = await db.executeQuery<Selectable<Database[T]>>(CompiledQuery.raw(text, [...values]));
  return res.rows as Selectable<Database[T]>[];
}

/**
 * Inserts attempt rows and deletes the finished jobs still leased to `workerId`. On PostgreSQL one
 * statement (a data-modifying CTE: atomic without BEGIN/COMMIT, one round trip instead of four
 * with the transaction around them); on SQLite the two statements, for the caller's transaction.
 * Rows that do not fit the simple shape (see `insertRows`) take the two statements too.
 */
export async function insertAndDeleteLeased(db: Db, table: keyof Database & string, rows: readonly Record<string, unknown>[], workerId: string, ids: readonly string[]): Promise<void> {
  const flat = ids.length > 0 && isPostgres(db) ? flatten(rows) : undefined;
  if (!flat) {
    await insertRows(db, table, rows);
    await deleteLeasedJobs(db, workerId, ids);
    return;
  }
  const { columns } = flat;
  const width = columns.length;
  const params = flat.params;
  params.push(workerId, ...ids);
  const text = cached(`id|${table}|${columns.join(",")}|${rows.length}|${ids.length}`, () => {
    const tuples: string[] = [];
    for (let r = 0; r < rows.length; r++) tuples.push(`(${placeholders(true, r * width, width)})`);
    const at = rows.length * width;
    return named(`with "i" as (insert into ${quote(table)} (${columns.map(quote).join(", ")}) values ${tuples.join(", ")}) delete from "jobs" where "locked_by" = $${at + 1} and "id" in (${placeholders(true, at + 1, ids.length)})`);
  });
  await db.executeQuery(CompiledQuery.raw(text, params));
}

/** Deletes the jobs `ids` that are still leased to `workerId` (a lost lease deletes nothing). */
export async function deleteLeasedJobs(db: Db, workerId: string, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  const pg = isPostgres(db);
  const text = cached(`d|${pg ? "p" : "s"}|${ids.length}`, () => {
    const text = `delete from "jobs" where "locked_by" = ${pg ? "$1" : "?"} and "id" in (${placeholders(pg, 1, ids.length)})`;
    return pg ? named(text) : text;
  });
  await db.executeQuery(CompiledQuery.raw(text, [workerId, ...ids]));
}

/** A dedupe key of `inbound_dedupe`. */
export interface DedupeKey {
  input_id: string;
  delivery_id: string;
}

/**
 * Records dedupe keys `(input_id, delivery_id)` valid until `expiresAt`, taking over a key whose
 * row has expired by `now`; returns the keys recorded (those not returned were seen within the
 * window). No key may appear twice in `keys`. The intake's hot statement: built with Kysely, its
 * `on conflict … do update … where … returning` cost about a seventh of the time the ingest bench
 * spent storing keys (`node --cpu-prof`).
 */
export async function claimDedupeRows(db: Db, keys: readonly DedupeKey[], expiresAt: number, now: number): Promise<DedupeKey[]> {
  if (keys.length === 0) return [];
  const pg = isPostgres(db);
  const params: unknown[] = [];
  for (const k of keys) params.push(k.input_id, k.delivery_id, expiresAt);
  params.push(now);
  const text = cached(`dd|${pg ? "p" : "s"}|${keys.length}`, () => {
    const tuples: string[] = [];
    for (let r = 0; r < keys.length; r++) tuples.push(`(${placeholders(pg, r * 3, 3)})`);
    const text =
      `insert into "inbound_dedupe" ("input_id", "delivery_id", "expires_at") values ${tuples.join(", ")} ` +
      `on conflict ("input_id", "delivery_id") do update set "expires_at" = excluded."expires_at" ` +
      `where "inbound_dedupe"."expires_at" <= ${pg ? `$${params.length}` : "?"} returning "input_id", "delivery_id"`;
    return pg ? named(text) : text;
  });
  const res = await db.executeQuery<DedupeKey>(CompiledQuery.raw(text, params));
  return res.rows as DedupeKey[];
}

/**
 * PostgreSQL: `rows` into `table` and `jobs` into `jobs` as one statement (a data-modifying CTE),
 * followed by `pg_notify(channel, '')` when `channel` is given. Returns false, writing nothing,
 * when the rows or the jobs do not fit the simple shape (see `insertRows`): the caller then builds
 * the statement with Kysely.
 */
export async function insertWithJobsStatement(db: Db, table: keyof Database & string, rows: readonly Record<string, unknown>[], jobs: readonly Record<string, unknown>[], channel?: string): Promise<boolean> {
  const a = flatten(rows);
  const b = flatten(jobs);
  if (!a || !b) return false;
  const params = channel === undefined ? [...a.params, ...b.params] : [...a.params, ...b.params, channel];
  const text = cached(`rj|${table}|${a.columns.join(",")}|${rows.length}|${b.columns.join(",")}|${jobs.length}|${channel === undefined ? "" : "n"}`, () => {
    const tuples = (n: number, width: number, offset: number) => {
      const out: string[] = [];
      for (let r = 0; r < n; r++) out.push(`(${placeholders(true, offset + r * width, width)})`);
      return out.join(", ");
    };
    const first = `insert into ${quote(table)} (${a.columns.map(quote).join(", ")}) values ${tuples(rows.length, a.columns.length, 0)}`;
    const second = `insert into "jobs" (${b.columns.map(quote).join(", ")}) values ${tuples(jobs.length, b.columns.length, a.params.length)}`;
    return named(channel === undefined ? `with "r" as (${first}) ${second}` : `with "r" as (${first}), "j" as (${second}) select pg_notify($${params.length}, '') as "n"`);
  });
  await db.executeQuery(CompiledQuery.raw(text, params));
  return true;
}

/** PostgreSQL column types of the tables written through a `select … from (values …)`, read once. */
const columnTypes = new Map<string, Promise<Map<string, string>>>();

function typesOf(db: Db, table: string): Promise<Map<string, string>> {
  let types = columnTypes.get(table);
  if (!types) {
    types = db
      .executeQuery<{ name: string; type: string }>(
        CompiledQuery.raw("select attname as name, format_type(atttypid, atttypmod) as type from pg_attribute where attrelid = $1::regclass and attnum > 0 and not attisdropped", [table]),
      )
      .then((res) => new Map(res.rows.map((r) => [r.name, r.type])));
    columnTypes.set(table, types);
    types.catch(() => columnTypes.delete(table));
  }
  return types;
}

/**
 * PostgreSQL: a batch of `rows` into `table` (each with an `id`) and their `jobs` (`item_id` = a
 * row's id) as one statement, with dedupe keys: `keys[i]`, when given, is claimed for `rows[i]`
 * (as `claimDedupeRows`, expiring at `expiresAt`, taking over keys expired by `now`), and a row
 * whose key was already held is not inserted, nor its jobs. Atomic without BEGIN/COMMIT: a key
 * never commits without its row. Returns the keys claimed, or undefined, writing nothing, when the
 * rows or jobs do not fit the simple shape (see `insertRows`).
 *
 * Measured in the ingest bench on PostgreSQL: BEGIN, the keys, the rows with their jobs and COMMIT
 * were four round trips per batch, and the `writev` of each query (loopback TCP, whose receive
 * path runs in the sender's system call) a fifth of the gateway's CPU profile.
 */
export async function insertDedupedWithJobsStatement(
  db: Db,
  table: keyof Database & string,
  rows: readonly Record<string, unknown>[],
  keys: readonly (DedupeKey | undefined)[],
  jobs: readonly Record<string, unknown>[],
  expiresAt: number,
  now: number,
  channel?: string,
): Promise<DedupeKey[] | undefined> {
  const a = flatten(rows);
  const b = jobs.length === 0 ? { columns: ["item_id"], params: [] } : flatten(jobs);
  if (!a || !b || !a.columns.includes("id") || !b.columns.includes("item_id")) return undefined;
  const [rowTypes, jobTypes] = await Promise.all([typesOf(db, table), typesOf(db, "jobs")]);
  if (!a.columns.every((c) => rowTypes.has(c)) || !b.columns.every((c) => jobTypes.has(c))) return undefined;
  const keyed = keys.filter((k): k is DedupeKey => k !== undefined);
  if (keyed.length === 0) return undefined;
  // Parameters: the keys, then `now`, then each row followed by its key, the jobs, the channel.
  const params: unknown[] = [];
  for (const k of keyed) params.push(k.input_id, k.delivery_id, expiresAt);
  params.push(now);
  const width = a.columns.length;
  for (let r = 0; r < rows.length; r++) {
    for (let c = 0; c < width; c++) params.push(a.params[r * width + c]);
    params.push(keys[r]?.input_id ?? null, keys[r]?.delivery_id ?? null);
  }
  const jobsAt = params.length;
  params.push(...b.params);
  if (channel !== undefined) params.push(channel);
  // The text depends on how many rows carry a key, not on which: each row brings its key or nulls.
  const shape = `${rows.length}|${keyed.length}`;
  const text = cached(`drj|${table}|${a.columns.join(",")}|${shape}|${b.columns.join(",")}|${jobs.length}|${channel === undefined ? "" : "n"}`, () => {
    const typed = (columns: string[], types: Map<string, string>, n: number, offset: number, extra: string[]) => {
      const out: string[] = [];
      let at = offset;
      for (let r = 0; r < n; r++) {
        const cells = columns.map((c) => `$${++at}::${types.get(c)!}`);
        for (const t of extra) cells.push(`$${++at}::${t}`);
        out.push(`(${cells.join(", ")})`);
      }
      return out.join(", ");
    };
    const cols = a.columns.map(quote).join(", ");
    const jobCols = b.columns.map(quote).join(", ");
    const keyTuples = keyed.map((_, i) => `(${placeholders(true, i * 3, 3)})`).join(", ");
    const d =
      `"d" as (insert into "inbound_dedupe" ("input_id", "delivery_id", "expires_at") values ${keyTuples} ` +
      `on conflict ("input_id", "delivery_id") do update set "expires_at" = excluded."expires_at" ` +
      `where "inbound_dedupe"."expires_at" <= $${keyed.length * 3 + 1} returning "input_id", "delivery_id")`;
    const v = `"v" as (select * from (values ${typed(a.columns, rowTypes, rows.length, keyed.length * 3 + 1, ["text", "text"])}) as "v" (${cols}, "dedupe_input", "dedupe_key"))`;
    const r =
      `"r" as (insert into ${quote(table)} (${cols}) select ${a.columns.map((c) => `"v".${quote(c)}`).join(", ")} from "v" ` +
      `where "v"."dedupe_key" is null or exists (select 1 from "d" where "d"."input_id" = "v"."dedupe_input" and "d"."delivery_id" = "v"."dedupe_key") returning "id")`;
    const j =
      `"j" as (insert into "jobs" (${jobCols}) select ${b.columns.map((c) => `"jv".${quote(c)}`).join(", ")} ` +
      `from (values ${typed(b.columns, jobTypes, jobs.length, jobsAt, [])}) as "jv" (${jobCols}) where "jv"."item_id" in (select "id" from "r"))`;
    const notify = channel === undefined ? "" : ` union all select null, null from (select pg_notify($${params.length}, '')) as "n"`;
    return named(`with ${d}, ${v}, ${r}${jobs.length === 0 ? "" : `, ${j}`} select "input_id", "delivery_id" from "d"${notify}`);
  });
  const res = await db.executeQuery<{ input_id: string | null; delivery_id: string | null }>(CompiledQuery.raw(text, params));
  return res.rows.filter((k): k is DedupeKey => k.input_id !== null);
}

/** The rows' values in column order, if every row carries the first row's columns, none `undefined`. */
function flatten(rows: readonly Record<string, unknown>[]): { columns: string[]; params: unknown[] } | undefined {
  if (rows.length === 0) return undefined;
  const columns = Object.keys(rows[0]!);
  const params: unknown[] = [];
  for (const row of rows) {
    let n = 0;
    for (const c in row) {
      const v = row[c];
      if (c !== columns[n] || v === undefined) return undefined;
      params.push(v);
      n++;
    }
    if (n !== columns.length) return undefined;
  }
  return { columns, params };
}
