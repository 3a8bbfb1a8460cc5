import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp, createEndpoint, publish } from "../helpers/delivery.js";
import { DIALECTS } from "../helpers/dialects.js";
import { send, setup } from "../helpers/ingress.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

type Line = Record<string, unknown> & { msg: string; level: number };

function lines(t: TestServer): Line[] {
  return t
    .logs()
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Line);
}

/** Waits (event-driven by the server's own progress; the bound only turns a hang into a failure) for a matching line. */
async function lineWhere(t: TestServer, pred: (l: Line) => boolean): Promise<Line> {
  for (let i = 0; i < 1500; i++) {
    const hit = lines(t).find(pred);
    if (hit) return hit;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no such log line; got:\n${t.logs()}`);
}

for (const dialect of DIALECTS) {
  describe(`logs people can read (${dialect})`, () => {
    let t: TestServer;
    let receiver: Receiver;

    beforeAll(async () => {
      t = await startTestServer(dialect, { logLevel: "info" });
      receiver = await new Receiver().start();
    });
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    it("writes one line per API request with the route pattern, status, time and token id, never the token", async () => {
      const appId = await createApp(t, "logged");
      const line = await lineWhere(t, (l) => l.msg === "api request" && l.method === "POST" && l.route === "/api/v1/app");
      expect(line).toMatchObject({ component: "api", status: 201, level: 30 });
      expect(line.ms).toEqual(expect.any(Number));
      expect(line.tokenId).toMatch(/^tok_/);

      await t.api("GET", `/api/v1/app/${appId}`);
      const get = await lineWhere(t, (l) => l.msg === "api request" && l.method === "GET" && String(l.route).includes("/app/"));
      // The pattern, not the URL: ids in paths are not what a reader groups by.
      expect(get.route).toBe("/api/v1/app/:app_id");
      expect(get.status).toBe(200);

      const missing = await t.api("GET", "/api/v1/app/app_nope");
      expect(missing.status).toBe(404);
      expect(await lineWhere(t, (l) => l.msg === "api request" && l.status === 404)).toMatchObject({ route: "/api/v1/app/:app_id", tokenId: line.tokenId });
      expect(t.logs()).not.toContain(t.token);
      expect(t.logs()).not.toContain(t.token.slice(4, 30));
    });

    it("keeps strangers' 401s out of the default log level, whatever they send as a token", async () => {
      const guess = "hwk_guessed_0123456789abcdefghijklmnop";
      for (let i = 0; i < 20; i++) {
        const res = await fetch(`${t.url}/api/v1/app`, { headers: { authorization: `Bearer ${guess}` } });
        expect(res.status).toBe(401);
      }
      await t.api("GET", "/api/v1/app?after401s=1");
      await lineWhere(t, (l) => l.msg === "api request" && l.method === "GET" && l.route === "/api/v1/app" && l.status === 200);
      expect(lines(t).filter((l) => l.status === 401)).toEqual([]);
      expect(t.logs()).not.toContain(guess);
    });

    it("writes one line per delivery attempt with its ids, outcome, status and error code", async () => {
      const appId = await createApp(t, "deliveries");
      const ok = await createEndpoint(t, appId, { url: `${receiver.url}/ok` });
      receiver.respond = (r) => (r.url === "/fail" ? { status: 500 } : undefined);
      const failing = await createEndpoint(t, appId, { url: `${receiver.url}/fail` });
      const msg = await publish(t, appId, { eventType: "order.paid", payload: { n: 1 } });
      await receiver.waitFor(2);

      const good = await lineWhere(t, (l) => l.msg === "delivery attempt succeeded" && l.endpointId === ok.id);
      expect(good).toMatchObject({ component: "delivery", msgId: msg.id, appId, outcome: "success", status: 200, errorCode: null, level: 30 });
      expect(good.attemptId).toMatch(/^atmpt_/);
      expect(good.ms).toEqual(expect.any(Number));

      const bad = await lineWhere(t, (l) => l.msg === "delivery attempt failed" && l.endpointId === failing.id);
      expect(bad).toMatchObject({ msgId: msg.id, outcome: "failure", status: 500, errorCode: "E_HTTP_STATUS", willRetry: true, level: 40 });
      expect(t.logs()).not.toContain(ok.secret);
      expect(t.logs()).not.toContain(failing.secret);
    });

    it("writes one line per accepted inbound request and per forward; refusals only at debug", async () => {
      receiver.respond = () => undefined;
      const { input, outputs } = await setup(t, { bucket: { auth: { type: "token", token: "bucket-token-canary-0a9b8c7d6e" } }, outputs: [`${receiver.url}/fwd`] });
      const refused = await send(t.url, `/in/${input.id}`, { method: "POST", body: "{}", headers: { "content-type": "application/json" } });
      expect(refused.status).toBe(401);
      const accepted = await send(t.url, `/in/${input.id}?token=bucket-token-canary-0a9b8c7d6e`, { method: "POST", body: "{}", headers: { "content-type": "application/json" } });
      expect(accepted.status).toBe(200);

      const inLine = await lineWhere(t, (l) => l.msg === "inbound request accepted" && l.inputId === input.id);
      expect(inLine).toMatchObject({ component: "ingress", outcome: "accepted", status: 200, size: 2, level: 30 });
      expect(inLine.ms).toEqual(expect.any(Number));
      const fwd = await lineWhere(t, (l) => l.msg === "forward attempt succeeded" && l.outputId === outputs[0].id);
      expect(fwd).toMatchObject({ outcome: "success", status: 200 });
      expect(fwd.requestId).toEqual(expect.any(String));

      expect(lines(t).filter((l) => l.msg === "inbound request refused")).toEqual([]);
      expect(t.logs()).not.toContain("bucket-token-canary-0a9b8c7d6e");
    });
  });
}

describe("refusals at --log-level debug", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer(DIALECTS[0]!, { logLevel: "debug" });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it("shows each refused inbound request and each 401, with no token in them", async () => {
    const { input } = await setup(t, { bucket: { auth: { type: "token", token: "bucket-token-canary-1f2e3d4c5b" } } });
    const refused = await send(t.url, `/in/${input.id}?token=wrong-token-canary-99`, { method: "POST", body: "{}", headers: { "content-type": "application/json" } });
    expect(refused.status).toBe(401);
    expect(await lineWhere(t, (l) => l.msg === "inbound request refused")).toMatchObject({ inputId: input.id, outcome: "rejected", status: 401, errorCode: "E_UNAUTHORIZED", level: 20 });
    await fetch(`${t.url}/api/v1/app`, { headers: { authorization: "Bearer hwk_wrong_guess_canary_42" } });
    expect(await lineWhere(t, (l) => l.msg === "api request" && l.status === 401)).toMatchObject({ route: "/api/v1/app", tokenId: null, level: 20 });
    expect(t.logs()).not.toContain("wrong-token-canary-99");
    expect(t.logs()).not.toContain("hwk_wrong_guess_canary_42");
    expect(t.logs()).not.toContain(t.token);
  });
});
