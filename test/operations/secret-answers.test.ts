import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIALECTS } from "../helpers/dialects.js";
import { send } from "../helpers/ingress.js";
import { canary, putSecret } from "../helpers/integrations.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/** An API call whose answer headers matter (the TestServer helper keeps only status and body). */
async function call(t: TestServer, method: string, path: string, body?: unknown) {
  const res = await fetch(t.url + path, {
    method,
    headers: { authorization: `Bearer ${t.token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, body: text ? (JSON.parse(text) as any) : undefined };
}

for (const dialect of DIALECTS) {
  describe(`previews and attempt records mask credential headers (${dialect})`, () => {
    let t: TestServer;
    let receiver: Receiver;
    let appId: string;
    const C = {
      authorization: `Bearer ${canary("authz")}`,
      apiKey: canary("api-key"),
      xApiKey: canary("x-api-key"),
      cookie: `session=${canary("cookie")}`,
      authToken: canary("x-auth-token"),
    };

    beforeAll(async () => {
      t = await startTestServer(dialect);
      receiver = await new Receiver().start();
      appId = (await t.api("POST", "/api/v1/app", { name: "preview" })).body.id;
    });
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    const headers = () => ({ Authorization: C.authorization, "Api-Key": C.apiKey, "X-API-Key": C.xApiKey, Cookie: C.cookie, "X-Auth-Token": C.authToken, "X-Plain": "visible" });

    it("preview shows ****** for every credential header, whatever its case, and the value nowhere else", async () => {
      const ep = await t.api("POST", `/api/v1/app/${appId}/endpoint`, {
        url: `${receiver.url}/plain`,
        filterTypes: ["never.published"],
        headers: headers(),
      });
      expect(ep.status, ep.text).toBe(201);
      const read = await t.api("GET", `/api/v1/app/${appId}/endpoint/${ep.body.id}/headers`);
      expect(read.body.headers).toEqual({ "x-plain": "visible" });
      expect([...read.body.sensitive].sort()).toEqual(["api-key", "authorization", "cookie", "x-api-key", "x-auth-token"]);

      // The payload carries one credential, as a caller testing a template might paste it.
      const res = await t.api("POST", `/api/v1/app/${appId}/endpoint/${ep.body.id}/preview`, { eventType: "x.y", payload: { pasted: C.apiKey } });
      expect(res.status, res.text).toBe(200);
      for (const h of ["authorization", "api-key", "x-api-key", "cookie", "x-auth-token"]) expect(res.body.headers[h], h).toBe("******");
      expect(res.body.headers["x-plain"]).toBe("visible");
      expect(JSON.parse(res.body.body)).toEqual({ pasted: "******" });
      for (const v of Object.values(C)) expect(res.text).not.toContain(v);
    });

    it("preview masks credential headers a template sets, and a templated endpoint's URL and body", async () => {
      const ep = await t.api("POST", `/api/v1/app/${appId}/endpoint`, {
        url: `${receiver.url}/tpl`,
        filterTypes: ["never.published"],
        headers: { "Api-Key": C.apiKey },
        template: { url: `${receiver.url}/tpl?k={{payload.k}}`, headers: { "X-Access-Token": "{{payload.t}}", "X-Note": "{{payload.note}}" }, body: { k: "{{payload.k}}" } },
      });
      expect(ep.status, ep.text).toBe(201);
      const res = await t.api("POST", `/api/v1/app/${appId}/endpoint/${ep.body.id}/preview`, { eventType: "x.y", payload: { k: C.apiKey, t: "tok-from-payload", note: "plain" } });
      expect(res.status, res.text).toBe(200);
      expect(res.body.headers["api-key"]).toBe("******");
      expect(res.body.headers["x-access-token"]).toBe("******");
      expect(res.body.headers["x-note"]).toBe("plain");
      expect(res.body.url).toBe(`${receiver.url}/tpl?k=******`);
      expect(JSON.parse(res.body.body)).toEqual({ k: "******" });
      expect(res.text).not.toContain(C.apiKey);
    });

    it("the receiver gets the real values; the attempt record keeps ****** for each", async () => {
      const ep = await t.api("POST", `/api/v1/app/${appId}/endpoint`, {
        url: `${receiver.url}/real`,
        filterTypes: ["never.published"],
        headers: headers(),
        // A template makes the attempt keep the request it sent.
        template: { body: { hello: "{{payload.hello}}" } },
      });
      expect(ep.status, ep.text).toBe(201);
      const before = receiver.received.length;
      const res = await t.api("POST", `/api/v1/app/${appId}/endpoint/${ep.body.id}/call`, { eventType: "x.y", payload: { hello: "world" } });
      expect(res.status, res.text).toBe(200);
      const got = receiver.received[before]!;
      expect(got.headers.authorization).toBe(C.authorization);
      expect(got.headers["api-key"]).toBe(C.apiKey);
      expect(got.headers["x-api-key"]).toBe(C.xApiKey);
      expect(got.headers.cookie).toBe(C.cookie);
      const attempts = await t.api("GET", `/api/v1/app/${appId}/attempt/msg/${res.body.msgId}`);
      const recorded = attempts.body.data[0].request;
      for (const h of ["authorization", "api-key", "x-api-key", "cookie", "x-auth-token"]) expect(recorded.headers[h], h).toBe("******");
      expect(recorded.headers["x-plain"]).toBe("visible");
      for (const v of Object.values(C)) expect(attempts.text).not.toContain(v);
    });
  });

  describe(`an echoed secret straddling the 64 KiB response cut (${dialect})`, () => {
    const LIMIT = 64 * 1024;
    let t: TestServer;
    let receiver: Receiver;
    let appId: string;
    /** Bytes of the echoed token that land before the cut, per request path. */
    const inside = new Map<string, number>();

    beforeAll(async () => {
      t = await startTestServer(dialect);
      receiver = await new Receiver().start();
      // A platform that echoes the credential it was given, far into a long answer.
      receiver.respond = (r) => {
        const token = Buffer.from(String(r.headers.authorization).slice("Bearer ".length), "utf8");
        const before = inside.get(new URL(r.url, receiver.url).pathname)!;
        return { status: 200, body: Buffer.concat([Buffer.alloc(LIMIT - before, "a"), token, Buffer.alloc(100, "z")]) };
      };
      appId = (await t.api("POST", "/api/v1/app", { name: "cut" })).body.id;
    });
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    async function echo(name: string, token: string, before: number): Promise<{ stored: string; sync: string }> {
      await putSecret(t.api, appId, name, token);
      const path = `/${name.toLowerCase()}`;
      inside.set(path, before);
      const eventType = `cut.${name.toLowerCase()}`;
      const ep = await t.api("POST", `/api/v1/app/${appId}/endpoint`, { url: `${receiver.url}${path}`, filterTypes: [eventType], auth: { type: "bearer", tokenSecret: name }, redactResponses: true });
      expect(ep.status, ep.text).toBe(201);
      const msg = (await t.api("POST", `/api/v1/app/${appId}/msg`, { eventType, payload: {} })).body;
      await t.hw.worker.runUntilIdle();
      const attempts = await t.api("GET", `/api/v1/app/${appId}/attempt/msg/${msg.id}`);
      expect(attempts.body.data).toHaveLength(1);
      const sync = await t.api("POST", `/api/v1/app/${appId}/endpoint/${ep.body.id}/call`, { eventType, payload: {} });
      expect(sync.status, sync.text).toBe(200);
      const syncAttempt = await t.api("GET", `/api/v1/app/${appId}/attempt/msg/${sync.body.msgId}`);
      expect(syncAttempt.body.data[0].response).toBe(sync.body.body);
      return { stored: attempts.body.data[0].response, sync: sync.body.body };
    }

    it("masks the part of the secret before the cut, in the stored attempt and the /call answer", async () => {
      const token = canary("cut");
      const { stored, sync } = await echo("CUT_TOKEN", token, 12);
      for (const text of [stored, sync]) {
        expect(text).toBe(`${"a".repeat(LIMIT - 12)}******`);
        expect(text).not.toContain(token.slice(0, 12));
      }
    });

    it("masks it too when the cut falls inside a multi-byte character of the secret", async () => {
      const ascii = canary("mb");
      const token = `${ascii}ééé`;
      // The cut keeps the ASCII part, the first é, and the first byte of the second é.
      const before = ascii.length + 2 + 1;
      const { stored, sync } = await echo("MB_TOKEN", token, before);
      for (const text of [stored, sync]) {
        expect(text).toBe(`${"a".repeat(LIMIT - before)}******`);
        expect(text).not.toContain(ascii);
      }
    });
  });

  describe(`answers that carry a secret are never cached (${dialect})`, () => {
    let t: TestServer;
    let receiver: Receiver;
    let appId: string;

    beforeAll(async () => {
      t = await startTestServer(dialect, { allowSecretReveal: true });
      receiver = await new Receiver().start();
      appId = (await t.api("POST", "/api/v1/app", { name: "no-store" })).body.id;
    });
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    const expectNoStore = (res: { status: number; headers: Headers; text: string }, what: string) => {
      expect(res.headers.get("cache-control"), `${what}: ${res.status} ${res.text}`).toBe("no-store");
      expect(res.headers.get("pragma"), what).toBe("no-cache");
    };

    it("sends Cache-Control: no-store with every endpoint secret it shows", async () => {
      const created = await call(t, "POST", `/api/v1/app/${appId}/endpoint`, { url: `${receiver.url}/a` });
      expect(created.status).toBe(201);
      expect(created.body.secret).toMatch(/^whsec_/);
      expectNoStore(created, "endpoint create");

      const ed = await call(t, "POST", `/api/v1/app/${appId}/endpoint`, { url: `${receiver.url}/ed`, signatureScheme: "ed25519" });
      expect(ed.status).toBe(201);
      expect(ed.body.secret).toBeTruthy();
      expectNoStore(ed, "ed25519 endpoint create");

      const rotated = await call(t, "POST", `/api/v1/app/${appId}/endpoint/${created.body.id}/secret/rotate`, {});
      expect(rotated.status).toBe(200);
      expect(rotated.body.key).toMatch(/^whsec_/);
      expectNoStore(rotated, "secret rotate");

      const revealed = await call(t, "GET", `/api/v1/app/${appId}/endpoint/${created.body.id}/secret`);
      expect(revealed.status).toBe(200);
      expect(revealed.body.key).toBe(rotated.body.key);
      expectNoStore(revealed, "secret reveal");
    });

    it("sends Cache-Control: no-store with agent secrets, bucket tokens, output signing secrets and stored requests", async () => {
      const bucket = await call(t, "POST", "/api/v1/bucket", { name: "nb", auth: { type: "token" } });
      expect(bucket.status, bucket.text).toBe(201);
      expect(bucket.body.token).toBeTruthy();
      expectNoStore(bucket, "bucket create");

      const repatched = await call(t, "PATCH", `/api/v1/bucket/${bucket.body.id}`, { auth: { type: "token" } });
      expect(repatched.status, repatched.text).toBe(200);
      expect(repatched.body.token).toBeTruthy();
      expectNoStore(repatched, "bucket patch (new token)");

      const agent = await call(t, "POST", "/api/v1/agent-token", { name: "a", buckets: [bucket.body.id] });
      expect(agent.status, agent.text).toBe(201);
      expect(agent.body.secret).toBeTruthy();
      expectNoStore(agent, "agent token create");

      const output = await call(t, "POST", `/api/v1/bucket/${bucket.body.id}/output`, { type: "url", url: `${receiver.url}/o`, resign: true });
      expect(output.status, output.text).toBe(201);
      expect(output.body.signingSecret).toMatch(/^whsec_/);
      expectNoStore(output, "output create");

      const plain = await call(t, "POST", `/api/v1/bucket/${bucket.body.id}/output`, { type: "url", url: `${receiver.url}/p` });
      const resigned = await call(t, "PATCH", `/api/v1/bucket/${bucket.body.id}/output/${plain.body.id}`, { resign: true });
      expect(resigned.status, resigned.text).toBe(200);
      expect(resigned.body.signingSecret).toMatch(/^whsec_/);
      expectNoStore(resigned, "output patch (new signing secret)");

      const input = await call(t, "POST", `/api/v1/bucket/${bucket.body.id}/input`, { name: "in" });
      expect(input.status, input.text).toBe(201);
      const inbound = await send(t.url, `/in/${input.body.id}`, { body: "{}", headers: { "content-type": "application/json", authorization: `Bearer ${repatched.body.token}` } });
      expect(inbound.status, inbound.text).toBe(200);
      const list = await call(t, "GET", `/api/v1/bucket/${bucket.body.id}/request`);
      const stored = await call(t, "GET", `/api/v1/bucket/${bucket.body.id}/request/${list.body.data[0].id}`);
      expect(stored.status, stored.text).toBe(200);
      expectNoStore(stored, "stored request");
    });
  });
}
