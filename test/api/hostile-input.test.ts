import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_JSON_DEPTH } from "../../src/api/json-body.js";
import { DIALECTS } from "../helpers/dialects.js";
import { getRequest, listRequests, setup } from "../helpers/ingress.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/** `depth` nested arrays or objects as JSON text, built without recursion. */
function deep(depth: number, kind: "array" | "object"): string {
  return kind === "array" ? "[".repeat(depth) + "1" + "]".repeat(depth) : '{"a":'.repeat(depth) + "1" + "}".repeat(depth);
}

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  text: string;
  json: any;
}

/**
 * Writes `request` byte for byte on a fresh socket and reads the answer until the server closes:
 * fetch and node:http normalise or refuse the very requests these tests need (broken escapes,
 * oversize heads, NUL bytes in a header).
 */
function rawRequest(base: string, request: string | Buffer): Promise<RawAnswer> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect({ host: hostname, port: Number(port) });
    const finish = () => {
      const all = Buffer.concat(chunks).toString("latin1");
      const split = all.indexOf("\r\n\r\n");
      if (split < 0) return reject(new Error(`no HTTP answer: ${JSON.stringify(all.slice(0, 200))}`));
      const [statusLine, ...lines] = all.slice(0, split).split("\r\n");
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const at = l.indexOf(":");
        headers[l.slice(0, at).trim().toLowerCase()] = l.slice(at + 1).trim();
      }
      const text = all.slice(split + 4);
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      resolve({ status: Number(statusLine!.split(" ")[1]), headers, text, json });
    };
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("close", finish);
    // A reset after the answer (the server drops a connection it refused) still leaves the answer.
    socket.on("error", () => undefined);
    socket.write(request);
  });
}

const NUL = "\u0000";

