import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentBucket, createAgentToken, postWebhook, spawnAgent, until, type AgentProcess } from "../helpers/agents.js";
import { attemptsOf, createApp, createEndpoint, publish } from "../helpers/delivery.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/** Attempts this node made, from its own /metrics. */
async function attemptsMadeBy(t: TestServer): Promise<number> {
  const text = (await t.api("GET", "/metrics")).text;
  let n = 0;
  for (const m of text.matchAll(/^hookwarden_delivery_attempts_total\{[^}]*\} (\d+)/gm)) n += Number(m[1]);
  return n;
}

/**
 * Several stateless nodes on one PostgreSQL database (SQLite is one process by design, and holds
 * a lock on its data directory). Two nodes in this process share a schema, a master key and the
 * admin token, as two machines would share a database and their configuration.
 */
describe("two nodes sharing one PostgreSQL database", () => {
  let a: TestServer;
  let b: TestServer;
  let receiver: Receiver;
  let svc: Receiver;
  let agent: AgentProcess | undefined;

  beforeAll(async () => {
    const masterKey = randomBytes(32).toString("base64");
    // Retries 300 ms apart: a retry is a queued job that either node may claim.
    a = await startTestServer("postgres", { masterKey, retrySchedule: "300ms", circuitBreakerThreshold: 1000 });
    b = await startTestServer("postgres", { masterKey, retrySchedule: "300ms", circuitBreakerThreshold: 1000, databaseSchema: a.schema!, adminToken: a.token });
    receiver = await new Receiver().start();
    svc = await new Receiver().start();
  }, 60_000);
  afterAll(async () => {
    await agent?.stop();
    // B first, without dropping the schema A still uses.
    await b?.hw.stop();
    if (b) rmSync(b.dataDir, { recursive: true, force: true });
    await a?.stop();
    await receiver?.stop();
    await svc?.stop();
  });

  it("sees one set of data: what is created on one node is served by the other", async () => {
    const appId = await createApp(a, "shared");
    const got = await b.api("GET", `/api/v1/app/${appId}`);
    expect([got.status, got.body.name]).toEqual([200, "shared"]);
  });

  it("delivers every message exactly once whichever node publishes it, and both nodes claim queued retries", async () => {
    const appId = await createApp(a, "two-nodes");
    const ep = await createEndpoint(a, appId, { url: `${receiver.url}/multi`, secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" });
    // Each message fails once (500), then succeeds: the second attempt is a queued retry.
    const seen = new Set<string>();
    receiver.respond = (r) => {
      const id = String(r.headers["webhook-id"]);
      if (seen.has(id)) return undefined;
      seen.add(id);
      return { status: 500, body: "first try fails" };
    };
    const before = [await attemptsMadeBy(a), await attemptsMadeBy(b)];
    const N = 60;
    const msgs = await Promise.all(Array.from({ length: N }, (_, i) => publish(i % 2 === 0 ? a : b, appId, { payload: { i } })));
    await until("every message delivered successfully", () => receiver.received.filter((r) => r.url === "/multi").length >= 2 * N, 30_000);
    await Promise.all([a.hw.worker.runUntilIdle(), b.hw.worker.runUntilIdle()]);
    const byId = new Map<string, number>();
    for (const r of receiver.received.filter((r) => r.url === "/multi")) byId.set(String(r.headers["webhook-id"]), (byId.get(String(r.headers["webhook-id"])) ?? 0) + 1);
    // Exactly two requests per message (the failure and the success): no job ran on both nodes.
    expect([...byId.values()].every((n) => n === 2)).toBe(true);
    expect(byId.size).toBe(N);
    for (const m of msgs.slice(0, 6)) {
      const attempts = await attemptsOf(a, appId, m.id);
      expect(attempts.map((x) => [x.endpointId, x.responseStatusCode])).toEqual([[ep.id, 500], [ep.id, 200]]);
    }
    const made = [(await attemptsMadeBy(a)) - before[0]!, (await attemptsMadeBy(b)) - before[1]!];
    expect(made[0]! + made[1]!).toBe(2 * N);
    // Both nodes worked: each made first attempts of its own publishes, and retries went to either.
    expect(made[0]).toBeGreaterThan(0);
    expect(made[1]).toBeGreaterThan(0);
  }, 60_000);

  it("leaves agent deliveries to the node the agent is connected to, so they are not held back", async () => {
    const { input } = await agentBucket(a.api, "via-b");
    const token = await createAgentToken(a.api, { name: "dc-b", buckets: ["via-b"] });
    agent = spawnAgent({ server: b.url, key: token.key, secret: token.secret, bucket: "via-b", forwardTo: `${svc.url}/internal` });
    await agent.waitConnected(1, 20_000);
    // Posted to node A, whose own worker could claim each job; it must leave them to node B.
    const bodies = Array.from({ length: 20 }, (_, i) => JSON.stringify({ via: "a", i }));
    for (const body of bodies) expect((await postWebhook(input.url, body)).status).toBe(200);
    // A node without the agent used to claim such a job and put it back for 5 s (AGENT_WAIT_MS);
    // now every one reaches the internal service well before that.
    await until("all 20 at the internal service", () => bodies.every((body) => svc.received.some((r) => r.body === body)), 4_000);
    expect(svc.received.filter((r) => r.url === "/internal")).toHaveLength(20);
  }, 60_000);
});
