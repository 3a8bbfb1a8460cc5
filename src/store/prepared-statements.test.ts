import { sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { DIALECTS } from "../../test/helpers/dialects.js";
import { insertApp, openTestStore, type TestStore } from "../../test/helpers/store.js";
import type { ApplicationRow } from "../applications/index.js";
import { newId } from "../ids/index.js";
import type { JobRow } from "../queue/types.js";
import { insertWithJobs } from "./batch-write.js";
import type { Db } from "./index.js";

/**
 * The publish batch's one statement (messages, their jobs, the NOTIFY), as `insertWithJobs` writes
 * it; on PostgreSQL a named prepared statement unless `--prepared-statements false`.
 */
for (const dialect of DIALECTS) {
  describe(`insertWithJobs and prepared statements (${dialect})`, () => {
    let s: TestStore | undefined;
    afterEach(async () => {
      await s?.drop();
      s = undefined;
    });
    const message = (app: ApplicationRow, payload: string) => ({
      id: newId("msg"),
      org_id: app.org_id,
      app_id: app.id,
      event_id: null,
      event_type: "user.created",
      payload,
      channels: null,
      tags: null,
      created_at: 1,
      deliver_at: null,
      trace_context: null,
      expires_at: null,
    });
    const jobOf = (m: { id: string; org_id: string; app_id: string }): JobRow => ({
      id: newId("job"),
      org_id: m.org_id,
      scope_id: m.app_id,
      item_id: m.id,
      destination_id: "ep_1",
      attempt: 0,
      trigger_type: 0,
      run_at: 5,
      locked_by: null,
      created_at: 1,
      kind: "outbound",
    });
    /** Two batches of the same shape on one connection; returns that connection's prepared statements. */
    const twoBatches = async (db: Db, app: ApplicationRow, payloads: [string, string]) => {
      for (const p of payloads) {
        const m = message(app, p);
        await insertWithJobs(s!.store, db, "messages", [m], [jobOf(m)], true);
      }
      if (dialect !== "postgres") return [];
      const { rows } = await sql<{ name: string; statement: string }>`select name, statement from pg_prepared_statements`.execute(db);
      return rows;
    };

    it("writes the messages and their jobs, byte for byte, and on PostgreSQL prepares the statement once per connection", async () => {
      s = await openTestStore(dialect);
      const app = await insertApp(s.store.db);
      // A payload a hostile publisher might send: quotes, a would-be placeholder, a SQL comment.
      const payloads: [string, string] = [`{"a":"it's $1 -- not SQL"}`, `{"b":"\\u0000 and ' ) ;"}`];
      const prepared = await s.store.db.connection().execute((db) => twoBatches(db, app, payloads));
      const stored = await s.store.db.selectFrom("messages").select("payload").orderBy("id").execute();
      expect(stored.map((m) => m.payload)).toEqual(payloads);
      expect(await s.store.db.selectFrom("jobs").select("kind").execute()).toEqual([{ kind: "outbound" }, { kind: "outbound" }]);
      if (dialect === "postgres") {
        const mine = prepared.filter((p) => p.name.startsWith("hookwarden_") && p.statement.includes(`insert into "messages"`));
        expect(mine).toHaveLength(1);
      }
    });

    if (dialect === "postgres") {
      it("with --prepared-statements false, prepares nothing", async () => {
        s = await openTestStore(dialect, { preparedStatements: false });
        const app = await insertApp(s.store.db);
        const prepared = await s.store.db.connection().execute((db) => twoBatches(db, app, ["{}", "{}"]));
        expect(prepared).toEqual([]);
        expect(await s.store.db.selectFrom("messages").select("id").execute()).toHaveLength(2);
      });

      it("keeps writing when a migration adds a column after the statement was prepared", async () => {
        s = await openTestStore(dialect);
        const app = await insertApp(s.store.db);
        await s.store.db.connection().execute(async (db) => {
          await twoBatches(db, app, ["{}", "{}"]);
          await sql`alter table messages add column later text default 'x'`.execute(db);
          await twoBatches(db, app, ["{}", "{}"]);
        });
        expect(await s.store.db.selectFrom("messages").select("id").execute()).toHaveLength(4);
      });
    }
  });
}
