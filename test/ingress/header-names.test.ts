import { createHmac } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentBucket, createAgentToken, spawnAgent, until, type AgentProcess } from "../helpers/agents.js";
import { DIALECTS } from "../helpers/dialects.js";
import { createInput, getRequest, listRequests, RawReceiver, send, setup, type Captured } from "../helpers/ingress.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/** Header names that are also properties every plain object inherits. Computed keys: own properties, not a prototype. */
const HOSTILE: Record<string, string> = {
  ["__proto__"]: "x-proto",
  ["constructor"]: "y-ctor",
  ["prototype"]: "p-proto",
  ["toString"]: "t-str",
  ["hasOwnProperty"]: "h-own",
  ["valueOf"]: "v-of",
};

/** Pairs as they arrived, names lower-cased (HTTP names are case-insensitive). */
function pairs(r: Captured): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < r.rawHeaders.length; i += 2) out.push([r.rawHeaders[i]!.toLowerCase(), r.rawHeaders[i + 1]!]);
  return out;
}

/**
 * What the JSON API can carry: its parser refuses any body holding a `__proto__` key (Fastify's
 * prototype-poisoning guard), so that name is tested as refused, not as stored.
 */
const API_NAMES = Object.fromEntries(Object.entries(HOSTILE).filter(([k]) => k !== "__proto__"));

function expectHostileIntact(got: [string, string][], what: string, names: Record<string, string> = HOSTILE) {
  for (const [name, value] of Object.entries(names)) {
    expect(got.filter(([n]) => n === name.toLowerCase()), `${what}: ${name}`).toEqual([[name.toLowerCase(), value]]);
  }
}

