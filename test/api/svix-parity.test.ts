import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
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
        // No retries: a failed delivery fails for good at once, which is what recover resends.
        t = await startTestServer(dialect, { retrySchedule: [] }, { clock });
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

        // Up to --retention ahead (Svix's 90 days by default).
        const tooFar = new Date(clock.now() + 91 * 86_400_000);
        await expect(svix.message.create(app.id, { eventType: "later.please", payload: {}, deliverAt: tooFar })).rejects.toMatchObject({ code: 422 });
      });

      it("recover, getStats, listAttemptedMessages/Destinations and both expunges behave as a user sees them", async () => {
        const app = await svix.application.create({ name: "recovery" });
        const ep = await svix.endpoint.create(app.id, { url: `${receiver.url}/recover` });
        let failing = true;
        receiver.respond = (r) => (r.url === "/recover" && failing ? { status: 500, body: "down: secret-ish body" } : undefined);
        let okFrom = Infinity;
        const delivered = () => receiver.received.slice(okFrom).filter((r) => r.url === "/recover").map((r) => JSON.parse(r.body).n);
        const t0 = clock.now();
        // Each delivery settles before the clock moves, so no lease runs out under it.
        const m1 = await svix.message.create(app.id, { eventType: "r.e", payload: { n: 1 } });
        await t.hw.worker.runUntilIdle();
        clock.advance(10 * 60_000);
        const m2 = await svix.message.create(app.id, { eventType: "r.e", payload: { n: 2 } });
        await t.hw.worker.runUntilIdle();
        clock.advance(10 * 60_000);
        const m3 = await svix.message.create(app.id, { eventType: "r.e", payload: { n: 3 } });
        await t.hw.worker.runUntilIdle();
        failing = false;
        const okCountBefore = receiver.received.length;
        okFrom = okCountBefore;
        clock.advance(10 * 60_000);
        const m4 = await svix.message.create(app.id, { eventType: "r.e", payload: { n: 4 } });
        await receiver.waitFor(okCountBefore + 1);
        await t.hw.worker.runUntilIdle();

        expect(await svix.endpoint.getStats(app.id, ep.id)).toMatchObject({ success: 1, fail: 3, pending: 0, sending: 0 });
        expect(await svix.endpoint.getStats(app.id, ep.id, { since: new Date(t0 + 5 * 60_000), until: new Date(t0 + 25 * 60_000) })).toMatchObject({ success: 0, fail: 2 });
        const failedList = await svix.messageAttempt.listAttemptedMessages(app.id, ep.id, { status: 2 });
        expect(failedList.data.map((m: any) => m.id)).toEqual([m3.id, m2.id, m1.id]);
        expect(failedList.data[0].statusText).toBe("fail");
        const all = await svix.messageAttempt.listAttemptedMessages(app.id, ep.id);
        expect(all.data.map((m: any) => [m.id, m.status])).toEqual([[m4.id, 0], [m3.id, 2], [m2.id, 2], [m1.id, 2]]);

        // Recover the window [t0+5m, t0+25m): m2 and m3 are delivered again, m1 is not.
        const rec = await svix.endpoint.recover(app.id, ep.id, { since: new Date(t0 + 5 * 60_000), until: new Date(t0 + 25 * 60_000) });
        expect(rec.id).toMatch(/^qtask_/);
        expect(rec.task).toBe("endpoint.recover");
        await t.hw.worker.runUntilIdle();
        await receiver.waitFor(okCountBefore + 3);
        expect(delivered().sort()).toEqual([2, 3, 4]);
        expect(await svix.endpoint.getStats(app.id, ep.id)).toMatchObject({ success: 3, fail: 1 });
        const m2Attempts = await svix.messageAttempt.listByMsg(app.id, m2.id);
        expect(m2Attempts.data.map((a: any) => a.status)).toEqual([0, 2]);
        // Recovering again finds nothing left to send in that window.
        await svix.endpoint.recover(app.id, ep.id, { since: new Date(t0 + 5 * 60_000), until: new Date(t0 + 25 * 60_000) });
        await t.hw.worker.runUntilIdle();
        expect(delivered().sort()).toEqual([2, 3, 4]);

        const dests = await svix.messageAttempt.listAttemptedDestinations(app.id, m1.id);
        expect(dests.data.map((d: any) => [d.id, d.status, d.statusText, d.url])).toEqual([[ep.id, 2, "fail", `${receiver.url}/recover`]]);
        expect((await svix.messageAttempt.listAttemptedDestinations(app.id, m2.id)).data.map((d: any) => d.status)).toEqual([0]);

        // expungeContent: the payload is gone from GET and from lists, the message remains.
        await svix.message.expungeContent(app.id, m1.id);
        // Svix answers {"expired": true} for a payload removed by expunge or retention.
        expect((await svix.message.get(app.id, m1.id, { withContent: true })).payload).toEqual({ expired: true });
        expect(JSON.stringify(await svix.message.list(app.id, { withContent: true }))).not.toContain('"n":1');
        expect((await svix.message.get(app.id, m2.id, { withContent: true })).payload).toEqual({ n: 2 });

        // messageAttempt.expungeContent: the response body is gone, the status stays.
        const [failedAttempt] = (await svix.messageAttempt.listByMsg(app.id, m1.id)).data;
        expect(failedAttempt.response).toContain("secret-ish");
        await svix.messageAttempt.expungeContent(app.id, m1.id, failedAttempt.id);
        const after = await svix.messageAttempt.get(app.id, m1.id, failedAttempt.id);
        expect(after.response).toBe("");
        expect(after.status).toBe(2);
        expect(after.responseStatusCode).toBe(500);
        receiver.respond = () => undefined;
      });

      it("sendExample sends an event type's example (or svix.ping) to that one endpoint only", async () => {
        const et = `example.${client.major}`;
        await svix.eventType.create({ name: et, description: "has examples", schemas: { "1": { type: "object", examples: [{ first: true }, { second: true }] } } });
        const app = await svix.application.create({ name: "examples" });
        const target = await svix.endpoint.create(app.id, { url: `${receiver.url}/example-target`, ...types(["something.else"]) });
        await svix.endpoint.create(app.id, { url: `${receiver.url}/example-bystander` });
        const before = receiver.received.length;
        const msg = await svix.endpoint.sendExample(app.id, target.id, { eventType: et, exampleIndex: 1 });
        expect(msg.id).toMatch(/^msg_/);
        expect(msg.eventType).toBe(et);
        await svix.endpoint.sendExample(app.id, target.id, { eventType: "svix.ping" });
        await receiver.waitFor(before + 2);
        await t.hw.worker.runUntilIdle();
        const got = receiver.received.slice(before);
        expect(got.map((r) => r.url)).toEqual(["/example-target", "/example-target"]);
        // Two jobs for one endpoint may arrive in either order.
        expect(got.map((r) => JSON.parse(r.body))).toEqual(expect.arrayContaining([{ second: true }, { success: true }]));
        await expect(svix.endpoint.sendExample(app.id, target.id, { eventType: et, exampleIndex: 5 })).rejects.toMatchObject({ code: 422 });
        await expect(svix.endpoint.sendExample(app.id, target.id, { eventType: "no.such.type" })).rejects.toMatchObject({ code: 422 });
      });

      it("appPortalAccess gives an expiring token scoped to one application; logout revokes it", async () => {
        const app = await svix.application.create({ name: "portal" });
        const other = await svix.application.create({ name: "someone else" });
        const ep = await svix.endpoint.create(app.id, { url: `${receiver.url}/portal` });
        const msg = await svix.message.create(app.id, { eventType: "p.e", payload: { p: 1 } });
        await svix.endpoint.create(other.id, { url: `${receiver.url}/other` });
        await t.hw.worker.runUntilIdle();

        const access = await svix.authentication.appPortalAccess(app.id, {});
        expect(access.token).toMatch(/^hwp_/);
        // The portal link carries the token in its fragment only, as Svix's does: never in the
        // path or query, which reach servers and their logs.
        const link = new URL(access.url);
        expect(`${link.origin}${link.pathname}`).toBe(`${t.url}/portal`);
        expect(link.hash).toBe(`#key=${access.token}`);
        expect(link.search).toBe("");
        const portal = client.make(access.token, t.url);

        // What it can do: manage this app's endpoints, read its messages and attempts, resend.
        expect((await portal.endpoint.list(app.id)).data.map((e: any) => e.id)).toEqual([ep.id]);
        const created = await portal.endpoint.create(app.id, { url: `${receiver.url}/portal-made`, ...types(["p.e"]) });
        expect(typesOf(created)).toEqual(["p.e"]);
        await portal.endpoint.patch(app.id, created.id, { description: "by the portal" });
        expect((await portal.message.list(app.id)).data.map((m: any) => m.id)).toEqual([msg.id]);
        expect((await portal.messageAttempt.listByMsg(app.id, msg.id)).data).toHaveLength(1);
        await portal.messageAttempt.resend(app.id, msg.id, ep.id);
        await t.hw.worker.runUntilIdle();
        expect((await portal.messageAttempt.listByMsg(app.id, msg.id)).data.map((a: any) => a.triggerType)).toEqual([1, 0]);
        expect(await portal.endpoint.getStats(app.id, ep.id)).toMatchObject({ success: 1, pending: 0, fail: 0 });
        await portal.endpoint.delete(app.id, created.id);

        // And nothing else: another app looks absent, org-level and publishing routes are refused.
        await expect(portal.endpoint.list(other.id)).rejects.toMatchObject({ code: 404 });
        await expect(portal.endpoint.create(other.id, { url: `${receiver.url}/x` })).rejects.toMatchObject({ code: 404 });
        await expect(portal.application.get(other.id)).rejects.toMatchObject({ code: 403 });
        await expect(portal.application.list()).rejects.toMatchObject({ code: 403 });
        await expect(portal.application.delete(app.id)).rejects.toMatchObject({ code: 403 });
        // The event catalogue is readable, as in Svix's portal, without archived or feature-flagged
        // types; it is not writable.
        // svix 1.x sends `featureFlag`, 2.x `featureFlags`: each client sends what it knows.
        await svix.eventType.create({ name: "portal.flagged", description: "beta", featureFlag: "beta", featureFlags: ["beta"] } as any);
        expect((await svix.eventType.get("portal.flagged")).featureFlags).toEqual(["beta"]);
        for (const body of [{ featureFlags: ["a", "b"] }, { featureFlag: "a", featureFlags: ["b"] }]) {
          const r = await t.api("POST", "/api/v1/event-type", { name: "portal.two-flags", description: "no", ...body });
          expect(r.status).toBe(422);
          expect(JSON.stringify(r.body.detail)).toContain("featureFlags");
        }
        await svix.eventType.create({ name: "portal.archived", description: "old", archived: true });
        await svix.eventType.create({ name: "portal.visible", description: "catalogue" });
        const seen = (await portal.eventType.list({ limit: 250 })).data.map((t: any) => t.name);
        expect(seen).toContain("portal.visible");
        expect(seen).not.toContain("portal.flagged");
        expect(seen).not.toContain("portal.archived");
        expect((await portal.eventType.get("portal.visible")).name).toBe("portal.visible");
        await expect(portal.eventType.get("portal.flagged")).rejects.toMatchObject({ code: 404 });
        await expect(portal.eventType.create({ name: "portal.made", description: "no" })).rejects.toMatchObject({ code: 403 });
        await expect(portal.message.create(app.id, { eventType: "p.e", payload: {} })).rejects.toMatchObject({ code: 403 });
        await expect(portal.message.expungeContent(app.id, msg.id)).rejects.toMatchObject({ code: 403 });
        await expect(portal.authentication.appPortalAccess(other.id, {})).rejects.toMatchObject({ code: 403 });
        expect((await svix.endpoint.list(other.id)).data).toHaveLength(1);

        // Stored only as a hash.
        const rows = await t.hw.ctx.store.db.selectFrom("api_tokens").selectAll().where("app_id", "=", app.id).execute();
        expect(rows.map((r) => r.token_hash)).toContain(createHash("sha256").update(access.token).digest("hex"));
        expect(JSON.stringify(rows)).not.toContain(access.token);

        // logout revokes the token it is called with, at once; the organisation token still works.
        await portal.authentication.logout();
        await expect(portal.endpoint.list(app.id)).rejects.toMatchObject({ code: 401 });
        expect((await svix.endpoint.list(app.id)).data.length).toBeGreaterThan(0);
        await expect(svix.authentication.logout()).rejects.toMatchObject({ code: 403 });
        expect((await svix.application.list()).data.length).toBeGreaterThan(0);

        // It expires.
        const short = await svix.authentication.appPortalAccess(app.id, { expiry: 3600 });
        const shortLived = client.make(short.token, t.url);
        expect((await shortLived.endpoint.list(app.id)).data.length).toBeGreaterThan(0);
        clock.advance(3600 * 1000);
        await expect(shortLived.endpoint.list(app.id)).rejects.toMatchObject({ code: 401 });

        // Read-only: reads, but no endpoint changes and no resend.
        const ro = client.make((await svix.authentication.appPortalAccess(app.id, { readOnly: true })).token, t.url);
        expect((await ro.endpoint.list(app.id)).data.length).toBeGreaterThan(0);
        await expect(ro.endpoint.create(app.id, { url: `${receiver.url}/ro` })).rejects.toMatchObject({ code: 403 });
        await expect(ro.messageAttempt.resend(app.id, msg.id, ep.id)).rejects.toMatchObject({ code: 403 });

        // application in the body creates the app on first use.
        const fresh = await svix.authentication.appPortalAccess(`portal-new-${client.major}`, { application: { name: "New" } });
        const freshPortal = client.make(fresh.token, t.url);
        expect((await freshPortal.endpoint.list(`portal-new-${client.major}`)).data).toEqual([]);
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

    it("app-portal tokens: no-store, refused unknown fields, bounded expiry", async () => {
      const app = await t.api("POST", "/api/v1/app", { name: "portal-wire" });
      const ok = await fetch(`${t.url}/api/v1/auth/app-portal-access/${app.body.id}`, {
        method: "POST",
        headers: { authorization: `Bearer ${t.token}`, "content-type": "application/json" },
        body: "{}",
      });
      expect(ok.status).toBe(200);
      expect(ok.headers.get("cache-control")).toBe("no-store");
      for (const body of [{ capabilities: ["ViewBase"] }, { featureFlags: ["beta"] }, { sessionId: "s1" }]) {
        const r = await t.api("POST", `/api/v1/auth/app-portal-access/${app.body.id}`, body);
        expect(r.status).toBe(422);
        expect(JSON.stringify(r.body.detail)).toContain(Object.keys(body)[0]!);
      }
      for (const expiry of [0, 59, 8 * 86400, 1e300, -1]) {
        expect((await t.api("POST", `/api/v1/auth/app-portal-access/${app.body.id}`, { expiry })).status).toBe(422);
      }
      expect((await t.api("POST", "/api/v1/auth/app-portal-access/no-such-app", {})).status).toBe(404);
      const bad = await fetch(`${t.url}/api/v1/app`, { headers: { authorization: "Bearer hwp_forged" } });
      expect(bad.status).toBe(401);
    });

    it("the new operations refuse hostile input with a clear 4xx, never a 5xx", async () => {
      const app = await t.api("POST", "/api/v1/app", { name: "hostile-ops" });
      const ep = await t.api("POST", `/api/v1/app/${app.body.id}/endpoint`, { url: "http://127.0.0.1:9/x" });
      const base = `/api/v1/app/${app.body.id}/endpoint/${ep.body.id}`;
      const cases: [string, string, unknown, number][] = [
        ["POST", `${base}/recover`, {}, 422],
        ["POST", `${base}/recover`, { since: "yesterday" }, 422],
        ["POST", `${base}/recover`, { since: "2026-01-02T00:00:00Z", until: "2026-01-01T00:00:00Z" }, 422],
        ["POST", `${base}/recover`, { since: "2026-01-01T00:00:00Z", extra: 1 }, 422],
        ["GET", `${base}/stats?since=not-a-date`, undefined, 422],
        ["POST", `${base}/send-example`, { eventType: "a\u0000b" }, 422],
        ["POST", `${base}/send-example`, { eventType: "x.y", exampleIndex: -1 }, 422],
        ["GET", `${base}/msg?status=9`, undefined, 422],
        ["GET", `${base}/msg?tag=${"t".repeat(200)}`, undefined, 422],
        ["GET", `/api/v1/app/${app.body.id}/msg?tag=%00`, undefined, 422], // U+0000 is refused in every query value
        ["DELETE", `/api/v1/app/${app.body.id}/msg/msg_nope/content`, undefined, 404],
        ["DELETE", `/api/v1/app/${app.body.id}/msg/msg_nope/attempt/atmpt_nope/content`, undefined, 404],
        ["GET", `/api/v1/app/${app.body.id}/msg/msg_nope/endpoint`, undefined, 404],
        ["POST", `/api/v1/app/${app.body.id}/msg`, { eventType: "a.b", payload: {}, deliverAt: "tomorrow" }, 422],
      ];
      for (const [method, path, body, status] of cases) {
        const r = await t.api(method, path, body);
        expect(r.status, `${method} ${path}`).toBe(status);
        if (status >= 400) expect(r.body.code).toMatch(/^E_/);
      }
    });
  });
}
