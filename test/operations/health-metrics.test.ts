import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIALECTS } from "../helpers/dialects.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

function metric(text: string, name: string, labels = ""): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name}${labels} `) || (labels === "" && l.startsWith(`${name} `)));
  return line === undefined ? undefined : Number(line.split(" ").at(-1));
}

for (const dialect of DIALECTS) {
  describe(`health, readiness and metrics (${dialect})`, () => {
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

    it("answers /health and /ready without a token", async () => {
      const health = await fetch(`${t.url}/health`);
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ status: "ok" });
      const ready = await fetch(`${t.url}/ready`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({ status: "ready", database: dialect });
    });

    it("counts deliveries by outcome, times attempts and reports the queue", async () => {
      receiver.respond = (r) => (r.url.includes("fail") ? { status: 500 } : undefined);
      const app = await t.svix.application.create({ name: "metrics" });
      await t.svix.endpoint.create(app.id, { url: `${receiver.url}/ok` });
      await t.svix.endpoint.create(app.id, { url: `${receiver.url}/fail` });
      for (let i = 0; i < 3; i++) await t.svix.message.create(app.id, { eventType: "m.x", payload: { i } });
      await receiver.waitFor(6);
      await t.hw.worker.runUntilIdle();

      const text = await (await fetch(`${t.url}/metrics`)).text();
      expect(metric(text, "hookwarden_messages_published_total")).toBe(3);
      expect(metric(text, "hookwarden_delivery_attempts_total", '{outcome="success",error_code=""}')).toBe(3);
      expect(metric(text, "hookwarden_delivery_attempts_total", '{outcome="retry",error_code="E_HTTP_STATUS"}')).toBe(3);
      expect(metric(text, "hookwarden_attempt_duration_seconds_count")).toBe(6);
      expect(metric(text, "hookwarden_publish_to_delivery_seconds_count")).toBe(6);
      // The three failed deliveries wait for their 5 s retry.
      expect(metric(text, "hookwarden_queue_depth", '{state="waiting"}')).toBe(3);
      expect(metric(text, "hookwarden_queue_depth", '{state="ready"}')).toBe(0);
      expect(metric(text, "hookwarden_queue_oldest_pending_age_seconds")).toBe(0);
      expect(text).toContain("hookwarden_process_resident_memory_bytes");
      expect(text).not.toContain(app.id);
      expect(text).not.toContain(receiver.url);
    });
  });
}
