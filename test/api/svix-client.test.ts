import { ApiException } from "svix";
import { Webhook as StandardWebhook } from "standardwebhooks";
import { Webhook as SvixWebhook } from "svix";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIALECTS } from "../helpers/dialects.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

for (const dialect of DIALECTS) {
  describe(`the official svix client drives the API (${dialect})`, () => {
    let t: TestServer;
    let receiver: Receiver;

    beforeAll(async () => {
      t = await startTestServer(dialect);
      receiver = await new Receiver().start();
    });
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    it("creates, lists, gets, updates, patches and deletes applications", async () => {
      const created = await t.svix.application.create({ name: "Acme", uid: "acme", metadata: { plan: "pro" } });
      expect(created.id).toMatch(/^app_/);
      expect(created.uid).toBe("acme");
      expect(created.createdAt).toBeInstanceOf(Date);
      expect(Number.isNaN(created.createdAt.getTime())).toBe(false);

      const again = await t.svix.application.getOrCreate({ name: "Acme", uid: "acme" });
      expect(again.id).toBe(created.id);
      await expect(t.svix.application.create({ name: "Dup", uid: "acme" })).rejects.toMatchObject({ code: 409 });

      expect((await t.svix.application.get("acme")).id).toBe(created.id);
      expect((await t.svix.application.get(created.id)).name).toBe("Acme");

      const updated = await t.svix.application.update("acme", { name: "Acme Inc", uid: "acme" });
      expect(updated.name).toBe("Acme Inc");
      const patched = await t.svix.application.patch("acme", { metadata: { plan: "enterprise" } });
      expect(patched.metadata).toEqual({ plan: "enterprise" });
      expect(patched.name).toBe("Acme Inc");

      for (let i = 0; i < 3; i++) await t.svix.application.create({ name: `page-${i}` });
      const first = await t.svix.application.list({ limit: 2 });
      expect(first.data).toHaveLength(2);
      expect(first.done).toBe(false);
      const rest = await t.svix.application.list({ limit: 10, iterator: first.iterator! });
      expect(rest.done).toBe(true);
      const all = [...first.data, ...rest.data].map((a) => a.id);
      expect(new Set(all).size).toBe(4);

      const gone = await t.svix.application.create({ name: "to delete" });
      await t.svix.application.delete(gone.id);
      await expect(t.svix.application.get(gone.id)).rejects.toMatchObject({ code: 404 });
    });

    it("manages event types", async () => {
      const et = await t.svix.eventType.create({ name: "invoice.paid", description: "An invoice was paid" });
      expect(et.name).toBe("invoice.paid");
      expect((await t.svix.eventType.get("invoice.paid")).description).toBe("An invoice was paid");
      await t.svix.eventType.update("invoice.paid", { description: "Paid" });
      await t.svix.eventType.patch("invoice.paid", { deprecated: true });
      const got = await t.svix.eventType.get("invoice.paid");
      expect(got.description).toBe("Paid");
      expect(got.deprecated).toBe(true);
      await t.svix.eventType.create({ name: "invoice.voided", description: "Voided" });
      const list = await t.svix.eventType.list();
      expect(list.data.map((e) => e.name)).toEqual(["invoice.paid", "invoice.voided"]);
      await t.svix.eventType.delete("invoice.voided");
      expect((await t.svix.eventType.list()).data.map((e) => e.name)).toEqual(["invoice.paid"]);
      expect((await t.svix.eventType.list({ includeArchived: true })).data).toHaveLength(2);
    });

    it("manages endpoints, their headers and their secret, and delivers verifiable messages", async () => {
      const app = await t.svix.application.create({ name: "Deliveries", uid: "deliveries" });
      const ep = await t.svix.endpoint.create(app.id, {
        url: `${receiver.url}/hook`,
        description: "primary",
        filterTypes: ["user.created"],
        channels: ["eu"],
        rateLimit: 1000,
        metadata: { team: "core" },
        uid: "primary",
        secret: SECRET,
      });
      expect(ep.id).toMatch(/^ep_/);
      expect(ep).toMatchObject({ uid: "primary", filterTypes: ["user.created"], channels: ["eu"], rateLimit: 1000, disabled: false });

      const listed = await t.svix.endpoint.list(app.id);
      expect(listed.data.map((e) => e.id)).toEqual([ep.id]);
      expect((await t.svix.endpoint.get(app.id, "primary")).description).toBe("primary");
      const updated = await t.svix.endpoint.update(app.id, ep.id, { url: `${receiver.url}/hook`, description: "main", filterTypes: ["user.created"], channels: ["eu"] });
      expect(updated.description).toBe("main");
      const patched = await t.svix.endpoint.patch(app.id, ep.id, { metadata: { team: "platform" } });
      expect(patched.metadata).toEqual({ team: "platform" });

      await t.svix.endpoint.updateHeaders(app.id, ep.id, { headers: { "X-Tenant": "acme", Authorization: "Bearer downstream-token" } });
      await t.svix.endpoint.patchHeaders(app.id, ep.id, { headers: { "X-Extra": "1" } });
      const headers = await t.svix.endpoint.getHeaders(app.id, ep.id);
      expect(headers.headers).toEqual({ "x-tenant": "acme", "x-extra": "1" });
      expect(headers.sensitive).toEqual(["authorization"]);

      // The secret is write-only by default.
      const err = await t.svix.endpoint.getSecret(app.id, ep.id).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ApiException);
      expect((err as ApiException<{ code: string }>).code).toBe(403);
      expect((err as ApiException<{ code: string }>).body.code).toBe("E_SECRET_WRITE_ONLY");

      // Filtered out: wrong type, and right type without the endpoint's channel.
      await t.svix.message.create(app.id, { eventType: "user.deleted", payload: { id: 1 }, channels: ["eu"] });
      await t.svix.message.create(app.id, { eventType: "user.created", payload: { id: 2 } });
      const msg = await t.svix.message.create(app.id, { eventType: "user.created", payload: { id: 3, name: "Ada" }, channels: ["eu"], eventId: "evt-3" });
      expect(msg.id).toMatch(/^msg_/);
      expect(msg.eventId).toBe("evt-3");

      await receiver.waitFor(1);
      await t.hw.worker.runUntilIdle();
      expect(receiver.received).toHaveLength(1);
      const delivered = receiver.received[0]!;
      expect(delivered.headers["webhook-id"]).toBe(msg.id);
      expect(delivered.headers["x-tenant"]).toBe("acme");
      expect(delivered.headers["authorization"]).toBe("Bearer downstream-token");
      const headerMap = delivered.headers as Record<string, string>;
      expect(new StandardWebhook(SECRET).verify(delivered.body, headerMap)).toEqual({ id: 3, name: "Ada" });
      expect(new SvixWebhook(SECRET).verify(delivered.body, headerMap)).toEqual({ id: 3, name: "Ada" });

      const got = await t.svix.message.get(app.id, msg.id);
      expect(got.payload).toEqual({ id: 3, name: "Ada" });
      expect((await t.svix.message.get(app.id, "evt-3")).id).toBe(msg.id);
      const msgs = await t.svix.message.list(app.id);
      expect(msgs.data.map((m) => m.id)[0]).toBe(msg.id);
      expect(msgs.data).toHaveLength(3);

      const byMsg = await t.svix.messageAttempt.listByMsg(app.id, msg.id);
      expect(byMsg.data).toHaveLength(1);
      expect(byMsg.data[0]).toMatchObject({ msgId: msg.id, endpointId: ep.id, status: 0, responseStatusCode: 200, response: "ok", triggerType: 0 });
      expect(byMsg.data[0]!.id).toMatch(/^atmpt_/);
      const byEp = await t.svix.messageAttempt.listByEndpoint(app.id, ep.id);
      expect(byEp.data.map((a) => a.id)).toEqual([byMsg.data[0]!.id]);

      await t.svix.messageAttempt.resend(app.id, msg.id, ep.id);
      await receiver.waitFor(2);
      await t.hw.worker.runUntilIdle();
      const after = await t.svix.messageAttempt.listByMsg(app.id, msg.id);
      expect(after.data).toHaveLength(2);
      expect(after.data[0]!.triggerType).toBe(1);

      // Rotation: the new secret signs, and the old keeps signing during the overlap.
      const NEW = "whsec_dGhpc2lzYW5vdGhlcmhpZ2hlbnRyb3B5a2V5Pz8hIQ==";
      await expect(t.svix.endpoint.rotateSecret(app.id, ep.id, { key: NEW })).resolves.toBeUndefined();
      await t.svix.message.create(app.id, { eventType: "user.created", payload: { id: 4 }, channels: ["eu"] });
      await receiver.waitFor(3);
      const rotated = receiver.received[2]!;
      const sigs = String(rotated.headers["webhook-signature"]).split(" ");
      expect(sigs).toHaveLength(2);
      expect(new StandardWebhook(NEW).verify(rotated.body, rotated.headers as Record<string, string>)).toEqual({ id: 4 });
      expect(new StandardWebhook(SECRET).verify(rotated.body, rotated.headers as Record<string, string>)).toEqual({ id: 4 });

      await t.svix.endpoint.delete(app.id, ep.id);
      await expect(t.svix.endpoint.get(app.id, ep.id)).rejects.toMatchObject({ code: 404 });
    });
  });
}
