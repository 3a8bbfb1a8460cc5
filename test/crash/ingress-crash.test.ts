import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sign as githubSign } from "@octokit/webhooks-methods";
import Database from "better-sqlite3";
import pg from "pg";
import { Pool } from "undici";
import { afterAll, describe, expect, it } from "vitest";
import type { Dialect } from "../../src/store/index.js";
import { DIALECTS, TEST_PG_URL } from "../helpers/dialects.js";
import { GatewayClient } from "../helpers/gateway-client.js";
import { gatewaySecrets, spawnGateway, type GatewayProcess } from "../helpers/gateway-process.js";

/** Posts offered at most; the stream stops at the crash long before that. */
const POSTS = 4_000;
const CONCURRENCY = 20;
/** The crash comes once this many posts have been answered 2xx. */
const KILL_AFTER = 600;
const GITHUB_SECRET = `crash-${randomBytes(8).toString("hex")}`;
/** PostgreSQL: short, so the killed node's leases (timeout + 10 s) expire within the test. */
const PG_REQUEST_TIMEOUT = "2s";

/**
 * A destination that keeps every body it receives (what a consumer would process) and counts, by
 * `X-GitHub-Delivery` (forwarded with the other headers), deliveries that had started to arrive.
 */
class BodyReceiver {
  readonly received = new Map<string, number>();
  readonly started = new Map<string, number>();
  receivedTotal = 0;
  url = "";
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #watchers: (() => void)[] = [];

  constructor() {
    this.#server = createServer((req, res) => {
      const delivery = String(req.headers["x-github-delivery"] ?? "");
      this.started.set(delivery, (this.started.get(delivery) ?? 0) + 1);
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        this.received.set(body, (this.received.get(body) ?? 0) + 1);
        this.receivedTotal++;
        this.#notify();
        res.writeHead(200, { "content-type": "text/plain" }).end("ok");
      });
    });
    this.#server.keepAliveTimeout = 5_000;
    this.#server.on("connection", (s) => {
      this.#sockets.add(s);
      s.on("close", () => {
        this.#sockets.delete(s);
        this.#notify();
      });
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/hook`;
    return this;
  }

  #notify(): void {
    for (const w of this.#watchers) w();
  }

  /** Resolves when `cond()` holds, re-checked on every request and closed connection. */
  until(cond: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const watcher = () => {
        if (!cond()) return;
        done();
        resolve();
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#watchers = this.#watchers.filter((w) => w !== watcher);
      };
      this.#watchers.push(watcher);
    });
  }

  get openConnections(): number {
    return this.#sockets.size;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** Runs one read-only query against the installation's database while no gateway runs. */
async function readDb<T>(dialect: Dialect, dataDir: string, schema: string, query: string): Promise<T[]> {
  if (dialect === "sqlite") {
    const db = new Database(join(dataDir, "hookwarden.db"));
    try {
      return db.prepare(query).all() as T[];
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: TEST_PG_URL, options: `-c search_path=${schema}` });
  await client.connect();
  try {
    return (await client.query(query)).rows as T[];
  } finally {
    await client.end();
  }
}

async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: TEST_PG_URL });
  await client.connect();
  try {
    await client.query(`drop schema if exists ${schema} cascade`);
  } finally {
    await client.end();
  }
}

/** Polls the gateway's own queue gauge: once it reads 0, no forward (and no duplicate) is pending. */
async function untilQueueEmpty(client: GatewayClient, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let depth = await client.queueDepth();
  while (depth > 0) {
    if (Date.now() > deadline) throw new Error(`queue still holds ${depth} jobs after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
    depth = await client.queueDepth();
  }
}

/** Runs `fn` over `items` with at most `concurrency` calls in flight. */
async function eachLimited<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

