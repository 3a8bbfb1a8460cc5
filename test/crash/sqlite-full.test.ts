import { rmSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/logger/index.js";
import { describeStorageCause } from "../../src/store/errors.js";
import { migrate, type Store } from "../../src/store/index.js";
import { openSqlite } from "../../src/store/sqlite/connect.js";
import { mountTmpfs, type Tmpfs } from "../helpers/tmpfs.js";

/**
 * A full disk under SQLite (its own tmpfs): every failed write reports SQLITE_FULL, never the
 * failing rollback that follows it, and the cause is logged once per streak, not per write.
 */
describe("SQLite on a full disk", () => {
  let fs: Tmpfs;
  let store: Store | undefined;
  const lines: string[] = [];
  beforeAll(() => {
    fs = mountTmpfs(8);
  });
  afterAll(async () => {
    await store?.close().catch(() => {});
    fs.unmount();
  });

  it("keeps SQLITE_FULL as the error of a failed transaction, logs it once, and logs the recovery once", async () => {
    const sink = new PassThrough();
    sink.on("data", (c: Buffer) => lines.push(c.toString("utf8")));
    store = openSqlite({ dataDir: join(fs.dir, "data"), logger: createLogger({ level: "info", destination: sink }) });
    await migrate(store.db, undefined);
    const s = store;
    let n = 0;
    const row = () => ({ id: `org_${n++}`, name: `${n}`.padEnd(200_000, "x"), created_at: 1 });
    await s.db.insertInto("orgs").values(row()).execute();
    const filler = fs.fill();
    // A write that still fits in space SQLite already holds (a WAL the checkpoint thread has just
    // reset) succeeds; the first one that needs new space fails, and so does every one after it.
    let fitted = 0;
    for (; fitted < 20; fitted++) {
      const err = await s.db.insertInto("orgs").values(row()).execute().then(() => undefined, (e: unknown) => e);
      if (err !== undefined) {
        expect(err).toMatchObject({ code: "E_STORAGE_FULL", status: 507 });
        break;
      }
    }
    expect(fitted).toBeLessThan(20);

    const failures: unknown[] = [];
    for (let i = 0; i < 4; i++) {
      failures.push(await s.db.transaction().execute((trx) => trx.insertInto("orgs").values(row()).execute()).catch((e: unknown) => e));
      failures.push(await s.relaxed((trx) => trx.insertInto("orgs").values(row()).execute()).catch((e: unknown) => e));
      failures.push(await s.db.insertInto("orgs").values(row()).execute().catch((e: unknown) => e));
    }
    for (const err of failures) {
      expect(err).toMatchObject({ code: "E_STORAGE_FULL", status: 507 });
      expect(describeStorageCause(err)).toMatch(/^SQLITE_FULL /);
      expect(String((err as Error).message)).not.toMatch(/rollback|no transaction/);
    }
    expect(s.health.failing?.code).toBe("E_STORAGE_FULL");
    // Reads still work while the disk is full.
    expect((await s.db.selectFrom("orgs").select("id").execute()).length).toBe(1 + fitted);
    const log = () => lines.join("");
    expect(log().match(/storage full: SQLITE_FULL/g)?.length).toBe(1);
    expect(log()).not.toMatch(/cannot rollback/);

    rmSync(filler);
    await s.db.transaction().execute((trx) => trx.insertInto("orgs").values(row()).execute());
    await s.relaxed((trx) => trx.insertInto("orgs").values(row()).execute());
    expect(s.health.failing).toBeUndefined();
    expect(log().match(/storage full: recovered/g)?.length).toBe(1);
    expect((await s.db.selectFrom("orgs").select("id").execute()).length).toBe(3 + fitted);
  });
});
