/**
 * The `floor` phase's stand-in gateway (`bench/floor.ts` forks it): the least a webhook gateway
 * can do per webhook, written as directly as Node allows, to show what the ratio targets mean on
 * this machine. Per request: `node:http` reads the body, checks a Standard Webhooks HMAC,
 * seals the body with AES-256-GCM, inserts it into SQLite (one prepared statement, WAL,
 * `synchronous = NORMAL`: no fsync, so it survives a process crash but not power loss), answers
 * 200, forwards it with undici to the receiver with a new signature, and deletes the row on a
 * 2xx. No validation, routing, tenants, attempts, retries, metrics or logs. It is not Hookwarden
 * and nothing else uses it.
 *
 * With `FLOOR_DATABASE_URL` the row goes to PostgreSQL instead, with group commit as a gateway
 * would do it there: the requests that arrived during one event-loop turn share one multi-row
 * INSERT (a durable commit, PostgreSQL's default), and finished forwards one DELETE. The sealed
 * body is never compressed and stays in its row up to 8 KB, as Hookwarden stores it (0019).
 *
 * argv: receiver URL. Prints `{ port }` on stdout once listening; exits on SIGTERM.
 */
import { createCipheriv, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import pg from "pg";
import { Agent, type Dispatcher } from "undici";

const target = new URL(process.argv[2]!);
const inboundKey = Buffer.from(process.env.FLOOR_INBOUND_KEY!, "base64");
const outboundKey = randomBytes(32);
const sealKey = randomBytes(32);
const dir = mkdtempSync(join(tmpdir(), "hookwarden-floor-"));
const pgUrl = process.env.FLOOR_DATABASE_URL;
const table = `floor_${randomBytes(6).toString("hex")}`;
let insert: (id: string, body: Buffer) => Promise<unknown>;
let remove: (id: string) => unknown;
let closeDb: () => Promise<void>;
if (pgUrl) {
  const pool = new pg.Pool({ connectionString: pgUrl, max: 10 });
  // Ciphertext never compresses: stored as it is, in the row up to 8 KB (as Hookwarden's 0019).
  await pool.query(`create table ${table} (id text primary key, body bytea not null) with (toast_tuple_target = 8160)`);
  await pool.query(`alter table ${table} alter column body set storage external`);
  let rows: { id: string; body: Buffer; done: (err?: unknown) => void }[] = [];
  let gone: string[] = [];
  const flushRows = () => {
    const batch = rows;
    rows = [];
    const values = batch.map((_, i) => `($${2 * i + 1}, $${2 * i + 2})`).join(", ");
    pool.query(`insert into ${table} (id, body) values ${values}`, batch.flatMap((r) => [r.id, r.body])).then(
      () => batch.forEach((r) => r.done()),
      (err: unknown) => batch.forEach((r) => r.done(err)),
    );
  };
  const flushGone = () => {
    const ids = gone;
    gone = [];
    pool.query(`delete from ${table} where id = any($1)`, [ids]).catch(() => {});
  };
  insert = (id, body) =>
    new Promise<void>((resolve, reject) => {
      if (rows.length === 0) setImmediate(flushRows);
      rows.push({ id, body, done: (err) => (err ? reject(err) : resolve()) });
    });
  remove = (id) => {
    if (gone.length === 0) setImmediate(flushGone);
    gone.push(id);
  };
  closeDb = async () => {
    await pool.query(`drop table if exists ${table}`).catch(() => {});
    await pool.end();
  };
} else {
  const db = new BetterSqlite3(join(dir, "floor.db"));
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.exec(`create table ${table} (id text primary key, body blob not null)`);
  const ins = db.prepare(`insert into ${table} (id, body) values (?, ?)`);
  const del = db.prepare(`delete from ${table} where id = ?`);
  insert = async (id, body) => ins.run(id, body);
  remove = (id) => del.run(id);
  closeDb = async () => {
    db.close();
  };
}
const dispatcher = new Agent({ connections: 64, keepAliveTimeout: 10_000 });
let seq = 0;

function seal(body: Buffer): Buffer {
  const iv = randomBytes(12);
  const c = createCipheriv("aes-256-gcm", sealKey, iv);
  return Buffer.concat([iv, c.update(body), c.final(), c.getAuthTag()]);
}

function forward(rowId: string, id: string, body: Buffer): void {
  const ts = String(Math.floor(Date.now() / 1000));
  const sig = createHmac("sha256", outboundKey).update(`${id}.${ts}.`).update(body).digest("base64");
  let status = 0;
  const handler: Dispatcher.DispatchHandler = {
    onRequestStart: () => {},
    onResponseStart: (_c, code) => void (status = code),
    onResponseData: () => {},
    onResponseEnd: () => {
      if (status >= 200 && status < 300) remove(rowId);
    },
    onResponseError: () => {},
  };
  dispatcher.dispatch(
    {
      origin: target.origin,
      path: target.pathname,
      method: "POST",
      headers: { "content-type": "application/json", "webhook-id": id, "webhook-timestamp": ts, "webhook-signature": `v1,${sig}` },
      body,
    },
    handler,
  );
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    const id = String(req.headers["webhook-id"] ?? "");
    const ts = String(req.headers["webhook-timestamp"] ?? "");
    const given = Buffer.from(String(req.headers["webhook-signature"] ?? "").slice(3), "base64");
    const expected = createHmac("sha256", inboundKey).update(`${id}.${ts}.`).update(body).digest();
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      res.writeHead(401).end();
      return;
    }
    const rowId = `${id}:${++seq}`;
    insert(rowId, seal(body)).then(
      () => {
        res.writeHead(200, { "content-length": "0" }).end();
        forward(rowId, id, body);
      },
      () => res.writeHead(503).end(),
    );
  });
});
server.keepAliveTimeout = 30_000;
server.listen(0, "127.0.0.1", () => process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`));
process.on("SIGTERM", () => {
  server.close();
  server.closeAllConnections();
  void dispatcher
    .close()
    .then(closeDb)
    .finally(() => {
      rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    });
});
