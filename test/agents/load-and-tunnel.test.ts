import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentServer, transportConfig, TRANSPORTS, agentBucket, agentUrl, bodyCounts, createAgentToken, postWebhook, rawAgent, spawnAgent, until, type AgentProcess, type AgentToken, type RawAgent } from "../helpers/agents.js";
import { pendingJobs } from "../helpers/delivery.js";
import { DIALECTS } from "../helpers/dialects.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/** The server's ping interval for this file only (`agentHeartbeat`; 15 s by default). */
const HEARTBEAT_MS = 400;
const SHARED = 40;
const BROADCAST = 10;

for (const transport of TRANSPORTS) for (const dialect of DIALECTS) {
  describe(`agents sharing load, broadcast, tunnel and heartbeats (${dialect}, ${transport})`, () => {
    let t: TestServer;
    let dir: string;
    /** The internal services of agents A and B (forward mode) and C (tunnel mode). */
    let svcA: Receiver;
    let svcB: Receiver;
    let svcC: Receiver;
    let forwardToken: AgentToken;
    let agentA: AgentProcess | undefined;
    let agentB: AgentProcess | undefined;
    let agentC: AgentProcess | undefined;
    let shared: Awaited<ReturnType<typeof agentBucket>>;
    let fanout: Awaited<ReturnType<typeof agentBucket>>;
    let tunnel: Awaited<ReturnType<typeof agentBucket>>;
    let parked: Awaited<ReturnType<typeof agentBucket>>;
    let sharedWaitInput: any;
    const raws: RawAgent[] = [];

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), "hookwarden-agents-"));
      t = await startTestServer(dialect, { ...transportConfig(transport), agentHeartbeat: HEARTBEAT_MS });
      [svcA, svcB, svcC] = await Promise.all([new Receiver().start(), new Receiver().start(), new Receiver().start()]);
      shared = await agentBucket(t.api, "shared");
      sharedWaitInput = (await t.api("POST", `/api/v1/bucket/${shared.bucket.id}/input`, { name: "waits", response: { mode: "wait", timeoutMs: 10_000 } })).body;
      fanout = await agentBucket(t.api, "fanout", { output: { broadcast: true } });
      tunnel = await agentBucket(t.api, "tunnel", { input: { response: { mode: "wait", timeoutMs: 10_000 } } });
      await agentBucket(t.api, "heartbeat");
      parked = await agentBucket(t.api, "parked", { input: { response: { mode: "wait", timeoutMs: 10_000 } } });
      forwardToken = await createAgentToken(t.api, { name: "dc", buckets: ["shared", "fanout", "heartbeat", "parked"], mode: "forward" });
      const tunnelToken = await createAgentToken(t.api, { name: "tun", buckets: ["tunnel"], mode: "tunnel" });
      // A and B: one token, two processes, each with its own config file and internal service.
      agentA = spawnAgent({ server: agentServer(t.hw, transport), key: forwardToken.key, secret: forwardToken.secret, dir, routes: [{ bucket: "shared", forwardTo: svcA.url }, { bucket: "fanout", forwardTo: svcA.url }] });
      agentB = spawnAgent({ server: agentServer(t.hw, transport), key: forwardToken.key, secret: forwardToken.secret, dir, routes: [{ bucket: "shared", forwardTo: svcB.url }, { bucket: "fanout", forwardTo: svcB.url }] });
      // C names its bucket by id rather than by name: both work.
      agentC = spawnAgent({ server: agentServer(t.hw, transport), key: tunnelToken.key, secret: tunnelToken.secret, bucket: tunnel.bucket.id, forwardTo: `${svcC.url}/api/hook` });
      await Promise.all([agentA.waitConnected(), agentB.waitConnected(), agentC.waitConnected()]);
    }, 120_000);

    afterAll(async () => {
      for (const r of raws) r.ws.terminate();
      await Promise.all([agentA?.stop(), agentB?.stop(), agentC?.stop()]);
      await Promise.all([svcA?.stop(), svcB?.stop(), svcC?.stop()]);
      await t?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    const settled = () => until("every delivery to be done", async () => (await pendingJobs(t)) === 0, 20_000);

    it("two agents on one bucket share its webhooks: each to exactly one of them, both get some", async () => {
      const bodies = Array.from({ length: SHARED }, (_, i) => JSON.stringify({ shared: i }));
      for (const b of bodies) expect((await postWebhook(shared.input.url, b)).status).toBe(200);
      const arrived = () => [...svcA.received, ...svcB.received].filter((r) => r.body.startsWith('{"shared"'));
      await until(`${SHARED} webhooks at the internal services`, () => arrived().length >= SHARED, 20_000);
      await settled();
      const counts = bodyCounts(arrived());
      for (const b of bodies) expect(counts.get(b), b).toBe(1);
      expect(arrived()).toHaveLength(SHARED);
      const toA = svcA.received.filter((r) => r.body.startsWith('{"shared"')).length;
      expect(toA).toBeGreaterThan(0);
      expect(SHARED - toA).toBeGreaterThan(0);
    });

    it("an output with broadcast: true delivers each webhook to every agent", async () => {
      const bodies = Array.from({ length: BROADCAST }, (_, i) => JSON.stringify({ fanout: i }));
      for (const b of bodies) expect((await postWebhook(fanout.input.url, b)).status).toBe(200);
      const at = (svc: Receiver) => bodyCounts(svc.received.filter((r) => r.body.startsWith('{"fanout"')));
      await until("every broadcast at both services", () => at(svcA).size === BROADCAST && at(svcB).size === BROADCAST, 20_000);
      await settled();
      for (const b of bodies) {
        expect(at(svcA).get(b), b).toBe(1);
        expect(at(svcB).get(b), b).toBe(1);
      }
      const list = (await t.api("GET", `/api/v1/bucket/${fanout.bucket.id}/request?limit=1`)).body.data as { id: string }[];
      const attempts = (await t.api("GET", `/api/v1/bucket/${fanout.bucket.id}/request/${list[0]!.id}`)).body.attempts as { url: string; statusText: string }[];
      expect(attempts).toHaveLength(1);
      expect(attempts[0]!.statusText).toBe("success");
      // One attempt, naming both connections that took it.
      expect(attempts[0]!.url).toMatch(/^agent:dc\/[0-9a-f]{8},dc\/[0-9a-f]{8}$/);
    });

    it("an agent serving several buckets takes more than its own concurrency without failing a single attempt", async () => {
      // Slow internal services keep every delivery open: the gateway pushes up to 32 per output,
      // and agent A serves two outputs (half of shared's, all of fanout's broadcasts).
      const slow = (r: { body: string }) => (r.body.startsWith('{"busy"') ? { delayMs: 300 } : undefined);
      svcA.respond = slow;
      svcB.respond = slow;
      const sharedBodies = Array.from({ length: 40 }, (_, i) => JSON.stringify({ busy: "shared", i }));
      const fanoutBodies = Array.from({ length: 40 }, (_, i) => JSON.stringify({ busy: "fanout", i }));
      const answers = await Promise.all([...sharedBodies.map((b) => postWebhook(shared.input.url, b)), ...fanoutBodies.map((b) => postWebhook(fanout.input.url, b))]);
      expect(answers.every((a) => a.status === 200)).toBe(true);
      await settled();
      const failed: string[] = [];
      for (const b of [shared.bucket, fanout.bucket]) {
        const list = (await t.api("GET", `/api/v1/bucket/${b.id}/request?limit=250`)).body.data as { id: string }[];
        for (const r of list) {
          const attempts = (await t.api("GET", `/api/v1/bucket/${b.id}/request/${r.id}`)).body.attempts as { statusText: string; response: string }[];
          for (const a of attempts) if (a.statusText !== "success") failed.push(a.response);
        }
      }
      expect(failed).toEqual([]);
      const busy = (svc: Receiver) => bodyCounts(svc.received.filter((r) => r.body.startsWith('{"busy"')));
      for (const b of fanoutBodies) expect([busy(svcA).get(b), busy(svcB).get(b)]).toEqual([1, 1]);
      for (const b of sharedBodies) expect((busy(svcA).get(b) ?? 0) + (busy(svcB).get(b) ?? 0)).toBe(1);
      svcA.respond = () => undefined;
      svcB.respond = () => undefined;
    });

    it("tunnel mode answers the original caller with the internal service's status, headers and body", async () => {
      svcC.respond = (r) => ({ status: 201, headers: { "x-internal-id": `int-${r.body.length}`, "content-type": "application/json" }, body: JSON.stringify({ seen: JSON.parse(r.body) }) });
      const res = await postWebhook(`${tunnel.input.url}/orders?id=7`, '{"order":7}', { "x-caller": "c1" });
      expect(res.status).toBe(201);
      expect(res.headers.get("x-internal-id")).toBe("int-11");
      expect(res.headers.get("content-type")).toBe("application/json");
      expect(JSON.parse(res.text)).toEqual({ seen: { order: 7 } });
      const got = svcC.received.at(-1)!;
      expect(got.url).toBe("/api/hook/orders?id=7");
      expect(got.headers["x-caller"]).toBe("c1");
      // The inspector shows what the caller was answered.
      await until("the answered status to be recorded", async () => ((await t.api("GET", `/api/v1/bucket/${tunnel.bucket.id}/request?limit=1`)).body.data[0]?.statusCode === 201 ? true : undefined));
    });

    it("tunnel mode returns a binary internal answer byte for byte, beyond the attempt record's 64 KiB", async () => {
      const bytes = Buffer.alloc(150 * 1024);
      for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 13 + (i >> 9)) & 0xff;
      svcC.respond = () => ({ status: 200, headers: { "content-type": "image/png" }, body: bytes });
      const res = await fetch(`${tunnel.input.url}/image`, { method: "POST", body: "{}" });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("image/png");
      const got = Buffer.from(await res.arrayBuffer());
      expect(got.length).toBe(bytes.length);
      expect(got.equals(bytes)).toBe(true);
    });

    it("forward mode returns nothing of the internal answer to the caller", async () => {
      const answer = { status: 201, headers: { "x-internal-id": "must-not-leak" }, body: "internal-body-must-not-leak" };
      svcA.respond = (r) => (r.body.startsWith('{"waits"') ? answer : undefined);
      svcB.respond = svcA.respond;
      const body = JSON.stringify({ waits: 1 });
      const res = await postWebhook(sharedWaitInput.url, body);
      expect(res.status).toBe(200);
      expect(res.text).toBe("");
      expect(res.headers.get("x-internal-id")).toBeNull();
      // ... and the webhook was still delivered.
      await until("the webhook at an internal service", () => [...svcA.received, ...svcB.received].some((r) => r.body === body), 15_000);
      // No forward agent connected right now: the caller learns nothing of that either; the
      // webhook is stored and waits for an agent.
      const offline = await postWebhook(parked.input.url, '{"parked":1}');
      expect(offline.status).toBe(200);
      expect(offline.text).toBe("");
      expect((await t.api("GET", `/api/v1/bucket/${parked.bucket.id}/request?limit=1`)).body.data).toHaveLength(1);
    });

    it(`drops an agent that stops answering pings within about two heartbeats (${HEARTBEAT_MS} ms here)`, async () => {
      const before = t.hw.agents.connections;
      const silent = await rawAgent(agentUrl(agentServer(t.hw, transport), "heartbeat"), forwardToken.key, forwardToken.secret, { autoPong: false });
      const lively = await rawAgent(agentUrl(agentServer(t.hw, transport), "heartbeat"), forwardToken.key, forwardToken.secret);
      raws.push(silent, lively);
      expect(t.hw.agents.connections).toBe(before + 2);
      const started = Date.now();
      // Bounded well below the default 15 s heartbeat, generous for a loaded machine.
      await until("the silent agent to be dropped", () => silent.isClosed(), HEARTBEAT_MS * 2 + 2_000, 20);
      const droppedAfterMs = Date.now() - started;
      console.log(JSON.stringify({ test: "agent-heartbeat", dialect, transport, heartbeatMs: HEARTBEAT_MS, droppedAfterMs }));
      // Terminated, not closed politely: the peer is presumed dead, so no close handshake.
      expect((await silent.closed).code).toBe(1006);
      await until("the server to forget it", () => t.hw.agents.connections === before + 1);
      expect(lively.isClosed()).toBe(false);
      // Agents that answer pings stay connected through many heartbeats: none ever reconnected.
      expect([agentA!.connections(), agentB!.connections(), agentC!.connections()]).toEqual([1, 1, 1]);
      lively.ws.close();
    });
  });
}
