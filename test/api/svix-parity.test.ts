import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/clock/index.js";
import { DIALECTS } from "../helpers/dialects.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { SVIX_CLIENTS } from "../helpers/svix-clients.js";

for (const dialect of DIALECTS) {
  for (const client of SVIX_CLIENTS) {
    describe(`${client.name} drives the API unchanged (${dialect})`, () => {
      let t: TestServer;
      let svix: any;
      let receiver: Receiver;
      const clock = new FakeClock(Date.now());
      /** The event filter under the name this major sends and reads. */
      const types = (list: string[]) => (client.major === 2 ? { eventTypes: list } : { filterTypes: list });
      const typesOf = (ep: any): string[] | null | undefined => (client.major === 2 ? ep.eventTypes : ep.filterTypes);
      const put = (appId: string, epId: string, body: object) =>
        client.major === 2 ? svix.endpoint.upsert(appId, epId, body) : svix.endpoint.update(appId, epId, body);

      beforeAll(async () => {
        t = await startTestServer(dialect, {}, { clock });
        svix = client.make(t.token, t.url);
        receiver = await new Receiver().start();
      });
      afterAll(async () => {
        await t?.stop();
        await receiver?.stop();
      });

      it("an endpoint created with its event filter receives only those event types", async () => {
        const app = await svix.application.create({ name: "filters" });
        const ep = await svix.endpoint.create(app.id, { url: `${receiver.url}/only-paid`, ...types(["invoice.paid"]) });
        expect(typesOf(ep)).toEqual(["invoice.paid"]);
        expect(typesOf(await svix.endpoint.get(app.id, ep.id))).toEqual(["invoice.paid"]);

        const before = receiver.received.length;
        await svix.message.create(app.id, { eventType: "invoice.voided", payload: { n: 1 } });
        await svix.message.create(app.id, { eventType: "invoice.paid", payload: { n: 2 } });
        await receiver.waitFor(before + 1);
        await t.hw.worker.runUntilIdle();
        const got = receiver.received.slice(before).filter((r) => r.url === "/only-paid");
        expect(got.map((r) => JSON.parse(r.body))).toEqual([{ n: 2 }]);
      });

      it("PUT and PATCH set the event filter under the client's field name", async () => {
        const app = await svix.application.create({ name: "filters-update" });
        const ep = await svix.endpoint.create(app.id, { url: `${receiver.url}/changing` });
        expect(typesOf(ep) ?? null).toBeNull();

        const replaced = await put(app.id, ep.id, { url: `${receiver.url}/changing`, ...types(["a.one"]) });
        expect(typesOf(replaced)).toEqual(["a.one"]);
        const patched = await svix.endpoint.patch(app.id, ep.id, types(["b.two", "c.three"]));
        expect(typesOf(patched)).toEqual(["b.two", "c.three"]);

        const before = receiver.received.length;
        await svix.message.create(app.id, { eventType: "a.one", payload: { n: "a" } });
        await svix.message.create(app.id, { eventType: "c.three", payload: { n: "c" } });
        await receiver.waitFor(before + 1);
        await t.hw.worker.runUntilIdle();
        const got = receiver.received.slice(before).filter((r) => r.url === "/changing");
        expect(got.map((r) => JSON.parse(r.body))).toEqual([{ n: "c" }]);
      });

      it("PUT on an unknown application or endpoint uid creates it (upsert), and updates it afterwards", async () => {
        const rate = (n: number) => (client.major === 2 ? { throttleRate: n } : { rateLimit: n });
        const putApp = (id: string, body: object) => (client.major === 2 ? svix.application.upsert(id, body) : svix.application.update(id, body));
        const app = await putApp("upserted-app", { name: "Upserted", ...rate(50) });
        expect(app.id).toMatch(/^app_/);
        expect(app.uid).toBe("upserted-app");
        expect(client.major === 2 ? app.throttleRate : app.rateLimit).toBe(50);
        expect((await svix.application.get("upserted-app")).name).toBe("Upserted");
        const again = await putApp("upserted-app", { name: "Renamed" });
        expect(again.id).toBe(app.id);
        expect(again.name).toBe("Renamed");

        const ep = await put(app.id, "upserted-ep", { url: `${receiver.url}/upserted`, ...types(["u.one"]) });
        expect(ep.id).toMatch(/^ep_/);
        expect(ep.uid).toBe("upserted-ep");
        expect(typesOf(ep)).toEqual(["u.one"]);
        const updated = await put(app.id, "upserted-ep", { url: `${receiver.url}/upserted`, description: "second" });
        expect(updated.id).toBe(ep.id);
        expect(updated.description).toBe("second");
        expect(typesOf(updated) ?? null).toBeNull();
        expect((await svix.endpoint.list(app.id)).data.map((e: any) => e.id)).toEqual([ep.id]);

        // The upserted endpoint is live and signs: it really receives.
        const before = receiver.received.length;
        await svix.message.create(app.id, { eventType: "u.one", payload: { up: true } });
        await receiver.waitFor(before + 1);
        expect(receiver.received.slice(before).some((r) => r.url === "/upserted")).toBe(true);
      });

      it("message.list filters by event types, channel, tag and time", async () => {
        const app = await svix.application.create({ name: "list-filters" });
        const t0 = clock.now();
        const a = await svix.message.create(app.id, { eventType: "order.created", payload: { n: 1 }, channels: ["eu"], tags: ["vip"] });
        clock.advance(60_000);
        const b = await svix.message.create(app.id, { eventType: "order.paid", payload: { n: 2 }, channels: ["us"], tags: ["a_b"] });
        clock.advance(60_000);
        const c = await svix.message.create(app.id, { eventType: "order.shipped", payload: { n: 3 }, channels: ["eu", "us"], tags: ["axb"] });
        const ids = async (opts: object) => (await svix.message.list(app.id, opts)).data.map((m: any) => m.id);

        expect(await ids({})).toEqual([c.id, b.id, a.id]);
        expect(await ids({ eventTypes: ["order.created", "order.shipped"] })).toEqual([c.id, a.id]);
        expect(await ids({ channel: "eu" })).toEqual([c.id, a.id]);
        expect(await ids({ tag: "vip" })).toEqual([a.id]);
        // LIKE wildcards in a tag are literal characters.
        expect(await ids({ tag: "a_b" })).toEqual([b.id]);
        expect(await ids({ tag: "a%" })).toEqual([]);
        expect(await ids({ after: new Date(t0 + 30_000) })).toEqual([c.id, b.id]);
        expect(await ids({ before: new Date(t0 + 90_000) })).toEqual([b.id, a.id]);
        expect(await ids({ after: new Date(t0 + 30_000), before: new Date(t0 + 90_000), channel: "us" })).toEqual([b.id]);
        const withContent = await svix.message.list(app.id, { withContent: true, tag: "vip" });
        expect(withContent.data[0].payload).toEqual({ n: 1 });
        expect(withContent.data[0].tags).toEqual(["vip"]);
      });

      it("deliverAt holds a message until its time, and is refused beyond the retention period", async () => {
        const app = await svix.application.create({ name: "scheduled" });
        await svix.endpoint.create(app.id, { url: `${receiver.url}/scheduled` });
        const at = new Date(clock.now() + 3_600_000);
        const msg = await svix.message.create(app.id, { eventType: "later.please", payload: { when: "later" }, deliverAt: at });
        expect(new Date(msg.deliverAt).getTime()).toBe(at.getTime());
        expect(new Date((await svix.message.get(app.id, msg.id)).deliverAt).getTime()).toBe(at.getTime());

        await t.hw.worker.runUntilIdle();
        expect(receiver.received.filter((r) => r.url === "/scheduled")).toHaveLength(0);
        clock.advance(3_600_000 + 1);
        const before = receiver.received.length;
        await t.hw.worker.runUntilIdle();
        await receiver.waitFor(before + 1);
        const got = receiver.received.filter((r) => r.url === "/scheduled");
        expect(got.map((r) => JSON.parse(r.body))).toEqual([{ when: "later" }]);

        const tooFar = new Date(clock.now() + 31 * 86_400_000);
        await expect(svix.message.create(app.id, { eventType: "later.please", payload: {}, deliverAt: tooFar })).rejects.toMatchObject({ code: 422 });
      });

      it("a rate limit sent under the client's name is kept", async () => {
        const rate = (n: number) => (client.major === 2 ? { throttleRate: n } : { rateLimit: n });
        const rateOf = (o: any) => (client.major === 2 ? o.throttleRate : o.rateLimit);
        const app = await svix.application.create({ name: "rates", ...rate(7) });
        expect(rateOf(app)).toBe(7);
        expect(rateOf(await svix.application.patch(app.id, rate(9)))).toBe(9);
        const ep = await svix.endpoint.create(app.id, { url: `${receiver.url}/rated`, ...rate(11) });
        expect(rateOf(ep)).toBe(11);
        expect(rateOf(await svix.endpoint.patch(app.id, ep.id, rate(12)))).toBe(12);
      });
    });
  }

  describe(`event filter field names on the wire (${dialect})`, () => {
    let t: TestServer;
    beforeAll(async () => {
      t = await startTestServer(dialect);
    });
    afterAll(async () => {
      await t?.stop();
    });

    it("returns eventTypes and filterTypes, and refuses the two names disagreeing", async () => {
      const app = await t.api("POST", "/api/v1/app", { name: "wire" });
      const created = await t.api("POST", `/api/v1/app/${app.body.id}/endpoint`, { url: "http://127.0.0.1:9/x", eventTypes: ["x.y"] });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ eventTypes: ["x.y"], filterTypes: ["x.y"] });

      const both = await t.api("POST", `/api/v1/app/${app.body.id}/endpoint`, { url: "http://127.0.0.1:9/x", eventTypes: ["x.y"], filterTypes: ["x.y", "z.z"] });
      expect(both.status).toBe(422);
      expect(both.body.code).toBe("E_VALIDATION");
      expect(JSON.stringify(both.body.detail)).toContain("filterTypes");

      const same = await t.api("PATCH", `/api/v1/app/${app.body.id}/endpoint/${created.body.id}`, { eventTypes: ["q.q"], filterTypes: ["q.q"] });
      expect(same.status).toBe(200);
      expect(same.body.eventTypes).toEqual(["q.q"]);

      const empty = await t.api("PATCH", `/api/v1/app/${app.body.id}/endpoint/${created.body.id}`, { eventTypes: [] });
      expect(empty.status).toBe(422);
      const hostile = await t.api("PATCH", `/api/v1/app/${app.body.id}/endpoint/${created.body.id}`, { eventTypes: ["__proto__", "a\u0000b"] });
      expect(hostile.status).toBe(422);
      const cleared = await t.api("PATCH", `/api/v1/app/${app.body.id}/endpoint/${created.body.id}`, { eventTypes: null });
      expect(cleared.body.eventTypes).toBeNull();
    });

    it("PUT with a body uid that differs from the path is refused, a hostile path uid is refused", async () => {
      const r = await t.api("PUT", "/api/v1/app/fresh-app", { name: "x", uid: "other" });
      expect(r.status).toBe(422);
      const bad = await t.api("PUT", `/api/v1/app/${encodeURIComponent("a b")}`, { name: "x" });
      expect(bad.status).toBe(422);
      expect((await t.api("GET", "/api/v1/app/fresh-app")).status).toBe(404);
      expect((await t.api("GET", "/api/v1/app/other")).status).toBe(404);
    });

    it("refuses body fields it does not implement with a 422 naming the field", async () => {
      const app = await t.api("POST", "/api/v1/app", { name: "strict" });
      const cases: [string, string, unknown, string][] = [
        ["POST", "/api/v1/app", { name: "a", rateLimitt: 5 }, "rateLimitt"],
        ["PATCH", `/api/v1/app/${app.body.id}`, { featureFlags: ["x"] }, "featureFlags"],
        ["POST", `/api/v1/app/${app.body.id}/endpoint`, { url: "http://127.0.0.1:9/x", filterType: ["a.b"] }, "filterType"],
        ["PUT", `/api/v1/app/${app.body.id}/endpoint/e1`, { url: "http://127.0.0.1:9/x", eventType: ["a.b"] }, "eventType"],
        ["PATCH", `/api/v1/app/${app.body.id}/endpoint/e1`, { channel: ["eu"] }, "channel"],
        ["POST", `/api/v1/app/${app.body.id}/msg`, { eventType: "a.b", payload: {}, channel: ["eu"] }, "channel"],
        ["POST", `/api/v1/app/${app.body.id}/msg`, { eventType: "a.b", payload: {}, transformationsParams: {} }, "transformationsParams"],
      ];
      for (const [method, path, body, field] of cases) {
        const r = await t.api(method, path, body);
        expect(r.status, `${method} ${path} ${field}`).toBe(422);
        expect(r.body.code).toBe("E_VALIDATION");
        expect(JSON.stringify(r.body.detail)).toContain(field);
      }
      // A `__proto__` key is refused by the JSON parser itself (prototype poisoning).
      const proto = await t.api("POST", `/api/v1/app/${app.body.id}/endpoint`, '{"url":"http://127.0.0.1:9/x","__proto__":{"filterTypes":["x"]}}');
      expect(proto.status).toBe(400);
      const ctor = await t.api("POST", `/api/v1/app/${app.body.id}/endpoint`, { url: "http://127.0.0.1:9/x", constructor: { prototype: {} } });
      expect(ctor.status).toBe(400);
      // Nothing was created by the refused calls.
      expect((await t.api("GET", `/api/v1/app/${app.body.id}/endpoint`)).body.data).toHaveLength(0);
      expect((await t.api("GET", `/api/v1/app/${app.body.id}/msg`)).body.data).toHaveLength(0);
    });
  });
}
