import { getEventListeners } from "node:events";
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentBucket, agentUrl, createAgentToken, postWebhook, rawAgent, until, type RawAgent } from "../helpers/agents.js";
import { createApp, createEndpoint, publish } from "../helpers/delivery.js";
import { DIALECTS } from "../helpers/dialects.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/** Attempts held open at once: more than Node's default limit of 10 listeners per event. */
const HELD = 24;
const MESSAGES = 300;
const RELAYED = 120;
/** Agent requests left unacknowledged until they time out. */
const UNANSWERED = 5;

/** Runs `n` calls of `fn`, `concurrency` at a time. */
async function pool(n: number, concurrency: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}

/**
 * A receiver that holds the first `HELD` requests open until they are all in flight together, lets
 * the test look at the gateway meanwhile (`whileHeld`), then answers everything at once.
 */
class HoldingReceiver {
  url = "";
  received = 0;
  readonly #held: ServerResponse[] = [];
  #open = false;
  readonly #server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      this.received++;
      if (this.#open) return void res.end("ok");
      this.#held.push(res);
      if (this.#held.length < HELD) return;
      this.#open = true;
      this.whileHeld();
      for (const r of this.#held.splice(0)) r.end("ok");
    });
  });

  constructor(readonly whileHeld: () => void) {}

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** Attempts recorded so far (any outcome) and jobs still leased, i.e. in flight or unrecorded. */
async function progress(t: TestServer): Promise<{ attempts: number; leased: number }> {
  const { db } = t.hw.ctx.store;
  const attempts = await db.selectFrom("attempts").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
  const leased = await db.selectFrom("jobs").select((eb) => eb.fn.countAll<number>().as("n")).where("locked_by", "is not", null).executeTakeFirstOrThrow();
  return { attempts: Number(attempts.n), leased: Number(leased.n) };
}

/** Every one of `n` attempts recorded, whatever its outcome, and nothing left in flight. */
async function settled(t: TestServer, n: number): Promise<void> {
  await until(`${n} attempts recorded`, async () => {
    const p = await progress(t);
    return p.attempts >= n && p.leased === 0;
  }, 60_000);
}

for (const dialect of DIALECTS) {
  describe(`sustained deliveries and agent relays add no listener per request to the shutdown signal (${dialect})`, () => {
    let t: TestServer;
    const warnings: Error[] = [];
    const onWarning = (w: Error) => {
      if (w.name === "MaxListenersExceededWarning") warnings.push(w);
    };
    const listeners = (server: TestServer) => getEventListeners(server.hw.worker.shutdownSignal, "abort").length;

    beforeAll(async () => {
      process.on("warning", onWarning);
      // No retry comes back during the test, and no circuit opens on a slow machine.
      t = await startTestServer(dialect, { retrySchedule: "1h", endpointConcurrency: 64, circuitBreakerThreshold: 100_000 });
    });
    afterAll(async () => {
      process.off("warning", onWarning);
      await t?.stop();
    });

    it(`${MESSAGES} webhooks out, ${HELD} of them in flight at once`, async () => {
      const baseline = listeners(t);
      const during: number[] = [];
      const receiver = await new HoldingReceiver(() => during.push(listeners(t))).start();
      try {
        const app = await createApp(t, "listeners");
        await createEndpoint(t, app, { url: `${receiver.url}/hook` });
        await pool(MESSAGES, 20, (i) => publish(t, app, { payload: { i } }));
        await settled(t, MESSAGES);
        expect(receiver.received).toBeGreaterThanOrEqual(MESSAGES);
        expect(during).toHaveLength(1);
        // One listener fans out to every attempt in flight, whatever their number.
        expect(during[0]).toBeLessThanOrEqual(baseline + 1);
        expect(listeners(t)).toBe(baseline);
        expect(warnings.map((w) => w.message)).toEqual([]);
      } finally {
        await receiver.stop();
      }
    }, 180_000);

    it(`${RELAYED} webhooks relayed through an agent, ${HELD} unacknowledged at once`, async () => {
      const baseline = listeners(t);
      const before = (await progress(t)).attempts;
      const relay = await agentBucket(t.api, "relay");
      const token = await createAgentToken(t.api, { name: "listeners", buckets: ["relay"], mode: "forward" });
      let agent: RawAgent | undefined;
      try {
        agent = await rawAgent(agentUrl(t.url, "relay"), token.key, token.secret);
        const ws = agent.ws;
        const ack = (id: string) => ws.send(JSON.stringify({ type: "ack", id, ok: true, status: 200 }));
        const held: string[] = [];
        let duringHold: number | undefined;
        let requests = 0;
        ws.on("message", (data) => {
          const frame = JSON.parse(String(data)) as { type: string; id: string };
          if (frame.type !== "request") return;
          requests++;
          if (duringHold !== undefined) return ack(frame.id);
          held.push(frame.id);
          if (held.length < HELD) return;
          duringHold = listeners(t);
          for (const id of held.splice(0)) ack(id);
        });
        await pool(RELAYED, 20, async (i) => expect((await postWebhook(relay.input.url, JSON.stringify({ i }))).status).toBe(200));
        await settled(t, before + RELAYED);
        expect(requests).toBeGreaterThanOrEqual(RELAYED);
        expect(duringHold).toBeLessThanOrEqual(baseline + 1);
        expect(listeners(t)).toBe(baseline);
        expect(warnings.map((w) => w.message)).toEqual([]);
      } finally {
        agent?.ws.terminate();
      }
    }, 180_000);

    it(`${UNANSWERED} agent requests never acknowledged leave nothing behind once they time out`, async () => {
      // Its own gateway: a request timeout short enough to reach within the test.
      const short = await startTestServer(dialect, { requestTimeout: 1_000, retrySchedule: "1h" });
      let agent: RawAgent | undefined;
      try {
        const baseline = listeners(short);
        const relay = await agentBucket(short.api, "silent");
        const token = await createAgentToken(short.api, { name: "silent", buckets: ["silent"], mode: "forward" });
        agent = await rawAgent(agentUrl(short.url, "silent"), token.key, token.secret);
        for (let i = 0; i < UNANSWERED; i++) expect((await postWebhook(relay.input.url, JSON.stringify({ i }))).status).toBe(200);
        await settled(short, UNANSWERED);
        const timedOut = await short.hw.ctx.store.db.selectFrom("attempts").select("error_code").execute();
        expect(timedOut.map((a) => a.error_code)).toEqual(Array(UNANSWERED).fill("E_TIMEOUT"));
        expect(listeners(short)).toBe(baseline);
      } finally {
        agent?.ws.terminate();
        await short.stop();
      }
    }, 120_000);
  });
}
