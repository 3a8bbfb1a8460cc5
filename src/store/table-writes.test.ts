import { sql } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DIALECTS } from "../../test/helpers/dialects.js";
import { insertEndpoint, insertSigningSecrets } from "../../test/helpers/sealed-rows.js";
import { insertApp, openTestStore, type TestStore } from "../../test/helpers/store.js";
import type { ApplicationRow } from "../applications/index.js";
import { createLogger } from "../logger/index.js";
import { openStore } from "./index.js";
import { readThrough } from "./table-writes.js";
import { TtlCache } from "../util/ttl-cache.js";

for (const dialect of DIALECTS) {
  describe(`Store.writes tells caches which tables changed (${dialect})`, () => {
    let s: TestStore;
    let app: ApplicationRow;
    let told: string[];
    beforeEach(async () => {
      s = await openTestStore(dialect);
      app = await insertApp(s.store.db);
      told = [];
      s.store.writes.watch(["endpoints"], () => told.push("endpoints"));
      s.store.writes.watch(["endpoint_secrets", "endpoints"], () => told.push("secrets-or-endpoints"));
    });
    afterEach(async () => {
      await s.drop();
    });

    it("tells the watchers of a table of each insert, update and delete that changed a row of it, and no one else", async () => {
      const id = await insertEndpoint(s.store.db, s.ctx.keyring, app, null);
      expect(told).toEqual(["endpoints", "secrets-or-endpoints"]);
      await insertSigningSecrets(s.store.db, s.ctx.keyring, id, 2);
      expect(told).toEqual(["endpoints", "secrets-or-endpoints", "secrets-or-endpoints"]);
      told = [];
      await s.store.db.updateTable("endpoints as e").set({ description: "x" }).where("e.id", "=", id).execute();
      expect(told).toEqual(["endpoints", "secrets-or-endpoints"]);
      told = [];
      // Matched nothing: nothing changed.
      await s.store.db.updateTable("endpoints").set({ description: "y" }).where("id", "=", "ep_none").execute();
      await s.store.db.updateTable("applications").set({ name: "other" }).where("id", "=", app.id).execute();
      await s.store.db.selectFrom("endpoints").selectAll().execute();
      expect(told).toEqual([]);
      await s.store.db.deleteFrom("endpoint_secrets").where("endpoint_id", "=", id).execute();
      expect(told).toEqual(["secrets-or-endpoints"]);
    });

    it("tells them again when the transaction that wrote ends, committed or rolled back", async () => {
      const id = await insertEndpoint(s.store.db, s.ctx.keyring, app, null);
      told = [];
      let inside: string[] = [];
      await s.store.db.transaction().execute(async (trx) => {
        await trx.updateTable("endpoints").set({ description: "a" }).where("id", "=", id).execute();
        inside = [...told];
      });
      expect(inside).toEqual(["endpoints", "secrets-or-endpoints"]);
      expect(told).toEqual(["endpoints", "secrets-or-endpoints", "endpoints", "secrets-or-endpoints"]);
      told = [];
      await expect(
        s.store.db.transaction().execute(async (trx) => {
          await trx.updateTable("endpoints").set({ description: "b" }).where("id", "=", id).execute();
          throw new Error("no");
        }),
      ).rejects.toThrow("no");
      expect(told.filter((t) => t === "endpoints")).toHaveLength(2);
    });

    it("stops telling a watcher that stopped, and does not parse raw SQL", async () => {
      const id = await insertEndpoint(s.store.db, s.ctx.keyring, app, null);
      const seen: number[] = [];
      const stop = s.store.writes.watch(["endpoints"], () => seen.push(1));
      await s.store.db.updateTable("endpoints").set({ description: "a" }).where("id", "=", id).execute();
      stop();
      await s.store.db.updateTable("endpoints").set({ description: "b" }).where("id", "=", id).execute();
      expect(seen).toEqual([1]);
      told = [];
      await sql`update endpoints set description = 'c' where id = ${id}`.execute(s.store.db);
      expect(told).toEqual([]);
    });

    it("hears the committed writes of another process on the same database (a CLI command, another node)", async () => {
      const id = await insertEndpoint(s.store.db, s.ctx.keyring, app, null);
      // PostgreSQL: announced by NOTIFY to the nodes listening; SQLite: seen by the next `check`.
      await s.store.listenJobs(() => {});
      const other = await openStore(s.config, createLogger({ level: "silent" }));
      try {
        told = [];
        s.store.writes.check();
        expect(told).toEqual([]);
        await other.db.updateTable("endpoints").set({ description: "from elsewhere" }).where("id", "=", id).execute();
        for (let i = 0; i < 200 && told.length === 0; i++) {
          s.store.writes.check();
          await new Promise((r) => setTimeout(r, 10));
        }
        expect(told).toContain("endpoints");
        // Once: nothing more was written.
        told = [];
        s.store.writes.check();
        await new Promise((r) => setTimeout(r, 50));
        expect(told).toEqual([]);
      } finally {
        await other.close();
      }
    });

    it("reads through a cache: kept until a write to its tables, not kept when one ran during the read", async () => {
      const id = await insertEndpoint(s.store.db, s.ctx.keyring, app, null);
      const cache = new TtlCache<string>(s.ctx.clock, 2_000, 100);
      let reads = 0;
      const load = async () => {
        reads++;
        return (await s.store.db.selectFrom("endpoints").select("description").where("id", "=", id).executeTakeFirstOrThrow()).description;
      };
      expect(await readThrough(s.store.writes, ["endpoints"], cache, id, load)).toBe("");
      expect(await readThrough(s.store.writes, ["endpoints"], cache, id, load)).toBe("");
      expect(reads).toBe(1);
      const during = async () => {
        const v = await load();
        await s.store.db.updateTable("endpoints").set({ description: "during" }).where("id", "=", id).execute();
        return v;
      };
      cache.delete();
      expect(await readThrough(s.store.writes, ["endpoints"], cache, id, during)).toBe("");
      expect(cache.get(id)).toBeUndefined();
      expect(await readThrough(s.store.writes, ["endpoints"], cache, id, load)).toBe("during");
    });
  });
}
