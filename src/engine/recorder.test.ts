import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { DIALECTS } from "../../test/helpers/dialects.js";
import { openTestStore, type TestStore } from "../../test/helpers/store.js";
import type { JobRow } from "../queue/types.js";
import { RECORDER_MAX_BATCH, Recorder } from "./recorder.js";

const job = (i: number): JobRow => ({
  id: `job_test_${i}`,
  org_id: "org_x",
  scope_id: "app_x",
  item_id: `msg_${i}`,
  destination_id: "ep_x",
  attempt: 0,
  trigger_type: 0,
  run_at: 0,
  locked_by: "wrk_test",
  created_at: 0,
  kind: "outbound",
});

for (const dialect of DIALECTS) {
  describe(`Recorder backpressure (${dialect})`, () => {
    let s: TestStore;
    beforeAll(async () => {
      s = await openTestStore(dialect);
    });
    afterAll(async () => {
      await s?.drop();
    });

    it("is saturated while a full batch of results is uncommitted, and says so when it no longer is", async () => {
      let woken = 0;
      const recorder = new Recorder(s.ctx, "wrk_test", () => woken++);
      for (let i = 0; i < RECORDER_MAX_BATCH - 1; i++) recorder.add({ kind: "drop", job: job(i) });
      expect(recorder.saturated).toBe(false);
      recorder.add({ kind: "drop", job: job(RECORDER_MAX_BATCH) });
      recorder.add({ kind: "drop", job: job(RECORDER_MAX_BATCH + 1) });
      // The worker starts no new attempt now: a crash could repeat no more than these.
      expect(recorder.saturated).toBe(true);
      await recorder.flush();
      expect(recorder.saturated).toBe(false);
      expect(woken).toBe(1);
    });

    it("writes results without anyone flushing: a lone one, then a burst that arrives within the pacing interval", async () => {
      const recorder = new Recorder(s.ctx, "wrk_test");
      const rows = Array.from({ length: 21 }, (_, i) => job(10_000 + i));
      await s.store.db.insertInto("jobs").values(rows).execute();
      const leased = async () =>
        (await s.store.db.selectFrom("jobs").select("id").where("locked_by", "=", "wrk_test").where("id", "in", rows.map((r) => r.id)).execute()).length;
      recorder.add({ kind: "defer", job: rows[0]!, runAt: 1 });
      await vi.waitFor(async () => expect(await leased()).toBe(20), { timeout: 2_000, interval: 5 });
      for (const r of rows.slice(1)) recorder.add({ kind: "defer", job: r, runAt: 1 });
      await vi.waitFor(async () => expect(await leased()).toBe(0), { timeout: 2_000, interval: 5 });
    });
  });
}
