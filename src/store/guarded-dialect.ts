import type { CompiledQuery, DatabaseConnection, Dialect, Driver, QueryResult, TransactionSettings } from "kysely";
import { classifyStorageError } from "./errors.js";
import type { StorageHealth } from "./health.js";
import { writtenTable, type TableWrites } from "./table-writes.js";

const WRITE_NODES = new Set(["InsertQueryNode", "UpdateQueryNode", "DeleteQueryNode"]);
const WRITE_SQL = /^\s*(insert|update|delete|replace)\b/i;

function isWrite(query: CompiledQuery, result: QueryResult<unknown>): boolean {
  const kind = query.query.kind;
  const write = WRITE_NODES.has(kind) || (kind === "RawNode" && WRITE_SQL.test(query.sql));
  // An UPDATE that matched nothing wrote nothing, on a full disk too.
  return write && (result.numAffectedRows ?? 0n) > 0n;
}

/**
 * Wraps a dialect's driver so that every statement, on both dialects, goes through one place that
 *
 * - turns storage faults into `E_UNAVAILABLE` / `E_STORAGE_FULL` (`classifyStorageError`) and
 *   tells `health` about them and about the statements that show storage works again;
 * - keeps a transaction's first error: when the rollback that follows a failure fails too
 *   (SQLite rolls a transaction back by itself on `SQLITE_FULL`, and Kysely's ROLLBACK then fails
 *   with "cannot rollback - no transaction is active"; a PostgreSQL connection that died cannot
 *   roll back either), Kysely would throw the rollback's error and lose the cause. The rollback's
 *   error is attached to the original as `rollbackError` instead, and the original is thrown.
 */
export function guardedDialect(inner: Dialect, health: StorageHealth, writes: TableWrites): Dialect {
  return {
    createAdapter: () => inner.createAdapter(),
    createIntrospector: (db) => inner.createIntrospector(db),
    createQueryCompiler: () => inner.createQueryCompiler(),
    createDriver: () => new GuardedDriver(inner.createDriver(), health, writes),
  };
}

interface State {
  inTransaction: boolean;
  wrote: boolean;
  /** Watched tables the current transaction wrote (`TableWrites`): told again when it ends. */
  tables: Set<string> | undefined;
  /** The last error a statement of the current transaction raised. */
  lastError: unknown;
}

class GuardedDriver implements Driver {
  readonly #inner: Driver;
  readonly #health: StorageHealth;
  readonly #writes: TableWrites;
  readonly #innerOf = new WeakMap<DatabaseConnection, DatabaseConnection>();
  readonly #state = new WeakMap<DatabaseConnection, State>();

  constructor(inner: Driver, health: StorageHealth, writes: TableWrites) {
    this.#inner = inner;
    this.#health = health;
    this.#writes = writes;
  }

  /** Tells `TableWrites` of a write to a watched table (and, in a transaction, again at its end). */
  #wroteTable(query: CompiledQuery, state: State): void {
    const table = writtenTable(query.query);
    if (table === undefined || !this.#writes.concerns(table)) return;
    this.#writes.wrote(table, !state.inTransaction);
    if (state.inTransaction) (state.tables ??= new Set()).add(table);
  }

