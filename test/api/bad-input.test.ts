import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIALECTS } from "../helpers/dialects.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

for (const dialect of DIALECTS) {
  describe(`bad input gets a stable error code, never a crash (${dialect})`, () => {
    let t: TestServer;
    let appId: string;

    beforeAll(async () => {
      t = await startTestServer(dialect, { maxPayloadSize: 64 * 1024 });
      appId = (await t.api("POST", "/api/v1/app", { name: "errors" })).body.id;
    });
    afterAll(async () => t?.stop());

    it("malformed JSON is 400 E_INVALID_JSON", async () => {
      const r = await t.api("POST", `/api/v1/app/${appId}/msg`, '{"eventType": "a", ');
      expect(r.status).toBe(400);
      expect(r.body).toEqual({ code: "E_INVALID_JSON", detail: expect.any(String) });
    });

    it("wrong types are 422 with Svix's {loc, msg, type} items", async () => {
      const r = await t.api("POST", `/api/v1/app/${appId}/msg`, { eventType: 42, payload: "not an object" });
      expect(r.status).toBe(422);
      expect(r.body.code).toBe("E_VALIDATION");
      const locs = (r.body.detail as { loc: string[] }[]).map((d) => d.loc.join("."));
      expect(locs).toEqual(expect.arrayContaining(["body.eventType", "body.payload"]));
      for (const d of r.body.detail) expect(d).toEqual({ loc: expect.any(Array), msg: expect.any(String), type: expect.any(String) });
    });

    it("a missing body is 422, not a crash", async () => {
      const r = await t.api("POST", "/api/v1/app", undefined, { "content-type": "application/json" });
      expect([400, 422]).toContain(r.status);
      expect(r.body.code).toMatch(/^E_/);
    });

    it("a non-JSON content type is 415", async () => {
      const r = await t.api("POST", "/api/v1/app", "name=x", { "content-type": "application/x-www-form-urlencoded" });
      expect(r.status).toBe(415);
      expect(r.body.code).toBe("E_UNSUPPORTED_MEDIA_TYPE");
    });

    it("oversize payloads are 413 E_PAYLOAD_TOO_LARGE", async () => {
      const r = await t.api("POST", `/api/v1/app/${appId}/msg`, { eventType: "big", payload: { blob: "x".repeat(70 * 1024) } });
      expect(r.status).toBe(413);
      expect(r.body.code).toBe("E_PAYLOAD_TOO_LARGE");
    });

    it("unknown ids are 404 E_NOT_FOUND", async () => {
      for (const path of [
        "/api/v1/app/app_nope",
        `/api/v1/app/${appId}/endpoint/ep_nope`,
        `/api/v1/app/${appId}/msg/msg_nope`,
        `/api/v1/app/${appId}/attempt/msg/msg_nope`,
        "/api/v1/event-type/nope",
        "/api/v1/no-such-route",
      ]) {
        const r = await t.api("GET", path);
        expect(r.status, path).toBe(404);
        expect(r.body.code, path).toBe("E_NOT_FOUND");
      }
    });

    it("invalid endpoint URLs and schemes are refused", async () => {
      for (const url of ["not a url", "ftp://example.com/x", "file:///etc/passwd", "javascript:alert(1)", "https://user:pass@example.com/"]) {
        const r = await t.api("POST", `/api/v1/app/${appId}/endpoint`, { url });
        expect(r.status, url).toBe(422);
        expect(r.body.code, url).toBe("E_VALIDATION");
        expect(r.body.detail[0].loc).toEqual(["body", "url"]);
      }
    });

    it("invalid, short and weak secrets each get their own code", async () => {
      const cases: [string, string][] = [
        ["whsec_not base64!!", "E_SECRET_FORMAT"],
        ["whsec_c2hvcnQ=", "E_SECRET_TOO_SHORT"],
        [`whsec_${Buffer.from("passwordpassword1234").toString("base64")}`, "E_SECRET_WEAK"],
        [`whsec_${Buffer.from("a".repeat(24)).toString("base64")}`, "E_SECRET_WEAK"],
      ];
      for (const [secret, code] of cases) {
        const r = await t.api("POST", `/api/v1/app/${appId}/endpoint`, { url: "https://example.com/hook", secret });
        expect(r.status, secret).toBe(422);
        expect(r.body.code, secret).toBe(code);
        expect(r.text, secret).not.toContain(secret.slice(6));
      }
    });

    it("bad custom headers are refused", async () => {
      const ep = (await t.api("POST", `/api/v1/app/${appId}/endpoint`, { url: "https://example.com/hook" })).body;
      for (const headers of [{ "bad header": "x" }, { "x-ok": "line\r\nInjected: 1" }, { "webhook-signature": "forged" }, { Host: "evil" }]) {
        const r = await t.api("PUT", `/api/v1/app/${appId}/endpoint/${ep.id}/headers`, { headers });
        expect(r.status, JSON.stringify(headers)).toBe(422);
        expect(r.body.code).toBe("E_VALIDATION");
      }
    });

    it("bad pagination parameters are 422 in the query", async () => {
      const r = await t.api("GET", "/api/v1/app?limit=-5");
      expect(r.status).toBe(422);
      expect(r.body.detail[0].loc).toEqual(["query", "limit"]);
    });

    it("keeps serving after all of the above", async () => {
      const r = await t.api("GET", "/api/v1/app");
      expect(r.status).toBe(200);
      expect((await fetch(`${t.url}/health`)).status).toBe(200);
    });
  });
}
