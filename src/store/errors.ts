import { HookwardenError } from "../errors/index.js";

/** A unique or primary-key violation on either dialect (SQLite's extended code, PostgreSQL's 23505). */
export function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "23505" || code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY";
}

/** A foreign-key violation on either dialect. */
export function isForeignKeyViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "23503" || code === "SQLITE_CONSTRAINT_FOREIGNKEY";
}

/**
 * Seconds a client is told to wait (`Retry-After`) when storage is down or full. Long enough that
 * a fleet of retrying providers does not hammer a database that is restarting, short enough that
 * a blip costs little.
 */
export const STORAGE_RETRY_AFTER_S = 5;

/** PostgreSQL SQLSTATEs meaning "the server is not there right now" (class 08 is matched apart). */
const PG_UNAVAILABLE = new Set(["57P01", "57P02", "57P03", "53300", "53200", "58030"]);
/** Socket errors of a database client whose server went away. */
const NET_UNAVAILABLE = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN", "ECONNABORTED"]);
/** Messages `pg` uses for a connection that died, without a code. */
const PG_LOST = /Connection terminated|Client has encountered a connection error|Connection ended unexpectedly|timeout exceeded when trying to connect|terminating connection due to administrator command|the database system is (shutting down|starting up|in recovery mode)/i;

/** Errors made by `classifyStorageError` (load shedding is also `E_UNAVAILABLE`, but no storage fault). */
const STORAGE_FAULTS = new WeakSet<HookwardenError>();

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

function kindOf(err: unknown, depth = 0): "full" | "unavailable" | undefined {
  if (err === null || typeof err !== "object" || depth > 4) return undefined;
  if (err instanceof HookwardenError) {
    if (!STORAGE_FAULTS.has(err)) return undefined;
    return err.code === "E_STORAGE_FULL" ? "full" : "unavailable";
  }
  const code = codeOf(err);
  if (code === "SQLITE_FULL" || code === "53100" || code === "ENOSPC") return "full";
  if (code !== undefined) {
    if (PG_UNAVAILABLE.has(code) || /^08[0-9A-Z]{3}$/.test(code) || NET_UNAVAILABLE.has(code)) return "unavailable";
    if (code === "SQLITE_BUSY" || code.startsWith("SQLITE_IOERR")) return "unavailable";
  }
  if (err instanceof Error && PG_LOST.test(err.message)) return "unavailable";
  for (const inner of err instanceof AggregateError ? err.errors : []) {
    const k = kindOf(inner, depth + 1);
    if (k) return k;
  }
  return kindOf((err as { cause?: unknown }).cause, depth + 1);
}

/**
 * The one place storage faults are recognised, for both dialects: a database that cannot be
 * reached (PostgreSQL down, restarting, class 08 connection errors, 57P01 admin shutdown, a refused
 * or reset socket) becomes `E_UNAVAILABLE` (503), a full disk (`SQLITE_FULL`, PostgreSQL 53100
 * `disk_full`, `ENOSPC`) `E_STORAGE_FULL` (507, RFC 4918 §11.5), both with `Retry-After`. Anything
 * else is not a storage fault: `undefined`.
 *
 * @example
 * classifyStorageError(Object.assign(new Error("database or disk is full"), { code: "SQLITE_FULL" }))?.status; // 507
 */
export function classifyStorageError(err: unknown): HookwardenError | undefined {
  const kind = kindOf(err);
  if (kind === undefined) return undefined;
  if (err instanceof HookwardenError) return err;
  const fault =
    kind === "full"
      ? new HookwardenError("E_STORAGE_FULL", 507, "Storage is full; nothing was stored. Retry later", { cause: err, retryAfter: STORAGE_RETRY_AFTER_S })
      : new HookwardenError("E_UNAVAILABLE", 503, "Storage is unavailable; nothing was stored. Retry later", { cause: err, retryAfter: STORAGE_RETRY_AFTER_S });
  STORAGE_FAULTS.add(fault);
  return fault;
}

/** True for an error `classifyStorageError` recognises (a fault of storage, not of the request). */
export function isStorageFault(err: unknown): boolean {
  return kindOf(err) !== undefined;
}

/** A short description of a storage fault's root cause for a log line: `SQLITE_FULL database or disk is full`. */
export function describeStorageCause(err: unknown): string {
  let e: unknown = err;
  while (e instanceof HookwardenError && e.cause !== undefined) e = e.cause;
  const code = codeOf(e);
  const message = e instanceof Error ? e.message : String(e);
  return code === undefined ? message : `${code} ${message}`;
}

/**
 * The error for a committed batch whose flush to disk failed (`Store.durable`): 507 when the disk
 * is full, 503 otherwise, with `Retry-After` either way; the client retries (idempotently).
 */
export function notDurable(err: unknown, detail: string): HookwardenError {
  const fault = classifyStorageError(err);
  return new HookwardenError(fault?.code ?? "E_UNAVAILABLE", fault?.status ?? 503, detail, { cause: err, retryAfter: STORAGE_RETRY_AFTER_S });
}
