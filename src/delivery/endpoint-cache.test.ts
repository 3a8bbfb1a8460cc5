import { sql } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DIALECTS } from "../../test/helpers/dialects.js";
import { insertEndpoint, insertSigningSecrets } from "../../test/helpers/sealed-rows.js";
import { insertApp, openTestStore, type TestStore } from "../../test/helpers/store.js";
import type { ApplicationRow } from "../applications/index.js";
import type { FakeClock } from "../clock/index.js";
import { EndpointCache, uncachedEndpoints, type EndpointSource } from "./endpoint-cache.js";
import { setTransformation } from "./endpoint-transform.js";

for (const dialect of DIALECTS) {
  describe(`endpoints ready to deliver to, kept two seconds (${dialect})`, () => {
    let s: TestStore;
    let app: ApplicationRow;
    let id: string;
    const none = Promise.resolve(undefined);
    const read = async (source: EndpointSource) => (await source.of([id], s.ctx.clock.now(), none)).endpoints.get(id);
    /** A change this process's caches cannot see, as another node's would be. */
    const elsewhere = (url: string) => sql`update endpoints set url = ${url} where id = ${id}`.execute(s.store.db);
    beforeEach(async () => {
      s = await openTestStore(dialect);
      app = await insertApp(s.store.db);
      id = await insertEndpoint(s.store.db, s.ctx.keyring, app, null);
      await insertSigningSecrets(s.store.db, s.ctx.keyring, id, 1);
    });
    afterEach(async () => {
      await s.drop();
    });

    it("serves another node's change after two seconds, and with the cache off at once", async () => {
      const cache = new EndpointCache(s.ctx, true);
      const first = await read(cache);
      expect(first?.endpoint.url).toBe("https://receiver.example.com/hook");
      expect(first?.context.signingKeys).toHaveLength(1);
      expect(first?.context.transformation).toBeNull();
      await elsewhere("https://elsewhere.example.com/hook");
      expect((await read(cache))?.endpoint.url).toBe("https://receiver.example.com/hook");
      expect((await read(uncachedEndpoints(s.ctx, true)))?.endpoint.url).toBe("https://elsewhere.example.com/hook");
      (s.ctx.clock as FakeClock).advance(2_001);
      expect((await read(cache))?.endpoint.url).toBe("https://elsewhere.example.com/hook");
    });

    it("serves a change made through this node at once: the endpoint, its secrets, its transformation, its deletion", async () => {
      const cache = new EndpointCache(s.ctx, true);
      await read(cache);
      await s.store.db.updateTable("endpoints").set({ disabled: 1, url: "https://new.example.com/hook" }).where("id", "=", id).execute();
      const changed = await read(cache);
      expect(changed?.endpoint).toMatchObject({ disabled: 1, url: "https://new.example.com/hook" });
      await insertSigningSecrets(s.store.db, s.ctx.keyring, id, 1);
      expect((await read(cache))?.context.signingKeys).toHaveLength(2);
      await setTransformation(s.ctx, { id, app_id: app.id }, { function: "shape", enabled: true });
      expect((await read(cache))?.context.transformation).toEqual({ function: "shape", enabled: true });
      // A failure recorded for it (the recorder writes the health columns) is seen by the next batch.
      await s.store.db.updateTable("endpoints").set({ consecutive_failures: 3 }).where("id", "=", id).execute();
      expect((await read(cache))?.endpoint.consecutive_failures).toBe(3);
      await s.store.db.deleteFrom("endpoint_transformations").execute();
      await s.store.db.deleteFrom("endpoint_secrets").execute();
      await s.store.db.deleteFrom("endpoints").where("id", "=", id).execute();
      expect(await read(cache)).toBeUndefined();
    });

    it("does not keep what it read while a write through this node ran", async () => {
      const cache = new EndpointCache(s.ctx, true);
      const write = s.store.db.updateTable("endpoints").set({ description: "meanwhile" }).where("id", "=", id).execute();
      const { endpoints } = await cache.of([id], s.ctx.clock.now(), write);
      expect(endpoints.get(id)).toBeDefined();
      await elsewhere("https://elsewhere.example.com/hook");
      expect((await read(cache))?.endpoint.url).toBe("https://elsewhere.example.com/hook");
    });

    it("leaves out an endpoint that does not exist and returns what was read with it", async () => {
      const cache = new EndpointCache(s.ctx, true);
      expect((await cache.of(["ep_missing"], s.ctx.clock.now(), Promise.resolve(7))).also).toBe(7);
      expect((await cache.of(["ep_missing", id], s.ctx.clock.now(), none)).endpoints.size).toBe(1);
    });
  });
}
