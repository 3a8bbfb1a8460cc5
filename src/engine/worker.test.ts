import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DIALECTS } from "../../test/helpers/dialects.js";
import { insertEndpoint } from "../../test/helpers/sealed-rows.js";
import { insertApp, openTestStore, type TestStore } from "../../test/helpers/store.js";
import type { ApplicationRow } from "../applications/index.js";
import type { EndpointRow } from "../endpoints/index.js";
import { newId } from "../ids/index.js";
import type { AttemptInsert } from "../queue/complete-jobs.js";
import type { JobRow } from "../queue/types.js";
import { DestinationKinds, type DestinationKind, type Loaded, type SendResult } from "./kind.js";
import { DeliveryWorker } from "./worker.js";

/**
 * The engine runs a kind it has never heard of, registered at start-up, with the same queue,
 * retries, attempt records and gates as the built-in ones: this kind "delivers" by keeping what it
 * was given, and its destinations' health lives in the endpoints table.
 */
interface Kept extends Loaded {
  readonly destination: EndpointRow;
  readonly item: string;
}

function keepingKind(failing: () => boolean) {
  const sent: string[] = [];
  const announced: { item: string; ok: boolean; willRetry: boolean }[] = [];
  const kind: DestinationKind<Kept> & { sent: string[]; announced: typeof announced } = {
    sent,
    announced,
    job: "keep",
    table: "endpoints",
    health: "endpoint",
    async load(jobs) {
      return new Map(jobs.map((j) => [j.id, { destination: rows.get(j.destination_id)!, item: `item of ${j.item_id}` }]));
    },
    async deliver(job, { destination, item }) {
      sent.push(item);
      const ok = !failing();
      const result: SendResult = { ok, statusCode: ok ? 200 : 500, headers: {}, body: "", durationMs: 1, errorCode: ok ? null : "E_HTTP_STATUS", errorDetail: null };
      const attempt: AttemptInsert = {
        id: newId("atmpt"),
        org_id: job.org_id,
        scope_id: job.scope_id,
        item_id: job.item_id,
        destination_id: destination.id,
        kind: job.kind,
        url: "keep:",
        status: ok ? 0 : 2,
        response_status_code: result.statusCode,
        response: "",
        duration_ms: 1,
        trigger_type: job.trigger_type,
        error_code: result.errorCode,
        tls_verify: 1,
        created_at: 0,
        request: null,
      };
      return { result, attempt };
    },
    attempted(_job, { item }, { result }, willRetry) {
      announced.push({ item, ok: result.ok, willRetry });
    },
  };
  const rows = new Map<string, EndpointRow>();
  return { kind, rows };
}

for (const dialect of DIALECTS) {
  describe(`the engine runs any registered destination kind (${dialect})`, () => {
    let s: TestStore;
    let app: ApplicationRow;
    let endpointId: string;
    let worker: DeliveryWorker | undefined;
    beforeEach(async () => {
      s = await openTestStore(dialect, { circuitBreakerThreshold: 3, retrySchedule: "0s,1h,1h,1h,1h" });
      app = await insertApp(s.store.db);
      endpointId = await insertEndpoint(s.store.db, s.ctx.keyring, app, null);
    });
    afterEach(async () => {
      await worker?.stop(0);
      worker = undefined;
      await s?.drop();
    });

    const queue = async (kind: string, n: number): Promise<JobRow[]> => {
      const now = s.ctx.clock.now();
      const jobs: JobRow[] = Array.from({ length: n }, () => ({
        id: newId("job"),
        org_id: app.org_id,
        scope_id: app.id,
        item_id: newId("msg"),
        destination_id: endpointId,
        attempt: 0,
        trigger_type: 0,
        run_at: now,
        locked_by: null,
        created_at: now,
        kind,
      }));
      await s.store.db.insertInto("jobs").values(jobs).execute();
      return jobs;
    };
    const start = async (kind: DestinationKind<Kept>, rows: Map<string, EndpointRow>) => {
      const refresh = async () => rows.set(endpointId, (await s.store.db.selectFrom("endpoints").selectAll().where("id", "=", endpointId).executeTakeFirstOrThrow()) as EndpointRow);
      await refresh();
      worker = new DeliveryWorker(s.ctx, new DestinationKinds().register(kind));
      await worker.start();
      return refresh;
    };
    const jobsLeft = async () => (await s.store.db.selectFrom("jobs").select(["id", "run_at", "attempt"]).execute()).length;
    const attempts = async () => s.store.db.selectFrom("attempts").select(["item_id", "status", "destination_id"]).where("destination_id", "=", endpointId).execute();

    it("delivers its jobs through it: one attempt each, recorded, announced, the jobs done", async () => {
      const { kind, rows } = keepingKind(() => false);
      const jobs = await queue("keep", 3);
      await start(kind, rows);
      await worker!.runUntilIdle();
      expect(kind.sent.sort()).toEqual(jobs.map((j) => `item of ${j.item_id}`).sort());
      expect(kind.announced.every((a) => a.ok && !a.willRetry)).toBe(true);
      expect((await attempts()).map((a) => a.item_id).sort()).toEqual(jobs.map((j) => j.item_id).sort());
      expect(await jobsLeft()).toBe(0);
    });

    it("gives its destinations the same circuit breaker: after the threshold of failures nothing more is sent until the cooldown", async () => {
      const { kind, rows } = keepingKind(() => true);
      await queue("keep", 3);
      const refresh = await start(kind, rows);
      await worker!.runUntilIdle();
      expect(kind.sent).toHaveLength(3);
      expect(kind.announced.every((a) => !a.ok && a.willRetry)).toBe(true);
      const ep = await refresh();
      expect(ep.get(endpointId)!.consecutive_failures).toBe(3);
      expect(ep.get(endpointId)!.circuit_open_until).toBeGreaterThan(s.ctx.clock.now());
      // New jobs while the circuit is open wait in the queue; none reaches the kind.
      await queue("keep", 2);
      await worker!.runUntilIdle();
      expect(kind.sent).toHaveLength(3);
      expect(await jobsLeft()).toBe(5);
    });

    it("gives its destinations the same rate limit: a limit of 2/s sends two now and keeps the rest queued", async () => {
      const { kind, rows } = keepingKind(() => false);
      await s.store.db.updateTable("endpoints").set({ rate_limit: 2 }).where("id", "=", endpointId).execute();
      await queue("keep", 5);
      await start(kind, rows);
      await worker!.runUntilIdle();
      expect(kind.sent).toHaveLength(2);
      expect(await jobsLeft()).toBe(3);
    });

    it("keeps the jobs of a kind nobody registered: not lost, not attempted, due again later", async () => {
      const { kind, rows } = keepingKind(() => false);
      await queue("nobody", 2);
      await start(kind, rows);
      await worker!.runUntilIdle();
      expect(kind.sent).toHaveLength(0);
      const left = await s.store.db.selectFrom("jobs").select(["run_at", "attempt", "locked_by"]).execute();
      expect(left).toHaveLength(2);
      for (const j of left) expect(j).toEqual({ run_at: s.ctx.clock.now() + 5_000, attempt: 0, locked_by: null });
      expect(await attempts()).toEqual([]);
    });
  });
}
