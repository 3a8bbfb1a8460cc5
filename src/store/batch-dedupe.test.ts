import { sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { DIALECTS } from "../../test/helpers/dialects.js";
import { openTestStore, type TestStore } from "../../test/helpers/store.js";
import { newId } from "../ids/index.js";
import type { JobRow } from "../queue/types.js";
import { insertDedupedWithJobs } from "./batch-write.js";
import type { Db } from "./index.js";

/**
 * The intake's batch with dedupe keys (`insertDedupedWithJobs`): requests whose provider id was
 * seen within the window are left out with their jobs, a key never commits without its request,
 * and on PostgreSQL the whole batch is one statement.
 */
for (const dialect of DIALECTS) {
  describe(`insertDedupedWithJobs (${dialect})`, () => {
    let s: TestStore | undefined;
    afterEach(async () => {
      await s?.drop();
      s = undefined;
    });

    const NOW = 500_000;
    const setup = async () => {
      s = await openTestStore(dialect);
      const db = s.store.db;
      const orgId = newId("org");
      await db.insertInto("orgs").values({ id: orgId, name: `org-${orgId}`, created_at: 1 }).execute();
      const bucketId = newId("bkt");
      await db
        .insertInto("buckets")
        .values({ id: bucketId, org_id: orgId, name: "b", auth_type: "none", auth_username: null, auth_secret_enc: null, ephemeral: 0, ip_allowlist: null, rate_limit: null, retention_days: 7, created_at: 1, updated_at: 1 })
        .execute();
      // Held until after NOW, and one expired by NOW.
      await db
        .insertInto("inbound_dedupe")
        .values([
          { input_id: "in_1", delivery_id: "held", expires_at: NOW + 1 },
          { input_id: "in_1", delivery_id: "old", expires_at: NOW },
        ])
        .execute();
      const request = (n: number) => ({
        id: `req_${n}`,
        org_id: orgId,
        bucket_id: bucketId,
        input_id: "in_1",
        status_code: 200,
        size: 2,
        data_enc: `sealed '${n}' $1 -- not SQL`,
        received_at: NOW,
        trace_context: null,
      });
      const job = (item: string, destination: string): JobRow => ({
        id: newId("job"),
        org_id: orgId,
        scope_id: bucketId,
        item_id: item,
        destination_id: destination,
        attempt: 0,
        trigger_type: 0,
        run_at: NOW,
        locked_by: null,
        created_at: NOW,
        kind: "forward",
        held_by: null,
      });
      return { db, request, job };
    };

    const stored = async (db: Db) => ({
      requests: (await db.selectFrom("inbound_requests").select(["id", "data_enc"]).orderBy("id").execute()).map((r) => `${r.id}: ${r.data_enc}`),
      jobs: (await db.selectFrom("jobs").select(["item_id", "destination_id"]).orderBy("item_id").orderBy("destination_id").execute()).map((j) => `${j.item_id} -> ${j.destination_id}`),
      keys: (await db.selectFrom("inbound_dedupe").select(["delivery_id", "expires_at"]).orderBy("delivery_id").execute()).map((k) => `${k.delivery_id} until ${k.expires_at}`),
    });

    it("leaves out the requests whose key is held, with their jobs, takes over an expired key, and stores the rest", async () => {
      const { db, request, job } = await setup();
      const rows = [request(0), request(1), request(2), request(3)];
      const keys = [{ input_id: "in_1", delivery_id: "held" }, { input_id: "in_1", delivery_id: "old" }, undefined, { input_id: "in_1", delivery_id: "new" }];
      const jobs = [job("req_0", "out_a"), job("req_1", "out_a"), job("req_1", "out_b"), job("req_2", "out_a"), job("req_3", "out_a")];
      const write = (conn: Db) => insertDedupedWithJobs(s!.store, conn, "inbound_requests", rows, jobs, true, { keys, expiresAt: NOW + 1000, now: NOW });
      // One connection, to read back what it prepared.
      const { duplicates, prepared } = await db.connection().execute(async (conn) => {
        const duplicates = await write(conn);
        if (dialect !== "postgres") return { duplicates, prepared: [] };
        const { rows } = await sql<{ statement: string }>`select statement from pg_prepared_statements where name like 'hookwarden_%'`.execute(conn);
        return { duplicates, prepared: rows.map((r) => r.statement) };
      });
      expect([...duplicates]).toEqual([0]);
      expect(await stored(db)).toEqual({
        requests: ["req_1: sealed '1' $1 -- not SQL", "req_2: sealed '2' $1 -- not SQL", "req_3: sealed '3' $1 -- not SQL"],
        jobs: ["req_1 -> out_a", "req_1 -> out_b", "req_2 -> out_a", "req_3 -> out_a"],
        keys: [`held until ${NOW + 1}`, `new until ${NOW + 1000}`, `old until ${NOW + 1000}`],
      });
      if (dialect === "postgres") {
        // The keys, the requests and their jobs went as one statement (no BEGIN, no second insert).
        expect(prepared).toHaveLength(1);
        expect(prepared[0]).toMatch(/^with "d" as \(insert into "inbound_dedupe".*insert into "inbound_requests".*insert into "jobs"/s);
      }
    });

    it("keeps each key with its own row whichever rows of a batch carry one (one statement text for both)", async () => {
      const { db, request, job } = await setup();
      const opts = (keys: ({ input_id: string; delivery_id: string } | undefined)[]) => ({ keys, expiresAt: NOW + 1000, now: NOW });
      const first = await insertDedupedWithJobs(s!.store, db, "inbound_requests", [request(0), request(1)], [job("req_0", "a"), job("req_1", "a")], false, opts([{ input_id: "in_1", delivery_id: "k0" }, undefined]));
      const second = await insertDedupedWithJobs(s!.store, db, "inbound_requests", [request(2), request(3)], [job("req_2", "a"), job("req_3", "a")], false, opts([undefined, { input_id: "in_1", delivery_id: "k0" }]));
      expect([[...first], [...second]]).toEqual([[], [1]]);
      expect((await stored(db)).requests.map((r) => r.split(":")[0])).toEqual(["req_0", "req_1", "req_2"]);
    });

    it("stores nothing of a batch whose every key is held, and no key commits when the batch fails", async () => {
      const { db, request, job } = await setup();
      const seen = await insertDedupedWithJobs(s!.store, db, "inbound_requests", [request(0)], [job("req_0", "out_a")], false, {
        keys: [{ input_id: "in_1", delivery_id: "held" }],
        expiresAt: NOW + 1000,
        now: NOW,
      });
      expect([...seen]).toEqual([0]);
      // A request that cannot be stored (its id is taken): its new key must not stay behind.
      await db.insertInto("inbound_requests").values(request(5)).execute();
      await expect(
        insertDedupedWithJobs(s!.store, db, "inbound_requests", [request(5)], [job("req_5", "out_a")], false, {
          keys: [{ input_id: "in_1", delivery_id: "retry-me" }],
          expiresAt: NOW + 1000,
          now: NOW,
        }),
      ).rejects.toThrow();
      expect(await stored(db)).toEqual({
        requests: ["req_5: sealed '5' $1 -- not SQL"],
        jobs: [],
        keys: [`held until ${NOW + 1}`, `old until ${NOW}`],
      });
    });
  });
}
