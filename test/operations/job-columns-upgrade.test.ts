import { mkdtempSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Migrator, sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApplication } from "../../src/applications/index.js";
import { bootstrapAdmin } from "../../src/auth/bootstrap.js";
import { FakeClock } from "../../src/clock/index.js";
import { loadConfig, type Config } from "../../src/config/index.js";
import type { Context } from "../../src/context/index.js";
import { createEndpoint } from "../../src/endpoints/index.js";
import { EventBus } from "../../src/events/index.js";
import { newId } from "../../src/ids/index.js";
import { createBucket } from "../../src/ingress/buckets.js";
import { createInput } from "../../src/ingress/inputs.js";
import { createOutput } from "../../src/ingress/outputs.js";
import { requestAad } from "../../src/ingress/stored-request.js";
import { JobQueue } from "../../src/queue/job-queue.js";
import { createLogger } from "../../src/logger/index.js";
import { startHookwarden, type Hookwarden } from "../../src/server/index.js";
import { MIGRATIONS, openStore, type Dialect, type Store } from "../../src/store/index.js";
import { openPostgres } from "../../src/store/postgres/connect.js";
import { openSqlite } from "../../src/store/sqlite/connect.js";
import { loadKeyring } from "../../src/vault/keyring.js";
import { DIALECTS, TEST_PG_URL } from "../helpers/dialects.js";
import { Receiver } from "../helpers/receiver.js";
import { dropTestStorage, testConfigInput } from "../helpers/server.js";

const NOW = 1_700_000_000_000;

/** A request sealed as releases before stop 28 sealed it: JSON alone, the body in base64. */
function sealedAsBefore(ctx: Context, id: string, r: { method: string; suffix: string; query: string; rawHeaders: [string, string][]; body: Buffer }): string {
  return ctx.keyring.seal(JSON.stringify({ method: r.method, suffix: r.suffix, query: r.query, headers: r.rawHeaders, body: r.body.toString("base64") }), requestAad(id));
}

/** The store as a release before 0016 left it: migrations 0001-0015 run, job and attempt columns still `app_id`, `msg_id`, `endpoint_id`. */
async function openBefore0016(dialect: Dialect, config: Config): Promise<Store> {
  const logger = createLogger({ level: "silent" });
  const store = dialect === "postgres" ? await openPostgres({ url: TEST_PG_URL, schema: config.databaseSchema, logger }) : openSqlite({ dataDir: config.dataDir, logger });
  const older = Object.fromEntries(Object.entries(MIGRATIONS).filter(([name]) => name < "0016"));
  const { error } = await new Migrator({
    db: store.db,
    ...(dialect === "postgres" ? { migrationTableSchema: config.databaseSchema! } : {}),
    provider: { getMigrations: async () => older },
    migrationTableName: "hookwarden_migration",
    migrationLockTableName: "hookwarden_migration_lock",
    allowUnorderedMigrations: true,
  }).migrateToLatest();
  if (error) throw error;
  return store;
}

