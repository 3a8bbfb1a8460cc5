import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIALECTS } from "../helpers/dialects.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

for (const dialect of DIALECTS) {
  describe(`graceful shutdown finishes or releases in-flight work (${dialect})`, () => {
    let t: TestServer;
    let receiver: Receiver;

    beforeAll(async () => {
      t = await startTestServer(dialect, { shutdownGrace: 300 });
      receiver = await new Receiver().start();
    });
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    it("delivers everything exactly once across a restart", async () => {
      const slow = new Set<string>();
      receiver.respond = (r) => {
        const id = String(r.headers["webhook-id"]);
        // The first sighting of even messages hangs past the shutdown grace.
        if (!slow.has(id) && Number(JSON.parse(r.body).i) % 2 === 0) {
          slow.add(id);
          return { delayMs: 1_500 };
        }
        return undefined;
      };
      const app = await t.svix.application.create({ name: "shutdown" });
      await t.svix.endpoint.create(app.id, { url: `${receiver.url}/hook` });
      const ids: string[] = [];
      for (let i = 0; i < 10; i++) ids.push((await t.svix.message.create(app.id, { eventType: "s.d", payload: { i } })).id);
      await receiver.waitFor(10);

      await t.restart();
      // The hung attempts were cancelled at the grace period and their leases given back at once.
      const released = /"released":(\d+),[^\n]*"msg":"released unfinished deliveries"/.exec(t.logs());
      expect(Number(released?.[1])).toBeGreaterThanOrEqual(5);
      await receiver.waitFor(15);
      await t.hw.worker.runUntilIdle();

      const successes = await t.hw.ctx.store.db.selectFrom("attempts").select(["item_id"]).where("status", "=", 0).execute();
      expect(new Set(successes.map((s) => s.item_id))).toEqual(new Set(ids));
      expect(successes).toHaveLength(10);
      expect(await t.hw.ctx.store.db.selectFrom("jobs").selectAll().execute()).toEqual([]);
    });
  });
}
