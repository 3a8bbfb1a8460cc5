import { statSync } from "node:fs";
import { join } from "node:path";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { FakeClock } from "../../src/clock/index.js";
import { runRetention } from "../../src/retention/index.js";
import { SQLITE_FILE } from "../../src/store/sqlite/connect.js";
import { DIALECTS } from "../helpers/dialects.js";
import { attemptsOf, createApp, createEndpoint, pendingJobs, publish } from "../helpers/delivery.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const DAY = 86_400_000;
const HOUR = 3_600_000;

for (const dialect of DIALECTS) {
  describe(`retention removes old content and keeps the rest (${dialect})`, () => {
    let t: TestServer;
    let receiver: Receiver;
    const clock = new FakeClock(Date.now());

    beforeAll(async () => {
      // The default --retention (90 days); one retry, three days later; no timer pass of its own.
      t = await startTestServer(dialect, { retentionInterval: "24h", retrySchedule: "3d" }, { clock });
      receiver = await new Receiver().start();
      receiver.respond = (r) => (r.url.startsWith("/down") ? { status: 500, body: "down: answer-body" } : { status: 200, body: `answer-body for ${r.url}` });
    });
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    const getMsg = async (appId: string, msgId: string) => {
      const res = await t.api("GET", `/api/v1/app/${appId}/msg/${msgId}`);
      expect(res.status, res.text).toBe(200);
      return res.body;
    };

    it("after 90 days (the default) a message keeps its row and attempts but loses payload and bodies, as in Svix; newer ones are kept", async () => {
      const app = await createApp(t, "default-retention");
      await createEndpoint(t, app, { url: `${receiver.url}/ok` });
      const t0 = clock.now();
      const old = await publish(t, app, { eventType: "a.b", payload: { secret: "old-payload" } });
      await t.hw.worker.runUntilIdle();
      clock.advance(45 * DAY);
      const fresh = await publish(t, app, { eventType: "a.b", payload: { secret: "new-payload" } });
      await t.hw.worker.runUntilIdle();
      expect((await attemptsOf(t, app, old.id))[0]!.response).toContain("answer-body");

      // One millisecond before its expiry nothing is removed.
      clock.set(t0 + 90 * DAY - 1);
      expect((await runRetention(t.hw.ctx)).messages).toBe(0);
      expect((await getMsg(app, old.id)).payload).toEqual({ secret: "old-payload" });

      clock.set(t0 + 90 * DAY);
      const report = await runRetention(t.hw.ctx);
      expect(report.messages).toBe(1);
      const gone = await getMsg(app, old.id);
      expect(gone.payload).toEqual({ expired: true });
      expect(gone.eventType).toBe("a.b");
      const list = await t.api("GET", `/api/v1/app/${app}/msg`);
      expect(list.body.data.map((m: any) => [m.id, m.payload])).toEqual([
        [fresh.id, { secret: "new-payload" }],
        [old.id, { expired: true }],
      ]);
      expect(list.text).not.toContain("old-payload");
      const [attempt] = await attemptsOf(t, app, old.id);
      expect(attempt).toMatchObject({ response: "", responseStatusCode: 200, status: 0 });
      expect((await attemptsOf(t, app, fresh.id))[0]!.response).toContain("answer-body");
      // The content is gone for good: it cannot be sent again.
      const ep = (await t.api("GET", `/api/v1/app/${app}/endpoint`)).body.data[0];
      const resend = await t.api("POST", `/api/v1/app/${app}/msg/${old.id}/endpoint/${ep.id}/resend`);
      expect(resend.status).toBe(409);
      expect(resend.body.code).toBe("E_CONTENT_EXPIRED");
      // Running again changes nothing.
      expect((await runRetention(t.hw.ctx)).messages).toBe(0);
    });

    it("a message whose delivery is still pending (retry or deliverAt) keeps its content until the delivery ends", async () => {
      const app = await createApp(t, "pending");
      const patched = await t.api("PATCH", `/api/v1/app/${app}`, { payloadRetentionPeriod: 1 });
      expect(patched.body.payloadRetentionPeriod).toBe(1);
      const down = await createEndpoint(t, app, { url: `${receiver.url}/down-pending` });
      const retrying = await publish(t, app, { eventType: "p.e", payload: { keep: "while-retrying" } });
      const scheduled = await publish(t, app, { eventType: "p.e", payload: { keep: "until-sent" }, deliverAt: new Date(clock.now() + 2 * DAY).toISOString() });
      await t.hw.worker.runUntilIdle();
      expect(await pendingJobs(t)).toBeGreaterThanOrEqual(2);

      clock.advance(DAY + HOUR);
      await runRetention(t.hw.ctx);
      expect((await getMsg(app, retrying.id)).payload).toEqual({ keep: "while-retrying" });
      expect((await getMsg(app, scheduled.id)).payload).toEqual({ keep: "until-sent" });

      // The endpoint recovers: both are delivered whole, then the next pass removes their content.
      await t.api("PATCH", `/api/v1/app/${app}/endpoint/${down.id}`, { url: `${receiver.url}/up-again` });
      const before = receiver.received.length;
      clock.advance(2 * DAY);
      // Failed attempts made meanwhile (the worker's real-time poll runs on) may have opened the
      // endpoint's circuit: then one probe goes first and the other waits a cooldown of the fake clock.
      // The same poll may also have used up early retries, whose next one can be hours away: the
      // fake clock moves an hour at a time until both have arrived (a day at most).
      for (let i = 0; i < 24 && receiver.received.filter((r) => r.url === "/up-again").length < 2; i++) {
        await t.hw.worker.runUntilIdle();
        if (receiver.received.filter((r) => r.url === "/up-again").length < 2) clock.advance(HOUR);
      }
      await receiver.waitFor(before + 2);
      const bodies = receiver.received.slice(before).filter((r) => r.url === "/up-again").map((r) => JSON.parse(r.body));
      expect(bodies).toEqual(expect.arrayContaining([{ keep: "while-retrying" }, { keep: "until-sent" }]));
      await runRetention(t.hw.ctx);
      expect((await getMsg(app, retrying.id)).payload).toEqual({ expired: true });
      expect((await getMsg(app, scheduled.id)).payload).toEqual({ expired: true });
    });

    it("the per-application override and a message's own period decide when; other applications keep the default", async () => {
      const short = await createApp(t, "short");
      const normal = await createApp(t, "normal");
      const set = await t.api("PATCH", `/api/v1/app/${short}`, { payloadRetentionPeriod: 2 });
      expect(set.status, set.text).toBe(200);
      expect((await t.api("GET", `/api/v1/app/${short}`)).body.payloadRetentionPeriod).toBe(2);
      expect((await t.api("GET", `/api/v1/app/${normal}`)).body.payloadRetentionPeriod).toBeNull();
      const created = await t.api("POST", "/api/v1/app", { name: "made-short", payloadRetentionPeriod: 7 });
      expect(created.status).toBe(201);
      expect(created.body.payloadRetentionPeriod).toBe(7);

      const s = await publish(t, short, { payload: { app: "short" } });
      const n = await publish(t, normal, { payload: { app: "normal" } });
      const hours = await publish(t, normal, { payload: { app: "normal, 1 hour" }, payloadRetentionHours: 1 });
      const days = await publish(t, short, { payload: { app: "short, 30 days" }, payloadRetentionPeriod: 30 });

      clock.advance(HOUR);
      await runRetention(t.hw.ctx);
      expect((await getMsg(normal, hours.id)).payload).toEqual({ expired: true });
      expect((await getMsg(short, s.id)).payload).toEqual({ app: "short" });

      clock.advance(2 * DAY);
      await runRetention(t.hw.ctx);
      expect((await getMsg(short, s.id)).payload).toEqual({ expired: true });
      expect((await getMsg(short, days.id)).payload).toEqual({ app: "short, 30 days" });
      expect((await getMsg(normal, n.id)).payload).toEqual({ app: "normal" });

      // null goes back to the server's --retention.
      expect((await t.api("PATCH", `/api/v1/app/${short}`, { payloadRetentionPeriod: null })).body.payloadRetentionPeriod).toBeNull();
    });

    it("refuses hostile retention values with a 422 naming the field", async () => {
      const app = await createApp(t, "hostile");
      for (const bad of [0, -1, 3651, 1.5, "5", true, {}, [], 1e308]) {
        const res = await t.api("PATCH", `/api/v1/app/${app}`, { payloadRetentionPeriod: bad });
        expect(res.status, JSON.stringify(bad)).toBe(422);
        expect(res.text).toContain("payloadRetentionPeriod");
        const msg = await t.api("POST", `/api/v1/app/${app}/msg`, { eventType: "h.e", payload: {}, payloadRetentionPeriod: bad });
        expect(msg.status, JSON.stringify(bad)).toBe(422);
      }
      for (const bad of [0, -1, 3650 * 24 + 1, 0.5, "1", null]) {
        const msg = await t.api("POST", `/api/v1/app/${app}/msg`, { eventType: "h.e", payload: {}, payloadRetentionHours: bad });
        expect(msg.status, JSON.stringify(bad)).toBe(422);
        expect(msg.text).toContain("payloadRetentionHours");
      }
      const both = await t.api("POST", `/api/v1/app/${app}/msg`, { eventType: "h.e", payload: {}, payloadRetentionHours: 1, payloadRetentionPeriod: 1 });
      expect(both.status).toBe(422);
      expect(both.body.code).toBeDefined();
      const tooFar = await t.api("POST", `/api/v1/app/${app}/msg`, { eventType: "h.e", payload: {}, deliverAt: new Date(clock.now() + 91 * DAY).toISOString() });
      expect(tooFar.status).toBe(422);
    });

    it("expungeContent removes the content at once and cancels the message's pending deliveries", async () => {
      const app = await createApp(t, "expunge");
      await createEndpoint(t, app, { url: `${receiver.url}/down-expunge` });
      const msg = await publish(t, app, { payload: { card: "4242" } });
      await t.hw.worker.runUntilIdle();
      const jobsOf = async () => (await t.hw.ctx.store.db.selectFrom("jobs").select("id").where("item_id", "=", msg.id).execute()).length;
      expect(await jobsOf()).toBe(1);
      expect((await t.api("DELETE", `/api/v1/app/${app}/msg/${msg.id}/content`)).status).toBe(204);
      expect((await getMsg(app, msg.id)).payload).toEqual({ expired: true });
      expect(await jobsOf()).toBe(0);
      // As in Svix, the endpoint's answer stays until messageAttempt.expungeContent (or retention).
      expect((await attemptsOf(t, app, msg.id)).map((a) => [a.response, a.responseStatusCode])).toEqual([["down: answer-body", 500]]);
      const before = receiver.received.length;
      clock.advance(4 * DAY);
      await t.hw.worker.runUntilIdle();
      expect(receiver.received.slice(before).filter((r) => r.url === "/down-expunge")).toEqual([]);
    });

    it("new buckets keep received requests for --retention by default", async () => {
      const res = await t.api("POST", "/api/v1/bucket", { name: "default-retention" });
      expect(res.status, res.text).toBe(201);
      expect(res.body.retentionDays).toBe(90);
    });

    if (dialect === "sqlite") {
      it("gives the pages back: page_count and the file shrink after a pass, with no free pages left", async () => {
        const db = t.hw.ctx.store.db;
        const pragma = async (name: string) => Number(Object.values((await sql.raw(`pragma ${name}`).execute(db)).rows[0] as object)[0]);
        expect(await pragma("auto_vacuum")).toBe(2);
        const app = await createApp(t, "bulk");
        const big = "x".repeat(16 * 1024);
        for (let i = 0; i < 200; i++) await publish(t, app, { payload: { i, big } });
        const file = join(t.dataDir, SQLITE_FILE);
        const pagesBefore = await pragma("page_count");
        await vi.waitFor(() => expect(statSync(file).size).toBeGreaterThan(3_000_000), { timeout: 20_000 });
        const sizeBefore = statSync(file).size;

        clock.advance(91 * DAY);
        const report = await runRetention(t.hw.ctx, { batchSize: 50, vacuumStep: 64 });
        expect(report.messages).toBeGreaterThanOrEqual(200);
        expect(report.reclaimedPages).toBeGreaterThan(500);
        expect(await pragma("freelist_count")).toBe(0);
        const pagesAfter = await pragma("page_count");
        expect(pagesAfter).toBeLessThan(pagesBefore - 500);
        // The checkpoint thread moves the shrunken database into the file.
        await vi.waitFor(() => expect(statSync(file).size).toBeLessThan(sizeBefore - 2_000_000), { timeout: 20_000 });
      });
    } else {
      it("PostgreSQL: rows are deleted or emptied for autovacuum; reclaimSpace has nothing to do", async () => {
        expect(await t.hw.ctx.store.reclaimSpace(100)).toEqual({ released: 0, remaining: 0 });
      });
    }
  });
}
