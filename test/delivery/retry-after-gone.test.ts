import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/clock/index.js";
import { RETRY_AFTER_CAP_MS } from "../../src/engine/retry-schedule.js";
import { DIALECTS } from "../helpers/dialects.js";
import { attemptsOf, createApp, createEndpoint, getEndpoint, publish } from "../helpers/delivery.js";
import { send, setup } from "../helpers/ingress.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const SCHEDULE = [5_000, 60_000, 600_000];

/**
 * Standard Webhooks' recommendations for senders: `Retry-After` on 429/503 is honoured (Svix's
 * clamp: max(schedule, Retry-After), at most schedule + 2 h), `410 Gone` disables the endpoint.
 */
for (const dialect of DIALECTS) {
  describe(`Retry-After and 410 Gone (${dialect})`, () => {
    let t: TestServer;
    let receiver: Receiver;
    let clock: FakeClock;
    /** Answers per path, consumed in order; the last one repeats. */
    const script = new Map<string, { status: number; headers?: Record<string, string> }[]>();

    beforeAll(async () => {
      // Whole seconds: HTTP-dates have a one-second resolution.
      clock = new FakeClock(Math.floor(Date.now() / 1000) * 1000);
      t = await startTestServer(dialect, { retrySchedule: SCHEDULE }, { clock, random: () => 0.5 });
      receiver = await new Receiver().start();
      receiver.respond = (req) => {
        const list = script.get(req.url) ?? [{ status: 200 }];
        const a = list.length > 1 ? list.shift()! : list[0]!;
        return { status: a.status, body: `answer ${a.status}`, ...(a.headers ? { headers: a.headers } : {}) };
      };
    });
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    const hits = (path: string) => receiver.received.filter((r) => r.url === path).length;
    async function advance(ms: number): Promise<void> {
      clock.advance(ms);
      await t.hw.worker.runUntilIdle();
    }
    async function firstAttempt(path: string): Promise<{ appId: string; msgId: string; epId: string }> {
      const appId = await createApp(t, path);
      const ep = await createEndpoint(t, appId, { url: `${receiver.url}${path}` });
      const msg = await publish(t, appId, {});
      await t.hw.worker.runUntilIdle();
      expect(hits(path)).toBe(1);
      return { appId, msgId: msg.id, epId: ep.id };
    }

    it("429 with Retry-After in seconds: the next attempt waits that long, not the schedule's 5 s", async () => {
      script.set("/slow-429", [{ status: 429, headers: { "retry-after": "120" } }, { status: 200 }]);
      const { appId, msgId } = await firstAttempt("/slow-429");
      await advance(SCHEDULE[0]!);
      expect(hits("/slow-429")).toBe(1);
      await advance(120_000 - SCHEDULE[0]! - 1);
      expect(hits("/slow-429")).toBe(1);
      await advance(1);
      expect(hits("/slow-429")).toBe(2);
      const attempts = await attemptsOf(t, appId, msgId);
      expect(attempts.map((a) => [a.responseStatusCode, a.errorCode])).toEqual([
        [429, "E_RETRY_AFTER"],
        [200, null],
      ]);
    });

    it("503 with Retry-After as an HTTP-date: not retried before that date", async () => {
      const until = clock.now() + 300_000;
      script.set("/slow-503", [{ status: 503, headers: { "retry-after": new Date(until).toUTCString() } }, { status: 200 }]);
      const { appId, msgId } = await firstAttempt("/slow-503");
      await advance(300_000 - 1);
      expect(hits("/slow-503")).toBe(1);
      await advance(1);
      expect(hits("/slow-503")).toBe(2);
      expect((await attemptsOf(t, appId, msgId)).map((a) => [a.responseStatusCode, a.errorCode])).toEqual([
        [503, "E_RETRY_AFTER"],
        [200, null],
      ]);
    });

    it("a Retry-After of a year is clamped to the schedule's delay + 2 h (Svix's cap)", async () => {
      script.set("/year", [{ status: 503, headers: { "retry-after": "31536000" } }, { status: 200 }]);
      await firstAttempt("/year");
      await advance(SCHEDULE[0]! + RETRY_AFTER_CAP_MS - 1);
      expect(hits("/year")).toBe(1);
      await advance(1);
      expect(hits("/year")).toBe(2);
    });

    it("a shorter or malformed Retry-After never makes a retry come sooner than the schedule", async () => {
      script.set("/short", [{ status: 429, headers: { "retry-after": "1" } }, { status: 429, headers: { "retry-after": "soon" } }, { status: 200 }]);
      const { appId, msgId } = await firstAttempt("/short");
      await advance(SCHEDULE[0]! - 1);
      expect(hits("/short")).toBe(1);
      await advance(1);
      expect(hits("/short")).toBe(2);
      await advance(SCHEDULE[1]!);
      expect(hits("/short")).toBe(3);
      expect((await attemptsOf(t, appId, msgId)).map((a) => a.errorCode)).toEqual(["E_RETRY_AFTER", "E_HTTP_STATUS", null]);
    });

    it("Retry-After on a 500 is not honoured (only 429 and 503)", async () => {
      script.set("/500", [{ status: 500, headers: { "retry-after": "3600" } }, { status: 200 }]);
      await firstAttempt("/500");
      await advance(SCHEDULE[0]!);
      expect(hits("/500")).toBe(2);
    });

    it("410 Gone disables the endpoint with a reason; no further attempt, for this message or the next", async () => {
      script.set("/gone", [{ status: 410 }]);
      const { appId, msgId, epId } = await firstAttempt("/gone");
      const ep = await getEndpoint(t, appId, epId);
      expect(ep.disabled).toBe(true);
      expect(ep.disabledReason).toMatch(/410 Gone/);
      // Through the official client too.
      const viaSvix = await t.svix.endpoint.get(appId, epId);
      expect(viaSvix.disabled).toBe(true);
      const attempts = await attemptsOf(t, appId, msgId);
      expect(attempts.map((a) => [a.responseStatusCode, a.errorCode, a.statusText])).toEqual([[410, "E_ENDPOINT_GONE", "fail"]]);
      await publish(t, appId, {});
      for (const d of SCHEDULE) await advance(d);
      expect(hits("/gone")).toBe(1);
      // Re-enabling (the receiver is back) clears the reason and delivers again.
      script.set("/gone", [{ status: 200 }]);
      const res = await t.api("PATCH", `/api/v1/app/${appId}/endpoint/${epId}`, { disabled: false });
      expect(res.status, res.text).toBe(200);
      expect(res.body.disabledReason).toBeNull();
      await publish(t, appId, {});
      await t.hw.worker.runUntilIdle();
      expect(hits("/gone")).toBe(2);
    });

    it("a bucket output answering 410 Gone is disabled with a reason and not called again", async () => {
      script.set("/out-gone", [{ status: 410 }]);
      const { bucket, input, outputs } = await setup(t, { outputs: [`${receiver.url}/out-gone`] });
      expect((await send(t.url, `/in/${input.id}`, { method: "POST", body: "{}", headers: { "content-type": "application/json" } })).status).toBe(200);
      await t.hw.worker.runUntilIdle();
      expect(hits("/out-gone")).toBe(1);
      const res = await t.api("GET", `/api/v1/bucket/${bucket.id}/output/${outputs[0].id}`);
      expect(res.status, res.text).toBe(200);
      expect(res.body.disabled).toBe(true);
      expect(res.body.disabledReason).toMatch(/410 Gone/);
      for (const d of SCHEDULE) await advance(d);
      expect(hits("/out-gone")).toBe(1);
    });
  });
}
