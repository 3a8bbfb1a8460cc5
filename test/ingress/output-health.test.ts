import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/clock/index.js";
import { DIALECTS } from "../helpers/dialects.js";
import { send, setup } from "../helpers/ingress.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const THRESHOLD = 3;
const COOLDOWN = 60_000;
const HOUR = 3_600_000;

/** Issue 10: a bucket's URL output gets the health machinery endpoints get. */
for (const dialect of DIALECTS) {
  describe(`URL outputs: circuit breaker, rate limit, automatic disabling (${dialect})`, () => {
    let t: TestServer;
    let receiver: Receiver;
    let clock: FakeClock;
    const failing = new Set<string>();

    beforeAll(async () => {
      clock = new FakeClock(Date.now());
      t = await startTestServer(
        dialect,
        { retrySchedule: [10 * HOUR], circuitBreakerThreshold: THRESHOLD, circuitBreakerCooldown: COOLDOWN, disableAfter: HOUR, pollInterval: 3_600_000 },
        { clock, random: () => 0.5 },
      );
      receiver = await new Receiver().start();
      receiver.respond = (req) => (failing.has(req.url) ? { status: 500, body: "down" } : undefined);
    });
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    const hits = (path: string) => receiver.received.filter((r) => r.url === path).length;
    async function receive(inputId: string, n = 1): Promise<void> {
      for (let i = 0; i < n; i++) expect((await send(t.url, `/in/${inputId}`, { method: "POST", body: JSON.stringify({ i }) })).status).toBe(200);
      await t.hw.worker.runUntilIdle();
    }
    async function advance(ms: number): Promise<void> {
      clock.advance(ms);
      t.hw.worker.wake();
      await t.hw.worker.runUntilIdle();
    }
    const getOutput = async (bucketId: string, id: string) => (await t.api("GET", `/api/v1/bucket/${bucketId}/output/${id}`)).body;

    it("opens the circuit after THRESHOLD failures, probes once per cooldown, and drains the parked backlog after a good probe", async () => {
      const path = "/out-breaker";
      failing.add(path);
      const { input } = await setup(t, { outputs: [`${receiver.url}${path}`] });
      for (let i = 0; i < THRESHOLD; i++) await receive(input.id);
      expect(hits(path)).toBe(THRESHOLD);

      // Open: requests are accepted and kept, not forwarded.
      await receive(input.id, 4);
      expect(hits(path)).toBe(THRESHOLD);
      await advance(COOLDOWN - 1_000);
      expect(hits(path)).toBe(THRESHOLD);

      // Half-open: one probe, which fails.
      await advance(2_500);
      expect(hits(path)).toBe(THRESHOLD + 1);
      await advance(COOLDOWN - 5_000);
      expect(hits(path)).toBe(THRESHOLD + 1);

      // Recovered: one probe succeeds, then the two still parked follow.
      failing.delete(path);
      await advance(7_000);
      expect(hits(path)).toBe(THRESHOLD + 4);
    });

    it("disables an output failing for longer than disableAfter, says why, and PATCH disabled:false revives it", async () => {
      const path = "/out-dying";
      failing.add(path);
      const { bucket, input, outputs } = await setup(t, { outputs: [`${receiver.url}${path}`] });
      const started = clock.now();
      while (clock.now() - started < HOUR + 15 * 60_000) {
        await receive(input.id);
        await advance(15 * 60_000);
      }
      const dead = await getOutput(bucket.id, outputs[0].id);
      expect(dead.disabled).toBe(true);
      expect(dead.disabledReason).toMatch(/^Disabled automatically/);
      const sent = hits(path);
      await receive(input.id);
      await advance(11 * HOUR);
      expect(hits(path)).toBe(sent);

      const revived = await t.api("PATCH", `/api/v1/bucket/${bucket.id}/output/${outputs[0].id}`, { disabled: false });
      expect(revived.status, revived.text).toBe(200);
      expect(revived.body.disabled).toBe(false);
      expect(revived.body.disabledReason).toBeNull();
      failing.delete(path);
      await receive(input.id);
      expect(hits(path)).toBe(sent + 1);
      // A fresh streak: one failure after re-enabling does not disable it again.
      failing.add(path);
      await receive(input.id);
      expect((await getOutput(bucket.id, outputs[0].id)).disabled).toBe(false);
    });

    it("forwards no faster than the output's rateLimit, and refuses a bad one with {code, detail}", async () => {
      const path = "/out-limited";
      const { bucket, input, outputs } = await setup(t, { outputs: [{ url: `${receiver.url}${path}`, rateLimit: 2 }] });
      expect(outputs[0].rateLimit).toBe(2);
      await receive(input.id, 6);
      expect(hits(path)).toBe(2);
      await advance(1_000);
      expect(hits(path)).toBe(4);
      await advance(1_000);
      expect(hits(path)).toBe(6);

      for (const rateLimit of [0, -1, 1.5, "10", 1e9]) {
        const res = await t.api("PATCH", `/api/v1/bucket/${bucket.id}/output/${outputs[0].id}`, { rateLimit });
        expect(res.status, JSON.stringify(rateLimit)).toBe(422);
        expect(typeof res.body.code).toBe("string");
        expect(res.body.detail).toBeTruthy();
      }
      const cleared = await t.api("PATCH", `/api/v1/bucket/${bucket.id}/output/${outputs[0].id}`, { rateLimit: null });
      expect(cleared.status, cleared.text).toBe(200);
      expect(cleared.body.rateLimit).toBeNull();
    });
  });
}
