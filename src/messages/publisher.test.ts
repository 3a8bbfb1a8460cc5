import { sql } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DIALECTS } from "../../test/helpers/dialects.js";
import { insertEndpoint } from "../../test/helpers/sealed-rows.js";
import { insertApp, openTestStore, type TestStore } from "../../test/helpers/store.js";
import type { ApplicationRow } from "../applications/index.js";
import type { FakeClock } from "../clock/index.js";
import { Publisher } from "./publisher.js";

/** Routing reads an application's endpoints once per 2 s per node; a change through this node applies to the next publish. */
for (const dialect of DIALECTS) {
  describe(`the publisher routes with the endpoints kept two seconds (${dialect})`, () => {
    let s: TestStore;
    let app: ApplicationRow;
    let endpointId: string;
    beforeEach(async () => {
      s = await openTestStore(dialect);
      app = await insertApp(s.store.db);
      endpointId = await insertEndpoint(s.store.db, s.ctx.keyring, app, null);
    });
    afterEach(async () => {
      await s.drop();
    });
    /** How many jobs one publish queued. */
    const routed = async (publisher: Publisher) => {
      const { row } = await publisher.publish(app, { eventType: "user.created", payload: {} });
      return (await s.store.db.selectFrom("jobs").select("id").where("item_id", "=", row.id).execute()).length;
    };
    /** Disables the endpoint the way another node would: this process's caches cannot see it. */
    const disableElsewhere = () => sql`update endpoints set disabled = 1 where id = ${endpointId}`.execute(s.store.db);

    it("routes by another node's change after two seconds, by this node's at once", async () => {
      const publisher = new Publisher(s.ctx);
      expect(await routed(publisher)).toBe(1);
      await disableElsewhere();
      expect(await routed(publisher)).toBe(1);
      (s.ctx.clock as FakeClock).advance(2_001);
      expect(await routed(publisher)).toBe(0);
      await s.store.db.updateTable("endpoints").set({ disabled: 0 }).where("id", "=", endpointId).execute();
      expect(await routed(publisher)).toBe(1);
      const second = await insertEndpoint(s.store.db, s.ctx.keyring, app, null);
      expect(second).not.toBe(endpointId);
      expect(await routed(publisher)).toBe(2);
    });

    it("with --delivery-cache false, reads them for every batch", async () => {
      const publisher = new Publisher({ ...s.ctx, config: { ...s.ctx.config, deliveryCache: false } });
      expect(await routed(publisher)).toBe(1);
      await disableElsewhere();
      expect(await routed(publisher)).toBe(0);
    });
  });
}
