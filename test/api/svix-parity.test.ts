import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
      /** The event filter under the name this major sends and reads. */
      const types = (list: string[]) => (client.major === 2 ? { eventTypes: list } : { filterTypes: list });
      const typesOf = (ep: any): string[] | null | undefined => (client.major === 2 ? ep.eventTypes : ep.filterTypes);
      const put = (appId: string, epId: string, body: object) =>
        client.major === 2 ? svix.endpoint.upsert(appId, epId, body) : svix.endpoint.update(appId, epId, body);

      beforeAll(async () => {
        t = await startTestServer(dialect);
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
  });
}
