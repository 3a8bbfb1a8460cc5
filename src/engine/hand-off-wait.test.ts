import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DIALECTS } from "../../test/helpers/dialects.js";
import { insertEndpoint } from "../../test/helpers/sealed-rows.js";
import { insertApp, openTestStore, type TestStore } from "../../test/helpers/store.js";
import type { ApplicationRow } from "../applications/index.js";
import type { FakeClock } from "../clock/index.js";
import type { EndpointRow } from "../endpoints/index.js";
import { newId } from "../ids/index.js";
import type { JobRow } from "../queue/types.js";
import { DestinationKinds, type DestinationKind, type Loaded } from "./kind.js";
import { DeliveryWorker } from "./worker.js";

interface Held extends Loaded {
  readonly destination: EndpointRow;
  readonly item: string;
}

/**
 * The direct hand-off beyond a destination's concurrency: new jobs of an endpoint with all its
 * slots busy wait on the node, leased, and start as its attempts settle (no claim, no second
 * read), oldest first; never ahead of its jobs already in the queue, never on a lease too short.
 */
for (const dialect of DIALECTS) {
  describe(`new jobs wait on the node for a busy endpoint's slots (${dialect})`, () => {
    let s: TestStore;
    let app: ApplicationRow;
    let endpointId: string;
    let worker: DeliveryWorker;
    let row: EndpointRow;
    /** Items sent, in order; each attempt runs until `finish` settles it. */
    let sent: string[];
    let open: (() => void)[];
    /** What loading claimed jobs (not handed over) waits for. */
    let claimedLoad: Promise<void>;
    let releaseLoad: () => void;
    let loading: boolean;
    /** Sizes of the loads of claimed jobs (one per claim). */
    let claimedLoads: number[];
    const kind: DestinationKind<Held> = {
      job: "hold",
      table: "endpoints",
      health: "endpoint",
      load: async (jobs, known) => {
        if (!known) {
          loading = true;
          claimedLoads.push(jobs.length);
          await claimedLoad;
        }
        return new Map(jobs.map((j) => [j.id, { destination: row, item: (known?.get(j.item_id) as string | undefined) ?? `read ${j.item_id}` }]));
      },
      deliver: (job, { item }) => {
        sent.push(item);
        return new Promise((resolve) =>
          open.push(() =>
            resolve({
              result: { ok: true, statusCode: 200, headers: {}, body: "", durationMs: 1, errorCode: null, errorDetail: null },
              attempt: { id: newId("atmpt"), org_id: job.org_id, scope_id: job.scope_id, item_id: job.item_id, destination_id: job.destination_id, kind: job.kind, url: "hold:", status: 0, response_status_code: 200, response: "", duration_ms: 1, trigger_type: 0, error_code: null, tls_verify: 1, created_at: 0, request: null },
            }),
          ),
        );
      },
      attempted: () => {},
    };
    const settle = async (n: number) => {
      for (const fn of open.splice(0, n)) fn();
      // The settled attempts' promise callbacks, then the next attempts' loads.
      for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    };
    const newJobs = (n: number): JobRow[] =>
      Array.from({ length: n }, (_, i) => ({
        id: newId("job"),
        org_id: app.org_id,
        scope_id: app.id,
        item_id: `m${sent.length + open.length + i}_${newId("msg")}`,
        destination_id: endpointId,
        attempt: 0,
        trigger_type: 0,
        run_at: s.ctx.clock.now(),
        locked_by: null,
        created_at: s.ctx.clock.now(),
        kind: "hold",
      }));
    /** Settles every attempt, also those started meanwhile, until nothing is due, running or waiting. */
    const finishAll = async () => {
      let idle = false;
      const done = worker.runUntilIdle().then(() => (idle = true));
      while (!idle) await settle(open.length);
      await done;
    };
    /** What the publisher does: offer, insert (taken ones leased), start the taken. */
    const publish = async (jobs: JobRow[]) => {
      const taken = worker.handOff.take(jobs, s.ctx.clock.now());
      await s.store.db.insertInto("jobs").values(jobs).execute();
      worker.handOff.start(taken as JobRow[], new Map(jobs.map((j) => [j.item_id, `held ${j.item_id}`])));
      await settle(0);
      return taken.length;
    };
    beforeEach(async () => {
      s = await openTestStore(dialect, { endpointConcurrency: 2, deliveryConcurrency: 16, pollInterval: 3_600_000 });
      app = await insertApp(s.store.db);
      endpointId = await insertEndpoint(s.store.db, s.ctx.keyring, app, null);
      row = (await s.store.db.selectFrom("endpoints").selectAll().where("id", "=", endpointId).executeTakeFirstOrThrow()) as EndpointRow;
      sent = [];
      open = [];
      claimedLoad = Promise.resolve();
      releaseLoad = () => {};
      loading = false;
      claimedLoads = [];
      worker = new DeliveryWorker(s.ctx, new DestinationKinds().register(kind));
      await worker.start();
    });
    afterEach(async () => {
      releaseLoad();
      // Settles what is open, and what a released load starts meanwhile.
      for (let i = 0; i < 5; i++) await settle(open.length);
      await worker.stop(0);
      await s.drop();
    });

    it("takes jobs beyond the endpoint's slots and starts them in order as its attempts settle, with what the publisher held", async () => {
      const first = newJobs(2);
      expect(await publish(first)).toBe(2);
      expect(sent).toHaveLength(2);
      const next = newJobs(2);
      // Both slots busy: taken anyway, leased here, not started.
      expect(await publish(next)).toBe(2);
      expect(sent).toHaveLength(2);
      const leased = await s.store.db.selectFrom("jobs").select(["id", "locked_by"]).where("id", "in", next.map((j) => j.id)).execute();
      expect(leased.map((j) => j.locked_by)).toEqual([worker.id, worker.id]);
      await settle(1);
      expect(sent).toEqual([...first, next[0]!].map((j) => `held ${j.item_id}`));
      await settle(3);
      expect(sent).toEqual([...first, ...next].map((j) => `held ${j.item_id}`));
      await finishAll();
      expect(await s.store.db.selectFrom("jobs").select("id").execute()).toEqual([]);
      expect(await s.store.db.selectFrom("attempts").select("id").execute()).toHaveLength(4);
    });

    it("waits at most the endpoint's concurrency; after one job went to the queue the next ones follow it there, and the claim delivers them after", async () => {
      await publish(newJobs(2));
      const waiting = newJobs(2);
      expect(await publish(waiting)).toBe(2);
      const queued = newJobs(1);
      expect(await publish(queued)).toBe(0);
      // There is room to wait again once one waiting job started, but the queued one is older.
      await settle(1);
      const later = newJobs(1);
      expect(await publish(later)).toBe(0);
      for (let i = 0; i < 6; i++) await settle(1);
      await finishAll();
      const order = sent.slice(2).map((item) => item.replace(/^(held|read) /, ""));
      expect(order).toEqual([...waiting, ...queued, ...later].map((j) => j.item_id));
      // The queued ones were claimed and read again; the waiting ones were not.
      expect(sent.filter((i) => i.startsWith("read "))).toHaveLength(2);
    });

    it("sends a waiting job whose lease ran short back to the queue instead of starting it", async () => {
      await publish(newJobs(2));
      const [late] = newJobs(1);
      expect(await publish([late!])).toBe(1);
      (s.ctx.clock as FakeClock).advance(s.ctx.config.leaseDuration - s.ctx.config.requestTimeout);
      await settle(1);
      expect(sent.filter((i) => i === `held ${late!.item_id}`)).toEqual([]);
      await finishAll();
      // Back in the queue, claimed with a new lease, read again and sent once.
      expect(sent.filter((i) => i.endsWith(late!.item_id))).toEqual([`read ${late!.item_id}`]);
    });

    it("lets a burst wait when the node's slots outside the reserve are fewer than the endpoint's concurrency", async () => {
      // 8 slots on the node, one of them the reserve: one endpoint gets at most 7, never its 8.
      await worker.stop(0);
      worker = new DeliveryWorker({ ...s.ctx, config: { ...s.ctx.config, deliveryConcurrency: 8, endpointConcurrency: 8 } }, new DestinationKinds().register(kind));
      await worker.start();
      const jobs = newJobs(10);
      expect(await publish(jobs)).toBe(10);
      expect(sent).toEqual(jobs.slice(0, 7).map((j) => `held ${j.item_id}`));
      const more = newJobs(2);
      expect(await publish(more)).toBe(2);
      await finishAll();
      // All twelve started in order with what the publisher held: none went through a claim.
      expect(sent).toEqual([...jobs, ...more].map((j) => `held ${j.item_id}`));
    });

    it("lets a job wait while a claim's jobs hold the node's slots before they start, instead of queueing it and all after it", async () => {
      await worker.stop(0);
      worker = new DeliveryWorker({ ...s.ctx, config: { ...s.ctx.config, deliveryConcurrency: 8, endpointConcurrency: 8 } }, new DestinationKinds().register(kind));
      await worker.start();
      claimedLoad = new Promise((resolve) => (releaseLoad = resolve));
      // Seven jobs of another endpoint already queued: a claim leases them (the node's slots
      // outside the reserve) and loads them, slowly.
      const other = await insertEndpoint(s.store.db, s.ctx.keyring, app, null);
      const queued = newJobs(7).map((j) => ({ ...j, destination_id: other }));
      await s.store.db.insertInto("jobs").values(queued).execute();
      worker.wake();
      for (let i = 0; i < 100 && !loading; i++) await new Promise((r) => setTimeout(r, 10));
      expect(worker.inflight).toBe(7);
      // The reserve's slot takes one new job; the next ones wait for a slot rather than go to the
      // queue (and every later job of the endpoint behind them, until a claim has drained them).
      const fresh = newJobs(3);
      expect(await publish(fresh)).toBe(3);
      expect(sent).toEqual([`held ${fresh[0]!.item_id}`]);
      releaseLoad();
      await finishAll();
      expect([...sent].sort()).toEqual([...queued.map((j) => `read ${j.item_id}`), ...fresh.map((j) => `held ${j.item_id}`)].sort());
      expect(sent.filter((i) => i.startsWith("held "))).toEqual(fresh.map((j) => `held ${j.item_id}`));
    });

    it("claims a fast endpoint's queued jobs beyond its free slots, to wait here loaded: fewer, larger claims", async () => {
      await publish(newJobs(2));
      // Five of its jobs already queued (another node's, or a retry's).
      const queued = newJobs(5);
      await s.store.db.insertInto("jobs").values(queued).execute();
      // One slot frees: the claim takes the job for it and those that may wait for the next ones.
      await settle(1);
      for (let i = 0; i < 100 && claimedLoads.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      await finishAll();
      expect(claimedLoads).toEqual([3, 2]);
      expect(sent.slice(2)).toEqual(queued.map((j) => `read ${j.item_id}`));
      expect(await s.store.db.selectFrom("jobs").select("id").execute()).toEqual([]);
      expect(await s.store.db.selectFrom("attempts").select("id").execute()).toHaveLength(7);
    });

    it("lets a job wait behind jobs taken in the same batch, which start once committed", async () => {
      const jobs = newJobs(3);
      // Two slots, held by the first two until they start; the third waits for one of them.
      expect(await publish(jobs)).toBe(3);
      expect(sent).toEqual(jobs.slice(0, 2).map((j) => `held ${j.item_id}`));
      await settle(1);
      expect(sent).toEqual(jobs.map((j) => `held ${j.item_id}`));
      await finishAll();
      expect(sent.filter((i) => i.startsWith("read "))).toEqual([]);
    });

  });
}
