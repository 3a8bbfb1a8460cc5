import { afterEach, describe, expect, it } from "vitest";
import { DIALECTS } from "../../test/helpers/dialects.js";
import { openTestStore, type TestStore } from "../../test/helpers/store.js";
import { parkJobs, unparkJobs } from "./park-jobs.js";

/** An open circuit's backlog is parked behind one probe and released by a good one, touching only that destination's jobs. */
for (const dialect of DIALECTS) {
  describe(`parking an open circuit's backlog (${dialect})`, () => {
    let t: TestStore;
    afterEach(async () => {
      await t?.drop();
    });
    const now = 1_700_000_000_000;
    const job = (i: number, destinationId: string, runAt: number, lockedBy: string | null = null) => ({
      id: `job_${String(i).padStart(4, "0")}`,
      org_id: "org_a",
      scope_id: "app_a",
      item_id: `msg_${i}`,
      destination_id: destinationId,
      attempt: 0,
      trigger_type: 0,
      run_at: runAt,
      locked_by: lockedBy,
      created_at: now - 1_000 + i,
      kind: "outbound",
    });

    it("moves the failing destination's queued jobs past the cooldown but its oldest, and a good probe makes them due; nothing else moves", async () => {
      t = await openTestStore(dialect);
      const rows = [
        ...Array.from({ length: 5 }, (_, i) => job(i, "ep_failing", now - 500 + i)),
        job(5, "ep_failing", now + 30_000, "wrk_a"),
        ...Array.from({ length: 3 }, (_, i) => job(10 + i, "ep_healthy", now - 500 + i)),
      ];
      await t.store.db.insertInto("jobs").values(rows).execute();
      const probeAt = now + 30_000;
      const parkUntil = probeAt + 30_000;
      await parkJobs(t.store.db, "ep_failing", probeAt, parkUntil);
      const runAt = async () => new Map((await t.store.db.selectFrom("jobs").select(["id", "run_at"]).execute()).map((r) => [r.id, Number(r.run_at)]));
      let after = await runAt();
      expect(after.get("job_0000")).toBe(probeAt);
      for (const id of ["job_0001", "job_0002", "job_0003", "job_0004"]) expect(after.get(id)).toBe(parkUntil);
      // A leased job (in flight) and another destination's stay as they were.
      expect(after.get("job_0005")).toBe(now + 30_000);
      for (let i = 0; i < 3; i++) expect(after.get(`job_${String(10 + i).padStart(4, "0")}`)).toBe(now - 500 + i);

      expect(await unparkJobs(t.store.db, "ep_failing", now + 31_000, parkUntil)).toBe(4);
      after = await runAt();
      for (const id of ["job_0001", "job_0002", "job_0003", "job_0004"]) expect(after.get(id)).toBe(now + 31_000);
      expect(after.get("job_0000")).toBe(probeAt);
    });
  });
}
