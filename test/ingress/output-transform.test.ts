import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Webhook as StandardWebhook } from "standardwebhooks";
import { DIALECTS } from "../helpers/dialects.js";
import { setup } from "../helpers/ingress.js";
import { github, githubSecret, post, until } from "../helpers/provider-requests.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const SHAPE = [
  "export default function handler(req) {",
  "  const event = JSON.parse(req.body);",
  "  if (event.ref !== 'refs/heads/main') return { drop: true };",
  "  return { method: 'PUT', path: '/commits', query: { repo: 'hw' }, headers: { 'content-type': 'application/json', 'x-event': req.headers['x-github-event'] }, body: JSON.stringify({ count: event.commits.length }) };",
  "}",
].join("\n");

for (const dialect of DIALECTS) {
  describe(`output transformation before a forward (${dialect})`, () => {
    let t: TestServer;
    let receiver: Receiver;
    let inputUrl: string;
    let bucketId: string;
    let outputId: string;
    let signingSecret: string;

    beforeAll(async () => {
      t = await startTestServer(dialect, {}, { functionLimits: { timeoutMs: 300 } });
      receiver = await new Receiver().start();
      const made = await setup(t, { input: { verification: { type: "github", secret: githubSecret } }, outputs: [{ url: `${receiver.url}/base`, resign: true }] });
      bucketId = made.bucket.id;
      outputId = made.outputs[0].id;
      signingSecret = made.outputs[0].signingSecret;
      inputUrl = made.input.url;
      expect((await t.api("POST", `/api/v1/bucket/${bucketId}/function`, { name: "shape", code: SHAPE })).status).toBe(201);
      const set = await t.api("PATCH", `/api/v1/bucket/${bucketId}/output/${outputId}/transformation`, { function: "shape" });
      expect(set.status, set.text).toBe(204);
      expect((await t.api("GET", `/api/v1/bucket/${bucketId}/output/${outputId}/transformation`)).body).toEqual({ function: "shape" });
    });
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    it("reshapes a GitHub-signed request before forwarding; the re-signature covers the final body", async () => {
      const body = JSON.stringify({ ref: "refs/heads/main", commits: [{ id: 1 }, { id: 2 }] });
      const before = receiver.received.length;
      expect((await post(inputUrl, { headers: await github(body), body })).status).toBe(200);
      await receiver.waitFor(before + 1);
      const got = receiver.received[before]!;
      expect(got.method).toBe("PUT");
      expect(got.url).toBe("/base/commits?repo=hw");
      expect(got.body).toBe(JSON.stringify({ count: 2 }));
      expect(got.headers["x-event"]).toBe("push");
      expect(signingSecret).toMatch(/^whsec_/);
      expect(new StandardWebhook(signingSecret.replace(/^whsec_/, "")).verify(got.body, got.headers as Record<string, string>)).toEqual({ count: 2 });
    });

    it("drops by payload content: the attempt says so and nothing is sent", async () => {
      const body = JSON.stringify({ ref: "refs/heads/dev", commits: [] });
      const before = receiver.received.length;
      expect((await post(inputUrl, { headers: await github(body), body })).status).toBe(200);
      const attempts = await until("a dropped attempt", async () => {
        const r = await t.api("GET", `/api/v1/bucket/${bucketId}/request?limit=1`);
        const id = r.body.data[0]?.id;
        if (!id) return undefined;
        const a = await t.api("GET", `/api/v1/bucket/${bucketId}/request/${id}`);
        const list = (a.body.attempts ?? []) as { errorCode: string | null }[];
        return list.length > 0 ? list : undefined;
      });
      expect(attempts[0]).toMatchObject({ errorCode: "E_FUNCTION_CANCELLED" });
      expect(receiver.received.length).toBe(before);
    });

    it("refuses an unknown function, and another organisation gets 404", async () => {
      expect((await t.api("PATCH", `/api/v1/bucket/${bucketId}/output/${outputId}/transformation`, { function: "missing" })).status).toBe(422);
      const other = await t.newOrgToken("out-other");
      const res = await t.api("PATCH", `/api/v1/bucket/${bucketId}/output/${outputId}/transformation`, { function: null }, { authorization: `Bearer ${other}` });
      expect(res.status).toBe(404);
      expect((await t.api("GET", `/api/v1/bucket/${bucketId}/output/${outputId}/transformation`)).body).toEqual({ function: "shape" });
    });
  });
}
