import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIALECTS } from "../helpers/dialects.js";
import { Receiver, type Received } from "../helpers/receiver.js";
import {
  canary,
  databaseText,
  dropStorage,
  gatewaySecrets,
  leakForms,
  newStorage,
  putSecret,
  startChildGateway,
  type Api,
  type ChildGateway,
  type StorageLocation,
} from "../helpers/integrations.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const USERNAME = "crm-user";

/** Polls `fn` until it returns a value, for results a child process records asynchronously. */
async function eventually<T>(fn: () => Promise<T | undefined>, what: string, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function attemptsOf(api: Api, appId: string, msgId: string): Promise<any[]> {
  const res = await api("GET", `/api/v1/app/${appId}/attempt/msg/${msgId}`);
  expect(res.status, res.text).toBe(200);
  return res.body.data;
}

for (const dialect of DIALECTS) {
  describe(`canary secrets reach the receiver and nothing else (${dialect})`, () => {
    let loc: StorageLocation;
    let gw: ChildGateway;
    let receiver: Receiver;
    let appId: string;
    /** Every text an API call answered, to search for canaries at the end. */
    const answers: string[] = [];
    const call: Api = async (method, path, body) => {
      const res = await gw.api(method, path, body);
      answers.push(res.text);
      return res;
    };

    // Distinct per use, with characters that each place has to encode.
    const C = {
      path: `${canary("path")} a/b+c`,
      urlQuery: `${canary("urlq")}&x=1`,
      query: `${canary("query")} a&b=c+d`,
      header: `${canary("header")}+/=`,
      body: `${canary("body")} "q" \\ s`,
      basic: `${canary("basic")}:colon ok`,
      bearer: canary("bearer"),
      customHeader: canary("customhdr"),
      queryAuth: `${canary("queryauth")}/=`,
    };
    const needles = () => Object.entries(C).flatMap(([k, v]) => leakForms(v).map((f) => [k, f] as const)).concat(leakForms(`${USERNAME}:${C.basic}`).map((f) => ["basic-credential", f] as const));

    beforeAll(async () => {
      loc = newStorage(dialect);
      receiver = await new Receiver().start();
      const { adminToken, masterKey } = gatewaySecrets();
      gw = await startChildGateway(loc, { adminToken, masterKey });
      const app = await call("POST", "/api/v1/app", { name: "canary" });
      expect(app.status, app.text).toBe(201);
      appId = app.body.id;
      const names: Record<keyof typeof C, string> = {
        path: "PATH_TOKEN",
        urlQuery: "URL_QUERY_TOKEN",
        query: "QUERY_TOKEN",
        header: "HEADER_TOKEN",
        body: "BODY_TOKEN",
        basic: "BASIC_PASSWORD",
        bearer: "BEARER_TOKEN",
        customHeader: "CUSTOM_HEADER_TOKEN",
        queryAuth: "QUERY_AUTH_TOKEN",
      };
      for (const [k, name] of Object.entries(names)) await putSecret(call, appId, name, C[k as keyof typeof C]);
    });
    afterAll(async () => {
      await gw?.stop();
      await receiver?.stop();
      if (loc) await dropStorage(loc);
    });

    let full: { id: string };
    const variants: { id: string; kind: string }[] = [];

    it("delivers every canary intact: URL path, URL query, template query, header, body and basic auth", async () => {
      const created = await call("POST", `/api/v1/app/${appId}/endpoint`, {
        url: `${receiver.url}/unused`,
        filterTypes: ["ticket.created"],
        // Plain http: the opt-out only makes the server log about this endpoint, which the log check needs.
        tlsVerify: false,
        template: {
          method: "PUT",
          url: `${receiver.url}/hook/{{secrets.PATH_TOKEN}}/in?sig={{secrets.URL_QUERY_TOKEN}}`,
          query: { key: "{{secrets.QUERY_TOKEN}}", ev: "{{event.type}}" },
          headers: { "X-Api-Key": "Token {{secrets.HEADER_TOKEN}}", "X-Ticket": "T-{{payload.id}}" },
          body: { auth: "{{secrets.BODY_TOKEN}}", note: "id {{payload.id}} by {{secrets.BODY_TOKEN}}", id: "{{payload.id}}" },
        },
        auth: { type: "basic", username: USERNAME, passwordSecret: "BASIC_PASSWORD" },
      });
      expect(created.status, created.text).toBe(201);
      full = created.body;
      const msg = await call("POST", `/api/v1/app/${appId}/msg`, { eventType: "ticket.created", payload: { id: 42 } });
      expect(msg.status, msg.text).toBe(202);
      await receiver.waitFor(1);
      const r = receiver.received[0]!;
      const url = new URL(r.url, receiver.url);
      expect(r.method).toBe("PUT");
      expect(url.pathname.split("/").map(decodeURIComponent)).toEqual(["", "hook", C.path, "in"]);
      expect([...url.searchParams]).toEqual([
        ["sig", C.urlQuery],
        ["key", C.query],
        ["ev", "ticket.created"],
      ]);
      expect(r.headers["x-api-key"]).toBe(`Token ${C.header}`);
      expect(r.headers["x-ticket"]).toBe("T-42");
      expect(r.headers.authorization).toBe(`Basic ${Buffer.from(`${USERNAME}:${C.basic}`).toString("base64")}`);
      expect(JSON.parse(r.body)).toEqual({ auth: C.body, note: `id 42 by ${C.body}`, id: 42 });

      // The attempt keeps the request as sent, with ****** wherever a secret was.
      const [attempt] = await eventually(async () => {
        const list = await attemptsOf(call, appId, msg.body.id);
        return list.length > 0 ? list : undefined;
      }, "the attempt");
      expect(attempt.statusText).toBe("success");
      expect(attempt.url).toBe(`${receiver.url}/hook/******/in?sig=******&key=******&ev=ticket.created`);
      expect(attempt.request.method).toBe("PUT");
      expect(attempt.request.url).toBe(attempt.url);
      expect(attempt.request.headers).toMatchObject({ authorization: "******", "x-api-key": "******", "x-ticket": "T-42" });
      expect(JSON.parse(attempt.request.body)).toEqual({ auth: "******", note: "id 42 by ******", id: 42 });
    });

    it.each([
      ["bearer", { type: "bearer", tokenSecret: "BEARER_TOKEN" }, (r: Received) => expect(r.headers.authorization).toBe(`Bearer ${C.bearer}`)],
      ["header", { type: "header", name: "X-Crm-Key", valueSecret: "CUSTOM_HEADER_TOKEN" }, (r: Received) => expect(r.headers["x-crm-key"]).toBe(C.customHeader)],
      ["query", { type: "query", name: "api_key", valueSecret: "QUERY_AUTH_TOKEN" }, (r: Received) => expect(new URL(r.url, receiver.url).searchParams.get("api_key")).toBe(C.queryAuth)],
    ])("delivers %s auth intact and records it masked", async (kind, auth, check) => {
      const created = await call("POST", `/api/v1/app/${appId}/endpoint`, { url: `${receiver.url}/auth/${kind}?fixed=1`, auth, filterTypes: [`auth.${kind}`] });
      expect(created.status, created.text).toBe(201);
      // A credential in the URL ends up in proxy and server logs: allowed, with a warning.
      expect((created.body.warnings ?? []).map((w: { code: string }) => w.code)).toEqual(kind === "query" ? ["E_AUTH_IN_QUERY"] : []);
      variants.push({ id: created.body.id, kind });
      const before = receiver.received.length;
      const msg = await call("POST", `/api/v1/app/${appId}/msg`, { eventType: `auth.${kind}`, payload: { kind } });
      await receiver.waitFor(before + 1);
      const r = receiver.received[before]!;
      expect(new URL(r.url, receiver.url).pathname).toBe(`/auth/${kind}`);
      check(r);
      expect(JSON.parse(r.body)).toEqual({ kind });
      const [attempt] = await eventually(async () => {
        const list = await attemptsOf(call, appId, msg.body.id);
        return list.length > 0 ? list : undefined;
      }, "the attempt");
      if (kind === "query") expect(attempt.url).toBe(`${receiver.url}/auth/query?fixed=1&api_key=******`);
      else expect(attempt.url).toBe(`${receiver.url}/auth/${kind}?fixed=1`);
      if (kind === "bearer") expect(attempt.request.headers.authorization).toBe("******");
      if (kind === "header") expect(attempt.request.headers["x-crm-key"]).toBe("******");
    });

    it("previews, tests and calls without revealing a secret", async () => {
      const before = receiver.received.length;
      const preview = await call("POST", `/api/v1/app/${appId}/endpoint/${full.id}/preview`, { eventType: "ticket.created", payload: { id: 7 } });
      expect(preview.status, preview.text).toBe(200);
      expect(preview.body.url).toBe(`${receiver.url}/hook/******/in?sig=******&key=******&ev=ticket.created`);
      expect(preview.body.headers).toMatchObject({ authorization: "Basic ******", "x-api-key": "Token ******" });
      expect(JSON.parse(preview.body.body)).toEqual({ auth: "******", note: "id 7 by ******", id: 7 });
      expect(receiver.received.length).toBe(before);
      for (const v of variants) {
        const p = await call("POST", `/api/v1/app/${appId}/endpoint/${v.id}/preview`, { eventType: "a.b", payload: {} });
        expect(p.status, p.text).toBe(200);
      }
      const test = await call("POST", `/api/v1/app/${appId}/endpoint/${full.id}/test`, {});
      expect(test.status, test.text).toBe(200);
      expect(test.body.url).toContain("/hook/******/in");
      const sync = await call("POST", `/api/v1/app/${appId}/endpoint/${full.id}/call`, { eventType: "ticket.created", payload: { id: 8 } });
      expect(sync.status, sync.text).toBe(200);
      expect(sync.body.status).toBe(200);
      expect(receiver.received.length).toBe(before + 2);
      expect(receiver.received.at(-1)!.headers.authorization).toBe(`Basic ${Buffer.from(`${USERNAME}:${C.basic}`).toString("base64")}`);
      // Refused writes do not echo the value either.
      const tooLong = await call("POST", `/api/v1/app/${appId}/secret`, { name: "TOO_LONG", value: `${C.body}${"x".repeat(2000)}` });
      expect(tooLong.body.code).toBe("E_SECRET_TOO_LONG");
      const badName = await call("POST", `/api/v1/app/${appId}/secret`, { name: "bad name", value: C.header });
      expect(badName.status).toBe(422);
      const replaced = await call("PUT", `/api/v1/app/${appId}/secret/HEADER_TOKEN`, { value: C.header });
      expect(replaced.status, replaced.text).toBe(200);
    });

    it("no API response, log line or database byte holds a canary, raw or encoded", async () => {
      const got = new Map<string, any>();
      for (const path of [
        `/api/v1/app/${appId}/endpoint`,
        `/api/v1/app/${appId}/endpoint/${full.id}`,
        ...variants.map((v) => `/api/v1/app/${appId}/endpoint/${v.id}`),
        `/api/v1/app/${appId}/secret`,
        `/api/v1/app/${appId}/msg`,
        `/api/v1/app/${appId}/attempt/endpoint/${full.id}`,
        ...variants.map((v) => `/api/v1/app/${appId}/attempt/endpoint/${v.id}`),
        `/api/v1/app/${appId}/endpoint/${full.id}/headers`,
      ]) {
        const res = await call("GET", path);
        expect(res.status, `${path}: ${res.text}`).toBe(200);
        got.set(path, res.body);
      }
      expect(variants).toHaveLength(3);
      expect(got.get(`/api/v1/app/${appId}/endpoint`).data).toHaveLength(4);
      // Scheduled, test and call attempts, each with its masked request.
      const attempts = got.get(`/api/v1/app/${appId}/attempt/endpoint/${full.id}`).data;
      expect(attempts.map((a: { triggerType: number }) => a.triggerType).sort()).toEqual([0, 2, 2]);
      for (const a of attempts) expect(a.request.headers.authorization).toBe("******");
      expect(got.get(`/api/v1/app/${appId}/secret`).data.map((s: { name: string }) => s.name)).toContain("BASIC_PASSWORD");
      answers.push(await (await fetch(`${gw.url()}/metrics`)).text());

      const db = await databaseText(loc);
      // Sanity: the text searched really is this gateway's data.
      expect(db).toContain(full.id);
      expect(db).toContain("******");
      const logs = gw.output();
      expect(logs).toContain(full.id); // the TLS opt-out warnings name the endpoint
      expect(logs).toContain("Hookwarden is listening on");
      for (const [what, needle] of needles()) {
        for (const text of answers) expect(text.includes(needle), `an API response holds the ${what} canary as ${needle}`).toBe(false);
        expect(logs.includes(needle), `the logs hold the ${what} canary as ${needle}`).toBe(false);
        expect(db.includes(needle), `the database holds the ${what} canary as ${needle}`).toBe(false);
      }

      // After a clean stop SQLite has checkpointed the WAL into the main file: still nothing.
      await gw.stop();
      const after = await databaseText(loc);
      expect(after).toContain(full.id);
      for (const [what, needle] of needles()) expect(after.includes(needle), `the stopped database holds the ${what} canary`).toBe(false);
      expect(gw.output().slice(logs.length)).not.toMatch(/cnry-/);
    });
  });

  describe(`responses that echo a credential (${dialect})`, () => {
    let t: TestServer;
    let receiver: Receiver;
    let appId: string;
    const TOKEN = canary("echo");

    beforeAll(async () => {
      t = await startTestServer(dialect);
      receiver = await new Receiver().start();
      // A platform that answers with the Authorization header it was given.
      receiver.respond = (r) => ({ status: 200, body: `you sent: ${String(r.headers.authorization)}`, headers: { "x-echo": String(r.headers.authorization) } });
      appId = (await t.api("POST", "/api/v1/app", { name: "echo" })).body.id;
      await putSecret(t.api, appId, "ECHO_TOKEN", TOKEN);
    });
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    async function deliver(redactResponses: boolean): Promise<{ stored: string; sync: any }> {
      const eventType = `echo.redact-${redactResponses}`;
      const ep = await t.api("POST", `/api/v1/app/${appId}/endpoint`, {
        url: `${receiver.url}/echo`,
        filterTypes: [eventType],
        auth: { type: "bearer", tokenSecret: "ECHO_TOKEN" },
        redactResponses,
      });
      expect(ep.status, ep.text).toBe(201);
      expect(ep.body.redactResponses).toBe(redactResponses);
      const msg = (await t.api("POST", `/api/v1/app/${appId}/msg`, { eventType, payload: {} })).body;
      await t.hw.worker.runUntilIdle();
      const attempts = (await t.api("GET", `/api/v1/app/${appId}/attempt/msg/${msg.id}`)).body.data;
      expect(attempts).toHaveLength(1);
      expect(attempts[0].request.headers.authorization).toBe("******");
      const sync = await t.api("POST", `/api/v1/app/${appId}/endpoint/${ep.body.id}/call`, { eventType, payload: {} });
      expect(sync.status, sync.text).toBe(200);
      return { stored: attempts[0].response, sync: sync.body };
    }

    it("stores the answer as received by default (documented: the platform must be told)", async () => {
      const { stored, sync } = await deliver(false);
      expect(stored).toBe(`you sent: Bearer ${TOKEN}`);
      expect(sync.body).toBe(`you sent: Bearer ${TOKEN}`);
    });

    it("masks the echoed secret with redactResponses: true, in the stored attempt and the /call answer", async () => {
      const { stored, sync } = await deliver(true);
      expect(stored).toBe("you sent: Bearer ******");
      expect(sync.body).toBe("you sent: Bearer ******");
      expect(sync.headers["x-echo"]).toBe("Bearer ******");
      const attempts = (await t.api("GET", `/api/v1/app/${appId}/attempt/msg/${sync.msgId}`)).body.data;
      expect(attempts[0].response).toBe("you sent: Bearer ******");
    });
  });
}