for (const dialect of DIALECTS) {
  describe(`upgrading to named job and attempt columns, 0016 (${dialect})`, () => {
    const dataDir = mkdtempSync(join(tmpdir(), "hookwarden-upgrade-"));
    const schema = dialect === "postgres" ? `hwt_${randomBytes(6).toString("hex")}` : undefined;
    const config = loadConfig({ ...testConfigInput(dialect, dataDir, schema), logLevel: "silent" }, {});
    const clock = new FakeClock(NOW);
    const receiver = new Receiver();
    let hw: Hookwarden | undefined;
    const ids = { app: "", ep: "", delivered: "", queued: "", bucket: "", output: "", goneOutput: newId("out"), request: "" };
    const api = async (path: string) => {
      const res = await fetch(hw!.url + path, { headers: { authorization: `Bearer ${config.adminToken!.reveal()}` } });
      expect(res.status, path).toBe(200);
      return (await res.json()) as any;
    };

    beforeAll(async () => {
      await receiver.start();
      const logger = createLogger({ level: "silent" });
      const store = await openBefore0016(dialect, config);
      try {
        const ctx: Context = { config, clock, logger, store, queue: new JobQueue(store), keyring: loadKeyring(config, logger), events: new EventBus() };
        await bootstrapAdmin(store.db, config, NOW);
        const { id: orgId } = await store.db.selectFrom("orgs").select("id").executeTakeFirstOrThrow();
        const app = (await createApplication(ctx, orgId, { name: "shop" })).row;
        const ep = (await createEndpoint(ctx, app, { url: `${receiver.url}/hook` })).row;
        const bucket = (await createBucket(ctx, orgId, { name: "stripe-in" })).row;
        const input = await createInput(ctx, bucket, { name: "stripe" });
        const output = (await createOutput(ctx, bucket, { type: "url", url: `${receiver.url}/out` })).row;
        Object.assign(ids, { app: app.id, ep: ep.id, delivered: newId("msg"), queued: newId("msg"), bucket: bucket.id, output: output.id, request: newId("req") });
        for (const [id, n] of [[ids.delivered, 1], [ids.queued, 2]] as const) {
          await store.db
            .insertInto("messages")
            .values({ id, org_id: orgId, app_id: app.id, event_id: null, event_type: "invoice.paid", payload: JSON.stringify({ n }), channels: null, tags: null, created_at: NOW - 60_000, deliver_at: null, trace_context: null, expires_at: null })
            .execute();
        }
        const received = { method: "POST", publicUrl: "http://127.0.0.1/in", suffix: "/events", query: "", headers: {}, rawHeaders: [["content-type", "application/json"]] as [string, string][], body: Buffer.from('{"id":"evt_1"}'), clientIp: "127.0.0.1", receivedAt: NOW - 60_000 };
        await store.db
          .insertInto("inbound_requests")
          .values({ id: ids.request, org_id: orgId, bucket_id: bucket.id, input_id: input.id, status_code: 200, size: received.body.length, data_enc: sealedAsBefore(ctx, ids.request, received), received_at: NOW - 60_000, trace_context: null })
          .execute();

        // Rows as the code before 0016 wrote them: a forward's app_id is its bucket, msg_id its
        // request, endpoint_id its output; attempts have no kind.
        const attempt = (appId: string, msgId: string, endpointId: string, status: number, code: number, at: number) =>
          sql`insert into attempts (id, org_id, app_id, msg_id, endpoint_id, url, status, response_status_code, response, duration_ms, trigger_type, error_code, tls_verify, created_at, request)
              values (${newId("atmpt")}, ${orgId}, ${appId}, ${msgId}, ${endpointId}, ${receiver.url}, ${status}, ${code}, ${"answer " + code}, ${12}, ${0}, ${null}, ${1}, ${at}, ${null})`.execute(store.db);
        await attempt(app.id, ids.delivered, ep.id, 0, 200, NOW - 59_000);
        await attempt(app.id, ids.queued, ep.id, 2, 500, NOW - 58_000);
        await attempt(bucket.id, ids.request, output.id, 2, 502, NOW - 57_000);
        // An output deleted since: its attempts stay, and only the bucket tells them forwards.
        await attempt(bucket.id, ids.request, ids.goneOutput, 0, 200, NOW - 56_000);
        await sql`insert into jobs (id, org_id, app_id, msg_id, endpoint_id, attempt, trigger_type, run_at, locked_by, created_at)
                  values (${newId("job")}, ${orgId}, ${app.id}, ${ids.queued}, ${ep.id}, ${1}, ${0}, ${NOW}, ${null}, ${NOW - 60_000})`.execute(store.db);
        await sql`insert into jobs (id, org_id, app_id, msg_id, endpoint_id, attempt, trigger_type, run_at, locked_by, created_at, kind)
                  values (${newId("job")}, ${orgId}, ${bucket.id}, ${ids.request}, ${output.id}, ${1}, ${0}, ${NOW}, ${null}, ${NOW - 60_000}, ${"forward"})`.execute(store.db);
      } finally {
        await store.close();
      }
    });
    afterAll(async () => {
      await hw?.stop();
      await receiver.stop();
      await dropTestStorage(dialect, dataDir, schema);
    });

    it("renames the columns in place: every job and attempt kept, attempts on outputs marked forward", async () => {
      const store = await openStore(config, createLogger({ level: "silent" }));
      try {
        const jobs = await store.db.selectFrom("jobs").select(["kind", "scope_id", "item_id", "destination_id", "attempt"]).orderBy("kind").execute();
        expect(jobs).toEqual([
          { kind: "forward", scope_id: ids.bucket, item_id: ids.request, destination_id: ids.output, attempt: 1 },
          { kind: "outbound", scope_id: ids.app, item_id: ids.queued, destination_id: ids.ep, attempt: 1 },
        ]);
        const attempts = await store.db.selectFrom("attempts").select(["kind", "scope_id", "item_id", "destination_id", "response_status_code"]).orderBy("created_at").execute();
        expect(attempts).toEqual([
          { kind: "outbound", scope_id: ids.app, item_id: ids.delivered, destination_id: ids.ep, response_status_code: 200 },
          { kind: "outbound", scope_id: ids.app, item_id: ids.queued, destination_id: ids.ep, response_status_code: 500 },
          { kind: "forward", scope_id: ids.bucket, item_id: ids.request, destination_id: ids.output, response_status_code: 502 },
          { kind: "forward", scope_id: ids.bucket, item_id: ids.request, destination_id: ids.goneOutput, response_status_code: 200 },
        ]);
        await expect(sql`select app_id from jobs`.execute(store.db)).rejects.toThrow();
        await expect(sql`select msg_id from attempts`.execute(store.db)).rejects.toThrow();
        // The indexes went with their columns (names kept): listing a message's attempts still uses one.
        const indexed =
          dialect === "postgres"
            ? (await sql<{ def: string }>`select indexdef as def from pg_indexes where schemaname = ${schema} and indexname in ('attempts_msg', 'attempts_endpoint') order by indexname`.execute(store.db)).rows.map((r) => r.def.replace(/^.*\((.*)\)$/, "$1"))
            : await Promise.all(["attempts_endpoint", "attempts_msg"].map(async (ix) => (await sql<{ name: string }>`select name from pragma_index_info(${ix}) order by seqno`.execute(store.db)).rows.map((r) => r.name).join(", ")));
        expect(indexed).toEqual(["destination_id, id", "item_id, id"]);
      } finally {
        await store.close();
      }
    });

    it("then delivers the queued message and forwards the queued request, and the API lists old and new attempts", async () => {
      hw = await startHookwarden(config, { logger: createLogger({ level: "silent" }), clock });
      await hw.worker.runUntilIdle();
      await receiver.waitFor(2);
      expect(receiver.received.map((r) => [r.url, r.body]).sort()).toEqual([
        ["/hook", JSON.stringify({ n: 2 })],
        ["/out/events", '{"id":"evt_1"}'],
      ]);

      const queued = (await api(`/api/v1/app/${ids.app}/attempt/msg/${ids.queued}?order=ascending`)).data;
      expect(queued.map((a: any) => [a.msgId, a.endpointId, a.responseStatusCode, a.statusText])).toEqual([
        [ids.queued, ids.ep, 500, "fail"],
        [ids.queued, ids.ep, 200, "success"],
      ]);
      const toEndpoint = (await api(`/api/v1/app/${ids.app}/attempt/endpoint/${ids.ep}?order=ascending`)).data;
      expect(toEndpoint.map((a: any) => [a.msgId, a.responseStatusCode])).toEqual([
        [ids.delivered, 200],
        [ids.queued, 500],
        [ids.queued, 200],
      ]);
      // The message's status at its endpoint (jobs and attempts read together) is success now.
      const destinations = (await api(`/api/v1/app/${ids.app}/msg/${ids.queued}/endpoint`)).data;
      expect(destinations.map((d: any) => [d.id, d.status])).toEqual([[ids.ep, 0]]);

      // Sealed in the first format: still shown, and forwarded above, byte for byte.
      const request = await api(`/api/v1/bucket/${ids.bucket}/request/${ids.request}`);
      expect(request.request).toMatchObject({ method: "POST", path: "/events", body: '{"id":"evt_1"}', bodyEncoding: "utf8", headers: [["content-type", "application/json"]] });
      expect(request.attempts.map((a: any) => [a.endpointId, a.responseStatusCode]).sort()).toEqual(
        [
          [ids.output, 502],
          [ids.goneOutput, 200],
          [ids.output, 200],
        ].sort(),
      );
      const kinds = await hw.ctx.store.db.selectFrom("attempts").select(["kind", "destination_id"]).where("created_at", "=", NOW).orderBy("kind").execute();
      expect(kinds).toEqual([
        { kind: "forward", destination_id: ids.output },
        { kind: "outbound", destination_id: ids.ep },
      ]);
      expect(await hw.ctx.store.db.selectFrom("jobs").select("id").execute()).toEqual([]);
    });
  });
}
