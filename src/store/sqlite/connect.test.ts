import { mkdtempSync, rmSync, statSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createLogger } from "../../logger/index.js";
import type { Store } from "../index.js";
import BetterSqlite3 from "better-sqlite3";
import { sql } from "kysely";
import { migrate } from "../index.js";
import { AUTO_VACUUM_INCREMENTAL, openSqlite, SQLITE_FILE } from "./connect.js";

describe("SQLite durable(): the WAL flushed off the event loop", () => {
  let dir: string;
  let store: Store;
  let datasync: ReturnType<typeof vi.spyOn>;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "hookwarden-durable-"));
    store = openSqlite({ dataDir: dir, logger: createLogger({ level: "silent" }) });
    // FileHandle is not exported: spy on the prototype of a real one.
    const probe = await open(join(dir, "probe"), "w");
    datasync = vi.spyOn(Object.getPrototypeOf(probe) as { datasync: () => Promise<void> }, "datasync");
    await probe.close();
  });
  afterEach(async () => {
    datasync.mockRestore();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const write = (n: number) =>
    store.relaxed(async (trx) => {
      await trx.schema.createTable(`t${n}`).ifNotExists().addColumn("x", "integer").execute();
    });

  it("resolves at once when nothing was ever written (no WAL yet)", async () => {
    await expect(store.durable()).resolves.toBeUndefined();
    expect(datasync).not.toHaveBeenCalled();
  });

  it("flushes the WAL after a relaxed commit, and many waiting callers share one flush", async () => {
    await write(1);
    await store.durable();
    expect(datasync).toHaveBeenCalledTimes(1);
    datasync.mockClear();
    // 50 callers at once: the first starts a flush, the other 49 share the one queued after it.
    await Promise.all(Array.from({ length: 50 }, () => store.durable()));
    expect(datasync.mock.calls.length).toBeGreaterThanOrEqual(1);
    expect(datasync.mock.calls.length).toBeLessThanOrEqual(2);
  });

  it("covers a commit made while a flush is already running with a flush that starts after it", async () => {
    await write(1);
    let release!: () => void;
    datasync.mockImplementationOnce(function (this: unknown) {
      return new Promise<void>((resolve) => (release = resolve));
    });
    const first = store.durable();
    await vi.waitFor(() => expect(datasync).toHaveBeenCalledTimes(1));
    await write(2); // committed while the first flush runs: that flush may not cover it
    let secondDone = false;
    const second = store.durable().then(() => (secondDone = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(secondDone).toBe(false);
    release();
    await first;
    await second;
    expect(datasync).toHaveBeenCalledTimes(2);
  });
});

describe("SQLite relaxed(): the calls of one loop turn share a transaction", () => {
  let dir: string;
  let store: Store;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "hookwarden-relaxed-"));
    store = openSqlite({ dataDir: dir, logger: createLogger({ level: "silent" }) });
    await store.db.schema.createTable("t").addColumn("x", "integer", (c) => c.primaryKey()).execute();
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const rows = async () => (await store.db.selectFrom("t" as never).select("x" as never).orderBy("x" as never).execute()).map((r) => (r as { x: number }).x);

  it("runs calls made together in one transaction where a failing call is rolled back alone, with its own error", async () => {
    const insert = (x: number) => store.relaxed(async (trx) => {
      await trx.insertInto("t" as never).values({ x } as never).execute();
      return x;
    });
    const first = insert(1);
    const failing = store.relaxed(async (trx) => {
      await trx.insertInto("t" as never).values({ x: 10 } as never).execute();
      throw new Error("refused by the caller");
    });
    const duplicate = store.relaxed(async (trx) => {
      await trx.insertInto("t" as never).values({ x: 20 } as never).execute();
      await trx.insertInto("t" as never).values({ x: 1 } as never).execute(); // taken by the first call
    });
    const results = await Promise.allSettled([first, failing, duplicate, insert(2)]);
    expect(results[0]).toEqual({ status: "fulfilled", value: 1 });
    expect(results[1]).toMatchObject({ status: "rejected", reason: { message: "refused by the caller" } });
    expect(results[2]).toMatchObject({ status: "rejected", reason: { code: "SQLITE_CONSTRAINT_PRIMARYKEY" } });
    expect(results[3]).toEqual({ status: "fulfilled", value: 2 });
    // Neither the failing call's first row (10) nor the duplicate call's (20) was kept.
    expect(await rows()).toEqual([1, 2]);
  });

  it("keeps savepoints' journals in memory: a failing call that wrote far past 64 KiB is rolled back alone", async () => {
    // temp_store = MEMORY: SQLite spilled these journals to temporary files it created and deleted every turn.
    expect((await sql<{ temp_store: number }>`pragma temp_store`.execute(store.db)).rows).toEqual([{ temp_store: 2 }]);
    await store.db.schema.createTable("big").addColumn("b", "blob").execute();
    const kept = store.relaxed(async (trx) => void (await trx.insertInto("big" as never).values({ b: Buffer.alloc(100_000, 1) } as never).execute()));
    const failing = store.relaxed(async (trx) => {
      for (let i = 0; i < 4; i++) await trx.insertInto("big" as never).values({ b: Buffer.alloc(100_000, 2) } as never).execute();
      throw new Error("refused by the caller");
    });
    const results = await Promise.allSettled([kept, failing]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected"]);
    const left = await sql<{ n: number; first: number }>`select count(*) as n, min(unicode(substr(b, 1, 1))) as first from big`.execute(store.db);
    expect(left.rows).toEqual([{ n: 1, first: 1 }]);
  });

  it("answers a lone call as before: its value, or its error with nothing written", async () => {
    await expect(store.relaxed(async (trx) => (await trx.insertInto("t" as never).values({ x: 5 } as never).execute(), "done"))).resolves.toBe("done");
    await expect(
      store.relaxed(async (trx) => {
        await trx.insertInto("t" as never).values({ x: 6 } as never).execute();
        throw new Error("no");
      }),
    ).rejects.toThrow("no");
    expect(await rows()).toEqual([5]);
  });
});

describe("SQLite checkpoints run in a worker thread", () => {
  it("copies committed pages into the database file without the committing connection doing it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hookwarden-ckpt-"));
    const store = openSqlite({ dataDir: dir, logger: createLogger({ level: "silent" }) });
    try {
      const file = join(dir, "hookwarden.db");
      const { sql } = await import("kysely");
      const auto = await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(store.db);
      expect(auto.rows[0]!.wal_autocheckpoint).toBe(0); // the gateway's own connection never checkpoints
      await store.db.schema.createTable("blob").addColumn("b", "blob").execute();
      await new Promise((r) => setTimeout(r, 300)); // past the thread's first checkpoint, at its start
      const before = statSync(file).size;
      for (let i = 0; i < 20; i++) {
        await store.relaxed(async (trx) => {
          for (let j = 0; j < 50; j++) await trx.insertInto("blob" as never).values({ b: Buffer.alloc(2_000, i) } as never).execute();
        });
      }
      // ~2 MB went to the WAL; the thread's next checkpoint (every 200 ms) moves it into the file.
      await vi.waitFor(() => expect(statSync(file).size).toBeGreaterThan(before + 1_500_000), { timeout: 5_000, interval: 50 });
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("SQLite start on an existing database", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "hookwarden-reopen-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  // A restart on a full disk must start: any write at open (a header rewrite included) may need new
  // WAL space and fail with SQLITE_FULL (test/crash/full-disk-restart.test.ts, which depends on how
  // much room the WAL has left, once failed so). `data_version`, read by another connection, changes
  // when anyone else commits to the file.
  it("writes nothing: opening and migrating a database that is up to date commits no transaction", async () => {
    const logger = createLogger({ level: "silent" });
    const first = openSqlite({ dataDir: dir, logger });
    await migrate(first.db, undefined);
    expect(await sql<{ auto_vacuum: number }>`pragma auto_vacuum`.execute(first.db).then((r) => r.rows[0]!.auto_vacuum)).toBe(AUTO_VACUUM_INCREMENTAL);
    const watcher = new BetterSqlite3(join(dir, SQLITE_FILE));
    try {
      const version = () => watcher.pragma("data_version", { simple: true });
      const before = version();
      await sql`insert into hookwarden_migration_lock (id, is_locked) values (${"probe"}, 0)`.execute(first.db);
      expect(version()).not.toBe(before); // the watcher does see another connection's commit
      await first.close();
      const seen = version();
      const again = openSqlite({ dataDir: dir, logger });
      try {
        await migrate(again.db, undefined);
        await again.ping();
        expect(version()).toBe(seen);
      } finally {
        await again.close();
      }
    } finally {
      watcher.close();
    }
  });
});
