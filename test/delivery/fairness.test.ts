import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/clock/index.js";
import { DIALECTS } from "../helpers/dialects.js";
import { createApp, createEndpoint, publish } from "../helpers/delivery.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer } from "../helpers/server.js";
import { openTestStore } from "../helpers/store.js";
import { claimJobs } from "../../src/queue/claim-jobs.js";

/**
 * Issue 10's three bad populations, scaled down: slow or failing destinations must not starve a
 * healthy one. Slots: 16 per node, 4 per destination, so four bad destinations could hold them all
 * (as 4 × 32 held all 128 by default). Assertions are on counts and order, never on wall time.
 */
const TOTAL = 16;
const PER_DESTINATION = 4;
/** One slot in eight is kept for fast destinations. */
const RESERVE = TOTAL / 8;

/** Job `i` of one tenant, queued for `endpointId` and due at `runAt`. */
function queuedJob(i: number, endpointId: string, runAt: number) {
  return {
    id: `job_${String(i).padStart(5, "0")}`,
    org_id: "org_same",
    scope_id: "app_same",
    item_id: `msg_${i}`,
    destination_id: endpointId,
    attempt: 0,
    trigger_type: 0,
    run_at: runAt,
    locked_by: null,
    created_at: runAt,
    kind: "outbound",
  };
}

