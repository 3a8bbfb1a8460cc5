import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIALECTS } from "../helpers/dialects.js";
import { createBucket } from "../helpers/ingress.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const HANDLER = "export default function handler(req) {\n  return { status: 200, body: req.body.toUpperCase() };\n}\n";

for (const dialect of DIALECTS) {
  describe(`functions API (${dialect})`, () => {
    let t: TestServer;
    let appId: string;

    beforeAll(async () => {
      // 3 s: the gateway-level "others keep being answered" test must not race the loop's cap.
      t = await startTestServer(dialect, {}, { functionLimits: { timeoutMs: 3000 } });
      appId = (await t.svix.application.create({ name: "fn-app" })).id;
    });
    afterAll(async () => t?.stop());

    it("saves versions, lists the latest of each name, reads one version and deletes all", async () => {
      const base = `/api/v1/app/${appId}/function`;
      const v1 = await t.api("POST", base, { name: "shape", code: HANDLER });
      expect(v1.status, v1.text).toBe(201);
      expect(v1.body).toMatchObject({ name: "shape", version: 1, code: HANDLER });
      const v2 = await t.api("POST", base, { name: "shape", code: "export default (x) => x" });
      expect(v2.body).toMatchObject({ name: "shape", version: 2 });
      await t.api("POST", base, { name: "other", code: "export default () => 1" });

      const list = await t.api("GET", base);
      expect(list.body.data.map((f: { name: string; version: number }) => [f.name, f.version])).toEqual([["other", 1], ["shape", 2]]);
      expect((await t.api("GET", `${base}/shape`)).body).toMatchObject({ version: 2, code: "export default (x) => x" });
      expect((await t.api("GET", `${base}/shape?version=1`)).body).toMatchObject({ version: 1, code: HANDLER });
      expect((await t.api("GET", `${base}/shape/version`)).body.data.map((f: { version: number }) => f.version)).toEqual([2, 1]);

      expect((await t.api("DELETE", `${base}/shape`)).status).toBe(204);
      expect((await t.api("GET", `${base}/shape`)).body).toMatchObject({ code: "E_NOT_FOUND" });
      expect((await t.api("GET", `${base}/shape?version=1`)).status).toBe(404);
      expect((await t.api("DELETE", `${base}/shape`)).status).toBe(404);
    });

    it("refuses syntax errors on save with 422 E_FUNCTION_SYNTAX, line and column; nothing is stored", async () => {
      const base = `/api/v1/app/${appId}/function`;
      const r = await t.api("POST", base, { name: "broken", code: "export default function handler(x) {\n  return { a: 1\n}}}" });
      expect(r.status).toBe(422);
      expect(r.body.code).toBe("E_FUNCTION_SYNTAX");
      expect(r.body.detail[0]).toMatchObject({ loc: ["body", "code"] });
      expect(r.body.detail[0].msg).toContain("line 3, column 3");
      const noHandler = await t.api("POST", base, { name: "broken", code: "function handler(x) { return x }" });
      expect(noHandler.body).toMatchObject({ code: "E_FUNCTION_SYNTAX" });
      // A module whose top level loops is refused with its cap's code, and the check returns.
      const loops = await t.api("POST", base, { name: "broken", code: "while (true) {}\nexport default () => 1" });
      expect(loops.status).toBe(422);
      expect(loops.body.code).toBe("E_FUNCTION_TIMEOUT");
      expect((await t.api("GET", `${base}/broken`)).status).toBe(404);
    });

    it("refuses hostile names and bodies with 422, never a 5xx", async () => {
      const base = `/api/v1/app/${appId}/function`;
      for (const name of ["__proto__", "constructor", "../x", "a b", "", "x".repeat(65), "é"]) {
        const r = await t.api("POST", base, { name, code: "export default () => 1" });
        if (name === "constructor") {
          expect(r.status, name).toBe(201); // a plain letter name is fine: nothing looks names up on an object
          continue;
        }
        expect(r.status, name).toBe(422);
        expect(r.body.code, name).toBe("E_VALIDATION");
      }
      expect((await t.api("POST", base, { name: "big", code: "//".padEnd(64 * 1024 + 1, "x") })).status).toBe(422);
      expect((await t.api("POST", base, { name: "nul", code: "export default () => 1\u0000" })).body.code).toBe("E_NUL_CHARACTER");
      expect((await t.api("POST", base, { name: "x" })).status).toBe(422);
      expect((await t.api("GET", `${base}/x?version=abc`)).status).toBe(422);
    });

    it("runs a function against a sample input: result and console, vault values masked", async () => {
      await t.svix.application.create({ name: "vault-app", uid: "vault-app" });
      expect((await t.api("POST", "/api/v1/app/vault-app/secret", { name: "PARTNER_KEY", value: "pk_live_9f8e7d6c5b4a" })).status).toBe(201);
      const base = "/api/v1/app/vault-app/function";
      const code = [
        "export default function handler(req) {",
        "  const key = secrets.get('PARTNER_KEY');",
        "  console.log('signing with', key, 'for', req.path);",
        "  return { status: 202, headers: { authorization: 'Bearer ' + key }, body: JSON.stringify({ ok: true, path: req.path }) };",
        "}",
      ].join("\n");
      expect((await t.api("POST", base, { name: "respond", code })).status).toBe(201);
      const r = await t.api("POST", `${base}/respond/test`, { input: { method: "POST", path: "/hook", query: {}, headers: {}, body: "{}" } });
      expect(r.status, r.text).toBe(200);
      expect(r.body).toMatchObject({
        name: "respond",
        version: 1,
        result: { status: 202, headers: { authorization: "Bearer ******" }, body: "{\"ok\":true,\"path\":\"/hook\"}" },
        console: [{ level: "log", text: "signing with ****** for /hook" }],
      });
      expect(r.text).not.toContain("pk_live");
      expect(r.body.error).toBeUndefined();

      expect((await t.api("POST", base, { name: "leaky", code: "export default () => { throw new Error('key=' + secrets.get('PARTNER_KEY')) }" })).status).toBe(201);
      const thrown = await t.api("POST", `${base}/leaky/test`, {});
      expect(thrown.body).toMatchObject({ result: null, error: { code: "E_FUNCTION_ERROR" } });
      expect(thrown.body.error.detail).toContain("key=******");
      expect(thrown.text).not.toContain("pk_live");
      expect(t.logs()).not.toContain("pk_live");
    });

    it("reports each cap with its code from the test endpoint", async () => {
      const base = `/api/v1/app/${appId}/function`;
      const cases: [string, string][] = [
        ["loop", "export default () => { while (true) {} }"],
        ["bomb", "export default () => { const a = []; for (;;) a.push(new Uint8Array(1e6)); }"],
        ["deep", "export default () => { const f = (n) => f(n + 1) + 1; return f(0); }"],
        ["escape", "export default () => globalThis.constructor.constructor('return process')().exit(1)"],
        ["huge", "export default () => 'x'.repeat(4 * 1024 * 1024)"],
      ];
      const codes: Record<string, string> = {};
      for (const [name, code] of cases) {
        expect((await t.api("POST", base, { name, code })).status, name).toBe(201);
        codes[name] = (await t.api("POST", `${base}/${name}/test`, {})).body.error?.code;
      }
      expect(codes).toEqual({ loop: "E_FUNCTION_TIMEOUT", bomb: "E_FUNCTION_MEMORY", deep: "E_FUNCTION_ERROR", escape: "E_FUNCTION_ERROR", huge: "E_FUNCTION_OUTPUT_TOO_LARGE" });
      expect((await t.api("GET", "/api/v1/app")).status).toBe(200);
    });

    it("keeps answering other requests while a function loops until its cap (3 s here)", async () => {
      const base = `/api/v1/app/${appId}/function`;
      expect((await t.api("POST", base, { name: "spin", code: "export default () => { for (;;) {} }" })).status).toBe(201);
      const order: string[] = [];
      const spinning = t.api("POST", `${base}/spin/test`, {}).then((r) => order.push(`spin:${r.body.error?.code}`));
      for (let i = 0; i < 5; i++) {
        const r = await t.api("GET", `/api/v1/app/${appId}`);
        order.push(`get:${r.status}`);
      }
      const quick = await t.api("POST", `/api/v1/app/${appId}/function/other/test`, {});
      order.push(`fn:${JSON.stringify(quick.body.result)}`);
      await spinning;
      expect(order).toEqual(["get:200", "get:200", "get:200", "get:200", "get:200", "fn:1", "spin:E_FUNCTION_TIMEOUT"]);
    });

    it("keeps bucket functions per bucket, and another organisation gets 404", async () => {
      const bucket = await createBucket(t, { name: "fn-bucket" });
      const base = `/api/v1/bucket/${bucket.id}/function`;
      expect((await t.api("POST", base, { name: "drop", code: "export default (req) => req.body.includes('ping') ? null : req" })).status).toBe(201);
      const r = await t.api("POST", `${base}/drop/test`, { input: { body: "ping" } });
      expect(r.body).toMatchObject({ result: null });
      expect((await t.api("GET", `/api/v1/app/${appId}/function/drop`)).status).toBe(404);

      const other = await t.newOrgToken("fn-other-org");
      const h = { authorization: `Bearer ${other}` };
      for (const [method, path] of [
        ["GET", `${base}`],
        ["GET", `${base}/drop`],
        ["POST", `${base}/drop/test`],
        ["DELETE", `${base}/drop`],
        ["GET", `/api/v1/app/${appId}/function/other`],
        ["POST", `/api/v1/app/${appId}/function`],
      ] as const) {
        const res = await t.api(method, path, method === "POST" ? { name: "x", code: "export default () => 1" } : undefined, h);
        expect(res.status, `${method} ${path}`).toBe(404);
      }
      expect((await t.api("GET", `${base}/drop`)).status).toBe(200);
    });
  });
}
