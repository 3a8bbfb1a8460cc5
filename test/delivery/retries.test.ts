import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/clock/index.js";
import { loadConfig } from "../../src/config/index.js";
import { DIALECTS } from "../helpers/dialects.js";
import { attemptsOf, createApp, createEndpoint, publish } from "../helpers/delivery.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const SCHEDULE = [5_000, 60_000, 600_000];
const MIN = 60_000;
const HOUR = 60 * MIN;

describe("the default retry schedule", () => {
  it("is Svix's: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h after the first attempt", () => {
    expect(loadConfig({}, {}).retrySchedule).toEqual([5_000, 5 * MIN, 30 * MIN, 2 * HOUR, 5 * HOUR, 10 * HOUR, 10 * HOUR]);
  });
});

for (const dialect of DIALECTS) {
  describe(`retries on a fake clock (${dialect})`, () => {
    let t: TestServer;
    let receiver: Receiver;
    let clock: FakeClock;
    /** Answers per path, consumed in order; the last one repeats. */
    const script = new Map<string, number[]>();

    beforeAll(async () => {
      clock = new FakeClock(Date.now());
      // random 0.5 puts the ±20% jitter at exactly the scheduled delay.
      t = await startTestServer(dialect, { retrySchedule: SCHEDULE }, { clock, random: () => 0.5 });
      receiver = await new Receiver().start();
      receiver.respond = (req) => {
        const list = script.get(req.url) ?? [200];
        const status = list.length > 1 ? list.shift()! : list[0]!;
        return { status, body: `answer ${status}` };
      };
    });
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    const hits = (path: string) => receiver.received.filter((r) => r.url === path);
    const jobsOf = async (msgId: string) => (await t.hw.ctx.store.db.selectFrom("jobs").select("id").where("item_id", "=", msgId).execute()).length;

    /** Moves the clock and lets the worker do everything that is now due. */
    async function advance(ms: number): Promise<void> {
      clock.advance(ms);
      await t.hw.worker.runUntilIdle();
    }

    it("retries a failing endpoint on schedule until it succeeds", async () => {
      script.set("/flaky", [500, 503, 200]);
      const appId = await createApp(t, "flaky");
      await createEndpoint(t, appId, { url: `${receiver.url}/flaky` });
      const published = clock.now();
      const msg = await publish(t, appId, { payload: { retry: "me" } });
      await t.hw.worker.runUntilIdle();
      expect(hits("/flaky")).toHaveLength(1);

      await advance(SCHEDULE[0]! - 1);
      expect(hits("/flaky")).toHaveLength(1);
      await advance(1);
      expect(hits("/flaky")).toHaveLength(2);

      await advance(SCHEDULE[1]! - 1);
      expect(hits("/flaky")).toHaveLength(2);
      await advance(1);
      expect(hits("/flaky")).toHaveLength(3);

      const attempts = await attemptsOf(t, appId, msg.id);
      expect(attempts.map((a) => [a.statusText, a.responseStatusCode, a.errorCode])).toEqual([
        ["fail", 500, "E_HTTP_STATUS"],
        ["fail", 503, "E_HTTP_STATUS"],
        ["success", 200, null],
      ]);
      expect(attempts.map((a) => Date.parse(a.timestamp) - published)).toEqual([0, SCHEDULE[0], SCHEDULE[0]! + SCHEDULE[1]!]);
      expect(attempts.every((a) => a.triggerType === 0)).toBe(true);
      expect(await jobsOf(msg.id)).toBe(0);

      // Every retry is the same message (receivers dedupe on webhook-id), freshly timestamped.
      const got = hits("/flaky");
      expect(new Set(got.map((r) => r.headers["webhook-id"]))).toEqual(new Set([msg.id]));
      expect(got.map((r) => Number(r.headers["webhook-timestamp"]))).toEqual([0, SCHEDULE[0]!, SCHEDULE[0]! + SCHEDULE[1]!].map((d) => Math.floor((published + d) / 1000)));
      expect(new Set(got.map((r) => r.body))).toEqual(new Set([JSON.stringify({ retry: "me" })]));

      // Nothing more happens later.
      await advance(SCHEDULE[2]! * 2);
      expect(hits("/flaky")).toHaveLength(3);
    });

    it("never attempts before the scheduled time, however often the worker runs", async () => {
      script.set("/early", [500, 200]);
      const appId = await createApp(t, "early");
      await createEndpoint(t, appId, { url: `${receiver.url}/early` });
      await publish(t, appId, {});
      await t.hw.worker.runUntilIdle();
      for (let i = 0; i < 4; i++) {
        await advance(1_000);
        expect(hits("/early")).toHaveLength(1);
      }
      await advance(999);
      expect(hits("/early")).toHaveLength(1);
      await advance(1);
      expect(hits("/early")).toHaveLength(2);
    });

    it("gives up after the last scheduled retry: schedule.length + 1 attempts, then the job is gone", async () => {
      script.set("/down", [500]);
      const appId = await createApp(t, "down");
      const ep = await createEndpoint(t, appId, { url: `${receiver.url}/down` });
      const msg = await publish(t, appId, { payload: { doomed: true } });
      await t.hw.worker.runUntilIdle();
      for (const delay of SCHEDULE) {
        expect(await jobsOf(msg.id)).toBe(1);
        await advance(delay);
      }
      const attempts = await attemptsOf(t, appId, msg.id);
      expect(attempts).toHaveLength(SCHEDULE.length + 1);
      expect(attempts.every((a) => a.statusText === "fail" && a.responseStatusCode === 500)).toBe(true);
      expect(await jobsOf(msg.id)).toBe(0);

      await advance(24 * HOUR);
      expect(hits("/down")).toHaveLength(SCHEDULE.length + 1);
      expect(await attemptsOf(t, appId, msg.id)).toHaveLength(SCHEDULE.length + 1);

      // A manual resend is one more attempt, marked as such.
      script.set("/down", [200]);
      const resend = await t.api("POST", `/api/v1/app/${appId}/msg/${msg.id}/endpoint/${ep.id}/resend`);
      expect(resend.status).toBe(202);
      await t.hw.worker.runUntilIdle();
      const after = await attemptsOf(t, appId, msg.id);
      expect(after).toHaveLength(SCHEDULE.length + 2);
      expect(after.at(-1)).toMatchObject({ statusText: "success", triggerType: 1 });
    });

    it("retries each endpoint of a message independently", async () => {
      script.set("/fan-ok", [200]);
      script.set("/fan-bad", [500, 200]);
      const appId = await createApp(t, "fan");
      const good = await createEndpoint(t, appId, { url: `${receiver.url}/fan-ok` });
      const bad = await createEndpoint(t, appId, { url: `${receiver.url}/fan-bad` });
      const msg = await publish(t, appId, {});
      await t.hw.worker.runUntilIdle();
      await advance(SCHEDULE[0]!);
      const attempts = await attemptsOf(t, appId, msg.id);
      const byEndpoint = (id: string) => attempts.filter((a) => a.endpointId === id).map((a) => a.statusText);
      expect(byEndpoint(good.id)).toEqual(["success"]);
      expect(byEndpoint(bad.id)).toEqual(["fail", "success"]);
      expect(hits("/fan-ok")).toHaveLength(1);
    });
  });
}