/** Storage a test could not erase itself (a runner giving up on a timed-out test skips `finally`). */
const leftoverDirs = new Set<string>();
const leftoverSchemas = new Set<string>();
process.once("exit", () => {
  for (const dir of leftoverDirs) rmSync(dir, { recursive: true, force: true });
});
afterAll(async () => {
  for (const dir of leftoverDirs) rmSync(dir, { recursive: true, force: true });
  leftoverDirs.clear();
  for (const schema of leftoverSchemas) await dropSchema(schema);
  leftoverSchemas.clear();
});

for (const dialect of DIALECTS) {
  describe(`kill -9 mid-ingest (${dialect})`, () => {
    it(
      "stores and forwards every post that was answered 2xx, repeating only forwards in flight at the crash",
      async () => {
        const dataDir = mkdtempSync(join(tmpdir(), "hookwarden-ingress-crash-"));
        const schema = `hwicrash_${randomBytes(6).toString("hex")}`;
        leftoverDirs.add(dataDir);
        if (dialect === "postgres") leftoverSchemas.add(schema);
        const secrets = gatewaySecrets();
        const args = [
          "--host", "127.0.0.1",
          "--port", "0",
          "--data-dir", dataDir,
          "--allow-private-networks", "127.0.0.0/8",
          "--retry-schedule", "1s,1s,1s,1s,1s",
          "--log-level", "warn",
          ...(dialect === "postgres" ? ["--database-url", TEST_PG_URL, "--database-schema", schema, "--request-timeout", PG_REQUEST_TIMEOUT] : []),
        ];
        const start = () => spawnGateway({ runtime: "tsx", args, ...secrets });
        const receiver = await new BodyReceiver().start();
        const gateways: GatewayProcess[] = [];
        const clients: GatewayClient[] = [];
        let poster: Pool | undefined;
        try {
          const first = await start();
          gateways.push(first);
          const admin1 = new GatewayClient(first.url, secrets.adminToken, 4);
          clients.push(admin1);
          const bucket = await admin1.createBucket("crash");
          const input = await admin1.createInput(bucket.id, { verification: { type: "github", secret: GITHUB_SECRET } });
          await admin1.createOutput(bucket.id, receiver.url);

          // Signed by GitHub's own library, so verification runs on every post of the stream.
          const bodyOf = new Map<string, string>();
          const posts = Array.from({ length: POSTS }, (_, i) => {
            const delivery = randomUUID();
            const body = JSON.stringify({ ref: "refs/heads/main", seq: i, delivery, pad: "x".repeat(600) });
            bodyOf.set(delivery, body);
            return { delivery, body };
          });

          poster = new Pool(first.url, { connections: CONCURRENCY, keepAliveTimeout: 10_000 });
          const accepted = new Set<string>();
          const statuses: Record<string, number> = {};
          let unanswered = 0;
          let killed = false;
          let next = 0;
          const post = async () => {
            while (next < posts.length && !killed) {
              const { delivery, body } = posts[next++]!;
              const headers = { "content-type": "application/json", "x-github-event": "push", "x-github-delivery": delivery, "x-hub-signature-256": await githubSign(GITHUB_SECRET, body) };
              try {
                const res = await poster!.request({ method: "POST", path: `/in/${input.id}`, headers, body });
                await res.body.dump();
                statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
                if (res.statusCode < 200 || res.statusCode > 299) throw new Error(`post answered ${res.statusCode}`);
                accepted.add(body);
                if (accepted.size >= KILL_AFTER && !killed) {
                  killed = true;
                  first.child.kill("SIGKILL");
                }
              } catch (err) {
                // No answer: the process died with this post in flight. It may or may not have
                // been committed, and the provider would send it again: not counted either way.
                if (!killed) throw err;
                unanswered++;
              }
            }
          };
          await Promise.all(Array.from({ length: CONCURRENCY }, post));
          const exit = await first.exited;
          expect(exit.signal).toBe("SIGKILL");
          await poster.destroy();
          poster = undefined;
          // The kernel flushes and closes the dead process's sockets: once they are all closed,
          // every forward it had sent has arrived.
          await receiver.until(() => receiver.openConnections === 0, 10_000, () => `${receiver.openConnections} connections to close`);
          const receivedAtCrash = receiver.receivedTotal;
          const queuedAtCrash = new Set((await readDb<{ item_id: string }>(dialect, dataDir, schema, "select item_id from jobs")).map((r) => r.item_id));
          const startedBeforeRestart = new Set(receiver.started.keys());

          const restartedAt = performance.now();
          const second = await start();
          gateways.push(second);
          const admin2 = new GatewayClient(second.url, secrets.adminToken, CONCURRENCY);
          clients.push(admin2);

          const missing = () => [...accepted].filter((body) => !receiver.received.has(body));
          await receiver.until(() => missing().length === 0, 90_000, () => `${missing().length} of ${accepted.size} accepted posts to be forwarded`);
          const allForwardedMs = Math.round(performance.now() - restartedAt);
          await untilQueueEmpty(admin2, 30_000);

          // Stored: listed by the API and, decrypted by it, holding the exact body posted.
          const ids = await admin2.listRequestIds(bucket.id);
          const storedBody = new Map<string, string>();
          await eachLimited(ids, CONCURRENCY, async (id) => {
            const r = await admin2.getRequest(bucket.id, id);
            if (r.request?.bodyEncoding === "utf8") storedBody.set(id, r.request.body);
          });
          const stored = new Set(storedBody.values());
          await second.stop();
          const [failed] = await readDb<{ n: number | string }>(dialect, dataDir, schema, "select count(*) as n from attempts where status <> 0");
          const failedAttempts = Number(failed?.n ?? 0);

          // Forwards the receiver saw (even partly) whose outcome the database never recorded:
          // exactly the ones the next run had to send again.
          const inFlightAtCrash = [...queuedAtCrash].filter((id) => {
            const body = storedBody.get(id);
            const delivery = body === undefined ? undefined : (JSON.parse(body) as { delivery: string }).delivery;
            return delivery !== undefined && startedBeforeRestart.has(delivery);
          }).length;
          const duplicates = [...receiver.received.values()].filter((n) => n > 1).length;
          const extraRequests = [...receiver.received.values()].reduce((s, n) => s + n - 1, 0);
          const unansweredBodies = [...bodyOf.values()].filter((b) => !accepted.has(b));
          console.log(
            JSON.stringify({
              test: "ingress_crash",
              dialect,
              accepted: accepted.size,
              unanswered,
              statuses,
              stored: ids.length,
              storedButUnanswered: unansweredBodies.filter((b) => stored.has(b)).length,
              acceptedMissingFromStore: [...accepted].filter((b) => !stored.has(b)).length,
              forwardedAccepted: [...accepted].filter((b) => receiver.received.has(b)).length,
              receivedAtCrash,
              receivedTotal: receiver.receivedTotal,
              duplicates,
              extraRequests,
              inFlightAtCrash,
              failedAttempts,
              restartToAllForwardedMs: allForwardedMs,
            }),
          );

          expect(accepted.size).toBeGreaterThanOrEqual(KILL_AFTER);
          expect([...accepted].filter((b) => !stored.has(b))).toEqual([]);
          expect(missing()).toEqual([]);
          // Every stored request (answered or not) holds a body that was posted, once.
          expect(stored.size).toBe(ids.length);
          for (const b of stored) expect(bodyOf.has((JSON.parse(b) as { delivery: string }).delivery)).toBe(true);
          expect(extraRequests).toBeLessThanOrEqual(inFlightAtCrash + failedAttempts);
        } finally {
          await poster?.destroy();
          await Promise.all(gateways.map((g) => g.kill("SIGKILL")));
          await Promise.all(clients.map((c) => c.close()));
          await receiver.stop();
          rmSync(dataDir, { recursive: true, force: true });
          leftoverDirs.delete(dataDir);
          if (dialect === "postgres") await dropSchema(schema);
          leftoverSchemas.delete(schema);
        }
      },
      // Generous: PostgreSQL waits out the dead node's leases (12 s), and a loaded 2-core CI
      // machine forwards the rest slowly.
      120_000,
    );
  });
}