for (const dialect of DIALECTS) {
  describe(`header names that are object properties (${dialect})`, () => {
    let t: TestServer;
    let receiver: RawReceiver;

    beforeAll(async () => {
      t = await startTestServer(dialect);
      receiver = await new RawReceiver().start();
    });
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    it("forwards __proto__, constructor, toString… headers of an inbound request intact, also when inspected and replayed", async () => {
      const { bucket, input } = await setup(t, { outputs: [`${receiver.url}/inbound`] });
      const res = await send(t.url, `/in/${input.id}`, { body: '{"a":1}', headers: { "content-type": "application/json", ...HOSTILE, "x-normal": "n" } });
      expect(res.status, res.text).toBe(200);
      await t.hw.worker.runUntilIdle();
      const first = receiver.at("/inbound");
      expect(first).toHaveLength(1);
      expectHostileIntact(pairs(first[0]!), "forwarded");
      expect(first[0]!.headers["x-normal"]).toBe("n");

      const [summary] = await listRequests(t, bucket.id);
      const stored = await getRequest(t, bucket.id, summary.id);
      expectHostileIntact((stored.request.headers as [string, string][]).map(([n, v]) => [n.toLowerCase(), v]), "inspected");

      const replay = await t.api("POST", `/api/v1/bucket/${bucket.id}/request/${summary.id}/replay`);
      expect(replay.status, replay.text).toBe(202);
      await t.hw.worker.runUntilIdle();
      const again = receiver.at("/inbound");
      expect(again).toHaveLength(2);
      expectHostileIntact(pairs(again[1]!), "replayed");
    });

    it("keeps endpoint custom headers named constructor, toString… through the API and delivers them intact", async () => {
      const app = (await t.api("POST", "/api/v1/app", { name: "names" })).body;
      const ep = await t.api("POST", `/api/v1/app/${app.id}/endpoint`, { url: `${receiver.url}/custom`, filterTypes: ["never.published"], headers: API_NAMES });
      expect(ep.status, ep.text).toBe(201);
      const read = await t.api("GET", `/api/v1/app/${app.id}/endpoint/${ep.body.id}/headers`);
      expect(read.status, read.text).toBe(200);
      expect(read.body.headers).toEqual(Object.fromEntries(Object.entries(API_NAMES).map(([k, v]) => [k.toLowerCase(), v])));

      const call = await t.api("POST", `/api/v1/app/${app.id}/endpoint/${ep.body.id}/call`, { eventType: "a.b", payload: {} });
      expect(call.status, call.text).toBe(200);
      expectHostileIntact(pairs(receiver.at("/custom").at(-1)!), "custom headers", API_NAMES);

      // PATCH removes one by name and adds another; the rest stay as they were.
      const patched = await t.api("PATCH", `/api/v1/app/${app.id}/endpoint/${ep.body.id}/headers`, { headers: { toString: null, isPrototypeOf: "i-p" } });
      expect(patched.status, patched.text).toBe(204);
      const after = (await t.api("GET", `/api/v1/app/${app.id}/endpoint/${ep.body.id}/headers`)).body.headers;
      expect(Object.keys(after).sort()).toEqual(["constructor", "hasownproperty", "isprototypeof", "prototype", "valueof"]);

      // A template header with such a name renders as a header, not as the inherited function.
      const tpl = await t.api("POST", `/api/v1/app/${app.id}/endpoint`, { url: `${receiver.url}/tpl`, filterTypes: ["never.published"], template: { headers: { constructor: "{{event.type}}", toString: "t" } } });
      expect(tpl.status, tpl.text).toBe(201);
      expect((await t.api("POST", `/api/v1/app/${app.id}/endpoint/${tpl.body.id}/call`, { eventType: "a.b", payload: {} })).status).toBe(200);
      expectHostileIntact(pairs(receiver.at("/tpl").at(-1)!), "template headers", { constructor: "a.b", toString: "t" });

      // `__proto__` cannot travel in a JSON body here: refused with a clear 400, never half-stored.
      const proto = await t.api("PUT", `/api/v1/app/${app.id}/endpoint/${ep.body.id}/headers`, '{"headers":{"__proto__":"x"}}');
      expect(proto.status, proto.text).toBe(400);
      expect(proto.body.code).toMatch(/^E_/);
    });

    it("returns a destination's __proto__ and constructor answer headers intact from a sync /call", async () => {
      receiver.respond = (r) => (r.url === "/answer" ? { status: 200, body: "fine", headers: { ["__proto__"]: "z-proto", ["constructor"]: "c-ctor" } } : undefined);
      const app = (await t.api("POST", "/api/v1/app", { name: "answer" })).body;
      const ep = await t.api("POST", `/api/v1/app/${app.id}/endpoint`, { url: `${receiver.url}/answer`, filterTypes: ["never.published"] });
      const res = await t.api("POST", `/api/v1/app/${app.id}/endpoint/${ep.body.id}/call`, { eventType: "a.b", payload: {} });
      expect(res.status, res.text).toBe(200);
      // JSON.parse keeps `__proto__` as an own property, as the answer carried it.
      expect(Object.getOwnPropertyDescriptor(res.body.headers, "__proto__")?.value).toBe("z-proto");
      expect(res.body.headers.constructor).toBe("c-ctor");
      receiver.respond = () => undefined;
    });

    it("verifies a signature in a header named constructor: missing is a 401, not a crash; present and right is accepted", async () => {
      const SECRET = "hmac-secret-for-constructor-header";
      const { bucket } = await setup(t);
      const input = await createInput(t, bucket.id, { verification: { type: "hmac-sha256", secret: SECRET, header: "constructor" } });
      const body = '{"signed":true}';
      const missing = await send(t.url, `/in/${input.id}`, { body, headers: { "content-type": "application/json" } });
      expect(missing.status, missing.text).toBe(401);
      expect(missing.json.code).toBe("E_SIGNATURE_INVALID");
      const signed = await send(t.url, `/in/${input.id}`, { body, headers: { "content-type": "application/json", constructor: createHmac("sha256", SECRET).update(body).digest("hex") } });
      expect(signed.status, signed.text).toBe(200);
    });
  });
}

for (const dialect of DIALECTS) {
  describe(`header names that are object properties, through an agent (${dialect})`, () => {
    let t: TestServer;
    let service: RawReceiver;
    let agent: AgentProcess | undefined;
    let input: any;

    beforeAll(async () => {
      t = await startTestServer(dialect);
      service = await new RawReceiver().start();
      ({ input } = await agentBucket(t.api, "names"));
      const token = await createAgentToken(t.api, { name: "names", buckets: ["names"], mode: "forward" });
      agent = spawnAgent({ server: t.url, key: token.key, secret: token.secret, bucket: "names", forwardTo: `${service.url}/internal` });
      await agent.waitConnected();
    }, 60_000);
    afterAll(async () => {
      await agent?.stop();
      await service?.stop();
      await t?.stop();
    });

    it("the agent hands __proto__, constructor, toString… headers to the internal service intact", async () => {
      const res = await send(t.url, `/in/${input.id}`, { body: "{}", headers: { "content-type": "application/json", ...HOSTILE } });
      expect(res.status, res.text).toBe(200);
      const got = await until("the internal service to receive the webhook", () => service.received[0]);
      expectHostileIntact(pairs(got), "through the agent");
    });
  });
}
