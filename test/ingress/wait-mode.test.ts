import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { FakeClock } from "../../src/clock/index.js";
import { closedPort } from "../helpers/delivery.js";
import { DIALECTS } from "../helpers/dialects.js";
import { canary, databaseText, getRequest, listRequests, RawReceiver, send, setup, storedForms, type RawResponder } from "../helpers/ingress.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const SCHEDULE = [5_000, 60_000];
const CREATED = { status: 201, headers: { "content-type": "application/json", "x-internal": "destination-only" }, body: JSON.stringify({ id: "ord_1", ok: true }) };

for (const dialect of DIALECTS) {
  describe(`inputs in wait mode answer with the first destination's response (${dialect})`, () => {
    let t: TestServer;
    let receiver: RawReceiver;
    let clock: FakeClock;
    const answers = new Map<string, RawResponder>();

    beforeAll(async () => {
      clock = new FakeClock(Date.now());
      t = await startTestServer(dialect, { retrySchedule: SCHEDULE }, { clock, random: () => 0.5 });
      receiver = await new RawReceiver().start();
      receiver.respond = (r) => answers.get(r.url.split("?")[0]!)?.(r);
    });
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    /** The one stored request of a bucket, once its answered status is recorded, with its attempts. */
    async function storedOnce(bucketId: string, status: number, attempts: number): Promise<any> {
      const [summary] = await listRequests(t, bucketId);
      await vi.waitFor(async () => {
        const r = await getRequest(t, bucketId, summary.id);
        expect([r.statusCode, r.attempts.length]).toEqual([status, attempts]);
      });
      return getRequest(t, bucketId, summary.id);
    }

    it("answers with the first output's status, body and content type, and forwards to the others too", async () => {
      answers.set("/created/orders", () => CREATED);
      const { bucket, input, outputs } = await setup(t, { input: { response: { mode: "wait", timeoutMs: 5_000 } }, outputs: [`${receiver.url}/created`, `${receiver.url}/also`] });
      const res = await send(t.url, `/in/${input.id}/orders?x=1`, { body: JSON.stringify({ order: 1 }), headers: { "content-type": "application/json" } });
      expect(res.status).toBe(201);
      expect(res.json).toEqual({ id: "ord_1", ok: true });
      expect(res.headers["content-type"]).toMatch(/^application\/json/);
      await t.hw.worker.runUntilIdle();
      expect(receiver.at("/created/orders")).toHaveLength(1);
      expect(receiver.at("/also/orders")).toHaveLength(1);

      const stored = await storedOnce(bucket.id, 201, 2);
      const first = stored.attempts.find((a: any) => a.endpointId === outputs[0].id);
      expect(first).toMatchObject({ responseStatusCode: 201, statusText: "success", response: CREATED.body });
    });

    it("passes a binary answer larger than the attempt record's 64 KiB through byte for byte", async () => {
      // Every byte value, 200 KiB: not valid UTF-8, and three times `responseBodyLimit`.
      const bytes = Buffer.alloc(200 * 1024, 0);
      for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + (i >> 8)) & 0xff;
      answers.set("/binary", () => ({ status: 200, headers: { "content-type": "application/octet-stream" }, body: bytes }));
      const { bucket, input } = await setup(t, { input: { response: { mode: "wait", timeoutMs: 5_000 } }, outputs: [`${receiver.url}/binary`] });
      const res = await send(t.url, `/in/${input.id}`, { body: "{}" });
      expect(res.status).toBe(200);
      expect(res.headers["content-type"]).toBe("application/octet-stream");
      expect(res.body.length).toBe(bytes.length);
      expect(res.body.equals(bytes)).toBe(true);
      // The attempt record keeps only the first 64 KiB (as text), as for any delivery.
      await t.hw.worker.runUntilIdle();
      const stored = await storedOnce(bucket.id, 200, 1);
      expect(Buffer.byteLength(stored.attempts[0].response, "utf8")).toBeLessThanOrEqual(3 * 64 * 1024);
      expect(stored.attempts[0].response.length).toBeLessThan(bytes.length);
    });

    it("answers 504 E_DESTINATION_TIMEOUT when the destination is late, and still records its attempt", async () => {
      answers.set("/late", () => ({ status: 200, body: "finally", delayMs: 800 }));
      const { bucket, input } = await setup(t, { input: { response: { mode: "wait", timeoutMs: 150 } }, outputs: [`${receiver.url}/late`] });
      const res = await send(t.url, `/in/${input.id}`, { body: "{}" });
      expect(res.status).toBe(504);
      expect(res.json).toEqual({ code: "E_DESTINATION_TIMEOUT", detail: expect.any(String) });
      expect(res.ms).toBeLessThan(700);
      expect(res.text).not.toContain("finally");

      await t.hw.worker.runUntilIdle();
      const stored = await storedOnce(bucket.id, 504, 1);
      expect(stored.attempts[0]).toMatchObject({ responseStatusCode: 200, statusText: "success", response: "finally" });
      expect(receiver.at("/late")).toHaveLength(1);
    });

    it("passes a failing destination's status through, retries it on schedule, and answers 502 when unreachable or absent", async () => {
      const script = [500, 200];
      answers.set("/failing", () => {
        const status = script.length > 1 ? script.shift()! : script[0]!;
        return { status, body: `status ${status}` };
      });
      const failing = await setup(t, { input: { response: { mode: "wait", timeoutMs: 5_000 } }, outputs: [`${receiver.url}/failing`] });
      const res = await send(t.url, `/in/${failing.input.id}`, { body: "{}" });
      expect([res.status, res.text]).toEqual([500, "status 500"]);
      await t.hw.worker.runUntilIdle();
      clock.advance(SCHEDULE[0]!);
      await t.hw.worker.runUntilIdle();
      const stored = await storedOnce(failing.bucket.id, 500, 2);
      expect(stored.attempts.map((a: any) => a.responseStatusCode).sort()).toEqual([200, 500]);

      const unreachable = await setup(t, { input: { response: { mode: "wait", timeoutMs: 5_000 } }, outputs: [`http://127.0.0.1:${await closedPort()}/gone`] });
      const down = await send(t.url, `/in/${unreachable.input.id}`, { body: "{}" });
      expect([down.status, down.json?.code]).toEqual([502, "E_DESTINATION_UNAVAILABLE"]);

      const none = await setup(t, { input: { response: { mode: "wait", timeoutMs: 5_000 } } });
      const nowhere = await send(t.url, `/in/${none.input.id}`, { body: "{}" });
      expect([nowhere.status, nowhere.json?.code]).toEqual([502, "E_NO_DESTINATION"]);
    });

    it("works for ephemeral buckets: the destination's answer, each output once, nothing of the request stored", async () => {
      answers.set("/eph-created", () => CREATED);
      answers.set("/eph-late", () => ({ status: 202, delayMs: 800 }));
      const body = JSON.stringify({ secret: canary("ephwait") });
      const { bucket, input, outputs } = await setup(t, {
        bucket: { ephemeral: true },
        input: { response: { mode: "wait", timeoutMs: 5_000 } },
        outputs: [`${receiver.url}/eph-created`, `${receiver.url}/eph-other`],
      });
      const res = await send(t.url, `/in/${input.id}`, { body, headers: { "content-type": "application/json" } });
      expect([res.status, res.json]).toEqual([201, { id: "ord_1", ok: true }]);
      await vi.waitFor(() => expect(receiver.at("/eph-other")).toHaveLength(1));
      const stored = await storedOnce(bucket.id, 201, 2);
      expect(stored.request).toBeNull();
      expect(stored.attempts.find((a: any) => a.endpointId === outputs[0].id)).toMatchObject({ responseStatusCode: 201, response: "" });
      expect(receiver.at("/eph-created")).toHaveLength(1);
      const text = await databaseText(t);
      for (const form of storedForms(body)) expect(text).not.toContain(form);

      const late = await setup(t, { bucket: { ephemeral: true }, input: { response: { mode: "wait", timeoutMs: 150 } }, outputs: [`${receiver.url}/eph-late`] });
      const timedOut = await send(t.url, `/in/${late.input.id}`, { body: "{}" });
      expect([timedOut.status, timedOut.json?.code]).toEqual([504, "E_DESTINATION_TIMEOUT"]);
      const lateStored = await storedOnce(late.bucket.id, 504, 1);
      expect(lateStored.attempts[0]).toMatchObject({ responseStatusCode: 202 });
    });
  });
}