for (const dialect of DIALECTS) {
  describe(`hostile input gets {code, detail} and a 4xx, never a 5xx (${dialect})`, () => {
    let t: TestServer;
    let appId: string;
    let epId: string;
    let msgId: string;
    let bucketId: string;
    let inputId: string;

    beforeAll(async () => {
      t = await startTestServer(dialect);
      appId = (await t.api("POST", "/api/v1/app", { name: "hostile" })).body.id;
      // Nothing listens on port 9; deliveries fail fast, which these tests never wait for.
      epId = (await t.api("POST", `/api/v1/app/${appId}/endpoint`, { url: "http://127.0.0.1:9/hook" })).body.id;
      msgId = (await t.api("POST", `/api/v1/app/${appId}/msg`, { eventType: "ok", payload: { a: 1 } })).body.id;
      await t.api("POST", "/api/v1/event-type", { name: "ok.type", description: "fine" });
      const s = await setup(t);
      bucketId = s.bucket.id;
      inputId = s.input.id;
    });
    afterAll(async () => t?.stop());

    const expectCodeDetail = (r: { status: number; body: any; text: string }, status: number, code: string, what: string) => {
      expect(r.status, `${what}: ${r.text.slice(0, 300)}`).toBe(status);
      expect(r.body, what).toEqual({ code, detail: expect.anything() });
    };

    describe("deep JSON", () => {
      const routes = (): [string, string, (inner: string) => string][] => [
        ["publish", `/api/v1/app/${appId}/msg`, (inner) => `{"eventType":"deep","payload":{"x":${inner}}}`],
        ["preview", `/api/v1/app/${appId}/endpoint/${epId}/preview`, (inner) => `{"eventType":"deep","payload":{"x":${inner}}}`],
        ["call", `/api/v1/app/${appId}/endpoint/${epId}/call`, (inner) => `{"eventType":"deep","payload":{"x":${inner}}}`],
        ["test", `/api/v1/app/${appId}/endpoint/${epId}/test`, (inner) => `{"eventType":"deep","payload":{"x":${inner}}}`],
        ["event-type schemas", "/api/v1/event-type", (inner) => `{"name":"deep.type","description":"d","schemas":{"1":${inner}}}`],
        ["application metadata", "/api/v1/app", (inner) => `{"name":"deep","metadata":${inner}}`],
      ];

      for (const depth of [5_000, 100_000]) {
        for (const kind of ["array", "object"] as const) {
          it(`${depth} levels of ${kind}s answer 422 E_JSON_TOO_DEEP on every JSON route`, async () => {
            for (const [what, path, wrap] of routes()) {
              const r = await t.api("POST", path, wrap(deep(depth, kind)));
              expectCodeDetail(r, 422, "E_JSON_TOO_DEEP", what);
            }
            // Unbalanced: only the opening half, still refused for its depth, not parsed.
            const r = await t.api("POST", `/api/v1/app/${appId}/msg`, `{"eventType":"deep","payload":{"x":${(kind === "array" ? "[" : '{"a":').repeat(depth)}`);
            expectCodeDetail(r, 422, "E_JSON_TOO_DEEP", "unbalanced");
            expect((await t.api("GET", "/api/v1/app")).status).toBe(200);
          });
        }
      }

      it(`accepts exactly ${MAX_JSON_DEPTH} levels in a body and refuses one more`, async () => {
        // The body object and `payload` are two levels; `x` holds the rest.
        for (const kind of ["array", "object"] as const) {
          const ok = await t.api("POST", `/api/v1/app/${appId}/msg`, `{"eventType":"deep","payload":{"x":${deep(MAX_JSON_DEPTH - 2, kind)}}}`);
          expect(ok.status, ok.text.slice(0, 300)).toBe(202);
          const over = await t.api("POST", `/api/v1/app/${appId}/msg`, `{"eventType":"deep","payload":{"x":${deep(MAX_JSON_DEPTH - 1, kind)}}}`);
          expectCodeDetail(over, 422, "E_JSON_TOO_DEEP", kind);
        }
      });

      it("brackets inside strings do not count as depth", async () => {
        const r = await t.api("POST", `/api/v1/app/${appId}/msg`, { eventType: "deep", payload: { s: "[{".repeat(5_000), t: '\\"[[[' } });
        expect(r.status, r.text.slice(0, 300)).toBe(202);
      });
    });

    describe("NUL (U+0000)", () => {
      it("is refused with 422 E_NUL_CHARACTER in every string of every JSON body, naming the field", async () => {
        const cases = (): [string, string, unknown, string[]][] => [
          ["POST", "/api/v1/app", { name: `a${NUL}b` }, ["body", "name"]],
          ["POST", "/api/v1/app", { name: "n", uid: `u${NUL}` }, ["body", "uid"]],
          ["POST", "/api/v1/app", { name: "n", metadata: { [`k${NUL}`]: "v" } }, ["body", "metadata"]],
          ["POST", "/api/v1/app", { name: "n", metadata: { k: `v${NUL}` } }, ["body", "metadata", "k"]],
          ["PUT", `/api/v1/app/${appId}`, { name: `a${NUL}` }, ["body", "name"]],
          ["PATCH", `/api/v1/app/${appId}`, { name: `a${NUL}` }, ["body", "name"]],
          ["POST", `/api/v1/app/${appId}/endpoint`, { url: `https://example.com/a${NUL}b` }, ["body", "url"]],
          ["POST", `/api/v1/app/${appId}/endpoint`, { url: "https://example.com/", description: `d${NUL}` }, ["body", "description"]],
          ["POST", `/api/v1/app/${appId}/endpoint`, { url: "https://example.com/", uid: `u${NUL}` }, ["body", "uid"]],
          ["POST", `/api/v1/app/${appId}/endpoint`, { url: "https://example.com/", filterTypes: [`t${NUL}`] }, ["body", "filterTypes", "0"]],
          ["POST", `/api/v1/app/${appId}/endpoint`, { url: "https://example.com/", headers: { "x-a": `v${NUL}` } }, ["body", "headers", "x-a"]],
          ["PATCH", `/api/v1/app/${appId}/endpoint/${epId}`, { description: `d${NUL}` }, ["body", "description"]],
          ["PUT", `/api/v1/app/${appId}/endpoint/${epId}/headers`, { headers: { "x-a": `v${NUL}` } }, ["body", "headers", "x-a"]],
          ["PUT", `/api/v1/app/${appId}/endpoint/${epId}/headers`, { headers: { [`x-${NUL}`]: "v" } }, ["body", "headers"]],
          ["POST", "/api/v1/event-type", { name: `e${NUL}`, description: "d" }, ["body", "name"]],
          ["POST", "/api/v1/event-type", { name: "e.nul", description: `d${NUL}` }, ["body", "description"]],
          ["POST", "/api/v1/event-type", { name: "e.nul", description: "d", schemas: { "1": { title: `s${NUL}` } } }, ["body", "schemas", "1", "title"]],
          ["POST", `/api/v1/app/${appId}/msg`, { eventType: `e${NUL}`, payload: {} }, ["body", "eventType"]],
          ["POST", `/api/v1/app/${appId}/msg`, { eventType: "e", payload: { s: `a${NUL}b` } }, ["body", "payload", "s"]],
          ["POST", `/api/v1/app/${appId}/msg`, { eventType: "e", payload: { list: [1, { [`k${NUL}`]: 1 }] } }, ["body", "payload", "list", "1"]],
          ["POST", `/api/v1/app/${appId}/msg`, { eventType: "e", payload: {}, channels: [`c${NUL}`] }, ["body", "channels", "0"]],
          ["POST", `/api/v1/app/${appId}/msg`, { eventType: "e", payload: {}, tags: [`t${NUL}`] }, ["body", "tags", "0"]],
          ["POST", `/api/v1/app/${appId}/endpoint/${epId}/preview`, { eventType: "e", payload: { s: NUL } }, ["body", "payload", "s"]],
          ["POST", `/api/v1/app/${appId}/secret`, { name: `S${NUL}`, value: "v" }, ["body", "name"]],
          ["POST", `/api/v1/app/${appId}/secret`, { name: "NUL_VALUE", value: `v${NUL}` }, ["body", "value"]],
          ["POST", "/api/v1/bucket", { name: `b${NUL}` }, ["body", "name"]],
          ["PATCH", `/api/v1/bucket/${bucketId}`, { name: `b${NUL}` }, ["body", "name"]],
          ["POST", `/api/v1/bucket/${bucketId}/input`, { name: `i${NUL}` }, ["body", "name"]],
          ["POST", "/api/v1/agent-token", { name: `a${NUL}`, buckets: [bucketId] }, ["body", "name"]],
          ["POST", "/api/v1/agent-token", { name: "a", buckets: [`${bucketId}${NUL}`] }, ["body", "buckets", "0"]],
        ];
        for (const [method, path, body, loc] of cases()) {
          const what = `${method} ${path} ${JSON.stringify(body)}`;
          const r = await t.api(method, path, body);
          expect(r.status, `${what}: ${r.text.slice(0, 300)}`).toBe(422);
          expect(r.body.code, what).toBe("E_NUL_CHARACTER");
          expect(r.body.detail[0], what).toEqual({ loc, msg: expect.any(String), type: "value_error.nul_character" });
        }
        // An escaped backslash before "u0000" is six ordinary characters, not a NUL.
        const plain = await t.api("POST", `/api/v1/app/${appId}/msg`, '{"eventType":"e","payload":{"s":"\\\\u0000"}}');
        expect(plain.status, plain.text).toBe(202);
        expect(plain.body.payload).toEqual({ s: "\\u0000" });
        // ...but an escaped backslash or quote followed by the escape is a NUL.
        for (const text of ['{"name":"a\\\\\\u0000"}', '{"name":"\\"[\\u0000"}', '{"name":"ok","metadata":{"k":"\\u0000"}}']) {
          const r = await t.api("POST", "/api/v1/app", text);
          expect(r.status, `${text}: ${r.text}`).toBe(422);
          expect(r.body.code, text).toBe("E_NUL_CHARACTER");
        }
      });

      it("is refused with 422 in every path id", async () => {
        const bad = "x%00y";
        const routes: [string, string][] = [
          ["GET", `/api/v1/app/${bad}`],
          ["PUT", `/api/v1/app/${bad}`],
          ["PATCH", `/api/v1/app/${bad}`],
          ["DELETE", `/api/v1/app/${bad}`],
          ["GET", `/api/v1/app/${bad}/endpoint`],
          ["POST", `/api/v1/app/${bad}/endpoint`],
          ["GET", `/api/v1/app/${appId}/endpoint/${bad}`],
          ["PUT", `/api/v1/app/${appId}/endpoint/${bad}`],
          ["PATCH", `/api/v1/app/${appId}/endpoint/${bad}`],
          ["DELETE", `/api/v1/app/${appId}/endpoint/${bad}`],
          ["GET", `/api/v1/app/${appId}/endpoint/${bad}/headers`],
          ["PUT", `/api/v1/app/${appId}/endpoint/${bad}/headers`],
          ["PATCH", `/api/v1/app/${appId}/endpoint/${bad}/headers`],
          ["GET", `/api/v1/app/${appId}/endpoint/${bad}/secret`],
          ["POST", `/api/v1/app/${appId}/endpoint/${bad}/secret/rotate`],
          ["POST", `/api/v1/app/${appId}/endpoint/${bad}/preview`],
          ["POST", `/api/v1/app/${appId}/endpoint/${bad}/call`],
          ["POST", `/api/v1/app/${appId}/endpoint/${bad}/test`],
          ["GET", `/api/v1/app/${bad}/msg`],
          ["POST", `/api/v1/app/${bad}/msg`],
          ["GET", `/api/v1/app/${appId}/msg/${bad}`],
          ["POST", `/api/v1/app/${appId}/msg/${bad}/endpoint/${epId}/resend`],
          ["POST", `/api/v1/app/${appId}/msg/${msgId}/endpoint/${bad}/resend`],
          ["GET", `/api/v1/app/${appId}/attempt/msg/${bad}`],
          ["GET", `/api/v1/app/${appId}/attempt/endpoint/${bad}`],
          ["GET", `/api/v1/app/${appId}/msg/${msgId}/attempt/${bad}`],
          ["GET", `/api/v1/app/${bad}/secret`],
          ["POST", `/api/v1/app/${bad}/secret`],
          ["PUT", `/api/v1/app/${appId}/secret/${bad}`],
          ["DELETE", `/api/v1/app/${appId}/secret/${bad}`],
          ["GET", `/api/v1/event-type/${bad}`],
          ["PUT", `/api/v1/event-type/${bad}`],
          ["PATCH", `/api/v1/event-type/${bad}`],
          ["DELETE", `/api/v1/event-type/${bad}`],
          ["GET", `/api/v1/bucket/${bad}`],
          ["PATCH", `/api/v1/bucket/${bad}`],
          ["DELETE", `/api/v1/bucket/${bad}`],
          ["GET", `/api/v1/bucket/${bad}/input`],
          ["POST", `/api/v1/bucket/${bad}/input`],
          ["GET", `/api/v1/bucket/${bucketId}/input/${bad}`],
          ["PATCH", `/api/v1/bucket/${bucketId}/input/${bad}`],
          ["DELETE", `/api/v1/bucket/${bucketId}/input/${bad}`],
          ["GET", `/api/v1/bucket/${bad}/output`],
          ["POST", `/api/v1/bucket/${bad}/output`],
          ["GET", `/api/v1/bucket/${bucketId}/output/${bad}`],
          ["PATCH", `/api/v1/bucket/${bucketId}/output/${bad}`],
          ["DELETE", `/api/v1/bucket/${bucketId}/output/${bad}`],
          ["GET", `/api/v1/bucket/${bad}/request`],
          ["GET", `/api/v1/bucket/${bucketId}/request/${bad}`],
          ["POST", `/api/v1/bucket/${bucketId}/request/${bad}/replay`],
          ["GET", `/api/v1/agent-token/${bad}`],
          ["PATCH", `/api/v1/agent-token/${bad}`],
          ["DELETE", `/api/v1/agent-token/${bad}`],
        ];
        for (const [method, path] of routes) {
          const body = method === "GET" || method === "DELETE" ? undefined : {};
          const r = await t.api(method, path, body);
          expect(r.status, `${method} ${path}: ${r.text.slice(0, 300)}`).toBe(422);
          expect(r.body.code, `${method} ${path}`).toBe("E_NUL_CHARACTER");
          expect(r.body.detail[0].loc[0], `${method} ${path}`).toBe("path");
        }
      });

      it("is refused with 422 in every query parameter, names included", async () => {
        const queries = [
          "/api/v1/app?iterator=x%00y",
          `/api/v1/app/${appId}/endpoint?iterator=x%00y`,
          `/api/v1/app/${appId}/msg?iterator=x%00y`,
          `/api/v1/app/${appId}/msg?event_types=a,x%00y`,
          `/api/v1/app/${appId}/msg?channel=x%00y`,
          `/api/v1/app/${appId}/attempt/msg/${msgId}?endpoint_id=x%00y`,
          `/api/v1/app/${appId}/attempt/msg/${msgId}?iterator=x%00y`,
          `/api/v1/app/${appId}/attempt/endpoint/${epId}?iterator=x%00y`,
          "/api/v1/event-type?iterator=x%00y",
          `/api/v1/bucket/${bucketId}/request?iterator=x%00y`,
          "/api/v1/bucket?iterator=x%00y",
          "/api/v1/agent-token?iterator=x%00y",
          "/api/v1/app?x%00y=1",
          "/api/v1/app?iterator=a&iterator=x%00y",
        ];
        for (const path of queries) {
          const r = await t.api("GET", path);
          expect(r.status, `${path}: ${r.text.slice(0, 300)}`).toBe(422);
          expect(r.body.code, path).toBe("E_NUL_CHARACTER");
          expect(r.body.detail[0].loc[0], path).toBe("query");
        }
      });

      it("inbound webhooks at /in keep every NUL byte and NUL escape of the body", async () => {
        const bodies = [Buffer.from(`{"s":"a\\u0000b"}`), Buffer.from([0x7b, 0x00, 0x00, 0x7d])];
        for (const body of bodies) {
          const r = await fetch(`${t.url}/in/${inputId}?q=%00`, { method: "POST", body, headers: { "content-type": "application/json" } });
          expect(r.status).toBeLessThan(300);
        }
        const rows = await listRequests(t, bucketId);
        expect(rows.length).toBeGreaterThanOrEqual(2);
        const stored = await Promise.all(rows.slice(0, 2).map(async (row) => (await getRequest(t, bucketId, row.id)).request));
        const bytes = stored.map((s) => Buffer.from(s.body, s.bodyEncoding === "base64" ? "base64" : "utf8").toString("hex")).sort();
        expect(bytes).toEqual(bodies.map((b) => b.toString("hex")).sort());
      });
    });

    describe("broken requests the router or the HTTP parser refuse", () => {
      it("a JSON body sent as text/plain (or any other type) is 415 E_UNSUPPORTED_MEDIA_TYPE", async () => {
        for (const type of ["text/plain", "text/plain; charset=utf-8", "application/xml", "application/octet-stream"]) {
          const r = await t.api("POST", "/api/v1/app", JSON.stringify({ name: "plain" }), { "content-type": type });
          expectCodeDetail(r, 415, "E_UNSUPPORTED_MEDIA_TYPE", type);
        }
        const ok = await t.api("POST", "/api/v1/app", JSON.stringify({ name: "json" }), { "content-type": "application/json; charset=utf-8" });
        expect(ok.status).toBe(201);
        // No content type at all (fetch would add text/plain): the same 415.
        const body = JSON.stringify({ name: "untyped" });
        const r = await rawRequest(t.url, `POST /api/v1/app HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t.token}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
        expect(r.status, r.text).toBe(415);
        expect(r.json).toEqual({ code: "E_UNSUPPORTED_MEDIA_TYPE", detail: expect.any(String) });
      });

      it("a malformed percent-escape in the path is 400 E_BAD_REQUEST, on the API and on /in", async () => {
        for (const path of ["/api/v1/app/%E0%A4%A", "/api/v1/app/%zz", `/in/${inputId}/%E0%A4%A`]) {
          const r = await rawRequest(t.url, `GET ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t.token}\r\nConnection: close\r\n\r\n`);
          expect(r.status, `${path}: ${r.text}`).toBe(400);
          expect(r.headers["content-type"]).toMatch(/^application\/json/);
          expect(r.json, path).toEqual({ code: "E_BAD_REQUEST", detail: expect.any(String) });
        }
      });

      it("an oversize URL or header is 431 E_HEADERS_TOO_LARGE with a JSON body", async () => {
        const big = "a".repeat(20 * 1024);
        const heads = [
          `GET /api/v1/app?iterator=${big} HTTP/1.1\r\nHost: x\r\n\r\n`,
          `GET /api/v1/app HTTP/1.1\r\nHost: x\r\nX-Big: ${big}\r\n\r\n`,
          `POST /in/${inputId} HTTP/1.1\r\nHost: x\r\nX-Big: ${big}\r\nContent-Length: 0\r\n\r\n`,
        ];
        for (const head of heads) {
          const r = await rawRequest(t.url, head);
          expect(r.status, r.text).toBe(431);
          expect(r.headers["content-type"]).toMatch(/^application\/json/);
          expect(r.json).toEqual({ code: "E_HEADERS_TOO_LARGE", detail: expect.any(String) });
        }
      });

      it("a request the HTTP parser cannot read (NUL in a header) is 400 E_BAD_REQUEST with a JSON body", async () => {
        const r = await rawRequest(t.url, Buffer.from(`GET /api/v1/app HTTP/1.1\r\nHost: x\r\nX-A: a${NUL}b\r\n\r\n`, "latin1"));
        expect(r.status, r.text).toBe(400);
        expect(r.json).toEqual({ code: "E_BAD_REQUEST", detail: expect.any(String) });
      });

      it("a Svix uid of 256 characters is routed; a path id of thousands is 414 E_URI_TOO_LONG", async () => {
        const uid = "u".repeat(256);
        const created = await t.api("POST", "/api/v1/app", { name: "long", uid });
        expect(created.status, created.text).toBe(201);
        const r = await t.api("GET", `/api/v1/app/${uid}`);
        expect(r.status, r.text.slice(0, 300)).toBe(200);
        const tooLong = await t.api("GET", `/api/v1/app/${"u".repeat(5_000)}`);
        expect(tooLong.status, tooLong.text.slice(0, 300)).toBe(414);
        expect(tooLong.body).toEqual({ code: "E_URI_TOO_LONG", detail: expect.any(String) });
      });

      it("keeps serving after all of the above", async () => {
        expect((await t.api("GET", "/api/v1/app")).status).toBe(200);
        expect((await fetch(`${t.url}/health`)).status).toBe(200);
      });
    });
  });
}