  #ended(state: State | undefined, committed: boolean): void {
    const tables = state?.tables;
    if (!tables) return;
    state.tables = undefined;
    for (const t of tables) this.#writes.wrote(t, committed);
  }

  #fault(err: unknown): unknown {
    const fault = classifyStorageError(err);
    if (!fault) return err;
    this.#health.failure(fault);
    return fault;
  }

  async init(): Promise<void> {
    try {
      await this.#inner.init();
    } catch (err) {
      throw this.#fault(err);
    }
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    let conn: DatabaseConnection;
    try {
      conn = await this.#inner.acquireConnection();
    } catch (err) {
      throw this.#fault(err);
    }
    const state: State = { inTransaction: false, wrote: false, tables: undefined, lastError: undefined };
    const wrapped: DatabaseConnection = {
      executeQuery: async <R>(query: CompiledQuery): Promise<QueryResult<R>> => {
        try {
          const result = await conn.executeQuery<R>(query);
          const wrote = isWrite(query, result);
          if (wrote) this.#wroteTable(query, state);
          if (state.inTransaction) state.wrote ||= wrote;
          else this.#health.success(wrote);
          return result;
        } catch (err) {
          const e = this.#fault(err);
          if (state.inTransaction) state.lastError = e;
          throw e;
        }
      },
      streamQuery: <R>(query: CompiledQuery, chunkSize?: number) => conn.streamQuery<R>(query, chunkSize),
    };
    this.#innerOf.set(wrapped, conn);
    this.#state.set(wrapped, state);
    return wrapped;
  }

  #unwrap(conn: DatabaseConnection): DatabaseConnection {
    return this.#innerOf.get(conn) ?? conn;
  }

  async beginTransaction(conn: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    const state = this.#state.get(conn);
    try {
      await this.#inner.beginTransaction(this.#unwrap(conn), settings);
    } catch (err) {
      throw this.#fault(err);
    }
    if (state) Object.assign(state, { inTransaction: true, wrote: false, tables: undefined, lastError: undefined });
  }

  async commitTransaction(conn: DatabaseConnection): Promise<void> {
    const state = this.#state.get(conn);
    try {
      await this.#inner.commitTransaction(this.#unwrap(conn));
    } catch (err) {
      const e = this.#fault(err);
      if (state) state.lastError = e;
      throw e;
    }
    if (state) {
      state.inTransaction = false;
      this.#health.success(state.wrote);
    }
    this.#ended(state, true);
  }

  async rollbackTransaction(conn: DatabaseConnection): Promise<void> {
    const state = this.#state.get(conn);
    try {
      await this.#inner.rollbackTransaction(this.#unwrap(conn));
    } catch (rollbackError) {
      // Kysely throws whatever the callback threw once this returns: the first error survives.
      const first = state?.lastError;
      if (first !== null && typeof first === "object") Object.assign(first, { rollbackError });
      else if (first === undefined && classifyStorageError(rollbackError) === undefined) throw rollbackError;
    } finally {
      this.#ended(state, false);
      if (state) Object.assign(state, { inTransaction: false, wrote: false, lastError: undefined });
    }
  }

  async savepoint(conn: DatabaseConnection, name: string, compile: Parameters<NonNullable<Driver["savepoint"]>>[2]): Promise<void> {
    if (!this.#inner.savepoint) throw new Error("savepoints are not supported by this driver");
    try {
      await this.#inner.savepoint(this.#unwrap(conn), name, compile);
    } catch (err) {
      throw this.#fault(err);
    }
  }

  async rollbackToSavepoint(conn: DatabaseConnection, name: string, compile: Parameters<NonNullable<Driver["savepoint"]>>[2]): Promise<void> {
    if (!this.#inner.rollbackToSavepoint) throw new Error("savepoints are not supported by this driver");
    try {
      await this.#inner.rollbackToSavepoint(this.#unwrap(conn), name, compile);
    } catch (rollbackError) {
      const first = this.#state.get(conn)?.lastError;
      if (first !== null && typeof first === "object") Object.assign(first, { rollbackError });
      else throw this.#fault(rollbackError);
    }
  }

  async releaseSavepoint(conn: DatabaseConnection, name: string, compile: Parameters<NonNullable<Driver["savepoint"]>>[2]): Promise<void> {
    if (!this.#inner.releaseSavepoint) throw new Error("savepoints are not supported by this driver");
    try {
      await this.#inner.releaseSavepoint(this.#unwrap(conn), name, compile);
    } catch (err) {
      throw this.#fault(err);
    }
  }

  async releaseConnection(conn: DatabaseConnection): Promise<void> {
    await this.#inner.releaseConnection(this.#unwrap(conn));
  }

  async destroy(): Promise<void> {
    await this.#inner.destroy();
  }
}
