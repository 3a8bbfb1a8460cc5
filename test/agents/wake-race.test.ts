import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/clock/index.js";
import { newId } from "../../src/ids/index.js";
import type { Store } from "../../src/store/index.js";
import { agentServer, transportConfig, TRANSPORTS, agentBucket, agentUrl, createAgentToken, postWebhook, rawAgent, until, type RawAgent } from "../helpers/agents.js";
import { DIALECTS } from "../helpers/dialects.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * Microtask depths, after a claim that found nothing hands its result back, at which a job
 * becomes due and `wake()` is called. Covers the whole of the claim loop's way out and beyond:
 * before the fix the wake-up was lost at depths 41-42 on SQLite and 10-11 on PostgreSQL.
 */
const DEPTHS = 80;
/** The poll would rescue a lost wake-up only after this long: the test never gets there. */
const POLL_MS = 3_600_000;

/**
 * Calls `onClaim(rows)` when the worker's claim query returns, from inside the database layer
 * (a Kysely plugin on the connection the claim runs on), before the worker sees the result.
 */
function observeClaims(store: Store, onClaim: (rows: number) => void): void {
  const claims = new Set<object>();
  const isClaim = (node: RootOperationNode) => node.kind === "RawNode" && node.sqlFragments.join("").includes("update jobs set locked_by");
  const plugin: KyselyPlugin = {
    transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
      if (isClaim(args.node)) claims.add(args.queryId);
      return args.node;
    },
    async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
      if (claims.delete(args.queryId)) onClaim(args.result.rows.length);
      return args.result;
    },
  };
  // The claim runs through `store.leaseWrite` (on the pool on PostgreSQL, in a relaxed transaction
  // on SQLite); the hand-off's and the recorder's writes through `store.db` and `store.relaxed`.
  const mutable = store as { db: Store["db"]; relaxed: Store["relaxed"]; leaseWrite: Store["leaseWrite"] };
  const relaxed = store.relaxed.bind(store);
  const leaseWrite = store.leaseWrite.bind(store);
  mutable.db = store.db.withPlugin(plugin);
  mutable.relaxed = (fn) => relaxed((trx) => fn(trx.withPlugin(plugin)));
  mutable.leaseWrite = (fn) => leaseWrite((db) => fn(db.withPlugin(plugin)));
}

for (const transport of TRANSPORTS) for (const dialect of DIALECTS) {
  describe(`a job due when the worker is woken is sent without waiting for the poll (${dialect}, ${transport})`, () => {
    let t: TestServer;
    let agent: RawAgent;
    const clock = new FakeClock(Date.now());
    let requests = 0;
    /** Armed with a depth: the next empty claim makes a job due and wakes the worker that deep. */
    let armed: number | undefined;

    beforeAll(async () => {
      t = await startTestServer(dialect, { ...transportConfig(transport), pollInterval: POLL_MS }, { clock });
      observeClaims(t.hw.ctx.store, (rows) => {
        if (armed === undefined || rows > 0) return;
        let depth = armed;
        armed = undefined;
        // What every wake source does (an intake commit, an agent's ack, a deferred job's timer):
        // a job is due, then `wake()`. Here it lands `depth` microtasks after the empty claim.
        const step = () => {
          if (depth-- > 0) return queueMicrotask(step);
          clock.advance(1_000);
          t.hw.worker.wake();
        };
        step();
      });
    }, 60_000);
    afterAll(async () => {
      agent?.ws.terminate();
      await t?.stop();
    });

    it(`at every interleaving with the claim loop's last round (depths 0-${DEPTHS})`, async () => {
      const relay = await agentBucket(t.api, "race");
      const token = await createAgentToken(t.api, { name: "race", buckets: ["race"], mode: "forward" });
      agent = await rawAgent(agentUrl(agentServer(t.hw, transport), "race"), token.key, token.secret);
      agent.ws.on("message", (data) => {
        const frame = JSON.parse(String(data)) as { type: string; id: string };
        if (frame.type !== "request") return;
        requests++;
        agent.ws.send(JSON.stringify({ type: "ack", id: frame.id, ok: true, status: 200 }));
      });
      expect((await postWebhook(relay.input.url, '{"race":0}')).status).toBe(200);
      await until("the first relay", () => requests === 1, 30_000);
      const requestId = (await t.api("GET", `/api/v1/bucket/${relay.bucket.id}/request?limit=1`)).body.data[0].id as string;
      const { db } = t.hw.ctx.store;
      const bucket = await db.selectFrom("buckets").select(["org_id"]).where("id", "=", relay.bucket.id).executeTakeFirstOrThrow();

      const late: number[] = [];
      for (let depth = 0; depth <= DEPTHS; depth++) {
        await t.hw.worker.runUntilIdle();
        const before = requests;
        // A forward job for the agent output, due one (fake) second from now: the next claim misses it.
        const now = clock.now();
        await db
          .insertInto("jobs")
          .values({ id: newId("job"), org_id: bucket.org_id, scope_id: relay.bucket.id, item_id: requestId, destination_id: relay.output.id, attempt: 0, trigger_type: 0, run_at: now + 1_000, locked_by: null, created_at: now, kind: "forward" })
          .execute();
        armed = depth;
        t.hw.worker.wake();
        // Real time, generous: sent at once it takes milliseconds; a lost wake-up waits for the
        // poll, an hour away on the fake clock's scale and never reached.
        try {
          await until(`the relay woken at depth ${depth}`, () => requests > before, 10_000, 5);
        } catch {
          late.push(depth);
          // Rescue it, so the next depth starts clean.
          t.hw.worker.wake();
          await until(`the relay at depth ${depth} after a second wake`, () => requests > before, 30_000, 5);
        }
        expect(armed, `the claim at depth ${depth} found the job already due`).toBeUndefined();
      }
      expect(late, "depths whose wake-up was lost (the job waited for the poll)").toEqual([]);
    }, 600_000);
  });
}
