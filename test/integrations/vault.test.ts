import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/clock/index.js";
import { DIALECTS } from "../helpers/dialects.js";
import { attemptsOf, createApp, createEndpoint, pendingJobs, publish } from "../helpers/delivery.js";
import { canary, putSecret } from "../helpers/integrations.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

for (const dialect of DIALECTS) {
  describe(`the per-application vault API (${dialect})`, () => {
    let t: TestServer;
    let clock: FakeClock;
    let receiver: Receiver;
    let appId: string;
    /** Every response text, searched for secret values at the end. */
    const texts: string[] = [];
    const api: TestServer["api"] = async (...args) => {
      const res = await t.api(...args);
      texts.push(res.text);
      return res;
    };
    const values: string[] = [];
    const value = (tag: string) => {
      const v = canary(tag);
      values.push(v);
      return v;
    };

    beforeAll(async () => {
      clock = new FakeClock(Date.UTC(2025, 0, 1));
      t = await startTestServer(dialect, { retrySchedule: [1_000] }, { clock, random: () => 0.5 });
      receiver = await new Receiver().start();
      appId = await createApp(t, "vault");
    });
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    /** Delivers one message to a fresh endpoint that sends `{{secrets.NAME}}` in a header; returns the header. */
    async function deliveredValue(app: string, name: string): Promise<string> {
      const type = `vault.${name.toLowerCase()}.${receiver.received.length}`;
      await createEndpoint(t, app, { url: `${receiver.url}/v`, filterTypes: [type], template: { headers: { "X-Secret": `{{secrets.${name}}}` } } });
      const before = receiver.received.length;
      await publish(t, app, { eventType: type });
      await t.hw.worker.runUntilIdle();
      expect(receiver.received.length).toBe(before + 1);
      return String(receiver.received[before]!.headers["x-secret"]);
    }

    it("creates, lists, replaces and deletes secrets, answering names and times only", async () => {
      const first = value("crm");
      const created = await api("POST", `/api/v1/app/${appId}/secret`, { name: "CRM_TOKEN", value: first });
      expect(created.status, created.text).toBe(201);
      const at = new Date(clock.now()).toISOString();
      expect(created.body).toEqual({ name: "CRM_TOKEN", createdAt: at, updatedAt: at });
      const dup = await api("POST", `/api/v1/app/${appId}/secret`, { name: "CRM_TOKEN", value: value("dup") });
      expect(dup.status).toBe(409);
      expect(dup.body.code).toBe("E_CONFLICT");
      await putSecret(api, appId, "OTHER", value("other"));

      const list = await api("GET", `/api/v1/app/${appId}/secret`);
      expect(list.status).toBe(200);
      expect(list.body.data).toEqual([
        { name: "CRM_TOKEN", createdAt: at, updatedAt: at },
        { name: "OTHER", createdAt: at, updatedAt: at },
      ]);
      expect(await deliveredValue(appId, "CRM_TOKEN")).toBe(first);

      clock.advance(60_000);
      const second = value("crm2");
      const replaced = await api("PUT", `/api/v1/app/${appId}/secret/CRM_TOKEN`, { value: second });
      expect(replaced.status, replaced.text).toBe(200);
      expect(replaced.body).toEqual({ name: "CRM_TOKEN", createdAt: at, updatedAt: new Date(clock.now()).toISOString() });
      expect(await deliveredValue(appId, "CRM_TOKEN")).toBe(second);
      expect((await api("PUT", `/api/v1/app/${appId}/secret/MISSING`, { value: "x" })).status).toBe(404);

      const deleted = await api("DELETE", `/api/v1/app/${appId}/secret/OTHER`);
      expect(deleted.status).toBe(204);
      expect((await api("GET", `/api/v1/app/${appId}/secret`)).body.data.map((s: { name: string }) => s.name)).toEqual(["CRM_TOKEN"]);
      expect((await api("DELETE", `/api/v1/app/${appId}/secret/OTHER`)).status).toBe(404);
      expect((await api("GET", `/api/v1/app/app_doesnotexist/secret`)).status).toBe(404);
    });

    it.each(["lower", "1ABC", "A-B", "A B", "", `A${"B".repeat(64)}`, "É"])("refuses the name %j", async (name) => {
      const res = await api("POST", `/api/v1/app/${appId}/secret`, { name, value: value("badname") });
      expect(res.status, res.text).toBe(422);
      expect(res.body.detail[0].loc).toEqual(["body", "name"]);
    });

    it("accepts names of 1 and 64 characters", async () => {
      await putSecret(api, appId, "A", value("short"));
      await putSecret(api, appId, `A${"B_9".repeat(21)}`, value("long"));
    });

    it("refuses values over 2000 characters (E_SECRET_TOO_LONG) and empty values", async () => {
      await putSecret(api, appId, "MAX_LEN", `${value("max")}`.padEnd(2000, "x"));
      const big = value("big");
      const tooLong = await api("POST", `/api/v1/app/${appId}/secret`, { name: "TOO_LONG", value: big.padEnd(2001, "x") });
      expect(tooLong.status).toBe(422);
      expect(tooLong.body.code).toBe("E_SECRET_TOO_LONG");
      expect(tooLong.body.detail[0].loc).toEqual(["body", "value"]);
      const put = await api("PUT", `/api/v1/app/${appId}/secret/MAX_LEN`, { value: big.padEnd(2001, "x") });
      expect(put.body.code).toBe("E_SECRET_TOO_LONG");
      expect((await api("POST", `/api/v1/app/${appId}/secret`, { name: "EMPTY", value: "" })).status).toBe(422);
      expect((await api("POST", `/api/v1/app/${appId}/secret`, { name: "NOT_TEXT", value: 12345 })).status).toBe(422);
    });

    it("refuses to delete a secret an endpoint uses (E_SECRET_IN_USE) until the endpoint stops using it", async () => {
      const app = await createApp(t, "in-use");
      await putSecret(api, app, "TPL", value("tpl"));
      await putSecret(api, app, "AUTH", value("auth"));
      await putSecret(api, app, "ENC_KEY", Buffer.alloc(32, 7).toString("base64"));
      const ep = await createEndpoint(t, app, {
        url: `${receiver.url}/in-use`,
        template: { body: { k: "{{secrets.TPL}}" } },
        auth: { type: "bearer", tokenSecret: "AUTH" },
        encryption: { cipher: "aes-256-gcm", keySecret: "ENC_KEY" },
      });
      for (const name of ["TPL", "AUTH", "ENC_KEY"]) {
        const res = await api("DELETE", `/api/v1/app/${app}/secret/${name}`);
        expect(res.status, res.text).toBe(409);
        expect(res.body.code).toBe("E_SECRET_IN_USE");
        expect(res.body.detail).toContain(ep.id);
      }
      const patched = await api("PATCH", `/api/v1/app/${app}/endpoint/${ep.id}`, { template: null, auth: null });
      expect(patched.status, patched.text).toBe(200);
      expect((await api("DELETE", `/api/v1/app/${app}/secret/TPL`)).status).toBe(204);
      expect((await api("DELETE", `/api/v1/app/${app}/secret/AUTH`)).status).toBe(204);
      expect((await api("DELETE", `/api/v1/app/${app}/secret/ENC_KEY`)).status).toBe(409);
      expect((await api("DELETE", `/api/v1/app/${app}/endpoint/${ep.id}`)).status).toBe(204);
      expect((await api("DELETE", `/api/v1/app/${app}/secret/ENC_KEY`)).status).toBe(204);
    });

    it("hides an application's secrets from another organisation (404), which cannot change them", async () => {
      const app = await createApp(t, "isolated");
      const original = value("iso");
      await putSecret(api, app, "ISO", original);
      const other = await t.newOrgToken("intruder");
      const as = { authorization: `Bearer ${other}` };
      const attempts = [
        await t.api("GET", `/api/v1/app/${app}/secret`, undefined, as),
        await t.api("POST", `/api/v1/app/${app}/secret`, { name: "ISO2", value: "x" }, as),
        await t.api("PUT", `/api/v1/app/${app}/secret/ISO`, { value: "replaced-by-intruder" }, as),
        await t.api("DELETE", `/api/v1/app/${app}/secret/ISO`, undefined, as),
      ];
      for (const res of attempts) {
        expect(res.status, res.text).toBe(404);
        expect(res.body.code).toBe("E_NOT_FOUND");
      }
      expect((await api("GET", `/api/v1/app/${app}/secret`)).body.data.map((s: { name: string }) => s.name)).toEqual(["ISO"]);
      expect(await deliveredValue(app, "ISO")).toBe(original);
    });

    it("never returned a value, in any answer", () => {
      expect(texts.length).toBeGreaterThan(20);
      for (const v of values) for (const text of texts) expect(text.includes(v), `a response holds ${v}`).toBe(false);
    });

    describe("a ciphertext copied into another row (associated data)", () => {
      let appA: string;
      let appB: string;
      let tampered: { id: string };
      let healthy: { id: string };
      const db = () => t.hw.ctx.store.db;
      const sealed = async (app: string, name: string) =>
        (await db().selectFrom("vault_secrets").select("value_enc").where("app_id", "=", app).where("name", "=", name).executeTakeFirstOrThrow()).value_enc;

      beforeAll(async () => {
        appA = await createApp(t, "aad-a");
        appB = await createApp(t, "aad-b");
        await putSecret(api, appA, "VICTIM", value("victim"));
        await putSecret(api, appA, "DONOR", value("donor-same-app"));
        await putSecret(api, appB, "VICTIM", value("donor-other-app"));
        tampered = await createEndpoint(t, appA, { url: `${receiver.url}/aad`, filterTypes: ["aad.test"], template: { headers: { "X-Secret": "{{secrets.VICTIM}}" } } });
        healthy = await createEndpoint(t, appA, { url: `${receiver.url}/healthy`, filterTypes: ["aad.test"] });
      });

      it.each([
        ["another name of the same application", () => sealed(appA, "DONOR")],
        ["the same name of another application", () => sealed(appB, "VICTIM")],
      ])("from %s fails to decrypt: the attempt fails with E_MASTER_KEY, other deliveries go on", async (_from, donor) => {
        const original = await sealed(appA, "VICTIM");
        await db().updateTable("vault_secrets").set({ value_enc: await donor() }).where("app_id", "=", appA).where("name", "=", "VICTIM").execute();
        const before = receiver.received.length;
        // One message, two endpoints: both jobs are claimed in one batch, and the bad row must not
        // hold up the delivery that does not need it.
        const msg = await publish(t, appA, { eventType: "aad.test" });
        await t.hw.worker.runUntilIdle();
        const attempts = await attemptsOf(t, appA, msg.id);
        expect(receiver.received.slice(before).map((r) => r.url), JSON.stringify(attempts)).toEqual(["/healthy"]);
        expect(attempts.find((a) => a.endpointId === healthy.id)?.statusText).toBe("success");
        const [attempt, ...more] = attempts.filter((a) => a.endpointId === tampered.id);
        expect(more).toHaveLength(0);
        expect(attempt).toMatchObject({ statusText: "fail", errorCode: "E_MASTER_KEY", responseStatusCode: 0 });
        expect(attempt!.response).toContain("VICTIM");
        // No value leaked into the failure, and the job waits for its retry.
        for (const v of values) expect(JSON.stringify(attempt)).not.toContain(v);
        expect(await pendingJobs(t)).toBe(1);
        // Restoring the row (or replacing the value through the API) lets the retry through.
        await db().updateTable("vault_secrets").set({ value_enc: original }).where("app_id", "=", appA).where("name", "=", "VICTIM").execute();
        clock.advance(5_000);
        await t.hw.worker.runUntilIdle();
        expect(receiver.received.slice(before).map((r) => r.url)).toEqual(["/healthy", "/aad"]);
        expect(receiver.received.at(-1)!.headers["x-secret"]).toBe(values.find((v) => v.startsWith("cnry-victim-")));
        expect(await pendingJobs(t)).toBe(0);
      });
    });
  });

  describe(`vaultMaxValueLength (${dialect})`, () => {
    let t: TestServer;
    beforeAll(async () => {
      t = await startTestServer(dialect, { vaultMaxValueLength: 10 });
    });
    afterAll(async () => {
      await t?.stop();
    });

    it("changes the longest accepted value", async () => {
      const app = await createApp(t, "short-values");
      await putSecret(t.api, app, "TEN", "0123456789");
      const res = await t.api("POST", `/api/v1/app/${app}/secret`, { name: "ELEVEN", value: "0123456789a" });
      expect(res.status).toBe(422);
      expect(res.body.code).toBe("E_SECRET_TOO_LONG");
      expect(res.text).toContain("at most 10 characters");
    });
  });
}