async function waitUntil(what: string, cond: () => boolean, timeoutMs = 90_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

for (const dialect of DIALECTS) {
  describe(`fair sharing of delivery slots (${dialect})`, () => {
    let receiver: Receiver;
    const count = (prefix: string) => receiver.received.filter((r) => r.url.startsWith(prefix)).length;

    beforeAll(async () => {
      receiver = await new Receiver().start();
      receiver.respond = (req) => {
        if (req.url.startsWith("/never")) return { delayMs: 120_000 };
        if (req.url.startsWith("/slow")) return { delayMs: 5_000 };
        if (req.url.startsWith("/fail")) return { status: 500, body: "down" };
        return undefined;
      };
    });
    afterAll(async () => {
      await receiver?.stop();
    });

    for (const bad of ["never", "slow"] as const) {
      const label = bad === "never" ? "4 endpoints that never answer" : "4 endpoints that answer 200 after 5 s";
      it(`delivers to a healthy endpoint at once while ${label} hold every slot they may`, async () => {
        const t = await startTestServer(dialect, { deliveryConcurrency: TOTAL, endpointConcurrency: PER_DESTINATION, requestTimeout: 30_000, circuitBreakerThreshold: 1_000 });
        try {
          const badApp = await createApp(t, `bad-${bad}`);
          for (let i = 0; i < 4; i++) await createEndpoint(t, badApp, { url: `${receiver.url}/${bad}-${i}` });
          const BACKLOG = 30;
          for (let i = 0; i < BACKLOG; i++) await publish(t, badApp, { payload: { i } });
          // The bad destinations fill every slot but the reserve...
          await waitUntil("the bad endpoints to fill their slots", () => count(`/${bad}-`) >= TOTAL - RESERVE);

          const goodApp = await createApp(t, `good-${bad}`);
          await createEndpoint(t, goodApp, { url: `${receiver.url}/healthy-${bad}` });
          for (let i = 0; i < 10; i++) {
            await publish(t, goodApp, { payload: { good: i } });
            await waitUntil(`healthy delivery ${i}`, () => count(`/healthy-${bad}`) >= i + 1);
            // ...and each healthy message goes out while their backlog still waits: before the
            // fix it waited for their whole backlog (or for 30 s timeouts).
            expect(count(`/${bad}-`)).toBeLessThan(4 * BACKLOG);
          }
          // Never more than the node's slots minus the reserve to the bad ones at once.
          if (bad === "never") expect(count("/never-")).toBe(TOTAL - RESERVE);
        } finally {
          await t.stop();
        }
      }, 180_000);
    }

    it("gives the one free slot to a destination with nothing in flight before an older backlog of one that holds slots", async () => {
      const t = await openTestStore(dialect);
      try {
        const now = 1_700_000_000_000;
        let n = 0;
        const job = (endpointId: string, runAt: number) => queuedJob(n++, endpointId, runAt);
        // Same tenant: a slow destination's backlog, due for seconds, and one healthy job due now.
        const rows = [...Array.from({ length: 20 }, (_, i) => job("ep_slow", now - 8_000 + i)), job("ep_healthy", now)];
        await t.store.db.insertInto("jobs").values(rows).execute();
        const shares = { fresh: PER_DESTINATION, room: new Map([["ep_slow", 1]]), busy: new Map([["ep_slow", PER_DESTINATION - 1]]) };
        // Before: the slow destination's oldest job won every such claim (order by run_at).
        const first = await claimJobs(t.store, "wrk_a", now, now + 30_000, 1, shares);
        expect(first.map((j) => j.destination_id)).toEqual(["ep_healthy"]);
        // With no one else due, the slow destination gets the slot.
        const second = await claimJobs(t.store, "wrk_a", now, now + 30_000, 1, shares);
        expect(second.map((j) => j.destination_id)).toEqual(["ep_slow"]);
      } finally {
        await t.drop();
      }
    });

    it("finds a job queued behind more than a few thousand of a busy destination's in the next deep claim, without reading them all in every claim", async () => {
      const t = await openTestStore(dialect);
      try {
        const now = 1_700_000_000_000;
        // A busy destination (at its limit on this node: no room) with 2,500 due jobs, then one job
        // of a destination with nothing in flight, due after all of them.
        const BUSY = 2_500;
        for (let i = 0; i < BUSY; i += 500) await t.store.db.insertInto("jobs").values(Array.from({ length: 500 }, (_, k) => queuedJob(i + k, "ep_busy", now - 60_000 + i + k))).execute();
        await t.store.db.insertInto("jobs").values(queuedJob(BUSY, "ep_waiting", now - 1)).execute();
        const shares = { fresh: PER_DESTINATION, room: new Map([["ep_busy", 0]]), busy: new Map([["ep_busy", PER_DESTINATION]]) };
        // An ordinary claim looks among the oldest due jobs only, all the busy destination's...
        expect(await claimJobs(t.store, "wrk_a", now, now + 30_000, 4, shares)).toEqual([]);
        // ...a deep claim (the worker makes one every 10 s) sees them all.
        const deep = await claimJobs(t.store, "wrk_a", now, now + 30_000, 4, shares, undefined, undefined, true);
        expect(deep.map((j) => j.destination_id)).toEqual(["ep_waiting"]);
        // With nothing listed, the oldest due jobs are the ones wanted either way.
        const any = await claimJobs(t.store, "wrk_a", now, now + 30_000, 4);
        expect(any.map((j) => j.id).sort()).toEqual(["job_00000", "job_00001", "job_00002", "job_00003"]);
      } finally {
        await t.drop();
      }
    });

    it("parks the backlog of 20 open circuits: after the cooldown only one probe each is due, and another tenant's job goes first", async () => {
      const clock = new FakeClock(Date.now());
      const COOLDOWN = 60_000;
      const t = await startTestServer(
        dialect,
        // No poll during the test: every claim below is one the test caused.
        { deliveryConcurrency: 4, endpointConcurrency: 4, circuitBreakerThreshold: 2, circuitBreakerCooldown: COOLDOWN, retrySchedule: [36_000_000], pollInterval: 3_600_000 },
        { clock, random: () => 0.5 },
      );
      try {
        const failing = await createApp(t, "failing");
        for (let i = 0; i < 20; i++) await createEndpoint(t, failing, { url: `${receiver.url}/fail-${i}` });
        for (let i = 0; i < 2; i++) {
          await publish(t, failing, { payload: { opening: i } });
          await t.hw.worker.runUntilIdle();
        }
        expect(count("/fail-")).toBe(40);
        // The circuits are open: these wait, and most of them are parked.
        for (let i = 0; i < 10; i++) await publish(t, failing, { payload: { backlog: i } });
        await t.hw.worker.runUntilIdle();
        expect(count("/fail-")).toBe(40);

        // Another tenant's healthy endpoint, with one message delivered already.
        const other = await t.newOrgToken("healthy-tenant");
        const auth = { authorization: `Bearer ${other}` };
        const app = await t.api("POST", "/api/v1/app", { name: "healthy" }, auth);
        const ep = await t.api("POST", `/api/v1/app/${app.body.id}/endpoint`, { url: `${receiver.url}/ok` }, auth);
        const msg = await t.api("POST", `/api/v1/app/${app.body.id}/msg`, { eventType: "x", payload: {} }, auth);
        expect(msg.status).toBe(202);
        await t.hw.worker.runUntilIdle();
        expect(count("/ok")).toBe(1);

        // The cooldown ends (and its jitter); the healthy job is queued at that same moment.
        clock.advance(COOLDOWN + 1_500);
        const before = receiver.received.length;
        const resend = await t.api("POST", `/api/v1/app/${app.body.id}/msg/${msg.body.id}/endpoint/${ep.body.id}/resend`, undefined, auth);
        expect(resend.status).toBe(202);
        await t.hw.worker.runUntilIdle();
        const after = receiver.received.slice(before);
        // One probe per open circuit, nothing else of the 200 held-back deliveries...
        expect(after.filter((r) => r.url.startsWith("/fail-"))).toHaveLength(20);
        // ...and the healthy delivery in the first claim (4 slots), not behind the backlog
        // (before the fix: position 21, after the 200 due jobs were claimed and re-deferred).
        const position = after.findIndex((r) => r.url === "/ok");
        expect(position).toBeGreaterThanOrEqual(0);
        expect(position).toBeLessThan(8);
      } finally {
        await t.stop();
      }
    }, 180_000);
  });
}
