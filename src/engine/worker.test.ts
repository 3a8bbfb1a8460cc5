import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DIALECTS } from "../../test/helpers/dialects.js";
import { insertEndpoint } from "../../test/helpers/sealed-rows.js";
import { insertApp, openTestStore, type TestStore } from "../../test/helpers/store.js";
import type { ApplicationRow } from "../applications/index.js";
import type { EndpointRow } from "../endpoints/index.js";
import { newId } from "../ids/index.js";
import type { AttemptInsert } from "../queue/complete-jobs.js";
import type { JobRow } from "../queue/types.js";
import type { Db } from "../store/index.js";
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

function keepingKind(failing: () => boolean, gate?: () => Promise<void>) {
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
      await gate?.();
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

/**
 * Claim batching (`--claim-batching`): under a backlog, freed slots are claimed for together, not
 * one claim per slot. Counted in claims (`Store.leaseWrite` runs only the claim), not in time:
 * the batch's longest wait is set beyond the test's length, except where the wait is the point.
 */
for (const dialect of DIALECTS) {
  describe(`claim batching (${dialect})`, () => {
    const SLOTS = 16;
    /** What one destination may fill: every slot but the reserve for fast ones (one in eight). */
    const FILLED = SLOTS - SLOTS / 8;
    let s: TestStore;
    let worker: DeliveryWorker | undefined;
    /** Attempts waiting for their answer. */
    const waiting: (() => void)[] = [];
    afterEach(async () => {
      for (const answer of waiting.splice(0)) answer();
      await worker?.stop(0);
      worker = undefined;
      await s?.drop();
    });

    async function setUp(claimBatching: boolean, claimWaitMs: number) {
      s = await openTestStore(dialect, { deliveryConcurrency: SLOTS, endpointConcurrency: SLOTS, claimBatching });
      const app = await insertApp(s.store.db);
      const endpointId = await insertEndpoint(s.store.db, s.ctx.keyring, app, null);
      const now = s.ctx.clock.now();
      await s.store.db
        .insertInto("jobs")
        .values(Array.from({ length: 60 }, (_, i) => ({ id: `job_${String(i).padStart(3, "0")}`, org_id: app.org_id, scope_id: app.id, item_id: `msg_${i}`, destination_id: endpointId, attempt: 0, trigger_type: 0, run_at: now, locked_by: null, created_at: now, kind: "keep" })))
        .execute();
      // Claims that leased jobs (one for the reserve alone may find nothing it may take).
      let claims = 0;
      const leaseWrite = s.store.leaseWrite.bind(s.store);
      s.store.leaseWrite = async <T,>(fn: (db: Db) => Promise<T>): Promise<T> => {
        const leased = await leaseWrite(fn);
        if (Array.isArray(leased) && leased.length > 0) claims++;
        return leased;
      };
      const { kind, rows } = keepingKind(() => false, () => new Promise<void>((resolve) => waiting.push(resolve)));
      rows.set(endpointId, (await s.store.db.selectFrom("endpoints").selectAll().where("id", "=", endpointId).executeTakeFirstOrThrow()) as EndpointRow);
      worker = new DeliveryWorker(s.ctx, new DestinationKinds().register(kind), { claimWaitMs });
      await worker.start();
      const settled = async () => {
        for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
      };
      const until = async (what: string, cond: () => boolean) => {
        for (let i = 0; i < 5_000 && !cond(); i++) await new Promise((r) => setTimeout(r, 2));
        if (!cond()) throw new Error(`never: ${what}`);
      };
      await until("the first claim fills the destination's slots", () => kind.sent.length === FILLED);
      await settled();
      /** Lets `n` attempts answer, one per loop turn. */
      const answer = async (n: number) => {
        for (let i = 0; i < n; i++) {
          waiting.shift()!();
          await settled();
        }
      };
      /** Waits until `n` attempts are in the database: a claim the answers caused would have run by then. */
      const recorded = async (n: number) => {
        const count = async () => (await s.store.db.selectFrom("attempts").select("id").execute()).length;
        for (let i = 0; i < 5_000 && (await count()) < n; i++) await new Promise((r) => setTimeout(r, 2));
        expect(await count()).toBe(n);
      };
      return { kind, claims: () => claims, answer, until, recorded };
    }

    it("claims once for a quarter of the slots freed one by one, where each freed slot claimed alone without it", async () => {
      const on = await setUp(true, 3_600_000);
      const before = on.claims();
      // Three of the four answers a claim waits for (16 slots / 4): nothing is claimed yet...
      await on.answer(3);
      await on.recorded(3);
      expect(on.claims()).toBe(before);
      expect(on.kind.sent).toHaveLength(FILLED);
      // ...the fourth starts one claim, which fills all four slots.
      await on.answer(1);
      await on.until("four more attempts", () => on.kind.sent.length === FILLED + 4);
      expect(on.claims()).toBe(before + 1);
      for (const answer of waiting.splice(0)) answer();
      await worker!.stop(0);
      worker = undefined;
      await s.drop();

      const off = await setUp(false, 3_600_000);
      const start = off.claims();
      for (let i = 1; i <= 4; i++) {
        await off.answer(1);
        await off.until(`attempt ${i} more`, () => off.kind.sent.length === FILLED + i);
      }
      expect(off.claims()).toBe(start + 4);
    });

    it("does not keep a freed slot waiting longer than the batch's wait", async () => {
      const on = await setUp(true, 1);
      const before = on.claims();
      await on.answer(1);
      await on.until("the freed slot is filled", () => on.kind.sent.length === FILLED + 1);
      expect(on.claims()).toBe(before + 1);
    });
  });
}
