import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/clock/index.js";
import { DIALECTS } from "../helpers/dialects.js";
import { attemptsTo, createApp, createEndpoint, getEndpoint, publish } from "../helpers/delivery.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const THRESHOLD = 3;
const COOLDOWN = 60_000;
const HOUR = 3_600_000;

for (const dialect of DIALECTS) {
  describe(`circuit breaker and automatic disabling (${dialect})`, () => {
    let t: TestServer;
    let receiver: Receiver;
    let clock: FakeClock;
    /** Paths that currently answer 500. */
    const failing = new Set<string>();
    /** Paths that answer 200 after 150 ms. */
    const slow = new Set<string>();

    beforeAll(async () => {
      clock = new FakeClock(Date.now());
      t = await startTestServer(
        dialect,
        // One retry, far away: the circuit, not the retry schedule, decides what is sent below.
        { retrySchedule: [10 * HOUR], circuitBreakerThreshold: THRESHOLD, circuitBreakerCooldown: COOLDOWN, disableAfter: HOUR },
        { clock, random: () => 0.5 },
      );
      receiver = await new Receiver().start();
      receiver.respond = (req) => (failing.has(req.url) ? { status: 500, body: "down" } : slow.has(req.url) ? { delayMs: 150 } : undefined);
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

    it("stops sending after THRESHOLD consecutive failures, probes once per cooldown, and drains after a good probe", async () => {
      const path = "/breaker";
      failing.add(path);
      const appId = await createApp(t, "breaker");
      const ep = await createEndpoint(t, appId, { url: `${receiver.url}${path}` });
      for (let i = 0; i < THRESHOLD; i++) {
        await publish(t, appId, { payload: { n: i } });
        await t.hw.worker.runUntilIdle();
      }
      expect(hits(path)).toBe(THRESHOLD);

      // Open: new messages are accepted but not sent.
      for (let i = 0; i < 5; i++) await publish(t, appId, { payload: { backlog: i } });
      await t.hw.worker.runUntilIdle();
      expect(hits(path)).toBe(THRESHOLD);
      await advance(COOLDOWN - 1_000);
      expect(hits(path)).toBe(THRESHOLD);

      // Half-open: exactly one probe. It fails, so the circuit opens again for a cooldown.
      await advance(2_000);
      expect(hits(path)).toBe(THRESHOLD + 1);
      await t.hw.worker.runUntilIdle();
      await advance(COOLDOWN - 2_000);
      expect(hits(path)).toBe(THRESHOLD + 1);

      // The endpoint recovers: one probe succeeds, then the rest of the backlog follows.
      failing.delete(path);
      slow.add(path);
      await advance(3_000);
      expect(hits(path)).toBe(THRESHOLD + 5);
      // The rest waited for the probe's answer (150 ms) instead of going out beside it.
      const [probe, ...drained] = receiver.received.filter((r) => r.url === path).slice(THRESHOLD + 1);
      for (const r of drained) expect(r.at - probe!.at).toBeGreaterThanOrEqual(140);
      const attempts = await attemptsTo(t, appId, ep.id);
      expect(attempts.map((a) => a.statusText)).toEqual([...Array<string>(THRESHOLD + 1).fill("fail"), ...Array<string>(4).fill("success")]);
      // No attempt was spent (or counted) while the circuit held messages back.
      expect(attempts).toHaveLength(THRESHOLD + 5);

      // Closed again: a new message goes straight out.
      await publish(t, appId, { payload: { after: "recovery" } });
      await t.hw.worker.runUntilIdle();
      expect(hits(path)).toBe(THRESHOLD + 6);
      expect((await getEndpoint(t, appId, ep.id)).disabled).toBe(false);
    });

    it("does not let one endpoint's open circuit hold back another endpoint", async () => {
      failing.add("/broken-neighbour");
      const appId = await createApp(t, "neighbours");
      await createEndpoint(t, appId, { url: `${receiver.url}/broken-neighbour` });
      await createEndpoint(t, appId, { url: `${receiver.url}/healthy-neighbour` });
      for (let i = 0; i < THRESHOLD + 3; i++) {
        await publish(t, appId, { payload: { i } });
        await t.hw.worker.runUntilIdle();
      }
      expect(hits("/broken-neighbour")).toBe(THRESHOLD);
      expect(hits("/healthy-neighbour")).toBe(THRESHOLD + 3);
    });

    it("disables an endpoint that has failed for longer than disableAfter, and PATCH disabled:false revives it", async () => {
      const path = "/dying";
      failing.add(path);
      const appId = await createApp(t, "dying");
      const ep = await createEndpoint(t, appId, { url: `${receiver.url}/dying` });
      const started = clock.now();
      // One new message every 15 minutes, each failing: a continuous failure streak (the circuit
      // opens after THRESHOLD, so most of these are only probed).
      while (clock.now() - started < HOUR + 15 * 60_000) {
        await publish(t, appId, { payload: { at: clock.now() - started } });
        await t.hw.worker.runUntilIdle();
        await advance(15 * 60_000);
      }
      const got = await getEndpoint(t, appId, ep.id);
      expect(got.disabled).toBe(true);
      expect(typeof got.disabledReason).toBe("string");
      expect(got.disabledReason.length).toBeGreaterThan(0);
      const lastAttempt = (await attemptsTo(t, appId, ep.id)).at(-1)!;
      expect(Date.parse(lastAttempt.timestamp) - started).toBeGreaterThanOrEqual(HOUR);

      // Disabled: nothing more is sent, neither pending retries nor new messages.
      const sent = hits(path);
      const attemptsBefore = (await attemptsTo(t, appId, ep.id)).length;
      await publish(t, appId, { payload: { while: "disabled" } });
      await advance(11 * HOUR);
      expect(hits(path)).toBe(sent);
      expect(await attemptsTo(t, appId, ep.id)).toHaveLength(attemptsBefore);

      const revived = await t.api("PATCH", `/api/v1/app/${appId}/endpoint/${ep.id}`, { disabled: false });
      expect(revived.status, revived.text).toBe(200);
      expect(revived.body.disabled).toBe(false);
      expect(revived.body.disabledReason).toBeNull();
      expect((await getEndpoint(t, appId, ep.id)).disabledReason).toBeNull();

      failing.delete(path);
      await publish(t, appId, { payload: { after: "revival" } });
      await t.hw.worker.runUntilIdle();
      expect(hits(path)).toBe(sent + 1);
      expect((await attemptsTo(t, appId, ep.id)).at(-1)!.statusText).toBe("success");
    });

    it("starts a fresh failure streak after re-enabling: one failure does not disable it again", async () => {
      const path = "/relapse";
      failing.add(path);
      const appId = await createApp(t, "relapse");
      const ep = await createEndpoint(t, appId, { url: `${receiver.url}${path}` });
      await publish(t, appId, {});
      await t.hw.worker.runUntilIdle();
      await advance(2 * HOUR);
      await publish(t, appId, {});
      await t.hw.worker.runUntilIdle();
      expect((await getEndpoint(t, appId, ep.id)).disabled).toBe(true);

      await t.api("PATCH", `/api/v1/app/${appId}/endpoint/${ep.id}`, { disabled: false });
      await publish(t, appId, {});
      await t.hw.worker.runUntilIdle();
      expect(hits(path)).toBe(3);
      expect((await getEndpoint(t, appId, ep.id)).disabled).toBe(false);
    });
  });
}
