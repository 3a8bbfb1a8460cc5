import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { SQLITE_FILE } from "../../src/store/sqlite/connect.js";
import { runCli } from "../helpers/cli.js";
import { TEST_PG_URL } from "../helpers/dialects.js";

describe("hookwarden vacuum", () => {
  const dir = mkdtempSync(join(tmpdir(), "hookwarden-vacuum-"));
  const file = join(dir, SQLITE_FILE);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A database as versions before retention created it: auto_vacuum NONE, with free pages. */
  function legacyDatabase(): number {
    const db = new BetterSqlite3(file);
    db.pragma("journal_mode = WAL");
    db.exec("create table messages (id integer primary key, payload text)");
    const insert = db.prepare("insert into messages (payload) values (?)");
    db.transaction(() => {
      for (let i = 0; i < 2000; i++) insert.run("p".repeat(4000));
    })();
    db.exec("delete from messages where id > 100");
    db.pragma("wal_checkpoint(TRUNCATE)");
    expect(db.pragma("auto_vacuum", { simple: true })).toBe(0);
    expect(db.pragma("freelist_count", { simple: true }) as number).toBeGreaterThan(1000);
    db.close();
    return statSync(file).size;
  }

  it("rebuilds a legacy SQLite file once with incremental auto-vacuum, shrinking it, and keeps the rows", async () => {
    const before = legacyDatabase();
    const r = await runCli(["vacuum", "--data-dir", dir], {}, 120_000);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("Rebuilt the database with incremental auto-vacuum");
    const db = new BetterSqlite3(file, { readonly: true });
    try {
      expect(db.pragma("auto_vacuum", { simple: true })).toBe(2);
      expect(db.pragma("freelist_count", { simple: true })).toBe(0);
      expect(db.prepare("select count(*) as n from messages").get()).toEqual({ n: 100 });
    } finally {
      db.close();
    }
    expect(statSync(file).size).toBeLessThan(before / 4);

    const again = await runCli(["vacuum", "--data-dir", dir], {}, 120_000);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain("already on");
  }, 300_000);

  it("refuses while a server holds the data directory, and says PostgreSQL needs nothing", async () => {
    // A live process's pid in the lock file: this test runner's own.
    writeFileSync(join(dir, "hookwarden.pid"), String(process.pid));
    try {
      const r = await runCli(["vacuum", "--data-dir", dir], {}, 120_000);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/Another hookwarden \(pid \d+\) is serving/);
    } finally {
      rmSync(join(dir, "hookwarden.pid"), { force: true });
    }
    const pg = await runCli(["vacuum", "--database-url", TEST_PG_URL], {}, 120_000);
    expect(pg.code, pg.stderr).toBe(0);
    expect(pg.stdout).toContain("PostgreSQL: nothing to do");
  }, 300_000);
});
