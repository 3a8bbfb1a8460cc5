import { Webhook } from "svix";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/clock/index.js";
import type { LifecycleEvents } from "../../src/events/index.js";
import { apiAt, postWebhook, until, type Api } from "../helpers/agents.js";
import { DIALECTS } from "../helpers/dialects.js";
import { createApp, createEndpoint, pendingJobs, publish } from "../helpers/delivery.js";
import { databaseText, setup, storedForms } from "../helpers/ingress.js";
import { Receiver, type Received } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

type Captured = { [K in "incident:paused" | "incident:resumed" | "incident:rotated"]: LifecycleEvents[K][] };

/** Whether `secret` signed this delivery (the official Svix library, which accepts any of the signatures sent). */
function signedWith(secret: string, r: Received): boolean {
  try {
    new Webhook(secret).verify(r.body, r.headers as Record<string, string>);
    return true;
  } catch {
    return false;
  }
}

for (const dialect of DIALECTS) {
  describe(`incident response over the API (${dialect})`, () => {
    let t: TestServer;
    let receiver: Receiver;
    let clock: FakeClock;
    const events: Captured = { "incident:paused": [], "incident:resumed": [], "incident:rotated": [] };
    const at = (path: string) => receiver.received.filter((r) => r.url === path);

    beforeAll(async () => {
      clock = new FakeClock(Date.now());
      t = await startTestServer(dialect, {}, { clock });
      receiver = await new Receiver().start();
      for (const name of ["incident:paused", "incident:resumed", "incident:rotated"] as const) {
        t.hw.ctx.events.on(name, (p) => (events[name] as unknown[]).push(p));
      }
    }, 60_000);
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    it("pausing an application holds its deliveries in the queue (publishing still answers 202) and resume delivers every one", async () => {
      const paused = await createApp(t, "paused");
      const other = await createApp(t, "other");
      await createEndpoint(t, paused, { url: `${receiver.url}/paused` });
      await createEndpoint(t, other, { url: `${receiver.url}/other` });

      const res = await t.api("POST", "/api/v1/incident/pause", { app: paused });
      expect(res.status, res.text).toBe(200);
      expect(res.body).toMatchObject({ id: paused, kind: "app", created: true });
      // Idempotent: pausing again changes nothing and emits nothing.
      expect((await t.api("POST", "/api/v1/incident/pause", { app: paused })).body).toMatchObject({ id: paused, created: false });

      const msgs = [];
      for (let i = 0; i < 3; i++) msgs.push(await publish(t, paused, { payload: { i } }));
      await publish(t, other, { payload: { other: true } });
      await t.hw.worker.runUntilIdle();
      expect(at("/paused")).toHaveLength(0);
      expect(at("/other")).toHaveLength(1);
      expect(await pendingJobs(t)).toBeGreaterThanOrEqual(3);
      const list = await t.api("GET", "/api/v1/incident/pause");
      expect(list.body.data.map((p: { id: string }) => p.id)).toEqual([paused]);

      const resumed = await t.api("POST", "/api/v1/incident/resume", { app: paused });
      expect(resumed.body).toEqual({ id: paused, kind: "app", resumed: true });
      expect((await t.api("POST", "/api/v1/incident/resume", { app: paused })).body.resumed).toBe(false);
      await until("the held deliveries arrive", async () => {
        await t.hw.worker.runUntilIdle();
        return at("/paused").length >= 3;
      });
      expect(new Set(at("/paused").map((r) => r.headers["webhook-id"]))).toEqual(new Set(msgs.map((m) => m.id)));
      expect(await t.hw.worker.runUntilIdle().then(() => pendingJobs(t))).toBe(0);

      expect(events["incident:paused"]).toEqual([expect.objectContaining({ scope: "app", targetId: paused, actor: expect.stringMatching(/^admin \(tok_/) })]);
      expect(events["incident:resumed"]).toEqual([expect.objectContaining({ scope: "app", targetId: paused })]);
      const audit = await until("the audit entries are written", async () => {
        const res = await t.api("GET", "/api/v1/audit?action=incident");
        return res.body.data.length >= 4 ? res : undefined;
      });
      expect(audit.body.data.map((e: { action: string; resourceId: string }) => [e.action, e.resourceId])).toEqual([
        ["POST /api/v1/incident/resume", paused],
        ["POST /api/v1/incident/resume", paused],
        ["POST /api/v1/incident/pause", paused],
        ["POST /api/v1/incident/pause", paused],
      ]);
    }, 60_000);

    it("pausing a bucket keeps the public inbound accepting (and a waiting input answering at once); the requests are forwarded after resume", async () => {
      const { bucket, input } = await setup(t, { outputs: [`${receiver.url}/bucket`] });
      const waits = (await t.api("POST", `/api/v1/bucket/${bucket.id}/input`, { name: "waits", response: { mode: "wait", timeoutMs: 10_000 } })).body;
      expect((await t.api("POST", "/api/v1/incident/pause", { bucket: bucket.name })).body).toMatchObject({ id: bucket.id, kind: "bucket" });
      expect((await postWebhook(input.url, JSON.stringify({ n: 1 }))).status).toBe(200);
      // A wait-mode input would deliver while the caller waits: paused, it answers like a static one.
      expect((await postWebhook(waits.url, JSON.stringify({ n: 2 }))).status).toBe(200);
      await t.hw.worker.runUntilIdle();
      expect(at("/bucket")).toHaveLength(0);
      expect((await t.api("POST", "/api/v1/incident/resume", { bucket: bucket.id })).body.resumed).toBe(true);
      await until("both forwarded", async () => {
        await t.hw.worker.runUntilIdle();
        return at("/bucket").length >= 2;
      });
      expect(at("/bucket").map((r) => r.body).sort()).toEqual(['{"n":1}', '{"n":2}']);
    }, 60_000);

    it("pausing the organisation holds all of its deliveries and nobody else's; another organisation cannot see or lift it", async () => {
      const app = await createApp(t, "org-wide");
      await createEndpoint(t, app, { url: `${receiver.url}/org` });
      const other: Api = apiAt(() => t.url, await t.newOrgToken("bystander"));
      const otherApp = (await other("POST", "/api/v1/app", { name: "theirs" })).body.id as string;
      expect((await other("POST", `/api/v1/app/${otherApp}/endpoint`, { url: `${receiver.url}/bystander` })).status).toBe(201);

      const p = await t.api("POST", "/api/v1/incident/pause", {});
      expect(p.body).toMatchObject({ id: expect.stringMatching(/^org_/), kind: "org" });
      await publish(t, app, {});
      expect((await other("POST", `/api/v1/app/${otherApp}/msg`, { eventType: "x", payload: {} })).status).toBe(202);
      await t.hw.worker.runUntilIdle();
      expect(at("/org")).toHaveLength(0);
      expect(at("/bystander")).toHaveLength(1);
      // Tenants are isolated: the other organisation does not see this pause and cannot name this app.
      expect((await other("GET", "/api/v1/incident/pause")).body.data).toEqual([]);
      expect((await other("POST", "/api/v1/incident/resume", { app })).status).toBe(404);
      expect((await other("POST", "/api/v1/incident/resume", {})).body.resumed).toBe(false);
      await t.hw.worker.runUntilIdle();
      expect(at("/org")).toHaveLength(0);

      expect((await t.api("POST", "/api/v1/incident/resume", {})).body).toMatchObject({ kind: "org", resumed: true });
      await until("delivered after resume", async () => {
        await t.hw.worker.runUntilIdle();
        return at("/org").length >= 1;
      });
    }, 60_000);

    it("an application deleted while paused can still be resumed by id, clearing the list", async () => {
      const app = await createApp(t, "deleted-while-paused");
      expect((await t.api("POST", "/api/v1/incident/pause", { app })).status).toBe(200);
      expect((await t.api("DELETE", `/api/v1/app/${app}`)).status).toBe(204);
      expect((await t.api("POST", "/api/v1/incident/resume", { app })).body).toEqual({ id: app, kind: "app", resumed: true });
      expect((await t.api("GET", "/api/v1/incident/pause")).body.data).toEqual([]);
      expect((await t.api("POST", "/api/v1/incident/resume", { app })).status).toBe(404);
    });

    it("refuses hostile or ambiguous input with {code, detail} and limited tokens with 403", async () => {
      const app = await createApp(t, "hostile");
      const bad: [unknown, number][] = [
        [{ app, bucket: "b" }, 422],
        [{ app: "app_nope" }, 404],
        [{ bucket: "no-such-bucket" }, 404],
        [{ app, extra: 1 }, 422],
        [{ app: 42 }, 422],
        [{ app: "" }, 422],
        [{ app: "x".repeat(300) }, 422],
        [[], 422],
        ["null", 422],
      ];
      for (const [body, status] of bad) {
        for (const path of ["/api/v1/incident/pause", "/api/v1/incident/resume"]) {
          const res = await t.api("POST", path, body);
          // Validation errors carry Svix's detail list, the others a sentence.
          expect([res.status, typeof res.body?.code, res.body?.detail !== undefined], `${path} ${JSON.stringify(body)}: ${res.text}`).toEqual([status, "string", true]);
        }
      }
      for (const overlap of ["-1h", "abc", "31d", 1e20, -5, 1.5, "1h; drop table jobs", null]) {
        const res = await t.api("POST", "/api/v1/incident/rotate", { app, overlap });
        expect([res.status, typeof res.body?.code], `overlap ${JSON.stringify(overlap)}: ${res.text}`).toEqual([422, "string"]);
      }
      expect((await t.api("POST", "/api/v1/incident/pause", "{not json", { "content-type": "application/json" })).status).toBe(400);
      const readOnly = (await t.api("POST", "/api/v1/auth/token", { name: "viewer", scope: "read-only" })).body.token as string;
      const appOnly = (await t.api("POST", "/api/v1/auth/token", { name: "one-app", app })).body.token as string;
      for (const token of [readOnly, appOnly]) {
        const as = apiAt(() => t.url, token);
        for (const path of ["/api/v1/incident/pause", "/api/v1/incident/resume", "/api/v1/incident/rotate"]) expect((await as("POST", path, {})).status).toBe(403);
      }
      expect((await fetch(`${t.url}/api/v1/incident/pause`, { method: "POST" })).status).toBe(401);
      // Nothing was paused or rotated by any of it.
      expect((await t.api("GET", "/api/v1/incident/pause")).body.data).toEqual([]);
    }, 60_000);

    it("rotate: the old secret and token keep working for the overlap and not after (fake clock); overlap 0 ends them at once; new values are shown once", async () => {
      const orgToken = await t.newOrgToken("rotating");
      const as = apiAt(() => t.url, orgToken);
      const app = (await as("POST", "/api/v1/app", { name: "rot" })).body.id as string;
      expect((await as("POST", `/api/v1/app/${app}/endpoint`, { url: `${receiver.url}/rot`, secret: SECRET })).status).toBe(201);
      const deliver = async (api: Api, n: number) => {
        const before = at("/rot").length;
        expect((await api("POST", `/api/v1/app/${app}/msg`, { eventType: "e", payload: { n } })).status).toBe(202);
        await until("delivered", async () => {
          await t.hw.worker.runUntilIdle();
          return at("/rot").length > before;
        });
        return at("/rot").at(-1)!;
      };

      // Two minutes: a clock moved past it stays inside the verifiers' 5-minute timestamp tolerance.
      const r1 = await as("POST", "/api/v1/incident/rotate", { overlap: "2m" });
      expect(r1.status, r1.text).toBe(200);
      const s2 = r1.body.endpoints[0].secret as string;
      const t2 = r1.body.tokens[0].token as string;
      expect(r1.body.endpoints).toHaveLength(1);
      expect(r1.body.tokens).toHaveLength(1);
      expect(s2).toMatch(/^whsec_/);
      expect(t2).toMatch(/^hwk_/);
      const as2 = apiAt(() => t.url, t2);

      clock.advance(60_000);
      expect((await as("GET", "/api/v1/app")).status).toBe(200);
      const during = await deliver(as2, 1);
      expect([signedWith(SECRET, during), signedWith(s2, during)]).toEqual([true, true]);

      clock.advance(61_000);
      expect((await as("GET", "/api/v1/app")).status).toBe(401);
      expect((await as2("GET", "/api/v1/app")).status).toBe(200);
      const after = await deliver(as2, 2);
      expect([signedWith(SECRET, after), signedWith(s2, after)]).toEqual([false, true]);

      const r2 = await fetch(`${t.url}/api/v1/incident/rotate`, { method: "POST", headers: { authorization: `Bearer ${t2}`, "content-type": "application/json" }, body: JSON.stringify({ app, overlap: 0 }) });
      expect(r2.headers.get("cache-control")).toBe("no-store");
      const body2 = (await r2.json()) as { endpoints: { secret: string }[]; tokens: unknown[] };
      const s3 = body2.endpoints[0]!.secret;
      // An application's rotation replaces the tokens limited to it: this organisation has none.
      expect(body2.tokens).toEqual([]);
      const now = await deliver(as2, 3);
      expect([signedWith(s2, now), signedWith(s3, now)]).toEqual([false, true]);

      const r3 = await as2("POST", "/api/v1/incident/rotate", { overlap: "0s" });
      const t3 = r3.body.tokens[0].token as string;
      // Overlap 0: the old token stops at once on this node (no 5 s cache grace).
      expect((await as2("GET", "/api/v1/app")).status).toBe(401);
      const as3 = apiAt(() => t.url, t3);
      expect((await as3("GET", "/api/v1/app")).status).toBe(200);

      expect(events["incident:rotated"].filter((e) => e.appId === app || e.overlapMs === 120_000).map((e) => [e.appId, e.endpoints, e.tokens, e.overlapMs])).toEqual([
        [null, 1, 1, 120_000],
        [app, 1, 0, 0],
      ]);
      // Shown once: never in the audit log, a token list, the logs, a later answer, or the database in the clear.
      // The audit entry of a change is written once its answer is sent: wait for the third.
      const rotations = (res: { body: { data: { action: string }[] } }) => res.body.data.filter((e) => e.action === "POST /api/v1/incident/rotate").length;
      const audit = await until("the three rotations' audit entries", async () => {
        const res = await as3("GET", "/api/v1/audit?action=incident");
        return rotations(res) >= 3 ? res : undefined;
      });
      expect(rotations(audit)).toBe(3);
      const seen = [audit.text, (await as3("GET", "/api/v1/auth/token")).text, (await as3("GET", `/api/v1/app/${app}/endpoint`)).text, t.logs(), JSON.stringify(events), await databaseText(t)].join("\n");
      for (const value of [s2, s3, t2, t3]) for (const form of storedForms(value)) expect(seen.includes(form), `a rotated value leaked (${form.slice(0, 10)}…)`).toBe(false);
    }, 90_000);
  });
}
