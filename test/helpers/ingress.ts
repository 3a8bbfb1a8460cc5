import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { createServer, request, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { sql } from "kysely";
import { expect } from "vitest";
import type { TestServer } from "./server.js";

/** Admin-API helpers for buckets, inputs and outputs; each fails the test unless it answers 201. */
export async function createBucket(t: TestServer, body: Record<string, unknown>): Promise<any> {
  const res = await t.api("POST", "/api/v1/bucket", body);
  expect(res.status, res.text).toBe(201);
  return res.body;
}

export async function createInput(t: TestServer, bucketId: string, body: Record<string, unknown> = {}): Promise<any> {
  const res = await t.api("POST", `/api/v1/bucket/${bucketId}/input`, { name: "in", ...body });
  expect(res.status, res.text).toBe(201);
  return res.body;
}

export async function createOutput(t: TestServer, bucketId: string, body: Record<string, unknown>): Promise<any> {
  const res = await t.api("POST", `/api/v1/bucket/${bucketId}/output`, { type: "url", ...body });
  expect(res.status, res.text).toBe(201);
  return res.body;
}

/** A bucket (extra settings in `bucket`), one input (settings in `input`) and one URL output per url. */
export async function setup(
  t: TestServer,
  opts: { bucket?: Record<string, unknown>; input?: Record<string, unknown>; outputs?: (string | Record<string, unknown>)[] } = {},
): Promise<{ bucket: any; input: any; outputs: any[] }> {
  const bucket = await createBucket(t, { name: `b-${randomBytes(4).toString("hex")}`, ...opts.bucket });
  const input = await createInput(t, bucket.id, opts.input);
  const outputs = [];
  for (const o of opts.outputs ?? []) outputs.push(await createOutput(t, bucket.id, typeof o === "string" ? { url: o } : o));
  return { bucket, input, outputs };
}

/** Stored requests of a bucket, newest first, as the API lists them. */
export async function listRequests(t: TestServer, bucketId: string): Promise<any[]> {
  const res = await t.api("GET", `/api/v1/bucket/${bucketId}/request?limit=250`);
  expect(res.status, res.text).toBe(200);
  return res.body.data as any[];
}

export async function getRequest(t: TestServer, bucketId: string, requestId: string): Promise<any> {
  const res = await t.api("GET", `/api/v1/bucket/${bucketId}/request/${requestId}`);
  expect(res.status, res.text).toBe(200);
  return res.body;
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: string;
  json: any;
  ms: number;
}

export interface SendOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** Send the body with `Transfer-Encoding: chunked` instead of `Content-Length`. */
  chunked?: boolean;
  /** Source address of the connection (any 127.0.0.0/8 address works on Linux loopback). */
  localAddress?: string;
}

/**
 * One request over a fresh connection with `node:http`, which (unlike fetch) sends the path,
 * headers and source address exactly as given: no dot-segment normalisation, no added headers.
 */
export function send(base: string, path: string, opts: SendOptions = {}): Promise<RawResponse> {
  const url = new URL(base);
  const body = opts.body === undefined ? undefined : Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(opts.body, "utf8");
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path,
        method: opts.method ?? (body ? "POST" : "GET"),
        agent: false,
        headers: { ...(body && !opts.chunked ? { "content-length": String(body.length) } : {}), ...opts.headers },
        ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const buf = Buffer.concat(chunks);
          const text = buf.toString("utf8");
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: buf, text, json, ms: performance.now() - started });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    if (body && opts.chunked) req.write(body);
    req.end(body && !opts.chunked ? body : undefined);
  });
}

export interface Captured {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  /** Name/value pairs exactly as they arrived. */
  rawHeaders: string[];
  body: Buffer;
}

export type RawResponder = (req: Captured) => { status?: number; headers?: Record<string, string>; body?: string | Buffer; delayMs?: number } | undefined;

/** A destination on 127.0.0.1 that keeps every request's exact bytes; `respond` picks the answer (default 200 "ok"). */
export class RawReceiver {
  readonly received: Captured[] = [];
  respond: RawResponder = () => undefined;
  url = "";
  readonly #server: Server;
  readonly #timers = new Set<NodeJS.Timeout>();

  constructor() {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const r: Captured = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks) };
        this.received.push(r);
        const answer = this.respond(r) ?? {};
        const reply = () => {
          if (res.destroyed) return;
          res.writeHead(answer.status ?? 200, { "content-type": "text/plain", ...answer.headers });
          res.end(answer.body ?? "ok");
        };
        if (!answer.delayMs) return reply();
        const timer = setTimeout(() => {
          this.#timers.delete(timer);
          reply();
        }, answer.delayMs);
        this.#timers.add(timer);
      });
    });
  }

  /** Requests that arrived on `path` (the part before `?`). */
  at(path: string): Captured[] {
    return this.received.filter((r) => r.url.split("?")[0] === path);
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const t of this.#timers) clearTimeout(t);
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/**
 * Everything the database holds, as text: the SQLite files (main and WAL) read as raw bytes, or
 * every row of every table of the server's PostgreSQL schema.
 */
export async function databaseText(t: TestServer): Promise<string> {
  if (t.dialect === "sqlite") {
    const files = readdirSync(t.dataDir).filter((f) => f.startsWith("hookwarden.db"));
    expect(files).toContain("hookwarden.db");
    return files.map((f) => readFileSync(join(t.dataDir, f)).toString("latin1")).join("\n");
  }
  const db = t.hw.ctx.store.db;
  const tables = await sql<{ table_name: string }>`select table_name from information_schema.tables where table_schema = ${t.schema!}`.execute(db);
  expect(tables.rows.map((r) => r.table_name)).toContain("inbound_requests");
  const out: string[] = [];
  for (const { table_name } of tables.rows) {
    const rows = await sql<{ j: string }>`select row_to_json(x)::text as j from ${sql.table(`${t.schema}.${table_name}`)} x`.execute(db);
    out.push(...rows.rows.map((r) => r.j));
  }
  return out.join("\n");
}

/** The encodings under which a stored value could still be read: raw, base64, hex, percent- and JSON-escaped. */
export function storedForms(value: string | Buffer): string[] {
  const buf = Buffer.isBuffer(value) ? value : Buffer.from(value, "utf8");
  const b64 = buf.toString("base64");
  const text = buf.toString("utf8");
  return [...new Set([text, encodeURIComponent(text), JSON.stringify(text).slice(1, -1), b64, b64.replace(/=+$/, ""), buf.toString("base64url"), buf.toString("hex")])];
}

/** A value no test data contains by chance. */
export function canary(tag: string): string {
  return `cnry${tag}${randomBytes(8).toString("hex")}`;
}

/** The value of one series in `/metrics`, 0 when absent. */
export async function metric(t: TestServer, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`${t.url}/metrics`)).text();
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    const [series, value] = [line.slice(0, line.lastIndexOf(" ")), line.slice(line.lastIndexOf(" ") + 1)];
    if (Object.entries(labels).every(([k, v]) => series.includes(`${k}="${v}"`))) return Number(value);
  }
  return 0;
}

/** Rejections recorded for one input, oldest first. */
export async function rejectionsOf(t: TestServer, inputId: string): Promise<{ status_code: number; reason: string; bucket_id: string | null; org_id: string | null }[]> {
  return t.hw.ctx.store.db.selectFrom("inbound_rejections").select(["status_code", "reason", "bucket_id", "org_id"]).where("input_id", "=", inputId).orderBy("id").execute();
}
