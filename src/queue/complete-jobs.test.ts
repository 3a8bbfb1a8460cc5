import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DIALECTS } from "../../test/helpers/dialects.js";
import { insertApp, openTestStore, type TestStore } from "../../test/helpers/store.js";
import type { ApplicationRow } from "../applications/index.js";
import { newId } from "../ids/index.js";
import { onlyFinished, recordFinished, type AttemptInsert, type JobOutcome } from "./complete-jobs.js";
import type { JobRow } from "./types.js";

/** The recorder's usual batch: attempts in, finished jobs out, one statement on PostgreSQL. */
for (const dialect of DIALECTS) {
  describe(`recordFinished (${dialect})`, () => {
    let s: TestStore;
    let app: ApplicationRow;
    beforeEach(async () => {
      s = await openTestStore(dialect);
      app = await insertApp(s.store.db);
    });
    afterEach(async () => {
      await s.drop();
    });
    const job = (lockedBy: string | null): JobRow => ({
      id: newId("job"),
      org_id: app.org_id,
      scope_id: app.id,
      item_id: newId("msg"),
      destination_id: "ep_1",
      attempt: 0,
      trigger_type: 0,
      run_at: 5,
      locked_by: lockedBy,
      created_at: 1,
      kind: "outbound",
    });
    const attempt = (j: JobRow, extra: Partial<AttemptInsert> = {}): AttemptInsert => ({
      id: newId("atmpt"),
      org_id: j.org_id,
      scope_id: j.scope_id,
      item_id: j.item_id,
      destination_id: j.destination_id,
      kind: j.kind,
      url: "https://example.com/",
      status: 0,
      response_status_code: 200,
      response: "ok",
      duration_ms: 3,
      trigger_type: 0,
      error_code: null,
      tls_verify: 1,
      created_at: 10,
      request: null,
      ...extra,
    });

    it("inserts the attempts and deletes only the jobs still leased to this worker", async () => {
      const mine = [job("wrk_me"), job("wrk_me"), job("wrk_me")];
      const lost = job("wrk_other");
      await s.store.db.insertInto("jobs").values([...mine, lost]).execute();
      const outcomes: JobOutcome[] = [
        { kind: "done", job: mine[0]!, attempt: attempt(mine[0]!) },
        { kind: "done", job: mine[1]!, attempt: attempt(mine[1]!, { error_code: "E_HTTP_STATUS", status: 2, response_status_code: 500 }) },
        { kind: "drop", job: mine[2]! },
        // Its lease went to another worker: its attempt is kept, its job is not touched.
        { kind: "done", job: lost, attempt: attempt(lost) },
      ];
      expect(onlyFinished(outcomes)).toBe(true);
      await s.store.leaseWrite((db) => recordFinished(db, "wrk_me", outcomes));
      expect((await s.store.db.selectFrom("jobs").select("id").execute()).map((r) => r.id)).toEqual([lost.id]);
      const attempts = await s.store.db.selectFrom("attempts").select(["item_id", "response_status_code"]).orderBy("item_id").execute();
      expect(attempts).toEqual([mine[0]!, mine[1]!, lost].map((j) => ({ item_id: j.item_id, response_status_code: j === mine[1] ? 500 : 200 })).sort((a, b) => a.item_id.localeCompare(b.item_id)));
    });

    it("writes rows of different shapes and drop-only batches too", async () => {
      const jobs = [job("wrk_me"), job("wrk_me")];
      await s.store.db.insertInto("jobs").values(jobs).execute();
      // A row with one column fewer than the first: not one statement's shape.
      const { request: _, ...short } = attempt(jobs[0]!);
      await s.store.leaseWrite((db) => recordFinished(db, "wrk_me", [{ kind: "done", job: jobs[0]!, attempt: attempt(jobs[0]!) }, { kind: "done", job: jobs[1]!, attempt: short as AttemptInsert }]));
      expect(await s.store.db.selectFrom("jobs").select("id").execute()).toEqual([]);
      expect(await s.store.db.selectFrom("attempts").select("id").execute()).toHaveLength(2);
      const drop = job("wrk_me");
      await s.store.db.insertInto("jobs").values(drop).execute();
      await s.store.leaseWrite((db) => recordFinished(db, "wrk_me", [{ kind: "drop", job: drop }]));
      expect(await s.store.db.selectFrom("jobs").select("id").execute()).toEqual([]);
    });

    it("leaves retries and deferrals to completeJobs", () => {
      const j = job("wrk_me");
      expect(onlyFinished([{ kind: "retry", job: j, attempt: attempt(j), runAt: 9 }])).toBe(false);
      expect(onlyFinished([{ kind: "defer", job: j, runAt: 9 }])).toBe(false);
    });
  });
}
