import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/clock/index.js";
import { EndpointEventLog, trimEndpointEvents } from "../../src/operational/endpoint-log.js";
import { DIALECTS } from "../helpers/dialects.js";
import { createApp, createEndpoint, publish } from "../helpers/delivery.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

interface Item {
  id: string;
  type: string;
  timestamp: string;
  data: Record<string, any>;
}

/**
 * Issue 13, endpoint health at a glance: each endpoint keeps a bounded log of the operational
 * events that concerned it, kept whether or not the organisation has operational endpoints (this
 * one has none), and served to organisation tokens only.
 */
for (const dialect of DIALECTS) {
  describe(`an endpoint's operational events (${dialect})`, () => {
    let t: TestServer;
    let receiver: Receiver;
    let clock: FakeClock;
    const answers = new Map<string, number>();

    beforeAll(async () => {
      clock = new FakeClock(Date.now());
      t = await startTestServer(dialect, { retrySchedule: [] }, { clock });
      receiver = await new Receiver().start();
      receiver.respond = (r) => ({ status: answers.get(r.url) ?? 200 });
    });
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    async function settle(): Promise<void> {
      for (let i = 0; i < 3; i++) {
        await t.hw.worker.runUntilIdle();
        await t.hw.operational.drain();
      }
    }

    async function events(appId: string, endpointId: string, query = "", token?: string): Promise<{ status: number; body: any }> {
      const path = `/api/v1/app/${appId}/endpoint/${endpointId}/operational-event${query}`;
      if (token === undefined) return t.api("GET", path);
      const res = await fetch(`${t.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
      return { status: res.status, body: await res.json() };
    }

    it("lists an exhausted message and a disabling, newest first, with ids and times only", async () => {
      const appId = await createApp(t, "ops-log");
      const secret = `whsec_${randomBytes(24).toString("base64")}`;
      const ep = await createEndpoint(t, appId, { url: `${receiver.url}/fails`, secret });
      answers.set("/fails", 500);
      const msg = await publish(t, appId, { eventType: "order.created" });
      await settle();
      clock.advance(1_000);
      expect((await t.api("PATCH", `/api/v1/app/${appId}/endpoint/${ep.id}`, { disabled: true })).status).toBe(200);
      await settle();

      const res = await events(appId, ep.id);
      expect(res.status).toBe(200);
      const items = res.body.data as Item[];
      const types = items.map((e) => e.type);
      expect(types).toContain("message.attempt.exhausted");
      expect(types).toContain("endpoint.disabled");
      // Newest first: the disabling came after the exhaustion.
      expect(types.indexOf("endpoint.disabled")).toBeLessThan(types.indexOf("message.attempt.exhausted"));
      const exhausted = items.find((e) => e.type === "message.attempt.exhausted")!;
      expect(exhausted.data).toMatchObject({ appId, endpointId: ep.id, msgId: msg.id, lastAttempt: { responseStatusCode: 500 } });
      const disabled = items.find((e) => e.type === "endpoint.disabled")!;
      expect(disabled.data).toMatchObject({ endpointId: ep.id, trigger: "manual" });
      expect(Date.parse(disabled.timestamp)).toBe(clock.now());
      // The endpoint's signing secret never appears.
      expect(JSON.stringify(res.body)).not.toContain(secret.slice("whsec_".length));

      // Paginated like every list.
      const first = await events(appId, ep.id, "?limit=1");
      expect(first.body.data).toHaveLength(1);
      expect(first.body.done).toBe(false);
      const second = await events(appId, ep.id, `?limit=250&iterator=${first.body.iterator}`);
      expect(second.body.data.map((e: Item) => e.id)).toEqual(items.slice(1).map((e) => e.id));
    });

    it("records a 410 Gone's automatic disabling", async () => {
      const appId = await createApp(t, "ops-gone");
      const ep = await createEndpoint(t, appId, { url: `${receiver.url}/gone` });
      answers.set("/gone", 410);
      await publish(t, appId, {});
      await settle();
      const types = ((await events(appId, ep.id)).body.data as Item[]).map((e) => e.type);
      expect(types).toContain("endpoint.disabled");
      const disabled = ((await events(appId, ep.id)).body.data as Item[]).find((e) => e.type === "endpoint.disabled")!;
      expect(disabled.data["trigger"]).toBe("automatic");
    });

    it("answers 404 to another organisation and 403 to an app-portal token; unknown endpoints 404", async () => {
      const appId = await createApp(t, "ops-tenant");
      const ep = await createEndpoint(t, appId, { url: `${receiver.url}/ok` });
      expect((await t.api("PATCH", `/api/v1/app/${appId}/endpoint/${ep.id}`, { disabled: true })).status).toBe(200);
      await settle();
      expect((await events(appId, ep.id)).body.data.length).toBeGreaterThan(0);

      const other = await t.newOrgToken("ops-other");
      const foreign = await events(appId, ep.id, "", other);
      expect(foreign.status).toBe(404);
      expect(JSON.stringify(foreign.body)).not.toContain("endpoint.disabled");

      const portal = await t.api("POST", `/api/v1/auth/app-portal-access/${appId}`, {});
      expect(portal.status).toBe(200);
      expect((await events(appId, ep.id, "", portal.body.token)).status).toBe(403);

      expect((await events(appId, "ep_nope")).status).toBe(404);
      expect((await events(appId, ep.id, "?limit=0")).status).toBe(422);
      // Hostile cursors and ids: a 4xx or an empty page, never a 5xx.
      for (const q of ["?iterator=%00", "?iterator=__proto__", "?iterator=%27%20OR%201%3D1--", `?iterator=${"x".repeat(300)}`, "?order=sideways"]) {
        const r = await events(appId, ep.id, q);
        expect(r.status, q).toBeLessThan(500);
        if (r.status === 200) expect(r.body.data).toEqual([]);
      }
      for (const [a, e] of [[appId, "ep_%00"], ["%00", ep.id], [appId, "__proto__"]] as const) {
        const r = await events(a, e);
        expect([404, 422], `${a} ${e}`).toContain(r.status);
        expect(r.body.code).toMatch(/^E_/);
      }
    });

    it("stays bounded: the trim keeps the newest per endpoint, and the log trims as it writes", async () => {
      const appId = await createApp(t, "ops-bounded");
      const ep = await createEndpoint(t, appId, { url: `${receiver.url}/ok` });
      const other = await createEndpoint(t, appId, { url: `${receiver.url}/ok` });
      const log = new EndpointEventLog(t.hw.ctx, { kept: 5, trimEvery: 3 });
      for (let i = 0; i < 12; i++) {
        await log.record({ orgId: "ignored", type: "endpoint.updated", data: { appId, endpointId: ep.id, n: i } });
        await log.record({ orgId: "ignored", type: "endpoint.updated", data: { appId, endpointId: other.id, n: i } });
      }
      const after = (await events(appId, ep.id, "?limit=250")).body.data as Item[];
      // Trimmed on the 3rd, 6th, 9th and 12th insert: exactly the newest five are left.
      expect(after.map((e) => e.data["n"])).toEqual([11, 10, 9, 8, 7]);
      expect((await events(appId, other.id, "?limit=250")).body.data).toHaveLength(5);

      for (let i = 12; i < 14; i++) await log.record({ orgId: "ignored", type: "endpoint.updated", data: { appId, endpointId: ep.id, n: i } });
      expect((await events(appId, ep.id, "?limit=250")).body.data).toHaveLength(7);
      await trimEndpointEvents(t.hw.ctx.store.db, ep.id, 2);
      expect(((await events(appId, ep.id, "?limit=250")).body.data as Item[]).map((e) => e.data["n"])).toEqual([13, 12]);
      // Another endpoint's rows are not touched by this one's trim.
      expect((await events(appId, other.id, "?limit=250")).body.data).toHaveLength(5);
      // Fewer rows than kept: nothing goes.
      await trimEndpointEvents(t.hw.ctx.store.db, ep.id, 100);
      expect((await events(appId, ep.id, "?limit=250")).body.data).toHaveLength(2);
    });

    it("a write for an endpoint that is gone is dropped quietly, and rows go with their endpoint", async () => {
      const appId = await createApp(t, "ops-delete");
      const ep = await createEndpoint(t, appId, { url: `${receiver.url}/ok` });
      expect((await t.api("PATCH", `/api/v1/app/${appId}/endpoint/${ep.id}`, { disabled: true })).status).toBe(200);
      await settle();
      const rows = () => t.hw.ctx.store.db.selectFrom("endpoint_events").select("id").where("endpoint_id", "=", ep.id).execute();
      expect((await rows()).length).toBeGreaterThan(0);

      expect((await t.api("DELETE", `/api/v1/app/${appId}/endpoint/${ep.id}`)).status).toBe(204);
      await settle();
      expect(await rows()).toHaveLength(0);
      await new EndpointEventLog(t.hw.ctx).record({ orgId: "ignored", type: "endpoint.updated", data: { endpointId: ep.id } });
      expect(await rows()).toHaveLength(0);
      expect(t.logs()).not.toContain("could not record an endpoint's operational event");
    });
  });
}
