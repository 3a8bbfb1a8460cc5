import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { expect } from "vitest";
import type { Dialect } from "../../src/store/index.js";
import { TEST_PG_URL } from "./dialects.js";
import { REPO_ROOT, gatewaySecrets, spawnGateway, type GatewayProcess } from "./gateway-process.js";
import { dropTestStorage } from "./server.js";

export type Api = (method: string, path: string, body?: unknown) => Promise<{ status: number; body: any; text: string }>;

/** The admin API of any gateway (in-process or child), as `TestServer.api` offers it. */
export function apiClient(url: () => string, token: string): Api {
  return async (method, path, body) => {
    const res = await fetch(url() + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, body: parsed, text };
  };
}

/** Stores a vault secret through the API and fails the test unless it answers 201. */
export async function putSecret(api: Api, appId: string, name: string, value: string): Promise<void> {
  const res = await api("POST", `/api/v1/app/${appId}/secret`, { name, value });
  expect(res.status, res.text).toBe(201);
}

/** A value no test data contains by chance; `tag` says where it is used. */
export function canary(tag: string): string {
  return `cnry-${tag}-${randomBytes(8).toString("hex")}`;
}

/** The forms in which a secret can leak: raw, percent- and form-encoded, JSON-escaped, base64. */
export function leakForms(value: string): string[] {
  const b64 = Buffer.from(value, "utf8").toString("base64");
  return [...new Set([value, encodeURIComponent(value), new URLSearchParams({ v: value }).toString().slice(2), JSON.stringify(value).slice(1, -1), b64, b64.replace(/=+$/, ""), Buffer.from(value, "utf8").toString("base64url")])];
}

/** Where a gateway keeps its data: the SQLite directory, or a PostgreSQL schema. */
export interface StorageLocation {
  dialect: Dialect;
  dataDir: string;
  schema: string | undefined;
}

/**
 * Every byte the database holds, as text: the SQLite files (main, -wal, -shm) read raw, or every
 * row of every table of the PostgreSQL schema as JSON.
 */
export async function databaseText(loc: StorageLocation): Promise<string> {
  if (loc.dialect === "sqlite") {
    const files = readdirSync(loc.dataDir).filter((f) => f.startsWith("hookwarden.db"));
    expect(files).toContain("hookwarden.db");
    return files.map((f) => readFileSync(join(loc.dataDir, f)).toString("latin1")).join("\n");
  }
  const client = new pg.Client({ connectionString: TEST_PG_URL });
  await client.connect();
  try {
    const tables = await client.query<{ table_name: string }>("select table_name from information_schema.tables where table_schema = $1", [loc.schema]);
    expect(tables.rows.map((r) => r.table_name)).toContain("vault_secrets");
    const out: string[] = [];
    for (const { table_name } of tables.rows) {
      const rows = await client.query<{ j: string }>(`select row_to_json(x)::text as j from "${loc.schema}"."${table_name}" x`);
      out.push(...rows.rows.map((r) => r.j));
    }
    return out.join("\n");
  } finally {
    await client.end();
  }
}

/** Runs one SQL statement against a gateway's storage (for tampering with rows as an attacker would). */
export async function rawSql(loc: StorageLocation, text: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  if (loc.dialect === "sqlite") {
    const { default: Database } = await import("better-sqlite3");
    const db = new Database(join(loc.dataDir, "hookwarden.db"));
    try {
      const sqliteText = text.replace(/\$\d+/g, "?");
      const stmt = db.prepare(sqliteText);
      return stmt.reader ? (stmt.all(...params) as Record<string, unknown>[]) : (stmt.run(...params), []);
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: TEST_PG_URL });
  await client.connect();
  try {
    await client.query(`set search_path to "${loc.schema}"`);
    return (await client.query(text, params)).rows as Record<string, unknown>[];
  } finally {
    await client.end();
  }
}

/** A fresh, empty storage location for one gateway installation. */
export function newStorage(dialect: Dialect): StorageLocation {
  return {
    dialect,
    dataDir: mkdtempSync(join(tmpdir(), "hookwarden-int-")),
    schema: dialect === "postgres" ? `hwi_${randomBytes(6).toString("hex")}` : undefined,
  };
}

/** `--data-dir` plus, on PostgreSQL, `--database-url` and `--database-schema`. */
export function storageArgs(loc: StorageLocation): string[] {
  return ["--data-dir", loc.dataDir, ...(loc.dialect === "postgres" ? ["--database-url", TEST_PG_URL, "--database-schema", loc.schema!] : [])];
}

export interface ChildGateway {
  proc: GatewayProcess;
  api: Api;
  url: () => string;
  /** Everything the process wrote to stdout and stderr since it was spawned. */
  output: () => string;
  stop: () => Promise<void>;
}

/**
 * `hookwarden serve` as a real child process on `loc`, deliveries to 127.0.0.1 allowed, every
 * byte of its stdout and stderr kept. `masterKey: undefined` runs it in key-file mode.
 */
export async function startChildGateway(
  loc: StorageLocation,
  opts: { adminToken: string; masterKey: string | undefined; env?: Record<string, string>; args?: string[] },
): Promise<ChildGateway> {
  const chunks: string[] = [];
  const proc = await spawnGateway({
    runtime: "tsx",
    args: [...storageArgs(loc), "--port", "0", "--allow-private-networks", "127.0.0.0/8", "--log-level", "debug", ...(opts.args ?? [])],
    adminToken: opts.adminToken,
    ...(opts.masterKey !== undefined ? { masterKey: opts.masterKey } : {}),
    ...(opts.env ? { env: opts.env } : {}),
    onOutput: (text) => chunks.push(text),
  });
  const url = () => proc.url;
  return { proc, api: apiClient(url, opts.adminToken), url, output: () => chunks.join(""), stop: () => proc.stop() };
}

export { gatewaySecrets };

/** Removes a storage location (directory and PostgreSQL schema). */
export function dropStorage(loc: StorageLocation): Promise<void> {
  return dropTestStorage(loc.dialect, loc.dataDir, loc.schema);
}

/**
 * Runs a one-off `hookwarden` command (e.g. `keys rotate`) as a child process with exactly the
 * given HOOKWARDEN_* environment; resolves with its exit code and output.
 */
export function runCli(args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const childEnv: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("HOOKWARDEN_")) childEnv[k] = v;
  Object.assign(childEnv, env);
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], { cwd: REPO_ROOT, env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`hookwarden ${args.join(" ")} did not finish in ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
