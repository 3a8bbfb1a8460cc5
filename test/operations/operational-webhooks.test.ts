import { randomBytes } from "node:crypto";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/clock/index.js";
import { DIALECTS } from "../helpers/dialects.js";
import { createApp, createEndpoint, publish } from "../helpers/delivery.js";
import { Receiver, type Received } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { SVIX_CLIENTS } from "../helpers/svix-clients.js";

/** Five retries, a second apart: the fourth failure (failing) and the last (exhausted) come quickly. */
const SCHEDULE = [1_000, 1_000, 1_000, 1_000, 1_000];
const whsec = () => `whsec_${randomBytes(24).toString("base64")}`;

interface OpEvent {
  type: string;
  timestamp: string;
  data: Record<string, any>;
}

/**
 * Operational webhooks (issue 11 §3): an organisation registers endpoints with Svix's own clients
 * (1.x `operationalWebhookEndpoint`, 2.x `operationalWebhook.endpoint`), and a real local receiver
 * checks every event's Standard Webhooks signature with the `standardwebhooks` package.
 */
for (const dialect of DIALECTS) {
  for (const client of SVIX_CLIENTS) {
    describe(`operational webhooks, ${client.name} (${dialect})`, () => {
      let t: TestServer;
      let receiver: Receiver;
      let clock: FakeClock;
      let svix: any;
      /** The client's operational-endpoint API, under the name each major gives it. */
      let ops: any;
      const secrets = new Map<string, string>();
      const answers = new Map<string, number>();

      beforeAll(async () => {
        clock = new FakeClock(Date.now());
        t = await startTestServer(dialect, { retrySchedule: SCHEDULE, verificationFailingThreshold: 3, verificationFailingWindow: 60_000 }, { clock, random: () => 0.5 });
        receiver = await new Receiver().start();
        receiver.respond = (r) => ({ status: answers.get(r.url) ?? 200 });
        svix = client.make(t.token, t.url);
        ops = client.major === 1 ? svix.operationalWebhookEndpoint : svix.operationalWebhook.endpoint;
      });
      afterAll(async () => {
        await t?.stop();
        await receiver?.stop();
      });

      /** Lets the subscriber publish and the worker deliver everything due. */
      async function settle(ms = 0): Promise<void> {
        if (ms > 0) clock.advance(ms);
        for (let i = 0; i < 3; i++) {
          await t.hw.operational.drain();
          await t.hw.worker.runUntilIdle();
        }
      }

      /** Events received on `path`, each signature checked with the endpoint's secret. */
      function eventsAt(path: string): OpEvent[] {
        const wh = new Webhook(secrets.get(path)!);
        return receiver.received
          .filter((r: Received) => r.url === path)
          .map((r) => {
            const verified = wh.verify(r.body, r.headers as Record<string, string>) as OpEvent;
            expect(JSON.parse(r.body)).toEqual(verified);
            return verified;
          });
      }

      async function register(path: string, extra: Record<string, unknown> = {}, c: any = ops): Promise<any> {
        const secret = whsec();
        secrets.set(path, secret);
        return c.create({ url: `${receiver.url}${path}`, secret, ...extra });
      }

      it("serves Svix's operational-endpoint API: create, get, list, update, headers, rotate, delete", async () => {
        const typeField = client.major === 1 ? "filterTypes" : "eventTypes";
        const ep = await register("/ops-crud", { description: "ops", [typeField]: ["endpoint.created"], metadata: { team: "sre" }, uid: "ops-crud" });
        expect(ep).toMatchObject({ url: `${receiver.url}/ops-crud`, description: "ops", uid: "ops-crud", metadata: { team: "sre" }, [typeField]: ["endpoint.created"] });
        expect(ep.id).toMatch(/^ep_/);
        expect((await ops.get(ep.id)).id).toBe(ep.id);
        expect((await ops.get("ops-crud")).id).toBe(ep.id);
        expect((await ops.list()).data.map((e: any) => e.id)).toEqual([ep.id]);
        const update = { url: `${receiver.url}/ops-crud`, description: "renamed", [typeField]: ["endpoint.created", "endpoint.deleted"] };
        const updated = client.major === 1 ? await ops.update(ep.id, update) : await ops.upsert(ep.id, update);
        expect(updated).toMatchObject({ description: "renamed", [typeField]: ["endpoint.created", "endpoint.deleted"] });
        await ops.updateHeaders?.(ep.id, { headers: { "x-ops": "1" } });
        await ops.setHeaders?.(ep.id, { headers: { "x-ops": "1" } });
        expect((await ops.getHeaders(ep.id)).headers).toEqual({ "x-ops": "1" });
        const newSecret = whsec();
        await ops.rotateSecret(ep.id, { key: newSecret });
        secrets.set("/ops-crud", newSecret);
        // Secrets stay write-only, as for application endpoints.
        await expect(ops.getSecret(ep.id)).rejects.toMatchObject({ code: 403 });
        if (client.major === 2) {
          // svix 2.x upsert on an unknown uid creates it.
          const made = await ops.upsert("ops-upserted", { url: `${receiver.url}/ops-upserted` });
          expect(made.uid).toBe("ops-upserted");
          await ops.delete(made.id);
        }
        await ops.delete(ep.id);
        await expect(ops.get(ep.id)).rejects.toMatchObject({ code: 404 });
        // The hidden application never shows as an application.
        expect((await svix.application.list()).data.some((a: any) => a.uid === "hookwarden:operational")).toBe(false);
      });

      it("endpoint.created / updated / disabled / tls_verify_disabled / secret.rotated / deleted, signed, with Svix's payloads", async () => {
        await register("/ops-all");
        const appId = await createApp(t, "watched");
        await t.api("PATCH", `/api/v1/app/${appId}`, { uid: "watched-app" });
        const ep = await createEndpoint(t, appId, { url: `${receiver.url}/target`, uid: "target-ep" });
        await settle();
        const patched = await t.api("PATCH", `/api/v1/app/${appId}/endpoint/${ep.id}`, { description: "x" });
        expect(patched.status, patched.text).toBe(200);
        await t.api("PATCH", `/api/v1/app/${appId}/endpoint/${ep.id}`, { disabled: true });
        await t.api("PATCH", `/api/v1/app/${appId}/endpoint/${ep.id}`, { tlsVerify: false });
        const rotated = await t.api("POST", `/api/v1/app/${appId}/endpoint/${ep.id}/secret/rotate`, {});
        expect(rotated.status, rotated.text).toBe(200);
        expect((await t.api("DELETE", `/api/v1/app/${appId}/endpoint/${ep.id}`)).status).toBe(204);
        await settle();
        const events = eventsAt("/ops-all");
        const ref = { appId, appUid: "watched-app", endpointId: ep.id, endpointUid: "target-ep" };
        expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(["endpoint.created", "endpoint.updated", "endpoint.disabled", "endpoint.tls_verify_disabled", "secret.rotated", "endpoint.deleted"]));
        const by = (type: string) => events.filter((e) => e.type === type);
        expect(by("endpoint.created")).toEqual([{ type: "endpoint.created", timestamp: expect.any(String), data: ref }]);
        expect(by("endpoint.deleted")[0]!.data).toEqual(ref);
        expect(by("endpoint.disabled")[0]!.data).toMatchObject({ ...ref, trigger: "manual", failSince: null });
        expect(by("endpoint.tls_verify_disabled")[0]!.data).toEqual(ref);
        expect(by("secret.rotated")[0]!.data).toMatchObject({ ...ref, kind: "endpoint", graceUntil: expect.any(String) });
        // Never the secret itself.
        const rawRotated = receiver.received.filter((r) => r.url === "/ops-all" && r.body.includes("secret.rotated"));
        expect(rawRotated).toHaveLength(1);
        expect(rawRotated[0]!.body).not.toContain(rotated.body.key);
        for (const e of events) expect(Number.isNaN(Date.parse(e.timestamp))).toBe(false);
      });

      it("message.attempt.failing on the 4th failure, exhausted on the last; recovered after a failing one", async () => {
        await register("/ops-attempts", client.major === 1 ? { filterTypes: ["message.attempt.failing", "message.attempt.exhausted", "message.attempt.recovered"] } : { eventTypes: ["message.attempt.failing", "message.attempt.exhausted", "message.attempt.recovered"] });
        const appId = await createApp(t, "attempts");
        const dead = await createEndpoint(t, appId, { url: `${receiver.url}/dead`, eventTypes: ["dead.event"] });
        const flaky = await createEndpoint(t, appId, { url: `${receiver.url}/flaky`, eventTypes: ["flaky.event"] });
        answers.set("/dead", 500);
        answers.set("/flaky", 503);
        const m1 = await publish(t, appId, { eventType: "dead.event", eventId: "evt-dead" });
        const m2 = await publish(t, appId, { eventType: "flaky.event" });
        await settle();
        for (let i = 0; i < 3; i++) await settle(1_000);
        // Four failures each: one failing event per message.
        let events = eventsAt("/ops-attempts");
        expect(events.map((e) => [e.type, e.data.msgId]).sort()).toEqual([
          ["message.attempt.failing", m1.id],
          ["message.attempt.failing", m2.id],
        ].sort());
        const failing = events.find((e) => e.data.msgId === m1.id)!;
        expect(failing.data).toMatchObject({ appId, appUid: null, msgId: m1.id, msgEventId: "evt-dead", endpointId: dead.id, lastAttempt: { id: expect.stringMatching(/^atmpt_/), responseStatusCode: 500, timestamp: expect.any(String) } });
        answers.set("/flaky", 200);
        await settle(1_000);
        await settle(1_000);
        events = eventsAt("/ops-attempts");
        const recovered = events.filter((e) => e.type === "message.attempt.recovered");
        expect(recovered.map((e) => [e.data.msgId, e.data.endpointId, e.data.lastAttempt.responseStatusCode])).toEqual([[m2.id, flaky.id, 200]]);
        const exhausted = events.filter((e) => e.type === "message.attempt.exhausted");
        expect(exhausted.map((e) => [e.data.msgId, e.data.endpointId, e.data.lastAttempt.responseStatusCode])).toEqual([[m1.id, dead.id, 500]]);
        // The filter held: nothing but these three types arrived.
        expect(new Set(events.map((e) => e.type))).toEqual(new Set(["message.attempt.failing", "message.attempt.exhausted", "message.attempt.recovered"]));
      });

      it("a 410 Gone disables the endpoint: endpoint.disabled with trigger automatic and the reason", async () => {
        await register("/ops-gone", client.major === 1 ? { filterTypes: ["endpoint.disabled"] } : { eventTypes: ["endpoint.disabled"] });
        const appId = await createApp(t, "gone");
        const ep = await createEndpoint(t, appId, { url: `${receiver.url}/gone` });
        answers.set("/gone", 410);
        await publish(t, appId, {});
        await settle();
        const [event, ...rest] = eventsAt("/ops-gone");
        expect(rest).toEqual([]);
        expect(event!.data).toMatchObject({ appId, endpointId: ep.id, trigger: "automatic", reason: expect.stringMatching(/410 Gone/) });
      });

      it("ingress.verification_failing once per window when an input keeps refusing signatures", async () => {
        await register("/ops-ingress", client.major === 1 ? { filterTypes: ["ingress.verification_failing"] } : { eventTypes: ["ingress.verification_failing"] });
        const bucket = await t.api("POST", "/api/v1/bucket", { name: `b-${randomBytes(4).toString("hex")}` });
        const input = await t.api("POST", `/api/v1/bucket/${bucket.body.id}/input`, { name: "signed", verification: { type: "standard-webhooks", secret: whsec() } });
        expect(input.status, input.text).toBe(201);
        const forged = new Webhook(whsec());
        for (let i = 0; i < 5; i++) {
          const body = JSON.stringify({ i });
          // Well-formed, fresh, signed with the wrong key.
          const at = new Date(clock.now());
          const signature = forged.sign(`msg_${i}`, at, body);
          const headers = { "webhook-id": `msg_${i}`, "webhook-timestamp": String(Math.floor(at.getTime() / 1000)), "webhook-signature": signature, "content-type": "application/json" };
          const res = await fetch(input.body.url, { method: "POST", headers, body });
          expect(res.status).toBe(401);
        }
        await settle();
        const events = eventsAt("/ops-ingress");
        expect(events).toHaveLength(1);
        expect(events[0]!.data).toMatchObject({ bucketId: bucket.body.id, inputId: input.body.id, failures: 3, windowSeconds: 60 });
      });

      it("tenant isolation: one organisation's events never reach another's operational endpoints", async () => {
        const tokenB = await t.newOrgToken(`org-b-${client.major}-${randomBytes(3).toString("hex")}`);
        const svixB = client.make(tokenB, t.url);
        const opsB = client.major === 1 ? svixB.operationalWebhookEndpoint : svixB.operationalWebhook.endpoint;
        const epB = await register("/ops-org-b", {}, opsB);
        await register("/ops-org-a");
        // Org B cannot see or touch org A's operational endpoints, nor A's theirs.
        const epA = (await ops.list()).data.find((e: any) => e.url.endsWith("/ops-org-a"));
        await expect(opsB.get(epA.id)).rejects.toMatchObject({ code: 404 });
        await expect(opsB.delete(epA.id)).rejects.toMatchObject({ code: 404 });
        await expect(ops.get(epB.id)).rejects.toMatchObject({ code: 404 });
        expect((await opsB.list()).data.map((e: any) => e.id)).toEqual([epB.id]);

        const appA = await createApp(t, "a-only");
        await createEndpoint(t, appA, { url: `${receiver.url}/a-target` });
        const appB = await svixB.application.create({ name: "b-only" });
        await svixB.endpoint.create(appB.id, { url: `${receiver.url}/b-target` });
        await settle();
        expect(eventsAt("/ops-org-a").map((e) => e.data.appId)).toEqual([appA]);
        expect(eventsAt("/ops-org-b").map((e) => e.data.appId)).toEqual([appB.id]);
      });

      it("app-portal and application-scoped tokens cannot reach operational endpoints; the hidden application stays hidden", async () => {
        const ep = await register("/ops-guarded");
        const appId = await createApp(t, "portal-app");
        const access = await svix.authentication.appPortalAccess(appId, {});
        const portal = client.make(access.token, t.url);
        const portalOps = client.major === 1 ? portal.operationalWebhookEndpoint : portal.operationalWebhook.endpoint;
        await expect(portalOps.list()).rejects.toMatchObject({ code: 403 });
        await expect(portalOps.get(ep.id)).rejects.toMatchObject({ code: 403 });
        await expect(portalOps.create({ url: `${receiver.url}/portal-ops` })).rejects.toMatchObject({ code: 403 });
        const scoped = await t.api("POST", "/api/v1/auth/token", { name: "app-only", app: appId });
        expect(scoped.status, scoped.text).toBe(201);
        const scopedOps = client.make(scoped.body.token, t.url);
        await expect((client.major === 1 ? scopedOps.operationalWebhookEndpoint : scopedOps.operationalWebhook.endpoint).list()).rejects.toMatchObject({ code: 403 });

        const internal = await t.hw.ctx.store.db.selectFrom("applications").select("id").where("internal", "=", 1).executeTakeFirstOrThrow();
        expect((await t.api("GET", `/api/v1/app/${internal.id}`)).status).toBe(404);
        expect((await t.api("GET", `/api/v1/app/${internal.id}/endpoint`)).status).toBe(404);
        expect((await t.api("POST", `/api/v1/app/${internal.id}/msg`, { eventType: "endpoint.created", payload: { forged: true } })).status).toBe(404);
        expect((await t.api("DELETE", `/api/v1/app/${internal.id}`)).status).toBe(404);
        expect((await t.api("POST", "/api/v1/auth/token", { name: "into-ops", app: internal.id })).status).toBe(404);
        expect((await t.api("GET", "/api/v1/app?limit=250")).body.data.map((a: any) => a.id)).not.toContain(internal.id);
      });

      it("refuses hostile input with {code, detail} 4xx: SSRF, unknown types and fields, disagreeing aliases, bad secrets", async () => {
        const bad = async (body: unknown, code: string) => {
          const res = await t.api("POST", "/api/v1/operational-webhook/endpoint", body);
          expect(res.status, res.text).toBe(422);
          expect(res.body.code).toBe(code);
          expect(res.body.detail).toBeTruthy();
        };
        await bad({ url: "http://169.254.169.254/latest/meta-data" }, "E_SSRF_BLOCKED");
        await bad({ url: "http://10.0.0.1/ops" }, "E_SSRF_BLOCKED");
        await bad({ url: "http://[::ffff:10.0.0.1]/ops" }, "E_SSRF_BLOCKED");
        await bad({ url: "file:///etc/passwd" }, "E_VALIDATION");
        await bad({ url: `${receiver.url}/x`, filterTypes: ["message.created"] }, "E_VALIDATION");
        await bad({ url: `${receiver.url}/x`, eventTypes: ["endpoint.created"], filterTypes: ["endpoint.deleted"] }, "E_VALIDATION");
        await bad({ url: `${receiver.url}/x`, channels: ["a"] }, "E_VALIDATION");
        await bad({ url: `${receiver.url}/x`, secret: "whsec_short" }, "E_SECRET_FORMAT");
        await bad({ url: `${receiver.url}/x`, uid: "hookwarden:operational" }, "E_VALIDATION");
        await bad({}, "E_VALIDATION");
        const put = await t.api("PUT", "/api/v1/operational-webhook/endpoint/..%2F..%2Fapp", { url: `${receiver.url}/x` });
        expect(put.status).toBeGreaterThanOrEqual(400);
        expect(put.status).toBeLessThan(500);
        const rot = await t.api("POST", "/api/v1/operational-webhook/endpoint/ep_missing/secret/rotate", { key: 42 });
        expect(rot.status).toBe(422);
      });
    });
  }
}
