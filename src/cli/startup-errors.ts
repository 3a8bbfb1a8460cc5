import { ConfigError } from "../config/index.js";
import { HookwardenError } from "../errors/index.js";

/** `flag`: the option that chose the port (`--grpc-port` for the agents' gRPC listener; else `--port`). */
type Coded = { code?: unknown; address?: unknown; port?: unknown; flag?: unknown; errors?: unknown[] };

const UNREACHABLE = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH"]);

/** Where PostgreSQL was looked for, without the URL's password. */
function pgWhere(databaseUrl: string | undefined): string {
  if (!databaseUrl) return "PostgreSQL";
  try {
    const u = new URL(databaseUrl);
    return `PostgreSQL at ${u.hostname}:${u.port || "5432"}${u.pathname}`;
  } catch {
    return "PostgreSQL";
  }
}

/**
 * The one line (cause, then the fix) a failed start prints instead of a stack trace, or
 * `undefined` for an error nobody anticipated (a bug: its stack is worth printing).
 */
export function explainStartupError(err: unknown, opts: { host?: string | undefined; port?: number | undefined; databaseUrl?: string | undefined } = {}): string | undefined {
  if (err instanceof ConfigError) return err.message;
  // A storage fault (classified by store/errors) carries the driver's error as its cause.
  if (err instanceof HookwardenError && (err.code === "E_UNAVAILABLE" || err.code === "E_STORAGE_FULL") && err.cause !== undefined) {
    const inner = explainStartupError(err.cause, opts);
    if (inner !== undefined) return inner;
    if (err.code === "E_STORAGE_FULL") return "the disk holding the database is full: free some space, then start again";
  }
  if (err instanceof HookwardenError) {
    if (err.code === "E_MASTER_KEY") {
      return `${err.message}; set it to the key this installation was started with, or for a new one to \`node -e "console.log(require('crypto').randomBytes(32).toString('base64'))"\``;
    }
    return err.message;
  }
  const e = (err ?? {}) as Coded;
  const code = typeof e.code === "string" ? e.code : typeof (e.errors?.[0] as Coded | undefined)?.code === "string" ? ((e.errors![0] as Coded).code as string) : undefined;
  const grpc = e.flag === "--grpc-port";
  if (code === "EADDRINUSE") {
    return `${grpc ? "gRPC port" : "port"} ${String(e.port ?? opts.port)} on ${String(e.address ?? opts.host)} is already in use (another hookwarden or another program listens there): stop it, or start with ${grpc ? "--grpc-port" : "--port"} <another port>`;
  }
  if (code === "EACCES" && e.port !== undefined) {
    return grpc
      ? `not allowed to listen on gRPC port ${String(e.port)}: ports below 1024 need privileges; use --grpc-port 7443 (or another above 1023)`
      : `not allowed to listen on port ${String(e.port)}: ports below 1024 need privileges; use --port 8071 (or another above 1023) behind a proxy`;
  }
  if (code !== undefined && UNREACHABLE.has(code) && opts.databaseUrl) {
    return `cannot reach ${pgWhere(opts.databaseUrl)} (${code}): start PostgreSQL or fix --database-url / HOOKWARDEN_DATABASE_URL`;
  }
  // PostgreSQL's own refusals (SQLSTATE): wrong password, unknown role or database.
  if (opts.databaseUrl && (code === "28P01" || code === "28000" || code === "3D000")) {
    return `${pgWhere(opts.databaseUrl)} refused the connection: ${(err as Error).message}; fix the user, password or database name in --database-url / HOOKWARDEN_DATABASE_URL`;
  }
  return undefined;
}
