import { PassThrough } from "node:stream";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createLogger } from "../../src/logger/index.js";
import { describeStorageCause } from "../../src/store/errors.js";
import type { Store } from "../../src/store/index.js";
import { openPostgres } from "../../src/store/postgres/connect.js";
import { send, setup } from "../helpers/ingress.js";
import { createPgCluster, type PgCluster } from "../helpers/pg-cluster.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * PostgreSQL going away and coming back, on a throwaway cluster of this test's own (the shared
 * server is never touched): writes answer 503 with Retry-After instead of 500, readiness follows
 * storage, the cause is logged once, and cross-node wake-ups (LISTEN) come back by themselves.
 */
describe("a PostgreSQL outage", () => {
  let cluster: PgCluster;
  beforeAll(async () => {
    cluster = await createPgCluster();
  }, 120_000);
  afterAll(() => {
    cluster?.destroy();
  });

  it("answers writes 503 E_UNAVAILABLE with Retry-After (API and /in), fails /ready, keeps /health, and recovers by itself", async () => {
    let t: TestServer | undefined;
    try {
      t = await startTestServer("postgres", { databaseUrl: cluster.url });
      const app = await t.api("POST", "/api/v1/app", { name: "outage" });
      expect(app.status).toBe(201);
      const { input } = await setup(t);
      const publish = () => t!.api("POST", `/api/v1/app/${app.body.id}/msg`, { eventType: "a.b", payload: { n: 1 } });
      expect((await publish()).status).toBe(202);
      expect((await send(t.url, `/in/${input.id}`, { method: "POST", body: "{}" })).status).toBe(200);

      // A transaction whose server dies under it: the statement's error is the one reported, not
      // the ROLLBACK that cannot run on a dead connection.
      const failed = await t.hw.ctx.store.db
        .transaction()
        .execute(async (trx) => {
          await sql`select 1`.execute(trx);
          cluster.stop("immediate");
          await sql`select 1`.execute(trx);
        })
        .catch((e: unknown) => e);
      expect(failed).toMatchObject({ code: "E_UNAVAILABLE", status: 503 });
      expect(describeStorageCause(failed)).not.toMatch(/not queryable|rollback/i);

      for (let i = 0; i < 3; i++) {
        const res = await publish();
        expect(res.status, res.text).toBe(503);
        expect(res.body).toMatchObject({ code: "E_UNAVAILABLE", detail: expect.any(String) });
        expect(res.text).not.toContain("ECONNREFUSED");
        const inbound = await send(t.url, `/in/${input.id}`, { method: "POST", body: "{}" });
        expect(inbound.status, inbound.text).toBe(503);
        expect(inbound.headers["retry-after"]).toBe("5");
        expect(inbound.json).toMatchObject({ code: "E_UNAVAILABLE" });
      }
      const refused = await fetch(`${t.url}/api/v1/app/${app.body.id}/msg`, {
        method: "POST",
        headers: { authorization: `Bearer ${t.token}`, "content-type": "application/json" },
        body: JSON.stringify({ eventType: "a.b", payload: {} }),
      });
      expect(refused.status).toBe(503);
      expect(refused.headers.get("retry-after")).toBe("5");
      const ready = await fetch(`${t.url}/ready`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ code: "E_UNAVAILABLE" });
      expect((await fetch(`${t.url}/health`)).status).toBe(200);
      expect(t.logs().match(/storage unavailable: /g)?.length).toBe(1);
      expect(t.logs()).not.toMatch(/"E_INTERNAL"|unhandled error/);

      cluster.start();
      await vi.waitFor(async () => expect((await fetch(`${t!.url}/ready`)).status).toBe(200), { timeout: 30_000, interval: 200 });
      expect((await publish()).status).toBe(202);
      expect((await send(t.url, `/in/${input.id}`, { method: "POST", body: "{}" })).status).toBe(200);
      expect(t.logs().match(/storage unavailable: recovered/g)?.length).toBe(1);
    } finally {
      if (cluster) {
        try {
          cluster.start();
        } catch {
          /* already running */
        }
      }
      await t?.stop();
    }
  }, 120_000);

  it("reconnects LISTEN with backoff after the server restarts: a NOTIFY from another node wakes this one again", async () => {
    const lines: string[] = [];
    const sink = new PassThrough();
    sink.on("data", (c: Buffer) => lines.push(c.toString("utf8")));
    const logger = createLogger({ level: "info", destination: sink });
    const log = () => lines.join("");
    const stores: Store[] = [];
    try {
      const a = await openPostgres({ url: cluster.url, schema: undefined, logger, listenBackoff: { initialMs: 50, maxMs: 400 } });
      stores.push(a);
      const b = await openPostgres({ url: cluster.url, schema: undefined, logger: createLogger({ level: "silent" }) });
      stores.push(b);
      let wakes = 0;
      await a.listenJobs(() => wakes++);
      await b.db.transaction().execute((trx) => b.notifyJobs(trx));
      await vi.waitFor(() => expect(wakes).toBe(1), { timeout: 10_000 });

      cluster.stop("immediate");
      await vi.waitFor(() => expect(log()).toContain("LISTEN connection lost"), { timeout: 10_000 });
      // An outage longer than one reconnect attempt: several attempts fail before the server is back.
      await new Promise((r) => setTimeout(r, 1_500));
      cluster.start();
      await vi.waitFor(() => expect(log()).toContain("LISTEN connection recovered"), { timeout: 30_000, interval: 50 });
      const before = wakes;
      await vi.waitFor(() => b.db.transaction().execute((trx) => b.notifyJobs(trx)), { timeout: 10_000, interval: 100 });
      await vi.waitFor(() => expect(wakes).toBeGreaterThan(before), { timeout: 10_000 });
      expect(log().match(/LISTEN connection lost/g)?.length).toBe(1);
      expect(log().match(/LISTEN connection recovered/g)?.length).toBe(1);
    } finally {
      for (const s of stores) await s.close().catch(() => {});
    }
  }, 120_000);
});
