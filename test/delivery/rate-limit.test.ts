import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/clock/index.js";
import { DIALECTS } from "../helpers/dialects.js";
import { attemptsTo, createApp, createEndpoint, publish } from "../helpers/delivery.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const RATE = 5;
const MESSAGES = 20;
const STEP_MS = 200;

for (const dialect of DIALECTS) {
  describe(`per-endpoint rate limit (${dialect})`, () => {
    let t: TestServer;
    let receiver: Receiver;
    let clock: FakeClock;

    beforeAll(async () => {
      clock = new FakeClock(Date.now());
      t = await startTestServer(dialect, {}, { clock, random: () => 0.5 });
      receiver = await new Receiver().start();
    });
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    const hits = (path: string) => receiver.received.filter((r) => r.url === path);

    it(`delivers ${MESSAGES} messages published at once no faster than ${RATE}/s, and delivers them all`, async () => {
      const appId = await createApp(t, "limited");
      const limited = await createEndpoint(t, appId, { url: `${receiver.url}/limited`, rateLimit: RATE });
      expect(limited.rateLimit).toBe(RATE);
      await createEndpoint(t, appId, { url: `${receiver.url}/unlimited` });
      const ids = await Promise.all(Array.from({ length: MESSAGES }, (_, i) => publish(t, appId, { payload: { i } }).then((m) => m.id as string)));
      await t.hw.worker.runUntilIdle();

      // The unlimited neighbour gets everything at once; the limited one a second's worth.
      expect(hits("/unlimited")).toHaveLength(MESSAGES);
      const counts = [hits("/limited").length];
      expect(counts[0]).toBeLessThanOrEqual(RATE);
      expect(counts[0]).toBeGreaterThan(0);

      for (let step = 1; step <= 25; step++) {
        clock.advance(STEP_MS);
        await t.hw.worker.runUntilIdle();
        counts.push(hits("/limited").length);
      }
      // In any span of n steps at most rate × time plus one second's burst.
      for (let from = 0; from < counts.length; from++) {
        for (let to = from + 1; to < counts.length; to++) {
          const elapsedS = ((to - from) * STEP_MS) / 1000;
          expect(counts[to]! - counts[from]!, `steps ${from}..${to}: ${counts.join(",")}`).toBeLessThanOrEqual(Math.ceil(RATE * elapsedS) + RATE);
        }
      }
      // Sustained rate: after the burst, one per 1/RATE s.
      expect(counts[5]! - counts[0]!).toBeLessThanOrEqual(RATE);
      expect(counts[10]! - counts[5]!).toBeLessThanOrEqual(RATE);
      // ...but not slower: everything is out after (MESSAGES - RATE) / RATE s plus a step.
      const due = Math.ceil(((MESSAGES - RATE) / RATE) * (1000 / STEP_MS)) + 1;
      expect(counts[due], counts.join(",")).toBe(MESSAGES);

      const delivered = hits("/limited").map((r) => String(r.headers["webhook-id"]));
      expect(new Set(delivered)).toEqual(new Set(ids));
      expect(delivered).toHaveLength(MESSAGES);
      // Waiting for the limit never costs an attempt.
      const attempts = await attemptsTo(t, appId, limited.id);
      expect(attempts).toHaveLength(MESSAGES);
      expect(attempts.every((a) => a.statusText === "success")).toBe(true);
    });

    it("keeps sending at the limit in real time, without waiting for the worker's poll", async () => {
      // A poll far in the future: only the worker's own wake-ups can deliver deferred messages.
      const live = await startTestServer(dialect, { pollInterval: 60_000 });
      try {
        const appId = await createApp(live, "live");
        await createEndpoint(live, appId, { url: `${receiver.url}/live`, rateLimit: 2 });
        const started = Date.now();
        await Promise.all(Array.from({ length: 4 }, (_, i) => publish(live, appId, { payload: { i } })));
        // The poll is a minute away: arriving within 10 s proves the worker woke itself.
        await receiver.waitFor(receiver.received.length - hits("/live").length + 4, 10_000);
        const at = hits("/live").map((r) => r.at - started);
        expect(at).toHaveLength(4);
        // Two at once (one second's burst), then one per 500 ms. Lower bounds from before the
        // publish, which the limiter's first grant cannot precede: the limiter never sends early,
        // while a loaded machine may send any one late (measured from the first arrival, a late
        // first one made the gap look short). Without a limit all four take a few ms.
        expect(at[2]!).toBeGreaterThanOrEqual(500);
        expect(at[3]!).toBeGreaterThanOrEqual(1_000);
        expect(at[3]!).toBeLessThan(10_000);
      } finally {
        await live.stop();
      }
    });

    it("applies a rate limit set later with PATCH", async () => {
      const appId = await createApp(t, "patched");
      const ep = await createEndpoint(t, appId, { url: `${receiver.url}/patched` });
      const res = await t.api("PATCH", `/api/v1/app/${appId}/endpoint/${ep.id}`, { rateLimit: 2 });
      expect(res.status, res.text).toBe(200);
      await Promise.all(Array.from({ length: 6 }, (_, i) => publish(t, appId, { payload: { i } })));
      await t.hw.worker.runUntilIdle();
      expect(hits("/patched").length).toBeLessThanOrEqual(2);
      clock.advance(1_000);
      await t.hw.worker.runUntilIdle();
      expect(hits("/patched").length).toBeLessThanOrEqual(4);
      clock.advance(1_000);
      await t.hw.worker.runUntilIdle();
      expect(hits("/patched")).toHaveLength(6);
    });
  });
}
