import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIALECTS } from "../helpers/dialects.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/** Every byte the database holds for this server, as text (SQLite files, or every PostgreSQL row). */
async function databaseText(t: TestServer): Promise<string> {
  if (t.dialect === "sqlite") {
    return readdirSync(t.dataDir)
      .filter((f) => f.startsWith("hookwarden.db"))
      .map((f) => readFileSync(join(t.dataDir, f)).toString("latin1"))
      .join("\n");
  }
  const tables = await sql<{ table_name: string }>`select table_name from information_schema.tables where table_schema = ${t.schema!}`.execute(t.hw.ctx.store.db);
  const out: string[] = [];
  for (const { table_name } of tables.rows) {
    const rows = await sql<{ j: string }>`select row_to_json(x)::text as j from ${sql.table(`${t.schema}.${table_name}`)} x`.execute(t.hw.ctx.store.db);
    out.push(...rows.rows.map((r) => r.j));
  }
  return out.join("\n");
}

for (const dialect of DIALECTS) {
  describe(`a secret is shown once and never again (${dialect})`, () => {
    let t: TestServer;
    let receiver: Receiver;

    beforeAll(async () => {
      t = await startTestServer(dialect, { logLevel: "debug" });
      receiver = await new Receiver().start();
    });
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    it("keeps signing secrets and sensitive headers out of responses, logs, metrics and the database", async () => {
      const CANARY = "Bearer canary-7f3a9c1e5b2d4068";
      const app = (await t.api("POST", "/api/v1/app", { name: "leaks" })).body;
      const created = await t.api("POST", `/api/v1/app/${app.id}/endpoint`, { url: `${receiver.url}/hook`, headers: { Authorization: CANARY } });
      expect(created.status).toBe(201);
      const secret: string = created.body.secret;
      expect(secret).toMatch(/^whsec_/);
      const rotated = await t.api("POST", `/api/v1/app/${app.id}/endpoint/${created.body.id}/secret/rotate`, {});
      const secret2: string = rotated.body.key;
      expect(secret2).toMatch(/^whsec_/);

      await t.api("POST", `/api/v1/app/${app.id}/msg`, { eventType: "leak.test", payload: { hello: "world" } });
      await receiver.waitFor(1);
      await t.hw.worker.runUntilIdle();
      expect(receiver.received[0]!.headers.authorization).toBe(CANARY);

      const needles = [secret, secret.slice(6), secret2, secret2.slice(6), CANARY, "canary-7f3a9c1e5b2d4068", t.token];
      const seen: string[] = [];
      for (const path of [
        `/api/v1/app/${app.id}/endpoint`,
        `/api/v1/app/${app.id}/endpoint/${created.body.id}`,
        `/api/v1/app/${app.id}/endpoint/${created.body.id}/headers`,
        `/api/v1/app/${app.id}/endpoint/${created.body.id}/secret`,
        `/api/v1/app/${app.id}/attempt/endpoint/${created.body.id}`,
        `/api/v1/app/${app.id}/msg`,
      ]) {
        seen.push((await t.api("GET", path)).text);
      }
      seen.push(await (await fetch(`${t.url}/metrics`)).text());
      const logs = t.logs();
      expect(logs.length).toBeGreaterThan(0);
      const db = await databaseText(t);
      expect(db).toContain(created.body.id);
      for (const needle of needles) {
        for (const text of seen) expect(text.includes(needle), `API/metrics leaked ${needle.slice(0, 10)}…`).toBe(false);
        expect(logs.includes(needle), `logs leaked ${needle.slice(0, 10)}…`).toBe(false);
        expect(db.includes(needle), `database holds ${needle.slice(0, 10)}… in plaintext`).toBe(false);
      }
    });
  });
}
