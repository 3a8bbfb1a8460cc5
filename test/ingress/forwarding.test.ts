import { sign as githubSign } from "@octokit/webhooks-methods";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { FakeClock } from "../../src/clock/index.js";
import { DIALECTS } from "../helpers/dialects.js";
import { createOutput, getRequest, listRequests, RawReceiver, send, setup, type Captured, type RawResponder, type RawResponse } from "../helpers/ingress.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const SCHEDULE = [5_000, 60_000];
const GITHUB_SECRET = "forwarding-github-secret";
const TOKEN = "bucket-token-0123456789abcdef";
const UPSTREAM_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

for (const dialect of DIALECTS) {
  describe(`forwarding to URL outputs (${dialect})`, () => {
    let t: TestServer;
    let receiver: RawReceiver;
    let other: RawReceiver;
    let clock: FakeClock;
    /** Answers per path (before `?`); unlisted paths get 200 "ok". */
    const answers = new Map<string, RawResponder>();

    beforeAll(async () => {
      clock = new FakeClock(Date.now());
      // random 0.5 puts the retry jitter at exactly the scheduled delay.
      t = await startTestServer(dialect, { retrySchedule: SCHEDULE }, { clock, random: () => 0.5 });
      receiver = await new RawReceiver().start();
      other = await new RawReceiver().start();
      receiver.respond = (r) => answers.get(r.url.split("?")[0]!)?.(r);
    });
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
      await other?.stop();
    });

    /** Posts to an input and lets the worker forward everything due. */
    async function post(path: string, opts: Parameters<typeof send>[2]): Promise<RawResponse> {
      const res = await send(t.url, path, opts);
      await t.hw.worker.runUntilIdle();
      return res;
    }

    it("forwards the method, the content type and every byte of a binary body", async () => {
      const { bucket, input } = await setup(t, { outputs: [`${receiver.url}/binary`] });
      const body = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), Buffer.from(Array.from({ length: 256 }, (_, i) => 255 - i))]);
      const res = await post(`/in/${input.id}`, { method: "PUT", body, headers: { "content-type": "application/x-custom-binary; v=2" } });
      expect(res.status).toBe(200);
      const [got] = receiver.at("/binary") as [Captured];
      expect(got.method).toBe("PUT");
      expect(got.body.equals(body)).toBe(true);
      expect(got.headers["content-type"]).toBe("application/x-custom-binary; v=2");
      expect(got.headers["content-length"]).toBe(String(body.length));
      const [summary] = await listRequests(t, bucket.id);
      const shown = await getRequest(t, bucket.id, summary.id);
      expect(shown.request.bodyEncoding).toBe("base64");
      expect(Buffer.from(shown.request.body, "base64").equals(body)).toBe(true);
    });

    it("appends the sub-path and the query as received to the output URL, never above the output's path", async () => {
      const { input } = await setup(t, { outputs: [`${receiver.url}/hook?static=1`] });
      const cases: [string, string][] = [
        ["", "/hook?static=1"],
        ["/github/events?b=x%20y&flag&c=%E2%9C%93&d=a+b", "/hook/github/events?static=1&b=x%20y&flag&c=%E2%9C%93&d=a+b"],
        ["/a%2Fb/c?", "/hook/a%2Fb/c?static=1"],
        ["/../../admin?x=1", "/hook/admin?static=1&x=1"],
        ["/%2e%2e/%2E%2e/admin", "/hook/admin?static=1"],
        ["/a/./b/../c", "/hook/a/c?static=1"],
      ];
      for (const [suffix, expected] of cases) {
        const before = receiver.received.length;
        expect((await post(`/in/${input.id}${suffix}`, { body: "{}" })).status, suffix).toBe(200);
        expect(receiver.received.slice(before).map((r) => r.url), suffix).toEqual([expected]);
      }
    });

    it("drops hop-by-hop headers and the bucket's credentials, and keeps the provider's signature", async () => {
      const { bucket, input } = await setup(t, {
        bucket: { auth: { type: "token", token: TOKEN } },
        input: { verification: { type: "github", secret: GITHUB_SECRET } },
        outputs: [`${receiver.url}/headers`],
      });
      const inputViews = [input, (await t.api("GET", `/api/v1/bucket/${bucket.id}/input/${input.id}`)).body, (await t.api("GET", `/api/v1/bucket/${bucket.id}/input`)).body];
      for (const view of inputViews) expect(JSON.stringify(view)).not.toContain(GITHUB_SECRET);
      const body = JSON.stringify({ zen: "Keep it logically awesome." });
      const signature = await githubSign(GITHUB_SECRET, body);
      const provider = { "content-type": "application/json", "x-github-event": "ping", "x-hub-signature-256": signature, "x-custom": "kept" };
      const hop = {
        connection: "keep-alive, x-hop-listed",
        "keep-alive": "timeout=5",
        "x-hop-listed": "listed in Connection",
        te: "trailers",
        upgrade: "h2c",
        "proxy-authorization": "Basic cHJveHk6c2VjcmV0",
        // curl and .NET send it with larger bodies; it was answered (100 Continue) on this hop.
        expect: "100-continue",
      };
      const viaHeader = await post(`/in/${input.id}?keep=1`, { body, chunked: true, headers: { ...provider, ...hop, "x-github-delivery": "d1", authorization: `Bearer ${TOKEN}` } });
      const viaQuery = await post(`/in/${input.id}?token=${TOKEN}&keep=2`, { body, headers: { ...provider, "x-github-delivery": "d2" } });
      expect([viaHeader.status, viaQuery.status]).toEqual([200, 200]);
      // They did reach Hookwarden (the stored request keeps them); only the forward drops them.
      const stored = await getRequest(t, bucket.id, (await listRequests(t, bucket.id)).at(-1).id);
      const storedNames = stored.request.headers.map(([k]: [string]) => k.toLowerCase());
      for (const name of ["keep-alive", "x-hop-listed", "te", "upgrade", "proxy-authorization", "transfer-encoding", "expect"]) expect(storedNames, name).toContain(name);

      const [first, second] = receiver.at("/headers") as [Captured, Captured];
      for (const name of ["keep-alive", "x-hop-listed", "te", "upgrade", "proxy-authorization", "transfer-encoding", "expect", "authorization"]) {
        expect(first.headers[name], name).toBeUndefined();
      }
      expect(String(first.headers.connection ?? "")).not.toContain("x-hop-listed");
      expect(first.headers["content-length"]).toBe(String(Buffer.byteLength(body)));
      for (const got of [first, second]) {
        expect(got.body.toString()).toBe(body);
        expect(got.headers).toMatchObject({ "x-hub-signature-256": signature, "x-github-event": "ping", "x-custom": "kept" });
        expect(got.url).not.toContain(TOKEN);
        expect(got.headers.authorization).toBeUndefined();
      }
      expect([first.url, second.url]).toEqual(["/headers?keep=1", "/headers?keep=2"]);

      // Basic credentials are the bucket's too; without bucket auth, Authorization is the provider's.
      const basic = await setup(t, { bucket: { auth: { type: "basic", username: "u", password: "a-long-enough-password" } }, outputs: [`${receiver.url}/basic`] });
      const open = await setup(t, { outputs: [`${receiver.url}/open`] });
      await post(`/in/${basic.input.id}`, { body: "{}", headers: { authorization: `Basic ${Buffer.from("u:a-long-enough-password").toString("base64")}` } });
      await post(`/in/${open.input.id}?token=not-ours`, { body: "{}", headers: { authorization: "Bearer for-the-destination" } });
      expect(receiver.at("/basic")[0]!.headers.authorization).toBeUndefined();
      expect(receiver.at("/open")[0]).toMatchObject({ url: "/open?token=not-ours", headers: { authorization: "Bearer for-the-destination" } });
    });

    it("fans a request out to every enabled output", async () => {
      const { bucket, input } = await setup(t, { outputs: [`${receiver.url}/fan-a`, `${receiver.url}/fan-b`, `${other.url}/fan-c`] });
      await createOutput(t, bucket.id, { url: `${receiver.url}/fan-disabled`, disabled: true });
      await post(`/in/${input.id}/x?y=1`, { body: "fan" });
      expect(receiver.at("/fan-a/x").map((r) => r.body.toString())).toEqual(["fan"]);
      expect(receiver.at("/fan-b/x").map((r) => r.body.toString())).toEqual(["fan"]);
      expect(other.at("/fan-c/x").map((r) => r.body.toString())).toEqual(["fan"]);
      expect(receiver.at("/fan-disabled/x")).toHaveLength(0);
    });

    it("applies output changes made through the API to the very next request (the node's output cache)", async () => {
      const { bucket, input, outputs } = await setup(t, { outputs: [`${receiver.url}/cache-a`] });
      await post(`/in/${input.id}`, { body: "1" });
      const b = await createOutput(t, bucket.id, { url: `${receiver.url}/cache-b` });
      await post(`/in/${input.id}`, { body: "2" });
      const disabled = await t.api("PATCH", `/api/v1/bucket/${bucket.id}/output/${outputs[0].id}`, { disabled: true });
      expect(disabled.status, disabled.text).toBe(200);
      await post(`/in/${input.id}`, { body: "3" });
      const moved = await t.api("PATCH", `/api/v1/bucket/${bucket.id}/output/${b.id}`, { url: `${receiver.url}/cache-c` });
      expect(moved.status, moved.text).toBe(200);
      await post(`/in/${input.id}`, { body: "4" });
      expect((await t.api("DELETE", `/api/v1/bucket/${bucket.id}/output/${b.id}`)).status).toBe(204);
      expect((await post(`/in/${input.id}`, { body: "5" })).status).toBe(200);
      expect(receiver.at("/cache-a").map((r) => r.body.toString())).toEqual(["1", "2"]);
      expect(receiver.at("/cache-b").map((r) => r.body.toString())).toEqual(["2", "3"]);
      expect(receiver.at("/cache-c").map((r) => r.body.toString())).toEqual(["4"]);
      expect((await listRequests(t, bucket.id)).length).toBe(5);
    });

    it("re-signs for an output with resign: true, verifiable with the official standardwebhooks library", async () => {
      const { bucket, input } = await setup(t, { outputs: [`${receiver.url}/plain`] });
      const signed = await createOutput(t, bucket.id, { url: `${receiver.url}/resigned`, resign: true });
      const secret: string = signed.signingSecret;
      expect(secret).toMatch(/^whsec_/);
      for (const r of [await t.api("GET", `/api/v1/bucket/${bucket.id}/output/${signed.id}`), await t.api("GET", `/api/v1/bucket/${bucket.id}/output`)]) {
        expect(r.status).toBe(200);
        expect(r.text).not.toContain(secret.slice(6));
      }
      const body = JSON.stringify({ type: "invoice.paid", n: 1 });
      // The upstream sender's own Standard Webhooks headers, under a secret the destination does not know.
      const upstream = new Webhook(UPSTREAM_SECRET);
      const ts = new Date(clock.now());
      const theirs = { "webhook-id": "msg_upstream", "webhook-timestamp": String(Math.floor(ts.getTime() / 1000)), "webhook-signature": upstream.sign("msg_upstream", ts, body) };
      await post(`/in/${input.id}`, { body, headers: { "content-type": "application/json", ...theirs } });

      const [got] = receiver.at("/resigned") as [Captured];
      const headers = got.headers as Record<string, string>;
      expect(headers["webhook-id"]).toMatch(/^req_/);
      expect(new Webhook(secret).verify(got.body.toString(), headers)).toEqual(JSON.parse(body));
      expect(() => new Webhook(UPSTREAM_SECRET).verify(got.body.toString(), headers)).toThrow();
      // The output without resign passes the sender's headers through untouched.
      expect(receiver.at("/plain")[0]!.headers).toMatchObject(theirs);
    });

    it("retries a failing output on the retry schedule, lists its attempts, and replays on request", async () => {
      const script = [500, 503, 200];
      answers.set("/flaky/sub", () => {
        const status = script.length > 1 ? script.shift()! : script[0]!;
        return { status, body: `answer ${status}` };
      });
      const { bucket, input, outputs } = await setup(t, { outputs: [`${receiver.url}/flaky`] });
      await post(`/in/${input.id}/sub?q=1`, { body: "retry me" });
      const hits = () => receiver.at("/flaky/sub").length;
      expect(hits()).toBe(1);
      for (const [delay, expected] of [[SCHEDULE[0]!, 2], [SCHEDULE[1]!, 3]] as const) {
        clock.advance(delay - 1);
        await t.hw.worker.runUntilIdle();
        expect(hits()).toBe(expected - 1);
        clock.advance(1);
        await t.hw.worker.runUntilIdle();
        expect(hits()).toBe(expected);
      }
      const [summary] = await listRequests(t, bucket.id);
      const attempts = () => getRequest(t, bucket.id, summary.id).then((r) => [...r.attempts].sort((a: any, b: any) => a.id.localeCompare(b.id)));
      expect((await attempts()).map((a: any) => [a.responseStatusCode, a.statusText, a.endpointId, a.url, a.triggerType])).toEqual([
        [500, "fail", outputs[0].id, `${receiver.url}/flaky`, 0],
        [503, "fail", outputs[0].id, `${receiver.url}/flaky`, 0],
        [200, "success", outputs[0].id, `${receiver.url}/flaky`, 0],
      ]);
      clock.advance(10 * 3_600_000);
      await t.hw.worker.runUntilIdle();
      expect(hits()).toBe(3);

      const replay = await t.api("POST", `/api/v1/bucket/${bucket.id}/request/${summary.id}/replay`);
      expect(replay.status, replay.text).toBe(202);
      expect(replay.body).toEqual({ queued: 1 });
      await t.hw.worker.runUntilIdle();
      expect(hits()).toBe(4);
      expect(receiver.at("/flaky/sub")[3]).toMatchObject({ url: "/flaky/sub?q=1" });
      expect(receiver.at("/flaky/sub")[3]!.body.toString()).toBe("retry me");
      expect((await attempts()).map((a: any) => a.triggerType)).toEqual([0, 0, 0, 1]);
    });

    it("in static mode shows the caller nothing of the destination: not its status, headers, body or time", async () => {
      const response = { mode: "static", status: 202, headers: { "x-ack": "yes" }, body: "accepted" };
      answers.set("/slow-failing", () => ({ status: 500, delayMs: 1_500, headers: { "x-destination": "leak" }, body: "destination body" }));
      const slow = await setup(t, { input: { response }, outputs: [`${receiver.url}/slow-failing`] });
      const fast = await setup(t, { input: { response }, outputs: [`${receiver.url}/fast-ok`] });
      const fromSlow = await send(t.url, `/in/${slow.input.id}`, { body: "{}" });
      const fromFast = await send(t.url, `/in/${fast.input.id}`, { body: "{}" });
      expect([fromSlow.status, fromSlow.text, fromSlow.headers["x-ack"]]).toEqual([202, "accepted", "yes"]);
      expect(fromSlow.headers["x-destination"]).toBeUndefined();
      const { date: _a, ...slowHeaders } = fromSlow.headers;
      const { date: _b, ...fastHeaders } = fromFast.headers;
      expect(slowHeaders).toEqual(fastHeaders);
      expect(fromSlow.ms).toBeLessThan(1_000);
      // The destination did get it: it was slow and failing, not skipped.
      await vi.waitFor(() => expect(receiver.at("/slow-failing")).toHaveLength(1), { timeout: 5_000 });
    });
  });
}
