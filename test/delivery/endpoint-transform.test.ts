import { Webhook as SvixWebhook } from "svix";
import { Webhook as StandardWebhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIALECTS } from "../helpers/dialects.js";
import { attemptsTo, createApp, createEndpoint, publish } from "../helpers/delivery.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

for (const dialect of DIALECTS) {
  describe(`endpoint transformation, outbound (${dialect})`, () => {
    let t: TestServer;
    let receiver: Receiver;
    let appId: string;

    beforeAll(async () => {
      t = await startTestServer(dialect, {}, { functionLimits: { timeoutMs: 300 } });
      receiver = await new Receiver().start();
      appId = await createApp(t, "transform");
      expect((await t.api("POST", `/api/v1/app/${appId}/secret`, { name: "TENANT_TOKEN", value: "tt_secret_0123456789" })).status).toBe(201);
    });
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    async function endpointWith(name: string, code: string, path: string): Promise<string> {
      const saved = await t.api("POST", `/api/v1/app/${appId}/function`, { name, code });
      expect(saved.status, saved.text).toBe(201);
      const ep = await createEndpoint(t, appId, { url: `${receiver.url}${path}`, secret: SECRET });
      const set = await t.api("PATCH", `/api/v1/app/${appId}/endpoint/${ep.id}/transformation`, { function: name });
      expect(set.status, set.text).toBe(204);
      expect((await t.api("GET", `/api/v1/app/${appId}/endpoint/${ep.id}/transformation`)).body).toEqual({ function: name, enabled: true });
      return ep.id as string;
    }

    it("changes method, URL and payload; the signature covers the final body (verified by svix and standardwebhooks)", async () => {
      const epId = await endpointWith(
        "reshape",
        [
          "export default function handler(webhook) {",
          "  webhook.method = 'PUT';",
          "  webhook.url = webhook.url.replace('/orig', '/moved') + '?src=hw';",
          "  webhook.payload = { kind: webhook.eventType, amount: webhook.payload.amount * 100, token: secrets.get('TENANT_TOKEN') };",
          "  return webhook;",
          "}",
        ].join("\n"),
        "/orig",
      );
      const before = receiver.received.length;
      await publish(t, appId, { eventType: "invoice.paid", payload: { amount: 12 } });
      await receiver.waitFor(before + 1);
      const got = receiver.received[before]!;
      expect(got.method).toBe("PUT");
      expect(got.url).toBe("/moved?src=hw");
      expect(JSON.parse(got.body)).toEqual({ kind: "invoice.paid", amount: 1200, token: "tt_secret_0123456789" });
      const headers = got.headers as Record<string, string>;
      expect(new SvixWebhook(SECRET).verify(got.body, headers)).toEqual(JSON.parse(got.body));
      expect(new StandardWebhook(SECRET.slice(6)).verify(got.body, headers)).toEqual(JSON.parse(got.body));
      await t.hw.worker.runUntilIdle();
      const [attempt] = await attemptsTo(t, appId, epId);
      expect(attempt).toMatchObject({ responseStatusCode: 200, errorCode: null });
      expect(JSON.stringify(attempt)).not.toContain("tt_secret");
    });

    it("cancel: true records a cancelled attempt and sends nothing", async () => {
      const epId = await endpointWith("skip", "export default (w) => ({ ...w, cancel: w.payload.test === true })", "/skip");
      const before = receiver.received.length;
      await publish(t, appId, { eventType: "a.b", payload: { test: true } });
      await t.hw.worker.runUntilIdle();
      const attempts = await attemptsTo(t, appId, epId);
      expect(attempts).toHaveLength(1);
      expect(attempts[0]).toMatchObject({ errorCode: "E_FUNCTION_CANCELLED", responseStatusCode: 0 });
      expect(receiver.received.slice(before).filter((r) => r.url === "/skip")).toEqual([]);
    });

    it("a URL moved onto a blocked address is refused by the SSRF policy, a non-http one as invalid; nothing leaves", async () => {
      const epId = await endpointWith("exfil", "export default (w) => ({ ...w, url: 'http://169.254.169.254/latest/meta-data/' })", "/exfil");
      await publish(t, appId, { eventType: "a.b", payload: {} });
      await t.hw.worker.runUntilIdle();
      const [attempt] = await attemptsTo(t, appId, epId);
      expect(attempt).toMatchObject({ errorCode: "E_SSRF_BLOCKED", responseStatusCode: 0 });
      const bad = await endpointWith("scheme", "export default (w) => ({ ...w, url: 'file:///etc/passwd' })", "/scheme");
      await publish(t, appId, { eventType: "a.b", payload: {} });
      await t.hw.worker.runUntilIdle();
      expect((await attemptsTo(t, appId, bad))[0]).toMatchObject({ errorCode: "E_FUNCTION_OUTPUT_INVALID", responseStatusCode: 0 });
    });

    it("records the function's failures on the attempt with stable codes, secrets masked", async () => {
      const cases: [string, string, string][] = [
        ["throws", "export default () => { throw new Error('token ' + secrets.get('TENANT_TOKEN')) }", "E_FUNCTION_ERROR"],
        ["spins", "export default () => { for (;;) {} }", "E_FUNCTION_TIMEOUT"],
        ["hoards", "export default () => { const a = []; for (;;) a.push(new Uint8Array(1e6)); }", "E_FUNCTION_MEMORY"],
        ["shapeless", "export default () => 42", "E_FUNCTION_OUTPUT_INVALID"],
        ["method", "export default (w) => ({ ...w, method: 'DELETE' })", "E_FUNCTION_OUTPUT_INVALID"],
      ];
      for (const [name, code, expected] of cases) {
        const epId = await endpointWith(name, code, `/${name}`);
        await publish(t, appId, { eventType: "a.b", payload: {} });
        await t.hw.worker.runUntilIdle();
        const [attempt] = await attemptsTo(t, appId, epId);
        expect(attempt?.errorCode, name).toBe(expected);
        expect(attempt?.response, name).not.toContain("tt_secret");
      }
      expect(t.logs()).not.toContain("tt_secret");
    });

    it("refuses a transformation naming a missing function; another organisation gets 404", async () => {
      const ep = await createEndpoint(t, appId, { url: `${receiver.url}/none` });
      const r = await t.api("PATCH", `/api/v1/app/${appId}/endpoint/${ep.id}/transformation`, { function: "nope" });
      expect(r.status).toBe(422);
      const other = await t.newOrgToken("transform-other");
      const res = await t.api("GET", `/api/v1/app/${appId}/endpoint/${ep.id}/transformation`, undefined, { authorization: `Bearer ${other}` });
      expect(res.status).toBe(404);
    });
  });
}
