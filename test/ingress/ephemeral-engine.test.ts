import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { DIALECTS } from "../helpers/dialects.js";
import { canary, databaseText, getRequest, listRequests, RawReceiver, send, setup, storedForms } from "../helpers/ingress.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { jobLifetimeMs } from "../../src/engine/retry-schedule.js";
import { newId } from "../../src/ids/index.js";

/**
 * Ephemeral buckets' forwards are jobs of the engine like every other (queue, retries, gates,
 * attempts), while the request itself stays in the memory of the process that received it.
 */
for (const dialect of DIALECTS) {
  describe(`ephemeral forwards through the engine (${dialect})`, () => {
    let t: TestServer;
    let receiver: RawReceiver;
    beforeEach(async () => {
      receiver = await new RawReceiver().start();
    });
    afterEach(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    const jobsOf = async (requestId: string) =>
      t.hw.ctx.store.db.selectFrom("jobs").select(["held_by", "run_at", "attempt"]).where("item_id", "=", requestId).execute();

    it("gives an ephemeral output the same circuit breaker: after the threshold the next request waits, parked, nothing of it stored", async () => {
      t = await startTestServer(dialect, { circuitBreakerThreshold: 2, circuitBreakerCooldown: "10m", retrySchedule: "1h" });
      receiver.respond = () => ({ status: 500 });
      const { bucket, input, outputs } = await setup(t, { bucket: { ephemeral: true }, outputs: [`${receiver.url}/failing`] });
      for (let i = 0; i < 2; i++) expect((await send(t.url, `/in/${input.id}`, { body: "{}" })).status).toBe(200);
      await vi.waitFor(() => expect(receiver.at("/failing")).toHaveLength(2));
      await vi.waitFor(async () => {
        const row = await t.hw.ctx.store.db.selectFrom("outputs").select(["consecutive_failures", "circuit_open_until"]).where("id", "=", outputs[0].id).executeTakeFirstOrThrow();
        expect(row.consecutive_failures).toBe(2);
        expect(row.circuit_open_until).toBeGreaterThan(Date.now());
      });
      const secret = canary("held");
      const third = await send(t.url, `/in/${input.id}`, { body: JSON.stringify({ secret }) });
      expect(third.status).toBe(200);
      const [latest] = await listRequests(t, bucket.id);
      // Its job waits past the cooldown (held by this process), instead of being sent or retried.
      await vi.waitFor(async () => {
        const [job] = await jobsOf(latest.id);
        expect(job?.held_by).toBe(t.hw.worker.id);
        expect(job!.run_at).toBeGreaterThan(Date.now() + 5 * 60_000);
        expect(job!.attempt).toBe(0);
      });
      expect(receiver.at("/failing")).toHaveLength(2);
      const text = await databaseText(t);
      for (const form of storedForms(secret)) expect(text).not.toContain(form);
    });

    it("gives up, visibly, a request whose holder stopped: E_EPHEMERAL_LOST, and still nothing of it stored", async () => {
      t = await startTestServer(dialect, { retrySchedule: "1h" });
      receiver.respond = () => ({ status: 503 });
      const { bucket, input, outputs } = await setup(t, { bucket: { ephemeral: true }, outputs: [`${receiver.url}/down`] });
      const secret = canary("lost");
      expect((await send(t.url, `/in/${input.id}`, { body: JSON.stringify({ secret }) })).status).toBe(200);
      const [req] = await listRequests(t, bucket.id);
      await vi.waitFor(async () => expect((await getRequest(t, bucket.id, req.id)).attempts).toHaveLength(1));
      // The retry is an hour away: the request is only in this process's memory when it stops.
      await t.restart();
      await vi.waitFor(async () => expect((await getRequest(t, bucket.id, req.id)).attempts).toHaveLength(2), { timeout: 15_000 });
      const attempts = (await getRequest(t, bucket.id, req.id)).attempts as any[];
      expect(attempts.map((a) => a.errorCode).sort()).toEqual(["E_EPHEMERAL_LOST", "E_HTTP_STATUS"]);
      expect(attempts.every((a) => a.endpointId === outputs[0].id)).toBe(true);
      expect(await jobsOf(req.id)).toEqual([]);
      expect(receiver.at("/down")).toHaveLength(1);
      const text = await databaseText(t);
      for (const form of storedForms(secret)) expect(text).not.toContain(form);
    });
    it("leaves another live process's held job alone, and gives it up once no job of it can be alive", async () => {
      t = await startTestServer(dialect, { retrySchedule: "1h" });
      const { bucket, input, outputs } = await setup(t, { bucket: { ephemeral: true }, outputs: [`${receiver.url}/elsewhere`] });
      // A request another node received and holds: its row (status, time, size) and its job.
      const db = t.hw.ctx.store.db;
      const now = Date.now();
      const id = newId("req");
      const org = (await db.selectFrom("buckets").select("org_id").where("id", "=", bucket.id).executeTakeFirstOrThrow()).org_id;
      await db.insertInto("inbound_requests").values({ id, org_id: org, bucket_id: bucket.id, input_id: input.id, status_code: 200, size: 2, data_enc: null, received_at: now, trace_context: null }).execute();
      await db
        .insertInto("jobs")
        .values({ id: newId("job"), org_id: org, scope_id: bucket.id, item_id: id, destination_id: outputs[0].id, attempt: 0, trigger_type: 0, run_at: now, locked_by: null, created_at: now, kind: "forward", held_by: "wrk_another_node" })
        .execute();
      await t.hw.worker.runUntilIdle();
      expect(await jobsOf(id)).toHaveLength(1);
      expect((await getRequest(t, bucket.id, id)).attempts).toEqual([]);
      // That node died long ago (its job is older than any job can live): this one gives it up.
      await db.updateTable("jobs").set({ created_at: now - jobLifetimeMs(t.hw.ctx.config) - 1_000 }).where("item_id", "=", id).execute();
      await t.hw.worker.runUntilIdle();
      expect(await jobsOf(id)).toEqual([]);
      const attempts = (await getRequest(t, bucket.id, id)).attempts as any[];
      expect(attempts.map((a) => [a.errorCode, a.endpointId])).toEqual([["E_EPHEMERAL_LOST", outputs[0].id]]);
      expect(receiver.at("/elsewhere")).toHaveLength(0);
    });
  });
}
