import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/clock/index.js";
import { DIALECTS } from "../helpers/dialects.js";
import { attemptsOf, attemptsTo, createApp, createEndpoint, getEndpoint, publish } from "../helpers/delivery.js";
import { canary, putSecret } from "../helpers/integrations.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/** A JSON body template nested `depth` objects deep. */
function nested(depth: number): unknown {
  let v: unknown = "{{payload.x}}";
  for (let i = 0; i < depth; i++) v = { a: v };
  return v;
}

for (const dialect of DIALECTS) {
  describe(`request templates (${dialect})`, () => {
    let t: TestServer;
    let receiver: Receiver;
    let appId: string;
    const SECRET = canary("tpl");

    beforeAll(async () => {
      t = await startTestServer(dialect, {}, { clock: new FakeClock(Date.now()) });
      receiver = await new Receiver().start();
      appId = await createApp(t, "templates");
      await putSecret(t.api, appId, "CRM_TOKEN", SECRET);
    });
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    const save = (template: unknown, extra: Record<string, unknown> = {}) => t.api("POST", `/api/v1/app/${appId}/endpoint`, { url: `${receiver.url}/hook`, template, ...extra });

    it.each([
      ["constructor walk", { headers: { "X-Value": "id: {{constructor.constructor}}" } }, ["body", "template", "headers", "X-Value"], /"constructor" may not be referenced \(at character 4\)/],
      ["__proto__ in a path", { body: { a: { b: "{{payload.__proto__.polluted}}" } } }, ["body", "template", "body", "a", "b"], /"__proto__" may not be referenced \(at character 0\)/],
      ["process state", { query: { home: "{{process.env.HOME}}" } }, ["body", "template", "query", "home"], /unknown "process"/],
      ["an unknown secret", { url: "https://crm.example.com/v1/{{secrets.NOPE}}" }, ["body", "template", "url"], /unknown secret NOPE.*\(at character 27\)/],
      ["a templated host", { url: "https://{{payload.host}}/x" }, ["body", "template", "url"], /scheme, host and port must be literal.*\(at character 8\)/],
      ["unclosed braces", { body: "hello {{payload.name" }, ["body", "template", "body"], /unclosed \{\{ \(at character 6\)/],
      ["40 levels of JSON nesting", { body: nested(40) }, ["body", "template", "body", ...Array(33).fill("a")], /nested deeper than 32/],
      ["a 70 KB template", { body: "x".repeat(70_000) }, ["body", "template", "body"], /longer than 65536/],
      ["a helper call", { body: "{{payload.x | exec}}" }, ["body", "template", "body"], /unknown filter "exec"/],
    ])("refuses %s when the endpoint is saved (E_TEMPLATE_INVALID with field and position)", async (_what, template, loc, msg) => {
      const res = await save(template);
      expect(res.status, res.text).toBe(422);
      expect(res.body.code).toBe("E_TEMPLATE_INVALID");
      expect(res.body.detail[0].loc).toEqual(loc);
      expect(res.body.detail[0].msg).toMatch(msg);
    });

    it("refuses an unknown secret in auth or encryption, and a hostile PATCH leaves the endpoint as it was", async () => {
      const auth = await t.api("POST", `/api/v1/app/${appId}/endpoint`, { url: `${receiver.url}/hook`, auth: { type: "bearer", tokenSecret: "MISSING" } });
      expect(auth.status).toBe(422);
      expect(auth.body).toMatchObject({ code: "E_TEMPLATE_INVALID", detail: [{ loc: ["body", "auth"] }] });
      const enc = await t.api("POST", `/api/v1/app/${appId}/endpoint`, { url: `${receiver.url}/hook`, encryption: { cipher: "aes-256-gcm", keySecret: "MISSING" } });
      expect(enc.body).toMatchObject({ code: "E_TEMPLATE_INVALID", detail: [{ loc: ["body", "encryption", "keySecret"] }] });
      const ep = await createEndpoint(t, appId, { url: `${receiver.url}/hook`, filterTypes: ["never.sent"], template: { headers: { "X-A": "{{payload.a}}" } } });
      const patch = await t.api("PATCH", `/api/v1/app/${appId}/endpoint/${ep.id}`, { template: { headers: { "X-A": "{{constructor.constructor}}" } } });
      expect(patch.status).toBe(422);
      expect(patch.body.code).toBe("E_TEMPLATE_INVALID");
      expect((await getEndpoint(t, appId, ep.id)).template).toEqual({ headers: { "X-A": "{{payload.a}}" } });
    });

    it("renders event, message, timestamp, payload and filters into the request it sends", async () => {
      await createEndpoint(t, appId, {
        url: `${receiver.url}/render`,
        filterTypes: ["ticket.created"],
        template: {
          method: "POST",
          url: `${receiver.url}/crm/{{payload.customer.id}}/notes`,
          headers: { "X-Msg": "{{message.id}}", "X-Ts": "{{timestamp}}", "X-Event": "{{event.type}}" },
          body: "<note id=\"{{payload.customer.id}}\">{{payload.text | xml}}</note>",
          contentType: "application/xml",
        },
      });
      const before = receiver.received.length;
      const msg = await publish(t, appId, { eventType: "ticket.created", payload: { customer: { id: "c 42" }, text: "<b>&'\"" } });
      await t.hw.worker.runUntilIdle();
      const r = receiver.received[before]!;
      expect(r.url).toBe("/crm/c%2042/notes");
      expect(r.headers["content-type"]).toBe("application/xml");
      expect(r.headers["x-msg"]).toBe(msg.id);
      expect(r.headers["x-ts"]).toBe(r.headers["webhook-timestamp"]);
      expect(r.headers["x-event"]).toBe("ticket.created");
      expect(r.body).toBe('<note id="c 42">&lt;b&gt;&amp;&apos;&quot;</note>');
    });

    it("never walks a prototype: lookups see own payload fields only, and __proto__ payloads are refused at the door", async () => {
      await createEndpoint(t, appId, {
        url: `${receiver.url}/proto`,
        filterTypes: ["proto.test"],
        template: {
          headers: { "X-To-String": "[{{payload.toString}}]" },
          body: { a: "{{payload.toString}}", b: "{{payload.hasOwnProperty}}", c: "{{payload.text.length}}", d: "{{payload.list.length}}", e: "{{payload.list.1}}", f: "{{payload.own}}" },
        },
      });
      for (const raw of ['{"eventType":"proto.test","payload":{"__proto__":{"polluted":"yes"}}}', '{"eventType":"proto.test","payload":{"constructor":{"prototype":{"polluted":"yes"}}}}']) {
        const res = await t.api("POST", `/api/v1/app/${appId}/msg`, raw);
        expect(res.status, res.text).toBe(400);
        expect(res.body.code).toBe("E_INVALID_JSON");
      }
      const tplWithProto = await t.api("POST", `/api/v1/app/${appId}/endpoint`, `{"url":"${receiver.url}/p","template":{"body":{"__proto__":{"polluted":"{{payload.x}}"}}}}`);
      expect(tplWithProto.status).toBe(400);

      const before = receiver.received.length;
      await publish(t, appId, { eventType: "proto.test", payload: { text: "abc", list: [5, 6], own: { toString: "mine", polluted: null } } });
      await publish(t, appId, { eventType: "proto.test", payload: { toString: "own value" } });
      await t.hw.worker.runUntilIdle();
      const [first, second] = receiver.received.slice(before);
      expect(first!.headers["x-to-string"]).toBe("[]");
      expect(JSON.parse(first!.body)).toEqual({ a: null, b: null, c: null, d: null, e: 6, f: { toString: "mine", polluted: null } });
      expect(second!.headers["x-to-string"]).toBe("[own value]");
      expect(JSON.parse(second!.body)).toMatchObject({ a: "own value" });
      // The gateway runs in this process here, so its Object.prototype is this one.
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });

    it("fails an attempt whose rendering would exceed the output limit (E_TEMPLATE_OUTPUT_TOO_LARGE), and keeps serving", async () => {
      const huge = await createEndpoint(t, appId, { url: `${receiver.url}/huge`, filterTypes: ["huge.test"], template: { body: "{{payload.big}}".repeat(20) } });
      const small = await createEndpoint(t, appId, { url: `${receiver.url}/small`, filterTypes: ["huge.test"] });
      const before = receiver.received.length;
      const msg = await publish(t, appId, { eventType: "huge.test", payload: { big: "x".repeat(200_000) } });
      await t.hw.worker.runUntilIdle();
      // 20 × 200 KB = 4 MB > the 2 MiB default: nothing is sent to that endpoint; the other gets its copy.
      expect(receiver.received.slice(before).map((r) => r.url)).toEqual(["/small"]);
      const attempts = await attemptsOf(t, appId, msg.id);
      expect(attempts.find((a) => a.endpointId === huge.id)).toMatchObject({ statusText: "fail", errorCode: "E_TEMPLATE_OUTPUT_TOO_LARGE", responseStatusCode: 0 });
      expect(attempts.find((a) => a.endpointId === small.id)?.statusText).toBe("success");
      const sync = await t.api("POST", `/api/v1/app/${appId}/endpoint/${huge.id}/call`, { eventType: "huge.test", payload: { big: "y".repeat(200_000) } });
      expect(sync.status).toBe(422);
      expect(sync.body.code).toBe("E_TEMPLATE_OUTPUT_TOO_LARGE");
      expect((await fetch(`${t.url}/health`)).status).toBe(200);
      expect((await t.api("GET", `/api/v1/app/${appId}/endpoint`)).status).toBe(200);
    });

    it("previews the exact request with every secret as ******, sending and storing nothing", async () => {
      const ep = await createEndpoint(t, appId, {
        url: `${receiver.url}/preview`,
        filterTypes: ["preview.test"],
        template: { method: "PATCH", url: `${receiver.url}/p/{{secrets.CRM_TOKEN}}/{{payload.id}}`, query: { k: "{{secrets.CRM_TOKEN}}" }, headers: { "X-Key": "k={{secrets.CRM_TOKEN | base64}}" }, body: { token: "{{secrets.CRM_TOKEN}}", id: "{{payload.id}}" } },
        auth: { type: "basic", username: "u", passwordSecret: "CRM_TOKEN" },
      });
      const receivedBefore = receiver.received.length;
      const msgsBefore = (await t.api("GET", `/api/v1/app/${appId}/msg?limit=250`)).body.data.length;
      const res = await t.api("POST", `/api/v1/app/${appId}/endpoint/${ep.id}/preview`, { eventType: "preview.test", payload: { id: 9 } });
      expect(res.status, res.text).toBe(200);
      expect(res.body).toMatchObject({ method: "PATCH", url: `${receiver.url}/p/******/9?k=******`, encrypted: false });
      expect(res.body.headers).toMatchObject({ authorization: "Basic ******", "x-key": "k=******", "content-type": "application/json", "webhook-signature": "v1,******" });
      expect(JSON.parse(res.body.body)).toEqual({ token: "******", id: 9 });
      expect(res.text).not.toContain(SECRET);
      expect(res.text).not.toContain(Buffer.from(SECRET).toString("base64"));
      expect(receiver.received.length).toBe(receivedBefore);
      expect(await attemptsTo(t, appId, ep.id)).toEqual([]);
      expect((await t.api("GET", `/api/v1/app/${appId}/msg?limit=250`)).body.data.length).toBe(msgsBefore);
    });

    it("previews an unsaved template, auth and encryption (checked as a save would, with the same errors) without saving it", async () => {
      await putSecret(t.api, appId, "BODY_KEY", Buffer.alloc(32, 7).toString("base64"));
      const ep = await createEndpoint(t, appId, { url: `${receiver.url}/draft`, filterTypes: ["never.sent"], template: { headers: { "X-Saved": "{{payload.id}}" } } });
      const saved = await getEndpoint(t, appId, ep.id);
      const preview = (extra: Record<string, unknown>) => t.api("POST", `/api/v1/app/${appId}/endpoint/${ep.id}/preview`, { eventType: "draft.test", payload: { id: 5, name: "Zoë" }, ...extra });

      const asSaved = await preview({});
      expect(asSaved.body.headers["x-saved"]).toBe("5");
      const draft = await preview({
        template: { method: "PUT", headers: { "X-Draft": "{{payload.name}}-{{secrets.CRM_TOKEN}}" }, body: { who: "{{payload.name}}" } },
        auth: { type: "header", name: "X-Api-Key", valueSecret: "CRM_TOKEN" },
      });
      expect(draft.status, draft.text).toBe(200);
      expect(draft.body).toMatchObject({ method: "PUT", url: `${receiver.url}/draft`, encrypted: false });
      expect(draft.body.headers).toMatchObject({ "x-draft": "Zoë-******", "x-api-key": "******" });
      expect(draft.body.headers["x-saved"]).toBeUndefined();
      expect(JSON.parse(draft.body.body)).toEqual({ who: "Zoë" });
      expect(draft.text).not.toContain(SECRET);
      // `null` previews with none; encryption as drafted (the body is ciphertext, the key never shown).
      const bare = await preview({ template: null, encryption: { cipher: "aes-256-gcm", keySecret: "BODY_KEY" } });
      expect(bare.status, bare.text).toBe(200);
      expect(bare.body.encrypted).toBe(true);
      expect(bare.body.headers["x-saved"]).toBeUndefined();
      expect(bare.text).not.toContain(Buffer.alloc(32, 7).toString("base64"));

      // The same refusals as a save: code, field and position.
      for (const [extra, code, loc] of [
        [{ template: { body: "hello {{payload.name" } }, "E_TEMPLATE_INVALID", ["body", "template", "body"]],
        [{ template: { headers: { "X-A": "{{constructor.constructor}}" } } }, "E_TEMPLATE_INVALID", ["body", "template", "headers", "X-A"]],
        [{ auth: { type: "bearer", tokenSecret: "MISSING" } }, "E_TEMPLATE_INVALID", ["body", "auth"]],
        [{ encryption: { cipher: "aes-256-gcm", keySecret: "BODY_KEY", randomIv: false } }, "E_ENCRYPTION_INVALID", ["body", "encryption", "randomIv"]],
        [{ template: { method: "TRACE" } }, "E_VALIDATION", ["body", "template", "method"]],
        [{ template: { __proto__: { polluted: 1 }, headers: [] } }, "E_VALIDATION", ["body", "template", "headers"]],
      ] as const) {
        const saveRes = await t.api("PATCH", `/api/v1/app/${appId}/endpoint/${ep.id}`, extra);
        const previewRes = await preview(extra);
        expect([previewRes.status, previewRes.body.code, previewRes.body.detail?.[0]?.loc], previewRes.text).toEqual([422, code, loc]);
        expect([saveRes.status, saveRes.body.code, saveRes.body.detail?.[0]?.loc]).toEqual([previewRes.status, previewRes.body.code, previewRes.body.detail?.[0]?.loc]);
        expect(saveRes.body.detail?.[0]?.msg).toBe(previewRes.body.detail?.[0]?.msg);
      }
      // Nothing was saved, nothing sent.
      expect(await getEndpoint(t, appId, ep.id)).toEqual(saved);
      expect(await attemptsTo(t, appId, ep.id)).toEqual([]);
    });

    it("POST .../test sends one real request and returns its attempt", async () => {
      const ep = await createEndpoint(t, appId, { url: `${receiver.url}/test-event`, filterTypes: ["never.sent"], template: { headers: { "X-Key": "{{secrets.CRM_TOKEN}}" } } });
      const before = receiver.received.length;
      const res = await t.api("POST", `/api/v1/app/${appId}/endpoint/${ep.id}/test`, {});
      expect(res.status, res.text).toBe(200);
      expect(receiver.received.length).toBe(before + 1);
      const r = receiver.received[before]!;
      expect(r.headers["x-key"]).toBe(SECRET);
      expect(JSON.parse(r.body)).toMatchObject({ test: true });
      expect(res.body).toMatchObject({ endpointId: ep.id, statusText: "success", responseStatusCode: 200, triggerType: 2, url: `${receiver.url}/test-event` });
      expect(res.body.request.headers["x-key"]).toBe("******");
      expect(res.body.msgId).toBe(r.headers["webhook-id"]);
      expect((await attemptsTo(t, appId, ep.id)).map((a) => a.id)).toEqual([res.body.id]);
    });
  });

  describe(`templateOutputLimit (${dialect})`, () => {
    let t: TestServer;
    let receiver: Receiver;
    beforeAll(async () => {
      t = await startTestServer(dialect, { templateOutputLimit: 4096 });
      receiver = await new Receiver().start();
    });
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    it("bounds each rendered request", async () => {
      const appId = await createApp(t, "limit");
      const ep = await createEndpoint(t, appId, { url: `${receiver.url}/limit`, template: { body: { v: "{{payload.v}}" } } });
      const ok = await publish(t, appId, { payload: { v: "a".repeat(3000) } });
      const tooBig = await publish(t, appId, { payload: { v: "a".repeat(5000) } });
      await t.hw.worker.runUntilIdle();
      const attempts = [...(await attemptsOf(t, appId, ok.id)), ...(await attemptsOf(t, appId, tooBig.id))];
      expect(receiver.received, JSON.stringify(attempts)).toHaveLength(1);
      expect(JSON.parse(receiver.received[0]!.body).v).toHaveLength(3000);
      expect(attempts.map((a) => [a.msgId, a.statusText, a.errorCode])).toEqual([
        [ok.id, "success", null],
        [tooBig.id, "fail", "E_TEMPLATE_OUTPUT_TOO_LARGE"],
      ]);
      expect(attempts[1]!.endpointId).toBe(ep.id);
    });
  });
}
