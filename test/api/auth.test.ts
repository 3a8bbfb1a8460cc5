import { createHash } from "node:crypto";
import { Svix } from "svix";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIALECTS } from "../helpers/dialects.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

for (const dialect of DIALECTS) {
  describe(`admin auth and tenant isolation (${dialect})`, () => {
    let t: TestServer;

    beforeAll(async () => {
      t = await startTestServer(dialect);
    });
    afterAll(async () => t?.stop());

    it("refuses a missing or unknown token with 401", async () => {
      expect((await fetch(`${t.url}/api/v1/app`)).status).toBe(401);
      const r = await fetch(`${t.url}/api/v1/app`, { headers: { authorization: "Bearer hwk_unknown" } });
      expect(r.status).toBe(401);
      expect(await r.json()).toMatchObject({ code: "E_UNAUTHORIZED" });
      await expect(new Svix("hwk_unknown", { serverUrl: t.url }).application.list()).rejects.toMatchObject({ code: 401 });
    });

    it("stores tokens only as SHA-256 hashes", async () => {
      const rows = await t.hw.ctx.store.db.selectFrom("api_tokens").select("token_hash").execute();
      const hashes = rows.map((r) => r.token_hash);
      expect(hashes).toContain(createHash("sha256").update(t.token).digest("hex"));
      expect(hashes).not.toContain(t.token);
    });

    it("an organisation never sees another's applications, endpoints or messages", async () => {
      const mine = await t.svix.application.create({ name: "mine", uid: "shared-uid" });
      const ep = await t.svix.endpoint.create(mine.id, { url: "https://example.com/hook" });
      const msg = await t.svix.message.create(mine.id, { eventType: "a.b", payload: { secret: "x" } });

      const other = new Svix(await t.newOrgToken("other-org"), { serverUrl: t.url });
      expect((await other.application.list()).data).toEqual([]);
      await expect(other.application.get(mine.id)).rejects.toMatchObject({ code: 404 });
      await expect(other.endpoint.get(mine.id, ep.id)).rejects.toMatchObject({ code: 404 });
      await expect(other.message.get(mine.id, msg.id)).rejects.toMatchObject({ code: 404 });
      await expect(other.application.delete(mine.id)).rejects.toMatchObject({ code: 404 });
      await expect(other.message.create(mine.id, { eventType: "a.b", payload: {} })).rejects.toMatchObject({ code: 404 });

      // The same uid is free in another organisation, and refers to its own app there.
      const theirs = await other.application.create({ name: "theirs", uid: "shared-uid" });
      expect(theirs.id).not.toBe(mine.id);
      expect((await t.svix.application.get("shared-uid")).id).toBe(mine.id);
      expect((await other.application.get("shared-uid")).id).toBe(theirs.id);
    });
  });
}
