import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/clock/index.js";
import { DIALECTS } from "../helpers/dialects.js";
import { createApp, createEndpoint, publish } from "../helpers/delivery.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const DAY = 24 * 3_600_000;

for (const dialect of DIALECTS) {
  describe(`idempotent publishing (${dialect})`, () => {
    let t: TestServer;
    let receiver: Receiver;
    let clock: FakeClock;

    beforeAll(async () => {
      clock = new FakeClock(Date.now());
      t = await startTestServer(dialect, {}, { clock });
      receiver = await new Receiver().start();
    });
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    const hits = (path: string) => receiver.received.filter((r) => r.url === path);
    /** What one endpoint received, in no particular order: jobs for one endpoint run concurrently. */
    const bodies = (path: string) => hits(path).map((r) => JSON.stringify(JSON.parse(r.body))).sort();
    const sorted = (...values: unknown[]) => values.map((v) => JSON.stringify(v)).sort();
    async function appWithEndpoint(name: string): Promise<{ appId: string; path: string }> {
      const appId = await createApp(t, name);
      await createEndpoint(t, appId, { url: `${receiver.url}/${name}` });
      return { appId, path: `/${name}` };
    }
    async function messageCount(appId: string): Promise<number> {
      const res = await t.api("GET", `/api/v1/app/${appId}/msg?limit=250`);
      expect(res.status).toBe(200);
      return res.body.data.length as number;
    }

    it("returns the original message for a repeated eventId and delivers it once", async () => {
      const { appId, path } = await appWithEndpoint("event-id");
      const first = await publish(t, appId, { eventId: "evt-1", payload: { v: 1 } });
      const second = await publish(t, appId, { eventId: "evt-1", payload: { v: 2 } });
      expect(second.id).toBe(first.id);
      expect(second.payload).toEqual({ v: 1 });
      const viaSvix = await t.svix.message.create(appId, { eventType: "test.event", eventId: "evt-1", payload: { v: 3 } });
      expect(viaSvix.id).toBe(first.id);
      await t.hw.worker.runUntilIdle();
      expect(hits(path)).toHaveLength(1);
      expect(JSON.parse(hits(path)[0]!.body)).toEqual({ v: 1 });
      expect(await messageCount(appId)).toBe(1);
    });

    it("returns the original message for a repeated idempotency-key header and delivers it once", async () => {
      const { appId, path } = await appWithEndpoint("idem-key");
      const first = await publish(t, appId, { payload: { v: 1 } }, { "idempotency-key": "key-1" });
      const second = await publish(t, appId, { payload: { v: 2 } }, { "idempotency-key": "key-1" });
      expect(second.id).toBe(first.id);
      const other = await publish(t, appId, { payload: { v: 3 } }, { "idempotency-key": "key-2" });
      expect(other.id).not.toBe(first.id);
      await t.hw.worker.runUntilIdle();
      expect(bodies(path)).toEqual(sorted({ v: 1 }, { v: 3 }));
      expect(await messageCount(appId)).toBe(2);
    });

    it("scopes eventId and idempotency-key to the application published to", async () => {
      const a = await appWithEndpoint("scope-a");
      const b = await appWithEndpoint("scope-b");
      const byEventA = await publish(t, a.appId, { eventId: "shared-event", payload: { app: "a" } });
      const byEventB = await publish(t, b.appId, { eventId: "shared-event", payload: { app: "b" } });
      expect(byEventB.id).not.toBe(byEventA.id);
      // A client that keys requests on its own event ids sends the same key to every tenant's app.
      const byKeyA = await publish(t, a.appId, { payload: { app: "a", key: true } }, { "idempotency-key": "order-42" });
      const byKeyB = await publish(t, b.appId, { payload: { app: "b", key: true } }, { "idempotency-key": "order-42" });
      expect(byKeyB.id).not.toBe(byKeyA.id);
      expect((await t.api("GET", `/api/v1/app/${b.appId}/msg/${byKeyB.id}`)).status).toBe(200);
      await t.hw.worker.runUntilIdle();
      expect(hits(a.path).map((r) => JSON.parse(r.body).app)).toEqual(["a", "a"]);
      expect(hits(b.path).map((r) => JSON.parse(r.body).app)).toEqual(["b", "b"]);
    });

    it("forgets an eventId after 24 hours", async () => {
      const { appId, path } = await appWithEndpoint("expiry");
      const first = await publish(t, appId, { eventId: "evt-daily", payload: { day: 1 } });
      // Deliver before moving the clock: a lease outlived by a jump of hours would be taken again.
      await t.hw.worker.runUntilIdle();
      clock.advance(DAY - 1_000);
      expect((await publish(t, appId, { eventId: "evt-daily", payload: { day: 1.9 } })).id).toBe(first.id);
      const keyed = await publish(t, appId, { payload: { keyed: 1 } }, { "idempotency-key": "daily-key" });
      await t.hw.worker.runUntilIdle();
      clock.advance(2_000);
      const next = await publish(t, appId, { eventId: "evt-daily", payload: { day: 2 } });
      expect(next.id).not.toBe(first.id);
      expect(next.eventId).toBe("evt-daily");
      // ...and the new message is the one the eventId now stands for.
      expect((await publish(t, appId, { eventId: "evt-daily", payload: { day: 2.1 } })).id).toBe(next.id);
      // The key used 23 h ago is still live.
      expect((await publish(t, appId, { payload: { keyed: 2 } }, { "idempotency-key": "daily-key" })).id).toBe(keyed.id);
      await t.hw.worker.runUntilIdle();
      expect(bodies(path)).toEqual(sorted({ day: 1 }, { keyed: 1 }, { day: 2 }));
    });

    it("turns 20 concurrent publishes with one eventId into one message and one delivery", async () => {
      const { appId, path } = await appWithEndpoint("concurrent-event");
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => publish(t, appId, { eventId: "evt-race", payload: { i } })));
      expect(new Set(results.map((r) => r.id)).size).toBe(1);
      await t.hw.worker.runUntilIdle();
      expect(hits(path)).toHaveLength(1);
      expect(hits(path)[0]!.headers["webhook-id"]).toBe(results[0]!.id);
      expect(await messageCount(appId)).toBe(1);
    });

    it("turns 20 concurrent publishes with one idempotency-key into one message and one delivery", async () => {
      const { appId, path } = await appWithEndpoint("concurrent-key");
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => publish(t, appId, { payload: { i } }, { "idempotency-key": "race-key" })));
      expect(new Set(results.map((r) => r.id)).size).toBe(1);
      await t.hw.worker.runUntilIdle();
      expect(hits(path)).toHaveLength(1);
      expect(await messageCount(appId)).toBe(1);
    });

    it("keeps concurrent publishes with different eventIds apart", async () => {
      const { appId, path } = await appWithEndpoint("concurrent-distinct");
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => publish(t, appId, { eventId: `evt-${i % 5}`, payload: { i } })));
      expect(new Set(results.map((r) => r.id)).size).toBe(5);
      await t.hw.worker.runUntilIdle();
      expect(hits(path)).toHaveLength(5);
      expect(await messageCount(appId)).toBe(5);
    });
  });
}
