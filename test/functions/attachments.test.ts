import { Webhook as StandardWebhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentClient } from "../../src/agents/client.js";
import { createLogger } from "../../src/logger/index.js";
import { SecretValue } from "../../src/vault/secret-value.js";
import { agentBucket, createAgentToken } from "../helpers/agents.js";
import { createApp, createEndpoint } from "../helpers/delivery.js";
import { DIALECTS } from "../helpers/dialects.js";
import { createOutput, setup } from "../helpers/ingress.js";
import { github, post, until } from "../helpers/provider-requests.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/** The input's function: keeps pushes to main (count of commits as the body), drops the rest. */
const INPUT_FN = [
  "export default function handler(req) {",
  "  const event = JSON.parse(req.body);",
  "  if (event.ref !== 'refs/heads/main') return { drop: true };",
  "  return { path: '/pushes', headers: { 'content-type': 'application/json', 'x-seen-by': 'input', ['__proto__']: 'kept' }, body: JSON.stringify({ commits: event.commits.length }) };",
  "}",
].join("\n");
/** An output's function, run after the input's: sees the input's result. */
const OUTPUT_FN = [
  "export default function handler(req) {",
  "  const shaped = JSON.parse(req.body);",
  "  return { headers: { ...req.headers, 'x-seen-by': req.headers['x-seen-by'] + ',output' }, body: JSON.stringify({ ...shaped, double: shaped.commits * 2 }) };",
  "}",
].join("\n");

const pushTo = (ref: string, commits: number) => JSON.stringify({ ref, commits: Array.from({ length: commits }, (_, i) => ({ id: i })) });

