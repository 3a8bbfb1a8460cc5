import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIALECTS } from "../helpers/dialects.js";
import { attemptsOf, createApp, createEndpoint, publish } from "../helpers/delivery.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const SLOW_MS = 2_000;
/** Messages queued for the slow endpoint before the fast one's; more than one claim batch (100). */
const SLOW_BACKLOG = 150;
const ENDPOINT_CONCURRENCY = 2;

for (const dialect of DIALECTS) {
  describe(`fan-out and isolation between endpoints (${dialect})`, () => {
    let t: TestServer;
    /** A server that sends at most ENDPOINT_CONCURRENCY requests at a time to one endpoint. */
    let narrow: TestServer;
    let receiver: Receiver;
    let slow: Receiver;

    beforeAll(async () => {
      t = await startTestServer(dialect);
      narrow = await startTestServer(dialect, { endpointConcurrency: ENDPOINT_CONCURRENCY });
      receiver = await new Receiver().start();
      slow = await new Receiver().start();
      slow.respond = () => ({ delayMs: SLOW_MS });
    });
    afterAll(async () => {
      // The slow receiver goes first: its pending answers would otherwise hold up the shutdown.
      await slow?.stop();
      await t?.stop();
      await narrow?.stop();
      await receiver?.stop();
    });

    const hits = (path: string) => receiver.received.filter((r) => r.url === path);

    it("delivers each message once to every endpoint of the application", async () => {
      const appId = await createApp(t, "fan-out");
      const eps = [];
      for (const name of ["a", "b", "c"]) eps.push(await createEndpoint(t, appId, { url: `${receiver.url}/fan-${name}` }));
      // Not receivers of this message: a disabled endpoint and one filtered to another type.
      await createEndpoint(t, appId, { url: `${receiver.url}/fan-disabled`, disabled: true });
      await createEndpoint(t, appId, { url: `${receiver.url}/fan-filtered`, filterTypes: ["other.event"] });
      const other = await createApp(t, "bystander");
      await createEndpoint(t, other, { url: `${receiver.url}/fan-bystander` });

      const msgs = [];
      for (let i = 0; i < 3; i++) msgs.push(await publish(t, appId, { payload: { i } }));
      await t.hw.worker.runUntilIdle();
      for (const name of ["a", "b", "c"]) {
        expect(hits(`/fan-${name}`).map((r) => r.headers["webhook-id"]).sort()).toEqual(msgs.map((m) => m.id).sort());
      }
      expect(hits("/fan-disabled")).toHaveLength(0);
      expect(hits("/fan-filtered")).toHaveLength(0);
      expect(hits("/fan-bystander")).toHaveLength(0);
      for (const m of msgs) {
        const attempts = await attemptsOf(t, appId, m.id);
        expect(attempts.map((a) => a.endpointId).sort()).toEqual(eps.map((e) => e.id).sort());
        expect(attempts.every((a) => a.statusText === "success")).toBe(true);
      }
    });

    it("does not let a slow endpoint with a backlog delay another application's endpoint", async () => {
      const slowApp = await createApp(narrow, "slow");
      await createEndpoint(narrow, slowApp, { url: `${slow.url}/slow` });
      const fastApp = await createApp(narrow, "fast");
      await createEndpoint(narrow, fastApp, { url: `${receiver.url}/fast` });

      await Promise.all(Array.from({ length: SLOW_BACKLOG }, (_, i) => publish(narrow, slowApp, { payload: { i } })));
      await slow.waitFor(ENDPOINT_CONCURRENCY, 5_000);
      const published = Date.now();
      const fast = await publish(narrow, fastApp, { payload: { fast: true } });
      await receiver.waitFor(receiver.received.length + 1, 1_500).catch(() => {});
      const delivered = hits("/fast");
      expect(delivered.map((r) => r.headers["webhook-id"])).toEqual([fast.id]);
      expect(delivered[0]!.at - published).toBeLessThan(1_000);
      // Meanwhile the slow endpoint never had more than endpointConcurrency requests open.
      const arrivals = slow.received.map((r) => r.at);
      const open = arrivals.map((at) => arrivals.filter((other) => other <= at && other > at - SLOW_MS + 50).length);
      expect(Math.max(...open)).toBeLessThanOrEqual(ENDPOINT_CONCURRENCY);
      expect(slow.received.length).toBeLessThan(SLOW_BACKLOG);
    });
  });
}
