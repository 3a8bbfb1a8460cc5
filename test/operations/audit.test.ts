import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditList, auditVerify } from "../../src/cli/audit.js";
import { loadConfig } from "../../src/config/index.js";
import { DIALECTS } from "../helpers/dialects.js";
import { startTestServer, testConfigInput, type TestServer } from "../helpers/server.js";

function capture(): { write(s: string): boolean; text: string } {
  return {
    text: "",
    write(s: string) {
      this.text += s;
      return true;
    },
  };
}

for (const dialect of DIALECTS) {
  describe(`audit log (${dialect})`, () => {
    let t: TestServer;
    beforeAll(async () => {
      t = await startTestServer(dialect);
    });
    afterAll(async () => {
      await t?.stop();
    });

    it("records every change (who, what, when, from where), no reads, no bodies or secrets; listed by API and CLI", async () => {
      const app = (await t.api("POST", "/api/v1/app", { name: "audited", uid: "audited" })).body;
      const ep = (await t.api("POST", `/api/v1/app/${app.id}/endpoint`, { url: "https://example.com/hook", headers: { Authorization: "Bearer audit-canary-55" } })).body;
      await t.api("GET", `/api/v1/app/${app.id}`);
      expect((await t.api("POST", `/api/v1/app/${app.id}/msg`, { eventType: "a.b", payload: { x: 1 } })).status).toBe(202); // data plane: not audited
      const tok = (await t.api("POST", "/api/v1/auth/token", { name: "temp" })).body;
      expect((await t.api("DELETE", `/api/v1/auth/token/${tok.id}`)).status).toBe(204);
      expect((await t.api("POST", "/api/v1/app", { name: "" })).status).toBe(422); // refused: not a change
      await t.hw.audit.flush();

      const res = await t.api("GET", "/api/v1/audit");
      expect(res.status, res.text).toBe(200);
      const actions = res.body.data.map((e: any) => `${e.action} ${e.resourceId}`);
      expect(actions).toEqual([
        `DELETE /api/v1/auth/token/:token_id ${tok.id}`,
        `POST /api/v1/auth/token ${tok.id}`,
        `POST /api/v1/app/:app_id/endpoint ${ep.id}`,
        `POST /api/v1/app ${app.id}`,
      ]);
      const first = res.body.data[3];
      expect(first).toMatchObject({ tokenName: "admin", status: 201, clientIp: "127.0.0.1" });
      expect(first.tokenId).toMatch(/^tok_/);
      expect(Date.parse(first.at)).toBeGreaterThan(0);
      for (const needle of [t.token, tok.token, ep.secret, "audit-canary-55"]) expect(res.text).not.toContain(needle);

      const filtered = await t.api("GET", "/api/v1/audit?action=auth/token&limit=1");
      expect(filtered.body.data.map((e: any) => e.action)).toEqual(["DELETE /api/v1/auth/token/:token_id"]);
      expect((await t.api("GET", "/api/v1/audit?since=not-a-date")).status).toBe(422);
      // Another organisation sees none of it.
      const other = await t.newOrgToken(`audit-other-${dialect}`);
      const theirs = await fetch(`${t.url}/api/v1/audit`, { headers: { authorization: `Bearer ${other}` } });
      expect(((await theirs.json()) as { data: unknown[] }).data).toEqual([]);

      const config = loadConfig({ ...testConfigInput(dialect, t.dataDir, t.schema), logLevel: "silent" }, {});
      const listed = capture();
      await auditList(config, { org: "default" }, listed);
      expect(listed.text.trim().split("\n").map((l) => JSON.parse(l).action)).toEqual(res.body.data.map((e: any) => e.action));
      const ok = capture();
      await auditVerify(config, ok);
      expect(ok.text).toBe("audit log intact: 4 entries, hash chain verified\n");
    });

    it("audit verify finds an edited row and a deleted row", async () => {
      const config = loadConfig({ ...testConfigInput(dialect, t.dataDir, t.schema), logLevel: "silent" }, {});
      const db = t.hw.ctx.store.db;
      await db.updateTable("audit_log").set({ token_name: "someone else" }).where("seq", "=", 2).execute();
      await expect(auditVerify(config, capture())).rejects.toThrow(/entry 2 \(aud_\S+\) was edited/);
      await db.updateTable("audit_log").set({ token_name: "admin" }).where("seq", "=", 2).execute();
      await auditVerify(config, capture());

      await sql`delete from audit_log where seq = 3`.execute(db);
      await expect(auditVerify(config, capture())).rejects.toThrow(/entries 3\.\.3 are missing \(deleted\) before entry 4/);
    });
  });
}