for (const dialect of DIALECTS) {
  describe(`functions at every attachment point (${dialect})`, () => {
    let t: TestServer;
    let receiver: Receiver;

    beforeAll(async () => {
      t = await startTestServer(dialect, {}, { functionLimits: { timeoutMs: 500 } });
      receiver = await new Receiver().start();
    });
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    async function bucketFunction(bucketId: string, name: string, code: string): Promise<void> {
      const saved = await t.api("POST", `/api/v1/bucket/${bucketId}/function`, { name, code });
      expect(saved.status, saved.text).toBe(201);
    }

    async function attemptsOfLatest(bucketId: string): Promise<{ errorCode: string | null; responseStatusCode: number }[]> {
      return until("the latest request's attempts", async () => {
        const r = await t.api("GET", `/api/v1/bucket/${bucketId}/request?limit=1`);
        const id = r.body.data[0]?.id;
        if (!id) return undefined;
        const list = ((await t.api("GET", `/api/v1/bucket/${bucketId}/request/${id}`)).body.attempts ?? []) as { errorCode: string | null; responseStatusCode: number }[];
        return list.length > 0 ? list : undefined;
      });
    }

    it("a sync call runs the endpoint's transformation; a cancel answers 422 and sends nothing", async () => {
      const appId = await createApp(t, "sync-fn");
      const code = [
        "export default function handler(webhook) {",
        "  if (webhook.payload.skip) { webhook.cancel = true; return webhook; }",
        "  webhook.payload = { wrapped: webhook.payload, type: webhook.eventType };",
        "  return webhook;",
        "}",
      ].join("\n");
      expect((await t.api("POST", `/api/v1/app/${appId}/function`, { name: "wrap", code })).status).toBe(201);
      const ep = await createEndpoint(t, appId, { url: `${receiver.url}/sync`, secret: SECRET });
      expect((await t.api("PATCH", `/api/v1/app/${appId}/endpoint/${ep.id}/transformation`, { function: "wrap" })).status).toBe(204);

      const before = receiver.received.length;
      const call = await t.api("POST", `/api/v1/app/${appId}/endpoint/${ep.id}/call`, { eventType: "order.paid", payload: { id: 7 } });
      expect(call.status, call.text).toBe(200);
      expect(call.body).toMatchObject({ status: 200 });
      const got = receiver.received[before]!;
      expect(JSON.parse(got.body)).toEqual({ wrapped: { id: 7 }, type: "order.paid" });
      // The signature covers the transformed body.
      expect(new StandardWebhook(SECRET.slice(6)).verify(got.body, got.headers as Record<string, string>)).toEqual(JSON.parse(got.body));

      const cancelled = await t.api("POST", `/api/v1/app/${appId}/endpoint/${ep.id}/call`, { eventType: "order.paid", payload: { skip: true } });
      expect(cancelled.status, cancelled.text).toBe(422);
      expect(cancelled.body).toMatchObject({ code: "E_FUNCTION_CANCELLED" });
      expect(receiver.received.length).toBe(before + 1);
      // `/test` goes through the same path.
      const tested = await t.api("POST", `/api/v1/app/${appId}/endpoint/${ep.id}/test`, { eventType: "order.paid", payload: { id: 8 } });
      expect(tested.status, tested.text).toBe(200);
      expect(JSON.parse(receiver.received[before + 1]!.body)).toEqual({ wrapped: { id: 8 }, type: "order.paid" });
    });

    it("an input's transformation shapes or drops a provider-signed request for every output; the output's runs after it", async () => {
      const made = await setup(t, { input: { verification: { type: "github", secret: "gh-secret-0b7e2d" } }, outputs: [`${receiver.url}/a`, `${receiver.url}/b`] });
      const bucketId = made.bucket.id as string;
      await bucketFunction(bucketId, "only-main", INPUT_FN);
      await bucketFunction(bucketId, "double", OUTPUT_FN);
      const setIn = await t.api("PATCH", `/api/v1/bucket/${bucketId}/input/${made.input.id}/transformation`, { function: "only-main" });
      expect(setIn.status, setIn.text).toBe(204);
      expect((await t.api("GET", `/api/v1/bucket/${bucketId}/input/${made.input.id}/transformation`)).body).toEqual({ function: "only-main" });
      expect((await t.api("PATCH", `/api/v1/bucket/${bucketId}/output/${made.outputs[1].id}/transformation`, { function: "double" })).status).toBe(204);

      const before = receiver.received.length;
      const body = pushTo("refs/heads/main", 3);
      expect((await post(made.input.url, { headers: await github(body), body })).status).toBe(200);
      await receiver.waitFor(before + 2);
      const got = receiver.received.slice(before);
      const a = got.find((r) => r.url.startsWith("/a"))!;
      const b = got.find((r) => r.url.startsWith("/b"))!;
      expect(a.url).toBe("/a/pushes");
      expect(JSON.parse(a.body)).toEqual({ commits: 3 });
      expect(a.headers["x-seen-by"]).toBe("input");
      // A header named __proto__ survives the sandbox round trip as a header.
      const raw = a.rawHeaders.flatMap((v, i) => (i % 2 === 0 && v.toLowerCase() === "__proto__" ? [a.rawHeaders[i + 1]] : []));
      expect(raw).toEqual(["kept"]);
      expect(b.url).toBe("/b/pushes");
      expect(JSON.parse(b.body)).toEqual({ commits: 3, double: 6 });
      expect(b.headers["x-seen-by"]).toBe("input,output");

      // The stored request is what the provider sent: inspection and replay see the original.
      const stored = (await t.api("GET", `/api/v1/bucket/${bucketId}/request?limit=1`)).body.data[0];
      const detail = await t.api("GET", `/api/v1/bucket/${bucketId}/request/${stored.id}`);
      expect(detail.text).toContain("refs/heads/main");

      const dropped = pushTo("refs/heads/dev", 1);
      const count = receiver.received.length;
      expect((await post(made.input.url, { headers: await github(dropped), body: dropped })).status).toBe(200);
      const attempts = await until("both outputs' attempts", async () => {
        const list = await attemptsOfLatest(bucketId);
        return list.length >= 2 ? list : undefined;
      });
      expect(attempts.map((x) => x.errorCode)).toEqual(["E_FUNCTION_CANCELLED", "E_FUNCTION_CANCELLED"]);
      expect(receiver.received.length).toBe(count);

      // Removing the input's transformation forwards requests as they came.
      expect((await t.api("PATCH", `/api/v1/bucket/${bucketId}/input/${made.input.id}/transformation`, { function: null })).status).toBe(204);
      const plain = pushTo("refs/heads/dev", 2);
      expect((await post(made.input.url, { headers: await github(plain), body: plain })).status).toBe(200);
      await receiver.waitFor(count + 2);
      expect(receiver.received.slice(count).find((r) => r.url === "/a")?.body).toBe(plain);
    });

    it("an input's transformation refuses hostile settings with 4xx, and another organisation gets 404", async () => {
      const made = await setup(t, { outputs: [`${receiver.url}/h`] });
      const path = `/api/v1/bucket/${made.bucket.id}/input/${made.input.id}/transformation`;
      expect((await t.api("PATCH", path, { function: "missing" })).status).toBe(422);
      expect((await t.api("PATCH", path, { function: "../../etc" })).status).toBe(422);
      expect((await t.api("PATCH", path, { function: "a\u0000b" })).status).toBe(422);
      expect((await t.api("PATCH", path, { function: "x", extra: 1 })).status).toBe(422);
      expect((await t.api("PATCH", `/api/v1/bucket/${made.bucket.id}/input/in_unknown/transformation`, { function: null })).status).toBe(404);
      const other = await t.newOrgToken("in-fn-other");
      expect((await t.api("GET", path, undefined, { authorization: `Bearer ${other}` })).status).toBe(404);
    });

    it("an ephemeral bucket's outputs run the input's and the output's transformations", async () => {
      const made = await setup(t, { bucket: { ephemeral: true }, input: { verification: { type: "github", secret: "gh-secret-0b7e2d" } }, outputs: [`${receiver.url}/eph`] });
      await bucketFunction(made.bucket.id, "only-main", INPUT_FN);
      await bucketFunction(made.bucket.id, "double", OUTPUT_FN);
      expect((await t.api("PATCH", `/api/v1/bucket/${made.bucket.id}/input/${made.input.id}/transformation`, { function: "only-main" })).status).toBe(204);
      expect((await t.api("PATCH", `/api/v1/bucket/${made.bucket.id}/output/${made.outputs[0].id}/transformation`, { function: "double" })).status).toBe(204);
      const before = receiver.received.length;
      const body = pushTo("refs/heads/main", 2);
      expect((await post(made.input.url, { headers: await github(body), body })).status).toBe(200);
      await receiver.waitFor(before + 1);
      expect(receiver.received[before]!.url).toBe("/eph/pushes");
      expect(JSON.parse(receiver.received[before]!.body)).toEqual({ commits: 2, double: 4 });
      const dropped = pushTo("refs/heads/dev", 2);
      expect((await post(made.input.url, { headers: await github(dropped), body: dropped })).status).toBe(200);
      const [attempt] = await until("the dropped ephemeral attempt", async () => {
        const list = await attemptsOfLatest(made.bucket.id);
        return list[0]?.errorCode ? list : undefined;
      });
      expect(attempt).toMatchObject({ errorCode: "E_FUNCTION_CANCELLED" });
      expect(receiver.received.length).toBe(before + 1);
    });

    it("an agent output gets the transformed request, and a drop sends nothing to the agent", async () => {
      const name = `agent-fn-${dialect}`;
      const { bucket, input, output } = await agentBucket(t.api, name);
      await bucketFunction(bucket.id, "only-main", INPUT_FN);
      expect((await t.api("PATCH", `/api/v1/bucket/${bucket.id}/input/${input.id}/transformation`, { function: "only-main" })).status).toBe(204);
      expect((await t.api("PATCH", `/api/v1/bucket/${bucket.id}/output/${output.id}/transformation`, { function: null })).status).toBe(204);
      const token = await createAgentToken(t.api, { name, buckets: [name] });
      const client = new AgentClient({
        server: t.url,
        key: token.key,
        secret: new SecretValue(token.secret),
        routes: [{ bucket: name, forwardTo: `${receiver.url}/agent` }],
        logger: createLogger({ level: "silent" }),
      });
      client.start();
      try {
        await client.ready();
        const before = receiver.received.length;
        const body = pushTo("refs/heads/main", 4);
        expect((await post(input.url, { body, headers: { "content-type": "application/json" } })).status).toBe(200);
        await receiver.waitFor(before + 1);
        expect(receiver.received[before]!.url).toBe("/agent/pushes");
        expect(JSON.parse(receiver.received[before]!.body)).toEqual({ commits: 4 });

        const dropped = pushTo("refs/heads/feature", 1);
        expect((await post(input.url, { body: dropped, headers: { "content-type": "application/json" } })).status).toBe(200);
        const [attempt] = await until("the dropped agent attempt", async () => {
          const list = await attemptsOfLatest(bucket.id);
          return list[0]?.errorCode ? list : undefined;
        });
        expect(attempt).toMatchObject({ errorCode: "E_FUNCTION_CANCELLED" });
        expect(receiver.received.length).toBe(before + 1);
      } finally {
        await client.stop();
      }
    });

    it("deleting an application or a bucket deletes its functions", async () => {
      const appId = await createApp(t, "fn-delete");
      expect((await t.api("POST", `/api/v1/app/${appId}/function`, { name: "gone", code: "export default (x) => x" })).status).toBe(201);
      const made = await setup(t, {});
      await bucketFunction(made.bucket.id, "gone-too", "export default (x) => x");
      const count = async (scopeId: string) =>
        Number((await t.hw.ctx.store.db.selectFrom("functions").select((eb) => eb.fn.countAll().as("n")).where("scope_id", "=", scopeId).executeTakeFirstOrThrow()).n);
      expect(await count(appId)).toBe(1);
      expect(await count(made.bucket.id)).toBe(1);
      expect((await t.api("DELETE", `/api/v1/app/${appId}`)).status).toBe(204);
      expect((await t.api("DELETE", `/api/v1/bucket/${made.bucket.id}`)).status).toBe(204);
      expect(await count(appId)).toBe(0);
      expect(await count(made.bucket.id)).toBe(0);
      expect((await t.api("GET", `/api/v1/app/${appId}/function`)).status).toBe(404);
    });

    it("an output on a different path keeps working when it has no transformation (control)", async () => {
      const made = await setup(t, { outputs: [`${receiver.url}/plain`] });
      await createOutput(t, made.bucket.id, { url: `${receiver.url}/plain2` });
      const before = receiver.received.length;
      expect((await post(made.input.url, { body: "{}", headers: { "content-type": "application/json" } })).status).toBe(200);
      await receiver.waitFor(before + 2);
      expect(receiver.received.slice(before).map((r) => r.body)).toEqual(["{}", "{}"]);
    });
  });
}
