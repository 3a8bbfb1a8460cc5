import { randomBytes } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { agentServer, transportConfig, TRANSPORTS, FreezableProxy, agentBucket, bodyCounts, createAgentToken, postWebhook, spawnAgent, until, type AgentProcess } from "../helpers/agents.js";
import { pendingJobs } from "../helpers/delivery.js";
import { DIALECTS } from "../helpers/dialects.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const AFTER_AGENT_KILL = 50;

for (const transport of TRANSPORTS) for (const dialect of DIALECTS) {
  describe(`agent resend after a reconnect (${dialect}, ${transport})`, () => {
    const agents: AgentProcess[] = [];
    const servers: TestServer[] = [];
    const receivers: Receiver[] = [];
    const proxies: FreezableProxy[] = [];

    afterAll(async () => {
      await Promise.all(agents.map((a) => a.stop()));
      await Promise.all([...servers.map((s) => s.stop()), ...receivers.map((r) => r.stop()), ...proxies.map((p) => p.stop())]);
    });

    const receiver = async () => {
      const r = await new Receiver().start();
      receivers.push(r);
      return r;
    };
    const agent = (...a: Parameters<typeof spawnAgent>) => {
      const p = spawnAgent(...a);
      agents.push(p);
      return p;
    };

    it(
      "kill -9 the agent, post 50 webhooks, start it again: each arrives exactly once, with an agent attempt",
      async () => {
        const t = await startTestServer(dialect, transportConfig(transport));
        servers.push(t);
        const svc = await receiver();
        const { bucket, input } = await agentBucket(t.api, "internal");
        const token = await createAgentToken(t.api, { name: "dc-1", buckets: ["internal"] });
        const spec = { server: agentServer(t.hw, transport), key: token.key, secret: token.secret, bucket: "internal", forwardTo: svc.url };

        const first = agent(spec);
        await first.waitConnected();
        await first.kill("SIGKILL");
        await until("the server to notice the dead agent", () => t.hw.agents.connections === 0);

        const bodies = Array.from({ length: AFTER_AGENT_KILL }, (_, i) => JSON.stringify({ n: i, id: randomBytes(6).toString("hex") }));
        const answers = await Promise.all(bodies.map((b) => postWebhook(input.url, b)));
        expect(answers.map((a) => a.status)).toEqual(bodies.map(() => 200));
        expect(svc.received).toHaveLength(0);

        const second = agent(spec);
        await second.waitConnected();
        await svc.waitFor(AFTER_AGENT_KILL, 30_000);
        // Once no job is left, nothing more can be sent: the counts below are final.
        await until("the queue to empty", async () => (await pendingJobs(t)) === 0, 15_000);
        const counts = bodyCounts(svc.received);
        expect(svc.received).toHaveLength(AFTER_AGENT_KILL);
        for (const b of bodies) expect(counts.get(b), b).toBe(1);

        const list = await t.api("GET", `/api/v1/bucket/${bucket.id}/request?limit=250`);
        expect(list.body.data).toHaveLength(AFTER_AGENT_KILL);
        for (const r of list.body.data as { id: string }[]) {
          const detail = await t.api("GET", `/api/v1/bucket/${bucket.id}/request/${r.id}`);
          const attempts = detail.body.attempts as { url: string; statusText: string; responseStatusCode: number }[];
          expect(attempts, r.id).toHaveLength(1);
          expect(attempts[0]!.url).toMatch(/^agent:dc-1\//);
          expect(attempts[0]!).toMatchObject({ statusText: "success", responseStatusCode: 200 });
        }
      },
      90_000,
    );

    it(
      "network loss: both sides notice the silent connection by heartbeat, the agent reconnects, nothing is lost or repeated",
      async () => {
        const t = await startTestServer(dialect, { ...transportConfig(transport), agentHeartbeat: 300 });
        servers.push(t);
        const proxy = await new FreezableProxy(agentServer(t.hw, transport)).start();
        proxies.push(proxy);
        const svc = await receiver();
        const { input } = await agentBucket(t.api, "remote");
        const token = await createAgentToken(t.api, { name: "dc-4", buckets: ["remote"] });
        // The agent reaches the gateway through the link that is about to die.
        const a = agent({ server: proxy.url, key: token.key, secret: token.secret, bucket: "remote", forwardTo: svc.url });
        await a.waitConnected();
        expect((await postWebhook(input.url, '{"before":1}')).status).toBe(200);
        await svc.waitFor(1);
        // Its ack must have crossed the link too, or it is (rightly) delivered again.
        await until("the first delivery to be recorded", async () => (await pendingJobs(t)) === 0);

        expect(proxy.freeze()).toBe(1);
        const bodies = Array.from({ length: 10 }, (_, i) => JSON.stringify({ during: i }));
        for (const b of bodies) expect((await postWebhook(input.url, b)).status).toBe(200);
        // The agent's own heartbeat (the server's interval, announced in its hello) gives up on the
        // silent link; the server drops its end by its heartbeat too.
        await until("the agent to notice", () => /no heartbeat from the server/.test(a.output()), 10_000);
        await a.waitConnected(2, 20_000);
        await svc.waitFor(1 + bodies.length, 20_000);
        await until("every delivery to be done", async () => (await pendingJobs(t)) === 0, 15_000);
        const counts = bodyCounts(svc.received);
        for (const b of bodies) expect(counts.get(b), b).toBe(1);
        expect(svc.received).toHaveLength(1 + bodies.length);
        // The server's end of the dead link is gone too (its heartbeat; the link never closed).
        await until("the server to drop the silent connection", () => t.hw.agents.connections === 1, 10_000);
      },
      60_000,
    );

    it(
      "does not resend webhooks older than --resend-window: they get an E_AGENT_RESEND_EXPIRED attempt",
      async () => {
        const WINDOW = 3_000;
        const t = await startTestServer(dialect, { ...transportConfig(transport), resendWindow: WINDOW });
        servers.push(t);
        const svc = await receiver();
        const { bucket, input } = await agentBucket(t.api, "late");
        const token = await createAgentToken(t.api, { name: "dc-3", buckets: ["late"] });

        const old = Array.from({ length: 5 }, (_, i) => JSON.stringify({ old: i }));
        const postedAt = Date.now();
        for (const b of old) expect((await postWebhook(input.url, b)).status).toBe(200);
        const oldIds = ((await t.api("GET", `/api/v1/bucket/${bucket.id}/request?limit=250`)).body.data as { id: string }[]).map((r) => r.id);
        expect(oldIds).toHaveLength(old.length);
        // Setup, not an assertion: the agent comes back only after the window has passed.
        await until("the resend window to pass", () => Date.now() > postedAt + WINDOW + 200, WINDOW + 5_000);

        const a = agent({ server: agentServer(t.hw, transport), key: token.key, secret: token.secret, bucket: "late", forwardTo: svc.url });
        await a.waitConnected();
        const fresh = JSON.stringify({ fresh: true });
        expect((await postWebhook(input.url, fresh)).status).toBe(200);
        await until("the fresh webhook", () => svc.received.some((r) => r.body === fresh), 15_000);

        for (const id of oldIds) {
          const attempts = await until(
            `an expiry attempt for ${id}`,
            async () => {
              const list = (await t.api("GET", `/api/v1/bucket/${bucket.id}/request/${id}`)).body.attempts as { errorCode: string | null; statusText: string }[];
              return list.length > 0 ? list : undefined;
            },
            20_000,
            200,
          );
          expect(attempts).toHaveLength(1);
          expect(attempts[0]).toMatchObject({ errorCode: "E_AGENT_RESEND_EXPIRED", statusText: "fail" });
        }
        await until("the queue to empty", async () => (await pendingJobs(t)) === 0, 15_000);
        expect(svc.received.map((r) => r.body)).toEqual([fresh]);
      },
      60_000,
    );
  });
}
