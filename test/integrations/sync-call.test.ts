import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/clock/index.js";
import { DIALECTS } from "../helpers/dialects.js";
import { attemptsOf, attemptsTo, closedPort, createApp, createEndpoint, pendingJobs } from "../helpers/delivery.js";
import { canary, putSecret } from "../helpers/integrations.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const SIGNING_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

for (const dialect of DIALECTS) {
  describe(`synchronous calls (${dialect})`, () => {
    let t: TestServer;
    let clock: FakeClock;
    let receiver: Receiver;
    let appId: string;
    const TOKEN = canary("ivr");

    beforeAll(async () => {
      clock = new FakeClock(Date.now());
      t = await startTestServer(dialect, { retrySchedule: [1_000, 1_000] }, { clock, random: () => 0.5 });
      receiver = await new Receiver().start();
      receiver.respond = (r) => {
        const path = new URL(r.url, receiver.url).pathname;
        if (path.startsWith("/ivr")) {
          const { caller = "" } = JSON.parse(r.body) as { caller?: string };
          return { status: 200, headers: { "content-type": "application/json", "x-decision": "route" }, body: JSON.stringify({ action: "route", queue: caller.startsWith("+44") ? "uk-sales" : "sales" }) };
        }
        if (path === "/broken") return { status: 500, body: "upstream exploded" };
        if (path === "/slow") return { status: 200, body: "too late", delayMs: 10_000 };
        if (path === "/unauthorised") return { status: 401, body: "bad token" };
        if (path === "/forbidden") return { status: 403, body: "nope" };
        return undefined;
      };
      appId = await createApp(t, "ivr");
      await putSecret(t.api, appId, "IVR_TOKEN", TOKEN);
    });
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    const call = (endpointId: string, payload: Record<string, unknown> = {}) =>
      t.api("POST", `/api/v1/app/${appId}/endpoint/${endpointId}/call`, { eventType: "call.incoming", payload });
    /** An endpoint that never receives published messages, so only /call reaches it. */
    const endpoint = (path: string, extra: Record<string, unknown> = {}) =>
      createEndpoint(t, appId, { url: `${receiver.url}${path}`, filterTypes: ["never.published"], secret: SIGNING_SECRET, ...extra });

    it("returns the endpoint's answer; the request is templated, signed and recorded as a sync attempt", async () => {
      const ep = await endpoint("/ivr", {
        template: { url: `${receiver.url}/ivr/{{payload.line}}`, headers: { "X-Ivr-Token": "{{secrets.IVR_TOKEN}}" }, body: { caller: "{{payload.from}}", event: "{{event.type}}" } },
      });
      const before = receiver.received.length;
      const res = await call(ep.id, { from: "+441234567", line: "main" });
      expect(res.status, res.text).toBe(200);
      expect(Object.keys(res.body).sort()).toEqual(["attemptId", "body", "durationMs", "headers", "msgId", "status"]);
      expect(res.body.status).toBe(200);
      expect(JSON.parse(res.body.body)).toEqual({ action: "route", queue: "uk-sales" });
      expect(res.body.headers).toMatchObject({ "content-type": "application/json", "x-decision": "route" });
      for (const hop of ["connection", "keep-alive", "transfer-encoding"]) expect(res.body.headers[hop]).toBeUndefined();
      expect(res.body.durationMs).toBeGreaterThanOrEqual(0);

      expect(receiver.received.length).toBe(before + 1);
      const r = receiver.received[before]!;
      expect(r.url).toBe("/ivr/main");
      expect(r.headers["x-ivr-token"]).toBe(TOKEN);
      expect(r.headers["webhook-id"]).toBe(res.body.msgId);
      expect(new Webhook(SIGNING_SECRET).verify(r.body, r.headers as Record<string, string>)).toEqual({ caller: "+441234567", event: "call.incoming" });

      const attempts = await attemptsOf(t, appId, res.body.msgId);
      expect(attempts).toHaveLength(1);
      expect(attempts[0]).toMatchObject({ id: res.body.attemptId, endpointId: ep.id, triggerType: 2, statusText: "success", responseStatusCode: 200 });
      expect((attempts[0] as any).request.headers["x-ivr-token"]).toBe("******");
      expect(res.text).not.toContain(TOKEN);
      expect(await pendingJobs(t)).toBe(0);
    });

    it("is never retried: a 500 comes back as the answer, with exactly one attempt and no job left", async () => {
      const ep = await endpoint("/broken");
      const before = receiver.received.length;
      const res = await call(ep.id, { n: 1 });
      expect(res.status, res.text).toBe(200);
      expect(res.body).toMatchObject({ status: 500, body: "upstream exploded" });
      expect(await pendingJobs(t)).toBe(0);
      clock.advance(60_000);
      await t.hw.worker.runUntilIdle();
      expect(receiver.received.length).toBe(before + 1);
      const attempts = await attemptsOf(t, appId, res.body.msgId);
      expect(attempts).toHaveLength(1);
      expect(attempts[0]).toMatchObject({ statusText: "fail", errorCode: "E_HTTP_STATUS", responseStatusCode: 500, response: "upstream exploded", triggerType: 2 });
    });

    it("gives up at the endpoint's timeoutMs with 504 E_TIMEOUT, and keeps serving meanwhile", async () => {
      const slow = await endpoint("/slow", { timeoutMs: 300 });
      expect(slow.timeoutMs).toBe(300);
      const fast = await endpoint("/ivr");
      const started = Date.now();
      let slowDone = false;
      const pending = call(slow.id).then((res) => {
        slowDone = true;
        return res;
      });
      // Another call is answered while the slow one waits.
      const quick = await call(fast.id, { from: "+1555" });
      expect(quick.body.status).toBe(200);
      expect(slowDone).toBe(false);
      const res = await pending;
      const elapsed = Date.now() - started;
      expect(res.status, res.text).toBe(504);
      expect(res.body.code).toBe("E_TIMEOUT");
      // 300 ms, not the 30 s server default (generous bounds: this is not a benchmark).
      expect(elapsed).toBeGreaterThanOrEqual(250);
      expect(elapsed).toBeLessThan(5_000);
      const attempts = await attemptsTo(t, appId, slow.id);
      expect(attempts).toHaveLength(1);
      expect(attempts[0]).toMatchObject({ id: res.body.attemptId, errorCode: "E_TIMEOUT", responseStatusCode: 0, triggerType: 2 });
      expect((await fetch(`${t.url}/health`)).status).toBe(200);
      expect((await call(fast.id, { from: "+1555" })).body.status).toBe(200);
    });

    it("refuses a timeoutMs over 30 s when the endpoint is saved", async () => {
      const res = await t.api("POST", `/api/v1/app/${appId}/endpoint`, { url: `${receiver.url}/ivr`, timeoutMs: 30_001 });
      expect(res.status).toBe(422);
      expect(res.body.detail[0].loc).toEqual(["body", "timeoutMs"]);
    });

    it.each([
      ["/unauthorised", 401],
      ["/forbidden", 403],
    ])("records a %s answer as E_ENDPOINT_AUTH", async (path, status) => {
      const ep = await endpoint(path, { auth: { type: "bearer", tokenSecret: "IVR_TOKEN" } });
      const res = await call(ep.id);
      expect(res.status, res.text).toBe(200);
      expect(res.body.status).toBe(status);
      const [attempt] = await attemptsOf(t, appId, res.body.msgId);
      expect(attempt).toMatchObject({ statusText: "fail", errorCode: "E_ENDPOINT_AUTH", responseStatusCode: status });
    });

    it("answers 502 with the error code when the endpoint cannot be reached, and 409 for a disabled endpoint", async () => {
      const down = await createEndpoint(t, appId, { url: `http://127.0.0.1:${await closedPort()}/down`, filterTypes: ["never.published"] });
      const res = await call(down.id);
      expect(res.status, res.text).toBe(502);
      expect(res.body).toMatchObject({ code: "E_CONNECT" });
      expect((await attemptsTo(t, appId, down.id))[0]?.errorCode).toBe("E_CONNECT");
      const off = await endpoint("/ivr", { disabled: true });
      const disabled = await call(off.id);
      expect(disabled.status).toBe(409);
      expect(disabled.body.code).toBe("E_ENDPOINT_DISABLED");
    });
  });
}
