import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIALECTS } from "../helpers/dialects.js";
import { listRequests, setup } from "../helpers/ingress.js";
import { github, githubBody, githubSecret, post } from "../helpers/provider-requests.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const ANSWER = [
  "export default function handler(req) {",
  "  const event = JSON.parse(req.body);",
  "  if (event.ref === 'refs/heads/ping') return { status: 200, body: 'pong', drop: true };",
  "  if (event.ref === 'refs/heads/boom') throw new Error('boom');",
  "  console.log('seen', req.method, req.path);",
  "  return { status: 202, headers: { 'x-handled-by': 'function' }, body: JSON.stringify({ accepted: event.commits.length, path: req.path, q: req.query.k ?? null }) };",
  "}",
].join("\n");

for (const dialect of DIALECTS) {
  describe(`input response mode function (${dialect})`, () => {
    let t: TestServer;
    let receiver: Receiver;
    let bucketId: string;
    let inputUrl: string;

    beforeAll(async () => {
      t = await startTestServer(dialect, {}, { functionLimits: { timeoutMs: 300 } });
      receiver = await new Receiver().start();
      const made = await setup(t, { outputs: [`${receiver.url}/dest`] });
      bucketId = made.bucket.id;
      expect((await t.api("POST", `/api/v1/bucket/${bucketId}/function`, { name: "answer", code: ANSWER })).status).toBe(201);
      const input = await t.api("POST", `/api/v1/bucket/${bucketId}/input`, { name: "fn", verification: { type: "github", secret: githubSecret }, response: { mode: "function", function: "answer" } });
      expect(input.status, input.text).toBe(201);
      expect(input.body.response).toEqual({ mode: "function", function: "answer" });
      inputUrl = input.body.url as string;
    });
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    it("answers a GitHub-signed request with the function's status, headers and body, and still forwards it", async () => {
      const body = githubBody("fn-1");
      const before = receiver.received.length;
      const res = await fetch(`${inputUrl}/sub/path?k=v`, { method: "POST", headers: await github(body), body });
      expect(res.status).toBe(202);
      expect(res.headers.get("x-handled-by")).toBe("function");
      expect(await res.json()).toEqual({ accepted: 1, path: "/sub/path", q: "v" });
      await receiver.waitFor(before + 1);
      expect(receiver.received[before]!.body).toBe(body);
      const stored = await listRequests(t, bucketId);
      // The stored request records the status its caller was answered with.
      expect(stored[0]).toMatchObject({ statusCode: 202 });
    });

    it("drop: answers the caller and stores or forwards nothing", async () => {
      const body = JSON.stringify({ ref: "refs/heads/ping", commits: [] });
      const storedBefore = (await listRequests(t, bucketId)).length;
      const receivedBefore = receiver.received.length;
      const res = await post(inputUrl, { headers: await github(body), body });
      expect(res).toMatchObject({ status: 200, text: "pong" });
      // An ordinary request sent afterwards is forwarded: once it arrives, the dropped one would have too.
      const next = githubBody("after-drop");
      await post(inputUrl, { headers: await github(next), body: next });
      await receiver.waitFor(receivedBefore + 1);
      expect(receiver.received.slice(receivedBefore).map((r) => r.body)).toEqual([next]);
      expect((await listRequests(t, bucketId)).length).toBe(storedBefore + 1);
    });

    it("a failing function gives the caller the default answer; the request is kept and forwarded", async () => {
      const body = JSON.stringify({ ref: "refs/heads/boom", commits: [] });
      const before = receiver.received.length;
      const res = await post(inputUrl, { headers: await github(body), body });
      expect(res).toMatchObject({ status: 200, text: "" });
      await receiver.waitFor(before + 1);
      expect(receiver.received[before]!.body).toBe(body);
      expect(t.logs()).toContain("E_FUNCTION_ERROR");
    });

    it("never runs the function for a request whose signature fails", async () => {
      const body = JSON.stringify({ ref: "refs/heads/ping", commits: [] });
      const res = await post(inputUrl, { headers: await github(body, "wrong-secret"), body });
      expect(res.status).toBe(401);
      expect(res.text).not.toContain("pong");
    });

    it("refuses a hostile function name in the input config", async () => {
      for (const name of ["__proto__", "../x", ""]) {
        const r = await t.api("POST", `/api/v1/bucket/${bucketId}/input`, { name: "bad", response: { mode: "function", function: name } });
        expect(r.status, name).toBe(422);
      }
    });
  });
}
